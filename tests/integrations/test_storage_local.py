"""LocalStorage: the default backend (a folder the API serves)."""

from __future__ import annotations

import hashlib
import os
import time
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from app.core.config import load_settings
from app.core.errors import NotFound, PermanentError
from app.integrations.storage import LocalStorage, Storage, content_key, media_key, storage_from_settings


@pytest.fixture
def storage(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage", "http://copydesk.test:8000/", signing_key="k" * 32)


def test_implements_the_storage_interface(storage):
    assert isinstance(storage, Storage)


def test_put_head_get_delete(storage):
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    key = media_key(data, "png", site_prefix="site-a")

    stored = storage.put(key, data)

    assert (stored.size, stored.content_type, stored.etag) == (
        len(data),
        "image/png",
        hashlib.md5(data).hexdigest(),
    )
    assert storage.head(key).size == len(data)
    assert storage.get(key) == data
    storage.delete(key)
    assert storage.head(key) is None
    with pytest.raises(NotFound):
        storage.get(key)
    storage.delete(key)  # idempotent


def test_zero_byte_and_unicode_keys(storage):
    key = "manuscripts/Société/年度报告 ü +&%?#.docx"
    storage.put(key, b"")
    assert storage.head(key).size == 0
    assert storage.get(key) == b""


def test_the_same_image_twice_is_written_once(storage):
    data = b"image bytes"
    key = media_key(data, "jpg")

    assert storage.put_if_absent(key, data) is True
    os.utime(storage.path(key), ns=(0, 0))  # a write now would leave a modification time far from 1970
    assert storage.put_if_absent(key, data) is False
    assert storage.path(key).stat().st_mtime_ns == 0


def test_media_keys_are_content_addressed_per_site():
    data = b"same image"
    digest = hashlib.sha256(data).hexdigest()

    assert media_key(data, ".PNG") == f"media/{digest}.png"
    assert media_key(data, "png", site_prefix="press-office/") == f"media/press-office/{digest}.png"
    assert media_key(data, "png", "a") != media_key(data, "png", "b")
    assert content_key(data, "png", prefix="artifacts/run-1") == f"artifacts/run-1/{digest}.png"
    for bad in ("../other", "Site A", "a//b", "abs/x/.."):
        with pytest.raises(PermanentError):
            media_key(data, "png", site_prefix=bad)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "media/../../etc/passwd",
        "media//a.png",
        "media/./a.png",
        "media\\a.png",
        "media/a\n.png",
        "m/" + "a" * 1022,
    ],
)
def test_keys_that_could_escape_the_folder_are_refused(storage, key):
    with pytest.raises(PermanentError):
        storage.put(key, b"x")


def test_public_url_for_media_and_signed_url_for_the_rest(storage):
    assert storage.url("media/site-a/x y.png") == "http://copydesk.test:8000/media/site-a/x%20y.png"

    key = "manuscripts/run-1/original.docx"
    url = urlsplit(storage.url(key, expires=60))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    deadline, signature = int(query["expires"]), query["signature"]

    assert unquote(url.path) == f"/files/{key}"
    assert storage.verify(key, deadline, signature)
    assert not storage.verify("manuscripts/run-2/original.docx", deadline, signature)  # another key
    assert not storage.verify(key, deadline + 3600, signature)  # a longer life
    assert not storage.verify(key, deadline, "0" * len(signature))
    assert not storage.verify(key, int(time.time()) - 1, storage.sign(key, int(time.time()) - 1))  # expired
    other_secret = LocalStorage(storage.root, storage.public_url, signing_key="other")
    assert not other_secret.verify(key, deadline, signature)


def test_without_oss_settings_storage_is_a_local_folder_whose_urls_the_api_can_verify(tmp_path, monkeypatch):
    for name in ("OSS_ENDPOINT", "OSS_BUCKET", "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(
        _env_file=None, COPYDESK_STATE_DIR=str(tmp_path), PUBLIC_URL="http://copydesk.test:8000"
    )

    worker, api = (
        storage_from_settings(settings),
        storage_from_settings(settings),
    )  # two processes, one config

    assert isinstance(worker, LocalStorage) and worker.root == settings.storage_root
    assert worker.url("media/a.png") == "http://copydesk.test:8000/media/a.png"
    query = parse_qs(urlsplit(worker.url("manuscripts/a.docx")).query)
    assert api.verify("manuscripts/a.docx", int(query["expires"][0]), query["signature"][0])
