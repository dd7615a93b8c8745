"""The embedded PostgreSQL and Redis (`copydesk dev` with nothing configured): never as root, and
nothing changed outside the state folder."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from app.core.embedded import EmbeddedError, EmbeddedPostgres, EmbeddedRedis, _postgres_bin
from tests.fixtures.stack import embedded_state_dir
from tests.support import require

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def modes(path: Path) -> dict[Path, int]:
    """The mode of `path` and of every folder above it."""
    return {p: p.stat().st_mode for p in [path, *path.parents]}


@pytest.fixture
def state():
    path = embedded_state_dir("copydesk-embedded-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_servers_run_unprivileged_in_a_private_folder_of_the_state_folder(state):
    users = {u.pw_name for u in pwd.getpwall()}
    outside = {**modes(_postgres_bin().parent), **modes(Path(EmbeddedRedis.binary()).parent), **modes(state)}
    pg, cache = EmbeddedPostgres(state), EmbeddedRedis(state)
    try:
        with psycopg.connect(pg.start()) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("copydesk",)
        assert redis.Redis.from_url(cache.start()).ping()
        # Loopback only, and a password even there.
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=cache.port).get("x")
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"postgresql://postgres@127.0.0.1:{pg.port}/copydesk", connect_timeout=5)

        account = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        for server in (pg, cache):
            assert psutil.Process(server.pid).username() == account
        for folder in (state / "postgres", state / "redis"):
            info = folder.stat()
            assert stat.S_IMODE(info.st_mode) == 0o700 and pwd.getpwuid(info.st_uid).pw_name == account
    finally:
        cache.stop()
        pg.stop()
    assert not (pg.data_dir / "postmaster.pid").exists()
    assert {u.pw_name for u in pwd.getpwall()} == users  # no account created
    assert {p: p.stat().st_mode for p in outside} == outside  # no permission changed outside the state folder


def test_as_root_a_state_folder_nobody_can_enter_is_refused_with_what_to_do(state):
    require(os.geteuid() == 0, "root", "this case is about running as root")
    closed = state / "closed"
    closed.mkdir(mode=0o700)
    before = modes(closed)
    with pytest.raises(EmbeddedError) as refused:
        EmbeddedPostgres(closed / "state").start()
    message = str(refused.value)
    assert f"cannot enter {closed} (mode drwx------)" in message and "`nobody`" in message
    assert "COPYDESK_STATE_DIR" in message and "DATABASE_URL" in message
    assert modes(closed) == before  # left as it was
