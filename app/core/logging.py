"""Structured logs: one JSON object per line, with the run, step and document of the work in hand,
and every configured secret redacted (from messages, arguments and tracebacks)."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
from collections.abc import Iterator

from pythonjsonlogger.json import JsonFormatter

from app.core.config import get_settings

_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("copydesk_log_context", default=None)
REDACTED = "[redacted]"
# Credentials embedded in URLs (scheme://user:password@host) are redacted even when not configured.
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<pw>[^@/\s]+)(?=@)", re.I)


@contextlib.contextmanager
def log_context(**fields) -> Iterator[None]:
    """Attach fields (run_id, step, item, document_id…) to every log line inside the block."""
    merged = {**(_context.get() or {}), **{k: str(v) for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def add_to_log_context(**fields) -> None:
    """Add fields to the context of the enclosing `log_context` block (up to where it ends), e.g. the
    document a task turns out to be about, so the task's closing lines carry it too."""
    current = _context.get()
    if current is not None:
        current.update({k: str(v) for k, v in fields.items() if v is not None})


class Redactor:
    def __init__(self, secrets: list[str]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)


class ContextFilter(logging.Filter):
    """Adds the log context to each record and redacts secrets from its rendered message."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            setattr(record, key, value)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = str(record.msg)
        record.msg = self.redactor(message)
        record.args = None
        data = getattr(record, "data", None)
        if isinstance(data, dict) and "traceback" in data:
            # Celery puts a traceback in the `data` of every line about how a task ended, even where
            # its own policy logs none: a fan-out's task replaced by its chord, an ignored task. A
            # line shows a traceback when it carries one (exc_info), and only then.
            record.data = {key: value for key, value in data.items() if key != "traceback"}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
            record.exc_info = None  # keep the redacted text, drop the raw traceback object
        return True


class RedactingJsonFormatter(JsonFormatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))


class RedactingTextFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in (_context.get() or {}).items())
        return self.redactor(super().format(record) + (f" [{extra}]" if extra else ""))


def configure_logging(level: str | None = None, fmt: str | None = None) -> None:
    """Install the JSON (or text) handler on the root logger; idempotent."""
    settings = get_settings()
    redactor = Redactor(settings.secret_values())
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter(redactor))
    handler.setFormatter(
        RedactingTextFormatter(redactor)
        if (fmt or settings.log_format) == "text"
        else RedactingJsonFormatter(redactor)
    )
    handler._copydesk = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_copydesk", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level or settings.log_level)
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "oss2", "openai", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
