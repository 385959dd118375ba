"""Gap recovery end to end (README "Gaps: what Appwrite cannot replay"): rows changed while the
realtime socket was down, or while sluice was killed, reach the sinks after the gap in their
latest state, routed by the same `where`, marked `"recovered": true`; deletes in the gap are
reported as unknowable; a change seen live and recovered carries one event id; a gap of 20,000
rows is paged while live events keep flowing, in bounded memory.

The real binaries: appwrite-emulator (its list endpoints and /_emulator/outage) and sluice with
file sinks. Row changes are published one by one through /_emulator/publish, as Appwrite would
publish them, and the emulator keeps each row's latest version for its list endpoints."""

import json
import os
import time
import unittest

from common import PROJECT, IntegrationTest, appwrite_yaml, read_lines, wait_for

DB = "shop"
TABLE = "orders"
OTHER = "payments"
CHANNEL = f"tablesdb.{DB}.tables.{TABLE}.rows"
OTHER_CHANNEL = f"tablesdb.{DB}.tables.{OTHER}.rows"
API_KEY = "recovery-test-key"


def iso(ms):
    """Appwrite's datetime text for a Unix time in milliseconds."""
    seconds, millis = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}+00:00"


class Rows:
    """Publishes row changes the way Appwrite would, with `$createdAt`/`$updatedAt` strictly
    increasing per row, and remembers each row's latest state (None once deleted)."""

    def __init__(self, emu, table=TABLE):
        self.emu = emu
        self.table = table
        self.latest = {}   # row id -> payload, or None when deleted
        self.created = {}  # row id -> $createdAt (ms)
        self._last_ms = 0

    def _now_ms(self):
        # Distinct, increasing instants: two changes of one row never share an $updatedAt.
        now = int(time.time() * 1000)
        self._last_ms = max(now, self._last_ms + 1)
        return self._last_ms

    def change(self, row_id, action, **fields):
        ms = self._now_ms()
        if action == "create":
            self.created[row_id] = ms
            payload = {"version": 1, **fields}
        else:
            previous = self.latest.get(row_id) or {}
            payload = {**{k: v for k, v in previous.items() if not k.startswith("$")},
                       **fields, "version": previous.get("version", 0) + 1}
        payload.update({"$id": row_id, "$tableId": self.table, "$databaseId": DB,
                        "$createdAt": iso(self.created.get(row_id, ms)), "$updatedAt": iso(ms),
                        "$permissions": ['read("any")']})
        self.emu.publish(event=f"databases.[databaseId].tables.[tableId].rows.[rowId].{action}",
                         params={"databaseId": DB, "tableId": self.table, "rowId": row_id},
                         payload=payload, project=PROJECT)
        self.latest[row_id] = None if action == "delete" else payload
        return payload


def config(emu, out, state, *, dedup=None, margin=None, extra_routes="", buffer=None,
           backfill_extra=""):
    backfill = f"backfill:\n  page_size: 500\n"
    if margin:
        backfill += f"  margin: {margin}\n"
    backfill += backfill_extra
    return (appwrite_yaml(emu.endpoint, reconnect_max="300ms",
                          auth=f'{{api_key: "{API_KEY}", user_id: bridge}}')
            + f"state_dir: {state}\n" + backfill
            + (f"dedup_window: {dedup}\n" if dedup is not None else "")
            + (buffer or "")
            + "sinks:\n"
              f"  all:\n    type: file\n    path: \"{out}/all.jsonl\"\n    fsync: never\n"
              f"    gap_marker: true\n"
              f"  paid:\n    type: file\n    path: \"{out}/paid.jsonl\"\n    fsync: never\n"
              "routes:\n"
              f"  - name: all\n    channels: [{CHANNEL}]\n    sinks: [all]\n"
              f"  - name: paid\n    channels: [{CHANNEL}]\n"
              "    where:\n      - equal: [status, [paid]]\n    sinks: [paid]\n"
            + extra_routes)


def records(path, kind=None):
    """The row records of a sink file (gap markers left out), optionally only the recovered or
    only the live ones."""
    out = []
    for r in read_lines(path):
        if "sluice.gap" in r.get("events", []):
            continue
        recovered = r.get("recovered") is True
        if kind == "recovered" and not recovered or kind == "live" and recovered:
            continue
        out.append(r)
    return out


def markers(path):
    return [r for r in read_lines(path) if "sluice.gap" in r.get("events", [])]


class GapRecoveryTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.out = os.path.join(self.dir, "out")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.out)
        self.emu = self.start_emulator(extra=["--api-key", API_KEY])
        self.rows = Rows(self.emu)

    def wait_live(self, s, row_id, timeout=20.0):
        wait_for(lambda: any(r["payload"]["$id"] == row_id
                             for r in records(os.path.join(self.out, "all.jsonl"))),
                 timeout, f"live row {row_id}")

    def gap_changes(self, created=300, updated=100, several=25, deleted=45, deleted_before=5):
        """500 changes during a gap: `created` new rows (every third `paid`); `updated` of them
        updated again, `several` of those twice more (flipping status); `deleted` of the new
        rows deleted; `deleted_before` rows from before the gap deleted."""
        for i in range(created):
            self.rows.change(f"g{i}", "create", status="paid" if i % 3 == 0 else "open")
        for i in range(updated):
            self.rows.change(f"g{i}", "update", note=f"u{i}")
        for i in range(several):
            self.rows.change(f"g{i}", "update", status="open")
            self.rows.change(f"g{i}", "update", status="paid")
        for i in range(created - deleted, created):
            self.rows.change(f"g{i}", "delete")
        for i in range(deleted_before):
            self.rows.change(f"live{i}", "delete")
        return created + updated + 2 * several + deleted + deleted_before

    def expected(self, where=None):
        """Row id -> latest payload of every row created or updated in the gap and not deleted."""
        return {rid: p for rid, p in self.rows.latest.items()
                if p is not None and rid.startswith("g") and (where is None or where(p))}

    def assert_recovered(self, s, started_at):
        all_path = os.path.join(self.out, "all.jsonl")
        paid_path = os.path.join(self.out, "paid.jsonl")
        want_all = self.expected()
        want_paid = self.expected(lambda p: p.get("status") == "paid")

        def latest(path):
            got = {}
            for r in records(path, "recovered"):
                got[r["payload"]["$id"]] = r["payload"]
            return got

        try:
            wait_for(lambda: latest(all_path).keys() >= want_all.keys()
                     and latest(paid_path).keys() >= want_paid.keys(), 30,
                     "every row changed in the gap, recovered")
            wait_for(lambda: markers(all_path), 10, "the gap marker")
        except AssertionError as e:
            raise AssertionError(str(e) + self.dump_on_failure(s))
        elapsed = time.monotonic() - started_at

        got_all, got_paid = latest(all_path), latest(paid_path)
        # Latest state only, nothing deleted, `where` respected.
        for rid, payload in want_all.items():
            self.assertEqual(got_all[rid]["version"], payload["version"], rid)
            self.assertEqual(got_all[rid]["$updatedAt"], payload["$updatedAt"], rid)
        self.assertEqual(set(got_all), set(want_all), "a deleted row was recovered")
        self.assertEqual(set(got_paid), set(want_paid), "the paid route's where was not applied")
        # Each recovered row once, in the shape realtime sends.
        recovered = records(all_path, "recovered")
        self.assertEqual(len(recovered), len(want_all), "a row was recovered twice")
        for r in recovered[:20]:
            self.assertIn(CHANNEL, r["channels"])
            self.assertIn("timestamp", r)
            action = "create" if r["payload"]["$createdAt"] == r["payload"]["$updatedAt"] else None
            if action:
                self.assertTrue(any(e.endswith(".create") for e in r["events"]), r["events"])

        # Deletes are reported, not invented; the marker carries the counts.
        marker = markers(all_path)[-1]["payload"]
        self.assertEqual(marker["recovered"], len(want_all), marker)
        self.assertEqual(marker["deletes"], "unknown", marker)
        m = s.metrics()
        recovered_total = sum(v for (name, _), v in m.items()
                              if name == "sluice_backfill_events_total")
        unknown_deletes = sum(v for (name, labels), v in m.items()
                              if name == "sluice_backfill_unknown_total"
                              and dict(labels).get("reason") == "deletes")
        self.assertEqual(recovered_total, len(want_all))
        self.assertGreaterEqual(unknown_deletes, 1)
        return {"recovered": len(want_all), "paid": len(want_paid), "seconds": elapsed,
                "marker": marker, "backfill_seconds": s.metric("sluice_backfill_last_duration_seconds")}

    def test_outage_rows_changed_in_the_gap_arrive_in_their_latest_state(self):
        s = self.start_sluice(config(self.emu, self.out, self.state))
        s.wait_ready()
        for i in range(5):
            self.rows.change(f"live{i}", "create", status="paid")
        self.wait_live(s, "live4")

        self.emu.control("/_emulator/outage", {"seconds": 5})
        wait_for(lambda: not s.ready(), 10, "sluice to notice the outage")
        published = self.gap_changes()
        started = time.monotonic()
        wait_for(s.ready, 30, "reconnect after the outage")
        result = self.assert_recovered(s, started)
        # The live rows from before the gap were not sent again as recovered copies.
        self.assertFalse([r for r in records(os.path.join(self.out, "all.jsonl"), "recovered")
                          if r["payload"]["$id"].startswith("live")])
        print(f"outage: published {published} changes in the gap, "
              f"{len(self.expected())} rows to recover, recovered {result['recovered']} "
              f"({result['paid']} via where), unknown: {result['marker']}, "
              f"backfill took {result['backfill_seconds']:.2f} s")

    def test_kill_9_and_restart_recovers_what_changed_while_down(self):
        cfg = config(self.emu, self.out, self.state,
                     buffer=f"buffer:\n  type: disk\n  dir: {self.state}/spool\n")
        s = self.start_sluice(cfg)
        s.wait_ready()
        for i in range(5):
            self.rows.change(f"live{i}", "create", status="paid")
        self.wait_live(s, "live4")
        # The checkpoint is saved about once a second; wait until the file holds the last live
        # row's $updatedAt (as text or as milliseconds: the format is the store's).
        checkpoint = os.path.join(self.state, "checkpoints.json")
        last = self.rows.latest["live4"]["$updatedAt"]
        last_ms = str(self.rows._last_ms)

        def saved():
            if not os.path.exists(checkpoint):
                return False
            text = open(checkpoint).read()
            return last[:23] in text or last_ms in text

        wait_for(saved, 10, "the checkpoint on disk")
        s.proc.kill()
        s.proc.wait()
        killed_at = time.monotonic()
        published = self.gap_changes()
        time.sleep(max(0.0, 5.0 - (time.monotonic() - killed_at)))  # "restart 5 s later"

        s2 = self.start_sluice(cfg)
        started = time.monotonic()
        result = self.assert_recovered(s2, started)
        print(f"crash: published {published} changes while sluice was down, "
              f"recovered {result['recovered']}, backfill took {result['backfill_seconds']:.2f} s")

    def test_a_change_seen_live_and_recovered_carries_one_id(self):
        # The file path names each record by its event id; with dedup off, a live copy and a
        # recovered copy of one change land in the same file.
        ids_sink = ("  byid:\n    type: file\n"
                    f"    path: \"{self.out}/ids/{{event_id}}.jsonl\"\n    fsync: never\n")
        route = f"  - name: byid\n    channels: [{CHANNEL}]\n    sinks: [byid]\n"
        cfg = config(self.emu, self.out, self.state, dedup=0, margin="1h",
                     extra_routes=route).replace("routes:\n", ids_sink + "routes:\n")
        s = self.start_sluice(cfg)
        s.wait_ready()
        self.rows.change("d1", "create", status="open")
        self.rows.change("d1", "update", status="paid")
        # A later row: the checkpoint moves to it (and skips it by id), so d1's update is one
        # the backfill's margin lists again, as after a crash before a checkpoint save.
        self.rows.change("d2", "create", status="open")
        self.wait_live(s, "d2")
        wait_for(lambda: len(records(os.path.join(self.out, "all.jsonl"))) >= 3, 10, "all three")

        self.emu.control("/_emulator/outage", {"seconds": 1})
        wait_for(lambda: not s.ready(), 10, "the outage")
        wait_for(s.ready, 20, "reconnect")
        ids_dir = os.path.join(self.out, "ids")

        def pairs():
            found = {}
            for name in os.listdir(ids_dir):
                found[name] = read_lines(os.path.join(ids_dir, name))
            return found

        # The margin of 1 h reaches back over d1's last change: it is listed again.
        wait_for(lambda: any(any(r.get("recovered") for r in rs) for rs in pairs().values()),
                 20, "the recovered copy" + self.dump_on_failure(s))
        files = pairs()
        recovered_files = [n for n, rs in files.items() if any(r.get("recovered") for r in rs)]
        self.assertEqual(len(recovered_files), 1, files)
        same = files[recovered_files[0]]
        live = [r for r in same if not r.get("recovered")]
        self.assertEqual(len(live), 1, f"the live update and its recovered copy differ: {files}")
        self.assertEqual(live[0]["payload"]["$updatedAt"],
                         [r for r in same if r.get("recovered")][0]["payload"]["$updatedAt"])
        # d1's create and d2 have ids of their own, each delivered once.
        self.assertEqual(len(files), 3, files)
        self.assertEqual(sorted(len(rs) for rs in files.values()), [1, 1, 2], files)

    def test_dedup_window_drops_the_recovered_copy_of_a_live_change(self):
        s = self.start_sluice(config(self.emu, self.out, self.state, margin="1h"))
        s.wait_ready()
        self.rows.change("d2", "create", status="paid")
        self.rows.change("d3", "create", status="paid")  # the checkpoint moves past d2
        self.wait_live(s, "d3")
        self.emu.control("/_emulator/outage", {"seconds": 1})
        wait_for(lambda: not s.ready(), 10, "the outage")
        wait_for(s.ready, 20, "reconnect")
        wait_for(lambda: markers(os.path.join(self.out, "all.jsonl")), 20,
                 "the backfill to finish" + self.dump_on_failure(s))
        wait_for(lambda: s.metric("sluice_events_deduplicated_total") >= 1, 10,
                 "the duplicate to be counted" + self.dump_on_failure(s))
        rows = records(os.path.join(self.out, "all.jsonl"))
        self.assertEqual([r["payload"]["$id"] for r in rows], ["d2", "d3"], rows)

    def test_large_gap_is_paged_while_live_events_flow(self):
        n = 20000
        live_route = (f"  - name: live\n    channels: [{OTHER_CHANNEL}]\n    sinks: [live]\n")
        cfg = config(self.emu, self.out, self.state, extra_routes=live_route).replace(
            "routes:\n",
            f"  live:\n    type: file\n    path: \"{self.out}/live.jsonl\"\n    fsync: never\n"
            "routes:\n")
        # ASan's quarantine holds freed memory back on purpose; without it RSS shows what
        # sluice keeps.
        s = self.start_sluice(cfg, env={"ASAN_OPTIONS": "quarantine_size_mb=0"})
        s.wait_ready()
        self.rows.change("first", "create", status="open")
        self.wait_live(s, "first")
        rss_before = s.metric("process_resident_memory_bytes")

        self.emu.control("/_emulator/outage", {"seconds": 3})
        wait_for(lambda: not s.ready(), 10, "the outage")
        # 20,000 distinct rows in one request: the emulator numbers them ({seq}).
        self.emu.control("/_emulator/stream", {
            "event": "databases.[databaseId].tables.[tableId].rows.[rowId].create",
            "params": {"databaseId": DB, "tableId": TABLE, "rowId": "big{seq}"},
            "payload": {"status": "open"}, "read": ["any"], "database_type": "tablesdb",
            "count": n, "rate": 0, "project": PROJECT}, timeout=120)
        wait_for(s.ready, 30, "reconnect")
        started = time.monotonic()
        # Live events on another table while the backfill pages.
        live = self.emu.stream(300, rate=300, event=f"databases.[databaseId].tables.[tableId]"
                               ".rows.[rowId].create",
                               params={"databaseId": DB, "tableId": OTHER, "rowId": "p{seq}"},
                               project=PROJECT)
        all_path = os.path.join(self.out, "all.jsonl")
        peak = [rss_before]

        def done():
            peak[0] = max(peak[0], s.metric("process_resident_memory_bytes"))
            return len(records(all_path, "recovered")) >= n

        wait_for(done, 120, "20,000 recovered rows" + self.dump_on_failure(s))
        seconds = time.monotonic() - started
        ids = {r["payload"]["$id"] for r in records(all_path, "recovered")}
        self.assertEqual(len(ids), n)
        wait_for(lambda: len(read_lines(os.path.join(self.out, "live.jsonl"))) >= live["sent"],
                 20, "the live events")
        self.assertEqual(live["sent"], 300)
        # Bounded: the backfill holds a page at a time, not the gap.
        self.assertLess(peak[0] - rss_before, 64 << 20, f"RSS grew {peak[0] - rss_before}")
        print(f"large gap: {n} rows recovered in {seconds:.2f} s "
              f"(the backfill itself {s.metric('sluice_backfill_last_duration_seconds'):.2f} s) "
              f"({s.metric('sluice_backfill_requests_total', result='ok'):.0f} requests), "
              f"RSS {rss_before / 1e6:.1f} → peak {peak[0] / 1e6:.1f} MB")


if __name__ == "__main__":
    unittest.main()
