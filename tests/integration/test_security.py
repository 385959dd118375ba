"""Credentials, TLS, secrets and hostile servers, through the real binaries: every auth form
including expiry and rejection, wss:// with a test CA (wrong CA, wrong host name, verify off),
known secrets grepped out of every output, and a fake server that sends garbage, stalls, closes
without a TCP close, sends a 1008 and stays up, or sends one huge frame."""

import base64
import hashlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

from common import (EMULATOR_BIN, SLUICE_BIN, IntegrationTest, PROJECT, SESSION, USER_ID,
                    emulator, read_lines, wait_for)

ORDERS = "databases.shop.tables.orders.rows"
ROW_CREATE = "databases.[databaseId].tables.[tableId].rows.[rowId].create"
API_KEY = "test-api-key"


def config(endpoint, out, auth, tls="", heartbeat="2s", reconnect="{initial: 100ms, max: 1s}"):
    return f"""
appwrite:
  endpoint: {endpoint}
  project: {PROJECT}
  auth: {auth}
  subscribe: url
  heartbeat: {heartbeat}
  reconnect: {reconnect}
{tls}
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


def private_order(emu, row_id):
    """An event only the bridge user may read: delivered means sluice is authenticated."""
    return emu.publish(event=ROW_CREATE, params={"databaseId": "shop", "tableId": "orders",
                                                 "rowId": row_id},
                       payload={"$id": row_id, "total": 1}, read=[f"user:{USER_ID}"],
                       project=PROJECT)


def session_token(user, secret):
    return base64.b64encode(json.dumps({"id": user, "secret": secret},
                                       separators=(",", ":")).encode()).decode()


def failures(s):
    return [r for r in s.logs() if r.get("msg") == "connection failed"]


class SecurityTest(IntegrationTest):
    def out(self):
        return os.path.join(self.dir, "out")

    def archive_ids(self):
        return [l["payload"]["$id"] for l in read_lines(os.path.join(self.out(), "archive.jsonl"))]

    def start_custom_emulator(self, users, extra=(), listen="127.0.0.1:0", name="fixtures"):
        fixtures = os.path.join(self.dir, name + ".json")
        with open(fixtures, "w") as f:
            json.dump({"projects": [PROJECT], "users": users}, f)
        emu = emulator.start(EMULATOR_BIN, listen=listen, args=["--fixtures", fixtures, *extra])
        self._cleanup_procs.append(emu)
        return emu

    def assert_backs_off(self, s):
        """Failed attempts are spaced by the backoff (≥ its 100 ms floor), never a tight loop."""
        delays = [int(r["retry_in_ms"]) for r in failures(s)]
        self.assertTrue(delays, self.dump_on_failure(s))
        self.assertGreaterEqual(min(delays), 100, self.dump_on_failure(s))


class AuthTest(SecurityTest):
    def test_session_cookie(self):
        emu = self.start_emulator()
        s = self.start_sluice(config(emu.endpoint, self.out(), f'{{session: "{SESSION}"}}'))
        s.wait_ready()
        self.assertEqual([c["user"] for c in emu.connections()], [USER_ID])
        self.assertEqual(private_order(emu, "o1")["delivered"], 1)
        wait_for(lambda: self.archive_ids() == ["o1"], 20, "the private event")
        accepted = [r for r in s.logs() if r.get("msg") == "credentials accepted"]
        self.assertEqual(accepted[0]["auth"], "session")
        self.assertEqual(accepted[0]["user"], USER_ID)
        self.assertEqual(s.stop(), 0)

    def test_expired_jwt_is_rejected_on_reconnect_with_backoff(self):
        emu = self.start_emulator(extra=["--api-key", API_KEY])
        lifetime = 4
        status, answer, _ = emu.request("POST", f"/v1/users/{USER_ID}/jwts",
                                        {"duration": lifetime},
                                        headers={"X-Appwrite-Key": API_KEY,
                                                 "X-Appwrite-Project": PROJECT})
        minted = time.time()
        self.assertIn(status, (200, 201), answer)
        s = self.start_sluice(config(emu.endpoint, self.out(), f'{{jwt: "{answer["jwt"]}"}}'))
        s.wait_ready()
        self.assertLess(time.time(), minted + lifetime, "sluice was not ready before the JWT expired")
        self.assertEqual(private_order(emu, "o1")["delivered"], 1)
        # Appwrite checks a JWT at handshake only: the open connection outlives the expiry.
        wait_for(lambda: time.time() > minted + lifetime + 1.5, lifetime + 5, "the JWT to expire")
        self.assertTrue(s.ready())
        self.assertEqual(emu.disconnect(), 1)
        wait_for(lambda: s.metric("sluice_upstream_connects_total", result="failure") >= 3, 30,
                 "three refused reconnects")
        rejected = [r for r in s.logs() if r.get("msg") == "the server rejected our credentials"]
        self.assertTrue(rejected, self.dump_on_failure(s))
        self.assertEqual(rejected[0]["auth"], "jwt")
        self.assertIn("401", rejected[0]["error"])
        self.assertIn("JWT", rejected[0]["error"])
        self.assertFalse(s.ready())
        self.assertEqual(s.get("/readyz")[0], 503)
        last_error = s.status()["upstream"]["last_error"]
        self.assertIn("401", last_error)
        self.assertIn("jwt", last_error)
        self.assertEqual(emu.connections(), [])
        self.assert_backs_off(s)
        self.assertIsNone(s.proc.poll())
        self.assertEqual(s.stop(), 0)

    def test_api_key_connects_with_the_jwt_of_its_own_session(self):
        emu = self.start_emulator(extra=["--api-key", API_KEY])
        proxy = RecordingProxy(emu.port)
        self.addCleanup(proxy.close)
        auth = f'{{api_key: "{API_KEY}", user_id: {USER_ID}}}'
        s = self.start_sluice(config(f"http://127.0.0.1:{proxy.port}/v1", self.out(), auth))
        s.wait_ready()
        drops = 3
        for i in range(drops):
            self.assertEqual(emu.disconnect(), 1)
            wait_for(lambda: s.metric("sluice_upstream_connects_total",
                                      result="success") >= i + 2, 20, f"reconnect {i + 1}")
            s.wait_ready()
            self.assertEqual(private_order(emu, f"o{i}")["delivered"], 1)
        wait_for(lambda: len(self.archive_ids()) == drops, 20, "the private events")

        # One session created with the key, one JWT minted for that session (it has most of its
        # 900 s left at every reconnect), and every WebSocket upgrade carried that JWT.
        exchanges = proxy.exchanges()
        upgrades = mints = sessions = 0
        session_id = minted = None
        for request, response in exchanges:
            line = request.split(b"\r\n", 1)[0]
            if line.startswith(b"POST /v1/users/" + USER_ID.encode() + b"/sessions "):
                sessions += 1
                self.assertIn(b"x-appwrite-key: " + API_KEY.encode(), request.lower())
                session_id = re.search(rb'"\$id":"([^"]+)"', response).group(1)
            elif line.startswith(b"POST /v1/users/" + USER_ID.encode() + b"/jwts "):
                mints += 1
                self.assertIn(b'"sessionId":"' + session_id + b'"', request)
                minted = re.search(rb'"jwt":"([^"]+)"', response).group(1)
            elif line.startswith(b"GET /v1/realtime"):
                upgrades += 1
                used = re.search(rb"(?im)^x-appwrite-jwt: *(\S+)", request).group(1)
                self.assertEqual(used, minted)
        self.assertEqual((sessions, mints, upgrades), (1, 1, drops + 1))
        self.assertEqual([c["session"] for c in emu.connections()], [session_id.decode()])
        self.assertEqual(s.stop(), 0)

    def test_email_session_is_renewed_when_the_server_forgets_it(self):
        users = [{"id": USER_ID, "email": "bridge@example.com", "password": "bridge-password"}]
        emu = self.start_custom_emulator(users)
        port = emu.port
        auth = '{email: bridge@example.com, password: "bridge-password"}'
        s = self.start_sluice(config(emu.endpoint, self.out(), auth))
        s.wait_ready()
        self.assertEqual(private_order(emu, "before")["delivered"], 1)
        wait_for(lambda: self.archive_ids() == ["before"], 20, "the first private event")
        # A new emulator process knows the user but none of the sessions of the old one.
        emu.kill()
        wait_for(lambda: not s.ready(), 20, "the drop to be seen")
        emu2 = self.start_custom_emulator(users, listen=f"127.0.0.1:{port}", name="again")
        s.wait_ready(timeout=30)
        self.assertEqual([c["user"] for c in emu2.connections()], [USER_ID])
        renewed = [r for r in s.logs()
                   if r.get("msg") == "the server rejected the cached credentials; renewing"]
        self.assertEqual(len(renewed), 1, self.dump_on_failure(s))
        self.assertEqual(renewed[0]["auth"], "email")
        self.assertEqual(private_order(emu2, "after")["delivered"], 1)
        wait_for(lambda: self.archive_ids() == ["before", "after"], 20, "both private events")
        self.assertEqual(s.stop(), 0)

    def test_wrong_credentials_at_start_are_reported_without_a_crash_loop(self):
        emu = self.start_emulator(extra=["--api-key", API_KEY])
        cases = [
            ("session", f'{{session: "{session_token(USER_ID, "wrong-secret")}"}}', "401"),
            ("email", '{email: bridge@example.com, password: "wrong-password"}', "401"),
            ("api_key", f'{{api_key: "wrong-key", user_id: {USER_ID}}}', "401"),
        ]
        for kind, auth, code in cases:
            with self.subTest(kind=kind):
                s = self.start_sluice(config(emu.endpoint, self.out(), auth))
                wait_for(lambda: s.metric("sluice_upstream_connects_total",
                                          result="failure") >= 3, 30, "three failed attempts")
                self.assertIsNone(s.proc.poll(), "sluice exited")
                self.assertEqual(s.get("/readyz")[0], 503)
                status = s.status()["upstream"]
                self.assertIn(code, status["last_error"], self.dump_on_failure(s))
                self.assertEqual(status["connects"], 0)
                self.assertEqual(emu.connections(), [])  # never connected, not even as a guest
                self.assert_backs_off(s)
                self.assertEqual(s.stop(), 0)


# --- TLS ------------------------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(directory, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
            "-subj", f"/CN={name}", cwd=directory)
    return os.path.join(directory, f"{name}.pem")


def make_server_cert(directory, ca, name, san):
    ext = os.path.join(directory, f"{name}.ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=directory)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext, cwd=directory)
    return os.path.join(directory, f"{name}.pem"), os.path.join(directory, f"{name}.key")


class TlsTest(SecurityTest):
    def setUp(self):
        super().setUp()
        self.ca = make_ca(self.dir, "test-ca")
        self.other_ca = make_ca(self.dir, "other-ca")

    def tls_emulator(self, san="DNS:localhost,IP:127.0.0.1", name="server"):
        cert, key = make_server_cert(self.dir, "test-ca", name, san)
        return self.start_emulator(extra=["--tls-cert", cert, "--tls-key", key])

    def run_sluice(self, emu, tls):
        endpoint = f"https://localhost:{emu.port}/v1"
        return self.start_sluice(config(endpoint, self.out(), f'{{session: "{SESSION}"}}',
                                        tls="  tls: " + tls))

    def assert_refused(self, s, emu):
        wait_for(lambda: s.metric("sluice_upstream_connects_total", result="failure") >= 2, 30,
                 "refused connects")
        self.assertFalse(s.ready())
        self.assertEqual(s.metric("sluice_upstream_connects_total", result="success"), 0)
        self.assertIn("certificate verify failed", s.status()["upstream"]["last_error"],
                      self.dump_on_failure(s))
        self.assertEqual(emu.connections(), [])
        self.assertEqual(s.stop(), 0)

    def test_admin_server_over_tls(self):
        cert, key = make_server_cert(self.dir, "test-ca", "admin", "IP:127.0.0.1")
        emu = self.start_emulator()
        text = config(emu.endpoint, self.out(), f'{{session: "{SESSION}"}}')
        text += f"admin:\n  tls: {{cert_file: {cert}, key_file: {key}}}\n"
        s = self.start_sluice(text)
        trusted = ssl.create_default_context(cafile=self.ca)
        url = f"https://{s.admin}/metrics"
        wait_for(lambda: "sluice_upstream_connected 1" in
                 urllib.request.urlopen(url, context=trusted, timeout=5).read().decode(), 20,
                 "metrics over TLS")
        with self.assertRaises(urllib.error.URLError):  # a client that trusts another CA
            urllib.request.urlopen(url, context=ssl.create_default_context(cafile=self.other_ca),
                                   timeout=5)
        status, body = s.get("/healthz")  # plain HTTP on the TLS port
        self.assertEqual(status, 400, body)
        self.assertEqual(s.stop(), 0)

    def test_wss_with_test_ca(self):
        emu = self.tls_emulator()
        s = self.run_sluice(emu, f"{{ca_file: {self.ca}}}")
        s.wait_ready()
        self.assertTrue(s.status()["upstream"]["tls_verify"])
        self.assertEqual(private_order(emu, "o1")["delivered"], 1)
        wait_for(lambda: self.archive_ids() == ["o1"], 20, "the event over wss")
        self.assertEqual(s.stop(), 0)

    def test_wrong_ca_is_refused(self):
        emu = self.tls_emulator()
        self.assert_refused(self.run_sluice(emu, f"{{ca_file: {self.other_ca}}}"), emu)

    def test_wrong_host_name_is_refused(self):
        emu = self.tls_emulator(san="DNS:elsewhere.example", name="elsewhere")
        self.assert_refused(self.run_sluice(emu, f"{{ca_file: {self.ca}}}"), emu)

    def test_verify_false_connects_with_a_warning(self):
        emu = self.tls_emulator(san="DNS:elsewhere.example", name="elsewhere")
        s = self.run_sluice(emu, "{verify: false}")
        s.wait_ready()
        self.assertFalse(s.status()["upstream"]["tls_verify"])
        warnings = [r for r in s.logs() if "verification is OFF" in r.get("msg", "")]
        self.assertEqual(len(warnings), 1, self.dump_on_failure(s))
        self.assertEqual(warnings[0]["level"], "warn")
        self.assertEqual(s.stop(), 0)


# --- secrets --------------------------------------------------------------------------------

class SecretsTest(SecurityTest):
    SESSION_SECRET = "sess-Q7v-must-not-leak"
    PASSWORD = "pw-K3x-must-not-leak"
    KEY = "key-M9z-must-not-leak"

    def test_known_secrets_never_appear(self):
        token = session_token(USER_ID, self.SESSION_SECRET)
        emu = self.start_custom_emulator(
            [{"id": USER_ID, "email": "bridge@example.com", "password": self.PASSWORD,
              "secret": self.SESSION_SECRET}], extra=["--api-key", self.KEY])
        secrets_dir = os.path.join(self.dir, "secrets")
        os.mkdir(secrets_dir)
        with open(os.path.join(secrets_dir, "session"), "w") as f:
            f.write(token + "\n")
        with open(os.path.join(secrets_dir, "key"), "w") as f:
            f.write(self.KEY)
        env = {"SL_PASSWORD": self.PASSWORD, "SL_KEY": self.KEY}
        forms = {
            "session": f"{{session: '${{file:{secrets_dir}/session}}'}}",
            "email": "{email: bridge@example.com, password: '${env:SL_PASSWORD}'}",
            "api_key": f"{{api_key: '${{file:{secrets_dir}/key}}', user_id: {USER_ID}}}",
            "api_key_env": f"{{api_key: '${{env:SL_KEY}}', user_id: {USER_ID}}}",
        }
        outputs = []  # (what, text)
        for name, auth in forms.items():
            good = config(emu.endpoint, self.out(), auth)
            # A secret read into a field of the wrong type, and an error next to the auth block.
            bad = good.replace("heartbeat: 2s", "heartbeat: '${env:SL_PASSWORD}'") \
                      .replace("subscribe: url", "subscribe: '${file:%s/key}'" % secrets_dir) \
                      .replace(f"project: {PROJECT}", f"project: {PROJECT}\n  bogus: 1")
            for label, text, expect in (("valid", good, 0), ("invalid", bad, None)):
                path = os.path.join(self.dir, f"{name}-{label}.yaml")
                with open(path, "w") as f:
                    f.write(text)
                r = subprocess.run([SLUICE_BIN, "--config", path, "--check-config"],
                                   env=dict(os.environ, **env), capture_output=True, text=True)
                outputs.append((f"{name} {label} --check-config", r.stdout + r.stderr))
                if expect is None:
                    self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
                    self.assertIn("bogus", r.stderr)
                else:
                    self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

            s = self.start_sluice(good, env=env)
            s.wait_ready()
            self.assertEqual(private_order(emu, f"{name}-event")["delivered"], 1)
            wait_for(lambda: f"{name}-event" in self.archive_ids(), 20, "the event")
            emu.disconnect()  # a reconnect logs its own lines
            wait_for(lambda: s.metric("sluice_upstream_connects_total", result="success") >= 2, 20,
                     "a reconnect")
            s.wait_ready()
            outputs.append((f"{name} /status", s.get("/status")[1]))
            outputs.append((f"{name} /metrics", s.get("/metrics")[1]))
            self.assertEqual(s.stop(), 0)
            outputs.append((f"{name} log", s.log_text()))
            self._cleanup_procs.remove(s)

        # A run whose secrets are refused: the error paths must not quote them either.
        wrong = config(emu.endpoint, self.out(),
                       "{email: bridge@example.com, password: '${env:SL_WRONG}'}")
        s = self.start_sluice(wrong, env={"SL_WRONG": "wrong-Z1-must-not-leak"})
        wait_for(lambda: s.metric("sluice_upstream_connects_total", result="failure") >= 2, 20,
                 "refused attempts")
        outputs.append(("wrong password /status", s.get("/status")[1]))
        self.assertEqual(s.stop(), 0)
        outputs.append(("wrong password log", s.log_text()))

        needles = [self.SESSION_SECRET, self.PASSWORD, self.KEY, token, "wrong-Z1-must-not-leak",
                   base64.b64encode(self.PASSWORD.encode()).decode()]
        self.assertGreater(len(outputs), 10)
        for what, text in outputs:
            self.assertTrue(text.strip(), what)
            for needle in needles:
                self.assertNotIn(needle, text, f"{what} contains a secret")

    def test_user_info_in_a_secret_url_never_appears(self):
        """An endpoint whose user info comes from ${env:…} is shown redacted in /status and
        never logged; a webhook URL from ${env:…} that cannot be parsed, or that carries user
        info, is refused by --check-config with a located message that does not quote it."""
        password = "ui-P4s-must-not-leak"
        emu = self.start_emulator()
        self.assertTrue(emu.endpoint.startswith("http://"), emu.endpoint)
        endpoint = emu.endpoint.replace("http://", f"http://bridge:{password}@", 1)
        env = {"SL_ENDPOINT": endpoint,
               "SL_HOOK_SPACE": f"http://127.0.0.1:9/{password} x",
               "SL_HOOK_USER": f"https://bridge:{password}@127.0.0.1:9/"}
        good = config("'${env:SL_ENDPOINT}'", self.out(), f'{{session: "{SESSION}"}}')
        outputs = []
        for name in ("SL_HOOK_SPACE", "SL_HOOK_USER"):
            bad = good.replace("sinks:\n", "sinks:\n  hook: {type: webhook, url: '${env:%s}'}\n"
                               % name, 1)
            path = os.path.join(self.dir, f"{name}.yaml")
            with open(path, "w") as f:
                f.write(bad)
            r = subprocess.run([SLUICE_BIN, "--config", path, "--check-config"],
                               env=dict(os.environ, **env), capture_output=True, text=True)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertRegex(r.stderr, r"%s:\d+:\d+: sinks\.hook\.url: .*\$\{env:%s\}"
                             % (re.escape(path), name))
            outputs.append((f"{name} --check-config", r.stdout + r.stderr))

        s = self.start_sluice(good, env=env)
        s.wait_ready()
        self.assertEqual(private_order(emu, "ui-event")["delivered"], 1)
        wait_for(lambda: "ui-event" in self.archive_ids(), 20, "the event")
        status = s.status()
        self.assertRegex(status["upstream"]["endpoint"], r"^ws://\*\*\*@127\.0\.0\.1:\d+/…$")
        emu.disconnect()  # a reconnect logs its own lines
        wait_for(lambda: s.metric("sluice_upstream_connects_total", result="success") >= 2, 20,
                 "a reconnect")
        s.wait_ready()
        outputs.append(("/status", s.get("/status")[1]))
        outputs.append(("/metrics", s.get("/metrics")[1]))
        self.assertEqual(s.stop(), 0)
        outputs.append(("log", s.log_text()))
        for what, text in outputs:
            self.assertTrue(text.strip(), what)
            self.assertNotIn(password, text, f"{what} contains the secret")


class ConfigBombTest(SecurityTest):
    def test_healthz_answers_while_a_large_file_reloads(self):
        """A reload parses the file off the event loop: /healthz answers within 1 s throughout
        the reload of a large file that is valid and under the limits (7 MB, 150,000 event
        patterns), and the reload then succeeds."""
        emu = self.start_emulator()
        base = config(emu.endpoint, self.out(), f'{{session: "{SESSION}"}}')
        s = self.start_sluice(base)
        s.wait_ready()
        patterns = "".join(f'      - "databases.*.tables.*.rows.r{i:07d}.create"\n'
                           for i in range(150000))
        large = base.replace("    sinks: [archive]\n", "    sinks: [archive]\n    events:\n"
                             + patterns, 1)
        self.assertLess(len(large), 8 << 20)
        with open(s.config_path, "w") as f:
            f.write(large)
        # Probes from before the reload starts until it has ended, each timed on its own.
        latencies = []
        done = threading.Event()

        def probe():
            while not done.is_set():
                started = time.monotonic()
                try:
                    with urllib.request.urlopen(f"http://{s.admin}/healthz", timeout=10) as r:
                        ok = r.status == 200
                except OSError:
                    ok = False
                latencies.append((time.monotonic() - started, ok))
                time.sleep(0.05)

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        wait_for(lambda: len(latencies) >= 3, 10, "probes before the reload")
        s.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: s.metric("sluice_config_reloads_total", result="success") >= 1, 60,
                 "the reload")
        done.set()
        prober.join(15)
        self.assertTrue(all(ok for _, ok in latencies), latencies)
        slowest = max(seconds for seconds, _ in latencies)
        self.assertLess(slowest, 1.0, f"/healthz took {slowest:.2f} s during the reload")
        self.assertEqual(s.metric("sluice_config_reloads_total", result="failure"), 0)
        self.assertEqual(s.stop(), 0)


# --- hostile servers ------------------------------------------------------------------------

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_frame(payload, opcode=1):
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + n.to_bytes(2, "big")
    else:
        head += bytes([127]) + n.to_bytes(8, "big")
    return head + payload


def read_head(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def event_frame(row_id, payload_extra=""):
    return ('{"type":"event","data":{"events":["databases.shop.tables.orders.rows.%s.create"],'
            '"channels":["%s"],"timestamp":"2026-01-01T00:00:00.000+00:00",'
            '"payload":{"$id":"%s"%s}}}' % (row_id, ORDERS, row_id, payload_extra)).encode()


def close_frame(code, reason):
    return ws_frame(code.to_bytes(2, "big") + reason.encode(), opcode=8)


def error_frame(code, message):
    return ws_frame(json.dumps({"type": "error", "data": {"code": code, "message": message}})
                    .encode())


class HostileServer:
    """A raw TCP server that speaks just enough HTTP and WebSocket to play one scripted
    behaviour per realtime connection; REST calls get a plain 200. A behaviour named
    "NAME:ARG" takes an argument; behaviours ending in "_on_cue" wait for cue() first."""

    def __init__(self, behaviours):
        self.behaviours = list(behaviours)
        self.upgrades = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.closed = False
        self._cue = threading.Event()
        self.cued = threading.Event()  # set once a cued behaviour has acted
        self._send_lock = threading.Lock()  # a cued frame and a pong never interleave
        threading.Thread(target=self._accept, daemon=True).start()

    def cue(self):
        """Lets the current connection's cued behaviour act; returns once it has."""
        self.cued.clear()
        self._cue.set()
        if not self.cued.wait(10):
            raise AssertionError("the hostile server did not act on its cue")

    def _wait_for_cue(self):
        self._cue.wait()
        self._cue.clear()

    def close(self):
        self.closed = True
        self._cue.set()
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            head = read_head(conn)
            if head is None:
                return
            if not head.startswith(b"GET /v1/realtime"):
                body = b'{"$id":"bridge","version":"1.9.6"}'
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                return
            behaviour = self.behaviours.pop(0) if self.behaviours else "good"
            behaviour, _, arg = behaviour.partition(":")
            self.upgrades += 1
            if behaviour == "stall_handshake":
                self._hold(conn)
                return
            key = re.search(rb"(?im)^sec-websocket-key: *(\S+)", head).group(1)
            accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
            if behaviour == "stall_response":
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")
                self._hold(conn)
                return
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            conn.sendall(ws_frame(b'{"type":"connected","data":{"channels":["%s"],'
                                  b'"user":{"$id":"bridge"}}}' % ORDERS.encode()))
            if behaviour == "close":
                # A close frame at once, and the TCP close once the client has answered it (the
                # server closes TCP first, RFC 6455 §7.1.1).
                conn.sendall(close_frame(1000, ""))
                self._pong(conn)
                return
            if behaviour == "close_on_cue":
                # Answers pings until the cue, then a close frame with the code `arg` and,
                # like a hung server or a lost FIN, never the TCP close.
                threading.Thread(target=self._pong, args=(conn,), daemon=True).start()
                self._wait_for_cue()
                with self._send_lock:
                    conn.sendall(close_frame(int(arg), "hostile close %s" % arg))
                self.cued.set()
                self._hold_open()
                return
            if behaviour == "error_1008_then_drop_on_cue":
                # One policy-violation error on a connection that then stays healthy (an event,
                # pongs), and a plain TCP drop at the cue.
                conn.sendall(error_frame(1008, "Invalid query"))
                conn.sendall(ws_frame(event_frame("after-1008")))
                threading.Thread(target=self._pong, args=(conn,), daemon=True).start()
                self._wait_for_cue()
                conn.shutdown(socket.SHUT_RDWR)
                self.cued.set()
                return
            if behaviour == "huge_event_on_cue":
                # At the cue, one ~14 MB event (7 M array elements in its payload), then
                # normal ones.
                self._wait_for_cue()
                conn.sendall(ws_frame(event_frame("huge", ',"list":[%s0]' % ("0," * 7_000_000))))
                for i in range(3):
                    conn.sendall(ws_frame(event_frame("after-huge-%d" % i)))
                self.cued.set()
            if behaviour == "garbage":
                nested = b'{"type":"event","data":' + b"[" * 100000 + b"]" * 100000 + b"}"
                for frame in (
                        ws_frame(b"this is not json"),
                        ws_frame(b"\x00\x01\x02binary", opcode=2),
                        ws_frame(b"x" * (1 << 20)),  # 1 MB of nothing
                        ws_frame(nested),
                        ws_frame(b'{"type":"event","data":{"events":7}}'),
                        ws_frame(b'{"type":"no-such-type"}'),
                        ws_frame(event_frame("huge-numbers",
                                             ',"n":1e999999,"i":123456789012345678901234567890')),
                        ws_frame(event_frame("big", ',"blob":"%s"' % ("y" * (1 << 20)))),
                        ws_frame(event_frame("after-garbage")),
                        ws_frame(b'{"type":"event","x":"\xff\xfe\xc3"}'),  # invalid UTF-8
                ):
                    conn.sendall(frame)
            self._pong(conn)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _hold(self, conn):
        while not self.closed and conn.recv(4096):
            pass

    def _hold_open(self):
        """Keeps the connection open (the caller's `finally` closes it) until the server stops,
        whatever the client sends or shuts down."""
        while not self.closed:
            time.sleep(0.05)

    def _pong(self, conn):
        """Answers each client frame (pings) with a pong until the client goes away."""
        while not self.closed:
            head = recv_exact(conn, 2)
            if head is None:
                return
            n = head[1] & 0x7F
            if n == 126:
                n = int.from_bytes(recv_exact(conn, 2), "big")
            elif n == 127:
                n = int.from_bytes(recv_exact(conn, 8), "big")
            if recv_exact(conn, 4 + n) is None:  # mask + payload
                return
            if head[0] & 0x0F == 8:
                return  # close
            with self._send_lock:
                conn.sendall(ws_frame(b'{"type":"pong"}'))


class HostileServerTest(SecurityTest):
    def test_garbage_and_stalls_are_survived_counted_and_retried(self):
        server = HostileServer(["garbage", "stall_handshake", "stall_response", "good"])
        self.addCleanup(server.close)
        s = self.start_sluice(config(f"http://127.0.0.1:{server.port}/v1", self.out(),
                                     f'{{session: "{SESSION}"}}', heartbeat="1s",
                                     reconnect="{initial: 100ms, max: 500ms}"))
        wait_for(lambda: server.upgrades >= 4 and s.ready(), 60,
                 "subscribed on the fourth connection")
        self.assertIsNone(s.proc.poll())
        m = s.metrics()

        def metric(name, **labels):
            return m.get((name, frozenset(labels.items())), 0.0)

        # Garbage text, 1 MB of garbage, nesting beyond the limit → json; one binary frame;
        # an unknown type; a known type with wrong fields.
        self.assertGreaterEqual(metric("sluice_upstream_frames_invalid_total", reason="json"), 3,
                                self.dump_on_failure(s))
        self.assertEqual(metric("sluice_upstream_frames_invalid_total", reason="binary"), 1)
        self.assertEqual(metric("sluice_upstream_frames_invalid_total", reason="type"), 1)
        # "fields" also takes the event whose numbers overflow a double (1e999999).
        self.assertGreaterEqual(metric("sluice_upstream_frames_invalid_total", reason="fields"), 1)
        print("invalid frames:", {dict(k[1]).get("reason"): v for k, v in m.items()
                                  if k[0] == "sluice_upstream_frames_invalid_total"})
        # The invalid UTF-8 text frame ends the first connection; both stalls time out.
        self.assertGreaterEqual(metric("sluice_upstream_connects_total", result="failure"), 2)
        self.assertEqual(metric("sluice_upstream_connects_total", result="success"), 2)
        # Valid events around the garbage, including one of 1 MB, went through.
        wait_for(lambda: {"big", "after-garbage"} <= set(self.archive_ids()), 20, "the events")
        big = [l for l in read_lines(os.path.join(self.out(), "archive.jsonl"))
               if l["payload"]["$id"] == "big"]
        self.assertEqual(len(big[0]["payload"]["blob"]), 1 << 20)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_close_frame_with_tcp_close_reconnects(self):
        server = HostileServer(["close", "good"])
        self.addCleanup(server.close)
        s = self.start_sluice(config(f"http://127.0.0.1:{server.port}/v1", self.out(),
                                     f'{{session: "{SESSION}"}}', heartbeat="30s",
                                     reconnect="{initial: 100ms, max: 500ms}"))
        wait_for(lambda: server.upgrades >= 2 and s.ready(), 10,
                 "subscribed again on a second connection")
        self.assertEqual(s.metric("sluice_upstream_disconnects_total", reason="server_closed"), 1,
                         self.dump_on_failure(s))
        # The closing handshake ended it, not the deadline for a peer that never closes.
        self.assertFalse([r for r in s.logs() if "did not close" in r.get("msg", "")],
                         self.dump_on_failure(s))
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_close_frame_ends_readiness_at_once_and_the_connection_within_a_deadline(self):
        # A close frame, then no TCP close (a hung server, a lost FIN): sluice is no longer
        # subscribed from that moment and ends the connection after a short closing deadline,
        # long before a heartbeat interval (30 s here), then reconnects with the normal backoff.
        codes = (1001, 1011, 4000)
        server = HostileServer([f"close_on_cue:{code}" for code in codes] + ["good"])
        self.addCleanup(server.close)
        s = self.start_sluice(config(f"http://127.0.0.1:{server.port}/v1", self.out(),
                                     f'{{session: "{SESSION}"}}', heartbeat="30s",
                                     reconnect="{initial: 100ms, max: 500ms}"))
        for n, code in enumerate(codes, start=1):
            wait_for(lambda: server.upgrades == n and s.ready(), 20,
                     f"subscribed on connection {n}")
            server.cue()
            wait_for(lambda: not s.ready(), 2, f"/readyz to fail after the close frame {code}")
            self.assertEqual(s.metric("sluice_upstream_connected"), 0, self.dump_on_failure(s))
            self.assertEqual(s.metric("sluice_upstream_disconnects_total", reason="server_closed"),
                             n, self.dump_on_failure(s))
            record = wait_for(lambda: next((r for r in s.logs()
                                            if r.get("msg") == "the server closed the connection"
                                            and r.get("code") == str(code)), None),
                              5, f"the log line of the close frame {code}")
            self.assertEqual(record["level"], "warn")
            self.assertEqual(record["reason"], f"hostile close {code}")
            wait_for(lambda: server.upgrades == n + 1 and s.ready(), 10,
                     f"subscribed again after the close frame {code}")
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_a_1008_on_a_healthy_connection_does_not_slow_a_later_reconnect(self):
        # Appwrite closes the connection after a 1008; one that stays healthy after it has not
        # been ended by it, so its later drop waits the normal backoff, not reconnect.max.
        server = HostileServer(["error_1008_then_drop_on_cue", "good"])
        self.addCleanup(server.close)
        s = self.start_sluice(config(f"http://127.0.0.1:{server.port}/v1", self.out(),
                                     f'{{session: "{SESSION}"}}', heartbeat="1s",
                                     reconnect="{initial: 100ms, max: 30s}"))
        wait_for(lambda: "after-1008" in self.archive_ids(), 20, "the event after the 1008")
        self.assertTrue(s.ready())
        server.cue()
        wait_for(lambda: server.upgrades == 2 and s.ready(), 5,
                 "subscribed again after the normal backoff, not reconnect.max (30 s)")
        self.assertEqual(s.metric("sluice_upstream_disconnects_total", reason="dropped"), 1,
                         self.dump_on_failure(s))
        self.assertEqual(s.metric("sluice_upstream_disconnects_total", reason="server_error"), 0)
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))

    def test_one_huge_frame_does_not_keep_its_memory(self):
        server = HostileServer(["huge_event_on_cue"])
        self.addCleanup(server.close)
        # ASan's quarantine holds freed memory back on purpose; without it, what sluice frees is
        # unmapped at once, as glibc does with blocks this large.
        s = self.start_sluice(config(f"http://127.0.0.1:{server.port}/v1", self.out(),
                                     f'{{session: "{SESSION}"}}', heartbeat="5s"),
                              env={"ASAN_OPTIONS": "quarantine_size_mb=0"})
        s.wait_ready()
        idle = rss_mb(s)
        server.cue()
        archive = os.path.join(self.out(), "archive.jsonl")

        def archived(row_id):
            with open(archive) as f:
                return f'"$id":"{row_id}"' in f.read()

        wait_for(lambda: archived("after-huge-2"), 30, "the events after the huge one",
                 interval=0.2)
        self.assertTrue(archived("huge"))
        peak = rss_mb(s)
        wait_for(lambda: rss_mb(s) < idle + 20, 5,
                 f"RSS back near the idle footprint ({idle:.0f} MB idle, {peak:.0f} MB after)")
        print(f"RSS: {idle:.0f} MB idle, {peak:.0f} MB after the huge frame, "
              f"{rss_mb(s):.0f} MB at the end")
        self.assertEqual(s.stop(), 0, self.dump_on_failure(s))


def rss_mb(s):
    with open(f"/proc/{s.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class RecordingProxy:
    """A TCP proxy that keeps, per connection, the bytes each side sent."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._records = []
        self._lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def exchanges(self):
        with self._lock:
            return [(bytes(r[0]), bytes(r[1])) for r in self._records]

    def close(self):
        self.closed = True
        self.sock.close()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            record = (bytearray(), bytearray())
            with self._lock:
                self._records.append(record)
            threading.Thread(target=self._pump, args=(client, upstream, record[0]),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, record[1]),
                             daemon=True).start()

    def _pump(self, src, dst, log):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self._lock:
                    log.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


if __name__ == "__main__":
    unittest.main()
