"""Start and drive appwrite-emulator from Python tests (stdlib only).

    with emulator.start(binary, profile="1.9", args=["--api-key", "k"]) as emu:
        user = emu.create_user("alice", email="a@example.com", password="pw")
        ...  # point sluice at emu.endpoint with user["session"]
        emu.publish(payload={"$id": "o1"}, read=["user:alice"])

The emulator prints `listening on HOST:PORT` as its first stdout line; start() waits for it
(with a deadline) and returns an Emulator bound to that address. Control calls go to the
loopback-only /_emulator/* endpoints; see `appwrite-emulator --help`.
"""

import json
import os
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

ROW_EVENT = "databases.[databaseId].tables.[tableId].rows.[rowId].update"
ROW_PARAMS = {"databaseId": "shop", "tableId": "orders", "rowId": "o1"}


class EmulatorError(RuntimeError):
    pass


class Emulator:
    """A running appwrite-emulator process. Not thread-safe; one per test."""

    def __init__(self, process, host, port, tls=False):
        self.process = process
        self.host = host
        self.port = port
        self.tls = tls
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{port}"
        self.endpoint = self.url + "/v1"  # what sluice's appwrite.endpoint takes
        self.realtime_url = ("wss" if tls else "ws") + f"://{host}:{port}/v1/realtime"
        self._context = ssl._create_unverified_context() if tls else None

    # --- HTTP -----------------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, timeout=60):
        """Returns (status, decoded JSON body or None, response headers)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._context) as r:
                text = r.read()
                return r.status, (json.loads(text) if text else None), dict(r.headers)
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, (json.loads(text) if text else None), dict(e.headers)

    def control(self, path, body=None, timeout=60):
        status, answer, _ = self.request("GET" if body is None else "POST", path, body,
                                         timeout=timeout)
        if status not in (200, 201):
            raise EmulatorError(f"{path}: {status} {answer}")
        return answer

    def publish(self, event=ROW_EVENT, params=None, payload=None, read=("any",),
                database_type="tablesdb", project=None):
        """Publishes one change; returns {"events","channels","timestamp","delivered"}."""
        return self.control("/_emulator/publish",
                            self._publish_body(event, params, payload, read, database_type,
                                               project))

    def stream(self, count, rate=0, event=ROW_EVENT, params=None, payload=None, read=("any",),
               database_type="tablesdb", project=None, timeout=600):
        """Sends `count` numbered events (payload field "seq" = 1..count) at `rate` events/s
        (0 = as fast as readers take them); returns {"sent","delivered","seconds"}."""
        body = self._publish_body(event, params, payload, read, database_type, project)
        body.update(count=count, rate=rate)
        return self.control("/_emulator/stream", body, timeout=timeout)

    def disconnect(self, user=None):
        """Drops connections with a TCP close: those of `user`, or every one if user is None.
        Returns how many were dropped."""
        body = {} if user is None else {"user": user}
        return self.control("/_emulator/disconnect", body)["disconnected"]

    def connections(self):
        """[{"id","project","user","roles","channels","subscriptions","remote"}]"""
        return self.control("/_emulator/connections")

    def wait_connections(self, predicate, timeout=10.0):
        """Polls connections() until predicate(list) (or len == predicate for an int) holds;
        returns the list. Raises EmulatorError at the deadline."""
        check = (lambda c: len(c) == predicate) if isinstance(predicate, int) else predicate
        deadline = time.monotonic() + timeout
        while True:
            current = self.connections()
            if check(current):
                return current
            if time.monotonic() > deadline:
                raise EmulatorError(f"connections did not reach the expected state: {current}")
            time.sleep(0.02)

    def create_user(self, user_id=None, email=None, password=None, teams=(), labels=(),
                    name=None, secret=None):
        """Creates (or replaces) a user; returns {"userId","session","sessionId"} where
        session is a token for cookies, X-Appwrite-Session and the authentication message."""
        body = {"teams": list(teams), "labels": list(labels)}
        for key, value in (("id", user_id), ("email", email), ("password", password),
                           ("name", name), ("secret", secret)):
            if value is not None:
                body[key] = value
        return self.control("/_emulator/users", body)

    def version(self):
        return self.control("/v1/health/version")["version"]

    @staticmethod
    def _publish_body(event, params, payload, read, database_type, project):
        body = {"event": event, "params": dict(ROW_PARAMS if params is None else params),
                "payload": payload or {}, "read": list(read), "database_type": database_type}
        if project is not None:
            body["project"] = project
        return body

    # --- process --------------------------------------------------------------------------
    def stop(self, timeout=10.0):
        """SIGTERM, then wait; returns the exit code (0 for a clean stop)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise EmulatorError("appwrite-emulator did not stop on SIGTERM")

    def kill(self):
        """SIGKILL: the server vanishes without closing anything."""
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.stop()
        if self.process.stdout:
            self.process.stdout.close()
        return False


def start(binary, profile="1.9", args=(), listen="127.0.0.1:0", stderr=None, timeout=10.0):
    """Starts appwrite-emulator and waits for its `listening on HOST:PORT` line.

    `args` are extra command-line arguments (e.g. ["--project", "shop", "--api-key", "k"]);
    TLS is detected from --tls-cert. `stderr` is passed to subprocess (default: inherited)."""
    args = list(args)
    command = [os.fspath(binary), "--listen", listen, "--profile", profile, *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    line = {}

    def read_first_line():
        line["text"] = process.stdout.readline()

    reader = threading.Thread(target=read_first_line, daemon=True)
    reader.start()
    reader.join(timeout)
    text = line.get("text", "")
    if not text.startswith("listening on "):
        if process.poll() is None:
            process.kill()
        process.wait()
        raise EmulatorError(f"appwrite-emulator did not start (first line {text!r}, "
                            f"exit code {process.returncode})")
    host, _, port = text.strip()[len("listening on "):].rpartition(":")
    return Emulator(process, host.strip("[]"), int(port), tls="--tls-cert" in args)
