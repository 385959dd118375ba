"""The operator tools against real peers: `sluice replay` re-sends a dead-letter file that a
running sluice wrote to the webhook receiver and to the mock Kafka broker, and `sluice test
--capture` turns those dead letters into route test cases that pass."""

import json
import os
import pty
import re
import signal
import subprocess
import sys
import unittest

from common import SLUICE_BIN, IntegrationTest, appwrite_yaml, read_lines, wait_for
from webhook_receiver import Receiver

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import kafka  # noqa: E402

BROKER_BIN = os.environ.get("KAFKA_MOCK_BROKER_BIN", "kafka-mock-broker")
ROW_CREATE = "databases.[databaseId].tables.[tableId].rows.[rowId].create"
ORDERS = "databases.shop.tables.orders.rows"


def config(endpoint, hook_url, dead, brokers="127.0.0.1:1"):
    return appwrite_yaml(endpoint, heartbeat="5s") + f"""\
sinks:
  hook:
    type: webhook
    url: {hook_url}
    timeout: 5s
    retry: {{initial: 100ms, max: 200ms, max_elapsed: 2s}}
    dead_letter: {dead}
  events:
    type: kafka
    brokers: [{brokers}]
    topic: "replayed.{{payload.$tableId}}"
    key: "{{payload.$id}}"
    retry: {{initial: 100ms, max: 200ms, max_elapsed: 5s}}
routes:
  - name: orders
    channels: [{ORDERS}]
    sinks: [hook]
"""


class ToolsTest(IntegrationTest):
    def receiver(self, **kw):
        r = Receiver(**kw)
        r.start()
        self._cleanup_procs.append(r)
        return r

    def dead_letters(self, count):
        """Runs sluice against a receiver that refuses everything (400) until `count` orders
        are dead letters; returns the configuration path, the dead-letter path and the lines."""
        refusing = self.receiver(default_status=400)
        emu = self.start_emulator()
        dead = os.path.join(self.dir, "dead.jsonl")
        s = self.start_sluice(config(emu.endpoint, refusing.url, dead))
        s.wait_ready()
        for i in range(count):
            emu.publish(event=ROW_CREATE,
                        params={"databaseId": "shop", "tableId": "orders", "rowId": f"o{i}"},
                        payload={"$id": f"o{i}", "$tableId": "orders", "total": 100 + i,
                                 "price": 1.50},
                        read=["any"], project="shop")
        lines = wait_for(lambda: len(read_lines(dead)) == count and read_lines(dead), 20,
                         "the dead letters")
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))
        return dead, lines

    def write_config(self, hook_url, dead, brokers="127.0.0.1:1", extra=""):
        path = os.path.join(self.dir, "replay.yaml")
        with open(path, "w") as f:
            f.write(config("http://127.0.0.1:1/v1", hook_url, dead, brokers) + extra)
        return path

    def sluice(self, *args):
        return subprocess.run([SLUICE_BIN, *args], capture_output=True, text=True, timeout=60,
                              cwd=self.dir)

    def test_replay_to_the_webhook_resends_byte_for_byte_and_keeps_what_fails_again(self):
        dead, lines = self.dead_letters(3)
        with open(dead, "rb") as f:
            raw = f.read().splitlines()
        # The record bytes as the daemon received them: between `"record":` and the final `}`.
        wanted = [line[line.index(b'"record":') + 9:-1] for line in raw]

        back = self.receiver()
        back.script([200, 422])  # the second one fails again; the third is delivered
        cfg = self.write_config(back.url, os.path.join(self.dir, "unused.jsonl"))

        dry = self.sluice("replay", "--config", cfg, dead, "--dry-run")
        self.assertEqual(dry.returncode, 0, dry.stderr)
        self.assertIn("dry run: 3 selected, 0 skipped, 0 unreadable", dry.stdout)
        self.assertEqual(back.snapshot(), [], "a dry run sends nothing")

        done = self.sluice("replay", "--config", cfg, dead)
        self.assertEqual(done.returncode, 4, done.stdout + done.stderr)
        failed = dead + ".failed"
        self.assertIn(f"replayed 3 of the records in {dead}: 2 delivered, 1 failed again "
                      f"(written to {failed}), 0 skipped, 0 unreadable",
                      done.stdout)
        self.assertEqual(done.stderr, "", "no progress line when stderr is not a terminal")
        got = back.wait_for_requests(3)
        # The receiver notes a request after answering it, so its order may differ from the
        # order of sending when two connections are involved.
        self.assertEqual(sorted(q.body for q in got), sorted(wanted))
        refused = [q for q in got if q.status == 422]
        self.assertEqual(len(refused), 1)
        again = read_lines(failed)
        self.assertEqual(len(again), 1)
        self.assertEqual(again[0]["record"], refused[0].json())
        self.assertEqual(again[0]["reason"], "http 422")
        self.assertEqual((again[0]["sink"], again[0]["route"]), ("hook", "orders"))
        original = [ln for ln in lines if ln["record"] == again[0]["record"]]
        self.assertEqual(again[0]["event_id"], original[0]["event_id"])
        self.assertEqual(len(read_lines(dead)), 3, "the input file is only read")

        # What failed again can itself be replayed.
        last = self.sluice("replay", "--config", cfg, failed, "--failed-to",
                           os.path.join(self.dir, "again.jsonl"))
        self.assertEqual(last.returncode, 0, last.stdout + last.stderr)
        self.assertEqual(back.wait_for_requests(4)[3].body, refused[0].body)

    def test_replay_filters_by_reason_and_time(self):
        back = self.receiver()
        dead = os.path.join(self.dir, "dead.jsonl")
        record = ('{"events":["e"],"channels":["%s"],"timestamp":"2026-03-01T12:00:00.000+00:00",'
                  '"payload":{"$id":"%s"}}')
        with open(dead, "w") as f:
            for i, (time, reason) in enumerate([("2026-03-01T10:00:00.000Z", "http 400"),
                                                ("2026-03-01T11:00:00.000Z", "http 413"),
                                                ("2026-03-02T10:00:00.000Z", "http 400")]):
                f.write(json.dumps({"time": time, "sink": "hook", "route": "orders",
                                    "event_id": "x", "reason": reason, "attempts": 1,
                                    "first_attempt": time, "last_attempt": time})[:-1]
                        + ',"record":' + record % (ORDERS, f"r{i}") + "}\n")
            f.write("not json\n")
        cfg = self.write_config(back.url, os.path.join(self.dir, "unused.jsonl"))
        done = self.sluice("replay", "--config", cfg, dead, "--reason", "400", "--until",
                           "2026-03-02")
        # The line that cannot be replayed is kept, so the run did not deliver everything.
        self.assertEqual(done.returncode, 4, done.stdout + done.stderr)
        self.assertIn("replayed 1 of the records", done.stdout)
        self.assertIn("2 skipped, 1 unreadable", done.stdout)
        self.assertIn(f"{dead}:4: not valid JSON (copied to {dead}.failed as it is)",
                      done.stderr)
        with open(dead + ".failed") as f:
            self.assertEqual(f.read(), "not json\n")
        self.assertEqual([q.json()["payload"]["$id"] for q in back.wait_for_requests(1)], ["r0"])

        # On a terminal, stderr shows the progress.
        main, side = pty.openpty()
        with os.fdopen(main, "rb", buffering=0) as terminal:
            shown = subprocess.run([SLUICE_BIN, "replay", "--config", cfg, dead, "--reason",
                                    "413", "--failed-to", os.path.join(self.dir, "f.jsonl")],
                                   stdout=subprocess.PIPE, stderr=side, timeout=60, cwd=self.dir)
            os.close(side)
            self.assertEqual(shown.returncode, 4, shown.stdout)
            seen = b""
            while True:  # to the end: reading a terminal whose other side is closed fails
                try:
                    chunk = terminal.read(4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            self.assertIn(b"\rreplaying: line 2 (1 delivered, 0 failed)", seen)
        back.wait_for_requests(2)

        bad = self.sluice("replay", "--config", cfg, dead, "--since", "yesterday")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--since \"yesterday\": expected a time", bad.stderr)
        unknown = self.sluice("replay", "--config", cfg, dead, "--sink", "hooks")
        self.assertEqual(unknown.returncode, 2)
        self.assertIn('unknown sink "hooks" (did you mean "hook"? known: hook, events)',
                      unknown.stderr)

    def test_replay_loses_nothing_and_says_when_it_cannot_keep_a_record(self):
        back = self.receiver()
        dead = os.path.join(self.dir, "dead.jsonl")
        # The daemon forwards an event whose timestamp is null (stamped with the time it
        # received it), so such a record can be a dead letter; it replays byte for byte.
        record = ('{"events":["e"],"channels":["%s"],"timestamp":null,"payload":{"$id":"n1"}}'
                  % ORDERS)
        head = ('{"time":"2026-03-01T10:00:00.000Z","sink":"hook","route":"orders",'
                '"event_id":"x","reason":"http 400","attempts":1,'
                '"first_attempt":"2026-03-01T09:59:00.000Z",'
                '"last_attempt":"2026-03-01T10:00:00.000Z","record":')
        with open(dead, "w") as f:
            f.write(head + record + "}\n")
            f.write('{"record": "not an event"}\n')
        cfg = self.write_config(back.url, os.path.join(self.dir, "unused.jsonl"))
        failed = dead + ".failed"
        with open(failed, "w") as f:
            f.write('{"torn')  # what an earlier crash mid-write left behind

        done = self.sluice("replay", "--config", cfg, dead)
        self.assertEqual(done.returncode, 4, done.stdout + done.stderr)
        self.assertIn(f"replayed 1 of the records in {dead}: 1 delivered, 0 failed again "
                      f"(written to {failed}), 0 skipped, 1 unreadable",
                      done.stdout)
        self.assertEqual([q.body for q in back.wait_for_requests(1)], [record.encode()])
        with open(failed) as f:
            self.assertEqual(f.read(), '{"torn\n{"record": "not an event"}\n',
                             "what cannot be replayed is kept as it was, on a line of its own")

        # A directory is not an empty dead-letter file.
        folder = self.sluice("replay", "--config", cfg, self.dir)
        self.assertEqual(folder.returncode, 2, folder.stdout + folder.stderr)
        self.assertIn(f"cannot read {self.dir}: Is a directory; nothing was sent", folder.stderr)
        self.assertEqual(folder.stdout, "")

        # Appending what fails again to the file being read would send it twice on a rerun.
        link = os.path.join(self.dir, "same.jsonl")
        os.symlink(dead, link)
        for target in (dead, link):
            same = self.sluice("replay", "--config", cfg, dead, "--failed-to", target)
            self.assertEqual(same.returncode, 2, same.stdout + same.stderr)
            self.assertIn(f"--failed-to {target} is {dead} itself", same.stderr)

        # When the new dead-letter file cannot be written, the input is the only copy: a
        # distinct exit code, and no "written to" for a script to trust.
        refusing = self.receiver(default_status=400)
        cfg = self.write_config(refusing.url, os.path.join(self.dir, "unused.jsonl"))
        nowhere = os.path.join(cfg, "failed.jsonl")  # under a regular file
        lost = self.sluice("replay", "--config", cfg, dead, "--failed-to", nowhere)
        self.assertEqual(lost.returncode, 3, lost.stdout + lost.stderr)
        self.assertNotIn("written to", lost.stdout)
        self.assertIn(f"1 failed again (kept only in {dead}, see above)", lost.stdout)
        self.assertIn(f"cannot write {nowhere}: ", lost.stderr)
        self.assertEqual(len(read_lines(dead)), 2, "the input file is only read")

    def orders_file(self, count):
        """A dead-letter file of `count` orders o0, o1, … for the sink `hook`, one a line."""
        dead = os.path.join(self.dir, "dead.jsonl")
        time = "2026-03-01T10:00:00.000Z"
        with open(dead, "w") as f:
            for i in range(count):
                record = ('{"events":["e"],"channels":["%s"],"timestamp":"%s",'
                          '"payload":{"$id":"o%d"}}' % (ORDERS, time, i))
                f.write(json.dumps({"time": time, "sink": "hook", "route": "orders",
                                    "event_id": f"e{i}", "reason": "http 503", "attempts": 1,
                                    "first_attempt": time, "last_attempt": time})[:-1]
                        + ',"record":' + record + "}\n")
        return dead

    def one_at_a_time(self, hook_url):
        """A configuration whose webhook sends one request at a time, so a replay is
        deterministically mid-file while a slow receiver answers."""
        path = self.write_config(hook_url, os.path.join(self.dir, "unused.jsonl"))
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("    timeout: 5s\n", "    timeout: 5s\n    concurrency: 1\n", 1))
        return path

    def start_replay(self, *args):
        proc = subprocess.Popen([SLUICE_BIN, "replay", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=self.dir)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc

    def stopped_line(self, dead, out):
        found = re.search(rf"; stopped at {re.escape(dead)}:(\d+): nothing from there on was "
                          rf"sent \(resume with --from-line (\d+)\)\n", out)
        self.assertIsNotNone(found, out)
        self.assertEqual(found[1], found[2])
        return int(found[1])

    def test_replay_stops_on_sigint_loses_nothing_and_resumes(self):
        dead = self.orders_file(12)
        everything = [f"o{i}" for i in range(12)]
        slow = self.receiver()
        # Three delivered slowly, then a refusal that asks for a 30 s pause before the retry.
        slow.script([(200, {}, 0.3)] * 3 + [(503, {"Retry-After": "30"})])
        replay = self.start_replay("--config", self.one_at_a_time(slow.url), dead)
        slow.wait_for_requests(4)
        replay.send_signal(signal.SIGINT)
        # The stop cuts the pause short: within 10 s, not 30.
        out, err = replay.communicate(timeout=10)
        self.assertEqual(replay.returncode, 5, out + err)
        line = self.stopped_line(dead, out)
        self.assertEqual(line, 5, "the record waiting for its retry is handled, the next is not")
        failed = dead + ".failed"
        self.assertIn(f"replayed 4 of the records in {dead}: 3 delivered, 1 failed again "
                      f"(written to {failed}), 0 skipped, 0 unreadable", out)
        seen = slow.snapshot()
        delivered = [q.json()["payload"]["$id"] for q in seen if q.status == 200]
        self.assertEqual(delivered, ["o0", "o1", "o2"], "the records before the stop")
        again = read_lines(failed)
        self.assertEqual([ln["record"]["payload"]["$id"] for ln in again], ["o3"])
        self.assertEqual(again[0]["reason"], "replay: stopped before a retry; http 503")
        # Nothing is lost: delivered, in the new dead-letter file, or on the lines from the
        # printed one on.
        rest = [ln["record"]["payload"]["$id"] for ln in read_lines(dead)[line - 1:]]
        self.assertEqual(delivered + ["o3"] + rest, everything)

        # Resuming from the printed line delivers the rest, and only the rest.
        back = self.receiver()
        done = self.sluice("replay", "--config", self.one_at_a_time(back.url), dead,
                           "--from-line", str(line), "--failed-to",
                           os.path.join(self.dir, "second.jsonl"))
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn(f"replayed 8 of the records in {dead}: 8 delivered, 0 failed again, "
                      "4 skipped, 0 unreadable\n", done.stdout)
        self.assertEqual([q.json()["payload"]["$id"] for q in back.wait_for_requests(8)], rest)

        bad = self.sluice("replay", "--config", self.one_at_a_time(back.url), dead,
                          "--from-line", "0")
        self.assertEqual(bad.returncode, 2)
        self.assertIn('--from-line "0": expected a line number', bad.stderr)

    def test_replay_stops_on_sigterm_after_the_request_in_flight(self):
        dead = self.orders_file(10)
        slow = self.receiver()
        slow.script([(200, {}, 0.3)] * 10)
        replay = self.start_replay("--config", self.one_at_a_time(slow.url), dead)
        slow.wait_for_requests(2)
        replay.send_signal(signal.SIGTERM)
        out, err = replay.communicate(timeout=10)
        self.assertEqual(replay.returncode, 5, out + err)
        line = self.stopped_line(dead, out)
        # The request in flight when the signal came is answered and counted; nothing after.
        # (The receiver notes a request just after answering it: wait for the last one.)
        seen = [q.json()["payload"]["$id"] for q in slow.wait_for_requests(line - 1, 10)]
        self.assertEqual(seen, [f"o{i}" for i in range(line - 1)])
        self.assertIn(f": {line - 1} delivered, 0 failed again, 0 skipped", out)
        self.assertFalse(os.path.exists(dead + ".failed"), "nothing failed")

    def test_lint_checks_the_admin_address_given_on_the_command_line(self):
        path = os.path.join(self.dir, "admin.yaml")
        with open(path, "w") as f:
            f.write(config("http://127.0.0.1:1/v1", "http://127.0.0.1:1/hook", "/tmp/dead.jsonl")
                    + "admin: {listen: 127.0.0.1:0}\n")
        quiet = self.sluice("--check-config", "--config", path, "--strict")
        self.assertNotIn("admin server", quiet.stderr)
        public = self.sluice("--check-config", "--config", path, "--strict",
                             "--admin-listen", "0.0.0.0:0")
        self.assertEqual(public.returncode, 1, public.stdout + public.stderr)
        self.assertIn('the admin server listens on "0.0.0.0" without a token', public.stderr)

    def test_replay_to_kafka_with_another_sink(self):
        dead, lines = self.dead_letters(2)
        with kafka.start(BROKER_BIN, brokers=1, partitions=1,
                         topics=["replayed.orders"]) as broker:
            cfg = self.write_config("http://127.0.0.1:1/hook",
                                    os.path.join(self.dir, "unused.jsonl"), broker.bootstrap)
            done = self.sluice("replay", "--config", cfg, dead, "--sink", "events")
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
            self.assertIn("2 delivered, 0 failed again", done.stdout)
            got = broker.consume("replayed.orders")
        self.assertEqual([m["key"] for m in got], ["o0", "o1"])
        self.assertEqual([json.loads(m["payload"]) for m in got], [ln["record"] for ln in lines])
        self.assertEqual([m["headers"]["sluice-route"] for m in got], ["orders", "orders"])
        self.assertEqual([m["headers"]["sluice-event-id"] for m in got],
                         [ln["event_id"] for ln in lines])

    def test_captured_dead_letters_become_passing_test_cases(self):
        dead, lines = self.dead_letters(2)
        cfg = self.write_config("http://127.0.0.1:1/hook", dead)
        captured = self.sluice("test", "--config", cfg, "--capture", dead)
        self.assertEqual(captured.returncode, 0, captured.stderr)
        self.assertIn('      routes: ["orders"]', captured.stdout)
        self.assertIn('        "hook": {url: "http://127.0.0.1:1/hook"}', captured.stdout)
        with open(cfg, "a") as f:
            f.write(captured.stdout)
        run = self.sluice("test", "--config", cfg)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        self.assertTrue(run.stdout.endswith("2 test cases: 2 passed, 0 failed\n"), run.stdout)

        # A route change the cases did not expect fails them, located in the file.
        with open(cfg) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace("channels: [databases.shop.tables.orders.rows]",
                                 "channels: [databases.shop.tables.refunds.rows]"))
        changed = self.sluice("test", "--config", cfg)
        self.assertEqual(changed.returncode, 1, changed.stdout + changed.stderr)
        self.assertIn("    expected: [orders]\n    actual:   []\n", changed.stdout)
        self.assertTrue(changed.stdout.endswith("2 test cases: 0 passed, 2 failed\n"))


if __name__ == "__main__":
    unittest.main()
