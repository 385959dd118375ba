"""The admin server under a flood of idle and slow connections (plain and TLS), and the daemon
when the reader of its stderr goes away: through the real binaries, hostile clients on loopback."""

import json
import os
import select
import socket
import ssl
import subprocess
import threading
import time
import unittest
import urllib.request

from common import SLUICE_BIN, IntegrationTest, Sluice, parse_metrics, read_lines, wait_for
from test_flow import config, order
from test_security import make_ca, make_server_cert

PROBES = 25
PROBE_TIMEOUT = 2.0  # seconds, per probe, as a Kubernetes probe with a short timeoutSeconds


class Flood:
    """`idle` connections that never send a byte and `slow` ones that send `head` one byte a
    second (slowloris), held open until close(). The server may close any of them: a write to
    a closed one is ignored, and nothing reconnects, so the probes race no one."""

    def __init__(self, address, head, idle=64, slow=64):
        host, port = address.rsplit(":", 1)
        self.head = head
        self.idle = [socket.create_connection((host, int(port)), timeout=5) for _ in range(idle)]
        self.slow = [socket.create_connection((host, int(port)), timeout=5) for _ in range(slow)]
        self.sent = 0
        self._dribble_once()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._dribble, daemon=True)
        self._thread.start()

    def _dribble_once(self):
        if self.sent >= len(self.head):
            return
        byte = self.head[self.sent:self.sent + 1]
        for conn in self.slow:
            try:
                conn.send(byte)
            except OSError:
                pass
        self.sent += 1

    def _dribble(self):
        while not self._stop.wait(1.0):
            self._dribble_once()

    def close(self):
        self._stop.set()
        self._thread.join(5)
        for conn in self.idle + self.slow:
            conn.close()


def probe(url, context=None):
    """One /healthz probe: its status, or what went wrong."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT, context=context) as r:
            return r.status
    except Exception as e:  # a refused, reset or timed-out probe is a failed probe
        return repr(e)


class AdminFloodTest(IntegrationTest):
    def flood_then_probe(self, s, scheme, head, context=None):
        flood = Flood(s.admin, head)
        try:
            results = [probe(f"{scheme}://{s.admin}/healthz", context) for _ in range(PROBES)]
            self.assertEqual(results, [200] * PROBES, self.dump_on_failure(s))
            with urllib.request.urlopen(f"{scheme}://{s.admin}/metrics", timeout=5,
                                        context=context) as r:
                metrics = parse_metrics(r.read().decode())
            # The flood did reach the caps: the probes got in by shedding it.
            shed = metrics.get(("sluice_admin_connections_dropped_total",
                                frozenset({("reason", "shed")})), 0)
            self.assertGreater(shed, 0)
        finally:
            flood.close()
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_idle_and_slow_connections_do_not_starve_probes(self):
        emu = self.start_emulator()
        s = self.start_sluice(config(emu, os.path.join(self.dir, "out")))
        self.flood_then_probe(s, "http", b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")

    def test_tls_clients_that_never_finish_a_client_hello_do_not_starve_probes(self):
        ca = make_ca(self.dir, "test-ca")
        cert, key = make_server_cert(self.dir, "test-ca", "admin", "IP:127.0.0.1")
        emu = self.start_emulator()
        text = config(emu, os.path.join(self.dir, "out"))
        text += f"admin:\n  tls: {{cert_file: {cert}, key_file: {key}}}\n"
        s = self.start_sluice(text)
        # The slow half dribbles the first bytes of a TLS record header: a handshake that never
        # completes.
        self.flood_then_probe(s, "https", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                              ssl.create_default_context(cafile=ca))


class StderrPipeTest(IntegrationTest):
    def test_sigterm_drains_after_the_stderr_reader_went_away(self):
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        s = Sluice(SLUICE_BIN, config(emu, out), self.dir)
        self._cleanup_procs.append(s)
        read_end, write_end = os.pipe()
        s.proc = subprocess.Popen(
            [SLUICE_BIN, "--config", s.config_path, "--admin-listen", "127.0.0.1:0",
             "--log-format", "json", "--log-level", "debug"],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=write_end)
        os.close(write_end)

        # Read the log until the admin address, then go away as a restarted log collector does.
        pending, deadline = b"", time.monotonic() + 20
        while s.admin is None:
            self.assertLess(time.monotonic(), deadline, "no admin address in the log")
            if not select.select([read_end], [], [], 0.5)[0]:
                continue
            chunk = os.read(read_end, 65536)
            self.assertTrue(chunk, "sluice closed its stderr before listening")
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                record = json.loads(line)
                if record.get("component") == "admin" and "address" in record:
                    s.admin = record["address"]
        os.close(read_end)

        s.wait_ready()
        for i in range(50):
            order(emu, f"o{i}", i)
        wait_for(lambda: s.metric("sluice_events_received_total") == 50, 20, "50 events received")
        # Every record logged from here on meets a pipe without a reader.
        self.assertEqual(s.stop(), 0)
        self.assertEqual(len(read_lines(os.path.join(out, "archive.jsonl"))), 50)


if __name__ == "__main__":
    unittest.main()
