"""The composition root: what the API and the workers both need, chosen from the settings.

- `storage()`: OSS when OSS_* is configured, else the local folder served by the API.
- `editor(...)`: OpenAI when OPENAI_API_KEY is set (its edits cached in PostgreSQL), else the offline
  editor.
- `sites` (app.services.sites): the WordPress site a run publishes to, or none: the local preview.

Tasks and API routes get their adapters here, never by constructing them."""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid
from typing import Any

from app.core.config import get_settings
from app.integrations.llm import Editor, editor_from_settings
from app.integrations.storage import Storage, storage_from_settings
from app.services.llm_cache import PostgresEditCache


@functools.lru_cache(maxsize=1)
def storage() -> Storage:
    """OSS when OSS_* is configured, else the local folder (served by the API). One per process."""
    return storage_from_settings(get_settings())


def editor(**options: Any) -> Editor:
    """The editor for one edit. `options`: the run's editing options (model, temperature, timeout,
    chunk_tokens, max_attempts, max_wait); the offline editor ignores them."""
    return editor_from_settings(get_settings(), cache=PostgresEditCache(), **options)


def preview_token(article_id: uuid.UUID | str) -> str:
    """An unguessable token for an article's preview link (no login needed to open it)."""
    key = get_settings().jwt_secret().encode()
    return hmac.new(key, f"preview:{article_id}".encode(), hashlib.sha256).hexdigest()[:32]


def preview_url(article_id: uuid.UUID | str) -> str:
    base = str(get_settings().public_url).rstrip("/")
    return f"{base}/preview/{article_id}?token={preview_token(article_id)}"


def reset() -> None:
    storage.cache_clear()
