"""/sources: admin only; the password is write-only (encrypted at rest, never in an answer)."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.dovecot import docx_message
from tests.mailbox.helpers import folder_counts, messages, runs_ended
from tests.support import wait_until

pytestmark = [pytest.mark.postgres]

PASSWORD = "S3cret-Mailbox-Pa55-" + uuid.uuid4().hex[:8]


def body(**overrides) -> dict:
    return {
        "name": f"desk-{uuid.uuid4().hex[:8]}",
        "host": "imap.example.org",
        "username": "desk@example.org",
        "password": PASSWORD,
        "allowed_senders": ["@example.org"],
        **overrides,
    }


@pytest.fixture
def cleanup(admin_client):
    ids: list[str] = []
    yield ids
    for source_id in ids:
        admin_client.delete(f"/sources/{source_id}")


def test_editors_and_anonymous_callers_are_refused(client, anon, admin_client, cleanup):
    created = admin_client.post("/sources", json=body())
    assert created.status_code == 201, created.text
    source_id = created.json()["id"]
    cleanup.append(source_id)
    calls = [
        ("GET", "/sources", None),
        ("POST", "/sources", body()),
        ("GET", f"/sources/{source_id}", None),
        ("PATCH", f"/sources/{source_id}", {"enabled": False}),
        ("DELETE", f"/sources/{source_id}", None),
        ("GET", f"/sources/{source_id}/messages", None),
        ("POST", f"/sources/{source_id}/test", None),
        ("POST", f"/sources/{source_id}/poll", None),
    ]
    for method, path, payload in calls:
        as_editor = client.request(method, path, json=payload)
        assert as_editor.status_code == 403, (method, path, as_editor.text)
        assert as_editor.json()["detail"] == "this needs the admin role"
        assert anon.request(method, path, json=payload).status_code == 401, (method, path)
    assert admin_client.get(f"/sources/{source_id}").json()["enabled"] is True  # nothing changed


def test_the_password_is_write_only_and_encrypted_at_rest(admin_client, cleanup):
    from app.core.db import session_scope
    from app.core.security import decrypt_secret
    from app.models import Source

    created = admin_client.post("/sources", json=body(defaults={"category": "News", "status": "draft"}))
    assert created.status_code == 201, created.text
    source = created.json()
    cleanup.append(source["id"])
    assert PASSWORD not in created.text and "password" not in source and source["password_set"] is True
    assert source["port"] == 993 and source["tls_mode"] == "imaps"  # the default port of the mode
    assert source["defaults"] == {"category": "News", "status": "draft"}
    with session_scope() as session:
        stored = session.get(Source, uuid.UUID(source["id"])).password_encrypted
    assert PASSWORD not in stored and decrypt_secret(stored) == PASSWORD
    for answer in (admin_client.get("/sources"), admin_client.get(f"/sources/{source['id']}")):
        assert answer.status_code == 200 and PASSWORD not in answer.text

    # changing other fields keeps the password; senders are normalised; a new mode takes its port
    changed = admin_client.patch(
        f"/sources/{source['id']}",
        json={"allowed_senders": ["Example.org", " Chief@Partner.example "], "tls_mode": "starttls", "poll_interval": 30},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["allowed_senders"] == ["@example.org", "chief@partner.example"]
    assert (changed.json()["tls_mode"], changed.json()["port"], changed.json()["poll_interval"]) == ("starttls", 143, 30)
    with session_scope() as session:
        assert decrypt_secret(session.get(Source, uuid.UUID(source["id"])).password_encrypted) == PASSWORD
    new_password = "An0ther-Pa55-" + uuid.uuid4().hex[:6]
    changed = admin_client.patch(f"/sources/{source['id']}", json={"password": new_password})
    assert changed.status_code == 200 and new_password not in changed.text
    with session_scope() as session:
        assert decrypt_secret(session.get(Source, uuid.UUID(source["id"])).password_encrypted) == new_password

    assert admin_client.delete(f"/sources/{source['id']}").status_code == 204
    assert admin_client.get(f"/sources/{source['id']}").status_code == 404


@pytest.mark.parametrize(
    "overrides, status, words",
    [
        ({"tls_mode": "plain"}, 422, "unencrypted"),
        ({"processed_folder": "INBOX"}, 422, "must differ from the watched folder"),
        ({"workflow": "no_such_workflow"}, 422, "no workflow named 'no_such_workflow'"),
        ({"defaults": {"status": "maybe"}}, 422, "status"),
        ({"defaults": {"colour": "red"}}, 422, "colour"),
        ({"allowed_senders": ["a@b@c"]}, 422, "neither an address nor an @domain"),
        ({"port": 70000}, 422, "port"),
        ({"ca_cert": "not a certificate"}, 422, "PEM"),
    ],
)
def test_invalid_sources_are_refused_without_echoing_the_password(admin_client, overrides, status, words):
    answer = admin_client.post("/sources", json=body(**overrides))
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    assert PASSWORD not in answer.text


def test_names_are_unique_and_plain_needs_an_explicit_yes(admin_client, cleanup):
    first = admin_client.post("/sources", json=body(tls_mode="plain", allow_plain=True, port=1143))
    assert first.status_code == 201, first.text
    cleanup.append(first.json()["id"])
    assert first.json()["allow_plain"] is True
    again = admin_client.post("/sources", json=body(name=first.json()["name"]))
    assert again.status_code == 409
    missing = admin_client.post("/sources", json={k: v for k, v in body().items() if k != "password"})
    assert missing.status_code == 422 and "password" in missing.json()["detail"]


@pytest.mark.imap
@pytest.mark.worker
@pytest.mark.redis
def test_test_and_poll_now_against_dovecot(mail_stack, admin_client, dovecot, imap_user, cleanup):
    from app.tasks.mailbox.lock import held

    ca = open(dovecot.ca_file).read()
    created = admin_client.post(
        "/sources",
        json=body(host=dovecot.host, port=dovecot.imaps_port, username=imap_user, password=dovecot.users[imap_user],
                  ca_cert=ca, processed_folder="Done", poll_interval=3600),
    )  # fmt: skip
    assert created.status_code == 201, created.text
    source_id = created.json()["id"]
    cleanup.append(source_id)
    dovecot.deliver(imap_user, docx_message("Polled on demand", filename="demand.docx"))

    report = admin_client.post(f"/sources/{source_id}/test").json()
    assert report["logged_in"] is True and report["ok"] is False  # "Done" does not exist yet
    assert {f["name"]: f["exists"] for f in report["folders"]} == {"INBOX": True, "Done": False, "Failed": True}
    assert "missing folder: Done" in " ".join(report["warnings"])
    report = admin_client.post(f"/sources/{source_id}/test", params={"create_folders": True}).json()
    assert report["ok"] is True and report["created"] == ["Done"], report
    inbox = next(f for f in report["folders"] if f["name"] == "INBOX")
    assert inbox["messages"] == 1 and inbox["unseen"] == 1
    assert any("login: ok" in line for line in report["lines"])

    queued = admin_client.post(f"/sources/{source_id}/poll")
    assert queued.status_code == 202 and queued.json()["task_id"]
    wait_until(lambda: runs_ended(uuid.UUID(source_id), 1), timeout=60, message="the polled message's run to end")
    wait_until(lambda: not held([source_id]), timeout=30, message="the first poll to let go of the source")
    admin_client.post(f"/sources/{source_id}/poll")  # the next poll files the message away first
    wait_until(
        lambda: [m for m in messages(uuid.UUID(source_id)) if m.state == "processed"],
        timeout=30,
        message="the message to be moved to Done",
    )
    listed = admin_client.get(f"/sources/{source_id}/messages", params={"state": "processed"}).json()
    assert [(m["folder"], m["documents"][0]["filename"]) for m in listed] == [("Done", "demand.docx")]
    assert dovecot.status(imap_user, "Done")["messages"] == 1
    assert folder_counts(dovecot, imap_user)["INBOX"] == 0

    wrong = admin_client.patch(f"/sources/{source_id}", json={"password": "not-the-password-123"})
    assert wrong.status_code == 200
    report = admin_client.post(f"/sources/{source_id}/test").json()
    assert report["ok"] is False and report["error_code"] == "auth_failed"
    assert "refused the user name or password" in report["error"]
    assert "not-the-password-123" not in str(report)
