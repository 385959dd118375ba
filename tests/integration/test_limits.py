"""Appwrite at its limits, through the real binaries: a thousand routes on distinct tables become
ready in every subscribe mode and on both server profiles (frames split below 64,000 bytes, a
URL too long for the request head widened to `rows`), a reload from 10 to 1,000 routes and back
under a steady event rate loses nothing, and a subscription that cannot fit at all is refused
with its cause in words and a long backoff instead of a reconnect loop."""

import base64
import os
import signal
import socket
import threading
import time
import unittest

from common import IntegrationTest, PROJECT, Sluice, SLUICE_BIN, appwrite_yaml, read_lines, wait_for

ROW_CREATE = "databases.[databaseId].tables.[tableId].rows.[rowId].create"


def table_id(i):
    """A realistic ~30-character table id."""
    return f"tbl{i:04d}_" + "0123456789abcdefghijklm"


def channel(profile, i):
    # 1.8 publishes rows on `databases.…` channels only; 1.9 also on `tablesdb.…`.
    kind = "tablesdb" if profile == "1.9" else "databases"
    return f"{kind}.shop.tables.{table_id(i)}.rows"


def config(emu, out, profile, subscribe, n, reconnect_max="1s", heartbeat="20s"):
    routes = "".join(f"  - name: r{i}\n    channels: [{channel(profile, i)}]\n    sinks: [out]\n"
                     for i in range(n))
    return appwrite_yaml(emu.endpoint, subscribe, heartbeat=heartbeat,
                         reconnect_max=reconnect_max) + f"""\
sinks:
  out:
    type: file
    path: "{out}/events.jsonl"
    fsync: never
routes:
{routes}"""


def publish(emu, i, seq):
    return emu.publish(event=ROW_CREATE,
                       params={"databaseId": "shop", "tableId": table_id(i), "rowId": f"r{seq}"},
                       payload={"$id": f"r{seq}", "seq": seq}, database_type="tablesdb",
                       project=PROJECT)


class ThousandRoutesTest(IntegrationTest):
    def run_variants(self, profile, modes):
        """Starts one sluice per subscribe mode at once against one emulator and checks each."""
        emu = self.start_emulator(profile=profile)
        started = {}
        for mode in modes:
            workdir = os.path.join(self.dir, mode)
            os.makedirs(workdir)
            s = Sluice(SLUICE_BIN, config(emu, workdir, profile, mode, 1000), workdir,
                       log_level="info")
            self._cleanup_procs.append(s)
            s.start()
            started[mode] = (s, workdir, time.monotonic())
        for mode, (s, workdir, t0) in started.items():
            with self.subTest(profile=profile, mode=mode):
                wait_for(s.ready, 10, f"{mode} ready")
                print(f"profile {profile}, {mode}: ready {time.monotonic() - t0:.2f} s after start")
        answer = publish(emu, 999, 1)
        self.assertEqual(answer["delivered"], len(modes))
        for mode, (s, workdir, _) in started.items():
            with self.subTest(profile=profile, mode=mode):
                path = os.path.join(workdir, "events.jsonl")
                wait_for(lambda: len(read_lines(path)) == 1, 10, "the event on the last table")
                self.assertEqual(read_lines(path)[0]["payload"]["seq"], 1)
                self.assertEqual(s.metric("sluice_upstream_connects_total", result="success"), 1,
                                 self.dump_on_failure(s))
                self.assertEqual(s.metric("sluice_upstream_connects_total", result="failure"), 0)
                status = s.status()["upstream"]
                if status["mode"] == "url":
                    # 1,000 exact channels make a request head over 64 KiB: `rows` covers them.
                    self.assertEqual(status["channels"], ["rows"])
                    self.assertEqual(len(status["plan"]["widened"]), 1)
                    self.assertTrue(status["plan"]["widened"][0].startswith("rows (1000 channels"))
                    self.assertLess(status["plan"]["url_bytes"], 65536)
                    self.assertTrue(any(r.get("msg", "").startswith("subscribing to broader")
                                        and r.get("level") == "warn" for r in s.logs()))
                else:
                    # ~100 KB of subscriptions: several frames, each below 64,000 bytes.
                    self.assertGreaterEqual(status["plan"]["frames"], 2)
                    self.assertLess(status["plan"]["largest_frame_bytes"], 64000)
                    self.assertEqual(status["plan"]["widened"], [])
                    self.assertEqual(len(status["channels"]), 1000)
        return started

    def test_profile_19_every_mode(self):
        started = self.run_variants("1.9", ["message", "url", "auto"])
        self.assertEqual(started["auto"][0].status()["upstream"]["mode"], "message")

    def test_profile_18_url_and_auto(self):
        started = self.run_variants("1.8", ["url", "auto"])
        self.assertEqual(started["auto"][0].status()["upstream"]["mode"], "url")

    def test_profile_18_has_no_message_mode(self):
        # Appwrite 1.8 needs channels in the URL: a message-mode connection is refused with
        # 1008 "Missing channels" (1.8 masks the message as "Error: Server Error"), which
        # retrying cannot heal: not ready, the cause in /status, the next attempt only after
        # reconnect.max.
        emu = self.start_emulator(profile="1.8")
        s = self.start_sluice(config(emu, self.dir, "1.8", "message", 10, reconnect_max="30s"))
        wait_for(lambda: "server error 1008" in s.status()["upstream"]["last_error"], 10,
                 "the cause in /status")
        self.assertFalse(s.ready())
        time.sleep(1)  # generous: a tight loop would make dozens of attempts in this time
        self.assertLessEqual(
            s.metric("sluice_upstream_connects_total", result="failure"), 1, self.dump_on_failure(s))
        self.assertTrue(any(r.get("level") == "warn" and r.get("msg") == "connection failed"
                            and r.get("retry_in_ms") == "30000" for r in s.logs()),
                        self.dump_on_failure(s))


class ReloadLimitsTest(IntegrationTest):
    def reload_under_load(self, subscribe):
        emu = self.start_emulator()
        s = self.start_sluice(config(emu, self.dir, "1.9", subscribe, 10))
        s.wait_ready(10)
        total = 300
        seqs = iter(range(1, total + 1))
        done = threading.Event()
        errors = []

        def steady():
            # ~100 events/s on route r0's table, which every configuration keeps.
            try:
                for seq in seqs:
                    publish(emu, 0, seq)
                    time.sleep(0.01)
            except Exception as e:  # reported by the assertion below
                errors.append(e)
            done.set()

        threading.Thread(target=steady, daemon=True).start()
        path = os.path.join(self.dir, "events.jsonl")
        for n in (1000, 10):
            before = s.metric("sluice_config_reloads_total", result="success")
            with open(s.config_path, "w") as f:
                f.write(config(emu, self.dir, "1.9", subscribe, n))
            s.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: s.metric("sluice_config_reloads_total", result="success") > before,
                     10, "the reload")
            wait_for(lambda: len(s.status()["upstream"]["channels"]) == (n if subscribe ==
                     "message" or n == 10 else 1) and s.ready(), 10, f"subscribed to {n} routes")
            wait_for(lambda: len(read_lines(path)) > 0, 10, "events flowing")
        self.assertTrue(done.wait(30), "the publisher finished")
        self.assertEqual(errors, [])
        wait_for(lambda: len(read_lines(path)) >= total, 10, "every event", )
        got = sorted(r["payload"]["seq"] for r in read_lines(path))
        # At least once: a URL-mode switch-over may deliver an event on both connections.
        self.assertEqual(sorted(set(got)), list(range(1, total + 1)), self.dump_on_failure(s))
        return s

    def test_message_mode_10_to_1000_and_back(self):
        s = self.reload_under_load("message")
        # The same connection throughout: the reloads changed its subscriptions in place.
        self.assertEqual(s.metric("sluice_upstream_connects_total", result="success"), 1)

    def test_url_mode_10_to_1000_and_back(self):
        self.reload_under_load("url")


class TooLargeTest(IntegrationTest):
    def refused(self, subscribe, cause):
        # One channel name too long for any frame or request head: nothing can make it fit.
        emu = self.start_emulator()
        routes = (f"  - name: huge\n    channels: [console.{'x' * 70000}]\n    sinks: [out]\n")
        text = appwrite_yaml(emu.endpoint, subscribe, reconnect_max="30s") + f"""\
sinks:
  out:
    type: file
    path: "{self.dir}/events.jsonl"
routes:
{routes}"""
        s = self.start_sluice(text)
        wait_for(lambda: cause in s.status()["upstream"]["last_error"], 10, "the cause in /status")
        self.assertFalse(s.ready())
        self.assertEqual(s.get("/readyz")[0], 503)
        time.sleep(1)  # generous: a tight loop would make dozens of attempts in this time
        self.assertEqual(s.metric("sluice_upstream_connects_total", result="failure"), 1)
        self.assertTrue(any(r.get("level") == "warn" and r.get("msg") == "connection failed"
                            and r.get("retry_in_ms") == "30000" and cause in r.get("cause", "")
                            for r in s.logs()), self.dump_on_failure(s))
        # Nothing reached the server.
        self.assertEqual(emu.connections(), [])

    def test_frame_too_large_in_message_mode(self):
        self.refused("message", "exceeds Appwrite's limit of 64,000")

    def test_url_too_long_in_url_mode(self):
        self.refused("url", "exceeds Appwrite's limit of 65536")


def open_realtime(emu):
    """Completes one realtime upgrade by hand and reads the first bytes of the answer frame, so
    the server has counted the connect; returns the socket."""
    sock = socket.create_connection((emu.host, emu.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /v1/realtime?project={PROJECT} HTTP/1.1\r\nHost: {emu.host}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data or data.endswith(b"\r\n\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"closed during the upgrade: {data!r}")
        data += chunk
    assert data.startswith(b"HTTP/1.1 101"), data
    return sock


class ConnectLimitTest(IntegrationTest):
    def test_connect_limit_refusal_waits_reconnect_max_then_connects(self):
        """Appwrite refuses the 129th connect in a minute from one address with 1013 and a close.
        sluice says so, is not ready, and waits reconnect.max instead of adding to the count."""
        emu = self.start_emulator(extra=("--open-delay", "0"))
        for sock in [open_realtime(emu) for _ in range(128)]:  # others used up the minute
            sock.close()
        s = self.start_sluice(config(emu, self.dir, "1.9", "message", 1, reconnect_max="3s"))
        wait_for(lambda: "1013" in s.status()["upstream"]["last_error"], 10,
                 "the refusal in /status")
        self.assertFalse(s.ready())
        self.assertEqual(s.get("/readyz")[0], 503)
        wait_for(lambda: any(r.get("level") == "warn" and r.get("retry_in_ms") == "3000"
                             and "1013" in r.get("cause", "") for r in s.logs()), 10,
                 "a warning with the cause and the long wait")
        emu.request("POST", "/_emulator/clock", {"advance": 60})
        wait_for(s.ready, 10, "ready once the minute has passed")
        publish(emu, 0, 7)
        path = os.path.join(self.dir, "events.jsonl")
        wait_for(lambda: len(read_lines(path)) == 1, 10, "the event")


class ServerFilterTest(IntegrationTest):
    """A route's `where` goes to Appwrite as subscription queries (message mode): the server
    sends only the events the route wants, and the sinks get the same events as without."""

    def run_variant(self, subscribe, attribute):
        emu = self.start_emulator()
        workdir = os.path.join(self.dir, f"{subscribe}-{attribute}")
        os.makedirs(workdir)
        text = appwrite_yaml(emu.endpoint, subscribe, heartbeat="20s") + f"""\
sinks:
  out:
    type: file
    path: "{workdir}/events.jsonl"
    fsync: never
routes:
  - name: paid
    channels: [tablesdb.shop.tables.orders.rows]
    where:
      - equal: [{attribute}, [paid]]
    sinks: [out]
"""
        s = Sluice(SLUICE_BIN, text, workdir, log_level="info")
        self._cleanup_procs.append(s)
        s.start()
        return emu, s, os.path.join(workdir, "events.jsonl")

    def test_where_filters_on_the_server_in_message_mode_only(self):
        variants = {"message": self.run_variant("message", "status"),
                    "url": self.run_variant("url", "status"),
                    # sluice reads a dotted attribute as a path, Appwrite as a key: not sent.
                    "dotted": self.run_variant("message", "meta.status")}
        for emu, s, _ in variants.values():
            s.wait_ready(10)
        delivered = {name: 0 for name in variants}
        for seq in range(1, 21):
            status = "paid" if seq % 10 == 0 else "open"
            for name, (emu, _, _) in variants.items():
                answer = emu.publish(event=ROW_CREATE,
                                     params={"databaseId": "shop", "tableId": "orders",
                                             "rowId": f"r{seq}"},
                                     payload={"$id": f"r{seq}", "seq": seq, "status": status,
                                              "meta": {"status": status}},
                                     database_type="tablesdb", project=PROJECT)
                delivered[name] += answer["delivered"]
        self.assertEqual(delivered, {"message": 2, "url": 20, "dotted": 20})
        for name, (_, s, path) in variants.items():
            with self.subTest(variant=name):
                wait_for(lambda: s.metric("sluice_events_received_total") == delivered[name], 10,
                         "every frame read")
                wait_for(lambda: len(read_lines(path)) >= 2, 10, "the paid orders")
                self.assertEqual([r["payload"]["seq"] for r in read_lines(path)], [10, 20],
                                 self.dump_on_failure(s))


if __name__ == "__main__":
    unittest.main()
