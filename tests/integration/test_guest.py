"""Never a silent guest: Appwrite turns a connection whose session was revoked or expired (or
whose JWT's session was) into a guest without any error. sluice must treat that as an
authentication failure: not ready, counted, logged at warn, credentials renewed. And with
api_key + user_id, sluice runs on a session of its own whose JWT it renews by the server's
clock (the emulator's clock is moved forward instead of sleeping)."""

import os
import re
import urllib.request

from common import IntegrationTest, PROJECT, USER_ID, read_lines, wait_for

ORDERS = "databases.shop.tables.orders.rows"
ROW_CREATE = "databases.[databaseId].tables.[tableId].rows.[rowId].create"
API_KEY = "guest-test-api-key"
SECRETS = [API_KEY, "bridge-secret", "bridge-password"]


def config(endpoint, out, auth, reconnect="{initial: 100ms, max: 2s}"):
    return f"""
appwrite:
  endpoint: {endpoint}
  project: {PROJECT}
  auth: {auth}
  subscribe: message
  heartbeat: 5s
  reconnect: {reconnect}
sinks:
  archive:
    type: file
    path: "{out}/archive.jsonl"
    fsync: never
routes:
  - name: orders
    channels: [{ORDERS}]
    sinks: [archive]
"""


class GuestTest(IntegrationTest):
    def out(self):
        return os.path.join(self.dir, "out")

    def archive_ids(self):
        return [l["payload"]["$id"] for l in read_lines(os.path.join(self.out(), "archive.jsonl"))]

    def private_order(self, emu, row_id):
        """Readable by the bridge user only: delivered means sluice is that user, not a guest."""
        return emu.publish(event=ROW_CREATE, params={"databaseId": "shop", "tableId": "orders",
                                                     "rowId": row_id},
                           payload={"$id": row_id, "total": 1}, read=[f"user:{USER_ID}"],
                           project=PROJECT)

    def start_api_key_sluice(self, profile="1.9"):
        emu = self.start_emulator(profile=profile, extra=["--api-key", API_KEY])
        auth = f'{{api_key: "{API_KEY}", user_id: {USER_ID}}}'
        s = self.start_sluice(config(emu.endpoint, self.out(), auth))
        s.wait_ready()
        return emu, s

    @staticmethod
    def server_sessions(emu):
        """The sessions sluice created through the Users API."""
        return [x for x in emu.control("/_emulator/sessions") if x["provider"] == "server"]

    def connected_session(self, emu):
        conns = emu.wait_connections(lambda cs: len(cs) == 1)
        self.assertEqual(conns[0]["user"], USER_ID)
        return conns[0]["session"]

    def assert_no_secret_logged(self, s):
        text = s.log_text()
        for secret in SECRETS:
            self.assertNotIn(secret, text)
        self.assertIsNone(re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", text), "a JWT in the log")

    def assert_guest_seen(self, s, emu, action):
        """Schedules `action` on sluice's session for the next realtime handshake (so the REST
        check just before it passes), drops the connection and checks what sluice makes of the
        guest `connected` it then gets."""
        (session,) = self.server_sessions(emu)
        self.assertEqual(self.connected_session(emu), session["$id"])
        emu.control("/_emulator/sessions", {"session": session["$id"], "action": action,
                                            "when": "handshake"})
        self.assertEqual(emu.disconnect(), 1)
        # Within reconnect.max (2 s) of the guest connect, sluice says why it is not ready.
        seen = []

        def not_ready_as_guest():
            status, body = s.get("/readyz")
            if status == 503 and "guest" in body:
                seen.append(body)
            return bool(seen)
        wait_for(not_ready_as_guest, 10, "/readyz 503 naming the guest connection")
        self.assertIn("api_key", seen[0])
        self.assertEqual(s.metric("sluice_upstream_auth_failures_total", reason="guest"), 1)
        warned = [r for r in s.logs() if r.get("level") == "warn" and "guest" in r.get("msg", "")]
        self.assertEqual(len(warned), 1, self.dump_on_failure(s))
        self.assertEqual(warned[0]["auth"], "api_key")
        return session["$id"]

    def assert_recovers_on_a_new_session(self, s, emu, old_session):
        s.wait_ready(timeout=15)
        (session,) = self.server_sessions(emu)
        self.assertNotEqual(session["$id"], old_session)
        self.assertEqual(self.connected_session(emu), session["$id"])
        self.assertEqual(self.private_order(emu, "after")["delivered"], 1)
        wait_for(lambda: "after" in self.archive_ids(), 10, "the private event after recovery")
        self.assertEqual(s.metric("sluice_upstream_auth_failures_total", reason="guest"), 1)

    def test_session_revoked_between_the_check_and_the_handshake(self):
        emu, s = self.start_api_key_sluice()
        old = self.assert_guest_seen(s, emu, "revoke")
        self.assert_recovers_on_a_new_session(s, emu, old)
        self.assert_no_secret_logged(s)
        self.assertEqual(s.stop(), 0)

    def test_jwt_whose_session_expired(self):
        # Servers after 1.9.6 (the emulator's `main` profile) make this JWT a guest; 1.9.6 only
        # once the expired session is deleted.
        emu, s = self.start_api_key_sluice(profile="main")
        old = self.assert_guest_seen(s, emu, "expire")
        self.assert_recovers_on_a_new_session(s, emu, old)
        self.assert_no_secret_logged(s)
        self.assertEqual(s.stop(), 0)

    def test_api_key_runs_on_its_own_session_and_renews_by_the_server_clock(self):
        emu, s = self.start_api_key_sluice()
        (session,) = self.server_sessions(emu)
        self.assertEqual(session["jwts"], 1)
        self.assertEqual(self.connected_session(emu), session["$id"])
        # A newer login of the same user changes nothing for sluice's JWT.
        status, _, _ = emu.request("POST", "/v1/account/sessions/email",
                                   {"email": "bridge@example.com", "password": "bridge-password"},
                                   headers={"X-Appwrite-Project": PROJECT})
        self.assertEqual(status, 201)

        def reconnect(what):
            before = s.metric("sluice_upstream_connects_total", result="success")
            self.assertEqual(emu.disconnect(), 1)
            wait_for(lambda: s.metric("sluice_upstream_connects_total", result="success") > before,
                     15, what)
            s.wait_ready()
            return self.connected_session(emu)

        # A reconnect while the JWT has most of its 900 s left presents the same JWT.
        self.assertEqual(reconnect("a reconnect"), session["$id"])
        self.assertEqual(self.server_sessions(emu)[0]["jwts"], 1)

        # 700 s later by the server's clock only 200 s are left: sluice mints a new JWT for its
        # session before it connects.
        emu.control("/_emulator/clock", {"advance": 700})
        self.assertEqual(reconnect("a reconnect with a fresh JWT"), session["$id"])
        (renewed,) = self.server_sessions(emu)
        self.assertEqual(renewed["jwts"], 2)
        self.assertGreater(renewed["jwtExpire"], session["jwtExpire"])

        # 20 minutes before the session ends (a year by default) its JWT has long expired: the
        # check refuses it, and sluice starts over on a new session and deletes the old one
        # (when to replace a session that is still good is the unit tests' part).
        emu.control("/_emulator/clock", {"advance": 365 * 86400 - 700 - 20 * 60})
        new_session = reconnect("a reconnect on a new session")
        self.assertNotEqual(new_session, session["$id"])
        self.assertEqual([x["$id"] for x in self.server_sessions(emu)], [new_session])

        self.assertEqual(self.private_order(emu, "o1")["delivered"], 1)
        wait_for(lambda: self.archive_ids() == ["o1"], 10, "the private event")
        self.assertEqual(s.metric("sluice_upstream_connects_total", result="failure"), 0,
                         self.dump_on_failure(s))
        self.assertEqual(s.metric("sluice_upstream_auth_failures_total", reason="guest"), 0)
        self.assert_no_secret_logged(s)
        self.assertEqual(s.stop(), 0)
