"""A webhook receiver for the tests (stdlib http.server, in a thread, on loopback). It checks every
request's signature the way the Standard Webhooks specification describes it — written out here,
not with the library Copydesk signs with, so a signing mistake cannot hide — and answers 500 to the
first `fail_first` requests of an endpoint, 401 to a request whose signature does not verify.

Endpoints are paths (`/hooks/<name>`), each with its secret, registered by the test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support import free_port

TOLERANCE = 300  # seconds, as the specification suggests


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: float | None = None) -> bool:
    """webhook-signature holds "v1,<base64 HMAC-SHA256 of id.timestamp.body>" (several, space-separated);
    the key is the base64 part of the whsec_ secret; the timestamp must be within TOLERANCE."""
    msg_id, stamp, signatures = (
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
    )
    if not (msg_id and stamp and signatures and stamp.isdigit()):
        return False
    if abs((now or time.time()) - int(stamp)) > TOLERANCE:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    return any(hmac.compare_digest(sig, f"v1,{expected}") for sig in signatures.split(" "))


@dataclass
class Endpoint:
    secret: str
    fail_first: int = 0
    requests: list[dict] = field(default_factory=list)


class WebhookReceiver:
    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.lock = threading.Lock()
        self.port = free_port()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._answer(self.path, headers, body)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    def expect(self, name: str, secret: str, *, fail_first: int = 0) -> None:
        with self.lock:
            self.endpoints[f"/hooks/{name}"] = Endpoint(secret, fail_first)

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            endpoint = self.endpoints.get(path)
            if endpoint is None:
                return 404
            verified = verify(endpoint.secret, headers, body)
            failing = verified and len([r for r in endpoint.requests if r["verified"]]) < endpoint.fail_first
            status = 401 if not verified else 500 if failing else 204
            endpoint.requests.append(
                {
                    "headers": headers,
                    "body": json.loads(body or b"null"),
                    "verified": verified,
                    "status": status,
                }
            )
            return status

    def requests(self, name: str) -> list[dict]:
        with self.lock:
            endpoint = self.endpoints.get(f"/hooks/{name}")
            return list(endpoint.requests) if endpoint else []
