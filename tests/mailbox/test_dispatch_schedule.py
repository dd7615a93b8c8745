"""Beat sends the mailbox dispatcher only when a mailbox is due (or has mail to file): an idle
system sends no task every few seconds for Flower to list."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tests.fixtures.stack import RedisServer
from tests.mailbox.helpers import beat
from tests.support import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def add_due_source(database_url: str) -> None:
    """An enabled mailbox never polled yet, written straight into the database."""
    from app.core.db import sync_url
    from app.models import Source

    engine = create_engine(sync_url(database_url))
    try:
        with Session(engine) as session, session.begin():
            session.add(Source(name="due", host="127.0.0.1", username="desk", password_encrypted="-", options={}))
    finally:
        engine.dispose()


def test_beat_sends_the_dispatcher_only_when_a_mailbox_is_due(stack_env, fresh_database, tmp_path):
    broker = RedisServer()  # nothing consumes it: what beat sends stays visible in its log
    env = {
        **stack_env["env"],
        "DATABASE_URL": fresh_database,
        "REDIS_URL": broker.url,
        "MAILBOX_DISPATCH_INTERVAL": "0.5",
        "SWEEP_INTERVAL": "0.5",
    }
    try:
        with beat(env, tmp_path) as log:

            def sent(task: str) -> int:
                return log.read_text(errors="replace").count(f"({task})")

            # beat ticks (the sweeper is sent twice a second) and there is no mailbox: no dispatcher
            wait_until(lambda: sent("copydesk.sweep") >= 6, timeout=60, message="beat to send the sweeper six times")
            assert sent("copydesk.mailbox.dispatch") == 0

            add_due_source(fresh_database)
            wait_until(
                lambda: sent("copydesk.mailbox.dispatch"), timeout=30, message="beat to send the dispatcher for it"
            )
    finally:
        broker.stop()
