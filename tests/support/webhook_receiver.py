"""A scriptable webhook receiver for tests and demos (Python stdlib only).

Records every request (time, path, headers, body), answers from a script of responses
(status, delay, Retry-After) and then a default status, can serve TLS, and checks both of
sluice's signature schemes with Python's own hmac, independently of the daemon's code:

  standard  (Standard Webhooks) webhook-signature == "v1," + b64(HMAC-SHA256(key, id.ts.body)),
            key = b64decode(secret[6:]) for "whsec_..." secrets, else the secret's bytes
  appwrite  X-Appwrite-Webhook-Signature == b64(HMAC-SHA1(secret, unquote(url) + body))

In tests:
    with Receiver(secret="s", scheme="standard") as r:
        r.script([(503, {"Retry-After": "2"})] * 3)
        ... point sluice at r.url ...
        r.wait_for_requests(4)

Standalone (prints each request and whether its signature checks):
    python3 tests/support/webhook_receiver.py --port 8088 --secret s --scheme standard
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import ssl
import sys
import threading
import time
import urllib.parse


def standard_key(secret):
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[6:], validate=True)
        except ValueError:
            pass
    return secret.encode()


def check_standard(secret, headers, body):
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sig = headers.get("webhook-signature")
    if not (msg_id and ts and sig):
        return False
    mac = hmac.new(standard_key(secret), f"{msg_id}.{ts}.".encode() + body, hashlib.sha256)
    expected = "v1," + base64.b64encode(mac.digest()).decode()
    # The header may hold several space-separated signatures.
    return any(hmac.compare_digest(expected, s) for s in sig.split(" "))


def check_appwrite(secret, url, headers, body):
    sig = headers.get("X-Appwrite-Webhook-Signature")
    if not sig:
        return False
    mac = hmac.new(secret.encode(), urllib.parse.unquote(url).encode() + body, hashlib.sha1)
    return hmac.compare_digest(base64.b64encode(mac.digest()).decode(), sig)


class Request:
    def __init__(self, at, method, path, headers, body, status, signature_ok):
        self.at = at  # time.monotonic() when the request was fully read
        self.method = method
        self.path = path
        self.headers = headers  # an email.message.Message: case-insensitive get()
        self.body = body
        self.status = status  # what the receiver answered
        self.signature_ok = signature_ok  # None when no scheme is checked

    def json(self):
        return json.loads(self.body)


class Receiver:
    def __init__(self, host="127.0.0.1", port=0, secret=None, scheme=None, tls=None,
                 default_status=200, url_host=None, verbose=False):
        """tls: (certfile, keyfile) to serve HTTPS. url_host: host name put in .url."""
        self.secret = secret
        self.scheme = scheme
        self.default_status = default_status
        self.verbose = verbose
        self.requests = []
        self._script = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as sluice's pool expects

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver._handle(self, body)

            do_PUT = do_POST
            do_GET = do_POST

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.tls = tls is not None
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self.host = host
        self.port = self._server.server_address[1]
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{url_host or host}:{self.port}/hook"
        self._thread = None

    # --- scripting --------------------------------------------------------------------
    def script(self, responses):
        """Queues answers for the next requests: each a status, or (status, headers), or
        (status, headers, delay_seconds). Afterwards default_status is answered."""
        with self._cond:
            for r in responses:
                if isinstance(r, int):
                    r = (r, {}, 0)
                elif len(r) == 2:
                    r = (r[0], r[1], 0)
                self._script.append(r)

    def _next_answer(self):
        with self._cond:
            if self._script:
                return self._script.pop(0)
        return (self.default_status, {}, 0)

    def _handle(self, handler, body):
        status, headers, delay = self._next_answer()
        signature_ok = None
        if self.secret is not None and self.scheme == "standard":
            signature_ok = check_standard(self.secret, handler.headers, body)
        elif self.secret is not None and self.scheme == "appwrite":
            signature_ok = check_appwrite(self.secret, self.url_for(handler.path),
                                          handler.headers, body)
        req = Request(time.monotonic(), handler.command, handler.path, handler.headers, body,
                      status, signature_ok)
        if self.verbose:
            self._print(req)
        if delay:
            time.sleep(delay)
        answer = b'{"ok":true}' if 200 <= status < 300 else b'{"ok":false}'
        handler.send_response(status)
        for k, v in headers.items():
            handler.send_header(k, v)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)
        with self._cond:
            self.requests.append(req)
            self._cond.notify_all()

    def url_for(self, path):
        base = self.url.rsplit("/hook", 1)[0]
        return base + path

    def _print(self, req):
        print(f"--- {req.method} {req.path} -> {req.status}"
              + ("" if req.signature_ok is None else
                 f"  signature ({self.scheme}): {'OK' if req.signature_ok else 'BAD'}"))
        for k, v in req.headers.items():
            print(f"{k}: {v}")
        print(req.body.decode(errors="replace"))
        sys.stdout.flush()

    # --- waiting ----------------------------------------------------------------------
    def wait_for_requests(self, count, timeout=30.0):
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {count} requests "
                                         f"(got {len(self.requests)})")
                self._cond.wait(left)
            return list(self.requests)

    def snapshot(self):
        with self._cond:
            return list(self.requests)

    # --- lifecycle --------------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main():
    p = argparse.ArgumentParser(description="Print webhook requests and check signatures.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8088)
    p.add_argument("--secret", help="the signing secret configured in sluice")
    p.add_argument("--scheme", choices=["standard", "appwrite"], default="standard")
    p.add_argument("--status", type=int, default=200, help="status to answer")
    p.add_argument("--cert", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--key", help="the certificate's private key (PEM)")
    a = p.parse_args()
    r = Receiver(a.host, a.port, secret=a.secret, scheme=a.scheme if a.secret else None,
                 tls=(a.cert, a.key) if a.cert else None, default_status=a.status, verbose=True)
    print(f"listening on {r.url}", flush=True)
    try:
        r._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
