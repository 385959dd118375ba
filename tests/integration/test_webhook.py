"""emulator → sluice → webhook receiver, through the real binaries: signing (checked by the
receiver with Python's hmac), Retry-After, dead letters, an endpoint that is down for a while,
concurrency, and TLS with a test CA made by the openssl command."""

import json
import os
import subprocess
import time
import unittest

from common import IntegrationTest, PROJECT, appwrite_yaml, read_lines, wait_for
from webhook_receiver import Receiver

ROW_CREATE = "databases.[databaseId].tables.[tableId].rows.[rowId].create"
ORDERS = "databases.shop.tables.orders.rows"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def config(emu, url, dead, scheme="standard", secret=SECRET, concurrency=2, tls="",
           retry="{initial: 100ms, max: 500ms, max_elapsed: 5m}", batch=""):
    return appwrite_yaml(emu.endpoint, heartbeat="5s") + f"""\
sinks:
  hook:
    type: webhook
    url: {url}
    signing: {{scheme: {scheme}, secret: "{secret}"}}
    timeout: 5s
    concurrency: {concurrency}
    headers: {{X-Order: "{{payload.$id}}", X-Static: fixed}}
    retry: {retry}
    dead_letter: {dead}
{tls}{batch}
routes:
  - name: orders
    channels: [{ORDERS}]
    sinks: [hook]
"""


def order(emu, row_id, total=10):
    return emu.publish(event=ROW_CREATE, params={"databaseId": "shop", "tableId": "orders",
                                                 "rowId": row_id},
                       payload={"$id": row_id, "total": total}, read=["any"], project=PROJECT)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory, name):
    """A CA and a server certificate for localhost/127.0.0.1 signed by it."""
    os.makedirs(directory, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-ca.key",
            "-out", f"{name}-ca.pem", "-days", "2", "-subj", f"/CN={name} test CA", cwd=directory)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-server.key",
            "-out", f"{name}-server.csr", "-subj", "/CN=localhost", cwd=directory)
    with open(os.path.join(directory, f"{name}-ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", f"{name}-server.csr", "-CA", f"{name}-ca.pem", "-CAkey",
            f"{name}-ca.key", "-CAcreateserial", "-out", f"{name}-server.pem", "-days", "2",
            "-extfile", f"{name}-ext.cnf", cwd=directory)
    return (os.path.join(directory, f"{name}-ca.pem"),
            (os.path.join(directory, f"{name}-server.pem"),
             os.path.join(directory, f"{name}-server.key")))


class WebhookTest(IntegrationTest):
    def receiver(self, **kw):
        r = Receiver(secret=kw.pop("secret", SECRET), scheme=kw.pop("scheme", "standard"), **kw)
        r.start()
        self._cleanup_procs.append(r)
        return r

    def setup_flow(self, receiver, **kw):
        emu = self.start_emulator()
        self.dead = os.path.join(self.dir, "dead.jsonl")
        s = self.start_sluice(config(emu, receiver.url, self.dead, **kw))
        s.wait_ready()
        return emu, s

    def test_standard_signature_and_headers(self):
        r = self.receiver()
        emu, s = self.setup_flow(r)
        sent = order(emu, "o1", 150)
        req = r.wait_for_requests(1)[0]
        self.assertTrue(req.signature_ok, req.headers)
        record = req.json()
        self.assertEqual(record["payload"], {"$id": "o1", "total": 150})
        self.assertEqual(record["events"], sent["events"])
        self.assertEqual(req.headers["Content-Type"], "application/json")
        self.assertEqual(req.headers["X-Order"], "o1")
        self.assertEqual(req.headers["X-Static"], "fixed")
        self.assertEqual(len(req.headers["webhook-id"]), 32)
        self.assertLess(abs(int(req.headers["webhook-timestamp"]) - time.time()), 300)
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="hook") == 1, 20, "sent")
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_appwrite_signature(self):
        r = self.receiver(secret="plain-secret", scheme="appwrite")
        emu, s = self.setup_flow(r, scheme="appwrite", secret="plain-secret")
        sent = order(emu, "o1", 7)
        req = r.wait_for_requests(1)[0]
        self.assertTrue(req.signature_ok, req.headers)
        self.assertEqual(req.json(), {"$id": "o1", "total": 7})  # the payload only
        self.assertEqual(req.headers["X-Appwrite-Webhook-Events"], ",".join(sent["events"]))
        self.assertEqual(req.headers["X-Appwrite-Webhook-Name"], "hook")
        self.assertEqual(req.headers["X-Appwrite-Webhook-Project-Id"], PROJECT)
        self.assertIn("X-Appwrite-Webhook-User-Id", req.headers)
        self.assertTrue(req.headers["User-Agent"].startswith("Appwrite-Server v"))
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_retry_after_is_honoured(self):
        r = self.receiver()
        r.script([(503, {"Retry-After": "2"})] * 3)
        emu, s = self.setup_flow(r)
        order(emu, "o1")
        reqs = r.wait_for_requests(4, timeout=60)
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="hook") == 1, 20, "sent")
        reqs = r.snapshot()
        self.assertEqual([q.status for q in reqs], [503, 503, 503, 200])
        ids = {q.headers["webhook-id"] for q in reqs}
        self.assertEqual(len(ids), 1)  # a retry is the same message
        self.assertTrue(all(q.signature_ok for q in reqs))
        # A lower bound the daemon must respect, not a timing measurement.
        for a, b in zip(reqs, reqs[1:]):
            self.assertGreaterEqual(b.at - a.at, 1.95)
        self.assertEqual(s.metric("sluice_sink_retries_total", sink="hook"), 3)
        self.assertEqual(s.metric("sluice_sink_events_failed_total", sink="hook",
                                  reason="http_503"), 3)
        self.assertEqual(s.metric("sluice_sink_http_responses_total", sink="hook",
                                  **{"class": "5xx"}), 3)
        self.assertEqual(s.metric("sluice_sink_http_responses_total", sink="hook",
                                  **{"class": "2xx"}), 1)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))
        self.assertEqual(len(r.snapshot()), 4)  # delivered once

    def test_400_is_dead_lettered(self):
        r = self.receiver()
        r.script([400])
        emu, s = self.setup_flow(r)
        order(emu, "bad")
        order(emu, "good")
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="hook") == 1, 20, "sent")
        dead = wait_for(lambda: read_lines(self.dead), 20, "the dead letter")
        self.assertEqual(len(dead), 1)
        self.assertEqual(dead[0]["reason"], "http 400")
        self.assertEqual(dead[0]["sink"], "hook")
        self.assertEqual(dead[0]["attempts"], 1)
        self.assertEqual(s.metric("sluice_sink_dead_lettered_total", sink="hook"), 1)
        self.assertEqual([q.json()["payload"]["$id"] for q in r.snapshot()], ["bad", "good"])
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_endpoint_down_then_back(self):
        r = self.receiver()
        port = r.port
        r.stop()  # nothing listens on the port now
        emu, s = self.setup_flow(r)
        order(emu, "o1")
        wait_for(lambda: s.metric("sluice_sink_events_failed_total", sink="hook",
                                  reason="connect") >= 3, 30, "failed connects")
        self.assertEqual(s.metric("sluice_sink_events_sent_total", sink="hook"), 0)
        r2 = self.receiver(port=port)
        got = r2.wait_for_requests(1, timeout=30)
        self.assertEqual(got[0].json()["payload"]["$id"], "o1")
        self.assertTrue(got[0].signature_ok)
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="hook") == 1, 20, "sent")
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def run_many(self, batch=""):
        r = self.receiver()
        emu, s = self.setup_flow(r, concurrency=8, batch=batch)
        count = 1000
        started = time.monotonic()
        answer = emu.stream(count, params={"databaseId": "shop", "tableId": "orders",
                                           "rowId": "x"}, event=ROW_CREATE, project=PROJECT)
        self.assertEqual(answer["delivered"], count)
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="hook") == count, 60,
                 "every event sent")
        elapsed = time.monotonic() - started
        reqs = r.snapshot()
        seqs = []
        for q in reqs:
            body = q.json()
            seqs.extend(x["payload"]["seq"] for x in (body if isinstance(body, list) else [body]))
        self.assertEqual(sorted(seqs), list(range(1, count + 1)))  # each exactly once
        self.assertTrue(all(q.signature_ok for q in reqs))
        print(f"{count} events in {len(reqs)} requests, {elapsed:.2f} s: "
              f"{count / elapsed:.0f} events/s, {len(reqs) / elapsed:.0f} requests/s")
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))
        return reqs

    def test_thousand_events_concurrency_8(self):
        self.run_many()

    def test_thousand_events_batched(self):
        reqs = self.run_many(batch="    batch: {max_events: 50}\n")
        self.assertLess(len(reqs), 1000)

    def test_batch_waits_for_max_wait(self):
        """Three events published one by one leave in one request: the batch waits up to
        max_wait for more records instead of sending each as it comes."""
        r = self.receiver()
        emu, s = self.setup_flow(r, batch="    batch: {max_events: 50, max_wait: 3s}\n")
        for i in range(3):
            order(emu, f"o{i}")
        reqs = r.wait_for_requests(1, timeout=30)
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="hook") == 3, 20, "sent")
        reqs = r.snapshot()
        self.assertEqual(len(reqs), 1)
        self.assertEqual([x["payload"]["$id"] for x in reqs[0].json()], ["o0", "o1", "o2"])
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_tls_with_test_ca(self):
        ca, server = make_ca(os.path.join(self.dir, "pki"), "good")
        r = self.receiver(tls=server, url_host="localhost")
        emu, s = self.setup_flow(r, tls=f"    tls: {{ca_file: {ca}}}\n")
        order(emu, "o1")
        req = r.wait_for_requests(1)[0]
        self.assertTrue(req.signature_ok)
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="hook") == 1, 20, "sent")
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_redirect_from_http_to_https(self):
        # An http:// sink loads CA certificates only when a redirect first leads to https.
        ca, server = make_ca(os.path.join(self.dir, "pki"), "good")
        secure = self.receiver(tls=server, url_host="localhost")
        plain = self.receiver()
        plain.script([(307, {"Location": secure.url})])
        emu, s = self.setup_flow(
            plain, tls=f"    tls: {{ca_file: {ca}}}\n    follow_redirects: true\n")
        order(emu, "o1")
        req = secure.wait_for_requests(1)[0]
        self.assertTrue(req.signature_ok)
        self.assertEqual(req.json()["payload"]["$id"], "o1")
        self.assertEqual([r.status for r in plain.snapshot()], [307])
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="hook") == 1, 20, "sent")
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_tls_wrong_ca_is_refused(self):
        pki = os.path.join(self.dir, "pki")
        _, server = make_ca(pki, "good")
        wrong_ca, _ = make_ca(pki, "other")
        r = self.receiver(tls=server, url_host="localhost")
        emu, s = self.setup_flow(r, tls=f"    tls: {{ca_file: {wrong_ca}}}\n")
        order(emu, "o1")
        wait_for(lambda: s.metric("sluice_sink_events_failed_total", sink="hook",
                                  reason="tls") >= 2, 30, "refused TLS handshakes")
        self.assertEqual(s.metric("sluice_sink_events_sent_total", sink="hook"), 0)
        self.assertEqual(r.snapshot(), [])
        self.assertIn("certificate verify failed", json.dumps(s.status()))
        s.stop()


if __name__ == "__main__":
    unittest.main()
