"""`copydesk mailbox …`: check, list, add and poll the mailboxes Copydesk reads.

    copydesk mailbox test default            # log in, look at the folders; exit 0 when all is well, 1 if not
    copydesk mailbox list
    copydesk mailbox add desk --host mail.example.org --user desk@example.org --allowed-sender @example.org
    copydesk mailbox poll desk               # poll once, here and now, and say what came in

They need the database (DATABASE_URL, or a running `copydesk dev`); the mailbox from IMAP_HOST,
IMAP_USER and IMAP_PASSWORD is the source named "default".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import typer
from sqlalchemy import select

app = typer.Typer(no_args_is_help=True, help="Check, list, add and poll the mailboxes Copydesk reads.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="mailbox", help="Mailboxes Copydesk polls for manuscripts (IMAP).")


@contextmanager
def _db() -> Iterator:
    """A database session; an unreachable database is one clear line and exit code 3."""
    from sqlalchemy.exc import OperationalError

    from app.cli import fail
    from app.core.db import session_scope

    try:
        with session_scope() as session:
            yield session
    except OperationalError as exc:
        reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["unknown error"])[0]
        fail(f"cannot reach the database (DATABASE_URL, or a running `copydesk dev`): {reason}", 3)


def _find(session, ref: str):
    """A source by name or id (the default one is synced from the environment first)."""
    from app.cli import fail
    from app.models import Source
    from app.tasks.mailbox import ensure_default_source

    ensure_default_source(session)
    session.flush()
    source = session.execute(select(Source).where(Source.name == ref)).scalar_one_or_none()
    if source is None:
        try:
            source = session.get(Source, uuid.UUID(ref))
        except ValueError:
            source = None
    if source is None:
        names = session.execute(select(Source.name).order_by(Source.name)).scalars().all()
        known = (
            f" (known: {', '.join(names)})"
            if names
            else " (none configured: set IMAP_HOST, IMAP_USER, IMAP_PASSWORD or use `copydesk mailbox add`)"
        )
        fail(f"no mailbox source {ref!r}{known}", 1)
    return source


def _ago(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    seconds = (datetime.now(timezone.utc) - moment).total_seconds()
    if seconds < 0:
        return f"in {-seconds:.0f}s"
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@app.command("test")
def test(
    source: str = typer.Argument(..., help="the source's name (e.g. default) or id"),
    create_folders: bool = typer.Option(False, "--create-folders", help="create the processed and failed folders"),
) -> None:
    """Log in to the mailbox and look at its folders. Exit 0 when everything is in place, 1 if not."""
    from app.cli import fail
    from app.core.errors import CopydeskError
    from app.integrations.mailbox import check_mailbox
    from app.tasks.mailbox import source_config

    with _db() as session:
        found = _find(session, source)
        name = found.name
        try:
            config = source_config(found)
        except CopydeskError as exc:
            fail(f"{name}: {exc.message}", 1)
    report = check_mailbox(config, create_missing=create_folders)
    typer.echo(f"{name}: " + "\n".join(report.lines()))
    if not report.ok:
        raise typer.Exit(1)


@app.command("list")
def list_sources() -> None:
    """The mailboxes, their last poll and their last error."""
    from app.models import Source
    from app.tasks.mailbox import ensure_default_source

    with _db() as session:
        ensure_default_source(session)
        session.flush()
        sources = session.execute(select(Source).order_by(Source.name)).scalars().all()
        if not sources:
            typer.echo("no mailbox configured (set IMAP_HOST, IMAP_USER, IMAP_PASSWORD, or `copydesk mailbox add`)")
            return
        for s in sources:
            state = "enabled" if s.enabled else "disabled"
            health = f"error ({s.consecutive_failures}x): {s.last_error}" if s.last_error else "ok"
            typer.echo(
                f"{s.name}\t{s.username}@{s.host}:{s.port} ({s.tls_mode})\t{s.folder} -> {s.processed_folder} | "
                f"{s.failed_folder}\t{state}, every {s.poll_interval}s\tlast poll {_ago(s.last_poll_at)}\t{health}"
            )


@app.command("add")
def add(
    name: str = typer.Argument(..., help="a name for the mailbox"),
    host: str = typer.Option(..., help="the IMAP server"),
    user: str = typer.Option(..., help="the login"),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, envvar="COPYDESK_IMAP_PASSWORD",
        help="prompted when not given (or COPYDESK_IMAP_PASSWORD); stored encrypted",
    ),
    port: int | None = typer.Option(None, help="default: 993 for imaps, 143 otherwise"),
    tls: str = typer.Option("imaps", help="imaps, starttls, or plain (needs --allow-plain)"),
    allow_plain: bool = typer.Option(False, "--allow-plain", help="allow an unencrypted connection (local tests)"),
    folder: str = typer.Option("INBOX", help="the folder to watch"),
    processed_folder: str = typer.Option("Processed"),
    failed_folder: str = typer.Option("Failed"),
    allowed_sender: list[str] | None = typer.Option(
        None, "--allowed-sender", help="an address or @domain (repeatable)"
    ),
    poll_interval: int = typer.Option(60, min=1, help="seconds between polls"),
    workflow: str = typer.Option("publish_document"),
    site: str | None = typer.Option(None, help="default site"),
    category: str | None = typer.Option(None, help="default category"),
    status: str | None = typer.Option(None, help="default status: draft, pending, publish"),
    ca_file: str | None = typer.Option(None, help="a PEM file of a CA to trust (self-signed servers)"),
    disabled: bool = typer.Option(False, "--disabled", help="add it without polling it yet"),
    update: bool = typer.Option(False, "--update", help="change the mailbox of that name if it exists"),
) -> None:
    """Add (or with --update change) a mailbox. Test it with `copydesk mailbox test NAME`."""
    from pathlib import Path

    from app.cli import fail
    from app.core.errors import ConfigurationError
    from app.core.security import encrypt_secret
    from app.integrations.mailbox import MailboxConfig
    from app.models import Source
    from app.workflows.schema import get_workflow

    try:
        config = MailboxConfig(
            host=host, user=user, password=password, port=port, tls=tls,  # type: ignore[arg-type]
            allow_plain=allow_plain, folder=folder, processed_folder=processed_folder, failed_folder=failed_folder,
            allowed_senders=tuple(allowed_sender or ()),
        )  # fmt: skip
    except ConfigurationError as exc:
        fail(exc.message, 2)
    defaults = {k: v for k, v in {"site": site, "category": category, "status": status}.items() if v}
    try:
        get_workflow(workflow).payload_model.model_validate(defaults)
    except Exception as exc:  # NotFound or a pydantic ValidationError
        fail(f"invalid workflow or defaults: {getattr(exc, 'message', None) or str(exc).splitlines()[0]}", 2)
    ca_cert = None
    if ca_file:
        try:
            ca_cert = Path(ca_file).read_text()
        except OSError as exc:
            fail(f"cannot read {ca_file}: {exc.strerror}", 2)
    with _db() as session:
        source = session.execute(select(Source).where(Source.name == name)).scalar_one_or_none()
        if source is not None and not update:
            fail(f"a mailbox named {name!r} already exists (use --update to change it)", 1)
        if source is None:
            source = Source(id=uuid.uuid4(), name=name, options={}, consecutive_failures=0)
            session.add(source)
        source.host, source.port, source.tls_mode, source.username = config.host, config.port, config.tls, config.user
        source.password_encrypted = encrypt_secret(password)
        source.folder, source.processed_folder, source.failed_folder = folder, processed_folder, failed_folder
        source.allowed_senders = list(config.allowed_senders)
        source.poll_interval, source.enabled, source.workflow, source.defaults = (
            poll_interval, not disabled, workflow, defaults,
        )  # fmt: skip
        options = {"allow_plain": allow_plain}
        if ca_cert:
            options["ca_cert"] = ca_cert
        source.options = options
        source.next_poll_at = None
    done = "updated" if update else "added"
    typer.echo(f"{done} mailbox {name}: {user} on {config.host}:{config.port} ({config.tls})")
    if not config.allowed_senders:
        typer.echo("warning: no allowed senders: mail from anyone becomes a document")


@app.command("poll")
def poll_once(source: str = typer.Argument(..., help="the source's name or id")) -> None:
    """Poll once, in this process (the runs start on the workers). Exit 1 when the poll failed."""
    from app.cli import fail
    from app.tasks.mailbox import poll_source

    with _db() as session:
        source_id = _find(session, source).id
    result = poll_source(source_id)
    if result.get("skipped"):
        fail(f"{result['source']}: {result['skipped']}", 1)
    if result.get("error"):
        fail(f"{result['source']}: {result['error']}", 1)
    typer.echo(
        f"{result['source']}: {result.get('recorded', 0)} new message(s), {result.get('runs', 0)} run(s) started, "
        f"{result.get('duplicates', 0)} duplicate(s), {result.get('ignored', 0)} ignored, "
        f"{result.get('unauthorized', 0)} from unknown senders, {result.get('failed', 0)} failed, "
        f"{result.get('settled', 0)} filed away" + (" (more to come)" if result.get("more") else "")
    )
