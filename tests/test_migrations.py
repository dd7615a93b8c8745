"""The Alembic migrations: upgrade from an empty database, nothing left for autogenerate, downgrade."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def empty_database(stack_env):
    admin = stack_env["database"].admin_url
    name = f"copydesk_migrations_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_url(admin).set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def alembic(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "COPYDESK_ENV_FILE": ""}
    return subprocess.run([sys.executable, "-m", "alembic", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("select tablename from pg_tables where schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def test_upgrade_check_downgrade(empty_database):
    from app.models import Base

    assert tables(empty_database) == set()
    up = alembic(empty_database, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert set(Base.metadata.tables) <= tables(empty_database)
    check = alembic(empty_database, "check")
    assert check.returncode == 0, check.stdout + check.stderr  # autogenerate finds no difference
    assert "No new upgrade operations detected" in check.stdout + check.stderr
    down = alembic(empty_database, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert tables(empty_database) == {"alembic_version"} or tables(empty_database) == set()
    again = alembic(empty_database, "upgrade", "head")  # and back up again
    assert again.returncode == 0, again.stderr
