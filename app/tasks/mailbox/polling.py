"""One poll of one mailbox, under its lock: file away the messages whose runs have ended, fetch the
new ones, record them (recording.py), start their runs, and flag the messages that stay in place."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from app.core.db import session_scope
from app.core.errors import CopydeskError, describe, error_code
from app.core.logging import log_context
from app.integrations.mailbox import MailboxConfig, PollResult, ensure_folders, mark, poll
from app.models import Source
from app.services.mailboxes import mailbox_config
from app.tasks.mailbox.failures import record_failure
from app.tasks.mailbox.legacy import convert_legacy_in_one_batch
from app.tasks.mailbox.lock import source_lock
from app.tasks.mailbox.recording import PollSummary, record_poll
from app.tasks.mailbox.settling import settle
from app.workflows import engine

log = logging.getLogger("copydesk.mailbox")


def poll_source(source_id: uuid.UUID | str) -> dict[str, Any]:
    """One poll of one source, under its lock; its summary (`more`: the folder holds more than one
    poll takes, poll again at once)."""
    source_id = uuid.UUID(str(source_id))
    with source_lock(source_id) as mine:
        if not mine:
            return {"source": str(source_id), "skipped": "a poll of this source is already under way"}
        return _poll(source_id).as_dict()


def _poll(source_id: uuid.UUID) -> PollSummary:
    with session_scope() as session:
        source = session.get(Source, source_id)
        if source is None:
            return PollSummary(source=str(source_id), skipped="the source no longer exists")
        name = source.name
        cursor = (source.uidvalidity, source.last_uid) if source.uidvalidity is not None else None
        first_poll = source.last_success_at is None
    summary = PollSummary(source=name)
    with log_context(source=name, source_id=source_id):
        try:
            with session_scope() as session:
                config = mailbox_config(session.get(Source, source_id))
            summary.settled = settle(config, source_id)
            if first_poll:
                ensure_folders(config)
            result = fetch(config, cursor)
            summary.fetched = len(result.messages)
            summary.more, summary.uidvalidity_changed = result.more, result.uidvalidity_changed
            record_poll(source_id, config, result, summary)
        except Exception as exc:  # nothing of this poll was recorded (moves already made stay recorded)
            record_failure(source_id, exc)
            return PollSummary(source=name, settled=summary.settled, error=describe(exc), error_code=error_code(exc))
        convert_legacy_in_one_batch(summary.to_send)
        for run in summary.to_send:
            try:
                engine.send(run)
            except Exception as exc:  # the run is recorded as queued: the sweeper sends it again
                log.error("mailbox %s: could not start run %s (the sweeper will): %s", name, run.id, describe(exc))
        _mark_kept(config, result.cursor.uidvalidity, summary.to_mark)
        if summary.fetched or summary.settled:
            log.info(
                "mailbox %s: %d new message(s), %d run(s) started, %d duplicate(s), %d ignored, "
                "%d from unknown senders, %d failed, %d filed away",
                name, summary.recorded, summary.runs, summary.duplicates, summary.ignored,
                summary.unauthorized, summary.failed, summary.settled,
            )  # fmt: skip
    return summary


def fetch(config: MailboxConfig, cursor) -> PollResult:
    """The IMAP poll (a seam of its own, so what happens around it can be observed)."""
    return poll(config, cursor)


def _mark_kept(config: MailboxConfig, uidvalidity: int, to_mark: dict[str, list[int]]) -> None:
    """Flag the messages that stay in the watched folder (unknown senders, ignored mail) with a keyword,
    so a person looking at the mailbox sees why. Cosmetic: a failure is logged, nothing else."""
    for keyword, uids in to_mark.items():
        try:
            mark(config, uids, [keyword], uidvalidity=uidvalidity)
        except CopydeskError as exc:
            log.warning("mailbox: could not flag %d message(s) %s: %s", len(uids), keyword, exc.message)
