"""Recording a poll: each message read becomes a row of mail_messages, each manuscript in it a
document and a run (intake, shared with API uploads), and the cursor moves on — all in one
transaction, so a crash before the commit leaves the cursor where it was and the next poll reads the
same messages again.

The manuscripts are checked and their originals written to storage first, outside that transaction
(storage is a network call, and the transaction locks the source's row); what was recorded or
received before is not written again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.db import session_scope
from app.core.errors import InvalidDocument, LimitExceeded, TransientError
from app.integrations.mailbox import (
    KEYWORD_FAILED,
    KEYWORD_IGNORED,
    KEYWORD_PROCESSED,
    KEYWORD_UNKNOWN_SENDER,
    IncomingDocument,
    IncomingMessage,
    PollResult,
)
from app.models import Document, MailMessage, Run, Source
from app.models.base import utcnow
from app.services.mailboxes import problems
from app.workflows import intake
from app.workflows.schema import get_workflow

FILED = {KEYWORD_PROCESSED, KEYWORD_FAILED}


@dataclass
class PollSummary:
    source: str
    skipped: str | None = None
    fetched: int = 0
    recorded: int = 0
    runs: int = 0
    duplicates: int = 0
    ignored: int = 0
    unauthorized: int = 0
    failed: int = 0
    settled: int = 0
    more: bool = False
    uidvalidity_changed: bool = False
    error: str | None = None
    error_code: str | None = None
    to_send: list[Run] = field(default_factory=list, repr=False)
    to_mark: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        hidden = ("to_send", "to_mark")
        return {k: v for k, v in self.__dict__.items() if k not in hidden and v is not None and v is not False}


@dataclass
class Taken:
    """A manuscript of a message, checked (and its original kept) before the poll is recorded."""

    entry: dict[str, Any]  # what the message's row shows of it: filename, kind, size, sha256, origin, error
    payload: dict[str, Any] | None = None
    asked: dict[str, Any] = field(default_factory=dict)  # what the message itself asks (not the defaults)
    manuscript: intake.Manuscript | None = None
    kept: bool = False  # its original was written (not when the same content had been received before)


def record_poll(source_id: uuid.UUID, config, result: PollResult, summary: PollSummary) -> None:
    """Record the polled messages, their documents and runs, and the new cursor: one transaction.
    A permanent problem with one document fails that message; anything else fails the whole poll
    (nothing recorded, the cursor unchanged: the next poll reads the same messages again)."""
    uidvalidity = result.cursor.uidvalidity
    messages = [m for m in result.messages if not FILED & set(m.flags)]  # filed by us on a server without UIDPLUS
    taken = take_in(source_id, messages, uidvalidity)
    with session_scope() as session:
        source = session.execute(select(Source).where(Source.id == source_id).with_for_update()).scalar_one()
        for message in messages:
            if _known_row(session, source.id, message, uidvalidity, adopt=True) is not None:
                continue  # already recorded: read again after a crash, a lost cursor or a new UIDVALIDITY
            _record_message(session, source, message, uidvalidity, taken.get(message.uid, []), summary)
        source.uidvalidity, source.last_uid = result.cursor
        moment = utcnow()
        source.last_poll_at = source.last_success_at = moment
        source.last_error = source.last_error_code = source.last_error_at = None
        source.consecutive_failures = 0
        source.next_poll_at = moment if result.more else moment + timedelta(seconds=source.poll_interval)


def take_in(source_id: uuid.UUID, messages: list[IncomingMessage], uidvalidity: int) -> dict[int, list[Taken]]:
    """Check the manuscripts of the messages (by UID) and keep the originals of those in messages not
    recorded yet, unless the same content was received before; the database is only read here."""
    with session_scope() as session:
        source = session.get(Source, source_id)
        workflow, defaults = source.workflow, dict(source.defaults or {})
        taken = {
            m.uid: [_check(workflow, defaults, m, document) for document in m.documents]
            for m in messages
            if m.status == "ready"
        }
        new = [
            t for m in messages if m.uid in taken and _known_row(session, source_id, m, uidvalidity, adopt=False) is None
            for t in taken[m.uid] if t.manuscript
        ]  # fmt: skip
        keys = {t.manuscript.dedupe_key for t in new}
        received = set(session.execute(select(Document.dedupe_key).where(Document.dedupe_key.in_(keys))).scalars())
    for t in new:
        if t.manuscript.dedupe_key not in received:
            intake.keep_original(t.manuscript)
            received.add(t.manuscript.dedupe_key)  # the same file twice in one poll is kept once
            t.kept = True
    return taken


def _check(workflow: str, defaults: dict[str, Any], message: IncomingMessage, document: IncomingDocument) -> Taken:
    taken = Taken(entry={
        "filename": document.filename,
        "kind": document.kind,
        "size": document.size,
        "sha256": document.sha256,
        "origin": document.origin,
    })  # fmt: skip
    try:
        limit = get_settings().max_upload_bytes
        if document.size > limit:
            raise LimitExceeded(
                f"{document.filename} is {document.size / 1048576:.1f} MB, above the limit of "
                f"{limit / 1048576:.0f} MB (MAX_UPLOAD_MB)"
            )
        taken.payload = run_payload(workflow, defaults, message, document)
        taken.asked = message_inputs(message, document)
        taken.manuscript = intake.check(document.data, document.filename, kind="html" if document.kind == "html" else None)
    except InvalidDocument as exc:  # not Word, damaged, encrypted, too large: this message fails
        taken.entry["error"] = exc.message
    return taken


def run_payload(
    workflow: str, defaults: dict[str, Any], message: IncomingMessage, document: IncomingDocument
) -> dict[str, Any]:
    """The run's inputs: the source's defaults (site, category, status…), overridden by the message's
    directives. A body made into a document takes its title from the subject."""
    payload = {k: v for k, v in defaults.items() if v not in (None, "", [])}
    payload.update(message_inputs(message, document))
    try:
        get_workflow(workflow).payload_model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidDocument(f"the source's defaults or the message's directives are not valid: {problems(exc)}") from None
    return payload


def message_inputs(message: IncomingMessage, document: IncomingDocument) -> dict[str, Any]:
    """What the message asks of the run: its directives; a body made into a document, its subject as
    the title."""
    inputs = message.directives.run_inputs()
    if document.origin == "body" and message.title:
        inputs["title"] = message.title
    return inputs


def _known_row(
    session: Session, source_id: uuid.UUID, message: IncomingMessage, uidvalidity: int, *, adopt: bool
) -> MailMessage | None:
    row = session.execute(
        select(MailMessage).where(
            MailMessage.source_id == source_id, MailMessage.uidvalidity == uidvalidity, MailMessage.uid == message.uid
        )
    ).scalar_one_or_none()
    if row is not None:
        return row
    # The folder got a new UIDVALIDITY: a message recorded under the old one and still in the folder
    # (not moved yet) is the same message with a new UID, where it will be moved from (`adopt`).
    stale = session.execute(
        select(MailMessage)
        .where(
            MailMessage.source_id == source_id,
            MailMessage.message_id == message.message_id[:1000],
            MailMessage.uidvalidity != uidvalidity,
            MailMessage.moved_at.is_(None),
        )
        .order_by(MailMessage.uid)
        .limit(1)
    ).scalar_one_or_none()
    if stale is not None and adopt:
        stale.uidvalidity, stale.uid = uidvalidity, message.uid
        session.flush()
    return stale


def _record_message(
    session: Session,
    source: Source,
    message: IncomingMessage,
    uidvalidity: int,
    taken: list[Taken],
    summary: PollSummary,
) -> MailMessage:
    row = MailMessage(
        id=uuid.uuid4(),
        source_id=source.id,
        uidvalidity=uidvalidity,
        uid=message.uid,
        message_id=message.message_id[:1000],
        sender=message.sender[:1000] or None,
        subject=message.subject,
        title=message.title,
        received_at=_aware(message.date),
        size=message.size,
        directives=message.directives.as_dict(),
        warnings=list(message.warnings),
        documents=[],
        run_ids=[],
        language=message.language,
        references=[ref[:1000] for ref in message.references[-20:]],
    )
    session.add(row)
    session.flush()
    summary.recorded += 1
    if message.status == "unknown_sender":
        row.state, row.reason = "unauthorized", message.reason
        summary.unauthorized += 1
        summary.to_mark.setdefault(KEYWORD_UNKNOWN_SENDER, []).append(message.uid)
        return row
    if message.status == "ignored":
        row.state, row.reason = "ignored", message.reason
        summary.ignored += 1
        summary.to_mark.setdefault(KEYWORD_IGNORED, []).append(message.uid)
        return row
    row.state = "accepted"  # settled (moved) once the runs it waits for have ended
    if message.status != "ready":  # too large, unreadable: nothing to take from it, off to the failed folder
        row.reason = message.reason
        summary.failed += 1
        return row
    entries, run_ids, notes = [], [], []
    for document, each in zip(message.documents, taken, strict=True):
        entries.append(each.entry)
        if each.manuscript is None:
            summary.failed += 1
            continue
        try:
            submission = _submit(session, source, each, row.id, summary.to_send)
        except intake.StillRunning as exc:  # new directives while its run goes on: this message fails
            each.entry.update(error=exc.message, document_id=exc.details["document_id"], duplicate=True)
            summary.failed += 1
            continue
        each.entry.update(
            document_id=str(submission.document.id),
            run_id=str(submission.run.id) if submission.run else None,
            duplicate=submission.duplicate,
        )
        if submission.run is not None:
            run_ids.append(submission.run.id)
        if submission.duplicate:
            summary.duplicates += 1
            notes.append(_duplicate_note(session, document.filename, submission, each.asked))
        if submission.run is not None and (not submission.duplicate or submission.updated):
            submission.run.warnings = [*submission.run.warnings, *message.warnings]
            if submission.run not in summary.to_send:
                summary.to_send.append(submission.run)
                summary.runs += 1
    row.documents, row.run_ids = entries, list(dict.fromkeys(run_ids))
    if notes:
        row.reason = "; ".join(notes)
    return row


def _submit(
    session: Session, source: Source, taken: Taken, row_id: uuid.UUID, unsent: list[Run]
) -> intake.Submission:
    """The manuscript's document and run, or those of the same content received before, its
    directives applied by a new run when they ask for something new (intake.resubmit)."""
    submission = intake.find_duplicate(session, taken.manuscript)
    if submission is None:
        if not taken.kept:  # a duplicate when checked, gone since: keep nothing half done
            raise TransientError(f"{taken.manuscript.filename} changed while the poll was recorded; the next poll takes it")
        submission = intake.record_or_duplicate(
            session,
            taken.manuscript,
            origin="mail",
            workflow=source.workflow,
            payload=taken.payload,
            options=taken.payload,
            source_id=source.id,
            mail_message_id=row_id,
            site_id=None,
        )
    if not submission.duplicate:
        return submission
    return intake.resubmit(
        session, submission, taken.asked, workflow=source.workflow, source_id=source.id,
        mail_message_id=row_id, unsent=unsent,
    )  # fmt: skip


def _duplicate_note(session: Session, filename: str, submission: intake.Submission, asked: dict[str, Any]) -> str:
    note = f"{filename} was already received (document {submission.document.id})"
    if submission.updated:
        return f"{note}: its directives ({', '.join(sorted(asked))}) are applied by run {submission.run.id}, which updates its post"
    _, url = intake.published_post(session, submission.document.id)
    return f"{note}, with nothing new to apply" + (f": {url}" if url else "")


def _aware(moment: datetime | None) -> datetime | None:
    """A Date header without a zone ("-0000") is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)
