"""Hot reload through the real binaries: SIGHUP and --watch-config swap routes and sinks while
events flow, in both subscription modes, without losing an event of a route that stays; an
invalid file changes nothing; gap markers tell consumers about a window that may be missing."""

import os
import signal
import socket
import threading
import time
import unittest

from common import (IntegrationTest, PROJECT, SLUICE_BIN, Sluice, appwrite_yaml, read_lines,
                    wait_for)
from webhook_receiver import Receiver  # noqa: E402 (tests/support is on the path via common)

ROW_CREATE = "databases.[databaseId].tables.[tableId].rows.[rowId].create"
ORDERS = "databases.shop.tables.orders.rows"
REFUNDS = "databases.shop.tables.refunds.rows"
INVOICES = "buckets.invoices.files"
FILE_CREATE = "buckets.[bucketId].files.[fileId].create"


def config(emu, out, routes, subscribe="url", extra_sinks=""):
    return appwrite_yaml(emu.endpoint, subscribe, heartbeat="2s") + f"""\
sinks:
  keep:
    type: file
    path: "{out}/keep.jsonl"
    fsync: never
  refunds:
    type: file
    path: "{out}/refunds.jsonl"
    fsync: never
  uploads:
    type: file
    path: "{out}/uploads.jsonl"
    fsync: never
{extra_sinks}
routes:
{routes}
"""


BEFORE = f"""
  - name: orders
    channels: [{ORDERS}]
    sinks: [keep]
  - name: refunds
    channels: [{REFUNDS}]
    sinks: [refunds]
"""

# orders stays, refunds goes, uploads is new, and orders also gains a `where`-filtered copy.
AFTER = f"""
  - name: orders
    channels: [{ORDERS}]
    sinks: [keep]
  - name: big-orders
    channels: [{ORDERS}]
    where:
      - greaterThan: [seq, 0]
    sinks: [uploads]
  - name: uploads
    channels: [{INVOICES}]
    sinks: [uploads]
"""


def order(emu, seq, table="orders"):
    return emu.publish(event=ROW_CREATE,
                       params={"databaseId": "shop", "tableId": table, "rowId": f"r{seq}"},
                       payload={"$id": f"r{seq}", "seq": seq}, database_type="tablesdb",
                       project=PROJECT)


def failing_receiver(test):
    """A webhook receiver that answers 503 until its default_status is changed."""
    receiver = Receiver(default_status=503)
    receiver.start()
    test._cleanup_procs.append(receiver)
    return receiver


class SteadyPublisher:
    """Publishes order rows with increasing `seq` from a thread until stopped; remembers
    which ones the emulator delivered to at least one connection."""

    def __init__(self, emu):
        self.emu = emu
        self.delivered = []
        self.undelivered = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        seq = 0
        while not self._stop.is_set():
            seq += 1
            result = order(self.emu, seq)
            (self.delivered if result["delivered"] > 0 else self.undelivered).append(seq)
            time.sleep(0.002)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class ReloadTest(IntegrationTest):
    def rewrite(self, s, text):
        # Written beside and renamed over, as editors and configuration tools do.
        tmp = s.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, s.config_path)

    def reload_count(self, s, result):
        return s.metric("sluice_config_reloads_total", result=result)

    def check_reload_without_loss(self, subscribe):
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        s = self.start_sluice(config(emu, out, BEFORE, subscribe))
        s.wait_ready()
        with SteadyPublisher(emu) as pub:
            wait_for(lambda: len(pub.delivered) >= 50, 20, "events before the reload")
            order(emu, 1, table="refunds")
            wait_for(lambda: len(read_lines(f"{out}/refunds.jsonl")) == 1, 10, "a refund")
            self.rewrite(s, config(emu, out, AFTER, subscribe))
            s.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: self.reload_count(s, "success") == 1, 20, "the reload",
                     interval=0.05)
            mark = len(pub.delivered)
            wait_for(lambda: len(pub.delivered) >= mark + 50, 20, "events after the reload")
            emu.publish(event=FILE_CREATE, params={"bucketId": "invoices", "fileId": "f1"},
                        payload={"$id": "f1"}, database_type="", project=PROJECT)
            order(emu, 2, table="refunds")
        # Waits for the orders themselves, not for a count: the switch-over may deliver some
        # twice, and duplicates would let a count reach the total with the last order in flight.
        def missing_orders():
            seqs = {r["payload"]["seq"] for r in read_lines(f"{out}/keep.jsonl")}
            return sorted(set(pub.delivered) - seqs)
        try:
            wait_for(lambda: not missing_orders(), 20, "every order in the file")
        except AssertionError:
            pass  # reported below with the orders that are missing
        seqs = [r["payload"]["seq"] for r in read_lines(f"{out}/keep.jsonl")]
        missing = sorted(set(pub.delivered) - set(seqs))
        self.assertEqual(missing, [], "orders lost across the reload" + self.dump_on_failure(s))
        self.assertEqual(pub.undelivered, [], "sluice was not subscribed throughout")
        # The new routes work, the removed one is gone.
        uploads = read_lines(f"{out}/uploads.jsonl")
        wait_for(lambda: any(r["payload"]["$id"] == "f1"
                             for r in read_lines(f"{out}/uploads.jsonl")), 10, "the new route")
        self.assertTrue(any("seq" in r["payload"] for r in uploads), "changed route inactive")
        self.assertEqual(len(read_lines(f"{out}/refunds.jsonl")), 1, "removed route still on")
        status = s.status()
        self.assertEqual(status["config"]["reloads"], 1)
        self.assertEqual(sorted(status["upstream"]["channels"]), sorted([INVOICES, ORDERS]))
        return emu, s, len(seqs) - len(set(seqs))

    def test_url_mode_second_connection_then_switch(self):
        emu, s, duplicates = self.check_reload_without_loss("url")
        msgs = [r.get("msg") for r in s.logs()]
        self.assertIn("opening a second connection for the new subscription", msgs)
        self.assertEqual(len(emu.connections()), 1, "the old connection was not closed")
        self.assertEqual(s.metric("sluice_upstream_connected"), 1)
        self.assertEqual(s.stop(), 0)
        print(f"url mode: {duplicates} duplicate(s) across the switch-over")

    def test_message_mode_changes_subscription_in_place(self):
        emu, s, duplicates = self.check_reload_without_loss("message")
        self.assertEqual(s.metric("sluice_upstream_connects_total", result="success"), 1,
                         "message mode must not reconnect to reload")
        # The removed route's subscription is gone from the server; the new ones are there.
        [conn] = emu.connections()
        self.assertEqual(len(conn["subscriptions"]), 3, conn)
        self.assertEqual(s.stop(), 0)
        print(f"message mode: {duplicates} duplicate(s)")

    def test_invalid_file_keeps_old_routes(self):
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        good = config(emu, out, BEFORE)
        s = self.start_sluice(good)
        s.wait_ready()
        self.rewrite(s, good.replace("sinks: [keep]", "sinks: [kept]"))
        s.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.reload_count(s, "failure") == 1, 20, "the rejected reload")
        errors = [r for r in s.logs() if r.get("msg") == "reload rejected"]
        self.assertTrue(errors, self.dump_on_failure(s))
        self.assertRegex(errors[0]["error"], r"routes\.yaml:\d+:\d+: routes\[0\]\.sinks\[0\]: "
                                             r"unknown sink \"kept\"")
        self.assertIn("kept", s.status()["config"]["last_reload_error"])
        order(emu, 7)
        wait_for(lambda: len(read_lines(f"{out}/keep.jsonl")) == 1, 10, "the old route")
        self.assertTrue(s.ready())
        self.assertEqual(s.stop(), 0)

    def test_removed_sink_drains_and_kept_sink_keeps_its_queue(self):
        """A removed sink delivers what it holds before it goes; a kept one is not rebuilt.
        The removed sink is a webhook whose receiver answers 503 until after the reload, so its
        events are still queued when the reload removes it."""
        receiver = failing_receiver(self)
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        file_block = f'''  refunds:
    type: file
    path: "{out}/refunds.jsonl"
    fsync: never
'''
        hook_block = f'''  refunds:
    type: webhook
    url: {receiver.url}
    retry: {{initial: 100ms, max: 1s}}
'''
        s = self.start_sluice(config(emu, out, BEFORE).replace(file_block, hook_block))
        s.wait_ready()
        for i in range(20):
            order(emu, i + 1, table="refunds")
        wait_for(lambda: s.metric("sluice_events_routed_total", route="refunds") == 20, 10,
                 "the refunds routed")
        self.rewrite(s, config(emu, out, AFTER).replace(file_block, ""))
        s.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.reload_count(s, "success") == 1, 20, "the reload")
        self.assertEqual(s.metric("sluice_sink_events_sent_total", sink="refunds"), 0)
        receiver.default_status = 200
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="refunds") == 20, 20,
                 "the drain")
        got = [r.json()["payload"]["seq"] for r in receiver.snapshot() if r.status == 200]
        self.assertEqual(sorted(got), list(range(1, 21)))
        logs = s.logs()
        self.assertTrue(any(r.get("msg") == "draining a removed sink" and r.get("sink") ==
                            "refunds" for r in logs))
        self.assertFalse(any(r.get("msg") == "draining a removed sink" and r.get("sink") ==
                             "keep" for r in logs))
        self.assertNotIn("refunds", [x["name"] for x in s.status()["sinks"]])
        self.assertEqual(s.stop(), 0)

    def test_disk_buffer_goes_to_the_replacement_and_a_failed_reload_restores_it(self):
        """A changed sink with a disk buffer hands what it holds to its replacement. A reload
        that cannot create one of its sinks is undone: the sink stopped for its disk buffer
        comes back on its old settings, with what it holds."""
        receiver = failing_receiver(self)
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        spool = os.path.join(self.dir, "spool")
        not_a_dir = os.path.join(self.dir, "not-a-directory")
        with open(not_a_dir, "w") as f:
            f.write("")

        def hook(initial, extra=""):
            return f'''  hook:
    type: webhook
    url: {receiver.url}
    buffer: {{type: disk, dir: "{spool}"}}
    retry: {{initial: {initial}, max: 1s}}
{extra}'''
        broken = f'''  broken:
    type: file
    path: "{out}/broken.jsonl"
    buffer: {{type: disk, dir: "{not_a_dir}"}}
'''
        routes = BEFORE.replace("sinks: [keep]", "sinks: [keep, hook]")
        s = self.start_sluice(config(emu, out, routes, extra_sinks=hook("100ms")))
        s.wait_ready()
        for i in range(10):
            order(emu, i + 1)
        wait_for(lambda: s.metric("sluice_events_routed_total", route="orders") == 10, 10,
                 "the orders routed")

        # `hook` changes and stops for its buffer, then `broken` cannot open its own.
        self.rewrite(s, config(emu, out, routes, extra_sinks=hook("200ms", broken)))
        s.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.reload_count(s, "failure") == 1, 20, "the failed reload")
        self.assertIn('sink "broken"', s.status()["config"]["last_reload_error"])
        self.assertEqual([x["name"] for x in s.status()["sinks"]], ["keep", "refunds", "uploads",
                                                                     "hook"])
        order(emu, 11)
        wait_for(lambda: s.metric("sluice_events_routed_total", route="orders") == 11, 10,
                 "an order after the failed reload")

        self.rewrite(s, config(emu, out, routes, extra_sinks=hook("200ms")))
        s.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.reload_count(s, "success") == 1, 20, "the reload")
        order(emu, 12)
        wait_for(lambda: s.metric("sluice_events_routed_total", route="orders") == 12, 10,
                 "an order after the reload")
        receiver.default_status = 200
        wait_for(lambda: len({r.json()["payload"]["seq"] for r in receiver.snapshot()
                              if r.status == 200}) == 12, 20,
                 "every order delivered" + self.dump_on_failure(s))
        # Once each: neither the replacement nor the restored sink got an order twice.
        self.assertEqual(sum(1 for r in receiver.snapshot() if r.status == 200), 12)
        logs = s.logs()
        self.assertFalse(any(r.get("msg") == "draining a removed sink" and r.get("sink") ==
                             "hook" for r in logs), "the buffer was drained, not handed over")
        self.assertEqual(s.stop(), 0)

    def test_watch_config_follows_a_configmap_symlink_swap(self):
        """Kubernetes mounts a ConfigMap as DIR/routes.yaml → ..data/routes.yaml with ..data →
        a timestamped directory, and updates it by renaming a new ..data symlink over the old."""
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        mount = os.path.join(self.dir, "mount")
        os.makedirs(os.path.join(mount, "v1"))
        with open(os.path.join(mount, "v1", "routes.yaml"), "w") as f:
            f.write(config(emu, out, BEFORE))
        os.symlink("v1", os.path.join(mount, "..data"))
        os.symlink("..data/routes.yaml", os.path.join(mount, "routes.yaml"))
        s = Sluice(SLUICE_BIN, "# unused: the mounted file below is the configuration\n",
                   self.dir, args=("--watch-config",))
        s.config_path = os.path.join(mount, "routes.yaml")
        self._cleanup_procs.append(s)
        s.start()
        s.wait_ready()
        os.makedirs(os.path.join(mount, "v2"))
        with open(os.path.join(mount, "v2", "routes.yaml"), "w") as f:
            f.write(config(emu, out, AFTER))
        os.symlink("v2", os.path.join(mount, "..data_tmp"))
        os.replace(os.path.join(mount, "..data_tmp"), os.path.join(mount, "..data"))
        wait_for(lambda: self.reload_count(s, "success") == 1, 20, "the reload on file change")
        wait_for(lambda: INVOICES in s.status()["upstream"]["channels"], 20, "new channels")
        emu.publish(event=FILE_CREATE, params={"bucketId": "invoices", "fileId": "f9"},
                    payload={"$id": "f9"}, database_type="", project=PROJECT)
        wait_for(lambda: len(read_lines(f"{out}/uploads.jsonl")) == 1, 10, "the new route")
        self.assertEqual(s.stop(), 0)


class ShutdownTest(IntegrationTest):
    def test_sigterm_while_a_full_sink_blocks_the_socket(self):
        """A `block` sink whose endpoint keeps failing stops the socket being read; SIGTERM
        must still stop the client and end within the drain grace, keeping exit code 0."""
        receiver = failing_receiver(self)
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        hook = f'''  hook:
    type: webhook
    url: {receiver.url}
    retry: {{initial: 100ms, max: 200ms}}
    buffer: {{max_events: 2, when_full: block}}
'''
        routes = f"""
  - name: orders
    channels: [{ORDERS}]
    sinks: [hook]
"""
        s = self.start_sluice(config(emu, out, routes, extra_sinks=hook))
        s.wait_ready()
        for i in range(6):
            order(emu, i + 1)
        wait_for(lambda: s.metric("sluice_events_routed_total", route="orders") == 3, 10,
                 "the buffer full and the reader blocked")
        # The memory buffer cannot keep what is left: lost, so the exit status is 4.
        self.assertEqual(s.stop(timeout=40), 4, self.dump_on_failure(s))
        self.assertTrue(any(r.get("msg") == "stopped with undelivered records" for r in s.logs()),
                        self.dump_on_failure(s))

    def test_sigterm_with_a_receiver_that_never_answers_is_bounded(self):
        """A receiver accepts the connection, reads the request and never answers; the sink's
        timeout (60 s) is longer than the drain. SIGTERM must still end the process within the
        drain's bound, naming the sink and what it could not deliver."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        self.addCleanup(listener.close)
        held = []
        got_request = threading.Event()

        def accept():
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                held.append(conn)
                if conn.recv(65536):
                    got_request.set()

        threading.Thread(target=accept, daemon=True).start()
        self.addCleanup(lambda: [c.close() for c in held])
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        hook = f'''  hook:
    type: webhook
    url: http://127.0.0.1:{listener.getsockname()[1]}/hook
    timeout: 60s
    concurrency: 1
'''
        routes = f"""
  - name: orders
    channels: [{ORDERS}]
    sinks: [hook]
"""
        s = self.start_sluice(config(emu, out, routes, extra_sinks=hook))
        s.wait_ready()
        for i in range(3):
            order(emu, i + 1)
        self.assertTrue(got_request.wait(20), "the request reached the receiver")
        wait_for(lambda: s.metric("sluice_sink_queue_events", sink="hook") == 3, 10,
                 "three records queued, one in flight")
        started = time.monotonic()
        code = s.stop(timeout=60)
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 30, self.dump_on_failure(s))
        self.assertEqual(code, 4, self.dump_on_failure(s))
        self.assertTrue(any(r.get("sink") == "hook" and r.get("records") == "3" and
                            r.get("lost") == "3" for r in s.logs()), self.dump_on_failure(s))


class GapMarkerTest(IntegrationTest):
    def test_marker_after_a_disconnection(self):
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        text = config(emu, out, BEFORE).replace(
            f'    path: "{out}/keep.jsonl"', f'    path: "{out}/keep.jsonl"\n    gap_marker: true')
        # Without recovery the marker is written at once (test_recovery covers it after a backfill).
        text += "backfill:\n  enabled: false\n"
        s = self.start_sluice(text)
        s.wait_ready()
        order(emu, 1)
        emu.disconnect()
        wait_for(lambda: s.metric("sluice_upstream_disconnects_total", reason="dropped") == 1,
                 10, "the disconnection")
        s.wait_ready()
        order(emu, 2)
        wait_for(lambda: len(read_lines(f"{out}/keep.jsonl")) == 3, 10, "two orders and a marker")
        lines = read_lines(f"{out}/keep.jsonl")
        markers = [r for r in lines if r["events"] == ["sluice.gap"]]
        self.assertEqual(len(markers), 1, lines)
        m = markers[0]["payload"]
        self.assertEqual((m["project"], m["route"]), (PROJECT, "orders"))
        self.assertGreater(m["seconds"], 0)
        self.assertLess(m["from"], m["to"])
        self.assertEqual((m["recovered"], m["deletes"]), (0, "unknown"))
        self.assertAlmostEqual(m["not_fetched_seconds"], m["seconds"], places=2)
        self.assertEqual(m["not_covered"], [ORDERS])
        # The marker sits between the two orders; the sink without gap_marker got none.
        self.assertEqual([("seq" in r["payload"]) for r in lines], [True, False, True])
        self.assertGreater(s.metric("sluice_upstream_gap_seconds_total"), 0)
        self.assertEqual(read_lines(f"{out}/refunds.jsonl"), [])
        self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    unittest.main()
