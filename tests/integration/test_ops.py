"""What an operator reads, from the real binaries: metrics that mean one thing (events that
failed versus attempts that failed, bytes, buffer capacity, the time of a route's last event)
and agree with /status; the Grafana dashboard's queries against a live /metrics; journald
priority prefixes; `sluice --version`."""

import json
import os
import re
import signal
import subprocess
import time

from common import IntegrationTest, SLUICE_BIN, appwrite_yaml, wait_for
from test_webhook import ORDERS, SECRET, order
from webhook_receiver import Receiver

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DASHBOARD = os.path.join(REPO, "deploy", "grafana", "sluice-dashboard.json")


def webhook_flow(emu, url, dead, extra=""):
    return appwrite_yaml(emu.endpoint, heartbeat="5s") + f"""\
sinks:
  hook:
    type: webhook
    url: {url}
    signing: {{scheme: standard, secret: "{SECRET}"}}
    timeout: 5s
    retry: {{initial: 100ms, max: 200ms, max_elapsed: 5m}}
    buffer: {{max_events: 500, max_bytes: 1MiB}}
    dead_letter: {dead}
{extra}routes:
  - name: orders
    channels: [{ORDERS}]
    sinks: [hook]
"""


def raw_record(dead_letter_line):
    """The record's bytes as sluice received them: the dead-letter line ends with them."""
    return dead_letter_line[dead_letter_line.index(',"record":') + len(',"record":'):-1]


class OpsTest(IntegrationTest):
    def receiver(self):
        r = Receiver(secret=SECRET, scheme="standard").start()
        self._cleanup_procs.append(r)
        return r

    def run_flow(self):
        """One event answered 503 then 400 (dead-lettered), one delivered, one disconnect."""
        r = self.receiver()
        r.script([503, 400])
        emu = self.start_emulator()
        self.dead = os.path.join(self.dir, "dead.jsonl")
        s = self.start_sluice(webhook_flow(emu, r.url, self.dead))
        s.wait_ready()
        before = time.time()
        order(emu, "o1")
        wait_for(lambda: s.metric("sluice_sink_dead_lettered_total", sink="hook") == 1, 20,
                 "the dead letter")
        order(emu, "o2")
        delivered = r.wait_for_requests(3)[2]
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="hook") == 1, 20, "sent")
        after = time.time()
        emu.disconnect()
        wait_for(lambda: any(k[0] == "sluice_upstream_disconnects_total" for k in s.metrics()),
                 20, "a disconnect counted")
        s.wait_ready()
        return s, delivered, before, after

    def test_events_and_attempts_are_counted_apart_and_status_agrees(self):
        s, delivered, before, after = self.run_flow()
        m = s.metrics()

        def metric(name, **labels):
            return m.get((name, frozenset(labels.items())), 0.0)

        # Attempts: one per record and try. Events: once, as they leave undelivered.
        self.assertEqual(metric("sluice_sink_attempts_failed_total", sink="hook",
                                reason="http_503"), 1)
        self.assertEqual(metric("sluice_sink_attempts_failed_total", sink="hook",
                                reason="http_400"), 1)
        self.assertEqual(metric("sluice_sink_retries_total", sink="hook"), 1)
        self.assertEqual(metric("sluice_sink_events_failed_total", sink="hook",
                                reason="dead_letter"), 1)
        self.assertEqual(metric("sluice_sink_events_failed_total", sink="hook",
                                reason="dropped_full"), 0)
        events_failed = sum(v for (name, labels), v in m.items()
                            if name == "sluice_sink_events_failed_total" and
                            ("sink", "hook") in labels)
        # Bytes: the record's bytes, as delivered and as routed.
        with open(self.dead) as f:
            dead_record = raw_record(f.read().rstrip("\n"))
        self.assertEqual(metric("sluice_sink_bytes_sent_total", sink="hook"), len(delivered.body))
        self.assertEqual(metric("sluice_events_routed_bytes_total", route="orders"),
                         len(dead_record.encode()) + len(delivered.body))
        # Capacity, so that "percent full" is a division.
        self.assertEqual(metric("sluice_sink_queue_capacity_events", sink="hook"), 500)
        self.assertEqual(metric("sluice_sink_queue_capacity_bytes", sink="hook"), 1 << 20)
        last = metric("sluice_route_last_event_timestamp_seconds", route="orders")
        self.assertGreaterEqual(last, before - 1)
        self.assertLessEqual(last, after + 1)
        self.assertEqual(metric("sluice_config_last_reload_successful"), 1)

        status = next(x for x in s.status()["sinks"] if x["name"] == "hook")
        self.assertEqual(status["failed"], events_failed)
        self.assertEqual(status["failed"], 1)
        self.assertEqual(status["dead_lettered"], 1)
        self.assertEqual(status["retries"], 1)
        self.assertEqual(status["sent"], 1)
        self.assertEqual(status["sent_bytes"], len(delivered.body))
        self.assertEqual(status["capacity_events"], 500)
        self.assertEqual(status["capacity_bytes"], 1 << 20)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_every_dashboard_query_names_an_exported_metric(self):
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        exprs = []

        def walk(node):
            if isinstance(node, dict):
                if isinstance(node.get("expr"), str):
                    exprs.append(node["expr"])
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(dashboard)
        self.assertGreater(len(exprs), 20)
        s, _, _, _ = self.run_flow()
        _, text = s.get("/metrics")
        histograms = set(re.findall(r"^# TYPE (\S+) histogram$", text, re.M))
        exported = {k[0] for k in s.metrics()}
        names = set()
        for expr in exprs:
            for name in re.findall(r"\b((?:sluice|process)_[a-z0-9_]+)", expr):
                names.add(name)
        self.assertTrue(any(n.startswith("sluice_route_") for n in names))
        missing = []
        for name in sorted(names):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if name not in exported and not (base in histograms and name in {
                    base + "_bucket", base + "_sum", base + "_count"} and
                    base + "_bucket" in exported):
                missing.append(name)
        self.assertEqual(missing, [], "dashboard queries name series /metrics does not have")
        # And each labelled series the dashboard groups by exists with that label.
        for name, label in (("sluice_events_routed_total", "route"),
                            ("sluice_sink_attempts_failed_total", "reason"),
                            ("sluice_sink_http_responses_total", "class"),
                            ("sluice_upstream_disconnects_total", "reason")):
            self.assertTrue(any(k[0] == name and any(l == label for l, _ in k[1])
                                for k in s.metrics()), name)
        s.stop()

    def test_readme_metrics_table_matches_metrics(self):
        with open(os.path.join(REPO, "README.md")) as f:
            readme = f.read()
        table = readme[readme.index("| metric | type | labels | what |"):]
        table = table[:table.index("\n\n")]
        documented = set(re.findall(r"`(sluice_[a-z0-9_]+)`", table))
        s, _, _, _ = self.run_flow()
        _, text = s.get("/metrics")
        families = set(re.findall(r"^# TYPE (sluice_[a-z0-9_]+) ", text, re.M))
        self.assertEqual(families - documented, set(), "exported but not in the README table")
        # Only with admin.tls configured, and from the first undecodable frame.
        self.assertEqual(documented - families, {"sluice_admin_tls_handshake_failures_total",
                                                 "sluice_upstream_frames_invalid_total"})
        s.stop()

    def test_last_reload_successful_follows_the_file(self):
        r = self.receiver()
        emu = self.start_emulator()
        good = webhook_flow(emu, r.url, os.path.join(self.dir, "dead.jsonl"))
        s = self.start_sluice(good)
        s.wait_ready()

        def reload_with(text, result, count):
            with open(s.config_path, "w") as f:
                f.write(text)
            s.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: s.metric("sluice_config_reloads_total", result=result) == count,
                     20, f"reload {result}")

        reload_with(good.replace("sinks: [hook]", "sinks: [nowhere]"), "failure", 1)
        self.assertEqual(s.metric("sluice_config_last_reload_successful"), 0)
        self.assertIn("nowhere", s.status()["config"]["last_reload_error"])
        reload_with(good, "success", 1)
        self.assertEqual(s.metric("sluice_config_last_reload_successful"), 1)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_journald_priority_prefixes(self):
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out.jsonl")
        config = appwrite_yaml(emu.endpoint, heartbeat="5s") + f"""\
sinks:
  archive: {{type: file, path: "{out}"}}
routes:
  - name: orders
    channels: [{ORDERS}]
    sinks: [archive]
"""
        path = os.path.join(self.dir, "routes.yaml")
        with open(path, "w") as f:
            f.write(config)

        def run(stderr_path, journal_stream_of):
            """Runs sluice with stderr in a file and JOURNAL_STREAM naming `journal_stream_of`
            (a file), until it logged its admin address and a warning; returns its lines."""
            with open(stderr_path, "w") as err:
                st = os.fstat(err.fileno()) if journal_stream_of == stderr_path else \
                    os.stat(journal_stream_of)
                env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
                proc = subprocess.Popen([SLUICE_BIN, "--config", path, "--admin-listen",
                                         "127.0.0.1:0", "--log-level", "debug"],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=err, env=env)
            self._cleanup_procs.append(_Killer(proc))

            def text():
                with open(stderr_path) as f:
                    return f.read()
            wait_for(lambda: "subscribed" in text() or proc.poll() is not None, 20, "subscribed")
            emu.disconnect()  # the gap it leaves is logged as a warning
            wait_for(lambda: "events may be missing" in text() or proc.poll() is not None, 20,
                     "a warning")
            proc.terminate()
            self.assertEqual(proc.wait(20), 0, text())
            return text().splitlines()

        journal = run(os.path.join(self.dir, "journal.log"), os.path.join(self.dir, "journal.log"))
        self.assertTrue(journal)
        for line in journal:
            self.assertRegex(line, r"^<[3467]>\d{4}-\d\d-\d\dT")
        self.assertTrue(any(re.match(r"<6>\S+ info ", line) for line in journal), journal)
        self.assertTrue(any(re.match(r"<4>\S+ warn upstream: events may be missing", line)
                            for line in journal), journal)
        self.assertTrue(any(re.match(r"<7>\S+ debug ", line) for line in journal), journal)
        # The variable inherited by a process whose stderr is another file: no prefixes.
        other = run(os.path.join(self.dir, "other.log"), os.path.join(self.dir, "journal.log"))
        self.assertTrue(other)
        for line in other:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT")

    def test_version_names_the_commit_and_the_libraries(self):
        out = subprocess.run([SLUICE_BIN, "--version"], capture_output=True, text=True,
                             check=True).stdout
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^sluice \d+\.\d+\.\d+$")
        fields = dict(line.split(": ", 1) for line in lines[1:])
        self.assertEqual(list(fields), ["commit", "boost", "librdkafka", "openssl", "yaml-cpp",
                                        "prometheus-cpp", "simdjson", "fmt"])
        for name, value in fields.items():
            if name != "commit":
                self.assertRegex(value, r"\d+\.\d+", name)
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True)
        if head.returncode == 0:
            self.assertTrue(fields["commit"].startswith(head.stdout.strip()), fields["commit"])
        else:
            self.assertTrue(fields["commit"])


class _Killer:
    """Cleans up a process started without the Sluice helper."""

    def __init__(self, proc):
        self.proc = proc

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    import unittest
    unittest.main()
