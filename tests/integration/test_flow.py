"""emulator → sluice → files, through the real binaries: routing, permissions, dedupe,
subscribe modes, both server profiles, reconnects, heartbeat, metrics and drain."""

import os
import signal
import subprocess
import time
import unittest

from common import (IntegrationTest, PROJECT, appwrite_yaml, read_lines, wait_for, fields,
                    parse_metrics)

ROW_UPDATE = "databases.[databaseId].tables.[tableId].rows.[rowId].update"
ROW_CREATE = "databases.[databaseId].tables.[tableId].rows.[rowId].create"
ROW_DELETE = "databases.[databaseId].tables.[tableId].rows.[rowId].delete"
FILE_CREATE = "buckets.[bucketId].files.[fileId].create"
ORDERS = "databases.shop.tables.orders.rows"  # emitted by 1.8 and 1.9 alike


def config(emu, out, subscribe="url", heartbeat="2s", reconnect_max="1s", project=PROJECT):
    return appwrite_yaml(emu.endpoint, subscribe, heartbeat, reconnect_max, project) + f"""\
sinks:
  archive:
    type: file
    path: "{out}/archive.jsonl"
    fsync: batch
  big:
    type: file
    path: "{out}/big/{{route}}-{{payload.$id}}.jsonl"
    fsync: never
  uploads:
    type: file
    path: "{out}/uploads/%Y-%m-%d.jsonl"
routes:
  - name: big-orders
    channels: [{ORDERS}]
    where:
      - greaterThan: [total, 100]
    sinks: [big, archive]
  - name: all-orders
    channels: [{ORDERS}]
    events: ["databases.*.tables.*.rows.*.create", "databases.*.tables.*.rows.*.update"]
    sinks: [archive]
  - name: uploads
    channels: [buckets.invoices.files]
    sinks: [uploads]
"""


def order(emu, row_id, total, event=ROW_CREATE, read=("any",)):
    return emu.publish(event=event, params={"databaseId": "shop", "tableId": "orders",
                                            "rowId": row_id},
                       payload={"$id": row_id, "total": total, "status": "paid"},
                       read=list(read), database_type="tablesdb", project=PROJECT)


class FlowTest(IntegrationTest):
    def run_flow(self, profile, subscribe, expected_mode):
        emu = self.start_emulator(profile=profile)
        out = os.path.join(self.dir, "out")
        s = self.start_sluice(config(emu, out, subscribe=subscribe))
        s.wait_ready()
        status = s.status()
        self.assertEqual(status["upstream"]["mode"], expected_mode)

        o1 = order(emu, "o1", 150)
        o2 = order(emu, "o2", 50, event=ROW_UPDATE)
        hidden = order(emu, "o3", 500, read=("user:other",))  # the bridge user may not read it
        deleted = order(emu, "o4", 10, event=ROW_DELETE)      # no route takes deletes of small orders
        upload = emu.publish(event=FILE_CREATE, params={"bucketId": "invoices", "fileId": "f1"},
                             payload={"$id": "f1", "name": "inv.pdf", "sizeOriginal": 1024},
                             read=["any"], project=PROJECT)
        self.assertEqual(hidden["delivered"], 0)
        for answer in (o1, o2, deleted, upload):
            self.assertEqual(answer["delivered"], 1, answer)

        archive = os.path.join(out, "archive.jsonl")
        # A line is readable before the worker counts its acknowledgement: wait for both.
        wait_for(lambda: len(read_lines(archive)) >= 2
                 and s.metric("sluice_sink_events_sent_total", sink="archive") >= 2
                 and s.metric("sluice_sink_events_sent_total", sink="big") >= 1
                 and s.metric("sluice_sink_events_sent_total", sink="uploads") >= 1,
                 20, "records in files, acknowledged")
        lines = read_lines(archive)
        # Deduplicated: o1 matched two routes into `archive` and is there once.
        self.assertEqual([l["payload"]["$id"] for l in lines], ["o1", "o2"], self.dump_on_failure(s))
        self.assertEqual(lines[0]["events"], o1["events"])
        self.assertEqual(lines[0]["channels"], o1["channels"])
        self.assertEqual(lines[0]["timestamp"], o1["timestamp"])
        self.assertEqual(fields(lines[0]["payload"]), {"$id": "o1", "total": 150, "status": "paid"})
        if profile == "1.9":
            self.assertIn("subscriptions", lines[0])
        else:
            self.assertNotIn("subscriptions", lines[0])

        big = read_lines(os.path.join(out, "big", "big-orders-o1.jsonl"))
        self.assertEqual(len(big), 1)
        self.assertEqual(os.listdir(os.path.join(out, "big")), ["big-orders-o1.jsonl"])
        day = time.strftime("%Y-%m-%d", time.gmtime())
        uploads = read_lines(os.path.join(out, "uploads", f"{day}.jsonl"))
        self.assertEqual([u["payload"]["$id"] for u in uploads], ["f1"])

        m = s.metrics()
        self.assertEqual(m[("sluice_events_received_total", frozenset())], 4)
        self.assertEqual(m[("sluice_events_unmatched_total", frozenset())], 1)
        self.assertEqual(m[("sluice_events_routed_total", frozenset({("route", "big-orders")}))], 1)
        self.assertEqual(m[("sluice_events_routed_total", frozenset({("route", "all-orders")}))], 2)
        self.assertEqual(m[("sluice_sink_events_sent_total", frozenset({("sink", "archive")}))], 2)
        self.assertEqual(m[("sluice_sink_events_sent_total", frozenset({("sink", "big")}))], 1)
        self.assertEqual(m[("sluice_upstream_connected", frozenset())], 1)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_profile_19_url_subscriptions(self):
        self.run_flow("1.9", "url", "url")

    def test_profile_19_message_subscriptions(self):
        self.run_flow("1.9", "message", "message")

    def test_profile_19_auto_picks_messages(self):
        self.run_flow("1.9", "auto", "message")

    def test_profile_18_url_subscriptions(self):
        self.run_flow("1.8", "url", "url")

    def test_profile_18_auto_picks_url(self):
        self.run_flow("1.8", "auto", "url")


class ReconnectTest(IntegrationTest):
    def test_reconnects_after_server_drops_connection(self):
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        s = self.start_sluice(config(emu, out))
        s.wait_ready()
        order(emu, "before", 10)
        self.assertEqual(emu.disconnect(), 1)
        started = time.monotonic()
        # The drop is seen, then a new connection subscribes again.
        wait_for(lambda: s.metric("sluice_upstream_connects_total", result="success") >= 2, 20,
                 "a second successful connect")
        s.wait_ready()
        elapsed = time.monotonic() - started
        print(f"reconnect after /_emulator/disconnect: {elapsed * 1000:.0f} ms")
        self.assertEqual(s.metric("sluice_upstream_disconnects_total", reason="dropped"), 1,
                         self.dump_on_failure(s))
        order(emu, "after", 10)
        wait_for(lambda: len(read_lines(os.path.join(out, "archive.jsonl"))) == 2, 20,
                 "the event after the reconnect")
        self.assertGreater(s.metric("sluice_upstream_gap_seconds_total"), 0)
        self.assertEqual(s.stop(), 0)

    def test_reconnects_after_emulator_restart(self):
        emu = self.start_emulator()
        port = emu.port
        out = os.path.join(self.dir, "out")
        s = self.start_sluice(config(emu, out))
        s.wait_ready()
        emu.kill()
        wait_for(lambda: not s.ready(), 20, "/readyz to fail while the server is down")
        self.assertEqual(s.metric("sluice_upstream_connected"), 0)
        wait_for(lambda: s.metric("sluice_upstream_connects_total", result="failure") >= 1, 20,
                 "a failed connect attempt")
        emu2 = self.start_emulator(listen=f"127.0.0.1:{port}")
        s.wait_ready(timeout=30)
        order(emu2, "after-restart", 10)
        wait_for(lambda: len(read_lines(os.path.join(out, "archive.jsonl"))) == 1, 20,
                 "the event after the restart")
        self.assertEqual(s.stop(), 0)

    def test_silent_server_is_detected_by_heartbeat(self):
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        s = self.start_sluice(config(emu, out, heartbeat="500ms"))
        s.wait_ready()
        # A stopped process keeps its sockets open but answers nothing: only the heartbeat
        # can tell the connection is dead.
        emu.process.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: s.metric("sluice_upstream_disconnects_total", reason="heartbeat") >= 1,
                     20, "a heartbeat disconnect")
            self.assertFalse(s.ready())
        finally:
            emu.process.send_signal(signal.SIGCONT)
        s.wait_ready(timeout=30)
        self.assertEqual(s.stop(), 0)

    def test_unknown_project_is_a_configuration_problem(self):
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        s = self.start_sluice(config(emu, out, project="nope", reconnect_max="3s"))
        record = wait_for(lambda: next((r for r in s.logs() if r.get("msg") ==
                                        "configuration problem reported by the server"), None),
                          20, "the 1008 error in the log")
        self.assertEqual(record["code"], "1008")
        retry = wait_for(lambda: next((r for r in s.logs() if "retry_in_ms" in r), None), 20,
                         "the backoff line")
        # Retried at the maximum delay, not in a loop.
        self.assertEqual(retry["retry_in_ms"], "3000")
        self.assertEqual(retry["reason"], "server_error")
        self.assertFalse(s.ready())
        self.assertIn("1008", s.status()["upstream"]["last_error"])
        self.assertEqual(s.stop(), 0)


class AdminTest(IntegrationTest):
    def test_metrics_pass_promtool_and_sigterm_drains(self):
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        s = self.start_sluice(config(emu, out))
        s.wait_ready()
        for i in range(50):
            order(emu, f"o{i}", i)
        status, body = s.get("/metrics")
        self.assertEqual(status, 200)
        check = subprocess.run(["promtool", "check", "metrics"], input=body, text=True,
                               capture_output=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        for name in ("sluice_upstream_connected", "sluice_build_info", "process_open_fds",
                     "sluice_sink_queue_events", "sluice_sink_delivery_seconds_bucket"):
            self.assertIn(name, body)
        self.assertEqual(s.get("/healthz")[0], 200)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))
        # Everything the daemon had received was delivered before it exited.
        self.assertEqual(len(read_lines(os.path.join(out, "archive.jsonl"))), 50)


if __name__ == "__main__":
    unittest.main()
