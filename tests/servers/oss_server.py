"""An Alibaba Cloud OSS protocol test server (stdlib only) for oss2.

No OSS emulator can be installed (notes/oss-and-openai-test-servers.md) and moto skips the signature and
breaks oss2's list and batch calls, so the tests talk to this server. It checks what real OSS checks and
answers in the same shapes, so a test passing here exercises the same oss2 code paths:

- auth: V1 (`OSS ak:sig`, HMAC-SHA1) and V4 (`OSS4-HMAC-SHA256`, with region scope), each as a header and
  as a presigned URL; expiry, 15-minute clock skew, InvalidAccessKeyId / SignatureDoesNotMatch (with the
  StringToSign or CanonicalRequest, as OSS does); anonymous GET/HEAD only for public-read objects;
- objects on disk (`<root>/<bucket>/<sha256(key)>.data` + `.json`, so `a` and `a/b` coexist): PutObject
  (Content-Length or chunked body, Content-MD5 -> InvalidDigest, x-oss-forbid-overwrite -> FileAlreadyExists,
  x-oss-object-acl, Cache-Control and x-oss-meta-*), GetObject (+Range, response-* overrides), HeadObject,
  GetObjectMeta, DeleteObject, DeleteMultipleObjects, ListObjects v1 and v2;
- answers: ETag = quoted upper-case MD5, real CRC-64/ECMA-182 (the XZ variant oss2 uses) in
  x-oss-hash-crc64ecma, x-oss-request-id, error XML <Error><Code/><Message/><RequestId/><HostId/>…</Error>,
  and on HEAD errors an empty body with the XML base64-encoded in x-oss-err;
- anything else (multipart, copy, ACL reads, bucket admin, V2 signatures…) -> 501 NotImplemented, loudly.

Test hooks: `fail_next`, `drop_next`, `delay_next`, `corrupt_crc_next` (faults queue up: each request takes
the first pending one matching its method), `gather` (hold requests until n are in flight), `latency`
(added to every request), `clock_offset` (the server's clock, for expiry and skew), `requests` (the log),
`count()`, `max_concurrency()`, `reset()`.
`fail_randomly(ratio, seed=…)`: a seeded share of requests (those no queued fault took) answer 429 with
Retry-After, 500, or are dropped without an answer (a timeout; or held for `delay` seconds), before the
work by default (nothing stored), see tests/servers/faults.py; `random_faults()` counts what was served.

    with OssTestServer(tmp_path, buckets=["copydesk"]) as server:
        oss2.Bucket(oss2.AuthV4(server.access_key_id, server.access_key_secret), server.endpoint,
                    "copydesk", region=server.region)

CLI (for benchmarks): python -m tests.servers.oss_server --root DIR --port P --ak AK --sk SK --bucket B
"""

from __future__ import annotations

import argparse
import base64
import calendar
import email.utils
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import crcmod

from tests.servers.faults import RandomFaults

_crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)

MAX_SKEW = 15 * 60
MAX_V4_URL_EXPIRES = 7 * 24 * 3600
ACLS = {"private", "public-read", "public-read-write", "default"}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Query parameters that belong to V1's CanonicalizedResource (the sub-resources OSS documents and
# oss2 2.19 signs; a server that missed one would answer SignatureDoesNotMatch instead of NotImplemented).
V1_SUBRESOURCES = _words(
    "accessPoint accessPointPolicy acl append asyncFetch bucketArchiveDirectRead bucketInfo callback "
    "callback-var cname comp continuation-token cors delete encryption endTime group httpsConfig "
    "inventory inventoryId lifecycle link live location logging metaQuery objectInfo objectMeta "
    "partNumber policy position publicAccessBlock qos qosInfo qosRequester redundancyTransition referer "
    "regionList replication replicationLocation replicationProgress requesterQosInfo requestPayment "
    "resourceGroup resourcePool resourcePoolBuckets resourcePoolInfo response-cache-control "
    "response-content-disposition response-content-encoding response-content-language "
    "response-content-type response-expires restore security-token sequential startTime stat status style "
    "styleName symlink tagging transferAcceleration uploadId uploads versionId versioning versions vod "
    "website worm wormExtend wormId x-oss-ac-forward-allow x-oss-ac-source-ip x-oss-ac-subnet-mask "
    "x-oss-ac-vpc-id x-oss-access-point-name x-oss-async-process x-oss-process "
    "x-oss-redundancy-transition-taskid x-oss-request-payer x-oss-target-redundancy-type "
    "x-oss-traffic-limit x-oss-write-get-object-response"
)
AUTH_PARAMS = _words(
    "OSSAccessKeyId Expires Signature security-token x-oss-signature-version x-oss-credential x-oss-date "
    "x-oss-expires x-oss-signature x-oss-additional-headers x-oss-security-token"
)
LIST_PARAMS = _words(
    "prefix delimiter marker max-keys encoding-type list-type continuation-token start-after fetch-owner"
)
GET_PARAMS = _words(
    "response-content-type response-content-language response-expires response-cache-control "
    "response-content-disposition response-content-encoding"
)
STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")


class OssFault(Exception):
    """An answer in OSS's error shape."""

    def __init__(self, status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.extra = status, code, message, extra


@dataclass
class LoggedRequest:
    method: str
    path: str
    bucket: str
    key: str
    query: dict[str, str]
    headers: dict[str, str]
    body_size: int
    request_id: str
    auth: str = ""  # v1, v4, v1-url, v4-url, anonymous
    status: int = 0  # 0: the connection was dropped
    code: str = ""  # the OSS error code of an error answer
    fault: str = ""  # the random fault served: 429, 500, timeout (+ "-after" when the work was done)
    started: float = field(default_factory=time.monotonic)  # the request had arrived (body read)
    finished: float = 0.0  # the answer was sent, or the connection dropped


@dataclass
class _Fault:
    kind: str  # fail | drop | delay | corrupt_crc
    remaining: int
    method: str | None = None
    status: int = 503
    code: str = "ServiceUnavailable"
    message: str = "Please reduce your request rate."
    seconds: float = 0.0


@dataclass
class _Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def uri_encode(text: str, keep_slash: bool) -> str:
    """OSS V4 encoding: everything but unreserved characters, UTF-8, upper-case hex."""
    return quote(text, safe="-_.~/" if keep_slash else "-_.~")


def http_date(epoch: float) -> str:
    return email.utils.formatdate(epoch, usegmt=True)


class OssTestServer:
    def __init__(
        self,
        root: str | os.PathLike,
        *,
        access_key_id: str = "test-access-key-id",
        access_key_secret: str = "test-access-key-secret",
        buckets: list[str] | tuple[str, ...] = ("copydesk",),
        region: str = "cn-test",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.root = Path(root)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.region = region
        self.bucket_acls = {name: "private" for name in buckets}
        self.latency = 0.0
        self.clock_offset = 0.0
        self.random: RandomFaults | None = None
        self.requests: list[LoggedRequest] = []
        self._faults: list[_Fault] = []
        self._gate: tuple[str | None, threading.Barrier] | None = None
        self._answering = threading.Event()  # cleared by hold()
        self._answering.set()
        self._lock = threading.Lock()  # faults, log, and the check-then-write of objects
        for name in buckets:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.oss = self
        self.host, self.port = self._httpd.server_address[:2]
        self._thread: threading.Thread | None = None

    # --- life cycle ------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def bucket_url(self, bucket: str) -> str:
        return f"{self.endpoint}/{bucket}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="oss-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- test hooks ------------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 503,
        code: str = "ServiceUnavailable",
        message: str = "Please reduce your request rate.",
        method: str | None = None,
    ) -> None:
        """Answer the next n requests (of `method`, if given) with this error."""
        self._add_fault(_Fault("fail", n, method, status, code, message))

    def drop_next(self, n: int = 1, method: str | None = None) -> None:
        """Read the next n requests and close the connection without an answer."""
        self._add_fault(_Fault("drop", n, method))

    def delay_next(self, n: int, seconds: float, method: str | None = None) -> None:
        """Hold the next n requests for `seconds` before answering (on top of `latency`)."""
        self._add_fault(_Fault("delay", n, method, seconds=seconds))

    def gather(self, n: int, method: str | None = None, timeout: float = 5.0) -> None:
        """Hold the next requests (of `method`) until n of them are in flight at once, then answer them all;
        after `timeout` seconds they go on regardless. Proves parallelism without racing the clock: a client
        that cannot keep n requests open never gets past the gate in time."""
        self._gate = (method, threading.Barrier(n, timeout=timeout))

    def hold(self) -> None:
        """Hold every request that arrives from now on until `release()`, which drops them unanswered and
        undone (the network went quiet): clients stop where the test wants them (e.g. a worker killed
        in the middle of a fan-out) instead of racing it. Requests already past this point finish."""
        self._answering.clear()

    def release(self) -> None:
        self._answering.set()

    def corrupt_crc_next(self, n: int = 1, method: str | None = None) -> None:
        """Answer the next n object requests with a wrong x-oss-hash-crc64ecma."""
        self._add_fault(_Fault("corrupt_crc", n, method))

    def fail_randomly(
        self,
        ratio: float,
        *,
        seed: int | str = 0,
        mix: dict[str, float] | None = None,
        retry_after: float = 1.0,
        delay: float = 0.0,
        after: float = 0.0,
        method: str | None = None,
        path: str | None = None,
    ) -> RandomFaults:
        """From now on, fail `ratio` of the requests (of `method`, whose `/bucket/key` path matches the
        regular expression `path`), chosen by `seed`: kinds from `mix` ({"429": w, "500": w, "timeout": w},
        equal weights by default). A timeout drops the connection without an answer (`delay` 0) or holds
        the request `delay` seconds and then answers 503; `after` is the share of faults that come after
        the work (the object is stored, the answer lost). Queued faults (fail_next…) come first."""
        kwargs = {"mix": mix} if mix else {}
        self.random = RandomFaults(
            ratio, seed=seed, retry_after=retry_after, delay=delay, after=after, method=method, path=path, **kwargs
        )
        return self.random

    def random_faults(self) -> dict:
        """{"seen": requests considered, "served": {kind: count}, "total": faults served}."""
        return self.random.summary() if self.random else {"seen": 0, "served": {}, "total": 0}

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str) -> _Fault | None:
        """Faults queue up: a request takes the first pending one that matches its method."""
        with self._lock:
            for fault in self._faults:
                if fault.method in (None, method):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def count(self, method: str | None = None, key: str | None = None, status: int | None = None) -> int:
        return sum(
            1
            for r in list(self.requests)
            if (method is None or r.method == method)
            and (key is None or r.key == key)
            and (status is None or r.status == status)
        )

    def max_concurrency(self, method: str | None = None) -> int:
        """The most requests (of `method`) the server was handling at one moment: proof of parallelism."""
        events = sorted(
            (t, step)
            for r in list(self.requests)
            if r.finished and (method is None or r.method == method)
            for t, step in ((r.started, 1), (r.finished, -1))
        )
        running = peak = 0
        for _, step in events:  # at equal times -1 sorts first: back-to-back requests do not overlap
            running += step
            peak = max(peak, running)
        return peak

    def reset(self) -> None:
        """Forget faults, the log, latency, clock offset, bucket ACLs and every stored object."""
        with self._lock:
            self._faults.clear()
            self._gate = None
            self._answering.set()
            self.requests.clear()
            self.latency = 0.0
            self.random = None
            self.clock_offset = 0.0
            for name in self.bucket_acls:
                self.bucket_acls[name] = "private"
                shutil.rmtree(self.root / name, ignore_errors=True)
                (self.root / name).mkdir(parents=True, exist_ok=True)

    def now(self) -> float:
        return time.time() + self.clock_offset

    def stored_keys(self, bucket: str) -> list[str]:
        return sorted(meta["key"] for meta in self._all_meta(bucket))

    # --- storage ---------------------------------------------------------------------------------

    def _paths(self, bucket: str, key: str) -> tuple[Path, Path]:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        base = self.root / bucket / digest
        return base.with_suffix(".data"), base.with_suffix(".json")

    def _read_meta(self, bucket: str, key: str) -> dict | None:
        try:
            return json.loads(self._paths(bucket, key)[1].read_text())
        except FileNotFoundError:
            return None

    def _all_meta(self, bucket: str) -> list[dict]:
        return [json.loads(p.read_text()) for p in (self.root / bucket).glob("*.json")]

    # --- request handling ------------------------------------------------------------------------

    def handle(self, handler: _Handler, method: str) -> None:
        url = urlsplit(handler.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        raw_bucket, _, raw_key = url.path.lstrip("/").partition("/")
        bucket, key = unquote(raw_bucket), unquote(raw_key)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        body = handler.read_body()
        entry = LoggedRequest(
            method, url.path, bucket, key, query, headers, len(body), secrets.token_hex(12).upper()
        )
        with self._lock:
            self.requests.append(entry)
        if not self._answering.is_set():
            self._answering.wait(timeout=600)
            handler.close_connection = True
            entry.finished = time.monotonic()
            return

        fault = self._take_fault(method)
        kind = fault.kind if fault else ""
        rf = self.random  # this request's view, even if a test resets the server meanwhile
        chance = rf.take(method, url.path) if fault is None and rf is not None else None
        if chance:
            entry.fault = chance.kind + ("-after" if chance.after else "")
        gate = self._gate
        if gate and gate[0] in (None, method):
            try:
                gate[1].wait()
            except threading.BrokenBarrierError:  # timed out: the client never had n in flight
                pass
            self._gate = None  # one gathering only
        delay = self.latency + (fault.seconds if kind == "delay" else 0)
        if delay:
            time.sleep(delay)
        try:
            if kind == "drop" or (chance and chance.kind == "timeout" and not chance.after and not rf.delay):
                handler.close_connection = True
                entry.finished = time.monotonic()
                return
            if kind == "fail":
                raise OssFault(fault.status, fault.code, fault.message)
            if chance and not chance.after:
                self._random_fault(chance, rf)
            answer = self._dispatch(method, bucket, key, query, headers, body, entry)
            if kind == "corrupt_crc" and "x-oss-hash-crc64ecma" in answer.headers:
                answer.headers["x-oss-hash-crc64ecma"] = str(int(answer.headers["x-oss-hash-crc64ecma"]) ^ 1)
            if chance and chance.after:
                if chance.kind == "timeout" and not rf.delay:
                    handler.close_connection = True
                    entry.finished = time.monotonic()
                    return
                if chance.kind == "timeout":
                    time.sleep(rf.delay)  # the real answer, too late for the client
                else:
                    self._random_fault(chance, rf)
        except Exception as exc:  # noqa: BLE001
            if not isinstance(exc, OssFault):  # a bug here: say so loudly instead of dropping the connection
                traceback.print_exc()
                exc = OssFault(500, "InternalError", f"test server bug: {exc!r}")
            answer = self._error_answer(exc, method, bucket, entry.request_id)
            entry.code = exc.code
            if chance and chance.kind == "429":
                answer.headers["Retry-After"] = f"{rf.retry_after:g}"
        entry.status = answer.status
        handler.send_answer(answer, entry.request_id, self.now(), include_body=method != "HEAD")
        entry.finished = time.monotonic()

    def _random_fault(self, chance, rf: RandomFaults) -> None:
        if chance.kind == "429":
            raise OssFault(429, "TooManyRequests", "Please reduce your request rate.")
        if chance.kind == "500":
            raise OssFault(500, "InternalError", "We encountered an internal error. Please try again.")
        time.sleep(rf.delay)  # a timeout held past the client's patience, then refused
        raise OssFault(503, "ServiceUnavailable", "The request timed out on the server.")

    def _error_answer(self, fault: OssFault, method: str, bucket: str, request_id: str) -> _Answer:
        root = ET.Element("Error")
        for tag, text in (
            ("Code", fault.code),
            ("Message", fault.message),
            ("RequestId", request_id),
            ("HostId", f"{bucket}.{self.host}" if bucket else self.host),
            *fault.extra.items(),
        ):
            ET.SubElement(root, tag).text = text
        xml = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")
        headers = {"Content-Type": "application/xml"}
        if method == "HEAD":  # no body on HEAD: OSS sends the error XML base64-encoded in a header
            headers["x-oss-err"] = base64.b64encode(xml).decode()
            xml = b""
        return _Answer(fault.status, headers, xml)

    def _dispatch(self, method, bucket, key, query, headers, body, entry) -> _Answer:
        if not bucket:
            raise OssFault(501, "NotImplemented", "Service-level operations are not implemented here.")
        entry.auth = self._authenticate(method, bucket, key, query, headers)
        params = {k: v for k, v in query.items() if k not in AUTH_PARAMS}
        if entry.auth == "anonymous" and not (
            key and method in ("GET", "HEAD") and self._public(bucket, key)
        ):
            raise OssFault(
                403, "AccessDenied", "You have no right to access this object because of bucket acl."
            )

        if not key:
            if method == "GET" and set(params) <= LIST_PARAMS:
                return self._list(bucket, params)
            if method == "POST" and "delete" in params and set(params) <= {"delete", "encoding-type"}:
                return self._delete_multiple(bucket, params, headers, body)
        elif method == "PUT" and not params and "x-oss-copy-source" not in headers:
            return self._put(bucket, key, headers, body)
        elif method == "GET" and set(params) <= GET_PARAMS:
            return self._get(bucket, key, params, headers)
        elif method == "HEAD" and set(params) <= {"objectMeta"}:
            return self._head(bucket, key, meta_only="objectMeta" in params)
        elif method == "DELETE" and not params:
            return self._delete(bucket, key)
        raise OssFault(
            501,
            "NotImplemented",
            f"{method} with {sorted(params) or 'no parameters'} is not implemented here.",
        )

    # --- auth ------------------------------------------------------------------------------------

    def _authenticate(self, method, bucket, key, query, headers) -> str:
        authorization = headers.get("authorization", "")
        if authorization.startswith("OSS "):
            kind = "v1"
            access_key_id, _, signature = authorization[4:].partition(":")
        elif authorization.startswith("OSS4-HMAC-SHA256 "):
            kind = "v4"
            fields = dict(
                part.strip().partition("=")[::2]
                for part in authorization[len("OSS4-HMAC-SHA256 ") :].split(",")
            )
            credential, signature = fields.get("Credential", ""), fields.get("Signature", "")
            additional = [h for h in fields.get("AdditionalHeaders", "").split(";") if h]
            access_key_id = credential.split("/")[0]
        elif authorization:
            raise OssFault(
                501, "NotImplemented", "Only V1 (OSS) and V4 (OSS4-HMAC-SHA256) signatures are implemented."
            )
        elif "OSSAccessKeyId" in query:
            kind = "v1-url"
            access_key_id, signature = query["OSSAccessKeyId"], query.get("Signature", "")
        elif "x-oss-signature" in query:
            kind = "v4-url"
            credential, signature = query.get("x-oss-credential", ""), query["x-oss-signature"]
            additional = [h for h in query.get("x-oss-additional-headers", "").split(";") if h]
            access_key_id = credential.split("/")[0]
        else:
            kind = "anonymous"

        if kind != "anonymous" and access_key_id != self.access_key_id:
            raise OssFault(
                403,
                "InvalidAccessKeyId",
                "The OSS Access Key Id you provided does not exist in our records.",
                OSSAccessKeyId=access_key_id,
            )
        if bucket not in self.bucket_acls:
            raise OssFault(404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=bucket)
        if kind in ("v1", "v1-url"):
            self._check_v1(kind, method, bucket, key, query, headers, signature)
        elif kind in ("v4", "v4-url"):
            self._check_v4(kind, method, bucket, key, query, headers, credential, signature, additional)
        return kind

    def _check_skew(self, signed_at: float) -> None:
        if abs(self.now() - signed_at) > MAX_SKEW:
            raise OssFault(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
                RequestTime=http_date(signed_at),
                ServerTime=http_date(self.now()),
            )

    def _check_v1(self, kind, method, bucket, key, query, headers, signature) -> None:
        if kind == "v1-url":
            date = query.get("Expires", "")
            if not date.isdigit():
                raise OssFault(403, "AccessDenied", "Expires is not a number.")
            if int(date) < self.now():
                raise OssFault(403, "AccessDenied", "Request has expired.", Expires=http_date(int(date)))
        else:
            date = headers.get("x-oss-date") or headers.get("date", "")
            parsed = email.utils.parsedate_tz(date)
            if parsed is None:
                raise OssFault(403, "AccessDenied", "Date header is missing or invalid.")
            self._check_skew(email.utils.mktime_tz(parsed))
        oss_headers = sorted((k, v) for k, v in headers.items() if k.startswith("x-oss-"))
        subresources = sorted((k, v) for k, v in query.items() if k in V1_SUBRESOURCES)
        resource = f"/{bucket}/{key}"
        if subresources:
            resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subresources)
        string_to_sign = "\n".join(
            [
                method,
                headers.get("content-md5", ""),
                headers.get("content-type", ""),
                date,
                "".join(f"{k}:{v}\n" for k, v in oss_headers) + resource,
            ]
        )
        digest = hmac.new(
            self.access_key_secret.encode(), string_to_sign.encode("utf-8"), hashlib.sha1
        ).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), signature):
            raise OssFault(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
                OSSAccessKeyId=self.access_key_id,
                SignatureProvided=signature,
                StringToSign=string_to_sign,
            )

    def _check_v4(self, kind, method, bucket, key, query, headers, credential, signature, additional) -> None:
        try:
            _, scope_date, region, product, terminator = credential.split("/")
        except ValueError:
            raise OssFault(400, "InvalidArgument", "Invalid credential in Authorization.") from None
        signed_at_text = query.get("x-oss-date", "") if kind == "v4-url" else headers.get("x-oss-date", "")
        try:
            signed_at = calendar.timegm(time.strptime(signed_at_text, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            raise OssFault(403, "AccessDenied", "x-oss-date is missing or invalid.") from None
        if scope_date != signed_at_text[:8] or product != "oss" or terminator != "aliyun_v4_request":
            raise OssFault(400, "InvalidArgument", "Invalid credential scope in Authorization.")
        if region != self.region:
            raise OssFault(
                400,
                "InvalidArgument",
                f"Invalid signing region in Authorization header: expected {self.region}.",
            )
        if kind == "v4-url":
            expires = query.get("x-oss-expires", "")
            if not expires.isdigit() or int(expires) > MAX_V4_URL_EXPIRES:
                raise OssFault(400, "InvalidArgument", "x-oss-expires must be between 1 and 604800.")
            if signed_at > self.now() + MAX_SKEW:
                raise OssFault(403, "AccessDenied", "Request is not yet valid.")
            if signed_at + int(expires) < self.now():
                raise OssFault(403, "AccessDenied", "Request has expired.")
        else:
            self._check_skew(signed_at)

        def signed(name: str) -> bool:
            return name.startswith("x-oss-") or name in ("content-type", "content-md5") or name in additional

        canonical_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()) if signed(k))
        params = sorted(
            (uri_encode(k, False), uri_encode(v, False)) for k, v in query.items() if k != "x-oss-signature"
        )
        canonical_request = "\n".join(
            [
                method,
                uri_encode(f"/{bucket}/{key}", True),
                "&".join(f"{k}={v}" if v else k for k, v in params),
                canonical_headers,
                ";".join(sorted(additional)),
                headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
            ]
        )
        scope = f"{scope_date}/{region}/{product}/{terminator}"
        string_to_sign = "\n".join(
            [
                "OSS4-HMAC-SHA256",
                signed_at_text,
                scope,
                hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
            ]
        )
        signing_key = ("aliyun_v4" + self.access_key_secret).encode()
        for part in (scope_date, region, product, terminator):
            signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise OssFault(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
                OSSAccessKeyId=self.access_key_id,
                SignatureProvided=signature,
                StringToSign=string_to_sign,
                CanonicalRequest=canonical_request,
            )

    def _public(self, bucket: str, key: str) -> bool:
        meta = self._read_meta(bucket, key)
        acl = meta["acl"] if meta and meta["acl"] != "default" else self.bucket_acls[bucket]
        return acl in ("public-read", "public-read-write")

    # --- object operations -----------------------------------------------------------------------

    def _put(self, bucket, key, headers, body) -> _Answer:
        md5 = hashlib.md5(body).digest()
        if "content-md5" in headers and headers["content-md5"] != base64.b64encode(md5).decode():
            raise OssFault(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")
        acl = headers.get("x-oss-object-acl", "default")
        if acl not in ACLS:
            raise OssFault(
                400,
                "InvalidArgument",
                "no such object access control exists",
                ArgumentName="x-oss-object-acl",
            )
        meta = {
            "key": key,
            "size": len(body),
            "etag": md5.hex().upper(),
            "md5": base64.b64encode(md5).decode(),
            "crc64": _crc64(body),
            "content_type": headers.get("content-type") or "application/octet-stream",
            "headers": {
                k: v for k, v in headers.items() if k in STORED_HEADERS or k.startswith("x-oss-meta-")
            },
            "acl": acl,
            "last_modified": int(self.now()),
        }
        data_path, meta_path = self._paths(bucket, key)
        fd, tmp = tempfile.mkstemp(dir=data_path.parent, prefix=".put-")  # write outside the lock
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        with self._lock:
            if headers.get("x-oss-forbid-overwrite", "").lower() == "true" and meta_path.exists():
                os.unlink(tmp)
                raise OssFault(
                    409,
                    "FileAlreadyExists",
                    "The object you specified already exists and can not be overwritten.",
                )
            os.replace(tmp, data_path)
            meta_path.write_text(json.dumps(meta))
        return _Answer(
            200,
            {
                "ETag": f'"{meta["etag"]}"',
                "Content-MD5": meta["md5"],
                "x-oss-hash-crc64ecma": str(meta["crc64"]),
            },
        )

    def _load(self, bucket: str, key: str, with_data: bool = True) -> tuple[dict, bytes]:
        data_path, _ = self._paths(bucket, key)
        with self._lock:  # meta and data of one version, never of an overwrite in progress
            meta = self._read_meta(bucket, key)
            if meta is None:
                raise OssFault(404, "NoSuchKey", "The specified key does not exist.", Key=key)
            return meta, data_path.read_bytes() if with_data else b""

    def _object_headers(self, meta: dict) -> dict[str, str]:
        return {
            "Content-Type": meta["content_type"],
            "ETag": f'"{meta["etag"]}"',
            "Last-Modified": http_date(meta["last_modified"]),
            "Accept-Ranges": "bytes",
            "x-oss-object-type": "Normal",
            "x-oss-storage-class": "Standard",
            "x-oss-hash-crc64ecma": str(meta["crc64"]),
            "Content-MD5": meta["md5"],
            **{k.title() if not k.startswith("x-oss-") else k: v for k, v in meta["headers"].items()},
        }

    def _get(self, bucket, key, params, headers) -> _Answer:
        meta, data = self._load(bucket, key)
        answer_headers = self._object_headers(meta)
        for name, value in params.items():  # response-content-type=... overrides Content-Type, etc.
            answer_headers[name.removeprefix("response-").title()] = value
        byte_range = _parse_range(headers.get("range", ""), len(data))
        if byte_range is None:
            if headers.get("range") and headers.get("x-oss-range-behavior") == "standard":
                raise OssFault(416, "InvalidRange", "The requested range cannot be satisfied.")
            return _Answer(200, answer_headers, data)  # OSS ignores an invalid range by default
        start, end = byte_range
        answer_headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return _Answer(206, answer_headers, data[start : end + 1])

    def _head(self, bucket, key, meta_only) -> _Answer:
        meta, _ = self._load(bucket, key, with_data=False)
        if meta_only:
            headers = {
                "ETag": f'"{meta["etag"]}"',
                "Last-Modified": http_date(meta["last_modified"]),
                "x-oss-hash-crc64ecma": str(meta["crc64"]),
            }
        else:
            headers = self._object_headers(meta)
        return _HeadAnswer(headers, meta["size"])

    def _delete(self, bucket, key) -> _Answer:
        data_path, meta_path = self._paths(bucket, key)
        with self._lock:
            meta_path.unlink(missing_ok=True)
            data_path.unlink(missing_ok=True)
        return _Answer(204)  # OSS answers 204 for a missing key too

    def _delete_multiple(self, bucket, params, headers, body) -> _Answer:
        if "content-md5" not in headers:
            raise OssFault(
                400, "MissingArgument", "Missing Some Required Arguments.", ArgumentName="Content-MD5"
            )
        if headers["content-md5"] != base64.b64encode(hashlib.md5(body).digest()).decode():
            raise OssFault(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")
        try:
            request = ET.fromstring(body)
        except ET.ParseError:
            raise OssFault(400, "MalformedXML", "The XML you provided was not well-formed.") from None
        keys = [node.text or "" for node in request.findall("Object/Key")]
        if not keys or len(keys) > 1000:
            raise OssFault(400, "MalformedXML", "Between 1 and 1000 keys are allowed.")
        for key in keys:
            self._delete(bucket, key)
        url_encoded = params.get("encoding-type") == "url"
        root = ET.Element("DeleteResult")
        if url_encoded:
            ET.SubElement(root, "EncodingType").text = "url"
        if request.findtext("Quiet", "false").lower() != "true":
            for key in keys:
                deleted = ET.SubElement(root, "Deleted")
                ET.SubElement(deleted, "Key").text = quote(key, safe="/") if url_encoded else key
        return _xml_answer(root)

    def _list(self, bucket, params) -> _Answer:
        v2 = params.get("list-type") == "2"
        prefix, delimiter = params.get("prefix", ""), params.get("delimiter", "")
        try:
            max_keys = int(params.get("max-keys") or 100)
            assert 0 <= max_keys <= 1000
        except (ValueError, AssertionError):
            raise OssFault(
                400, "InvalidArgument", "max-keys must be between 0 and 1000.", ArgumentName="max-keys"
            ) from None
        if v2:
            token = params.get("continuation-token", "")
            after = base64.urlsafe_b64decode(token).decode() if token else params.get("start-after", "")
        else:
            after = params.get("marker", "")
        url_encoded = params.get("encoding-type") == "url"

        def enc(text: str) -> str:
            return quote(text, safe="/") if url_encoded else text

        metas = sorted(
            (
                m
                for m in self._all_meta(bucket)
                if m["key"].startswith(prefix) and m["key"].encode() > after.encode()
            ),
            key=lambda m: m["key"].encode(),
        )
        contents, prefixes, last, truncated = [], [], "", False
        for meta in metas:
            key = meta["key"]
            common = None
            if delimiter and delimiter in key[len(prefix) :]:
                common = key[: key.index(delimiter, len(prefix)) + len(delimiter)]
                if common in prefixes or (after.endswith(delimiter) and key.startswith(after)):
                    continue  # the group was returned already (here or on an earlier page)
            if len(contents) + len(prefixes) == max_keys:
                truncated = True
                break
            if common:
                prefixes.append(common)
            else:
                contents.append(meta)
            last = common or key

        root = ET.Element("ListBucketResult")
        fields = [("Name", bucket), ("Prefix", enc(prefix))]
        if v2:
            if params.get("continuation-token"):
                fields.append(("ContinuationToken", params["continuation-token"]))
            if params.get("start-after"):
                fields.append(("StartAfter", enc(params["start-after"])))
        else:
            fields.append(("Marker", enc(after)))
        fields += [
            ("MaxKeys", str(max_keys)),
            ("Delimiter", enc(delimiter)),
            ("IsTruncated", str(truncated).lower()),
        ]
        if truncated:
            if v2:
                fields.append(("NextContinuationToken", base64.urlsafe_b64encode(last.encode()).decode()))
            else:
                fields.append(("NextMarker", enc(last)))
        if v2:
            fields.append(("KeyCount", str(len(contents) + len(prefixes))))
        if url_encoded:
            fields.append(("EncodingType", "url"))
        for tag, text in fields:
            ET.SubElement(root, tag).text = text
        with_owner = not v2 or params.get("fetch-owner") == "true"
        for meta in contents:
            node = ET.SubElement(root, "Contents")
            for tag, text in (
                ("Key", enc(meta["key"])),
                ("LastModified", time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(meta["last_modified"]))),
                ("ETag", f'"{meta["etag"]}"'),
                ("Type", "Normal"),
                ("Size", str(meta["size"])),
                ("StorageClass", "Standard"),
            ):
                ET.SubElement(node, tag).text = text
            if with_owner:
                owner = ET.SubElement(node, "Owner")
                ET.SubElement(owner, "ID").text = self.access_key_id
                ET.SubElement(owner, "DisplayName").text = self.access_key_id
        for common in prefixes:
            ET.SubElement(ET.SubElement(root, "CommonPrefixes"), "Prefix").text = enc(common)
        return _xml_answer(root)


class _HeadAnswer(_Answer):
    """A HEAD answer: Content-Length is the object's size, but no body is sent."""

    def __init__(self, headers: dict[str, str], size: int) -> None:
        super().__init__(200, headers, b"")
        self.size = size


def _xml_answer(root: ET.Element) -> _Answer:
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")
    return _Answer(200, {"Content-Type": "application/xml"}, body)


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """`bytes=a-b`, `bytes=a-`, `bytes=-n` -> (start, end) inclusive; None when absent or unsatisfiable."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", value.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return None
    return start, end


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops connections under a 16-thread upload burst
    oss: OssTestServer

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return  # a client that went away (a killed worker, a timeout): not the server's problem
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as oss2's pooled connections expect
    server: _HTTPServer

    def log_message(self, format, *args) -> None:  # the request log replaces the stderr access log
        pass

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send_answer(self, answer: _Answer, request_id: str, now: float, include_body: bool) -> None:
        self.send_response(answer.status)
        headers = {
            "Server": "AliyunOSS",
            "Date": http_date(now),
            "x-oss-request-id": request_id,
            **answer.headers,
        }
        size = answer.size if isinstance(answer, _HeadAnswer) else len(answer.body)
        headers["Content-Length"] = str(size)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if include_body and answer.body:
            self.wfile.write(answer.body)

    def _handle(self) -> None:
        self.server.oss.handle(self, self.command)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = do_OPTIONS = _handle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the OSS-protocol test server.")
    parser.add_argument("--root", required=True, help="folder for the objects")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--ak", default="test-access-key-id", help="access key id")
    parser.add_argument("--sk", default="test-access-key-secret", help="access key secret")
    parser.add_argument("--bucket", action="append", help="bucket name (repeatable; default copydesk)")
    parser.add_argument("--region", default="cn-test", help="region for V4 signatures")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    args = parser.parse_args(argv)
    server = OssTestServer(
        args.root,
        access_key_id=args.ak,
        access_key_secret=args.sk,
        buckets=args.bucket or ["copydesk"],
        region=args.region,
        host=args.host,
        port=args.port,
    )
    server.latency = args.latency
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        print(
            f"OSS test server: endpoint {server.endpoint}, buckets {', '.join(server.bucket_acls)}, "
            f"region {server.region}",
            flush=True,
        )
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
