"""The `copydesk` command. Sub-commands live in modules beside this one; this file assembles them.

Exit codes: 0 success, 1 the operation failed (a run failed, a check failed), 2 bad usage or
configuration, 3 a service could not be reached.
"""

from __future__ import annotations

import sys

import typer

from app.core.errors import ConfigurationError, CopydeskError

app = typer.Typer(
    name="copydesk",
    help="Word manuscripts in, WordPress posts out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 1) -> None:
    """One clear line on stderr, then exit with `code`."""
    typer.echo(f"copydesk: {message}", err=True)
    raise typer.Exit(code)


def _register() -> None:
    # The sub-command modules import `fail` from this one: they are imported once it exists.
    from app.cli import convert, dev, mailbox, runs, users, workflows

    app.add_typer(users.app, name="users", help="Manage accounts.")
    app.add_typer(workflows.app, name="workflows", help="Validate and show workflow definitions.")
    app.command("dev", help="Start everything (embedded services when none are configured).")(dev.dev)
    app.command("demo", help="Start everything and send a sample manuscript through.")(dev.demo)
    app.command("migrate", help="Upgrade the database schema to the latest version.")(dev.migrate)
    app.command("convert", help="Convert a Word file to HTML/blocks offline (no services).")(convert.convert_command)
    for module in (mailbox, runs):
        module.register(app)


_register()


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:
        typer.echo(f"copydesk: {exc.message}", err=True)
        sys.exit(2)
    except CopydeskError as exc:
        typer.echo(f"copydesk: {exc.message}", err=True)
        sys.exit(1)
