"""Mailbox intake in the running system: beat's dispatcher, the poll of one source, and the moving of
messages whose runs have ended. The IMAP work itself is `app.integrations.mailbox` (pure); intake is
`app.workflows.intake` (shared with API uploads); this module only wires them to PostgreSQL and Celery.

    beat ─▶ copydesk.mailbox.dispatch (every MAILBOX_DISPATCH_INTERVAL s)
              ├─▶ copydesk.mailbox.poll(source)    for each enabled source that is due
              └─▶ copydesk.mailbox.settle(source)  for each source with messages whose runs all ended

Exactly once, step by step:
- One poll or settle of a source at a time: a Redis lock per source (SET NX EX with a random token,
  renewed while the work lasts, released by compare-and-delete). A killed worker's lock expires after
  STEP_HEARTBEAT_TIMEOUT seconds. The dispatcher also claims a due source in PostgreSQL
  (FOR UPDATE SKIP LOCKED, next_poll_at pushed out) before sending its poll.
- A poll records every message, creates the documents and runs (intake dedupes on the content hash,
  with API uploads too) and stores the cursor, all in ONE transaction. A crash before the commit
  leaves the cursor where it was: the next poll reads the same messages again and records them then.
  Runs are sent after the commit (a crash in between leaves queued runs that the sweeper re-queues).
- A message read again (a lost cursor, a UIDVALIDITY change, the same message delivered twice) finds
  its row, or its documents find theirs by content hash: it never starts a second run.
- Settling moves a message once all the runs it waits for have ended: to the processed folder when
  they all succeeded, else to the failed one, with the reason. Rows are locked while they are moved,
  and moving a message that is already gone is a no-op, so a retry after a crash cannot move twice.
  Nothing is ever deleted.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import secrets
import tempfile
import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import redis
from pydantic import ValidationError
from sqlalchemy import cast, exists, func, select
from sqlalchemy.dialects.postgresql import JSONPATH
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.db import session_scope
from app.core.errors import CopydeskError, InvalidDocument, LimitExceeded, describe, error_code
from app.core.logging import log_context
from app.core.security import decrypt_secret, encrypt_secret
from app.integrations.mailbox import (
    KEYWORD_FAILED,
    KEYWORD_IGNORED,
    KEYWORD_PROCESSED,
    KEYWORD_UNKNOWN_SENDER,
    IncomingDocument,
    IncomingMessage,
    MailboxChanged,
    MailboxConfig,
    PollResult,
    ensure_folders,
    find_by_message_id,
    mark,
    move,
    poll,
)
from app.integrations.mailbox.config import DEFAULT_PORTS
from app.models import RUN_TERMINAL, Document, MailMessage, Run, Source
from app.tasks.celery_app import celery_app
from app.services import storage
from app.workflows import engine, intake
from app.workflows.schema import get_workflow
from app.workflows.state import now

log = logging.getLogger("copydesk.mailbox")

POLL_TASK = "copydesk.mailbox.poll"
SETTLE_TASK = "copydesk.mailbox.settle"
DEFAULT_SOURCE = "default"
MAX_BACKOFF = 3600.0  # seconds: a failing mailbox is still tried at least once an hour
SETTLE_BATCH = 200  # messages moved per settle (the rest at the next one)
LOCK_PREFIX = "copydesk:mailbox:lock:"
FILED = {KEYWORD_PROCESSED, KEYWORD_FAILED}


# --- a source as the mailbox package sees it -------------------------------------------------------


def source_config(source: Source) -> MailboxConfig:
    """The MailboxConfig of a stored source (decrypts the password; ConfigurationError if it cannot)."""
    options = source.options or {}
    return MailboxConfig(
        host=source.host,
        user=source.username,
        password=decrypt_secret(source.password_encrypted),
        port=source.port,
        tls=source.tls_mode,  # type: ignore[arg-type]
        allow_plain=bool(options.get("allow_plain")),
        folder=source.folder,
        processed_folder=source.processed_folder,
        failed_folder=source.failed_folder,
        allowed_senders=tuple(source.allowed_senders or ()),
        ca_file=ca_file(options.get("ca_cert")),
        timeout=float(options.get("timeout") or 30),
        max_messages_per_poll=int(options.get("max_messages_per_poll") or 200),
        max_bytes_per_poll=int(options.get("max_bytes_per_poll") or 256 * 1024 * 1024),
    )


def ca_file(pem: str | None) -> str | None:
    """A CA certificate stored with the source (PEM text), as a file ssl can load: written once per
    machine under its hash, so any worker can use it without a shared path."""
    if not pem:
        return None
    digest = hashlib.sha256(pem.encode()).hexdigest()[:24]
    path = Path(tempfile.gettempdir()) / f"copydesk-ca-{digest}.pem"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.{secrets.token_hex(4)}.tmp")
        partial.write_text(pem)
        partial.replace(path)
    return str(path)


def ensure_default_source(session: Session) -> Source | None:
    """Create or update the source named "default" from IMAP_HOST, IMAP_USER, IMAP_PASSWORD (+ IMAP_PORT,
    IMAP_FOLDER, IMAP_TLS). Idempotent; what an admin changed through the API (allowed senders, poll
    interval, folders, defaults) is left alone. None when no mailbox is configured."""
    settings = get_settings()
    if not (settings.imap_host and settings.imap_user and settings.imap_password):
        return None
    password = settings.imap_password.get_secret_value()
    wanted: dict[str, Any] = {
        "host": settings.imap_host,
        "port": settings.imap_port or DEFAULT_PORTS[settings.imap_tls],
        "tls_mode": settings.imap_tls,
        "username": settings.imap_user,
        "folder": settings.imap_folder,
    }
    source = session.execute(select(Source).where(Source.name == DEFAULT_SOURCE)).scalar_one_or_none()
    if source is None:
        source = Source(
            name=DEFAULT_SOURCE,
            password_encrypted=encrypt_secret(password),
            options={"allow_plain": settings.imap_tls == "plain"},
            allowed_senders=[],
            defaults={},
            **wanted,
        )
        try:
            with session.begin_nested():
                session.add(source)
        except IntegrityError:  # another process created it at the same moment
            return session.execute(select(Source).where(Source.name == DEFAULT_SOURCE)).scalar_one()
        log.info("mailbox: created the default source (%s on %s)", settings.imap_user, settings.imap_host)
        return source
    changed = [name for name, value in wanted.items() if getattr(source, name) != value]
    for name in changed:
        setattr(source, name, wanted[name])
    try:
        same_password = decrypt_secret(source.password_encrypted) == password
    except CopydeskError:  # ENCRYPTION_KEY changed: the environment is the truth for this source
        same_password = False
    if not same_password:
        source.password_encrypted = encrypt_secret(password)
        changed.append("password")
    allow_plain = settings.imap_tls == "plain"
    if bool((source.options or {}).get("allow_plain")) != allow_plain:
        source.options = {**(source.options or {}), "allow_plain": allow_plain}
    if changed:
        source.next_poll_at = None  # try the new settings at once
        log.info("mailbox: updated the default source from the environment (%s)", ", ".join(changed))
    return source


_default_synced: str | None = None


def _sync_default_source() -> None:
    """ensure_default_source once per process and per configuration (the dispatcher calls this)."""
    global _default_synced
    settings = get_settings()
    if not settings.imap_host:
        return
    password = settings.imap_password.get_secret_value() if settings.imap_password else ""
    fingerprint = hashlib.sha256(
        "\n".join(map(str, (settings.imap_host, settings.imap_port, settings.imap_user, settings.imap_tls,
                            settings.imap_folder, password, settings.fernet_key()))).encode()
    ).hexdigest()  # fmt: skip
    if fingerprint == _default_synced:
        return
    with session_scope() as session:
        ensure_default_source(session)
    _default_synced = fingerprint


# --- the per-source lock -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    from app.core.connections import redis_client

    return redis_client(url)


def redis_client() -> redis.Redis:
    url = get_settings().redis_url
    if not url:
        from app.core.errors import ConfigurationError

        raise ConfigurationError("REDIS_URL is not set: mailbox polling needs Redis for its locks")
    return _redis(url)


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)


def lock_key(source_id: uuid.UUID | str) -> str:
    return f"{LOCK_PREFIX}{source_id}"


def lock_held(source_id: uuid.UUID | str) -> bool:
    return bool(redis_client().exists(lock_key(source_id)))


class SourceLock:
    """SET NX EX with a token of our own; renewed by a thread while held (a dead holder's lock expires
    after STEP_HEARTBEAT_TIMEOUT); released only by its holder (compare-and-delete)."""

    def __init__(self, source_id: uuid.UUID | str) -> None:
        settings = get_settings()
        self.key = lock_key(source_id)
        self.token = secrets.token_hex(16)
        self.ttl_ms = max(1000, int(settings.heartbeat_timeout * 1000))
        self.renew_every = max(0.2, min(settings.heartbeat_interval, settings.heartbeat_timeout / 3))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.client = redis_client()

    def acquire(self) -> bool:
        if not self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return False
        self._thread = threading.Thread(target=self._renew, name=f"mailbox-lock-{self.key[-8:]}", daemon=True)
        self._thread.start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_every):
            try:
                if not self.client.eval(_RENEW, 1, self.key, self.token, self.ttl_ms):
                    log.warning("mailbox: lost the lock %s while working", self.key)
                    return
            except redis.RedisError as exc:  # keep trying: the TTL covers a short outage
                log.warning("mailbox: could not renew the lock %s: %s", self.key, exc)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.client.eval(_RELEASE, 1, self.key, self.token)
        except redis.RedisError as exc:  # it expires by itself
            log.warning("mailbox: could not release the lock %s: %s", self.key, exc)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        if self._thread is not None:
            self.release()


# --- the dispatcher (beat) ---------------------------------------------------------------------------


def _settleable(source_id=None):
    """Messages that wait to be moved and whose runs have all ended (or that have no run to wait for)."""
    running = exists(
        select(Run.id).where(Run.id == MailMessage.run_ids.any_(), Run.state.not_in(RUN_TERMINAL))
    )
    query = select(MailMessage).where(MailMessage.state == "accepted", ~running)
    if source_id is not None:
        query = query.where(MailMessage.source_id == source_id)
    return query


def _refileable(source_id=None):
    """Messages filed under failures whose runs have all succeeded since (they were resumed) and
    whose attachments were all taken: they belong with the processed mail now."""
    unfinished = exists(select(Run.id).where(Run.id == MailMessage.run_ids.any_(), Run.state != "succeeded"))
    refused_attachment = func.jsonb_path_exists(MailMessage.documents, cast("$[*].error ? (@ != null)", JSONPATH))
    query = select(MailMessage).where(
        MailMessage.state == "failed",
        MailMessage.moved_at.is_not(None),
        func.cardinality(MailMessage.run_ids) > 0,
        ~unfinished,
        ~refused_attachment,
    )
    if source_id is not None:
        query = query.where(MailMessage.source_id == source_id)
    return query


def poll_expiry(source: Source) -> float:
    """How long a poll task may wait in the queue before it is dropped; the dispatcher sends no other
    poll of the source meanwhile (a poll lost with its worker is sent again after this long)."""
    return max(2 * get_settings().mailbox_dispatch_interval, float(min(source.poll_interval, 300)))


def dispatch() -> int:
    """Send a poll for each enabled source that is due and a settle for each enabled source with ended
    runs to file away; skip sources being worked on (their lock is held). Returns the tasks sent."""
    _sync_default_source()
    moment = now()
    polls: list[tuple[str, float]] = []
    settles: list[str] = []
    with session_scope() as session:
        due = session.execute(
            select(Source)
            .where(Source.enabled, (Source.next_poll_at.is_(None)) | (Source.next_poll_at <= moment))
            .order_by(Source.next_poll_at.asc().nulls_first())
            .with_for_update(skip_locked=True)
        ).scalars().all()
        for source in due:
            if lock_held(source.id):
                continue
            expires = poll_expiry(source)
            source.next_poll_at = moment + timedelta(seconds=expires)  # provisional: the poll sets the real one
            polls.append((str(source.id), expires))
        polled = {sid for sid, _ in polls}
        healthy = select(Source.id).where(Source.enabled, Source.consecutive_failures == 0)
        candidates = {
            source_id
            for query in (_settleable(), _refileable())
            for source_id in session.execute(
                query.with_only_columns(MailMessage.source_id).where(MailMessage.source_id.in_(healthy)).distinct()
            ).scalars()
        }
        for source_id in candidates:
            if str(source_id) not in polled and not lock_held(source_id):
                settles.append(str(source_id))
    interval = get_settings().mailbox_dispatch_interval
    for source_id, expires in polls:
        poll_task.apply_async(args=[source_id], queue="io", expires=expires)
    for source_id in settles:
        settle_task.apply_async(args=[source_id], queue="io", expires=max(10.0, 2 * interval))
    return len(polls) + len(settles)


# --- polling -----------------------------------------------------------------------------------------


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


def poll_source(source_id: uuid.UUID | str) -> dict[str, Any]:
    """One poll of one source, under its lock: file away ended messages, fetch new ones, record them
    with their documents and runs (and the cursor) in one transaction, then start the runs."""
    source_id = uuid.UUID(str(source_id))
    lock = SourceLock(source_id)
    if not lock.acquire():
        return {"source": str(source_id), "skipped": "a poll of this source is already under way"}
    more = False
    try:
        summary = _poll_locked(source_id)
        more = summary.more and summary.error is None
        return summary.as_dict()
    finally:
        lock.release()
        if more:  # the folder holds more than one poll takes: go on at once
            poll_task.apply_async(args=[str(source_id)], queue="io", expires=60)


def _poll_locked(source_id: uuid.UUID) -> PollSummary:
    with session_scope() as session:
        source = session.get(Source, source_id)
        if source is None:
            return PollSummary(source=str(source_id), skipped="the source no longer exists")
        name = source.name
        cursor = (source.uidvalidity, source.last_uid) if source.uidvalidity is not None else None
        first_poll = source.last_success_at is None
    summary = PollSummary(source=name)
    with log_context(source=name):
        try:
            with session_scope() as session:
                config = source_config(session.get(Source, source_id))
            summary.settled = _settle(config, source_id)
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


def convert_legacy_in_one_batch(runs: list[Run]) -> int:
    """Convert the .doc manuscripts of one poll with one LibreOffice start (about 1.7 s for 20 files
    against 1.5 s each one by one); each run's convert step then finds its .docx ready. A file that
    fails here is simply converted (and its error reported) by its own step. Returns the files done."""
    from app.documents import LibreOffice
    from app.tasks.steps.convert import DOCX_TYPE, converted_key

    with session_scope() as session:
        docs = [
            (d.id, d.original_key, d.filename)
            for d in session.execute(
                select(Document).where(Document.id.in_([r.document_id for r in runs if r.document_id]))
            ).scalars()
            if d.kind == "doc"
        ]
    settings = get_settings()
    libreoffice = LibreOffice.find(settings.soffice_path, settings.convert_timeout) if len(docs) > 1 else None
    if libreoffice is None:
        return 0
    store = storage()
    try:
        outputs = libreoffice.docs_to_docx([store.get(key) for _, key, _ in docs], [name for *_, name in docs])
    except CopydeskError as exc:
        log.warning("batch conversion of %d .doc file(s) failed, each step converts its own: %s", len(docs), exc.message)
        return 0
    done = 0
    for (doc_id, _, _), output in zip(docs, outputs):
        if isinstance(output, bytes):
            store.put(converted_key(doc_id), output, content_type=DOCX_TYPE)
            done += 1
    return done


def fetch(config: MailboxConfig, cursor) -> PollResult:
    """The IMAP poll (a seam of its own, so what happens around it can be observed)."""
    return poll(config, cursor)


def record_poll(source_id: uuid.UUID, config: MailboxConfig, result: PollResult, summary: PollSummary) -> None:
    """Record the polled messages, their documents and runs, and the new cursor: one transaction.
    A permanent problem with one document fails that message; anything else fails the whole poll
    (nothing recorded, the cursor unchanged: the next poll reads the same messages again)."""
    uidvalidity = result.cursor.uidvalidity
    with session_scope() as session:
        source = session.execute(select(Source).where(Source.id == source_id).with_for_update()).scalar_one()
        for message in result.messages:
            if FILED & set(message.flags):
                continue  # filed by us on a server without UIDPLUS (copied, the original kept and marked)
            row = _known_row(session, source, message, uidvalidity)
            if row is not None:
                continue  # already recorded: read again after a crash, a lost cursor or a new UIDVALIDITY
            _record_message(session, source, config, message, uidvalidity, summary)
        source.uidvalidity, source.last_uid = result.cursor
        moment = now()
        source.last_poll_at = source.last_success_at = moment
        source.last_error = source.last_error_code = source.last_error_at = None
        source.consecutive_failures = 0
        source.next_poll_at = moment if result.more else moment + timedelta(seconds=source.poll_interval)


def _known_row(session: Session, source: Source, message: IncomingMessage, uidvalidity: int) -> MailMessage | None:
    row = session.execute(
        select(MailMessage).where(
            MailMessage.source_id == source.id, MailMessage.uidvalidity == uidvalidity, MailMessage.uid == message.uid
        )
    ).scalar_one_or_none()
    if row is not None:
        return row
    # The folder got a new UIDVALIDITY: a message recorded under the old one and still in the folder
    # (not moved yet) is the same message with a new UID. Remember the new UID (where it will be moved from).
    stale = session.execute(
        select(MailMessage)
        .where(
            MailMessage.source_id == source.id,
            MailMessage.message_id == message.message_id[:1000],
            MailMessage.uidvalidity != uidvalidity,
            MailMessage.moved_at.is_(None),
        )
        .order_by(MailMessage.uid)
        .limit(1)
    ).scalar_one_or_none()
    if stale is not None:
        stale.uidvalidity, stale.uid = uidvalidity, message.uid
        session.flush()
    return stale


def _record_message(
    session: Session,
    source: Source,
    config: MailboxConfig,
    message: IncomingMessage,
    uidvalidity: int,
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
    for document in message.documents:
        entry, submission = _intake(session, source, message, document, row.id)
        entries.append(entry)
        if submission is None:
            summary.failed += 1
            continue
        if submission.run is not None:
            run_ids.append(submission.run.id)
        if submission.duplicate:
            summary.duplicates += 1
            notes.append(f"{document.filename} was already received (document {submission.document.id})")
        else:
            submission.run.warnings = [*submission.run.warnings, *message.warnings]
            summary.to_send.append(submission.run)
            summary.runs += 1
    row.documents, row.run_ids = entries, list(dict.fromkeys(run_ids))
    if notes:
        row.reason = "; ".join(notes)
    return row


def _aware(moment: datetime | None) -> datetime | None:
    """A Date header without a zone ("-0000") is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


def _intake(
    session: Session, source: Source, message: IncomingMessage, document: IncomingDocument, row_id: uuid.UUID
) -> tuple[dict[str, Any], intake.Submission | None]:
    entry: dict[str, Any] = {
        "filename": document.filename,
        "kind": document.kind,
        "size": document.size,
        "sha256": document.sha256,
        "origin": document.origin,
    }
    try:
        limit = get_settings().max_upload_bytes
        if document.size > limit:
            raise LimitExceeded(
                f"{document.filename} is {document.size / 1048576:.1f} MB, above the limit of "
                f"{limit / 1048576:.0f} MB (MAX_UPLOAD_MB)"
            )
        payload = run_payload(source, message, document)
        submission = intake.submit(
            session,
            document.data,
            document.filename,
            kind=document.kind if document.kind == "html" else None,
            origin="mail",
            workflow=source.workflow,
            payload=payload,
            options=payload,
            source_id=source.id,
            mail_message_id=row_id,
            site_id=None,
        )
    except InvalidDocument as exc:  # not Word, damaged, encrypted, too large: this message fails
        entry["error"] = exc.message
        return entry, None
    entry["document_id"] = str(submission.document.id)
    entry["run_id"] = str(submission.run.id) if submission.run else None
    entry["duplicate"] = submission.duplicate
    return entry, submission


def run_payload(source: Source, message: IncomingMessage, document: IncomingDocument) -> dict[str, Any]:
    """The run's inputs: the source's defaults (site, category, status…), overridden by the message's
    directives; keys as in publish_document's `inputs`. A body made into a document takes its title
    from the subject."""
    payload: dict[str, Any] = {k: v for k, v in (source.defaults or {}).items() if v not in (None, "", [])}
    found = message.directives
    if found.categories:
        payload["category"] = found.categories[0]
        if len(found.categories) > 1:
            payload["categories"] = list(found.categories)
    if found.tags:
        payload["tags"] = list(found.tags)
    if found.status:
        payload["status"] = found.status
    if found.date:
        payload["date"] = found.date.isoformat()
    if found.slug:
        payload["slug"] = found.slug
    if found.excerpt:
        payload["excerpt"] = found.excerpt
    if document.origin == "body" and message.title:
        payload["title"] = message.title
    try:
        get_workflow(source.workflow).payload_model.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidDocument(f"the source's defaults or the message's directives are not valid: {problems}") from None
    return payload


def _mark_kept(config: MailboxConfig, uidvalidity: int, to_mark: dict[str, list[int]]) -> None:
    """Flag the messages that stay in the watched folder (unknown senders, ignored mail) with a keyword,
    so a person looking at the mailbox sees why. Cosmetic: a failure is logged, nothing else."""
    for keyword, uids in to_mark.items():
        try:
            mark(config, uids, [keyword], uidvalidity=uidvalidity)
        except CopydeskError as exc:
            log.warning("mailbox: could not flag %d message(s) %s: %s", len(uids), keyword, exc.message)


# --- settling: moving messages whose runs have ended -------------------------------------------------


def settle_source(source_id: uuid.UUID | str) -> dict[str, Any]:
    """Move the messages of a source whose runs have all ended, under the source's lock."""
    source_id = uuid.UUID(str(source_id))
    lock = SourceLock(source_id)
    if not lock.acquire():
        return {"source": str(source_id), "skipped": "the source is being worked on"}
    try:
        with session_scope() as session:
            source = session.get(Source, source_id)
            if source is None:
                return {"source": str(source_id), "skipped": "the source no longer exists"}
            name = source.name
            config = source_config(source)
        with log_context(source=name):
            try:
                moved = _settle(config, source_id)
            except Exception as exc:
                record_failure(source_id, exc)
                return {"source": name, "error": describe(exc), "error_code": error_code(exc)}
            if moved:
                log.info("mailbox %s: %d message(s) filed away", name, moved)
            return {"source": name, "settled": moved}
    finally:
        lock.release()


def _settle(config: MailboxConfig, source_id: uuid.UUID) -> int:
    """Move each message whose runs have ended to the processed or the failed folder, and record it.
    The rows stay locked until the moves are recorded; an IMAP error rolls the records back (the
    messages already moved are then simply not found the next time: moving is never done twice).
    Then move on to the processed folder the failed messages whose runs were resumed and succeeded."""
    return _file_ended(config, source_id) + _refile_resumed(config, source_id)


def _file_ended(config: MailboxConfig, source_id: uuid.UUID) -> int:
    with session_scope() as session:
        rows = session.execute(
            _settleable(source_id)
            .order_by(MailMessage.uidvalidity, MailMessage.uid)
            .limit(SETTLE_BATCH)
            .with_for_update(of=MailMessage, skip_locked=True)
        ).scalars().all()
        if not rows:
            return 0
        run_ids = {rid for row in rows for rid in row.run_ids}
        runs = {
            run.id: run for run in session.execute(select(Run).where(Run.id.in_(run_ids))).scalars()
        } if run_ids else {}
        plan: dict[tuple[str, int], list[tuple[MailMessage, str, str | None]]] = {}
        for row in rows:
            outcome, reason = message_outcome(row, runs)
            folder = config.processed_folder if outcome == "processed" else config.failed_folder
            plan.setdefault((folder, row.uidvalidity), []).append((row, outcome, reason))
        for (folder, uidvalidity), group in plan.items():
            _move_group(config, folder, uidvalidity, [row for row, _, _ in group])
            moment = now()
            for row, outcome, reason in group:
                row.state, row.folder, row.moved_at = outcome, folder, moment
                if reason:
                    row.reason = reason
        return len(rows)


def _refile_resumed(config: MailboxConfig, source_id: uuid.UUID) -> int:
    """Failed → processed, found in the failures folder by Message-ID (its UID there was never
    recorded). A message no longer there (a person moved it) is recorded as processed where it is."""
    with session_scope() as session:
        rows = session.execute(
            _refileable(source_id)
            .order_by(MailMessage.moved_at)
            .limit(SETTLE_BATCH)
            .with_for_update(of=MailMessage, skip_locked=True)
        ).scalars().all()
        if not rows:
            return 0
        # The same mailbox seen from the failures folder (the two folders swap roles, so that the
        # configuration's rule "watched ≠ processed ≠ failed" still holds).
        failures = replace(config, folder=config.failed_folder, failed_folder=config.folder)
        for row in rows:
            uidvalidity, uids = find_by_message_id(failures, row.message_id) if row.message_id else (0, [])
            if uids:
                move(failures, uids[:1], config.processed_folder, uidvalidity=uidvalidity)
                row.folder = config.processed_folder
            elif row.message_id and find_by_message_id(config, row.message_id, config.processed_folder)[1]:
                row.folder = config.processed_folder  # moved by an earlier try whose record was rolled back
            else:
                row.error = (
                    f"its runs succeeded after a resume, but it was no longer in {config.failed_folder} "
                    f"to be moved to {config.processed_folder}"
                )
            row.state, row.reason, row.moved_at = "processed", None, now()
        return len(rows)


def message_outcome(row: MailMessage, runs: dict[uuid.UUID, Run]) -> tuple[str, str | None]:
    """processed when every manuscript of the message was taken and every run it waits for succeeded;
    else failed, with the reasons an editor needs."""
    if not row.documents:
        return "failed", row.reason or "nothing could be taken from the message"
    problems = [f"{entry['filename']}: {entry['error']}" for entry in row.documents if entry.get("error")]
    names = {entry.get("run_id"): entry["filename"] for entry in row.documents if entry.get("run_id")}
    for run_id in row.run_ids:
        run = runs.get(run_id)
        name = names.get(str(run_id), "a document")
        if run is None:
            problems.append(f"{name}: its run was deleted")
        elif run.state != "succeeded":
            problems.append(f"{name}: run {run.id} {run.state}" + (f": {run.error}" if run.error else ""))
    if problems:
        return "failed", "; ".join(problems)
    return "processed", None


def _move_group(config: MailboxConfig, folder: str, uidvalidity: int, rows: list[MailMessage]) -> None:
    try:
        present = set(move(config, [row.uid for row in rows], folder, uidvalidity=uidvalidity))
    except MailboxChanged:
        pass
    else:
        for row in rows:
            if row.uid not in present:  # moved by a person, or by us just before a crash: not again
                row.error = f"the message had already left {config.folder} when it was to be moved to {folder}"
        return
    # The folder was rebuilt since these UIDs were read: find each message again by its Message-ID.
    for row in rows:
        current, uids = find_by_message_id(config, row.message_id or "")
        if not uids:
            row.error = f"the message was no longer in {config.folder} when it was to be moved to {folder}"
            continue
        move(config, uids[0], folder, uidvalidity=current)
        row.uidvalidity, row.uid = current, uids[0]


# --- errors and backoff ------------------------------------------------------------------------------


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
        moment = now()
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


# --- tasks -------------------------------------------------------------------------------------------


@celery_app.task(name=POLL_TASK)
def poll_task(source_id: str) -> dict[str, Any]:
    """Poll one mailbox (sent by the dispatcher, `POST /sources/{id}/poll`, or a poll that found more)."""
    return poll_source(source_id)


@celery_app.task(name=SETTLE_TASK)
def settle_task(source_id: str) -> dict[str, Any]:
    """Move one mailbox's messages whose runs have ended to the processed or failed folder."""
    return settle_source(source_id)


def poll_now(source_id: uuid.UUID | str) -> str:
    """Queue a poll of this source at once (API, CLI); its Celery task id."""
    return poll_task.apply_async(args=[str(source_id)], queue="io", expires=300).id


def due_in(source: Source, at: datetime | None = None) -> float | None:
    """Seconds until the source's next poll (negative: overdue); None when it has never been scheduled."""
    if source.next_poll_at is None:
        return None
    return (source.next_poll_at - (at or now())).total_seconds()
