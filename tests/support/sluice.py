"""Runs the real `sluice` binary for integration tests: writes its routes file, starts it with
the admin server on a free port, reads its JSON log lines, and exposes /metrics, /readyz and
/status. Standard library only."""

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request


PROXY_VARIABLES = ("https_proxy", "http_proxy", "no_proxy", "all_proxy")


def wait_for(predicate, timeout=20.0, what="condition", interval=0.02):
    """Polls `predicate` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # a condition that cannot be read yet is simply not met
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f" (last error: {last_error!r})" if last_error else ""))


def parse_metrics(text):
    """Parses the Prometheus text format into {(name, frozenset(labels)): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if "{" in series:
            name, _, rest = series.partition("{")
            labels = {}
            for part in _split_labels(rest.rstrip("}")):
                k, _, v = part.partition("=")
                labels[k] = v.strip('"')
        else:
            name, labels = series, {}
        out[(name, frozenset(labels.items()))] = float(value)
    return out


def _split_labels(text):
    parts, current, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current:
        parts.append(current)
    return parts


class Sluice:
    def __init__(self, binary, config_text, workdir, env=None, args=(), log_level="debug"):
        self.binary = binary
        self.workdir = workdir
        self.config_path = os.path.join(workdir, "routes.yaml")
        # Hermetic: recovery's checkpoints go to the test's own directory, not /var/lib/sluice
        # where every test would read the previous one's.
        if not re.search(r"^state_dir:", config_text, re.M):
            config_text = config_text.rstrip("\n") + f"\nstate_dir: {os.path.join(workdir, 'state')}\n"
        with open(self.config_path, "w") as f:
            f.write(config_text)
        # Hermetic: a proxy set for the machine running the tests would take the loopback
        # webhooks elsewhere. Tests that want one pass it in `env`.
        inherited = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
        self.env = dict(inherited, **(env or {}))
        self.args = list(args)
        self.log_level = log_level
        self.proc = None
        self.lines = []
        self.admin = None
        self._lock = threading.Lock()

    def start(self, timeout=20.0):
        cmd = [self.binary, "--config", self.config_path, "--admin-listen", "127.0.0.1:0",
               "--log-format", "json", "--log-level", self.log_level, *self.args]
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read_stderr, daemon=True).start()
        wait_for(lambda: self.admin or self.proc.poll() is not None, timeout, "the admin address")
        if self.admin is None:
            raise AssertionError("sluice exited early:\n" + self.log_text())
        return self

    def _read_stderr(self):
        for line in self.proc.stderr:
            try:
                record = json.loads(line)
            except ValueError:
                record = {"msg": line.rstrip("\n"), "raw": True}
            with self._lock:
                self.lines.append(record)
            if record.get("component") == "admin" and "address" in record and self.admin is None:
                self.admin = record["address"]

    def log_text(self):
        with self._lock:
            return "\n".join(json.dumps(r) for r in self.lines)

    def logs(self):
        with self._lock:
            return list(self.lines)

    def get(self, path, timeout=5.0):
        """GET on the admin server: (status, body)."""
        try:
            with urllib.request.urlopen(f"http://{self.admin}{path}", timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self):
        status, body = self.get("/metrics")
        assert status == 200, body
        return parse_metrics(body)

    def metric(self, name, **labels):
        return self.metrics().get((name, frozenset(labels.items())), 0.0)

    def status(self):
        return json.loads(self.get("/status")[1])

    def ready(self):
        return self.get("/readyz")[0] == 200

    def wait_ready(self, timeout=20.0):
        wait_for(self.ready, timeout, "sluice /readyz")

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("sluice did not stop in time:\n" + self.log_text())

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
