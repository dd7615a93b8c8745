"""The default mailbox configured only by variables (IMAP_*), as an operator deploys it: beat creates
it from them before its first poll, that first poll already uses every one of them, and the API
refuses to change what a variable sets."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.conftest import login, make_user
from tests.fixtures.dovecot import docx_message
from tests.fixtures.stack import isolated_stack
from tests.mailbox.helpers import beat, messages, runs
from tests.support import wait_until

pytestmark = [pytest.mark.imap, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def default_source():
    from app.core.db import session_scope
    from app.models import Source

    with session_scope() as session:
        return session.execute(select(Source).where(Source.name == "default")).scalar_one_or_none()


def test_the_first_poll_of_the_default_mailbox_uses_its_variables(stack_env, api, dovecot, fresh_database, tmp_path):
    import httpx

    user = dovecot.fresh_user()
    dovecot.deliver(user, docx_message("Variables all the way", subject="From the desk", sender="ann@example.org"))
    dovecot.deliver(user, docx_message("Cheap loans", subject="Loans", sender="Mallory <m@spam.example>"))
    defaults = {"status": "pending", "category": "From the variables"}
    overrides = {
        "DATABASE_URL": fresh_database,
        "MAILBOX_DISPATCH_INTERVAL": "1",
        "IMAP_HOST": dovecot.host,
        "IMAP_PORT": str(dovecot.imaps_port),
        "IMAP_TLS": "imaps",
        "IMAP_CA_FILE": dovecot.ca_file,
        "IMAP_USER": user,
        "IMAP_PASSWORD": dovecot.users[user],
        "IMAP_PROCESSED_FOLDER": "Desk/Done",
        "IMAP_FAILED_FOLDER": "Desk/Rejected",
        "IMAP_ALLOWED_SENDERS": "@Example.org, chief@partner.example",
        "IMAP_POLL_INTERVAL": "3600",
        "IMAP_DEFAULTS": json.dumps(defaults),
    }
    with isolated_stack(stack_env, tmp_path, overrides, cpu=1, io=2) as stack, beat(stack["env"], tmp_path):
        source = wait_until(default_source, timeout=30, message="beat to create the default mailbox")
        filed = wait_until(
            lambda: [m for m in messages(source.id) if m.state == "processed"],
            timeout=120, interval=0.2, message="the allowed message to be published and filed",
        )  # fmt: skip
        # every variable is on the source, and was before its first poll: that poll refused the
        # unknown sender, created the folders, gave the run the defaults and set the next poll
        source = default_source()
        assert (source.processed_folder, source.failed_folder) == ("Desk/Done", "Desk/Rejected")
        assert source.allowed_senders == ["@example.org", "chief@partner.example"]
        assert source.poll_interval == 3600 and source.defaults == defaults and source.enabled
        assert source.typed_options.ca_cert == open(dovecot.ca_file).read()
        assert (source.next_poll_at - source.last_success_at).total_seconds() == 3600
        by_sender = {m.sender: m for m in messages(source.id)}
        assert by_sender["m@spam.example"].state == "unauthorized"
        assert [m.folder for m in filed] == ["Desk/Done"]
        [run] = runs(source.id)
        assert run.payload == defaults and run.state == "succeeded"
        assert dovecot.status(user, "Desk/Done")["messages"] == 1 and "Desk/Rejected" in dovecot.folders_of(user)

        # what a variable sets stays the variable's; the rest is the admin's
        token = login(api, *make_user("admin"))
        with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=30) as admin:
            refused = admin.patch(f"/sources/{source.id}", json={"poll_interval": 60, "allowed_senders": []})
            assert refused.status_code == 409
            assert "poll_interval (IMAP_POLL_INTERVAL)" in refused.json()["detail"]
            assert "allowed_senders (IMAP_ALLOWED_SENDERS)" in refused.json()["detail"]
            changed = admin.patch(f"/sources/{source.id}", json={"enabled": False})
            assert changed.status_code == 200 and changed.json()["enabled"] is False
            assert changed.json()["progress"] == {
                "waiting": 0, "in_progress": 0, "awaiting_approval": 0, "filed": 1, "failed": 0, "kept": 1,
                "settled": True,
            }  # fmt: skip
