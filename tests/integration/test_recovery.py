"""Gap recovery through the real binaries: while the emulator holds realtime down, rows are
created, updated and deleted; after the reconnect sluice lists them from the REST API and
delivers each created or updated row once, in its latest state, marked as recovered, through
the same routes and `where`; the gap marker counts what was recovered."""

import datetime
import os
import unittest

from common import IntegrationTest, PROJECT, appwrite_yaml, read_lines, wait_for

ROW = "databases.[databaseId].tables.[tableId].rows.[rowId].{}"
ORDERS = "tablesdb.shop.tables.orders.rows"


def config(emu, out, state):
    return appwrite_yaml(emu.endpoint, "message", "2s", "300ms") + f"""\
state_dir: "{state}"
backfill:
  rate: 50
  page_size: 7
sinks:
  all:
    type: file
    path: "{out}/all.jsonl"
    gap_marker: true
  big:
    type: file
    path: "{out}/big.jsonl"
routes:
  - name: all-orders
    channels: [{ORDERS}]
    sinks: [all]
  - name: big-orders
    channels: [{ORDERS}]
    where:
      - greaterThan: [total, 100]
    sinks: [big]
"""


class Clock:
    """Appwrite-style timestamps, each one millisecond after the last."""

    def __init__(self):
        self.at = datetime.datetime.now(datetime.timezone.utc)

    def next(self):
        self.at = max(self.at + datetime.timedelta(milliseconds=1),
                      datetime.datetime.now(datetime.timezone.utc))
        return self.at.isoformat(timespec="milliseconds")


class RecoveryTest(IntegrationTest):
    def test_rows_changed_in_an_outage_arrive_once_recovered_in_their_latest_state(self):
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        state = os.path.join(self.dir, "state")
        s = self.start_sluice(config(emu, out, state))
        s.wait_ready()
        clock = Clock()
        created = {}

        def change(row_id, action, total):
            now = clock.next()
            if action == "create":
                created[row_id] = now
            payload = {"$id": row_id, "total": total, "status": "paid",
                       "$createdAt": created.get(row_id, now), "$updatedAt": now}
            return emu.publish(event=ROW.format(action),
                               params={"databaseId": "shop", "tableId": "orders", "rowId": row_id},
                               payload=payload, database_type="tablesdb", project=PROJECT)

        # A live row first: delivered as usual, and not recovered again.
        self.assertEqual(change("live", "create", 500)["delivered"], 1)
        all_path = os.path.join(out, "all.jsonl")
        wait_for(lambda: len(read_lines(all_path)) == 1, what="the live row")
        # Delivered by both sinks, then one more checkpoint tick: the checkpoint records it, so
        # the backfill's margin lists it again and skips it.
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="all") == 1
                 and s.metric("sluice_sink_events_sent_total", sink="big") == 1,
                 what="the live row's acknowledgements")
        saves = s.metric("sluice_checkpoint_saves_total")
        wait_for(lambda: s.metric("sluice_checkpoint_saves_total") > saves, what="a checkpoint")

        emu.control("/_emulator/outage", {"seconds": 3})
        emu.wait_connections(0)
        latest = {}
        for i in range(30):
            row = f"r{i:02}"
            self.assertEqual(change(row, "create", i * 10)["delivered"], 0)
            latest[row] = i * 10
        for i in range(0, 30, 3):  # updated, some twice
            row = f"r{i:02}"
            change(row, "update", 1000 + i)
            latest[row] = 1000 + i
            if i % 2 == 0:
                change(row, "update", 2000 + i)
                latest[row] = 2000 + i
        for i in range(1, 30, 6):  # created, then deleted in the gap: cannot be listed
            change(f"r{i:02}", "delete", 0)
            del latest[f"r{i:02}"]
        changes = 30 + 10 + 5 + 5
        self.assertEqual(changes, 50)

        def recovered(path):
            return [e for e in read_lines(path) if e.get("recovered") is True]

        wait_for(lambda: len(recovered(all_path)) >= len(latest), timeout=20,
                 what="the recovered rows")
        marker = wait_for(lambda: [e for e in read_lines(all_path)
                                   if e["events"] == ["sluice.gap"]],
                          timeout=10, what="the gap marker")
        got = recovered(all_path)
        ids = [e["payload"]["$id"] for e in got]
        self.assertEqual(sorted(ids), sorted(latest), self.dump_on_failure(s))  # each once
        for e in got:
            row = e["payload"]["$id"]
            self.assertEqual(e["payload"]["total"], latest[row])
            self.assertEqual(e["timestamp"], e["payload"]["$updatedAt"])
            self.assertIn(ORDERS, e["channels"])
            self.assertTrue(e["events"][0].endswith(".create"), e["events"])  # created in the gap
        # The live row is not recovered again, and nothing else is written twice.
        lines = read_lines(all_path)
        self.assertEqual([e["payload"]["$id"] for e in lines
                          if e["events"] != ["sluice.gap"]].count("live"), 1)

        # `where` decides for recovered events as for live ones.
        big = [e["payload"]["$id"] for e in recovered(os.path.join(out, "big.jsonl"))]
        self.assertEqual(sorted(big), sorted(r for r, total in latest.items() if total > 100))

        payload = marker[0]["payload"]
        self.assertEqual(payload["route"], "all-orders")
        self.assertEqual(payload["recovered"], len(latest))
        self.assertEqual(payload["deletes"], "unknown")
        self.assertEqual(payload["not_fetched_seconds"], 0)
        self.assertEqual(payload["not_covered"], [])
        self.assertGreater(payload["seconds"], 0)

        status = s.status()["recovery"]
        self.assertFalse(status["running"])
        self.assertEqual(status["last_run"]["recovered"], len(latest))
        self.assertEqual(status["last_run"]["unknown"]["deletes"], 1)
        self.assertEqual(s.metric("sluice_backfill_events_total"), len(latest))
        self.assertEqual(s.metric("sluice_backfill_runs_total", result="ok"), 1)
        self.assertEqual(s.metric("sluice_backfill_unknown_total", reason="deletes"), 1)
        self.assertGreaterEqual(s.metric("sluice_backfill_requests_total", result="ok"), 4)
        self.assertEqual(s.metric("sluice_backfill_running"), 0)


if __name__ == "__main__":
    unittest.main()
