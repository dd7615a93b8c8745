from __future__ import annotations

import typer
from sqlalchemy import select

from app.cli import fail

# The database layer is imported by the commands that use it: at the top it would add about a second
# to every `copydesk` command.

app = typer.Typer(no_args_is_help=True)


@app.command("create")
def create(
    email: str = typer.Argument(..., help="the login e-mail"),
    role: str = typer.Option("editor", help="admin or editor"),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, envvar="COPYDESK_PASSWORD",
        help="at least 8 characters (prompted when not given; or COPYDESK_PASSWORD)",
    ),
    update: bool = typer.Option(False, "--update", help="change the password/role of an existing user"),
) -> None:
    """Create an account (needs the database: DATABASE_URL, or a running `copydesk dev`)."""
    from app.core.db import session_scope
    from app.core.security import hash_password
    from app.models import User

    if role not in ("admin", "editor"):
        fail("--role must be admin or editor", 2)
    if len(password) < 8:
        fail("the password must have at least 8 characters", 2)
    email = email.strip().lower()
    with session_scope() as session:
        user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
        if user is not None and not update:
            fail(f"a user {email} already exists (use --update to change it)", 1)
        if user is None:
            user = User(email=email, role=role, hashed_password=hash_password(password))
            session.add(user)
        else:
            user.role, user.hashed_password, user.is_active = role, hash_password(password), True
    typer.echo(f"{'updated' if update else 'created'} {role} {email}")


@app.command("list")
def list_users() -> None:
    from app.core.db import session_scope
    from app.models import User

    with session_scope() as session:
        for user in session.execute(select(User).order_by(User.created_at)).scalars():
            typer.echo(f"{user.email}\t{user.role}\t{'active' if user.is_active else 'disabled'}")
