"""Object storage: OSS (oss2) when OSS_* is configured, a local folder otherwise."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from app.integrations.storage.base import (
    IMMUTABLE_CACHE,
    Storage,
    StoredObject,
    check_key,
    content_key,
    guess_type,
    is_public,
    media_key,
)
from app.integrations.storage.local import LocalStorage

if TYPE_CHECKING:
    from app.core.config import Settings
    from app.integrations.storage.oss import OssStorage

__all__ = [
    "IMMUTABLE_CACHE",
    "LocalStorage",
    "OssStorage",
    "Storage",
    "StoredObject",
    "check_key",
    "content_key",
    "guess_type",
    "is_public",
    "media_key",
    "storage_from_settings",
]


def storage_from_settings(settings: Settings) -> Storage:
    """The configured backend. Build it once per process and share it: OssStorage holds a connection pool
    and is safe to use from the io worker's threads."""
    if settings.uses_oss:
        from app.integrations.storage.oss import OssStorage  # only when used: see __getattr__

        return OssStorage(
            endpoint=settings.oss_endpoint,
            bucket=settings.oss_bucket,
            access_key_id=settings.oss_access_key_id,
            access_key_secret=settings.oss_access_key_secret.get_secret_value(),
            region=settings.oss_region,
            signature_version=settings.oss_signature_version,
            public_base_url=settings.oss_public_base_url,
        )
    # The API verifies the signed /files/ URLs the workers make: both derive the key from the shared secret.
    signing_key = hmac.new(settings.jwt_secret().encode(), b"copydesk local storage urls", hashlib.sha256)
    return LocalStorage(settings.storage_root, str(settings.public_url), signing_key=signing_key.hexdigest())


def __getattr__(name: str):
    if name == "OssStorage":  # imported on demand: oss2 takes a quarter of a second to import
        from app.integrations.storage.oss import OssStorage

        return OssStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
