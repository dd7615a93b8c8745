"""The composition root: which concrete storage, editor and publisher this process uses, chosen from
the settings (OSS or a local folder; OpenAI or the offline editor; WordPress or the local preview).
Tasks and API routes get their adapters here, never by constructing them."""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid

from app.core.config import get_settings
from app.integrations.storage import Storage, storage_from_settings


@functools.lru_cache(maxsize=1)
def storage() -> Storage:
    """OSS when OSS_* is configured, else the local folder (served by the API). One per process."""
    return storage_from_settings(get_settings())


def preview_token(article_id: uuid.UUID | str) -> str:
    """An unguessable token for an article's preview link (no login needed to open it)."""
    key = get_settings().jwt_secret().encode()
    return hmac.new(key, f"preview:{article_id}".encode(), hashlib.sha256).hexdigest()[:32]


def preview_url(article_id: uuid.UUID | str) -> str:
    base = str(get_settings().public_url).rstrip("/")
    return f"{base}/preview/{article_id}?token={preview_token(article_id)}"


def reset() -> None:
    storage.cache_clear()
