"""Sync sessions: the engine's bookkeeping commits without waiting for the disk, everything else as
durably as the server is configured to."""

from __future__ import annotations

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.postgres


def setting(session) -> str:
    return session.execute(text("SHOW synchronous_commit")).scalar_one()


def test_only_relaxed_sessions_commit_without_waiting_for_the_disk(stack_env):
    from app.core.db import session_scope

    for _ in range(3):  # pooled connections are reused: each session gets its own setting, every time
        with session_scope(relaxed_commit=True) as session:
            assert setting(session) == "off"
        with session_scope() as session:
            assert setting(session) == "on"  # the server's own setting (PostgreSQL's default here)
        with session_scope(relaxed_commit=True) as session:
            assert setting(session) == "off"


def test_a_failed_transaction_leaves_the_connection_as_it_was(stack_env):
    from app.core.db import session_scope

    with pytest.raises(RuntimeError):
        with session_scope() as session:
            assert setting(session) == "on"
            raise RuntimeError("the step failed")
    with session_scope(relaxed_commit=True) as session:
        assert setting(session) == "off"
