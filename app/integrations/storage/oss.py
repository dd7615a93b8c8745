"""Alibaba Cloud OSS storage through oss2.

- Signing: V4 (OSS4-HMAC-SHA256, needs the region) by default, V1 selectable.
- `media/` keys get a long immutable Cache-Control (they are content-addressed) and, when a public base URL
  is configured (custom domain, CDN, or the bucket's own public domain), a plain URL; every other URL is a
  signed, expiring one. Other keys (`manuscripts/`, `artifacts/`) are uploaded with an explicit private
  object ACL, so they stay private even in a public-read bucket.
- oss2 does not retry put/get/head/delete, so each call is retried here (tenacity) on transient failures:
  timeouts, dropped connections, 5xx, 429, a checksum mismatch. Any other answer fails at once with a typed
  error from app.core.errors whose message names the bucket and the key, never the secret.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote

import oss2
import requests
from oss2 import exceptions as oss_errors
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from app.core.errors import (
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    CopydeskError,
    NotFound,
    PermissionDenied,
    RateLimited,
    RemoteError,
    ServiceUnavailable,
    TimedOut,
    TransientError,
)
from app.integrations.storage.base import IMMUTABLE_CACHE, StoredObject, check_key, guess_type, is_public

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_URL_EXPIRES = 3600
# `oss-cn-hangzhou.aliyuncs.com`, `oss-cn-hangzhou-internal.aliyuncs.com` -> `cn-hangzhou`
_REGION_IN_ENDPOINT = re.compile(r"(?:^|//)oss-([a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com")
_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "SecurityTokenExpired", "InvalidSecurityToken"}
_RATE_CODES = {"SlowDown", "TooManyRequests", "RequestRateExceeded"}


def region_from_endpoint(endpoint: str) -> str | None:
    match = _REGION_IN_ENDPOINT.search(endpoint)
    return match.group(1) if match else None


class OssStorage:
    name = "oss"

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        access_key_id: str,
        access_key_secret: str,
        region: str | None = None,
        signature_version: str = "v4",
        public_base_url: str | None = None,
        timeout: float = 60.0,
        pool_size: int = 32,
        retry_attempts: int = 4,
        retry_initial_wait: float = 0.2,
        retry_max_wait: float = 5.0,
    ) -> None:
        """`pool_size` should be at least the io worker's thread count (one pooled connection per thread);
        `timeout` applies to connecting and to each read (requests semantics), not to the whole call."""
        self.bucket_name = bucket
        self.endpoint = endpoint.rstrip("/")
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.timeout = timeout
        self._secret = access_key_secret
        self.retry_attempts = max(1, retry_attempts)
        # 0.2, 0.4, 0.8 s … (plus up to one initial wait of jitter, so parallel uploads do not retry in step)
        self._wait = wait_exponential_jitter(
            multiplier=retry_initial_wait, max=retry_max_wait, jitter=retry_initial_wait
        )

        if signature_version == "v4":
            region = region or region_from_endpoint(self.endpoint)
            if not region:
                raise ConfigurationError(
                    f"OSS V4 signing needs the bucket's region: set OSS_REGION (e.g. cn-hangzhou) "
                    f"for endpoint {self.endpoint}, or OSS_SIGNATURE_VERSION=v1"
                )
            auth = oss2.AuthV4(access_key_id, access_key_secret)
        elif signature_version == "v1":
            auth = oss2.Auth(access_key_id, access_key_secret)
        else:
            raise ConfigurationError(f"unknown OSS signature version {signature_version!r}: use v4 or v1")
        self.region = region
        self.signature_version = signature_version
        try:
            self._bucket = oss2.Bucket(
                auth,
                self.endpoint,
                bucket,
                session=oss2.Session(pool_size=pool_size),
                connect_timeout=timeout,
                region=region,
            )
        except oss_errors.ClientError as exc:
            raise ConfigurationError(
                self._redact(f"invalid OSS configuration for bucket {bucket!r}: {exc}")
            ) from None

    # --- Storage ---------------------------------------------------------------------------------

    def put(self, key, data, *, content_type=None, cache_control=None) -> StoredObject:
        headers = self._upload_headers(key, data, content_type, cache_control)
        result = self._call("upload", key, lambda: self._bucket.put_object(key, data, headers=headers))
        return StoredObject(key, len(data), headers["Content-Type"], result.etag.lower())

    def put_if_absent(self, key, data, *, content_type=None, cache_control=None) -> bool:
        if self.head(key) is not None:
            return False
        headers = self._upload_headers(key, data, content_type, cache_control)
        # A concurrent writer may store the key between our HEAD and PUT; OSS then answers
        # FileAlreadyExists instead of overwriting, and we report "not uploaded" (same content).
        headers["x-oss-forbid-overwrite"] = "true"

        def upload() -> bool:
            try:
                self._bucket.put_object(key, data, headers=headers)
            except oss_errors.ServerError as exc:
                if exc.code == "FileAlreadyExists":
                    return False
                raise
            return True

        return self._call("upload", key, upload)

    def get(self, key: str) -> bytes:
        check_key(key)

        def download() -> bytes:
            result = self._bucket.get_object(key)
            with result:
                data = result.read()
            # get_object does not compare the server's CRC-64 with what arrived; do it here.
            oss2.utils.check_crc("get", result.client_crc, result.server_crc, result.request_id)
            return data

        return self._call("download", key, download)

    def head(self, key: str) -> StoredObject | None:
        check_key(key)

        def head() -> StoredObject | None:
            try:
                result = self._bucket.head_object(key)
            except oss_errors.NotFound as exc:
                # HEAD has no body: oss2 decodes the x-oss-err header to tell NoSuchKey from NoSuchBucket.
                if exc.code in ("NoSuchKey", ""):
                    return None
                raise
            etag = (result.etag or "").lower()
            content_type = result.content_type or "application/octet-stream"
            return StoredObject(key, result.content_length or 0, content_type, etag)

        return self._call("look up", key, head)

    def delete(self, key: str) -> None:
        check_key(key)
        self._call("delete", key, lambda: self._bucket.delete_object(key))  # 204 for a missing key too

    def url(self, key: str, *, expires: int | None = None) -> str:
        check_key(key)
        if is_public(key) and expires is None and self.public_base_url:
            return f"{self.public_base_url}/{quote(key, safe='/')}"
        seconds = expires or DEFAULT_URL_EXPIRES
        try:
            return self._bucket.sign_url("GET", key, seconds, slash_safe=True)
        except oss_errors.ClientError as exc:
            raise ConfigurationError(
                self._redact(f"cannot sign a URL for {self._where(key)}: {exc}")
            ) from None

    # --- internals -------------------------------------------------------------------------------

    def _upload_headers(self, key, data, content_type, cache_control) -> dict[str, str]:
        check_key(key)
        headers = {
            "Content-Type": content_type or guess_type(key),
            # OSS refuses a body that does not match (InvalidDigest), so a transfer corrupted on the way
            # is never stored; oss2's CRC-64 check only looks at the answer, after the object is written.
            "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode(),
        }
        cache_control = cache_control or (IMMUTABLE_CACHE if is_public(key) else None)
        if cache_control:
            headers["Cache-Control"] = cache_control
        if not is_public(key):
            headers["x-oss-object-acl"] = "private"  # never public, whatever the bucket's ACL
        return headers

    def _call(self, action: str, key: str, fn: Callable[[], T]) -> T:
        def attempt() -> T:
            try:
                return fn()
            except (oss_errors.OssError, requests.RequestException) as exc:
                raise self._translate(exc, action, key) from None

        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self.retry_attempts),
            wait=self._wait,
            before_sleep=self._log_retry,
            reraise=True,
        )
        return retrying(attempt)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        log.warning(
            "OSS call failed (attempt %d of %d), retrying in %.2fs: %s",
            state.attempt_number,
            self.retry_attempts,
            wait,
            exc,
            extra={"bucket": self.bucket_name, "error_code": getattr(exc, "code", None)},
        )

    def _where(self, key: str) -> str:
        return f"{key!r} in OSS bucket {self.bucket_name!r}"

    def _redact(self, text: str) -> str:
        # oss2 and the server never echo the secret; this is the last line of defence for our messages.
        return text.replace(self._secret, "***") if self._secret else text

    def _translate(self, exc: Exception, action: str, key: str) -> CopydeskError:
        where = self._where(key)
        details = {"bucket": self.bucket_name, "key": key}

        def make(cls: type[CopydeskError], message: str, **extra) -> CopydeskError:
            return cls(self._redact(message), details={**details, **extra})

        cause = exc.exception if isinstance(exc, oss_errors.RequestError) else exc
        if isinstance(cause, requests.Timeout):
            return make(TimedOut, f"could not {action} {where}: OSS did not answer within {self.timeout:g}s")
        if isinstance(cause, requests.RequestException):
            return make(
                ConnectionFailed,
                f"could not {action} {where}: connection to {self.endpoint} failed ({type(cause).__name__})",
            )
        if isinstance(exc, oss_errors.InconsistentError):
            return make(
                TransientError,
                f"could not {action} {where}: the CRC-64 checksums differ (corrupted transfer)",
            )
        if isinstance(exc, oss_errors.ClientError):
            return make(ConfigurationError, f"could not {action} {where}: {exc.body}")

        status, code = exc.status, exc.code or ""
        reason = f"{code or status}: {exc.message}" if exc.message else (code or f"HTTP {status}")
        extra = {"status": status, "oss_code": code, "request_id": exc.request_id}
        if code == "RequestTimeTooSkewed":
            return make(
                ConfigurationError,
                f"could not {action} {where}: this machine's clock is more than 15 minutes off (sync it with NTP)",
                **extra,
            )
        if status == 429 or code in _RATE_CODES:
            return make(
                RateLimited, f"could not {action} {where}: OSS is throttling requests ({reason})", **extra
            )
        if status >= 500:
            return make(ServiceUnavailable, f"could not {action} {where}: OSS failed ({reason})", **extra)
        if code == "InvalidDigest":  # the body changed on the way: we computed Content-MD5 from these bytes
            return make(
                TransientError,
                f"could not {action} {where}: the upload arrived corrupted ({reason})",
                **extra,
            )
        if code in _AUTH_CODES:
            return make(
                AuthenticationFailed,
                f"could not {action} {where}: OSS refused the access key "
                f"(check OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET) ({reason})",
                **extra,
            )
        if code == "NoSuchBucket":
            # Not NotFound: a caller treating NotFound as "object missing" must not hide a wrong bucket name.
            return make(
                ConfigurationError,
                f"could not {action} {where}: the bucket does not exist (check OSS_BUCKET and OSS_ENDPOINT)",
                **extra,
            )
        if status == 404:
            return make(NotFound, f"no object {where}", **extra)
        if status == 403:
            return make(PermissionDenied, f"could not {action} {where}: access denied ({reason})", **extra)
        return make(RemoteError, f"could not {action} {where}: OSS refused the request ({reason})", **extra)
