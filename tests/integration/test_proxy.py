"""Webhooks through HTTP proxies, with the real binaries: tinyproxy (Debian's tinyproxy-bin,
started on a free loopback port) for CONNECT to https targets with TLS verified end to end and
for absolute-form requests to http targets with proxy credentials; the environment
(HTTPS_PROXY, HTTP_PROXY, NO_PROXY) against the `proxy:` key; and a hostile proxy (407, 502, a
connection closed mid-CONNECT, a proxy that never answers) that must cost retries, never
records, and never show the proxy's password."""

import base64
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from common import IntegrationTest, appwrite_yaml, wait_for
from test_webhook import ORDERS, SECRET, make_ca, order
from webhook_receiver import Receiver

PASSWORD = "pr0xy-s3cret-pw"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TinyProxy:
    """tinyproxy in the foreground on a free loopback port, logging every request line."""

    def __init__(self, directory, basic_auth=None):
        self.directory = directory
        self.basic_auth = basic_auth
        self.log_path = os.path.join(directory, "tinyproxy.log")
        self.proc = None
        self.port = None

    def start(self):
        binary = shutil.which("tinyproxy")
        assert binary, "tinyproxy is not installed (scripts/deps installs tinyproxy-bin)"
        # tinyproxy cannot listen on port 0 and report it: a free port is picked, and picked
        # again should another process take it first.
        for _ in range(5):
            self.port = free_port()
            conf = os.path.join(self.directory, "tinyproxy.conf")
            with open(conf, "w") as f:
                f.write(f"Port {self.port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Connect\n"
                        f"LogFile \"{self.log_path}\"\nMaxClients 50\nAllow 127.0.0.1\n")
                if self.basic_auth:
                    f.write(f"BasicAuth {self.basic_auth[0]} {self.basic_auth[1]}\n")
            self.proc = subprocess.Popen([binary, "-d", "-c", conf], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_for(lambda: self._accepts() or self.proc.poll() is not None, 10,
                         "tinyproxy listening")
            except AssertionError:
                self.stop()
                raise
            if self.proc.poll() is None:
                return self
        raise AssertionError("tinyproxy did not start:\n" + self.log())

    def _accepts(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def log(self):
        if not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __exit__(self, *exc):
        self.stop()


class HostileProxy:
    """A loopback proxy that answers CONNECT as `mode` says: "407", "502", "close" (half an
    answer, then the connection closes), "hang" (never answers) or "tunnel" (200, then relays
    bytes to the requested host). Records each CONNECT's request head."""

    def __init__(self, mode="407"):
        self.mode = mode
        self.heads = []
        self._cond = threading.Condition()
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = self._server.getsockname()[1]
        self._open = []
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def connects(self):
        with self._cond:
            return len(self.heads)

    def _accept(self):
        while not self._stopped:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with self._cond:
                self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                conn.close()
                return
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        # A request in absolute form (to an http target) is read to its end, so that closing
        # the connection after the answer does not reset it before the client reads it.
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
        with self._cond:
            self.heads.append(head.decode("latin-1"))
            mode = self.mode
        if mode == "407":
            conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b"Proxy-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n")
        elif mode == "502":
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 5\r\n\r\nnope\n")
        elif mode == "close":
            conn.sendall(b"HTTP/1.1 200 Connection establ")
        elif mode == "hang":
            return  # the connection stays open, unanswered, until stop()
        elif mode == "tunnel":
            host, _, port = head.split(b" ")[1].decode().rpartition(":")
            upstream = socket.create_connection((host.strip("[]"), int(port)))
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            threading.Thread(target=self._relay, args=(upstream, conn), daemon=True).start()
            self._relay(conn, upstream)
            return
        conn.close()

    @staticmethod
    def _relay(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __exit__(self, *exc):
        self._stopped = True
        self._server.close()
        with self._cond:
            for c in self._open:
                try:
                    c.close()
                except OSError:
                    pass


def sink(name, url, extra=""):
    return f"""\
  {name}:
    type: webhook
    url: {url}
    signing: {{scheme: standard, secret: "{SECRET}"}}
    timeout: 2s
    retry: {{initial: 100ms, max: 200ms, max_elapsed: 5m}}
{extra}"""


def flow(emu, sinks, names):
    return appwrite_yaml(emu.endpoint, heartbeat="5s") + "sinks:\n" + sinks + f"""\
routes:
  - name: orders
    channels: [{ORDERS}]
    sinks: [{", ".join(names)}]
"""


class ProxyTest(IntegrationTest):
    def track(self, thing):
        self._cleanup_procs.append(thing)
        return thing

    def receiver(self, **kw):
        return self.track(Receiver(secret=SECRET, scheme="standard", **kw).start())

    def assert_never_shown(self, s, secret):
        self.assertNotIn(secret, s.log_text())
        self.assertNotIn(secret, s.get("/status")[1])
        self.assertNotIn(secret, s.get("/metrics")[1])

    def test_https_through_tinyproxy_uses_connect_and_verifies_the_target(self):
        pki = os.path.join(self.dir, "pki")
        good_ca, server = make_ca(pki, "good")
        wrong_ca, _ = make_ca(pki, "other")
        r = self.receiver(tls=server, url_host="localhost")
        proxy = self.track(TinyProxy(self.dir).start())
        emu = self.start_emulator()
        sinks = (sink("good", r.url, f"    tls: {{ca_file: {good_ca}}}\n") +
                 sink("wrong_ca", r.url, f"    tls: {{ca_file: {wrong_ca}}}\n"))
        s = self.start_sluice(flow(emu, sinks, ["good", "wrong_ca"]),
                              env=dict(HTTPS_PROXY=proxy.url))
        s.wait_ready()
        order(emu, "o1")
        req = r.wait_for_requests(1)[0]
        self.assertTrue(req.signature_ok)
        self.assertEqual(req.json()["payload"]["$id"], "o1")
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="good") == 1, 20, "sent")
        # The proxy only relayed a tunnel: it saw CONNECT, never the request.
        self.assertIn(f"CONNECT localhost:{r.port}", proxy.log())
        self.assertNotIn("POST", proxy.log())
        # Through the same proxy, a certificate the sink's CA did not sign is refused: TLS runs
        # with the target, not with the proxy.
        wait_for(lambda: s.metric("sluice_sink_attempts_failed_total", sink="wrong_ca",
                                  reason="tls") >= 2, 20, "refused handshakes through the tunnel")
        self.assertEqual(s.metric("sluice_sink_events_sent_total", sink="wrong_ca"), 0)
        self.assertEqual(len(r.snapshot()), 1)
        s.stop(signal.SIGKILL)  # records still wait for retries: no 20 s drain

    def test_http_through_tinyproxy_with_credentials_from_the_key(self):
        r = self.receiver()
        proxy = self.track(TinyProxy(self.dir, basic_auth=("alice", PASSWORD)).start())
        dead = HostileProxy("407")
        self.track(dead)
        emu = self.start_emulator()
        url = f"http://alice:{PASSWORD}@127.0.0.1:{proxy.port}"
        sinks = sink("hook", r.url_for("/hook?x=1"), f'    proxy: "{url}"\n')
        # The key wins over the environment, which names another proxy.
        s = self.start_sluice(flow(emu, sinks, ["hook"]),
                              env=dict(HTTP_PROXY=dead.url, HTTPS_PROXY=dead.url))
        s.wait_ready()
        order(emu, "o1")
        req = r.wait_for_requests(1)[0]
        self.assertEqual(req.path, "/hook?x=1")
        self.assertTrue(req.signature_ok)
        self.assertIsNone(req.headers.get("Proxy-Authorization"))
        self.assertIn(f"POST http://127.0.0.1:{r.port}/hook?x=1", proxy.log())
        self.assertEqual(dead.connects(), 0)
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="hook") == 1, 20, "sent")
        self.assert_never_shown(s, PASSWORD)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_refused_proxy_credentials_are_retried_not_dead_lettered(self):
        r = self.receiver()
        proxy = self.track(TinyProxy(self.dir, basic_auth=("alice", PASSWORD)).start())
        hostile = HostileProxy("407")
        self.track(hostile)
        emu = self.start_emulator()
        dead = os.path.join(self.dir, "dead.jsonl")
        wrong = "wr0ng-pw"
        # tinyproxy answers a wrong password with 407 and closes the connection (often before
        # sluice reads the answer); the hostile proxy answers 407 and lets it be read.
        sinks = (sink("tiny", r.url, f"    dead_letter: {dead}\n") +
                 sink("hostile", r.url,
                      f'    proxy: "http://bob:{wrong}@127.0.0.1:{hostile.port}"\n'
                      f"    dead_letter: {dead}\n"))
        s = self.start_sluice(flow(emu, sinks, ["tiny", "hostile"]),
                              env=dict(HTTP_PROXY=f"http://alice:{wrong}@{proxy.url[7:]}"))
        s.wait_ready()
        order(emu, "o1")
        wait_for(lambda: s.metric("sluice_sink_retries_total", sink="tiny") >= 2, 20,
                 "refused attempts through tinyproxy retried")
        wait_for(lambda: s.metric("sluice_sink_attempts_failed_total", sink="hostile",
                                  reason="proxy") >= 2, 20, "407 answers retried")
        self.assertIn(f"proxy: http://127.0.0.1:{hostile.port}: 407 Proxy Authentication "
                      "Required", s.log_text())
        self.assertTrue(hostile.heads[0].startswith(f"POST http://127.0.0.1:{r.port}/hook "),
                        hostile.heads[0])
        for name in ("tiny", "hostile"):
            self.assertEqual(s.metric("sluice_sink_dead_lettered_total", sink=name), 0)
        self.assertFalse(os.path.exists(dead))
        self.assertEqual(r.snapshot(), [])
        self.assert_never_shown(s, wrong)
        s.stop(signal.SIGKILL)  # records still wait for retries: no 20 s drain

    def test_no_proxy_and_proxy_none_connect_directly(self):
        r = self.receiver()
        hostile = HostileProxy("407")
        self.track(hostile)
        emu = self.start_emulator()
        sinks = sink("exempt", r.url) + sink("direct", r.url, "    proxy: none\n")
        s = self.start_sluice(
            flow(emu, sinks, ["exempt", "direct"]),
            env=dict(HTTP_PROXY=hostile.url, HTTPS_PROXY=hostile.url,
                     NO_PROXY="example.com, 127.0.0.0/8"))
        s.wait_ready()
        order(emu, "o1")
        r.wait_for_requests(2)
        for name in ("exempt", "direct"):
            wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink=name) == 1, 20, name)
        self.assertEqual(hostile.connects(), 0)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_hostile_proxy_costs_retries_and_loses_nothing(self):
        pki = os.path.join(self.dir, "pki")
        ca, server = make_ca(pki, "good")
        r = self.receiver(tls=server, url_host="localhost")
        hostile = HostileProxy("407")
        self.track(hostile)
        emu = self.start_emulator()
        dead = os.path.join(self.dir, "dead.jsonl")
        sinks = sink("hook", r.url, f"    tls: {{ca_file: {ca}}}\n    dead_letter: {dead}\n")
        proxy_url = f"http://bob:{PASSWORD}@127.0.0.1:{hostile.port}"
        s = self.start_sluice(flow(emu, sinks, ["hook"]), env=dict(HTTPS_PROXY=proxy_url))
        s.wait_ready()
        order(emu, "o1")
        expected = {"407": "CONNECT refused: 407 Proxy Authentication Required",
                    "502": "CONNECT refused: 502 Bad Gateway",
                    "close": "closed the connection during CONNECT",
                    "hang": "timeout: no answer to CONNECT within the timeout"}
        for mode, reason in expected.items():
            before = hostile.connects()
            with hostile._cond:
                hostile.mode = mode
            wait_for(lambda: hostile.connects() >= before + 2, 20, f"CONNECTs while {mode}")
            wait_for(lambda: reason in s.log_text(), 20, f"the reason for {mode}")
        # Every CONNECT named the target and carried the credentials, to the proxy only.
        token = base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
        for head in hostile.heads:
            self.assertTrue(head.startswith(f"CONNECT localhost:{r.port} HTTP/1.1"), head)
            self.assertIn(f"Proxy-Authorization: Basic {token}", head)
        self.assertEqual(r.snapshot(), [])
        wait_for(lambda: s.metric("sluice_sink_attempts_failed_total", sink="hook",
                                  reason="proxy") >= 8, 20, "every refused attempt counted")
        # Once the proxy lets it through, the record is delivered: nothing was lost.
        with hostile._cond:
            hostile.mode = "tunnel"
        req = r.wait_for_requests(1, timeout=20)[0]
        self.assertEqual(req.json()["payload"]["$id"], "o1")
        self.assertIsNone(req.headers.get("Proxy-Authorization"))
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="hook") == 1, 20, "sent")
        self.assertEqual(s.metric("sluice_sink_events_failed_total", sink="hook",
                                  reason="dead_letter"), 0)
        self.assertFalse(os.path.exists(dead))
        self.assert_never_shown(s, PASSWORD)
        self.assertNotIn(token, s.log_text())
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))


if __name__ == "__main__":
    import unittest
    unittest.main()
