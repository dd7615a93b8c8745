"""A failed poll or settle shows on its source (`last_error`, `consecutive_failures`) and pushes the
next poll out: the poll interval doubled for each failure in a row, at most an hour."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy import select

from app.core.db import session_scope
from app.core.errors import CopydeskError, describe, error_code
from app.models import Source
from app.models.base import utcnow

log = logging.getLogger("copydesk.mailbox")

MAX_BACKOFF = 3600.0  # seconds: a failing mailbox is still tried at least once an hour


def backoff(poll_interval: float, failures: int, retry_after: float | None = None) -> float:
    """Seconds before the next try after `failures` failures in a row: the poll interval doubled each
    time, capped at an hour (or the interval, when that is longer), at least what the server asked."""
    cap = max(MAX_BACKOFF, float(poll_interval))
    delay = min(max(1.0, float(poll_interval)) * 2 ** min(max(failures, 1), 16), cap)
    return max(delay, float(retry_after or 0))


def record_failure(source_id: uuid.UUID, exc: BaseException) -> None:
    """Show the error on the source and push its next poll out (exponential backoff)."""
    message, code = describe(exc), error_code(exc)
    with session_scope() as session:
        source = session.execute(select(Source).where(Source.id == source_id).with_for_update()).scalar_one_or_none()
        if source is None:
            return
        moment = utcnow()
        source.consecutive_failures += 1
        source.last_error, source.last_error_code, source.last_error_at = message, code, moment
        source.last_poll_at = moment
        delay = backoff(source.poll_interval, source.consecutive_failures, getattr(exc, "retry_after", None))
        source.next_poll_at = moment + timedelta(seconds=delay)
        failures, name = source.consecutive_failures, source.name
    if isinstance(exc, CopydeskError):
        log.warning(
            "mailbox %s: %s (%s; failure %d in a row, next try in %.0f s)", name, message, code, failures, delay
        )
    else:
        log.error("mailbox %s: unexpected failure (next try in %.0f s): %s", name, delay, message, exc_info=exc)
