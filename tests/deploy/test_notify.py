"""The real sluice under a stand-in service manager: NOTIFY_SOCKET is a datagram socket this
test listens on, as systemd's is for a Type=notify unit with WatchdogSec=. Checks READY=1 once
the admin server answers, WATCHDOG=1 pings from the event loop, RELOADING=1 then READY=1 on
SIGHUP, and STOPPING=1 on SIGTERM. (No systemd runs in the test container, so `systemd-run`
is not an option; this is what it would observe.)"""
import os
import pathlib
import signal
import socket
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
from sluice import Sluice, wait_for  # noqa: E402

SLUICE = os.environ.get("SLUICE_BIN", "")

# Nothing listens on port 9 (discard): the upstream keeps backing off, which is irrelevant to
# READY=1 — systemd is told the daemon is up once its config is loaded and the admin port is
# open, not when Appwrite answers (that is /readyz).
CONFIG = """
appwrite:
  endpoint: http://127.0.0.1:9/v1
  project: shop
  auth: {session: token}
  reconnect: {initial: 1s, max: 2s, multiplier: 2}
sinks:
  archive: {type: file, path: "archive/{route}.jsonl"}
routes:
  - {name: orders, channels: [databases.shop.collections.orders.documents], sinks: [archive]}
"""


class NotifyListener:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while not self.closed:
            try:
                data = self.sock.recv(4096)
            except (socket.timeout, OSError):
                continue
            with self.lock:
                self.messages.append(data.decode())

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def count(self, message):
        return sum(1 for m in self.snapshot() if m.split("\n")[0] == message)

    def close(self):
        self.closed = True
        self.sock.close()


@unittest.skipUnless(SLUICE, "SLUICE_BIN is not set")
class NotifyTest(unittest.TestCase):
    def test_lifecycle_messages(self):
        with tempfile.TemporaryDirectory() as tmp:
            listener = NotifyListener(os.path.join(tmp, "notify"))
            self.addCleanup(listener.close)
            env = {"NOTIFY_SOCKET": os.path.join(tmp, "notify"), "WATCHDOG_USEC": "1000000"}
            daemon = Sluice(SLUICE, CONFIG, tmp, env=env)
            with daemon:
                wait_for(lambda: listener.count("READY=1") == 1, 20, "READY=1")
                self.assertEqual(daemon.get("/healthz")[0], 200)
                # WATCHDOG_PID is unset, as for the main process of a unit: pings every 0.5 s.
                wait_for(lambda: listener.count("WATCHDOG=1") >= 2, 20, "two WATCHDOG=1")

                daemon.proc.send_signal(signal.SIGHUP)
                wait_for(lambda: listener.count("READY=1") >= 2, 20, "READY=1 after reload")
                messages = [m.split("\n")[0] for m in listener.snapshot()]
                reloading = messages.index("RELOADING=1")
                self.assertIn("READY=1", messages[reloading:])

                self.assertEqual(daemon.stop(signal.SIGTERM), 0, daemon.log_text())
            wait_for(lambda: listener.count("STOPPING=1") == 1, 5, "STOPPING=1")
            messages = [m.split("\n")[0] for m in listener.snapshot()]
            self.assertNotIn("WATCHDOG=1", messages[messages.index("STOPPING=1"):])


if __name__ == "__main__":
    unittest.main(verbosity=2)
