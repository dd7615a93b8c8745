"""Replies through the API: an upload that asks for a reply, and a mailbox's reply settings."""

from __future__ import annotations

import uuid

import pytest

from tests.replies.conftest import SMTP_FROM
from tests.replies.helpers import drive, notifications, settled
from tests.samples import docx
from tests.support import wait_run

pytestmark = [pytest.mark.smtp, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_an_upload_can_ask_for_a_reply(notify_stack, smtp_server, client):
    address = f"hanna-{uuid.uuid4().hex[:6]}@example.org"
    title = f"Upload {uuid.uuid4().hex[:8]}"
    files = {"file": ("upload.docx", docx(title, paragraphs=2, seed=7), DOCX_TYPE)}
    assert client.post("/documents", files=files, data={"reply_to": "not an address"}).status_code == 422
    response = client.post("/documents", files=files, data={"reply_to": address, "status": "draft"})
    assert response.status_code == 201, response.text
    run_id = response.json()["run"]["id"]
    assert response.json()["document"]["options"]["reply_to"] == address
    assert wait_run(client, run_id)["state"] == "succeeded"

    [note] = drive(lambda: settled(notifications(run_id, channel="email")), message="the reply to the upload")
    assert (note.state, note.recipient, note.source_id) == ("sent", address, None)
    [reply] = smtp_server.messages(address)
    assert reply["Subject"] == f"Published: {title}" and reply["In-Reply-To"] is None
    assert reply["From"] == f"Copydesk <{SMTP_FROM}>" and reply["Auto-Submitted"] == "auto-replied"
    assert "is saved as a draft." in reply.get_body(("plain",)).get_content()


def test_a_mailboxs_reply_settings(notify_stack, admin_client):
    from app.core.db import session_scope
    from app.core.security import encrypt_secret
    from app.models import Source

    with session_scope() as session:
        source = Source(id=uuid.uuid4(), name=f"settings-{uuid.uuid4().hex[:6]}", host="127.0.0.1", port=1,
                        tls_mode="imaps", username="desk", password_encrypted=encrypt_secret("x"), enabled=False,
                        allowed_senders=[], defaults={}, options={"timeout": 5}, consecutive_failures=0)  # fmt: skip
        session.add(source)
    shown = admin_client.get(f"/sources/{source.id}/replies").json()
    assert shown["settings"]["enabled"] is False and shown["smtp_configured"] is True
    assert shown["builtin_languages"] == ["de", "en"] and shown["reply_error"] is None

    settings = {
        "enabled": True,
        "events": ["failed"],
        "from_address": "news@example.net",
        "templates": {"failed": {"fr": {"body": "{{ filename }} : {{ error }}"}}},
    }
    saved = admin_client.put(f"/sources/{source.id}/replies", json=settings).json()["settings"]
    assert (
        saved["events"] == ["failed"]
        and saved["templates"]["failed"]["fr"]["body"] == "{{ filename }} : {{ error }}"
    )
    assert admin_client.get(f"/sources/{source.id}").json()["reply_error"] is None
    with session_scope() as session:
        assert session.get(Source, source.id).options["timeout"] == 5  # the other options are kept
    broken = {**settings, "templates": {"failed": {"en": {"body": "{% for %}"}}}}
    assert admin_client.put(f"/sources/{source.id}/replies", json=broken).status_code == 422
    assert admin_client.put(f"/sources/{source.id}/replies", json={"events": ["sent"]}).status_code == 422
