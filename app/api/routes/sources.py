"""Mailboxes Copydesk polls (admin only): create, change, test, poll now, and what became of each
message. The password is write-only: encrypted at rest (ENCRYPTION_KEY), never returned, never logged."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from sqlalchemy import func, select

from app.api.deps import AdminUser, Session
from app.core.errors import ConfigurationError, CopydeskError, NotFound, error_code
from app.core.security import encrypt_secret
from app.integrations.mailbox import MailboxConfig, check_mailbox
from app.models import MailMessage, Source
from app.workflows.schema import get_workflow

router = APIRouter(prefix="/sources", tags=["sources"])

TlsMode = Literal["imaps", "starttls", "plain"]
MESSAGE_STATES = ("new", "accepted", "processed", "failed", "ignored", "unauthorized")


# --- schemas -----------------------------------------------------------------------------------------


class SourceDefaults(BaseModel):
    """What runs started from this mailbox get unless a message's directives say otherwise."""

    model_config = ConfigDict(extra="forbid")

    site: str | None = Field(None, max_length=200, description="WordPress site name (default: the default site)")
    category: str | None = Field(None, max_length=200)
    status: Literal["draft", "pending", "publish", "future"] | None = None
    llm: dict[str, Any] | None = Field(None, description="editing options: instructions, model, temperature…")


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


# --- helpers -----------------------------------------------------------------------------------------


def _invalid(message: str) -> HTTPException:
    return HTTPException(422, detail=message)


def _checked_config(values: dict[str, Any]) -> MailboxConfig:
    """The settings as the mailbox package will use them (port filled in, senders normalised), or 422."""
    try:
        return MailboxConfig(
            host=values["host"],
            user=values["username"],
            password="unused-for-validation",
            port=values.get("port"),
            tls=values["tls_mode"],
            allow_plain=bool(values.get("allow_plain")),
            folder=values["folder"],
            processed_folder=values["processed_folder"],
            failed_folder=values["failed_folder"],
            allowed_senders=tuple(values.get("allowed_senders") or ()),
        )
    except ConfigurationError as exc:
        raise _invalid(exc.message) from None


def _check_workflow(name: str, defaults: dict[str, Any]) -> None:
    try:
        wf = get_workflow(name)
    except NotFound as exc:
        raise _invalid(exc.message) from None
    try:
        wf.payload_model.model_validate(defaults)
    except ValidationError as exc:
        problems = "; ".join(f"defaults.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise _invalid(problems) from None


def _current_values(source: Source) -> dict[str, Any]:
    return {
        "name": source.name,
        "host": source.host,
        "port": source.port,
        "tls_mode": source.tls_mode,
        "allow_plain": bool((source.options or {}).get("allow_plain")),
        "username": source.username,
        "folder": source.folder,
        "processed_folder": source.processed_folder,
        "failed_folder": source.failed_folder,
        "allowed_senders": list(source.allowed_senders or []),
        "poll_interval": source.poll_interval,
        "enabled": source.enabled,
        "workflow": source.workflow,
        "defaults": dict(source.defaults or {}),
        "ca_cert": (source.options or {}).get("ca_cert"),
    }


CONNECTION_FIELDS = ("host", "port", "tls_mode", "allow_plain", "username", "folder", "ca_cert", "password")


def _apply(source: Source, values: dict[str, Any], password: SecretStr | None) -> None:
    config = _checked_config(values)
    _check_workflow(values["workflow"], values["defaults"])
    source.name = values["name"]
    source.host = config.host
    source.port = config.port  # type: ignore[assignment]
    source.tls_mode = config.tls
    source.username = config.user
    source.folder, source.processed_folder, source.failed_folder = (
        config.folder, config.processed_folder, config.failed_folder,
    )  # fmt: skip
    source.allowed_senders = list(config.allowed_senders)
    source.poll_interval = values["poll_interval"]
    source.enabled = values["enabled"]
    source.workflow = values["workflow"]
    source.defaults = {k: v for k, v in values["defaults"].items() if v is not None}
    options = dict(source.options or {})
    options["allow_plain"] = bool(values.get("allow_plain"))
    if values.get("ca_cert"):
        if "BEGIN CERTIFICATE" not in values["ca_cert"]:
            raise _invalid("ca_cert must be a PEM certificate (-----BEGIN CERTIFICATE-----)")
        options["ca_cert"] = values["ca_cert"]
    else:
        options.pop("ca_cert", None)
    source.options = options
    if password is not None:
        secret = password.get_secret_value()
        if not secret:
            raise _invalid("password: must not be empty")
        source.password_encrypted = encrypt_secret(secret)


async def _source(session, source_id: uuid.UUID) -> Source:
    source = await session.get(Source, source_id)
    if source is None:
        raise NotFound(f"no source {source_id}")
    return source


async def _counts(session, source_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    if not source_ids:
        return {}
    rows = await session.execute(
        select(MailMessage.source_id, MailMessage.state, func.count())
        .where(MailMessage.source_id.in_(source_ids))
        .group_by(MailMessage.source_id, MailMessage.state)
    )
    out: dict[uuid.UUID, dict[str, int]] = {}
    for source_id, state, count in rows:
        out.setdefault(source_id, {})[state] = count
    return out


def source_out(source: Source, counts: dict[str, int] | None = None) -> SourceOut:
    options = source.options or {}
    return SourceOut(
        id=source.id,
        name=source.name,
        host=source.host,
        port=source.port,
        tls_mode=source.tls_mode,
        allow_plain=bool(options.get("allow_plain")),
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
        ca_cert_set=bool(options.get("ca_cert")),
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
async def list_sources(session: Session, _: AdminUser) -> list[SourceOut]:
    sources = list((await session.execute(select(Source).order_by(Source.name))).scalars())
    counts = await _counts(session, [s.id for s in sources])
    return [source_out(s, counts.get(s.id)) for s in sources]


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
    source = await _source(session, source_id)
    counts = await _counts(session, [source.id])
    return source_out(source, counts.get(source.id))


@router.patch("/{source_id}", response_model=SourceOut)
async def update_source(source_id: uuid.UUID, body: SourceUpdate, session: Session, _: AdminUser) -> SourceOut:
    source = await _source(session, source_id)
    sent = body.model_dump(exclude_unset=True, exclude={"password"})
    if "defaults" in sent and body.defaults is not None:
        sent["defaults"] = body.defaults.model_dump()
    sent = {k: v for k, v in sent.items() if v is not None or k == "ca_cert"}
    if sent.get("name") and await _name_taken(session, sent["name"], but=source.id):
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"a source named {sent['name']!r} already exists")
    values = {**_current_values(source), **sent}
    if "tls_mode" in sent and "port" not in sent:
        values["port"] = None  # the default port of the new mode
    _apply(source, values, body.password)
    if any(name in sent for name in CONNECTION_FIELDS) or body.password is not None or sent.get("enabled"):
        source.next_poll_at = None  # try the new settings at the next dispatch
    await session.commit()
    await session.refresh(source)
    counts = await _counts(session, [source.id])
    return source_out(source, counts.get(source.id))


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
    state: str | None = Query(None, description=", ".join(MESSAGE_STATES)),
    limit: int = 50,
    offset: int = 0,
) -> list[MailMessage]:
    """What became of each message seen in the mailbox, newest first."""
    await _source(session, source_id)
    query = select(MailMessage).where(MailMessage.source_id == source_id)
    if state:
        if state not in MESSAGE_STATES:
            raise _invalid(f"state: one of {', '.join(MESSAGE_STATES)}")
        query = query.where(MailMessage.state == state)
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
    from app.tasks.mailbox import source_config

    source = await _source(session, source_id)
    try:
        config = source_config(source)
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


@router.post("/{source_id}/poll", response_model=PollQueued, status_code=status.HTTP_202_ACCEPTED)
async def poll_source_now(source_id: uuid.UUID, session: Session, _: AdminUser) -> PollQueued:
    """Poll now, whatever the schedule or backoff says (a poll already under way is not doubled)."""
    from app.tasks.mailbox import poll_now

    await _source(session, source_id)
    task_id = await run_in_threadpool(poll_now, source_id)
    return PollQueued(source_id=source_id, task_id=task_id)
