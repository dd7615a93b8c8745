"""The `copydesk` command. Sub-commands live in modules beside this one; this file assembles them.

Exit codes: 0 success, 1 the operation failed (a run failed, a check failed), 2 bad usage or
configuration (also: the state folder is in use by another stack), 3 a service could not be reached.
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


def _help_shows_metavars() -> None:
    """Help names each option's value (`--api-url API_URL`) as click does, where typer prints its
    Python type (`<str>`), and shows nothing after a flag, which takes no value (typer: `<bool>`);
    an argument's name says what it is (typer adds `<str>`)."""
    from typer.core import TyperArgument, TyperOption

    def option_value(self, ctx):
        if self.is_flag or self.count:
            return None
        return self.metavar or (self.name or "value").upper()

    TyperOption.display_type_rich = option_value
    TyperArgument.display_type_rich = lambda self, ctx: None


def _register() -> None:
    # The sub-command modules import `fail` from this one: they are imported once it exists.
    from app.cli import convert, dev, mailbox, runs, users, workflows

    app.add_typer(users.app, name="users", help="Manage accounts.")
    app.add_typer(workflows.app, name="workflows", help="Validate and show workflow definitions.")
    app.command("dev", help="Start everything (embedded services when none are configured); "
                "one JSON line when ready.")(dev.dev)
    app.command("demo", help="Start everything and send a sample manuscript through.")(dev.demo)
    app.command("migrate", help="Upgrade the database schema to the latest version.")(dev.migrate)
    app.command("convert", help="Convert a Word file to HTML/blocks offline (no services).")(convert.convert_command)
    for module in (mailbox, runs):
        module.register(app)


_help_shows_metavars()
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
