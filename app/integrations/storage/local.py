"""Local-folder storage: the default when no OSS is configured. The API serves `media/` keys."""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from app.core.errors import NotFound
from app.integrations.storage.base import StoredObject, check_key, guess_type, is_public


class LocalStorage:
    name = "local"

    def __init__(self, root: Path, public_url: str, signing_key: str = "") -> None:
        self.root = Path(root)
        self.public_url = public_url.rstrip("/")
        self._signing_key = signing_key.encode()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key, data, *, content_type=None, cache_control=None) -> StoredObject:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader never sees half a file, a crash leaves no partial object.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredObject(key, len(data), content_type or guess_type(key), hashlib.md5(data).hexdigest())

    def put_if_absent(self, key, data, *, content_type=None, cache_control=None) -> bool:
        # No lock needed: two writers of one content-addressed key write the same bytes, atomically.
        if self.head(key) is not None:
            return False
        self.put(key, data, content_type=content_type, cache_control=cache_control)
        return True

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"no object {key!r} in local storage") from None

    def head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        return StoredObject(key, path.stat().st_size, guess_type(key))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def url(self, key: str, *, expires: int | None = None) -> str:
        self._path(key)
        if is_public(key) and expires is None:
            return f"{self.public_url}/media/{quote(key.removeprefix('media/'))}"
        deadline = int(time.time()) + (expires or 3600)
        return f"{self.public_url}/files/{quote(key)}?expires={deadline}&signature={self.sign(key, deadline)}"

    def sign(self, key: str, deadline: int) -> str:
        return hmac.new(self._signing_key, f"{key}\n{deadline}".encode(), hashlib.sha256).hexdigest()

    def verify(self, key: str, deadline: int, signature: str) -> bool:
        # Bytes, not str: compare_digest refuses a str with non-ASCII characters (a forged link would be a 500).
        given = signature.encode("utf-8", "surrogatepass")
        return deadline >= time.time() and hmac.compare_digest(self.sign(key, deadline).encode(), given)

    def path(self, key: str) -> Path:
        """The file behind a key (for the API's file responses)."""
        return self._path(key)
