"""Gap recovery's checkpoints, from the real binaries: state_dir/checkpoints.json follows what
the sinks delivered, survives a restart, and a corrupt file or a state_dir that cannot be
written is logged and counted, never fatal."""

import glob
import json
import os

from common import IntegrationTest, appwrite_yaml, read_lines, wait_for

TABLE = "databases/shop/tables/orders"


class CheckpointTest(IntegrationTest):
    def flow(self, emu, extra=""):
        self.out = os.path.join(self.dir, "out.jsonl")
        return appwrite_yaml(emu.endpoint, heartbeat="5s") + f"""\
sinks:
  archive: {{type: file, path: "{self.out}", fsync: always}}
routes:
  - name: orders
    channels: [tablesdb.shop.tables.orders.rows]
    sinks: [archive]
{extra}"""

    def publish(self, emu, row, updated_at):
        emu.publish(params={"databaseId": "shop", "tableId": "orders", "rowId": row},
                    payload={"$id": row, "$databaseId": "shop", "$tableId": "orders",
                             "$updatedAt": updated_at})

    def checkpoints(self, state_dir=None):
        path = os.path.join(state_dir or os.path.join(self.dir, "state"), "checkpoints.json")
        try:
            with open(path) as f:
                return json.load(f)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def checkpoint_of(self, table=TABLE):
        saved = self.checkpoints()
        return saved and saved["resources"].get(table)

    def test_the_checkpoint_follows_delivered_rows_and_survives_a_restart(self):
        emu = self.start_emulator()
        s = self.start_sluice(self.flow(emu))
        s.wait_ready()
        self.publish(emu, "o1", "2026-12-06T10:00:00.123+00:00")
        self.publish(emu, "o2", "2026-12-06T10:00:01.500+00:00")
        self.publish(emu, "o3", "2026-12-06T10:00:01.500+00:00")
        wait_for(lambda: len(read_lines(self.out)) == 3, 10, "three rows delivered")
        want = {"updated_at": "2026-12-06T10:00:01.500Z", "ids": ["o2", "o3"]}
        wait_for(lambda: self.checkpoint_of() == want, 10,
                 f"the checkpoint {want}, have {self.checkpoints()}")
        saved = self.checkpoints()
        self.assertEqual(saved["format"], 1)
        self.assertIsNotNone(saved["live_until"])  # subscribed: advanced every second
        self.assertGreaterEqual(s.metric("sluice_checkpoint_saves_total"), 1)
        self.assertEqual(s.metric("sluice_checkpoint_resources"), 1)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))
        # The next run starts from it.
        s = self.start_sluice(self.flow(emu))
        s.wait_ready()
        restored = wait_for(lambda: next((r for r in s.logs()
                                          if r.get("msg") == "checkpoints restored"), None),
                            10, "the restore logged")
        self.assertEqual(restored["resources"], "1")
        self.assertEqual(s.metric("sluice_checkpoint_resources"), 1)
        self.assertEqual(self.checkpoint_of(), want)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_a_corrupt_file_is_moved_aside_and_counted(self):
        state = os.path.join(self.dir, "state")
        os.makedirs(state)
        garbage = b'{"format":1,"resources":{"databases/shop/tab'  # torn
        with open(os.path.join(state, "checkpoints.json"), "wb") as f:
            f.write(garbage)
        emu = self.start_emulator()
        s = self.start_sluice(self.flow(emu))
        s.wait_ready()
        self.assertEqual(s.metric("sluice_checkpoint_errors_total", op="load"), 1)
        warned = [r for r in s.logs() if r.get("level") == "warn"
                  and r.get("msg", "").startswith("the checkpoint file is unusable")]
        self.assertEqual(len(warned), 1, self.dump_on_failure(s))
        self.assertEqual(warned[0]["path"], os.path.join(state, "checkpoints.json"))
        aside = glob.glob(os.path.join(state, "checkpoints.json.corrupt-*"))
        self.assertEqual(len(aside), 1)
        with open(aside[0], "rb") as f:
            self.assertEqual(f.read(), garbage)
        # Recovery goes on without it and writes a good one.
        self.publish(emu, "o1", "2026-12-06T10:00:00.000+00:00")
        wait_for(lambda: self.checkpoint_of() is not None, 10, "a new checkpoint file")
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_a_state_dir_that_cannot_be_written_is_logged_and_counted(self):
        blocker = os.path.join(self.dir, "not-a-dir")
        with open(blocker, "w") as f:
            f.write("x")
        emu = self.start_emulator()
        s = self.start_sluice(self.flow(emu, f"state_dir: {blocker}/state\n"))
        s.wait_ready()
        self.publish(emu, "o1", "2026-12-06T10:00:00.000+00:00")
        wait_for(lambda: len(read_lines(self.out)) == 1, 10, "the row delivered all the same")
        wait_for(lambda: s.metric("sluice_checkpoint_errors_total", op="save") >= 1, 10,
                 "a failed save counted")
        self.assertTrue(any(r.get("level") == "warn" and r.get("op") == "save"
                            and r.get("path") == f"{blocker}/state/checkpoints.json"
                            for r in s.logs()), self.dump_on_failure(s))
        self.assertTrue(s.ready())
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_recovery_off_writes_nothing(self):
        emu = self.start_emulator()
        s = self.start_sluice(self.flow(emu, "backfill: {enabled: false}\n"))
        s.wait_ready()
        self.publish(emu, "o1", "2026-12-06T10:00:00.000+00:00")
        wait_for(lambda: len(read_lines(self.out)) == 1, 10, "the row delivered")
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "state")))
