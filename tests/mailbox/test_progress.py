"""What a script waiting for a mailbox to settle reads from the API: how far its messages have come
(`GET /sources/{id}`: `progress`), totals of the lists, and the documents that came from it."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.dovecot import DOCX_TYPE, docx_message, make_message
from tests.mailbox.helpers import drive, runs, runs_ended, source
from tests.mailbox.test_polling import broken_docx
from tests.support import wait_until

pytestmark = [pytest.mark.imap, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]

SETTLED = {"waiting": 0, "in_progress": 0, "awaiting_approval": 0, "filed": 0, "failed": 0, "kept": 0, "settled": True}


def test_progress_until_settled_with_totals_and_documents_by_source(
    make_source, dovecot, imap_user, admin_client, client
):
    from app.tasks.mailbox.polling import poll_source

    source_id = make_source(imap_user)
    name = source(source_id).name
    dovecot.deliver(imap_user, docx_message(f"Good one {uuid.uuid4()}", filename="good.docx", subject="Good"))
    dovecot.deliver(imap_user, make_message(subject="Broken", attachments=[("broken.docx", broken_docx(), DOCX_TYPE)]))
    dovecot.deliver(imap_user, docx_message("Spam", subject="Spam", sender="m@spam.example"))

    def progress() -> dict:
        return admin_client.get(f"/sources/{source_id}").json()["progress"]

    assert progress() == SETTLED  # nothing read yet
    assert poll_source(source_id)["recorded"] == 3
    now = progress()
    assert now["kept"] == 1 and now["in_progress"] + now["waiting"] == 2 and now["settled"] is False
    wait_until(lambda: runs_ended(source_id, 2), timeout=60, message="both runs to end")
    assert progress() == {**SETTLED, "waiting": 2, "kept": 1, "settled": False}  # ended, not filed yet
    drive(lambda: progress()["settled"], message="the mailbox to settle")
    assert progress() == {**SETTLED, "filed": 1, "failed": 1, "kept": 1}

    listed = admin_client.get(f"/sources/{source_id}/messages", params={"limit": 1})
    assert listed.headers["x-total-count"] == "3" and len(listed.json()) == 1
    processed = admin_client.get(f"/sources/{source_id}/messages", params={"state": "processed"})
    assert processed.headers["x-total-count"] == "1" and len(processed.json()) == 1
    sources = admin_client.get("/sources")
    assert int(sources.headers["x-total-count"]) == len(sources.json()) >= 1

    by_name = client.get("/documents", params={"source": name}).json()
    assert sorted(d["filename"] for d in by_name) == ["broken.docx", "good.docx"]
    assert client.get("/documents", params={"source": str(source_id)}).json() == by_name
    assert client.get("/documents", params={"source": "no-such-mailbox"}).json() == []


def test_a_run_waiting_for_approval_is_not_in_progress(make_source, dovecot, imap_user, admin_client):
    """Approval waits on a person: the mailbox counts as settled meanwhile, and says what waits."""
    from app.tasks.mailbox.polling import poll_source

    source_id = make_source(imap_user, workflow="t_control")
    dovecot.deliver(imap_user, docx_message(f"Needs a yes {uuid.uuid4()}", filename="gate.docx"))
    assert poll_source(source_id)["runs"] == 1
    wait_until(lambda: runs(source_id)[0].state == "awaiting_approval", timeout=60, message="the run to wait")
    shown = admin_client.get(f"/sources/{source_id}").json()["progress"]
    assert shown == {**SETTLED, "awaiting_approval": 1}
    assert admin_client.post(f"/runs/{runs(source_id)[0].id}/cancel").status_code == 200
