"""Mailboxes as the API, the command line, beat and the workers all see them.

- `mailbox_config(source)`: a stored source as the mailbox package's `MailboxConfig`.
- `apply_values(source, values)`: the one way a source's settings change (the API, `copydesk mailbox
  add`, the default mailbox's variables), checked as the mailbox package and the workflow will use them.
- `ensure_default_source` / `sync_default_source`: the source named "default", kept in step with its
  variables (IMAP_*) before it is ever polled.
- `source_by_ref`: a source by name or id.
- What is asked of the message records: which messages wait to be filed (`TO_FILE`, `TO_REFILE`),
  which sources are due, how far each mailbox has come (`progress_counts`), and whether beat has
  anything to dispatch at all (`work_pending`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Select, case, cast, exists, func, select
from sqlalchemy.dialects.postgresql import JSONPATH
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.config import Settings, get_settings
from app.core.db import session_scope
from app.core.errors import ConfigurationError, CopydeskError, NotFound
from app.core.security import decrypt_secret, encrypt_secret
from app.integrations.mailbox import MailboxConfig
from app.models import RUN_TERMINAL, MailMessage, Run, Source
from app.models.base import utcnow
from app.models.source import SourceDefaults, SourceOptions
from app.workflows.schema import get_workflow

log = logging.getLogger("copydesk.mailbox")

DEFAULT_SOURCE = "default"
DISPATCH_TASK = "copydesk.mailbox.dispatch"
POLL_TASK = "copydesk.mailbox.poll"
SETTLE_TASK = "copydesk.mailbox.settle"

# A change to one of these makes the source due at once: the new settings are tried now.
RECONNECT = {"host", "port", "tls_mode", "username", "folder", "options", "password"}
# The settings of a source created with nothing said (as POST /sources has them).
NEW_SOURCE: dict[str, Any] = {
    "port": None,
    "tls_mode": "imaps",
    "allow_plain": False,
    "folder": "INBOX",
    "processed_folder": "Processed",
    "failed_folder": "Failed",
    "allowed_senders": [],
    "poll_interval": 60,
    "enabled": True,
    "workflow": "publish_document",
    "defaults": {},
    "ca_cert": None,
}
# The variable behind each setting of the default mailbox.
VARIABLES = {
    "host": "IMAP_HOST",
    "port": "IMAP_PORT",
    "tls_mode": "IMAP_TLS",
    "allow_plain": "IMAP_TLS",
    "username": "IMAP_USER",
    "password": "IMAP_PASSWORD",
    "folder": "IMAP_FOLDER",
    "processed_folder": "IMAP_PROCESSED_FOLDER",
    "failed_folder": "IMAP_FAILED_FOLDER",
    "allowed_senders": "IMAP_ALLOWED_SENDERS",
    "poll_interval": "IMAP_POLL_INTERVAL",
    "enabled": "IMAP_ENABLED",
    "workflow": "IMAP_WORKFLOW",
    "defaults": "IMAP_DEFAULTS",
    "ca_cert": "IMAP_CA_FILE",
}


# --- a source's settings -------------------------------------------------------------------------


def mailbox_config(source: Source) -> MailboxConfig:
    """The MailboxConfig of a stored source (decrypts the password; ConfigurationError if it cannot)."""
    options = source.typed_options
    return MailboxConfig(
        host=source.host,
        user=source.username,
        password=decrypt_secret(source.password_encrypted),
        port=source.port,
        tls=source.tls_mode,  # type: ignore[arg-type]
        allow_plain=options.allow_plain,
        folder=source.folder,
        processed_folder=source.processed_folder,
        failed_folder=source.failed_folder,
        allowed_senders=tuple(source.allowed_senders or ()),
        ca_cert=options.ca_cert,
        timeout=options.timeout,
        max_messages_per_poll=options.max_messages_per_poll,
        max_bytes_per_poll=options.max_bytes_per_poll,
    )


def current_values(source: Source) -> dict[str, Any]:
    """A stored source's settings, named as `apply_values` and the API name them."""
    options = source.typed_options
    return {
        "name": source.name,
        "host": source.host,
        "port": source.port,
        "tls_mode": source.tls_mode,
        "allow_plain": options.allow_plain,
        "username": source.username,
        "folder": source.folder,
        "processed_folder": source.processed_folder,
        "failed_folder": source.failed_folder,
        "allowed_senders": list(source.allowed_senders or []),
        "poll_interval": source.poll_interval,
        "enabled": source.enabled,
        "workflow": source.workflow,
        "defaults": dict(source.defaults or {}),
        "ca_cert": options.ca_cert,
    }


def apply_values(source: Source, values: dict[str, Any], *, password: str | None = None) -> set[str]:
    """Set a source's settings from `values` (every key of `current_values`, `name` optional), checked
    as the mailbox package and the workflow will use them: the port filled in from the TLS mode,
    senders normalised, the folders distinct, the workflow and its defaults valid, the options typed.
    Returns the names of the fields that changed (`options` for allow_plain and ca_cert, `password`);
    a new way to reach the server, or the source enabled again, makes it due at once.
    ConfigurationError says what is wrong, and then nothing has changed."""
    config = MailboxConfig(
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
    defaults = {name: value for name, value in (values.get("defaults") or {}).items() if value is not None}
    check_workflow(values["workflow"], defaults)
    try:
        options = SourceOptions.model_validate(
            {**(source.options or {}), "allow_plain": bool(values.get("allow_plain")), "ca_cert": values.get("ca_cert")}
        )
    except ValidationError as exc:
        raise ConfigurationError(problems(exc)) from None
    if password is not None and not password:
        raise ConfigurationError("password: must not be empty")
    wanted: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "tls_mode": config.tls,
        "username": config.user,
        "folder": config.folder,
        "processed_folder": config.processed_folder,
        "failed_folder": config.failed_folder,
        "allowed_senders": list(config.allowed_senders),
        "poll_interval": values["poll_interval"],
        "enabled": values["enabled"],
        "workflow": values["workflow"],
        "defaults": defaults,
        "options": options.model_dump(exclude_unset=True, exclude_none=True),
    }
    if "name" in values:
        wanted["name"] = values["name"]
    changed = {name for name, value in wanted.items() if getattr(source, name) != value}
    for name in changed:
        setattr(source, name, wanted[name])
    if password is not None and not _same_password(source, password):
        source.password_encrypted = encrypt_secret(password)
        changed.add("password")
    if changed & RECONNECT or ("enabled" in changed and source.enabled):
        source.next_poll_at = None
    return changed


def check_workflow(name: str, defaults: dict[str, Any]) -> None:
    """ConfigurationError unless the workflow exists and takes these defaults as inputs."""
    try:
        workflow = get_workflow(name)
    except NotFound as exc:
        raise ConfigurationError(exc.message) from None
    try:
        workflow.payload_model.model_validate(defaults)
    except ValidationError as exc:
        raise ConfigurationError(problems(exc, prefix="defaults.")) from None


def problems(exc: ValidationError, prefix: str = "") -> str:
    """pydantic's errors as one line: `field: what is wrong; …`."""
    return "; ".join(
        f"{prefix}{'.'.join(map(str, error['loc']))}: {error['msg'].removeprefix('Value error, ')}"
        for error in exc.errors()
    )


def _same_password(source: Source, password: str) -> bool:
    if not source.password_encrypted:
        return False
    try:
        return decrypt_secret(source.password_encrypted) == password
    except CopydeskError:  # ENCRYPTION_KEY changed: the new password is the truth
        return False


def source_by_ref(ref: str) -> Select:
    """The source named `ref`, else the one whose id it is."""
    match = Source.name == ref
    with suppress(ValueError):
        match = match | (Source.id == uuid.UUID(ref))
    return select(Source).where(match).order_by((Source.name == ref).desc()).limit(1)


def source_id_by_ref(ref: str) -> Any:
    """`source_by_ref`'s id, as a scalar subquery (NULL when there is no such source)."""
    return source_by_ref(ref).with_only_columns(Source.id).scalar_subquery()


# --- the default mailbox, from its variables -------------------------------------------------------


def environment_values(settings: Settings) -> dict[str, Any] | None:
    """The default mailbox as its variables describe it, named as `current_values`: how to reach it
    always (IMAP_HOST, IMAP_PORT, IMAP_TLS, IMAP_USER, IMAP_FOLDER), every other setting only when
    its variable is set. None when IMAP_HOST, IMAP_USER and IMAP_PASSWORD are not set."""
    if not (settings.imap_host and settings.imap_user and settings.imap_password):
        return None
    values: dict[str, Any] = {
        "host": settings.imap_host,
        "port": settings.imap_port,
        "tls_mode": settings.imap_tls,
        "allow_plain": settings.imap_tls == "plain",
        "username": settings.imap_user,
        "folder": settings.imap_folder,
    }
    senders = settings.imap_allowed_senders
    optional = {
        "processed_folder": settings.imap_processed_folder,
        "failed_folder": settings.imap_failed_folder,
        "allowed_senders": None if senders is None else [s.strip() for s in senders.split(",") if s.strip()],
        "poll_interval": settings.imap_poll_interval,
        "enabled": settings.imap_enabled,
        "workflow": settings.imap_workflow,
        "defaults": _checked_defaults(settings.imap_defaults),
        "ca_cert": _read_ca_file(settings.imap_ca_file),
    }
    values.update({name: value for name, value in optional.items() if value is not None})
    return values


def _checked_defaults(defaults: dict[str, Any] | None) -> dict[str, Any] | None:
    if defaults is None:
        return None
    try:
        return SourceDefaults.model_validate(defaults).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise ConfigurationError(f"IMAP_DEFAULTS: {problems(exc)}") from None


def _read_ca_file(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"IMAP_CA_FILE: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


def managed_by_variables(source: Source) -> dict[str, str]:
    """The settings of the default mailbox its variables set (setting -> variable), which the API
    leaves alone; none for any other source."""
    if source.name != DEFAULT_SOURCE:
        return {}
    wanted = environment_values(get_settings())
    return {name: VARIABLES[name] for name in [*wanted, "password"]} if wanted else {}


def ensure_default_source(session: Session) -> Source | None:
    """Create or update the source named "default" from its variables (idempotent), so its first
    poll already uses them. A setting no variable sets keeps what an admin gave it through the API.
    None when no default mailbox is configured; ConfigurationError naming IMAP_* for a bad value."""
    settings = get_settings()
    wanted = environment_values(settings)
    if wanted is None:
        return None
    source = session.execute(select(Source).where(Source.name == DEFAULT_SOURCE)).scalar_one_or_none()
    created = source is None
    if source is None:
        source = Source(name=DEFAULT_SOURCE, options={}, consecutive_failures=0)
    values = {**(NEW_SOURCE if created else current_values(source)), **wanted}
    try:
        changed = apply_values(source, values, password=settings.imap_password.get_secret_value())
    except ConfigurationError as exc:
        raise ConfigurationError(f"the default mailbox (IMAP_*): {exc.message}") from None
    if created:
        try:
            with session.begin_nested():
                session.add(source)
        except IntegrityError:  # another process created it at the same moment, from the same variables
            return session.execute(select(Source).where(Source.name == DEFAULT_SOURCE)).scalar_one()
        log.info("mailbox: created the default source (%s on %s)", source.username, source.host)
    elif changed:
        log.info("mailbox: updated the default source from the environment (%s)", ", ".join(sorted(changed)))
    return source


_synced: str | None = None


def sync_default_source() -> None:
    """`ensure_default_source` once per process and per configuration (beat and the dispatcher call
    it before deciding what is due). A bad variable is logged, and the other mailboxes are
    dispatched all the same."""
    global _synced
    settings = get_settings()
    if not (settings.imap_host and settings.imap_user and settings.imap_password):
        return
    variables = {name: value for name, value in settings if name.startswith("imap_")}
    with suppress(OSError):
        variables["ca"] = settings.imap_ca_file.read_bytes().hex() if settings.imap_ca_file else None
    known = [variables, settings.imap_password.get_secret_value(), settings.fernet_key(), settings.database_url]
    fingerprint = hashlib.sha256(json.dumps(known, sort_keys=True, default=str).encode()).hexdigest()
    if fingerprint == _synced:
        return
    try:
        with session_scope() as session:
            ensure_default_source(session)
    except ConfigurationError as exc:
        log.error("mailbox: %s", exc.message)
    _synced = fingerprint


# --- what the message records say ------------------------------------------------------------------


def _message_has_run(condition) -> Any:
    return exists(select(Run.id).where(Run.id == MailMessage.run_ids.any_(), condition))


_RUNNING = _message_has_run(Run.state.in_(("queued", "running")))
_AWAITING_APPROVAL = _message_has_run(Run.state == "awaiting_approval")
_REFUSED_ATTACHMENT = func.jsonb_path_exists(MailMessage.documents, cast("$[*].error ? (@ != null)", JSONPATH))

# Accepted messages whose runs have all ended (or that have none): to be moved to their folder.
TO_FILE = (MailMessage.state == "accepted") & ~_message_has_run(Run.state.not_in(RUN_TERMINAL))
# Failed messages whose runs were resumed and have all succeeded since, every attachment taken:
# they belong with the processed mail now.
TO_REFILE = (
    (MailMessage.state == "failed")
    & MailMessage.moved_at.is_not(None)
    & (func.cardinality(MailMessage.run_ids) > 0)
    & ~_message_has_run(Run.state != "succeeded")
    & ~_REFUSED_ATTACHMENT
)
# Where a message stands, for scripts and dashboards (GET /sources/{id}: `progress`).
PROGRESS = case(
    (MailMessage.state.in_(("accepted", "failed")) & _RUNNING, "in_progress"),
    (MailMessage.state.in_(("accepted", "failed")) & _AWAITING_APPROVAL, "awaiting_approval"),
    (TO_FILE | TO_REFILE, "waiting"),
    (MailMessage.state == "processed", "filed"),
    (MailMessage.state == "failed", "failed"),
    else_="kept",
)
PROGRESS_STATES = ("waiting", "in_progress", "awaiting_approval", "filed", "failed", "kept")


def is_due(moment: datetime) -> Any:
    """Sources to poll now: enabled, never scheduled or past their next poll."""
    return Source.enabled & (Source.next_poll_at.is_(None) | (Source.next_poll_at <= moment))


def settle_candidates() -> Select:
    """Ids of the enabled, healthy sources with messages to file (a failing one is settled by its
    next poll, once it works again)."""
    healthy = select(Source.id).where(Source.enabled, Source.consecutive_failures == 0)
    return select(MailMessage.source_id).where(TO_FILE | TO_REFILE, MailMessage.source_id.in_(healthy)).distinct()


def progress_counts(source_ids: list[uuid.UUID]) -> Select:
    """(source id, progress, count) rows for these sources."""
    each = select(MailMessage.source_id, PROGRESS.label("progress")).where(MailMessage.source_id.in_(source_ids))
    each = each.subquery()
    return select(each.c.source_id, each.c.progress, func.count()).group_by(each.c.source_id, each.c.progress)


def work_pending() -> bool:
    """Whether beat has anything to dispatch: a mailbox due for a poll, or messages to file. The
    default mailbox is synced from its variables first, so a new one counts as due."""
    sync_default_source()
    with session_scope() as session:
        due = exists(select(Source.id).where(is_due(utcnow())))
        return bool(session.execute(select(due | exists(settle_candidates()))).scalar())
