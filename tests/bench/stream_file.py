"""emulator → sluice → file / Kafka throughput, as a ratio to a bare reader in the same run.

Frames are realistic: a TablesDB row update in the 1.9 profile (64 event strings, 16 channels)
with a ~1 KB payload. The baseline (baseline_reader) only counts frames; sluice decodes, routes
and appends every event to a JSON Lines file. Prints one line per scenario."""

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))

import emulator  # noqa: E402
import kafka  # noqa: E402
from sluice import Sluice, wait_for  # noqa: E402

PROJECT = "shop"
CHANNEL = "tablesdb.shop.tables.orders.rows"
BODY = {"event": "databases.[databaseId].tables.[tableId].rows.[rowId].update",
        "params": {"databaseId": "shop", "tableId": "orders", "rowId": "o1"},
        "database_type": "tablesdb", "read": ["any"], "project": PROJECT,
        "payload": {"$id": "o1", "$tableId": "orders", "$databaseId": "shop", "total": 120,
                    "status": "paid", "note": "x" * 900}}


def stream(emu, count):
    started = time.monotonic()
    emu.control("/_emulator/stream", dict(BODY, count=count, rate=0), timeout=600)
    return started


def baseline(bin_dir, emu, session, count):
    reader = subprocess.Popen([os.path.join(bin_dir, "baseline_reader"), emu.host,
                               str(emu.port), PROJECT, session, CHANNEL, str(count)],
                              stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "connected"
    emu.wait_connections(1)
    started = stream(emu, count)
    out = reader.stdout.readline()
    elapsed = time.monotonic() - started
    reader.wait()
    return elapsed, int(out.split()[3])


def file_sink(out, fsync):
    return f'{{type: file, path: "{out}/orders.jsonl", fsync: {fsync}}}'


def kafka_sink(bootstrap):
    brokers = ", ".join(bootstrap.split(","))
    return f'{{type: kafka, brokers: [{brokers}], topic: "appwrite.shop.orders", key: "{{payload.$id}}"}}'


def through_sluice(bin_dir, emu, session, count, workdir, name, sink):
    out = os.path.join(workdir, f"out-{name}")
    config = f"""
appwrite:
  endpoint: {emu.endpoint}
  project: {PROJECT}
  auth: {{session: "{session}"}}
  subscribe: url
sinks:
  archive: {sink.replace("{out}", out)}
routes:
  - name: orders
    channels: [{CHANNEL}]
    sinks: [archive]
"""
    s = Sluice(os.path.join(bin_dir, "sluice"), config, workdir, log_level="info")
    s.start()
    try:
        s.wait_ready()
        started = stream(emu, count)
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="archive") >= count,
                 600, "every event in the file", interval=0.01)
        elapsed = time.monotonic() - started
        assert s.stop() == 0
        return elapsed
    finally:
        if s.proc.poll() is None:
            s.proc.kill()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=os.path.join(HERE, "..", "..", "build", "release", "bin"))
    parser.add_argument("--count", type=int, default=100000)
    args = parser.parse_args()
    bin_dir = os.path.abspath(args.bin)
    with tempfile.TemporaryDirectory() as workdir:
        fixtures = os.path.join(workdir, "fixtures.json")
        with open(fixtures, "w") as f:
            json.dump({"projects": [PROJECT], "users": [{"id": "bench", "secret": "s"}]}, f)
        session = base64.b64encode(b'{"id":"bench","secret":"s"}').decode()
        with emulator.start(os.path.join(bin_dir, "appwrite-emulator"),
                            args=["--fixtures", fixtures]) as emu:
            base_s, base_bytes = baseline(bin_dir, emu, session, args.count)
            base_rate = args.count / base_s
            print(f"{'scenario':28} {'events/s':>10} {'MB/s':>8} {'ratio':>6}")
            print(f"{'baseline (count frames)':28} {base_rate:10.0f} "
                  f"{base_bytes / base_s / 1e6:8.1f} {1.0:6.2f}")
            scenarios = [("file fsync=never", file_sink("{out}", "never")),
                         ("file fsync=batch", file_sink("{out}", "batch"))]
            broker = kafka.start(os.path.join(bin_dir, "kafka-mock-broker"),
                                 topics=["appwrite.shop.orders"])
            scenarios.append(("kafka acks=all (mock)", kafka_sink(broker.bootstrap)))
            try:
                for name, sink in scenarios:
                    secs = through_sluice(bin_dir, emu, session, args.count, workdir,
                                          name.split()[0] + str(len(name)), sink)
                    rate = args.count / secs
                    print(f"{'sluice -> ' + name:28} {rate:10.0f} "
                          f"{base_bytes / base_s * (rate / base_rate) / 1e6:8.1f} "
                          f"{rate / base_rate:6.2f}")
            finally:
                broker.stop()


if __name__ == "__main__":
    main()
