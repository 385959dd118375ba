"""Start and drive kafka-mock-broker (librdkafka's mock cluster as a process) and read topics
back with kcat, for tests, the demo and benchmarks (stdlib only).

    with kafka.start(binary, topics=["orders:4"]) as broker:
        ...  # point sluice's kafka sink at broker.brokers
        broker.down(1); broker.up(1)
        broker.errors("Produce", 3, "NOT_LEADER_FOR_PARTITION")
        messages = broker.consume("orders")

The broker prints `bootstrap HOST:PORT,...` as its first stdout line; start() waits for it with
a deadline. Commands go over its stdin, one line each, and are answered `ok` or `error: …`.
"""

import json
import os
import signal
import subprocess
import threading


class BrokerError(RuntimeError):
    pass


class MockBroker:
    """A running kafka-mock-broker. Commands are serialised; one per test."""

    def __init__(self, process, bootstrap):
        self.process = process
        self.bootstrap = bootstrap              # "HOST:PORT,HOST:PORT,..."
        self.brokers = bootstrap.split(",")     # what sluice's `brokers:` takes
        self._lock = threading.Lock()

    # --- control --------------------------------------------------------------------------
    def command(self, line, timeout=10.0):
        with self._lock:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
            answer = {}
            reader = threading.Thread(
                target=lambda: answer.update(text=self.process.stdout.readline()), daemon=True)
            reader.start()
            reader.join(timeout)
            text = answer.get("text", "").strip()
        if text != "ok":
            raise BrokerError(f"{line!r}: {text or 'no answer'}")

    def topic(self, name, partitions=4):
        self.command(f"topic {name} {partitions}")

    def down(self, broker_id):
        self.command(f"down {broker_id}")

    def up(self, broker_id):
        self.command(f"up {broker_id}")

    def errors(self, api, count, error):
        """The next `count` requests of `api` (e.g. "Produce") fail with `error`."""
        self.command(f"errors {api} {count} {error}")

    def topic_error(self, name, error):
        self.command(f"topic-error {name} {error}")

    # --- reading back ---------------------------------------------------------------------
    def consume(self, topic, timeout=60.0):
        """Every message of `topic` from the beginning, as kcat -J prints them, with
        "headers" turned into a dict and "key"/"payload" as text (None when null)."""
        cmd = ["kcat", "-C", "-b", self.bootstrap, "-t", topic, "-o", "beginning", "-e", "-J",
               "-q", "-X", "log_level=3"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise BrokerError(f"kcat failed ({done.returncode}): {done.stderr}")
        out = []
        for line in done.stdout.splitlines():
            if not line.strip():
                continue
            m = json.loads(line)
            raw = m.get("headers") or []
            m["headers"] = {raw[i]: raw[i + 1] for i in range(0, len(raw) - 1, 2)}
            out.append(m)
        return out

    # --- process --------------------------------------------------------------------------
    def stop(self, timeout=10.0):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise BrokerError("kafka-mock-broker did not stop on SIGTERM")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.stop()
        for f in (self.process.stdin, self.process.stdout):
            if f:
                f.close()
        return False


def start(binary, brokers=3, partitions=4, topics=(), stderr=None, timeout=10.0):
    """Starts kafka-mock-broker and waits for its `bootstrap …` line. `topics` are
    "NAME" or "NAME:PARTITIONS" created before the line is printed."""
    command = [os.fspath(binary), "--brokers", str(brokers), "--partitions", str(partitions)]
    for t in topics:
        command += ["--topic", t]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=stderr, text=True)
    line = {}
    reader = threading.Thread(target=lambda: line.update(text=process.stdout.readline()),
                              daemon=True)
    reader.start()
    reader.join(timeout)
    text = line.get("text", "")
    if not text.startswith("bootstrap "):
        if process.poll() is None:
            process.kill()
        process.wait()
        raise BrokerError(f"kafka-mock-broker did not start (first line {text!r}, "
                          f"exit code {process.returncode})")
    return MockBroker(process, text.split(" ", 1)[1].strip())


def murmur2(data):
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) as an unsigned 32-bit int."""
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail, extra = length & ~3, length % 4
    if extra == 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def java_partition(key, partitions):
    """The partition the Java client's default partitioner picks for a non-null key."""
    data = key.encode() if isinstance(key, str) else key
    return (murmur2(data) & 0x7FFFFFFF) % partitions
