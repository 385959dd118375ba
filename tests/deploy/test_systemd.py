"""deploy/systemd/sluice.service: systemd-analyze verify and security, the directives the issue
asks for, and the ExecStartPre= and ExecReload= command lines run against the real binary as
systemd runs them (in order, stopping at the first that fails)."""
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from sluice import Sluice, wait_for  # noqa: E402

UNIT = ROOT / "deploy" / "systemd" / "sluice.service"
SLUICE = os.environ.get("SLUICE_BIN", "")
# The exposure reached with the hardening in the unit; raising it must be a deliberate change.
MAX_EXPOSURE = 1.1


def directives(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


@unittest.skipIf(shutil.which("systemd-analyze") is None, "systemd-analyze is not installed")
class SystemdAnalyzeTest(unittest.TestCase):
    def test_verify(self):
        # verify insists that ExecStart= binaries exist, so point the unit at the built one.
        self.assertTrue(os.access(SLUICE, os.X_OK), "SLUICE_BIN must name the built sluice")
        with tempfile.TemporaryDirectory() as tmp:
            unit = pathlib.Path(tmp) / "sluice.service"
            unit.write_text(UNIT.read_text().replace("/usr/bin/sluice", SLUICE))
            result = subprocess.run(["systemd-analyze", "verify", str(unit)],
                                    capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(result.stderr.strip(), "", "verify printed warnings")

    def test_security_exposure(self):
        result = subprocess.run(
            ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT)],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        m = re.search(r"Overall exposure level for sluice\.service: (\d+\.\d+)", result.stdout)
        self.assertIsNotNone(m, result.stdout)
        self.assertLessEqual(float(m.group(1)), MAX_EXPOSURE, result.stdout)


class UnitContentTest(unittest.TestCase):
    def setUp(self):
        self.d = directives(UNIT.read_text())

    def one(self, key):
        self.assertIn(key, self.d)
        self.assertEqual(len(self.d[key]), 1, key)
        return self.d[key][0]

    def test_lifecycle(self):
        self.assertEqual(self.one("Type"), "notify")
        self.assertRegex(self.one("WatchdogSec"), r"^\d+s$")
        # A reload checks the file with the command the start checks it with, then signals.
        self.assertEqual(self.d["ExecReload"], [self.one("ExecStartPre"), "/bin/kill -HUP $MAINPID"])
        self.assertEqual(self.one("Restart"), "on-failure")
        self.assertIn("--check-config", self.one("ExecStartPre"))
        self.assertEqual(self.one("ExecStartPre").replace(" --check-config", ""),
                         self.one("ExecStart"))
        self.assertEqual(self.one("StateDirectory"), "sluice")
        self.assertIn("StartLimitBurst", self.d)
        self.assertIn("StartLimitIntervalSec", self.d)
        # sluice drains for 20 s (daemon/app.cpp): the stop timeout must leave room for it.
        self.assertGreater(int(self.one("TimeoutStopSec").rstrip("s")), 20)

    def test_exit_codes(self):
        # 1 (invalid config), 2 (usage) and 4 (stopped, memory-buffered records lost) are not
        # restarted; none of them counts as success, so the unit shows "failed" with the status.
        self.assertEqual(self.one("RestartPreventExitStatus").split(), ["1", "2", "4"])
        self.assertNotIn("SuccessExitStatus", self.d)

    def test_sandbox(self):
        for key, value in {"DynamicUser": "yes", "StateDirectory": "sluice",
                           "ConfigurationDirectory": "sluice", "ProtectSystem": "strict",
                           "ProtectHome": "yes", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
                           "CapabilityBoundingSet": "", "MemoryDenyWriteExecute": "yes",
                           "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX"}.items():
            self.assertEqual(self.one(key), value, key)
        self.assertIn("@system-service", self.d["SystemCallFilter"])
        self.assertTrue(self.d.get("LoadCredential"))
        for cred in self.d["LoadCredential"]:
            # Relative: looked up in /etc/credstore and skipped when absent, so an unused
            # credential never blocks the start.
            name, path = cred.split(":")
            self.assertFalse(path.startswith("/"), cred)


@unittest.skipUnless(SLUICE, "SLUICE_BIN is not set")
class ExecStartPreTest(unittest.TestCase):
    """Runs ExecStartPre= as systemd would, with the example configuration as routes.yaml."""

    def run_pre(self, config_text, credentials):
        pre = directives(UNIT.read_text())["ExecStartPre"][0]
        with tempfile.TemporaryDirectory() as tmp:
            conf = pathlib.Path(tmp) / "etc"
            creds = pathlib.Path(tmp) / "creds"
            conf.mkdir()
            creds.mkdir()
            (conf / "routes.yaml").write_text(config_text)
            for name, value in credentials.items():
                (creds / name).write_text(value)
            argv = pre.replace("%E/sluice", str(conf)).split()
            argv[0] = SLUICE
            env = dict(os.environ, CREDENTIALS_DIRECTORY=str(creds), SLUICE_SESSION="s",
                       SLUICE_HOOK_SECRET="h", SLUICE_KAFKA_PASSWORD="k")
            return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)

    def test_example_config_passes(self):
        example = (ROOT / "config" / "routes.example.yaml").read_text()
        example = example.replace("${env:SLUICE_SESSION}", "${credential:session}")
        result = self.run_pre(example, {"session": "token"})
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_missing_credential_fails(self):
        example = (ROOT / "config" / "routes.example.yaml").read_text()
        example = example.replace("${env:SLUICE_SESSION}", "${credential:session}")
        result = self.run_pre(example, {})
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("credential:session", result.stderr)


# Started without network: nothing listens on port 9, the upstream keeps backing off.
RELOAD_CONFIG = """
appwrite:
  endpoint: http://127.0.0.1:9/v1
  project: shop
  auth: {session: "${credential:session}"}
  reconnect: {initial: 1s, max: 2s, multiplier: 2}
sinks:
  archive: {type: file, path: "archive/{route}.jsonl"}
routes:
  - {name: orders, channels: [databases.shop.collections.orders.documents], sinks: [archive]}
"""


@unittest.skipUnless(SLUICE, "SLUICE_BIN is not set")
class ExecReloadTest(unittest.TestCase):
    """`systemctl reload` against a running sluice: systemd runs the ExecReload= lines in order
    and fails the reload at the first that exits non-zero, so an invalid file never reaches
    the daemon."""

    def reload(self, daemon, creds):
        for line in directives(UNIT.read_text())["ExecReload"]:
            argv = shlex.split(line.replace("%E/sluice", daemon.workdir)
                               .replace("$MAINPID", str(daemon.proc.pid)))
            if argv[0] == "/usr/bin/sluice":
                argv[0] = SLUICE
            result = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                                    env=dict(os.environ, CREDENTIALS_DIRECTORY=creds))
            if result.returncode != 0:
                return result
        return None

    def test_invalid_file_fails_the_reload_and_keeps_sluice_running(self):
        with tempfile.TemporaryDirectory() as tmp:
            creds = os.path.join(tmp, "creds")
            os.mkdir(creds)
            pathlib.Path(creds, "session").write_text("token")
            daemon = Sluice(SLUICE, RELOAD_CONFIG, tmp, env={"CREDENTIALS_DIRECTORY": creds})
            with daemon:
                wait_for(lambda: daemon.get("/healthz")[0] == 200, 20, "/healthz")
                reloads = lambda result: daemon.metric("sluice_config_reloads_total", result=result)
                # A typo in a sink name: the reload fails with the located error.
                pathlib.Path(daemon.config_path).write_text(
                    RELOAD_CONFIG.replace("sinks: [archive]", "sinks: [archiv]"))
                failed = self.reload(daemon, creds)
                self.assertIsNotNone(failed, "an invalid file must fail systemctl reload")
                self.assertEqual(failed.returncode, 1)
                self.assertRegex(failed.stderr, r"routes\.yaml:\d+:\d+: routes\[0\]\.sinks\[0\]: .*archiv")
                # A valid file is checked, then signalled: sluice reloads it once, and never
                # saw the invalid one.
                pathlib.Path(daemon.config_path).write_text(RELOAD_CONFIG.replace("orders", "paid"))
                self.assertIsNone(self.reload(daemon, creds))
                wait_for(lambda: reloads("success") == 1, 20, "the reload")
                self.assertEqual(reloads("failure"), 0)
                self.assertIsNone(daemon.proc.poll())


if __name__ == "__main__":
    unittest.main(verbosity=2)
