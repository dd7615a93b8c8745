"""Webhook deliveries, signed as Standard Webhooks have it (the `standardwebhooks` library signs):
headers `webhook-id` (the same on every try of one delivery, so a receiver can drop repeats),
`webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
"<id>.<timestamp>.<body>">`, the key being the base64 part of the endpoint's `whsec_…` secret.
Pure: the caller records the outcome and decides about retries."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook as Signer

from app.core.errors import ConfigurationError, ConnectionFailed, ServiceUnavailable, TimedOut

SECRET_PREFIX = "whsec_"
USER_AGENT = "Copydesk-Webhooks/1"


def endpoint_name(url: str) -> str:
    """The URL without its path and query, for messages and logs: chat services put their secret
    token in the path of a webhook URL."""
    parts = urlsplit(url)
    hidden = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{hidden}"


def shown_recipient(channel: str, recipient: str) -> str:
    """A notification's recipient as logs and editors see it: an address, or a webhook's endpoint_name."""
    return endpoint_name(recipient) if channel == "webhook" else recipient


def new_secret() -> str:
    """A fresh endpoint secret: whsec_ + 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def body_of(payload: dict[str, Any]) -> str:
    """The exact bytes signed and sent (compact JSON, keys in order)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def signed_headers(secret: str, webhook_id: str, body: str, at: datetime | None = None) -> dict[str, str]:
    at = at or datetime.now(timezone.utc)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Signer(secret).sign(webhook_id, at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def deliver(url: str, secret: str, webhook_id: str, payload: dict[str, Any], *, timeout: float = 10.0) -> int:
    """POST the payload, signed now. Returns the 2xx status. Anything else is transient (the caller
    tries again later, a bounded number of times): timeouts, connection errors, and every other
    answer, redirects included (they are not followed)."""
    body, name = body_of(payload), endpoint_name(url)
    try:
        response = httpx.post(
            url,
            content=body.encode(),
            headers=signed_headers(secret, webhook_id, body),
            timeout=timeout,
            follow_redirects=False,
        )
    except httpx.TimeoutException:
        raise TimedOut(f"the webhook endpoint {name} did not answer in {timeout:g} s") from None
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"the webhook URL {name} is not valid: {exc}") from None
    except httpx.TransportError as exc:
        raise ConnectionFailed(f"could not reach the webhook endpoint {name}: {exc}") from None
    if 200 <= response.status_code < 300:
        return response.status_code
    excerpt = " ".join(response.text.split())[:200]
    raise ServiceUnavailable(
        f"the webhook endpoint {name} answered {response.status_code}" + (f": {excerpt}" if excerpt else "")
    )
