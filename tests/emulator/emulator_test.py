"""Process-level tests of appwrite-emulator through tests/support/emulator.py: the helper itself,
fixtures, the load generator, TLS on the same port, and a clean stop.

usage: emulator_test.py EMULATOR_BINARY [unittest args]"""

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import emulator  # noqa: E402

BINARY = None


def ws_connect(emu, query, tls=False, headers=None):
    """Opens a WebSocket by hand (stdlib has no client) and returns (socket, first frame)."""
    reader = ws_upgrade(emu, query, tls, headers)
    return reader, reader.next()


def ws_upgrade(emu, query, tls=False, headers=None):
    """Opens a WebSocket and returns its FrameReader without waiting for `connected`."""
    raw = socket.create_connection((emu.host, emu.port), timeout=10)
    sock = ssl._create_unverified_context().wrap_socket(raw, server_hostname=emu.host) if tls else raw
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET /v1/realtime?{query} HTTP/1.1", f"Host: {emu.host}:{emu.port}",
             "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
             "Sec-WebSocket-Version: 13"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError("closed during the upgrade")
        response += chunk
    head, _, rest = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise AssertionError(head.decode())
    return FrameReader(sock, rest)


def client_frame(payload):
    """One masked text frame, as a client must send it."""
    data = payload.encode() if isinstance(payload, str) else payload
    mask = os.urandom(4)
    if len(data) < 126:
        head = bytes([0x81, 0x80 | len(data)])
    elif len(data) < 65536:
        head = bytes([0x81, 0x80 | 126]) + len(data).to_bytes(2, "big")
    else:
        head = bytes([0x81, 0x80 | 127]) + len(data).to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


class FrameReader:
    """Unmasked server frames, one text message per frame (the emulator never fragments)."""

    def __init__(self, sock, buffered=b""):
        self.sock = sock
        self.data = bytearray(buffered)

    def _need(self, n):
        while len(self.data) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("connection closed")
            self.data.extend(chunk)

    def next(self):
        self._need(2)
        length = self.data[1] & 0x7F
        offset = 2
        if length == 126:
            self._need(4)
            length = int.from_bytes(self.data[2:4], "big")
            offset = 4
        elif length == 127:
            self._need(10)
            length = int.from_bytes(self.data[2:10], "big")
            offset = 10
        self._need(offset + length)
        message = json.loads(bytes(self.data[offset:offset + length]))
        del self.data[:offset + length]
        return message

    def send(self, message):
        self.sock.sendall(client_frame(json.dumps(message) if isinstance(message, dict) else message))

    def wait_closed(self):
        """Returns once the server closed the TCP connection (frames still unread are dropped)."""
        while self.sock.recv(65536):
            pass

    def close(self):
        self.sock.close()


class HelperTest(unittest.TestCase):
    def test_start_publish_users_stop(self):
        with emulator.start(BINARY, profile="1.9", args=["--project", "shop"]) as emu:
            self.assertEqual(emu.version(), "1.9.6")
            self.assertEqual(emu.connections(), [])
            user = emu.create_user("alice", email="a@example.com", password="pw", teams=["t1"])
            self.assertEqual(user["userId"], "alice")
            answer = emu.publish(payload={"$id": "o1"}, project="shop")
            self.assertEqual(answer["delivered"], 0)
            self.assertEqual(len(answer["channels"]), 16)
            sock, connected = ws_connect(emu, "project=shop&channels[]=rows",
                                         headers={"X-Appwrite-Session": user["session"]})
            self.assertEqual(connected["data"]["user"]["$id"], "alice")
            conns = emu.wait_connections(1)
            self.assertEqual(conns[0]["user"], "alice")
            self.assertIn("team:t1", conns[0]["roles"])
            self.assertEqual(emu.publish(project="shop", payload={"n": 1})["delivered"], 1)
            self.assertEqual(sock.next()["data"]["payload"], {"n": 1})
            self.assertEqual(emu.disconnect("alice"), 1)
            emu.wait_connections(0)
            sock.close()
            self.assertEqual(emu.stop(), 0)

    def test_request_heads_up_to_64_kib_are_read_and_longer_ones_get_400(self):
        # Swoole reads request heads of up to 65,536 bytes and answers 400 Bad Request beyond.
        with emulator.start(BINARY, profile="1.9", args=["--project", "shop"]) as emu:
            channels = "&channels[]=" + "&channels[]=".join(f"tablesdb.shop.tables.t{i:05d}.rows"
                                                              for i in range(1350))
            self.assertGreater(len(channels), 59000)
            reader, connected = ws_connect(emu, "project=shop" + channels)
            self.assertEqual(connected["type"], "connected")
            reader.close()
            raw = socket.create_connection((emu.host, emu.port), timeout=10)
            raw.sendall(f"GET /v1/realtime?project=shop{channels}{channels} HTTP/1.1\r\n"
                        f"Host: {emu.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n".encode())
            answer = b""
            while chunk := raw.recv(4096):
                answer += chunk
            raw.close()
            self.assertTrue(answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:200])

    def test_stream_with_a_reader(self):
        with emulator.start(BINARY, profile="1.8") as emu:
            sock, _ = ws_connect(emu, "project=test&channels[]=rows")
            emu.wait_connections(1)
            # The reader only starts reading after the stream finished: the emulator must not
            # need the reader to keep up with fewer frames than its buffers hold.
            answer = emu.stream(200, payload={"k": "v"})
            self.assertEqual((answer["sent"], answer["delivered"]), (200, 200))
            for seq in range(1, 201):
                frame = sock.next()
                self.assertEqual(frame["data"]["payload"], {"seq": seq, "k": "v"})
            sock.close()

    def test_fixtures_seed_users_with_fixed_tokens(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "fixtures.json")
            with open(path, "w") as f:
                json.dump({"projects": ["shop"], "users": [
                    {"id": "svc", "email": "svc@example.com", "password": "pw",
                     "labels": ["bridge"], "secret": "fixed-secret"}]}, f)
            token = base64.b64encode(json.dumps(
                {"id": "svc", "secret": "fixed-secret"}, separators=(",", ":")).encode()).decode()
            with emulator.start(BINARY, args=["--fixtures", path]) as emu:
                status, account, _ = emu.request("GET", "/v1/account", headers={
                    "X-Appwrite-Project": "shop", "X-Appwrite-Session": token})
                self.assertEqual(status, 200, account)
                self.assertEqual(account["labels"], ["bridge"])

    def test_bad_arguments_exit_2(self):
        result = subprocess.run([BINARY, "--profile", "2.0"], capture_output=True, text=True)
        self.assertEqual(result.returncode, 2)
        helptext = subprocess.run([BINARY, "--help"], capture_output=True, text=True)
        self.assertEqual(helptext.returncode, 0)
        self.assertIn("/_emulator/stream", helptext.stdout)

    @unittest.skipUnless(shutil.which("openssl"), "needs the openssl command to make a certificate")
    def test_tls_and_plain_on_the_same_port(self):
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                           check=True, capture_output=True)
            with emulator.start(BINARY, args=["--tls-cert", cert, "--tls-key", key]) as emu:
                self.assertTrue(emu.url.startswith("https://"))
                self.assertEqual(emu.version(), "1.9.6")
                sock, connected = ws_connect(emu, "project=test", tls=True)
                self.assertEqual(connected["type"], "connected")
                emu.wait_connections(1)
                self.assertEqual(emu.publish()["delivered"], 0)  # no subscription yet
                sock.close()
                plain, connected = ws_connect(emu, "project=test", tls=False)
                self.assertEqual(connected["type"], "connected")
                plain.close()


class StrictTest(unittest.TestCase):
    """Each limit and check Appwrite applies, hit on purpose over real sockets."""

    def test_a_subscribe_before_connected_finds_no_project_context(self):
        with emulator.start(BINARY, args=["--dev-errors", "--open-delay", "500"]) as emu:
            sock = ws_upgrade(emu, "project=test")
            sock.send({"type": "ping"})
            sock.send({"type": "subscribe", "data": [{"channels": ["rows"]}]})
            self.assertEqual(sock.next(), {"type": "pong"})
            self.assertEqual(sock.next(), {"type": "error", "data": {
                "code": 1008, "message": "Missing project context. Reconnect to the project first."}})
            sock.wait_closed()
            sock.close()
            # Waiting for `connected` is what a client must do; then subscribing works.
            sock, connected = ws_connect(emu, "project=test")
            self.assertEqual(connected["type"], "connected")
            sock.send({"type": "subscribe", "data": [{"channels": ["rows"]}]})
            self.assertEqual(sock.next()["data"]["to"], "subscribe")
            sock.close()

    def test_129th_connect_within_60s_gets_1013_and_a_close(self):
        with emulator.start(BINARY, args=["--open-delay", "0"]) as emu:
            for i in range(128):
                sock, connected = ws_connect(emu, "project=test")
                self.assertEqual(connected["type"], "connected", f"connect {i + 1}")
                sock.close()
            sock, refused = ws_connect(emu, "project=test")
            self.assertEqual(refused, {"type": "error", "data": {
                "code": 1013, "message": "Error: Server Error"}})  # masked: code >= 500
            sock.wait_closed()
            sock.close()
            status, answer, _ = emu.request("POST", "/_emulator/clock", {"advance": 60})
            self.assertEqual(status, 200, answer)
            sock, connected = ws_connect(emu, "project=test")
            self.assertEqual(connected["type"], "connected")
            sock.close()

    def test_33rd_message_within_60s_gets_1013_and_the_connection_stays(self):
        with emulator.start(BINARY) as emu:
            sock, _ = ws_connect(emu, "project=test")
            for _ in range(33):
                sock.send({"type": "ping"})
            for _ in range(32):
                self.assertEqual(sock.next(), {"type": "pong"})
            self.assertEqual(sock.next()["data"]["code"], 1013)
            emu.request("POST", "/_emulator/clock", {"advance": 60})
            sock.send({"type": "ping"})
            self.assertEqual(sock.next(), {"type": "pong"})
            sock.close()

    def test_frames_over_64000_bytes_drop_the_connection(self):
        with emulator.start(BINARY) as emu:
            sock, _ = ws_connect(emu, "project=test")
            sock.send("x" * 64000)
            self.assertEqual(sock.next()["data"]["code"], 1003)  # read, and not JSON
            sock.send("x" * 64001)
            sock.wait_closed()
            sock.close()

    def test_query_jwt_only_on_the_main_profile(self):
        for profile, user in (("1.9", None), ("main", "alice")):
            with emulator.start(BINARY, profile=profile, args=["--api-key", "k"]) as emu:
                self.assertEqual(emu.version(), "1.9.6")  # main still calls itself 1.9.6
                emu.create_user("alice")
                status, body, _ = emu.request("POST", "/v1/users/alice/jwts", {}, headers={
                    "X-Appwrite-Project": "test", "X-Appwrite-Key": "k"})
                self.assertEqual(status, 201, body)
                sock, connected = ws_connect(emu, "project=test&jwt=" + body["jwt"])
                got = connected["data"]["user"]
                self.assertEqual(got and got["$id"], user, profile)
                sock.close()

    def test_execution_events_in_each_profiles_shape(self):
        event = "functions.[functionId].executions.[executionId].update"
        params = {"functionId": "f1", "executionId": "e1"}
        shapes = {"1.9": {"$id": "e1", "functionId": "f1"},
                  "main": {"$id": "e1", "resourceId": "f1", "resourceType": "functions"}}
        for profile, payload in shapes.items():
            with emulator.start(BINARY, profile=profile) as emu:
                answer = emu.publish(event=event, params=params, payload=payload)
                self.assertIn("functions.f1", answer["channels"], profile)
                other = shapes["main" if profile == "1.9" else "1.9"]
                status, body, _ = emu.request("POST", "/_emulator/publish", {
                    "event": event, "params": params, "payload": other, "read": ["any"]})
                self.assertEqual(status, 400, profile)


ROW_CREATE = "databases.[databaseId].tables.[tableId].rows.[rowId].create"


def list_get(emu, path, queries=(), key=None, session=None, **params):
    """GET of a list endpoint with queries[] as Appwrite's SDKs send them."""
    pairs = [(f"queries[{i}]", json.dumps(q)) for i, q in enumerate(queries)]
    pairs += list(params.items())
    headers = {"X-Appwrite-Project": "test"}
    if key:
        headers["X-Appwrite-Key"] = key
    if session:
        headers["X-Appwrite-Session"] = session
    target = path + ("?" + urllib.parse.urlencode(pairs) if pairs else "")
    status, body, _ = emu.request("GET", target, headers=headers)
    return status, body


def publish_row(emu, row_id, updated_at, read=("any",), action="create", table="orders", **fields):
    payload = {"$id": row_id, "$tableId": table, "$databaseId": "shop",
               "$createdAt": "2026-01-01T00:00:00.000+00:00", "$updatedAt": updated_at, **fields}
    return emu.publish(event=ROW_CREATE.replace("create", action),
                       params={"databaseId": "shop", "tableId": table, "rowId": row_id},
                       payload=payload, read=read)


def upgrade_status(emu):
    """The HTTP status a realtime upgrade gets."""
    with socket.create_connection((emu.host, emu.port), timeout=10) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET /v1/realtime?project=test&channels[]=rows HTTP/1.1\r\n"
                      f"Host: {emu.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
        return int(head.split(b" ")[1])


class StateAndListTest(unittest.TestCase):
    """The emulator keeps what /_emulator/publish changed and lists it as Appwrite does."""

    def test_permissions_filter_what_a_user_lists(self):
        with emulator.start(BINARY, profile="1.9", args=["--api-key", "k"]) as emu:
            alice = emu.create_user("alice", email="alice@example.com", password="pw")
            bob = emu.create_user("bob", email="bob@example.com", password="pw")
            publish_row(emu, "open", "2026-01-01T00:00:01.000+00:00", read=["any"])
            publish_row(emu, "mine", "2026-01-01T00:00:02.000+00:00", read=["user:alice"])
            publish_row(emu, "members", "2026-01-01T00:00:03.000+00:00", read=["users"])
            path = "/v1/tablesdb/shop/tables/orders/rows"

            def ids(**who):
                status, body = list_get(emu, path, **who)
                self.assertEqual(status, 200, body)
                self.assertEqual(body["total"], len(body["rows"]))
                return sorted(r["$id"] for r in body["rows"])

            self.assertEqual(ids(key="k"), ["members", "mine", "open"])
            self.assertEqual(ids(session=alice["session"]), ["members", "mine", "open"])
            self.assertEqual(ids(session=bob["session"]), ["members", "open"])
            self.assertEqual(ids(), ["open"])
            self.assertEqual(ids(key="wrong"), ["open"])  # an unknown key is no key
            # Listing databases needs a key's scopes, as in Appwrite.
            status, body = list_get(emu, "/v1/tablesdb", session=alice["session"])
            self.assertEqual((status, body["type"]), (401, "general_unauthorized_scope"))
            status, body = list_get(emu, "/v1/tablesdb", key="k")
            self.assertEqual([d["$id"] for d in body["databases"]], ["shop"])
            self.assertEqual(body["databases"][0]["type"], "tablesdb")

    def test_cursor_paging_returns_every_row_once_in_updated_at_then_id_order(self):
        with emulator.start(BINARY, profile="1.9", args=["--api-key", "k"]) as emu:
            expected = []
            for i in range(60):
                # Three rows per instant, written with different offsets: order compares instants.
                second = i // 3
                text = (f"2026-01-01T00:00:{second:02d}.500+00:00" if i % 2 else
                        f"2026-01-01T01:00:{second:02d}.5+01:00")
                row_id = f"r{(i * 37) % 60:02d}"
                publish_row(emu, row_id, text)
                expected.append((second, row_id))
            expected.sort()
            start = "2026-01-01T00:00:05.500+00:00"
            want = [r for s, r in expected if s >= 5]
            got = []
            cursor = None
            for _ in range(20):
                queries = [{"method": "greaterThanEqual", "attribute": "$updatedAt",
                            "values": [start]},
                           {"method": "orderAsc", "attribute": "$updatedAt"},
                           {"method": "orderAsc", "attribute": "$id"},
                           {"method": "limit", "values": [7]}]
                if cursor:
                    queries.append({"method": "cursorAfter", "values": [cursor]})
                status, body = list_get(emu, "/v1/tablesdb/shop/tables/orders/rows", queries,
                                        key="k")
                self.assertEqual(status, 200, body)
                self.assertEqual(body["total"], len(want))
                if not body["rows"]:
                    break
                got += [r["$id"] for r in body["rows"]]
                cursor = body["rows"][-1]["$id"]
            self.assertEqual(got, want)
            # The legacy API lists the same rows as documents of a collection.
            status, body = list_get(emu, "/v1/databases/shop/collections/orders/documents",
                                    [{"method": "limit", "values": [1]}], key="k", total="false")
            self.assertEqual(status, 200, body)
            self.assertEqual(body["total"], 0)
            self.assertEqual(body["documents"][0]["$collectionId"], "orders")
            self.assertNotIn("$tableId", body["documents"][0])

    def test_invalid_queries_get_appwrites_errors(self):
        with emulator.start(BINARY, profile="1.9", args=["--api-key", "k"]) as emu:
            publish_row(emu, "o1", "2026-01-01T00:00:01.000+00:00")
            path = "/v1/tablesdb/shop/tables/orders/rows"
            cases = [
                ([{"method": "limit", "values": [0]}], 400, "general_query_invalid"),
                ([{"method": "limit", "values": [2 ** 64]}], 400, "general_query_invalid"),
                ([{"method": "frobnicate", "attribute": "x"}], 400, "general_query_invalid"),
                ([{"method": "equal", "attribute": "missing", "values": [1]}], 400,
                 "general_query_invalid"),
                ([{"method": "cursorAfter", "values": ["gone"]}], 400, "general_cursor_not_found"),
            ]
            for queries, code, kind in cases:
                status, body = list_get(emu, path, queries, key="k")
                self.assertEqual((status, body["code"], body["type"]), (code, code, kind), queries)
                self.assertEqual(body["version"], "1.9.6")
            status, body = list_get(emu, "/v1/tablesdb/nope/tables/orders/rows", key="k")
            self.assertEqual((status, body["type"]), (404, "database_not_found"))
            status, body = list_get(emu, "/v1/tablesdb/shop/tables/nope/rows", key="k")
            self.assertEqual((status, body["type"]), (404, "table_not_found"))
            status, body = list_get(emu, "/v1/storage/buckets/nope/files", key="k")
            self.assertEqual((status, body["type"]), (404, "storage_bucket_not_found"))

    def test_a_delete_removes_the_row_from_listings(self):
        with emulator.start(BINARY, profile="1.9", args=["--api-key", "k"]) as emu:
            publish_row(emu, "a", "2026-01-01T00:00:01.000+00:00", status="new")
            publish_row(emu, "b", "2026-01-01T00:00:02.000+00:00")
            publish_row(emu, "a", "2026-01-01T00:00:03.000+00:00", action="update", status="paid")
            status, body = list_get(emu, "/v1/tablesdb/shop/tables/orders/rows", key="k")
            self.assertEqual([(r["$id"], r.get("status")) for r in body["rows"]],
                             [("a", "paid"), ("b", None)])
            publish_row(emu, "a", "2026-01-01T00:00:03.000+00:00", action="delete")
            status, body = list_get(emu, "/v1/tablesdb/shop/tables/orders/rows", key="k")
            self.assertEqual((body["total"], [r["$id"] for r in body["rows"]]), (1, ["b"]))
            emu.publish(event="buckets.[bucketId].files.[fileId].delete",
                        params={"bucketId": "docs", "fileId": "f1"}, payload={"$id": "f1"})
            status, body = list_get(emu, "/v1/storage/buckets/docs/files", key="k")
            self.assertEqual((status, body["files"]), (200, []))

    def test_outage_refuses_realtime_while_rest_answers(self):
        with emulator.start(BINARY, profile="1.9", args=["--api-key", "k"]) as emu:
            sock, connected = ws_connect(emu, "project=test&channels[]=rows")
            self.assertEqual(connected["type"], "connected")
            emu.wait_connections(1)
            self.assertEqual(emu.control("/_emulator/outage", {"seconds": 30})["active"], True)
            sock.wait_closed()  # a TCP close, as when the server goes away
            sock.close()
            self.assertEqual(emu.connections(), [])
            self.assertEqual(upgrade_status(emu), 503)
            publish_row(emu, "during", "2026-01-01T00:00:01.000+00:00")
            status, body = list_get(emu, "/v1/tablesdb/shop/tables/orders/rows", key="k")
            self.assertEqual((status, [r["$id"] for r in body["rows"]]), (200, ["during"]))
            self.assertEqual(emu.control("/_emulator/outage")["active"], True)
            # The emulator's clock counts toward the outage, so a test need not wait it out.
            emu.control("/_emulator/clock", {"advance": 31})
            self.assertEqual(emu.control("/_emulator/outage")["active"], False)
            sock, connected = ws_connect(emu, "project=test&channels[]=rows")
            self.assertEqual(connected["type"], "connected")
            sock.close()
            emu.control("/_emulator/outage", {"seconds": 60})
            self.assertEqual(upgrade_status(emu), 503)
            emu.control("/_emulator/outage", {"seconds": 0})
            sock, connected = ws_connect(emu, "project=test&channels[]=rows")
            self.assertEqual(connected["type"], "connected")
            sock.close()


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main()
