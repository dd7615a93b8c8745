"""`copydesk mailbox …`: check, list, add and poll the mailboxes Copydesk reads.

    copydesk mailbox test default            # log in, look at the folders; exit 0 when all is well, 1 if not
    copydesk mailbox list
    copydesk mailbox add desk --host mail.example.org --user desk@example.org --allowed-sender @example.org
    copydesk mailbox poll desk               # ask the API for a poll now, and say what came in

`test`, `list` and `add` need the database (DATABASE_URL, or a running `copydesk dev`); `poll` asks
the API (as an admin: see `copydesk login`), so the poll runs on a worker with the workers' settings
and storage. The mailbox from IMAP_HOST, IMAP_USER and IMAP_PASSWORD is the source named "default".
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
    from app.services.mailboxes import ensure_default_source, source_by_ref

    ensure_default_source(session)
    session.flush()
    source = session.execute(source_by_ref(ref)).scalar_one_or_none()
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
    from app.services.mailboxes import mailbox_config

    with _db() as session:
        found = _find(session, source)
        name = found.name
        try:
            config = mailbox_config(found)
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
    from app.services.mailboxes import ensure_default_source

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
    from app.models import Source
    from app.services.mailboxes import apply_values

    ca_cert = None
    if ca_file:
        try:
            ca_cert = Path(ca_file).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read {ca_file}: {getattr(exc, 'strerror', None) or exc}", 2)
    values = {
        "name": name, "host": host, "port": port, "tls_mode": tls, "allow_plain": allow_plain, "username": user,
        "folder": folder, "processed_folder": processed_folder, "failed_folder": failed_folder,
        "allowed_senders": allowed_sender or [], "poll_interval": poll_interval, "enabled": not disabled,
        "workflow": workflow, "defaults": {"site": site, "category": category, "status": status}, "ca_cert": ca_cert,
    }  # fmt: skip
    with _db() as session:
        source = session.execute(select(Source).where(Source.name == name)).scalar_one_or_none()
        if source is not None and not update:
            fail(f"a mailbox named {name!r} already exists (use --update to change it)", 1)
        if source is None:
            source = Source(id=uuid.uuid4(), options={}, consecutive_failures=0)
        try:
            apply_values(source, values, password=password)
        except ConfigurationError as exc:
            fail(exc.message, 2)
        session.add(source)
        summary = f"{source.username} on {source.host}:{source.port} ({source.tls_mode})"
        anyone = not source.allowed_senders
    typer.echo(f"{'updated' if update else 'added'} mailbox {name}: {summary}")
    if anyone:
        typer.echo("warning: no allowed senders: mail from anyone becomes a document")


@app.command("poll")
def poll_once(
    source: str = typer.Argument(..., help="the source's name or id"),
    timeout: float = typer.Option(120, "--timeout", min=1, max=120, help="seconds to wait for the poll to end"),
    api_url: str | None = typer.Option(
        None, "--api-url", help="the Copydesk API (default: COPYDESK_API_URL, the login's, PUBLIC_URL)"
    ),
) -> None:
    """Ask the API for a poll now (a worker polls, with the workers' settings) and say what came in.
    Exit 1 when the poll failed or another was under way, 3 when the API cannot be reached, 4 when
    not logged in as an admin, 5 when the poll had not ended after --timeout seconds."""
    from app.cli import fail
    from app.cli.runs import FAILED, UNFINISHED, Api, CliError

    try:
        api = Api(api_url)
        try:
            found = [s for s in api.call("GET", "/sources") if source in (s["name"], s["id"])]
            if not found:
                raise CliError(f"no mailbox source {source!r}", FAILED)
            answer = api.call("POST", f"/sources/{found[0]['id']}/poll", params={"wait": timeout})
        finally:
            api.close()
        result = answer.get("result")
        if result is None:
            raise CliError(f"the poll (task {answer['task_id']}) had not ended after {timeout:g} s", UNFINISHED)
        if result.get("skipped") or result.get("error"):
            raise CliError(f"{result['source']}: {result.get('skipped') or result['error']}", FAILED)
    except CliError as exc:
        fail(exc.message, exc.code)
    typer.echo(
        f"{result['source']}: {result.get('recorded', 0)} new message(s), {result.get('runs', 0)} run(s) started, "
        f"{result.get('duplicates', 0)} duplicate(s), {result.get('ignored', 0)} ignored, "
        f"{result.get('unauthorized', 0)} from unknown senders, {result.get('failed', 0)} failed, "
        f"{result.get('settled', 0)} filed away" + (" (more to come)" if result.get("more") else "")
    )
