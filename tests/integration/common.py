"""Shared set-up for the integration tests: the binaries under test, a temporary directory per
test, and an emulator with a fixed demo user whose session survives an emulator restart."""

import base64
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))

import emulator  # noqa: E402
from sluice import Sluice, parse_metrics, wait_for  # noqa: E402,F401

SLUICE_BIN = os.environ.get("SLUICE_BIN", "sluice")
EMULATOR_BIN = os.environ.get("EMULATOR_BIN", "appwrite-emulator")

PROJECT = "shop"
USER_ID = "bridge"
USER_SECRET = "bridge-secret"
SESSION = base64.b64encode(json.dumps({"id": USER_ID, "secret": USER_SECRET},
                                      separators=(",", ":")).encode()).decode()


def appwrite_yaml(endpoint, subscribe="message", heartbeat=None, reconnect_max="1s",
                  project=PROJECT, auth=None, reconnect_initial="100ms"):
    """The `appwrite:` section every test configuration starts with (the demo user's session
    unless `auth` is given)."""
    auth = auth or f'{{session: "{SESSION}"}}'
    beat = f"  heartbeat: {heartbeat}\n" if heartbeat else ""
    return (f"appwrite:\n  endpoint: {endpoint}\n  project: {project}\n  auth: {auth}\n"
            f"  subscribe: {subscribe}\n{beat}"
            f"  reconnect: {{initial: {reconnect_initial}, max: {reconnect_max}, multiplier: 2}}\n")


class IntegrationTest(unittest.TestCase):
    """Gives each test a scratch directory and cleans up the processes it started."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="sluice-it-")
        self.dir = self._tmp.name
        self._cleanup_procs = []

    def tearDown(self):
        for p in reversed(self._cleanup_procs):
            try:
                p.__exit__(None, None, None)
            except Exception:
                pass
        self._tmp.cleanup()

    def start_emulator(self, profile="1.9", listen="127.0.0.1:0", extra=()):
        fixtures = os.path.join(self.dir, "fixtures.json")
        with open(fixtures, "w") as f:
            json.dump({"projects": [PROJECT],
                       "users": [{"id": USER_ID, "email": "bridge@example.com",
                                  "password": "bridge-password", "secret": USER_SECRET},
                                 {"id": "other", "email": "other@example.com",
                                  "password": "other-password", "secret": "other-secret"}]}, f)
        emu = emulator.start(EMULATOR_BIN, profile=profile, listen=listen,
                             args=["--fixtures", fixtures, *extra])
        self._cleanup_procs.append(emu)
        return emu

    def start_sluice(self, config_text, env=None, args=()):
        s = Sluice(SLUICE_BIN, config_text, self.dir, env=env, args=args)
        self._cleanup_procs.append(s)
        try:
            s.start()
        except AssertionError:
            raise
        return s

    def dump_on_failure(self, s):
        """Adds the daemon's log to a failing assertion's message."""
        return "\n--- sluice log ---\n" + s.log_text()[-20000:]


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fields(payload):
    """A row's payload without the `$createdAt`/`$updatedAt` the emulator stamps on it (as
    Appwrite's models carry them)."""
    return {k: v for k, v in payload.items() if k not in ("$createdAt", "$updatedAt")}
