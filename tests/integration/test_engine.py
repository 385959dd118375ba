"""The delivery engine against a receiver that asks for a long pause, through the real binaries:
a webhook that answers 503 with `Retry-After: 3600` must pause the sink (records stay queued),
not be sent every queued event and turn them all into dead letters."""

import os
import time
import unittest

from common import IntegrationTest, PROJECT, appwrite_yaml, read_lines, wait_for
from webhook_receiver import Receiver  # noqa: E402 (tests/support is on the path via common)

ROW_CREATE = "databases.[databaseId].tables.[tableId].rows.[rowId].create"
ORDERS = "databases.shop.tables.orders.rows"
EVENTS = 500


def config(emu, url, dead):
    # max_elapsed far below the server's wait: the wait must not dead-letter anything.
    return appwrite_yaml(emu.endpoint, heartbeat="5s") + f"""\
sinks:
  hook:
    type: webhook
    url: {url}
    timeout: 5s
    concurrency: 1
    retry: {{initial: 100ms, max: 500ms, max_elapsed: 5s}}
    dead_letter: {dead}
routes:
  - name: orders
    channels: [{ORDERS}]
    sinks: [hook]
"""


def order(emu, row_id):
    return emu.publish(event=ROW_CREATE, params={"databaseId": "shop", "tableId": "orders",
                                                 "rowId": row_id},
                       payload={"$id": row_id, "total": 1}, read=["any"], project=PROJECT)


class PauseTest(IntegrationTest):
    def test_long_retry_after_pauses_the_sink(self):
        receiver = Receiver()
        receiver.script([(503, {"Retry-After": "3600"})])
        receiver.start()
        self._cleanup_procs.append(receiver)
        emu = self.start_emulator()
        dead = os.path.join(self.dir, "dead.jsonl")
        s = self.start_sluice(config(emu, receiver.url, dead))
        s.wait_ready()

        for i in range(EVENTS):
            order(emu, f"o{i}")
        wait_for(lambda: s.metric("sluice_sink_queue_events", sink="hook") == EVENTS, 20,
                 "every event queued" + self.dump_on_failure(s))
        self.assertEqual(len(receiver.snapshot()), 1, self.dump_on_failure(s))
        self.assertEqual(s.metric("sluice_sink_dead_lettered_total", sink="hook"), 0)
        self.assertEqual(s.metric("sluice_sink_events_sent_total", sink="hook"), 0)
        self.assertEqual(read_lines(dead), [])
        hook = next(k for k in s.status()["sinks"] if k["name"] == "hook")
        self.assertTrue(hook["paused"], hook)
        until = time.mktime(time.strptime(hook["paused_until"], "%Y-%m-%dT%H:%M:%SZ"))
        until -= time.timezone  # the string is UTC; mktime read it as local time
        self.assertGreater(until, time.time() + 3000, hook)
        self.assertTrue(any(r.get("msg", "").startswith("paused at the receiver's request")
                            and r.get("sink") == "hook" for r in s.logs()),
                        self.dump_on_failure(s))

        # SIGTERM: the pause outlasts the drain, so it ends at once; the memory buffer cannot
        # keep the records, which the log counts and the exit status reports (4).
        self.assertEqual(s.stop(), 4, self.dump_on_failure(s))
        self.assertEqual(len(receiver.snapshot()), 1)
        self.assertTrue(any(r.get("msg") == "stopped with undelivered records"
                            and r.get("sink") == "hook" and r.get("records") == str(EVENTS)
                            for r in s.logs()), self.dump_on_failure(s))


if __name__ == "__main__":
    unittest.main()
