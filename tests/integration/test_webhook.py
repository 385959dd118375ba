"""emulator → sluice → webhook receiver, through the real binaries: signing (checked by the
receiver with Python's hmac), Retry-After, dead letters, an endpoint that is down for a while,
concurrency, TLS with a test CA made by the openssl command, and hostile receivers (interim 1xx
answers, unsolicited bytes after an answer, redirects to another origin or to plain http)."""

import io
import json
import os
import subprocess
import time
import unittest

from common import IntegrationTest, PROJECT, appwrite_yaml, read_lines, wait_for, fields
from webhook_receiver import Receiver

ROW_CREATE = "databases.[databaseId].tables.[tableId].rows.[rowId].create"
ORDERS = "databases.shop.tables.orders.rows"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HEADERS = '{X-Order: "{payload.$id}", X-Static: fixed}'
AUTH_HEADERS = '{X-Order: "{payload.$id}", X-Static: fixed, Authorization: "Bearer hook-token"}'


def config(emu, url, dead, scheme="standard", secret=SECRET, concurrency=2, tls="",
           retry="{initial: 100ms, max: 500ms, max_elapsed: 5m}", batch="", headers=HEADERS):
    return appwrite_yaml(emu.endpoint, heartbeat="5s") + f"""\
sinks:
  hook:
    type: webhook
    url: {url}
    signing: {{scheme: {scheme}, secret: "{secret}"}}
    timeout: 5s
    concurrency: {concurrency}
    headers: {headers}
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


class HostileReceiver(Receiver):
    """Answers request n with the interim responses interims[n % len(interims)] (1xx status
    lists) before its final answer, and writes `trailing` right after the final answer in the
    same write: bytes the client did not ask for, such as a second, unsolicited response."""

    PHRASES = {100: "Continue", 102: "Processing", 103: "Early Hints"}

    def __init__(self, interims=(), trailing=b"", **kw):
        super().__init__(**kw)
        self.interims = list(interims)
        self.trailing = trailing
        self._answered = 0

    def _handle(self, handler, body):
        with self._cond:
            n = self._answered
            self._answered += 1
        for status in self.interims[n % len(self.interims)] if self.interims else []:
            extra = "Link: </hook.css>; rel=preload\r\n" if status == 103 else ""
            handler.wfile.write(
                f"HTTP/1.1 {status} {self.PHRASES.get(status, 'Interim')}\r\n{extra}\r\n"
                .encode())
            handler.wfile.flush()
        real = handler.wfile
        handler.wfile = io.BytesIO()
        try:
            super()._handle(handler, body)
            real.write(handler.wfile.getvalue() + self.trailing)
        finally:
            handler.wfile = real


class WebhookTest(IntegrationTest):
    def receiver(self, cls=Receiver, **kw):
        r = cls(secret=kw.pop("secret", SECRET), scheme=kw.pop("scheme", "standard"), **kw)
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
        self.assertEqual(fields(record["payload"]), {"$id": "o1", "total": 150})
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
        self.assertEqual(fields(req.json()), {"$id": "o1", "total": 7})  # the payload only
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
        self.assertEqual(s.metric("sluice_sink_attempts_failed_total", sink="hook",
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
        wait_for(lambda: s.metric("sluice_sink_attempts_failed_total", sink="hook",
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
        self.assertEqual(req.json()["payload"]["$id"], "o1")
        # Another origin (scheme, host and port differ): no signature, no configured headers.
        self.assertNotIn("webhook-signature", req.headers)
        self.assertNotIn("X-Static", req.headers)
        self.assertEqual([r.status for r in plain.snapshot()], [307])
        self.assertTrue(plain.snapshot()[0].signature_ok)
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="hook") == 1, 20, "sent")
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def settled(self, s, count):
        """Waits until every one of `count` events was sent or dead-lettered."""
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="hook")
                 + s.metric("sluice_sink_dead_lettered_total", sink="hook") >= count,
                 30, f"{count} events sent or dead-lettered")

    def test_interim_answers_are_skipped(self):
        """A receiver that sends 102, 100, two interims, or 103 with a header before each final
        answer: every event is delivered exactly once, none is dead-lettered, and the 500 given
        to the first request is charged to that request's event alone."""
        r = self.receiver(HostileReceiver, interims=[[102], [100], [100, 102], [103]])
        r.script([500])
        emu, s = self.setup_flow(r, concurrency=1)
        ids = [f"o{i}" for i in range(6)]
        for i in ids:
            order(emu, i)
        self.settled(s, len(ids))
        self.assertEqual(s.metric("sluice_sink_dead_lettered_total", sink="hook"), 0,
                         [d["reason"] for d in read_lines(self.dead)] if os.path.exists(self.dead)
                         else "")
        reqs = r.snapshot()
        sent = [q.json()["payload"]["$id"] for q in reqs]
        self.assertEqual(sorted(x for x, q in zip(sent, reqs) if q.status == 200), ids)
        self.assertEqual(len(reqs), len(ids) + 1, sent)  # one retry: the event answered 500
        self.assertEqual(reqs[0].status, 500)
        self.assertEqual(sent.count(sent[0]), 2, sent)
        self.assertTrue(all(q.signature_ok for q in reqs))
        self.assertEqual(s.metric("sluice_sink_http_responses_total", sink="hook",
                                  **{"class": "5xx"}), 1)
        self.assertEqual(s.metric("sluice_sink_http_responses_total", sink="hook",
                                  **{"class": "2xx"}), len(ids))
        self.assertEqual(s.metric("sluice_sink_http_responses_total", sink="hook",
                                  **{"class": "1xx"}), 0)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_unsolicited_bytes_after_an_answer_are_not_read_as_the_next_answer(self):
        """A receiver that follows each 200 with a second, unsolicited 500 on the same
        connection: the connection is closed rather than reused, so no event is charged
        with the stray 500 and each is delivered once."""
        r = self.receiver(HostileReceiver, trailing=b"HTTP/1.1 500 Internal Server Error\r\n"
                                                      b"Content-Length: 0\r\n\r\n")
        emu, s = self.setup_flow(r, concurrency=1)
        ids = [f"o{i}" for i in range(4)]
        for i in ids:
            order(emu, i)
        self.settled(s, len(ids))
        reqs = r.snapshot()
        self.assertEqual([q.json()["payload"]["$id"] for q in reqs], ids)
        self.assertEqual(s.metric("sluice_sink_http_responses_total", sink="hook",
                                  **{"class": "5xx"}), 0)
        self.assertEqual(s.metric("sluice_sink_dead_lettered_total", sink="hook"), 0)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_redirect_from_https_to_http_is_refused(self):
        """An https receiver answering 307 to a plain-http listener: nothing reaches the plain
        listener (no token, body or signature in clear text), the record is not counted as
        delivered, and it is dead-lettered with a reason that says why."""
        ca, server = make_ca(os.path.join(self.dir, "pki"), "good")
        plain = self.receiver()
        secure = self.receiver(tls=server, url_host="localhost")
        secure.script([(307, {"Location": plain.url})])
        emu, s = self.setup_flow(
            secure, headers=AUTH_HEADERS,
            tls=f"    tls: {{ca_file: {ca}}}\n    follow_redirects: true\n")
        order(emu, "o1")
        dead = wait_for(lambda: read_lines(self.dead), 20, "the dead letter")
        self.assertEqual(len(dead), 1)
        self.assertIn("https", dead[0]["reason"])
        self.assertIn("plain http", dead[0]["reason"])
        self.assertEqual(s.metric("sluice_sink_events_sent_total", sink="hook"), 0)
        self.assertEqual(plain.snapshot(), [])
        first = secure.snapshot()[0]
        self.assertEqual(first.headers["Authorization"], "Bearer hook-token")  # its own origin
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))
        self.assertEqual(plain.snapshot(), [])

    def test_redirect_to_another_origin_drops_credentials(self):
        """A same-scheme redirect to another port is another origin: the request arrives there
        without the configured headers (Authorization) and without the signature."""
        origin = self.receiver()
        other = self.receiver()
        origin.script([(307, {"Location": other.url})])
        emu, s = self.setup_flow(origin, headers=AUTH_HEADERS,
                                 tls="    follow_redirects: true\n")
        order(emu, "o1")
        req = other.wait_for_requests(1)[0]
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="hook") == 1, 20, "sent")
        self.assertEqual(req.json()["payload"]["$id"], "o1")
        for name in ("Authorization", "X-Static", "X-Order", "webhook-signature"):
            self.assertNotIn(name, req.headers)
        first = origin.snapshot()[0]
        self.assertEqual(first.headers["Authorization"], "Bearer hook-token")
        self.assertTrue(first.signature_ok)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_tls_wrong_ca_is_refused(self):
        pki = os.path.join(self.dir, "pki")
        _, server = make_ca(pki, "good")
        wrong_ca, _ = make_ca(pki, "other")
        r = self.receiver(tls=server, url_host="localhost")
        emu, s = self.setup_flow(r, tls=f"    tls: {{ca_file: {wrong_ca}}}\n")
        order(emu, "o1")
        wait_for(lambda: s.metric("sluice_sink_attempts_failed_total", sink="hook",
                                  reason="tls") >= 2, 30, "refused TLS handshakes")
        self.assertEqual(s.metric("sluice_sink_events_sent_total", sink="hook"), 0)
        self.assertEqual(r.snapshot(), [])
        self.assertIn("certificate verify failed", json.dumps(s.status()))
        s.stop()


if __name__ == "__main__":
    unittest.main()
