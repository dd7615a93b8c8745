"""`refile`: messages found by Message-ID and moved to another folder, any number of them in one
IMAP session (settling refiles resumed messages, and finds again those of a rebuilt folder, so)."""

from __future__ import annotations

import pytest

from app.integrations.mailbox import Refiled, ensure_folders, refile
from tests.fixtures.dovecot import docx_message
from tests.support import wait_until

pytestmark = pytest.mark.imap


def test_refile_moves_messages_found_by_message_id_in_one_login(dovecot, imap_user, mailbox_config):
    ensure_folders(mailbox_config)
    failed = [f"<refile-{n}@example.org>" for n in range(3)]
    dovecot.deliver_many(imap_user, [docx_message(f"r{n}", message_id=m) for n, m in enumerate(failed)], "Failed")
    dovecot.deliver(imap_user, docx_message("moved before", message_id="<before@example.org>"), "Processed")
    sessions = len(dovecot.wait_for_sessions(imap_user))

    wanted = [*failed, "<before@example.org>", "<nowhere@example.org>"]
    found = refile(mailbox_config, wanted, "Failed", "Processed")

    logged = wait_until(lambda: len(dovecot.wait_for_sessions(imap_user)) > sessions, message="the session's log")
    assert logged and len(dovecot.wait_for_sessions(imap_user)) == sessions + 1  # one login for all of them
    uidvalidity = dovecot.status(imap_user, "Failed")["uidvalidity"]
    assert all(found[m].uid and found[m].uidvalidity == uidvalidity and not found[m].in_target for m in failed)
    assert found["<before@example.org>"] == Refiled(uidvalidity, None, in_target=True)
    assert found["<nowhere@example.org>"] == Refiled(uidvalidity, None, in_target=False)
    assert dovecot.status(imap_user, "Failed")["messages"] == 0
    processed = dovecot.messages(imap_user, "Processed")
    assert len(processed) == 4 and all("\\Seen" in m["flags"] for m in processed if m["message_id"] in failed)
