"""OssStorage against the OSS-protocol test server, which checks oss2's real V1 and V4 signatures.

Every test that uses `oss_storage` runs twice: with V4 signing (the default) and with V1.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import oss2
import pytest
import requests

from app.core.config import load_settings
from app.core.errors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    CopydeskError,
    NotFound,
    PermissionDenied,
    RemoteError,
    ServiceUnavailable,
    TimedOut,
)
from app.integrations.storage import (
    IMMUTABLE_CACHE,
    OssStorage,
    media_key,
    storage_from_settings,
)
from tests.fixtures.oss import OSS_BUCKET

pytestmark = pytest.mark.oss

PNG_HEADER = b"\x89PNG\r\n\x1a\n"


def image(size: int = 2048) -> bytes:
    return (PNG_HEADER + os.urandom(max(0, size - len(PNG_HEADER))))[:size]


def image_key(data: bytes, site: str = "site-a") -> str:
    return media_key(data, "png", site_prefix=site)


def assert_names_bucket_and_key(exc: CopydeskError, key: str, bucket: str = OSS_BUCKET) -> None:
    assert repr(bucket) in exc.message and repr(key) in exc.message, exc.message
    assert exc.details["bucket"] == bucket and exc.details["key"] == key


# --- the basic round trip ---------------------------------------------------------------------------


def test_upload_head_get_delete(oss_storage, oss_server):
    data = image()
    key = image_key(data)

    stored = oss_storage.put(key, data)

    assert (stored.key, stored.size, stored.content_type) == (key, len(data), "image/png")
    assert stored.etag == hashlib.md5(data).hexdigest()
    assert oss_storage.head(key) == stored
    assert oss_storage.get(key) == data
    assert oss_server.stored_keys(OSS_BUCKET) == [key]

    oss_storage.delete(key)

    assert oss_storage.head(key) is None
    with pytest.raises(NotFound) as missing:
        oss_storage.get(key)
    assert_names_bucket_and_key(missing.value, key)
    oss_storage.delete(key)  # deleting a missing key is not an error (OSS answers 204)


def test_headers_a_browser_receives(oss_storage):
    """Images: their type and a year-long immutable cache (the key is the content's hash).
    Manuscripts: the given type and no public cache."""
    data = image()
    key = image_key(data)
    oss_storage.put(key, data)
    manuscript = "manuscripts/run-1/Rapport annuel.docx"
    docx_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    oss_storage.put(manuscript, b"PK\x03\x04 not really a docx", content_type=docx_type)

    image_answer = requests.get(oss_storage.url(key), timeout=5)
    manuscript_answer = requests.get(oss_storage.url(manuscript), timeout=5)

    assert image_answer.status_code == 200 and image_answer.content == data
    assert image_answer.headers["Content-Type"] == "image/png"
    assert image_answer.headers["Cache-Control"] == IMMUTABLE_CACHE
    assert manuscript_answer.headers["Content-Type"] == docx_type
    assert "Cache-Control" not in manuscript_answer.headers
    assert oss_storage.head(manuscript).content_type == docx_type


def test_zero_byte_image(oss_storage):
    key = image_key(b"")

    assert oss_storage.put(key, b"").size == 0
    assert oss_storage.head(key).size == 0
    assert oss_storage.get(key) == b""


def test_20_mb_image(oss_storage, oss_server):
    data = image(20 * 1024 * 1024)
    key = image_key(data)

    oss_storage.put(key, data)

    assert oss_storage.head(key).size == len(data)
    assert hashlib.sha256(oss_storage.get(key)).digest() == hashlib.sha256(data).digest()
    assert oss_server.count("PUT") == 1


def test_unicode_and_awkward_key_names(oss_storage, oss_server):
    data = b"%PDF-1.7 bytes"
    key = "manuscripts/Société générale/年度报告 ü +&%?#=;.pdf"

    oss_storage.put(key, data)

    assert oss_server.stored_keys(OSS_BUCKET) == [key]
    assert oss_storage.head(key).content_type == "application/pdf"
    assert oss_storage.get(key) == data
    assert requests.get(oss_storage.url(key), timeout=5).content == data
    oss_storage.delete(key)
    assert oss_server.stored_keys(OSS_BUCKET) == []


# --- URLs ------------------------------------------------------------------------------------------------


def _tamper(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_signed_url_works_and_a_tampered_or_expired_one_is_refused(oss_storage, oss_server):
    key = "manuscripts/run-7/original.docx"
    other = "manuscripts/run-8/original.docx"
    oss_storage.put(key, b"secret manuscript")
    oss_storage.put(other, b"another manuscript")
    url = oss_storage.url(key, expires=600)
    signature_param = "x-oss-signature" if oss_storage.signature_version == "v4" else "Signature"
    signature = dict(parse_qsl(urlsplit(url).query))[signature_param]

    assert requests.get(url, timeout=5).content == b"secret manuscript"
    refused = [
        url.replace("run-7", "run-8"),  # the signature of one key does not open another
        _tamper(url, **{signature_param: signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")}),
        urlunsplit(urlsplit(url)._replace(query="")),  # no signature at all
    ]
    for bad in refused:
        answer = requests.get(bad, timeout=5)
        assert answer.status_code == 403, bad
        assert b"secret manuscript" not in answer.content

    oss_server.clock_offset = 601  # ten minutes later
    expired = requests.get(url, timeout=5)
    assert expired.status_code == 403 and b"expired" in expired.content


def test_media_url_is_signed_without_public_base_url(oss_storage):
    data = image()
    key = image_key(data)
    oss_storage.put(key, data)

    url = oss_storage.url(key)

    assert "Signature" in url or "x-oss-signature" in url
    assert requests.get(url, timeout=5).content == data


def test_public_base_url_serves_images_while_manuscripts_stay_private(make_oss_storage, oss_server):
    """A public-read bucket (or CDN) serves media/ by plain URL; originals are uploaded with a private
    ACL, so even there a plain URL is refused and only a signed one works."""
    oss_server.bucket_acls[OSS_BUCKET] = "public-read"
    storage = make_oss_storage(public_base_url=oss_server.bucket_url(OSS_BUCKET) + "/")
    data = image()
    key = image_key(data)
    manuscript = "manuscripts/run-1/original.docx"
    storage.put(key, data)
    storage.put(manuscript, b"unpublished text")

    public_url = storage.url(key)
    assert public_url == f"{oss_server.bucket_url(OSS_BUCKET)}/{key}"
    assert requests.get(public_url, timeout=5).content == data

    plain_manuscript_url = f"{oss_server.bucket_url(OSS_BUCKET)}/{manuscript}"
    assert requests.get(plain_manuscript_url, timeout=5).status_code == 403
    assert storage.url(manuscript) != plain_manuscript_url
    assert requests.get(storage.url(manuscript), timeout=5).content == b"unpublished text"


# --- content-addressed de-dup --------------------------------------------------------------------------


def test_the_same_image_twice_is_stored_once(make_oss_storage, oss_server):
    data = image()
    key = image_key(data)

    assert make_oss_storage().put_if_absent(key, data) is True
    assert make_oss_storage().put_if_absent(key, data) is False  # e.g. a re-run, in another worker

    assert oss_server.count("PUT") == 1
    assert oss_server.stored_keys(OSS_BUCKET) == [key]
    assert make_oss_storage().get(key) == data


def test_two_workers_uploading_the_same_image_at_once_upload_it_once(make_oss_storage, oss_server):
    data = image()
    key = image_key(data)
    oss_server.latency = 0.2  # both HEADs answer "absent" before either PUT lands
    barrier = threading.Barrier(2)
    results = []

    def upload():
        storage = make_oss_storage()
        barrier.wait()
        results.append(storage.put_if_absent(key, data))

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == [False, True]
    assert oss_server.stored_keys(OSS_BUCKET) == [key]
    assert make_oss_storage().get(key) == data


def test_one_storage_shared_by_a_thread_pool_uploads_in_parallel(oss_storage, oss_server):
    """The io worker's threads share one OssStorage (one connection pool): its 16 uploads are in flight
    at once. The server holds the PUTs until all 16 are open at once, so a pool that serialises them
    (or keeps fewer connections) fails without a race against the clock (how long it takes: bench/uploads)."""
    images = [image() for _ in range(16)]
    oss_server.gather(16, method="PUT", timeout=30)

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda data: oss_storage.put(image_key(data), data), images))

    assert oss_server.max_concurrency("PUT") == 16
    assert sorted(oss_server.stored_keys(OSS_BUCKET)) == sorted(image_key(d) for d in images)


# --- transient failures are retried, permanent ones are not --------------------------------------------


def test_an_upload_failing_twice_with_503_is_retried_and_succeeds(oss_storage, oss_server):
    data = image()
    key = image_key(data)
    oss_server.fail_next(2, 503, "ServiceUnavailable", method="PUT")

    oss_storage.put(key, data)

    assert oss_server.count("PUT") == 3
    assert oss_server.count("PUT", status=503) == 2
    assert oss_storage.get(key) == data


def test_a_dropped_connection_is_retried(oss_storage, oss_server):
    data = image()
    key = image_key(data)
    oss_server.drop_next(1, method="PUT")

    oss_storage.put(key, data)

    assert oss_server.count("PUT") == 2
    assert oss_storage.get(key) == data


def test_a_timeout_is_retried(make_oss_storage, oss_server):
    storage = make_oss_storage(timeout=0.5)
    data = image()
    key = image_key(data)
    oss_server.delay_next(1, 1.0, method="GET")
    storage.put(key, data)

    assert storage.get(key) == data
    assert oss_server.count("GET") == 2

    oss_server.delay_next(1, 1.0, method="GET")
    with pytest.raises(TimedOut) as failed:  # the last attempt timed out too: retryable later
        make_oss_storage(timeout=0.5, retry_attempts=1).get(key)
    assert failed.value.transient


def test_a_corrupted_transfer_is_detected_and_retried(oss_storage, oss_server):
    """oss2 compares its CRC-64 with the server's on upload; OssStorage does it on download too."""
    data = image()
    key = image_key(data)
    oss_server.corrupt_crc_next(1, method="PUT")
    oss_storage.put(key, data)
    oss_server.corrupt_crc_next(1, method="GET")

    assert oss_storage.get(key) == data
    assert (oss_server.count("PUT"), oss_server.count("GET")) == (2, 2)


def test_persistent_5xx_gives_up_with_a_transient_error(make_oss_storage, oss_server):
    storage = make_oss_storage(retry_attempts=3)
    data = image()
    key = image_key(data)
    oss_server.fail_next(10, 500, "InternalError", "We encountered an internal error.")

    with pytest.raises(ServiceUnavailable) as failed:
        storage.put(key, data)

    assert failed.value.transient  # the workflow engine may retry the step later
    assert_names_bucket_and_key(failed.value, key)
    assert oss_server.count() == 3


def test_nothing_listening_is_a_transient_connection_error(make_oss_storage):
    from tests.support import free_port

    storage = make_oss_storage(endpoint=f"http://127.0.0.1:{free_port()}", retry_attempts=2)

    with pytest.raises(ConnectionFailed) as failed:
        storage.put("media/x.png", b"x")
    assert failed.value.transient and "127.0.0.1" in failed.value.message


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (403, "AccessDenied", PermissionDenied),
        (400, "InvalidArgument", RemoteError),
        (409, "FileAlreadyExists", RemoteError),
        (404, "NoSuchBucket", ConfigurationError),
    ],
)
def test_a_4xx_fails_at_once(oss_storage, oss_server, status, code, error):
    data = image()
    key = image_key(data)
    oss_server.fail_next(1, status, code, "refused by the test")

    with pytest.raises(error) as failed:
        oss_storage.put(key, data)

    assert not failed.value.transient
    assert failed.value.details["oss_code"] == code and failed.value.details["request_id"]
    assert_names_bucket_and_key(failed.value, key)
    assert oss_server.count() == 1


def test_wrong_secret_fails_at_once(make_oss_storage, oss_server):
    storage = make_oss_storage(access_key_secret="not-the-right-secret")
    key = image_key(image())

    with pytest.raises(AuthenticationFailed) as failed:
        storage.put(key, b"data")

    assert "OSS_ACCESS_KEY_SECRET" in failed.value.message
    assert_names_bucket_and_key(failed.value, key)
    assert oss_server.count() == 1
    assert oss_server.requests[0].code == "SignatureDoesNotMatch"


def test_unknown_access_key_fails_at_once(make_oss_storage, oss_server):
    storage = make_oss_storage(access_key_id="LTAI-nobody")

    with pytest.raises(AuthenticationFailed):
        storage.head("media/a.png")

    assert oss_server.count() == 1
    assert oss_server.requests[0].code == "InvalidAccessKeyId"


def test_missing_bucket_fails_at_once_and_is_not_mistaken_for_a_missing_object(make_oss_storage, oss_server):
    storage = make_oss_storage(bucket="no-such-bucket")
    key = "media/a.png"

    for call in (lambda: storage.head(key), lambda: storage.put(key, b"x"), lambda: storage.get(key)):
        with pytest.raises(ConfigurationError) as failed:
            call()
        assert "OSS_BUCKET" in failed.value.message
        assert_names_bucket_and_key(failed.value, key, bucket="no-such-bucket")
    assert oss_server.count() == 3


def test_a_skewed_clock_is_reported_as_such(oss_storage, oss_server):
    oss_server.clock_offset = 3600

    with pytest.raises(ConfigurationError) as failed:
        oss_storage.put("media/a.png", b"x")

    assert "clock" in failed.value.message
    assert oss_server.count() == 1


def test_the_secret_never_appears_in_errors_or_logs(make_oss_storage, oss_server, caplog):
    caplog.set_level(logging.DEBUG)  # oss2 logs every request and response at DEBUG
    secret = oss_server.access_key_secret
    storage = make_oss_storage(retry_attempts=2)
    errors: list[BaseException] = []

    def attempt(call):
        try:
            call()
        except CopydeskError as exc:
            errors.append(exc)

    data = image()
    key = image_key(data)
    storage.put(key, data)
    storage.url("manuscripts/a.docx")
    attempt(lambda: make_oss_storage(access_key_secret=secret[::-1]).put(key, data))
    attempt(lambda: make_oss_storage(bucket="missing").put(key, data))
    oss_server.fail_next(2, 503)  # both attempts
    attempt(lambda: storage.put(key, data))
    oss_server.drop_next(2)
    attempt(lambda: storage.get(key))
    oss_server.fail_next(1, 403, "AccessDenied")
    attempt(lambda: storage.delete(key))

    assert [type(e).__name__ for e in errors] == [
        "AuthenticationFailed",
        "ConfigurationError",
        "ServiceUnavailable",
        "ConnectionFailed",
        "PermissionDenied",
    ]
    for exc in errors:
        text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc.to_dict())
        assert secret not in text
    assert any(r.levelno == logging.WARNING and "retrying" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(record.__dict__)
    assert secret not in caplog.text


def test_invalid_keys_are_refused_before_any_request(oss_storage, oss_server):
    for key in ("", "/media/a.png", "media/../manuscripts/x", "media//a.png", "media\\a.png", "a" * 1024):
        with pytest.raises(CopydeskError):
            oss_storage.put(key, b"x")
    assert oss_server.count() == 0


# --- configuration ---------------------------------------------------------------------------------------


def test_storage_from_settings_chooses_oss_when_configured(oss_server, oss_signature_version, tmp_path):
    settings = load_settings(
        _env_file=None,
        COPYDESK_STATE_DIR=str(tmp_path),
        OSS_ENDPOINT=oss_server.endpoint,
        OSS_BUCKET=OSS_BUCKET,
        OSS_ACCESS_KEY_ID=oss_server.access_key_id,
        OSS_ACCESS_KEY_SECRET=oss_server.access_key_secret,
        OSS_REGION=oss_server.region,
        OSS_SIGNATURE_VERSION=oss_signature_version,
        OSS_PUBLIC_BASE_URL="https://img.example.com",
    )

    storage = storage_from_settings(settings)

    assert isinstance(storage, OssStorage) and storage.signature_version == oss_signature_version
    storage.put("media/site-a/x.png", b"x")
    assert oss_server.stored_keys(OSS_BUCKET) == ["media/site-a/x.png"]
    assert storage.url("media/site-a/x.png") == "https://img.example.com/media/site-a/x.png"


def test_v4_without_a_region_names_the_setting(oss_server):
    with pytest.raises(ConfigurationError, match="OSS_REGION"):
        OssStorage(endpoint=oss_server.endpoint, bucket=OSS_BUCKET, access_key_id="a", access_key_secret="b")
    # a standard endpoint carries its region
    assert (
        OssStorage(
            endpoint="https://oss-cn-hangzhou.aliyuncs.com",
            bucket=OSS_BUCKET,
            access_key_id="a",
            access_key_secret="b",
        ).region
        == "cn-hangzhou"
    )


# --- the test server answers as OSS does (what makes the tests above meaningful) ------------------------


@pytest.fixture(params=["v4", "v1"])
def bucket(request, oss_server):
    auth_class = oss2.AuthV4 if request.param == "v4" else oss2.Auth
    auth = auth_class(oss_server.access_key_id, oss_server.access_key_secret)
    return oss2.Bucket(auth, oss_server.endpoint, OSS_BUCKET, region=oss_server.region)


def test_server_crc64_is_the_one_oss2_computes(bucket):
    assert bucket.put_object("check", b"123456789").crc == 0x995DC9BBDF1939FA  # CRC-64/XZ check value
    data = os.urandom(300_000)
    crc = oss2.utils.Crc64()
    crc.update(data)
    assert bucket.put_object("random", data).crc == crc.crc
    assert bucket.head_object("random").server_crc == crc.crc


def test_server_answers_in_oss_shapes(bucket, oss_server):
    result = bucket.put_object("a.txt", b"hello world")
    assert result.etag == hashlib.md5(b"hello world").hexdigest().upper()
    assert len(result.request_id) == 24
    assert bucket.get_object("a.txt", byte_range=(6, 10)).read() == b"world"

    with pytest.raises(oss2.exceptions.NoSuchKey) as missing:
        bucket.get_object("missing")
    assert missing.value.details["Key"] == "missing" and missing.value.details["HostId"]
    head = requests.head(f"{oss_server.bucket_url(OSS_BUCKET)}/missing", timeout=5)
    assert head.content == b"" and b"<Code>" in base64.b64decode(head.headers["x-oss-err"])
    assert bucket.object_exists("missing") is False  # HEAD ?objectMeta, decoded from x-oss-err

    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object("b.txt", b"data", headers={"Content-MD5": base64.b64encode(b"0" * 16).decode()})
    with pytest.raises(oss2.exceptions.ServerError) as unimplemented:
        bucket.get_object_acl("a.txt")
    assert (unimplemented.value.status, unimplemented.value.code) == (501, "NotImplemented")


def test_server_lists_and_batch_deletes_as_oss_does(bucket):
    keys = ["a/1.png", "a/2.png", "b/ü 1.png", "c.png", "d.png"]
    for key in keys:
        bucket.put_object(key, b"x")

    assert [o.key for o in oss2.ObjectIterator(bucket, max_keys=2)] == keys
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, max_keys=2)] == keys
    assert [o.key for o in oss2.ObjectIterator(bucket, delimiter="/", max_keys=1)] == [
        "a/",
        "b/",
        "c.png",
        "d.png",
    ]
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, prefix="a/")] == ["a/1.png", "a/2.png"]

    assert sorted(bucket.batch_delete_objects(["a/1.png", "b/ü 1.png"]).deleted_keys) == [
        "a/1.png",
        "b/ü 1.png",
    ]
    assert [o.key for o in oss2.ObjectIterator(bucket)] == ["a/2.png", "c.png", "d.png"]


def test_a_secret_echoed_by_a_server_is_redacted_from_the_message(oss_storage, oss_server):
    secret = oss_server.access_key_secret
    oss_server.fail_next(1, 403, "AccessDenied", f"denied for {secret}")

    with pytest.raises(PermissionDenied) as failed:
        oss_storage.delete("media/a.png")

    assert secret not in str(failed.value) and "denied for ***" in str(failed.value)
