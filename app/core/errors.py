"""The one small error hierarchy every layer raises.

`documents/` and `integrations/` raise these; the workflow engine reads `transient` and `code` to decide
whether a step is retried (see a step's `retry.on` in a workflow definition); the API turns them into
JSON 4xx answers. A message must say what went wrong in words an editor understands and must never
contain a secret.
"""

from __future__ import annotations

from typing import Any


class CopydeskError(Exception):
    """Base of every error Copydesk raises on purpose."""

    code = "error"
    transient = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.retry_after = retry_after
        self.details = details or {}

    def __reduce__(self):  # keep code/retry_after when Celery pickles or re-raises the error
        return (_rebuild, (type(self), self.message, self.code, self.retry_after, self.details))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message, "transient": self.transient}
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        if self.details:
            out["details"] = self.details
        return out


def _rebuild(cls, message, code, retry_after, details):
    return cls(message, code=code, retry_after=retry_after, details=details)


class PermanentError(CopydeskError):
    """Retrying will not help: bad input, bad credentials, a missing resource."""

    code = "permanent"


class TransientError(CopydeskError):
    """May succeed later: a timeout, a 5xx, a 429, a dropped connection."""

    code = "transient"
    transient = True


# --- transient kinds (names usable in a workflow step's `retry.on`) ---------------------------


class RateLimited(TransientError):
    code = "rate_limited"


class ServiceUnavailable(TransientError):
    code = "unavailable"


class ConnectionFailed(TransientError):
    code = "connection"


class TimedOut(TransientError):
    code = "timeout"


# --- permanent kinds ---------------------------------------------------------------------------


class InvalidDocument(PermanentError):
    """The manuscript cannot be read: not Word, truncated, malformed, hostile."""

    code = "invalid_document"


class EncryptedDocument(InvalidDocument):
    code = "encrypted_document"


class LimitExceeded(InvalidDocument):
    """Too large: file size, uncompressed size, compression ratio, image pixels, paragraphs."""

    code = "limit_exceeded"


class DependencyMissing(PermanentError):
    """A program Copydesk needs is not installed here (LibreOffice for .doc)."""

    code = "dependency_missing"


class AuthenticationFailed(PermanentError):
    """A remote service refused our credentials (wrong password, key, application password)."""

    code = "auth_failed"


class PermissionDenied(PermanentError):
    code = "forbidden"


class NotFound(PermanentError):
    code = "not_found"


class RemoteError(PermanentError):
    """A remote service answered with an error that retrying will not fix (most 4xx)."""

    code = "remote_error"


class ConfigurationError(PermanentError):
    code = "configuration"


class StepTimeout(PermanentError):
    """A workflow step ran past its `timeout`."""

    code = "step_timeout"


TRANSIENT_KINDS = {"transient", "rate_limited", "unavailable", "connection", "timeout"}
ERROR_KINDS = TRANSIENT_KINDS | {
    "permanent",
    "invalid_document",
    "encrypted_document",
    "limit_exceeded",
    "dependency_missing",
    "auth_failed",
    "forbidden",
    "not_found",
    "remote_error",
    "configuration",
    "step_timeout",
}


def error_kinds(exc: BaseException) -> set[str]:
    """The names a retry policy's `on:` list can match for this exception."""
    if isinstance(exc, CopydeskError):
        kinds = {exc.code}
        kinds.add("transient" if exc.transient else "permanent")
        return kinds
    # Anything unexpected is a bug or an unclassified failure: never retried by default.
    return {"unexpected"}


def error_code(exc: BaseException) -> str:
    """The most specific kind of an error (what a step records)."""
    return exc.code if isinstance(exc, CopydeskError) else "unexpected"


def describe(exc: BaseException) -> str:
    """One line for the step's error column: the message, never a traceback."""
    if isinstance(exc, CopydeskError):
        return exc.message
    text = str(exc).strip() or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if not text.startswith(exc.__class__.__name__) else text
