"""emulator → sluice → Kafka, through the real binaries: librdkafka's mock cluster in its own
process (kafka-mock-broker, 3 brokers) and kcat to read the topics back. Every routed event
arrives exactly once on the right topic and partition with the right key and headers; a broker
outage, injected transient errors and a full producer queue lose nothing; permanent errors go to
the dead-letter file; SIGTERM flushes what is queued."""

import json
import os
import threading
import unittest

from common import (IntegrationTest, PROJECT, SLUICE_BIN, appwrite_yaml, read_lines,
                    wait_for)

import kafka  # noqa: E402 (tests/support, put on the path by common)

BROKER_BIN = os.environ.get("KAFKA_MOCK_BROKER_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(SLUICE_BIN)), "kafka-mock-broker")

ROW_CREATE = "databases.[databaseId].tables.[tableId].rows.[rowId].create"
ORDERS = "databases.shop.tables.orders.rows"
PARTITIONS = 4


def config(emu, broker, key="{payload.$id}", properties=None, dead_letter=None, extra_sinks="",
           extra_route_sinks=""):
    props = ""
    if properties:
        props = "    properties: {" + ", ".join(f'{k}: "{v}"' for k, v in properties.items()) + "}\n"
    dl = f"    dead_letter: {dead_letter}\n" if dead_letter else ""
    return appwrite_yaml(emu.endpoint) + f"""\
sinks:
  orders:
    type: kafka
    brokers: [{", ".join(broker.brokers)}]
    topic: "appwrite.{{project}}.{{route}}"
    key: "{key}"
    headers: {{x-status: "{{payload.status}}"}}
    retry: {{initial: 50ms, max: 500ms, max_elapsed: 5m}}
{props}{dl}{extra_sinks}
routes:
  - name: big
    channels: [{ORDERS}]
    where:
      - greaterThan: [total, 100]
    sinks: [orders{extra_route_sinks}]
  - name: small
    channels: [{ORDERS}]
    where:
      - lessThanEqual: [total, 100]
    sinks: [orders{extra_route_sinks}]
"""


def order(emu, row_id, total, pad=None):
    payload = {"$id": row_id, "total": total, "status": "paid"}
    if pad:
        payload["pad"] = pad
    return emu.publish(event=ROW_CREATE, params={"databaseId": "shop", "tableId": "orders",
                                                 "rowId": row_id},
                       payload=payload, read=["any"], database_type="tablesdb", project=PROJECT)


class KafkaTest(IntegrationTest):
    def start_broker(self, topics=("appwrite.shop.big", "appwrite.shop.small")):
        broker = kafka.start(BROKER_BIN, brokers=3, partitions=PARTITIONS, topics=topics)
        self._cleanup_procs.append(broker)
        return broker

    def sent(self, s):
        return s.metric("sluice_sink_events_sent_total", sink="orders")

    def stream_in_background(self, emu, count, rate):
        """Runs emu.stream() on a thread; returns the thread (join it to know it finished)."""
        result = {}

        def run():
            result.update(emu.stream(count, rate=rate, event=ROW_CREATE,
                                     params={"databaseId": "shop", "tableId": "orders",
                                             "rowId": "s"},
                                     payload={"$id": "s", "total": 5, "status": "paid"},
                                     project=PROJECT))
        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.result = result
        return t

    def assert_seqs_exactly_once(self, messages, count, s):
        seqs = [json.loads(m["payload"])["payload"]["seq"] for m in messages]
        missing = sorted(set(range(1, count + 1)) - set(seqs))
        dups = sorted({x for x in seqs if seqs.count(x) > 1})
        self.assertEqual((missing[:20], dups[:20], len(seqs)), ([], [], count),
                         self.dump_on_failure(s))

    def test_every_routed_event_arrives_once_with_key_and_headers(self):
        broker = self.start_broker()
        emu = self.start_emulator()
        s = self.start_sluice(config(emu, broker))
        s.wait_ready()
        published = {}
        for i in range(24):
            row = f"o{i}"
            published[row] = order(emu, row, 50 + 10 * i)
            self.assertEqual(published[row]["delivered"], 1)
        wait_for(lambda: self.sent(s) >= 24, 30, "24 events sent to kafka")

        seen = {}
        for route in ("big", "small"):
            for m in broker.consume(f"appwrite.{PROJECT}.{route}"):
                record = json.loads(m["payload"])
                row = record["payload"]["$id"]
                self.assertNotIn(row, seen, "delivered twice: " + row)
                seen[row] = (route, m, record)
        self.assertEqual(sorted(seen), sorted(published), self.dump_on_failure(s))

        ids = set()
        for row, (route, m, record) in seen.items():
            total = record["payload"]["total"]
            self.assertEqual(route, "big" if total > 100 else "small")
            self.assertEqual(m["key"], row)
            # Java's default partitioner would have picked the same partition.
            self.assertEqual(m["partition"], kafka.java_partition(row, PARTITIONS), row)
            p = published[row]
            self.assertEqual(record["events"], p["events"])
            self.assertEqual(record["channels"], p["channels"])
            self.assertEqual(record["timestamp"], p["timestamp"])
            h = m["headers"]
            self.assertRegex(h["sluice-event-id"], r"^[0-9a-f]{32}$")
            ids.add(h["sluice-event-id"])
            self.assertEqual(h["sluice-event"], p["events"][0])
            self.assertEqual(h["sluice-route"], route)
            self.assertEqual(h["appwrite-project"], PROJECT)
            self.assertEqual(h["appwrite-timestamp"], p["timestamp"])
            self.assertEqual(h["x-status"], "paid")
        self.assertEqual(len(ids), 24)
        self.assertEqual(s.metric("sluice_sink_events_failed_total", sink="orders",
                                  reason="dropped_full"), 0)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_value_is_the_record_byte_for_byte(self):
        broker = self.start_broker()
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        archive = f"""  archive:
    type: file
    path: "{out}/archive.jsonl"
"""
        s = self.start_sluice(config(emu, broker, extra_sinks=archive,
                                     extra_route_sinks=", archive"))
        s.wait_ready()
        order(emu, "a1", 500)
        # The file exists before its line is written: wait for the whole line.
        wait_for(lambda: self.sent(s) >= 1 and os.path.exists(f"{out}/archive.jsonl")
                 and open(f"{out}/archive.jsonl").read().endswith("\n"), 30,
                 "the event in kafka and the file")
        with open(f"{out}/archive.jsonl") as f:
            line = f.read().rstrip("\n")
        [m] = broker.consume(f"appwrite.{PROJECT}.big")
        self.assertEqual(m["payload"], line)
        self.assertEqual(s.stop(), 0)

    def test_brokers_down_mid_stream_lose_nothing(self):
        broker = self.start_broker(topics=("appwrite.shop.small",))
        emu = self.start_emulator()
        s = self.start_sluice(config(emu, broker, key="{payload.seq}"))
        s.wait_ready()
        count = 400
        stream = self.stream_in_background(emu, count, rate=100)
        wait_for(lambda: self.sent(s) >= 50, 30, "the first events delivered")
        for b in (1, 2, 3):
            broker.down(b)
        try:
            # The rest of the stream is sent while no broker answers.
            stream.join(60)
            self.assertFalse(stream.is_alive())
            self.assertLess(self.sent(s), count)
        finally:
            for b in (1, 2, 3):
                broker.up(b)
        wait_for(lambda: self.sent(s) >= count, 60, "every event delivered after the outage")
        self.assert_seqs_exactly_once(broker.consume(f"appwrite.{PROJECT}.small"), count, s)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_injected_transient_errors_are_retried(self):
        broker = self.start_broker(topics=("appwrite.shop.small",))
        emu = self.start_emulator()
        s = self.start_sluice(config(emu, broker, key="{payload.seq}"))
        s.wait_ready()
        broker.errors("Produce", 3, "NOT_LEADER_FOR_PARTITION")
        broker.errors("Produce", 2, "NOT_ENOUGH_REPLICAS")
        broker.errors("Produce", 2, "REQUEST_TIMED_OUT")
        count = 200
        stream = self.stream_in_background(emu, count, rate=0)
        stream.join(60)
        wait_for(lambda: self.sent(s) >= count, 60, "every event delivered")
        self.assert_seqs_exactly_once(broker.consume(f"appwrite.{PROJECT}.small"), count, s)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_full_producer_queue_is_retried_by_the_engine(self):
        broker = self.start_broker(topics=("appwrite.shop.small",))
        emu = self.start_emulator()
        s = self.start_sluice(config(emu, broker, key="{payload.seq}",
                                     properties={"queue.buffering.max.messages": "5",
                                                 "linger.ms": "20"}))
        s.wait_ready()
        count = 300
        stream = self.stream_in_background(emu, count, rate=0)
        stream.join(60)
        wait_for(lambda: self.sent(s) >= count, 60, "every event delivered")
        self.assertGreater(s.metric("sluice_sink_retries_total", sink="orders"), 0)
        self.assert_seqs_exactly_once(broker.consume(f"appwrite.{PROJECT}.small"), count, s)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_message_too_large_goes_to_dead_letter(self):
        broker = self.start_broker()
        emu = self.start_emulator()
        dead = os.path.join(self.dir, "dead.jsonl")
        s = self.start_sluice(config(emu, broker, properties={"message.max.bytes": "5000"},
                                     dead_letter=dead))
        s.wait_ready()
        big = order(emu, "huge", 50, pad="x" * 10000)
        order(emu, "fine", 60)
        try:
            wait_for(lambda: self.sent(s) >= 1 and len(read_lines(dead)) >= 1, 30,
                     "one sent and one dead letter")
        except AssertionError as e:
            raise AssertionError(str(e) + self.dump_on_failure(s))
        [line] = read_lines(dead)
        self.assertEqual(line["sink"], "orders")
        self.assertTrue(line["reason"].startswith("MSG_SIZE_TOO_LARGE"), line["reason"])
        self.assertEqual(line["record"]["payload"]["$id"], "huge")
        self.assertEqual(line["record"]["timestamp"], big["timestamp"])
        self.assertEqual([json.loads(m["payload"])["payload"]["$id"]
                          for m in broker.consume(f"appwrite.{PROJECT}.small")], ["fine"])
        self.assertEqual(s.metric("sluice_sink_attempts_failed_total", sink="orders",
                                  reason="MSG_SIZE_TOO_LARGE"), 1)
        self.assertEqual(s.metric("sluice_sink_events_failed_total", sink="orders",
                                  reason="dead_letter"), 1)
        self.assertEqual(s.stop(), 0)

    def test_authorization_failure_goes_to_dead_letter(self):
        broker = self.start_broker()
        emu = self.start_emulator()
        dead = os.path.join(self.dir, "dead.jsonl")
        s = self.start_sluice(config(emu, broker, dead_letter=dead))
        s.wait_ready()
        order(emu, "first", 10)  # connects and learns the cluster before the injection
        wait_for(lambda: self.sent(s) >= 1, 30, "the first event")
        broker.errors("Produce", 1, "TOPIC_AUTHORIZATION_FAILED")
        order(emu, "denied", 20)
        wait_for(lambda: len(read_lines(dead)) >= 1, 30, "the dead letter")
        [line] = read_lines(dead)
        self.assertTrue(line["reason"].startswith("TOPIC_AUTHORIZATION_FAILED"), line["reason"])
        self.assertEqual(line["record"]["payload"]["$id"], "denied")
        rows = [json.loads(m["payload"])["payload"]["$id"]
                for m in broker.consume(f"appwrite.{PROJECT}.small")]
        self.assertEqual(rows, ["first"])
        self.assertEqual(s.stop(), 0)

    def test_sigterm_during_stream_flushes_everything_queued(self):
        broker = self.start_broker(topics=("appwrite.shop.small",))
        emu = self.start_emulator()
        out = os.path.join(self.dir, "out")
        # The file sink records what sluice received; Kafka must hold exactly the same after
        # the drain. A long linger keeps messages in librdkafka's queue at SIGTERM.
        archive = f"""  archive:
    type: file
    path: "{out}/archive.jsonl"
    fsync: never
"""
        s = self.start_sluice(config(emu, broker, key="{payload.seq}",
                                     properties={"linger.ms": "300"}, extra_sinks=archive,
                                     extra_route_sinks=", archive"))
        s.wait_ready()
        stream = self.stream_in_background(emu, 2000, rate=2000)
        wait_for(lambda: s.metric("sluice_events_received_total") >= 200, 30,
                 "events flowing")
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))
        stream.join(60)
        received = [r["payload"]["seq"] for r in read_lines(os.path.join(out, "archive.jsonl"))]
        self.assertGreaterEqual(len(received), 200)
        on_topic = [json.loads(m["payload"])["payload"]["seq"]
                    for m in broker.consume(f"appwrite.{PROJECT}.small")]
        self.assertEqual(sorted(on_topic), sorted(set(on_topic)), "duplicates on the topic")
        self.assertEqual(sorted(on_topic), sorted(received), self.dump_on_failure(s))


if __name__ == "__main__":
    unittest.main()
