"""Mailboxes Copydesk polls (admin only): create, change, test, poll now, and what became of each
message. The password is write-only: encrypted at rest (ENCRYPTION_KEY), never returned, never logged.
List answers carry their total in `X-Total-Count`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from celery.exceptions import TimeoutError as ResultNotReady
from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import func, select

from app.api.deps import AdminUser, Session
from app.core.broker import celery_app
from app.core.errors import ConfigurationError, CopydeskError, NotFound, describe, error_code
from app.integrations.mailbox import check_mailbox
from app.models import MailMessage, Source
from app.models.source import SourceDefaults
from app.services.mailboxes import (
    POLL_TASK,
    PROGRESS_STATES,
    apply_values,
    current_values,
    mailbox_config,
    managed_by_variables,
    progress_counts,
)

router = APIRouter(prefix="/sources", tags=["sources"])

TlsMode = Literal["imaps", "starttls", "plain"]
MESSAGE_STATES = ("new", "accepted", "processed", "failed", "ignored", "unauthorized")
TOTAL = "X-Total-Count"


# --- schemas -----------------------------------------------------------------------------------------


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")
    host: str = Field(min_length=1, max_length=500)
    port: int | None = Field(None, gt=0, lt=65536, description="default: 993 for imaps, 143 otherwise")
    tls_mode: TlsMode = "imaps"
    allow_plain: bool = Field(False, description="needed for tls_mode plain (the password goes unencrypted)")
    username: str = Field(min_length=1, max_length=500)
    password: SecretStr = Field(description="write-only: stored encrypted, never returned")
    folder: str = Field("INBOX", min_length=1, max_length=500)
    processed_folder: str = Field("Processed", min_length=1, max_length=500)
    failed_folder: str = Field("Failed", min_length=1, max_length=500)
    allowed_senders: list[str] = Field(
        default_factory=list, description='addresses and "@domain"s; empty: anyone (the test warns)'
    )
    poll_interval: int = Field(60, ge=1, le=86400, description="seconds between polls")
    enabled: bool = True
    workflow: str = "publish_document"
    defaults: SourceDefaults = Field(default_factory=SourceDefaults)
    ca_cert: str | None = Field(None, max_length=100_000, description="PEM of a CA to trust (self-signed servers)")


class SourceUpdate(BaseModel):
    """Only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")
    host: str | None = Field(None, min_length=1, max_length=500)
    port: int | None = Field(None, gt=0, lt=65536)
    tls_mode: TlsMode | None = None
    allow_plain: bool | None = None
    username: str | None = Field(None, min_length=1, max_length=500)
    password: SecretStr | None = None
    folder: str | None = Field(None, min_length=1, max_length=500)
    processed_folder: str | None = Field(None, min_length=1, max_length=500)
    failed_folder: str | None = Field(None, min_length=1, max_length=500)
    allowed_senders: list[str] | None = None
    poll_interval: int | None = Field(None, ge=1, le=86400)
    enabled: bool | None = None
    workflow: str | None = None
    defaults: SourceDefaults | None = None
    ca_cert: str | None = Field(None, max_length=100_000, description='"" removes it')


class MessageProgress(BaseModel):
    """How far the mailbox's messages have come: what a script waits on until `settled`."""

    waiting: int = Field(0, description="its runs have ended; moved to its folder at the next poll or settle")
    in_progress: int = Field(0, description="a run of it is queued or running")
    awaiting_approval: int = Field(0, description="a run of it waits for an editor's approval")
    filed: int = Field(0, description="moved to the processed folder")
    failed: int = Field(0, description="moved to the failed folder, with the reason")
    kept: int = Field(0, description="left in the watched folder, flagged: ignored, or from an unknown sender")
    settled: bool = Field(True, description="nothing waiting or in progress (runs awaiting approval aside)")


class SourceOut(BaseModel):
    id: uuid.UUID
    name: str
    host: str
    port: int
    tls_mode: str
    allow_plain: bool
    username: str
    password_set: bool  # the password itself is never returned
    folder: str
    processed_folder: str
    failed_folder: str
    allowed_senders: list[str]
    poll_interval: int
    enabled: bool
    workflow: str
    defaults: dict[str, Any]
    ca_cert_set: bool
    uidvalidity: int | None
    last_uid: int | None
    last_poll_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None
    last_error: str | None
    last_error_code: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    reply_error: str | None = None  # the last reply to a sender that failed for good (GET …/replies)
    reply_error_at: datetime | None = None
    messages: dict[str, int] = Field(default_factory=dict, description="messages recorded, by state")
    progress: MessageProgress = Field(default_factory=MessageProgress)
    created_at: datetime
    updated_at: datetime


class MailMessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    uidvalidity: int
    uid: int
    message_id: str | None
    sender: str | None
    subject: str | None
    title: str | None
    received_at: datetime | None
    size: int | None
    state: str
    reason: str | None
    folder: str | None
    moved_at: datetime | None
    directives: dict[str, Any]
    warnings: list[str]
    documents: list[dict[str, Any]]
    run_ids: list[uuid.UUID]
    error: str | None
    created_at: datetime
    updated_at: datetime


class FolderOut(BaseModel):
    name: str
    exists: bool
    messages: int
    unseen: int
    uidvalidity: int
    uidnext: int


class TestReport(BaseModel):
    ok: bool
    logged_in: bool
    error: str | None
    error_code: str | None
    capabilities: list[str]
    folders: list[FolderOut]
    created: list[str]
    warnings: list[str]
    elapsed_ms: float
    lines: list[str]


class PollQueued(BaseModel):
    source_id: uuid.UUID
    task_id: str
    result: dict[str, Any] | None = Field(
        None, description="the poll's summary, when it ended within `wait` seconds (new messages, runs started…)"
    )


# --- helpers -----------------------------------------------------------------------------------------


def _invalid(message: str) -> HTTPException:
    return HTTPException(422, detail=message)


def _apply(source: Source, values: dict[str, Any], password: SecretStr | None) -> set[str]:
    try:
        return apply_values(source, values, password=password.get_secret_value() if password is not None else None)
    except ConfigurationError as exc:
        raise _invalid(exc.message) from None


async def _source(session, source_id: uuid.UUID) -> Source:
    source = await session.get(Source, source_id)
    if source is None:
        raise NotFound(f"no source {source_id}")
    return source


async def _answers(session, sources: list[Source]) -> list[SourceOut]:
    """The sources as answered: with their messages counted by state and by progress."""
    ids = [source.id for source in sources]
    by_state: dict[uuid.UUID, dict[str, int]] = {}
    by_progress: dict[uuid.UUID, dict[str, int]] = {}
    if ids:
        states = await session.execute(
            select(MailMessage.source_id, MailMessage.state, func.count())
            .where(MailMessage.source_id.in_(ids))
            .group_by(MailMessage.source_id, MailMessage.state)
        )
        for source_id, state, count in states:
            by_state.setdefault(source_id, {})[state] = count
        for source_id, progress, count in await session.execute(progress_counts(ids)):
            by_progress.setdefault(source_id, {})[progress] = count
    return [source_out(s, by_state.get(s.id), by_progress.get(s.id)) for s in sources]


def source_out(
    source: Source, counts: dict[str, int] | None = None, progress: dict[str, int] | None = None
) -> SourceOut:
    options = source.typed_options
    stages = {stage: (progress or {}).get(stage, 0) for stage in PROGRESS_STATES}
    return SourceOut(
        id=source.id,
        name=source.name,
        host=source.host,
        port=source.port,
        tls_mode=source.tls_mode,
        allow_plain=options.allow_plain,
        username=source.username,
        password_set=bool(source.password_encrypted),
        folder=source.folder,
        processed_folder=source.processed_folder,
        failed_folder=source.failed_folder,
        allowed_senders=list(source.allowed_senders or []),
        poll_interval=source.poll_interval,
        enabled=source.enabled,
        workflow=source.workflow,
        defaults=dict(source.defaults or {}),
        ca_cert_set=options.ca_cert is not None,
        uidvalidity=source.uidvalidity,
        last_uid=source.last_uid,
        last_poll_at=source.last_poll_at,
        last_success_at=source.last_success_at,
        next_poll_at=source.next_poll_at,
        last_error=source.last_error,
        last_error_code=source.last_error_code,
        last_error_at=source.last_error_at,
        consecutive_failures=source.consecutive_failures,
        reply_error=source.reply_error,
        reply_error_at=source.reply_error_at,
        messages=counts or {},
        progress=MessageProgress(**stages, settled=not (stages["waiting"] or stages["in_progress"])),
        created_at=source.created_at,
        updated_at=source.updated_at,
    )


async def _name_taken(session, name: str, but: uuid.UUID | None = None) -> bool:
    query = select(Source.id).where(Source.name == name)
    if but is not None:
        query = query.where(Source.id != but)
    return (await session.execute(query)).first() is not None


# --- routes ------------------------------------------------------------------------------------------


@router.get("", response_model=list[SourceOut])
async def list_sources(session: Session, _: AdminUser, response: Response) -> list[SourceOut]:
    sources = list((await session.execute(select(Source).order_by(Source.name))).scalars())
    response.headers[TOTAL] = str(len(sources))
    return await _answers(session, sources)


@router.post("", response_model=SourceOut, status_code=status.HTTP_201_CREATED)
async def create_source(body: SourceCreate, session: Session, _: AdminUser) -> SourceOut:
    """Add a mailbox. It is polled from the next dispatch on (when enabled); test it first with
    POST /sources/{id}/test."""
    if await _name_taken(session, body.name):
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"a source named {body.name!r} already exists")
    values = body.model_dump(exclude={"password"})
    values["defaults"] = body.defaults.model_dump()
    source = Source(id=uuid.uuid4(), options={}, consecutive_failures=0)
    _apply(source, values, body.password)
    session.add(source)
    await session.commit()
    await session.refresh(source)
    return source_out(source)


@router.get("/{source_id}", response_model=SourceOut)
async def get_source(source_id: uuid.UUID, session: Session, _: AdminUser) -> SourceOut:
    [out] = await _answers(session, [await _source(session, source_id)])
    return out


@router.patch("/{source_id}", response_model=SourceOut)
async def update_source(source_id: uuid.UUID, body: SourceUpdate, session: Session, _: AdminUser) -> SourceOut:
    source = await _source(session, source_id)
    sent = body.model_dump(exclude_unset=True, exclude={"password"})
    if "defaults" in sent and body.defaults is not None:
        sent["defaults"] = body.defaults.model_dump()
    sent = {k: v for k, v in sent.items() if v is not None or k == "ca_cert"}
    managed = managed_by_variables(source)
    fixed = [f"{name} ({managed[name]})" for name in [*sent, *(["password"] if body.password else [])] if name in managed]
    if fixed:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"set by the environment for the default mailbox: {', '.join(fixed)}; change the variable instead",
        )
    if sent.get("name") and await _name_taken(session, sent["name"], but=source.id):
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"a source named {sent['name']!r} already exists")
    values = {**current_values(source), **sent}
    if "tls_mode" in sent and "port" not in sent:
        values["port"] = None  # the default port of the new mode
    _apply(source, values, body.password)  # a new way to reach it is tried at the next dispatch
    await session.commit()
    await session.refresh(source)
    [out] = await _answers(session, [source])
    return out


@router.delete("/{source_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_source(source_id: uuid.UUID, session: Session, _: AdminUser) -> Response:
    """Forget a mailbox and its message records (documents and runs stay). Its mail is not touched."""
    source = await _source(session, source_id)
    await session.delete(source)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{source_id}/messages", response_model=list[MailMessageOut])
async def list_messages(
    source_id: uuid.UUID,
    session: Session,
    _: AdminUser,
    response: Response,
    state: str | None = Query(None, description=", ".join(MESSAGE_STATES)),
    limit: int = 50,
    offset: int = 0,
) -> list[MailMessage]:
    """What became of each message seen in the mailbox, newest first; how many there are in all (with
    this `state`) in `X-Total-Count`."""
    await _source(session, source_id)
    query = select(MailMessage).where(MailMessage.source_id == source_id)
    if state:
        if state not in MESSAGE_STATES:
            raise _invalid(f"state: one of {', '.join(MESSAGE_STATES)}")
        query = query.where(MailMessage.state == state)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    response.headers[TOTAL] = str(total)
    query = query.order_by(MailMessage.created_at.desc(), MailMessage.uid.desc())
    query = query.limit(max(1, min(limit, 500))).offset(max(0, offset))
    return list((await session.execute(query)).scalars())


@router.post("/{source_id}/test", response_model=TestReport)
async def test_source(
    source_id: uuid.UUID,
    session: Session,
    _: AdminUser,
    create_folders: bool = Query(False, description="create the processed and failed folders when missing"),
) -> TestReport:
    """Log in and look at the folders: what `copydesk mailbox test` shows. Never changes the source."""
    source = await _source(session, source_id)
    try:
        config = mailbox_config(source)
    except CopydeskError as exc:
        lines = [f"{source.username} on {source.host}:{source.port} ({source.tls_mode})", f"  error: {exc.message}"]
        return TestReport(
            ok=False, logged_in=False, error=exc.message, error_code=error_code(exc), capabilities=[], folders=[],
            created=[], warnings=[], elapsed_ms=0, lines=lines,
        )  # fmt: skip
    report = await run_in_threadpool(check_mailbox, config, create_missing=create_folders)
    return TestReport(
        ok=report.ok,
        logged_in=report.logged_in,
        error=report.error.message if report.error else None,
        error_code=error_code(report.error) if report.error else None,
        capabilities=list(report.capabilities),
        folders=[FolderOut(**f.__dict__) for f in report.folders],
        created=report.created,
        warnings=report.warnings,
        elapsed_ms=round(report.elapsed * 1000, 1),
        lines=report.lines(),
    )


@router.post(
    "/{source_id}/poll",
    response_model=PollQueued,
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"description": "the poll ended within `wait` seconds: its summary is in `result`"}},
)
async def poll_source_now(
    source_id: uuid.UUID,
    session: Session,
    _: AdminUser,
    response: Response,
    wait: float = Query(0, ge=0, le=120, description="seconds to wait for the poll's summary (0: queue it and return)"),
) -> PollQueued:
    """Poll now, on a worker, whatever the schedule or backoff says (a poll already under way is not
    doubled: the summary then says `skipped`)."""
    await _source(session, source_id)
    task = await run_in_threadpool(
        celery_app.send_task, POLL_TASK, args=[str(source_id)], queue="io", expires=max(300.0, wait)
    )
    queued = PollQueued(source_id=source_id, task_id=task.id)
    if wait:
        try:
            result = await run_in_threadpool(task.get, timeout=wait, propagate=False)
        except ResultNotReady:
            return queued
        queued.result = result if isinstance(result, dict) else {"source": str(source_id), "error": describe(result)}
        response.status_code = status.HTTP_200_OK
    return queued
