"""Database engines and sessions.

The API uses an async engine on asyncpg; Celery workers, Alembic and the CLI use a sync engine on
psycopg 3 over the same models. DATABASE_URL may be given with any PostgreSQL scheme; the driver part is
chosen here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import get_settings
from app.core.connections import libpq_options, set_tcp_options
from app.core.errors import ConfigurationError


def _with_driver(url: str, driver: str) -> str:
    return make_url(url).set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


def database_url() -> str:
    url = get_settings().database_url
    if not url:
        raise ConfigurationError(
            "DATABASE_URL is not set: start the stack with `copydesk dev` (embedded PostgreSQL) "
            "or set DATABASE_URL=postgresql://user:password@host:5432/copydesk"
        )
    return url


def sync_url(url: str | None = None) -> str:
    return _with_driver(url or database_url(), "psycopg")


def async_url(url: str | None = None) -> str:
    return _with_driver(url or database_url(), "asyncpg")


# Engines and session factories by URL, kept for the life of the process: an engine is never
# dropped to the garbage collector, which could finalize asyncpg connections from a thread other than
# their event loop's (a crash seen when tests re-pointed a process at another broker).
_sync: dict[str, tuple[Engine, sessionmaker[Session]]] = {}
_async: dict[str, tuple[AsyncEngine, async_sessionmaker[AsyncSession]]] = {}


def _sync_pair() -> tuple[Engine, sessionmaker[Session]]:
    url = sync_url()
    pair = _sync.get(url)
    if pair is None:
        # libpq's connect timeout, keepalive and TCP_USER_TIMEOUT: a cut-off database fails a query
        # in seconds (app/core/connections.py), and the pre-ping replaces the dead connection.
        engine = create_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args=libpq_options()
        )
        event.listen(engine, "connect", _relax_commits)
        pair = _sync.setdefault(url, (engine, sessionmaker(engine, expire_on_commit=False)))
    return pair


def _relax_commits(dbapi_connection, record) -> None:
    """Worker connections commit without waiting for the disk by default (most of their transactions
    are the engine's bookkeeping: see session_scope); the server's own setting is kept to put back
    for the transactions that need it. Set once per connection instead of once per transaction: a
    round trip less for every step and item transition."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        record.info["synchronous_commit"] = cursor.fetchone()[0]
        cursor.execute("SET synchronous_commit TO off")
    dbapi_connection.commit()


@contextmanager
def session_scope(*, relaxed_commit: bool = False) -> Iterator[Session]:
    """A sync session committed on success, rolled back on error (workers, CLI).

    `relaxed_commit`: do not wait for the commit to reach the disk (PostgreSQL's
    synchronous_commit=off, the connections' default; other sessions put the server's setting back
    for their transaction). For the engine's own bookkeeping — claims,
    heartbeats, step states — where a crash may lose the last few milliseconds of transitions and the
    idempotent steps simply run again; never for what a step did in the outside world."""
    session = _sync_pair()[1]()
    try:
        if not relaxed_commit:  # this transaction waits for the disk, as the server is configured to
            durable = session.connection().info["synchronous_commit"]
            session.execute(text("SELECT set_config('synchronous_commit', :value, true)"), {"value": durable})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _async_pair() -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    url = async_url()
    pair = _async.get(url)
    if pair is None:
        engine = create_async_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=20,
            connect_args={"async_creator_fn": _connect_asyncpg},
        )
        pair = _async.setdefault(url, (engine, async_sessionmaker(engine, expire_on_commit=False)))
    return pair


async def _connect_asyncpg(*args, **kwargs):
    """asyncpg's connect with CONNECT_TIMEOUT, and the keepalive it has no parameters for set on its
    socket (app/core/connections.py). A database that cannot be reached is an asyncpg InterfaceError,
    which SQLAlchemy reports as its own (the API answers 503), not a bare TimeoutError or OSError."""
    import asyncpg

    try:
        connection = await asyncpg.connect(*args, timeout=get_settings().connect_timeout, **kwargs)
    except OSError as exc:  # TimeoutError and refused connections among them
        raise asyncpg.exceptions.InterfaceError(f"cannot connect to PostgreSQL: {exc!r}") from exc
    set_tcp_options(connection._transport.get_extra_info("socket"))
    return connection


def async_engine() -> AsyncEngine:
    return _async_pair()[0]


def async_sessions() -> async_sessionmaker[AsyncSession]:
    return _async_pair()[1]


def reset_engines() -> None:
    """After a fork: the child must not use the parent's connections (they are let go, not closed:
    they belong to the parent). The next session opens connections of its own."""
    for engine, _ in _sync.values():
        engine.dispose(close=False)
