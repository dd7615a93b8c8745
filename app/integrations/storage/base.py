"""The storage interface every backend implements.

Keys are `/`-separated paths. Three areas, by prefix:
- `manuscripts/…`  originals as received: private, never public, never deleted by the pipeline;
- `artifacts/…`    intermediate files between steps (converted .docx, extracted images): private;
- `media/…`        published images, content-addressed (`media/<prefix>/<sha256>.<ext>`): public.

A site's prefix is part of the key (see `media_key`), not a setting of a backend: one bucket or folder
serves every site, both backends behave alike, and the de-dup check (`put_if_absent`) sees the final key.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from app.core.errors import PermanentError

PUBLIC_PREFIX = "media/"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"
MAX_KEY_BYTES = 1023  # OSS's limit; the local backend keeps to it too so keys move between backends
_SITE_PREFIX = re.compile(r"[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*")


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    content_type: str
    etag: str = ""


@runtime_checkable
class Storage(Protocol):
    name: str

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> StoredObject: ...

    def get(self, key: str) -> bytes:
        """The object's bytes; NotFound when missing."""
        ...

    def head(self, key: str) -> StoredObject | None:
        """Metadata, or None when the key does not exist."""
        ...

    def put_if_absent(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> bool:
        """Upload unless the key already exists (content-addressed keys): True when it uploaded."""
        ...

    def delete(self, key: str) -> None: ...

    def url(self, key: str, *, expires: int | None = None) -> str:
        """A URL a browser can fetch: public for media/, signed (expiring) for private keys."""
        ...


def content_key(data: bytes, ext: str, prefix: str = "media") -> str:
    digest = hashlib.sha256(data).hexdigest()
    ext = ext.lower().lstrip(".") or "bin"
    return f"{prefix.rstrip('/')}/{digest}.{ext}"


def media_key(data: bytes, ext: str, site_prefix: str = "") -> str:
    """`media/<site_prefix>/<sha256>.<ext>` (or `media/<sha256>.<ext>`): where a site's images go."""
    site_prefix = site_prefix.strip("/")
    if site_prefix and not _SITE_PREFIX.fullmatch(site_prefix):
        raise PermanentError(
            f"invalid site prefix {site_prefix!r}: use lower-case letters, digits, '.', '_', '-' and '/'",
            code="invalid_key",
        )
    return content_key(data, ext, prefix=f"media/{site_prefix}" if site_prefix else "media")


def check_key(key: str) -> str:
    """Refuse keys that could escape the storage root or that OSS would reject; return the key."""
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or any(p in ("", ".", "..") for p in key.split("/"))
        or any(ord(c) < 0x20 or c == "\x7f" for c in key)
        or len(key.encode("utf-8")) > MAX_KEY_BYTES
    ):
        raise PermanentError(f"invalid storage key {key!r}", code="invalid_key")
    return key


def guess_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def is_public(key: str) -> bool:
    return key.startswith(PUBLIC_PREFIX)
