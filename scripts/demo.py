"""The body of scripts/demo: runs appwrite-emulator and sluice from a build folder, publishes a
sequence of Appwrite changes and shows what sluice delivered. Standard library only."""

import argparse
import base64
import json
import os
import random
import shutil
import signal
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))

import emulator  # noqa: E402
import kafka  # noqa: E402
from sluice import Sluice, wait_for  # noqa: E402
from webhook_receiver import Receiver  # noqa: E402

PROJECT = "shop"
ROW = "databases.[databaseId].tables.[tableId].rows.[rowId].{}"
FILE = "buckets.[bucketId].files.[fileId].create"

ROUTES = """\
# The demo's routes file: what sluice reads in production, pointed at the local emulator.
appwrite:
  endpoint: {endpoint}
  project: shop
  auth:
    session: ${{env:SLUICE_DEMO_SESSION}}   # secrets come from the environment or files
  subscribe: auto                          # message subscriptions on Appwrite >= 1.9.5
  heartbeat: 5s
  reconnect: {{initial: 200ms, max: 5s}}

sinks:
  orders:
    type: file
    path: "{out}/orders/%Y-%m-%d.jsonl"      # one file per day (UTC, event time)
  order-stream:
    type: kafka
    brokers: [{brokers}]
    topic: "appwrite.{{payload.$databaseId}}.{{payload.$tableId}}"
    key: "{{payload.$id}}"                    # one order's changes stay in one partition
    compression: zstd
  audit:
    type: webhook
    url: {hook_url}
    signing: {{scheme: standard, secret: "${{env:SLUICE_DEMO_HOOK_SECRET}}"}}
    timeout: 5s
    retry: {{initial: 200ms, max: 5s, max_elapsed: 1m}}
    dead_letter: "{out}/dead/audit.jsonl"
  big-orders:
    type: file
    path: "{out}/big-orders.jsonl"
    fsync: always
  uploads:
    type: file
    path: "{out}/uploads/{{payload.bucketId}}.jsonl"
    rotate: {{max_size: 1MiB}}

routes:
  - name: orders
    channels: [tablesdb.shop.tables.orders.rows]
    events: ["tablesdb.*.tables.*.rows.*.create", "tablesdb.*.tables.*.rows.*.update"]
    sinks: [orders, order-stream]
  - name: big-orders
    channels: [tablesdb.shop.tables.orders.rows]
    events: ["tablesdb.*.tables.*.rows.*.create", "tablesdb.*.tables.*.rows.*.update"]
    where:
      - equal: [status, [paid]]
      - greaterThan: [total, 100]
    sinks: [big-orders, orders, audit]       # `orders` gets each event once, however many routes match
  - name: uploads
    channels: [buckets.invoices.files]
    sinks: [uploads]
"""


def say(text):
    print(f"\033[1m==> {text}\033[0m" if sys.stdout.isatty() else f"==> {text}", flush=True)


def order(emu, row_id, total, status, action="create", read=("any",)):
    answer = emu.publish(event=ROW.format(action),
                         params={"databaseId": "shop", "tableId": "orders", "rowId": row_id},
                         payload={"$id": row_id, "$tableId": "orders", "$databaseId": "shop",
                                  "customer": "c-42", "total": total, "status": status},
                         read=list(read), database_type="tablesdb", project=PROJECT)
    print(f"    {action:6} order {row_id:7} total={total:<6} status={status:8} "
          f"-> {len(answer['events'])} event strings, {len(answer['channels'])} channels, "
          f"delivered to {answer['delivered']} connection(s)")
    return answer


def upload(emu, file_id, name):
    answer = emu.publish(event=FILE, params={"bucketId": "invoices", "fileId": file_id},
                         payload={"$id": file_id, "bucketId": "invoices", "name": name,
                                  "mimeType": "application/pdf", "sizeOriginal": 48213},
                         read=["any"], project=PROJECT)
    print(f"    upload {name:22} -> delivered to {answer['delivered']} connection(s)")
    return answer


def show_outputs(out):
    for dirpath, _, files in sorted(os.walk(out)):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            if not name.endswith(".jsonl"):
                continue
            with open(path) as f:
                lines = f.read().splitlines()
            print(f"    {os.path.relpath(path, ROOT)}  ({len(lines)} record(s))")
            for line in lines[:4]:
                record = json.loads(line)
                p = record["payload"]
                fields = " ".join(f"{k}={p[k]}" for k in ("$id", "total", "status", "name") if k in p)
                print(f"      {record['events'][0]:48} {fields}")


def show_metrics(s):
    m = s.metrics()
    print("    " + "\n    ".join(
        f"{name}{{{','.join(f'{k}={v}' for k, v in sorted(labels))}}} {value:g}"
        for (name, labels), value in sorted(m.items(), key=lambda kv: (kv[0][0], sorted(kv[0][1])))
        if name in ("sluice_upstream_connected", "sluice_events_received_total",
                    "sluice_events_unmatched_total", "sluice_events_routed_total",
                    "sluice_sink_events_sent_total")))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="folder with sluice and appwrite-emulator")
    parser.add_argument("--follow", action="store_true", help="keep publishing until Ctrl-C")
    args = parser.parse_args()
    args.bin = os.path.abspath(args.bin)

    out = os.path.join(ROOT, "demo-out")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    secret = "demo-secret"
    with open(os.path.join(out, "fixtures.json"), "w") as f:
        json.dump({"projects": [PROJECT],
                   "users": [{"id": "bridge", "email": "bridge@example.com", "password": "pw",
                              "secret": secret},
                             {"id": "alice", "email": "alice@example.com", "password": "pw",
                              "secret": "alice-secret"}]}, f)
    session = base64.b64encode(json.dumps({"id": "bridge", "secret": secret},
                                          separators=(",", ":")).encode()).decode()

    say("starting appwrite-emulator (Appwrite 1.9.6 profile) with the demo user 'bridge'")
    emu = emulator.start(os.path.join(args.bin, "appwrite-emulator"), profile="1.9",
                         args=["--fixtures", os.path.join(out, "fixtures.json")])
    print(f"    listening on {emu.host}:{emu.port}")
    say("starting a local Kafka-protocol broker (librdkafka's mock cluster) and a webhook receiver")
    broker = kafka.start(os.path.join(args.bin, "kafka-mock-broker"),
                         topics=["appwrite.shop.orders"])
    print(f"    kafka bootstrap {broker.bootstrap}")
    hook_secret = "whsec_" + base64.b64encode(b"demo webhook signing key").decode()
    receiver = Receiver("127.0.0.1", 0, secret=hook_secret, scheme="standard").start()
    print(f"    webhook receiver on {receiver.url}")
    s = None
    try:
        say("starting sluice with demo-out/routes.yaml")
        routes = ROUTES.format(endpoint=emu.endpoint, out=out, hook_url=receiver.url,
                               brokers=", ".join(broker.bootstrap.split(",")))
        s = Sluice(os.path.join(args.bin, "sluice"), routes, out,
                   env={"SLUICE_DEMO_SESSION": session, "SLUICE_DEMO_HOOK_SECRET": hook_secret},
                   log_level="info")
        s.start()
        s.wait_ready()
        st = s.status()["upstream"]
        print(f"    admin on http://{s.admin}  (/metrics /healthz /readyz /status)")
        print(f"    upstream {st['state']} in {st['mode']} mode to {st['endpoint']}")

        say("publishing changes in Appwrite")
        order(emu, "o-1001", 250, "paid")
        order(emu, "o-1002", 40, "pending")
        order(emu, "o-1002", 40, "paid", action="update")
        order(emu, "o-1003", 990, "paid", read=("user:alice",))  # alice's private order
        order(emu, "o-1001", 250, "paid", action="delete")       # no route takes deletes
        upload(emu, "f-1", "invoice-1001.pdf")
        wait_for(lambda: s.metric("sluice_sink_events_sent_total", sink="orders") >= 3 and
                 s.metric("sluice_sink_events_sent_total", sink="uploads") >= 1 and
                 s.metric("sluice_sink_events_sent_total", sink="order-stream") >= 3 and
                 s.metric("sluice_sink_events_sent_total", sink="audit") >= 1,
                 30, "the demo events in every sink")
        print("    (alice's private order never reaches the bridge user: Appwrite's permissions)")

        say("what landed in demo-out/")
        show_outputs(out)
        say("what landed in Kafka (kcat -C -J -t appwrite.shop.orders)")
        for m in broker.consume("appwrite.shop.orders"):
            record = json.loads(m["payload"])
            print(f"      partition {m['partition']} key={m['key']:8} "
                  f"sluice-event={m['headers'].get('sluice-event', '')[:48]:48} "
                  f"status={record['payload']['status']}")
        say("what the webhook receiver got (Standard Webhooks signature checked independently)")
        for r in receiver.snapshot():
            body = json.loads(r.body)
            print(f"      {r.method} -> {r.status}  webhook-id={r.headers.get('webhook-id', '')[:16]}…  "
                  f"signature {'OK' if r.signature_ok else 'BAD'}  order={body['payload']['$id']}")
        say("a few metrics from /metrics")
        show_metrics(s)

        if args.follow:
            say("publishing an order a second; Ctrl-C to stop")
            n = 2000
            try:
                while True:
                    n += 1
                    order(emu, f"o-{n}", random.choice([15, 80, 120, 640]),
                          random.choice(["paid", "pending"]))
                    time.sleep(1)
            except KeyboardInterrupt:
                print()

        say("stopping sluice (SIGTERM: drain, then exit)")
        code = s.stop()
        print(f"    sluice exited with code {code}")
    finally:
        if s is not None and s.proc and s.proc.poll() is None:
            s.proc.kill()
        emu.stop()
        broker.stop()
        receiver.stop()
    say("done: the files are in demo-out/")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
