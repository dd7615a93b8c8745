"""The same manuscript sent again, by upload or by mail, to a real WordPress through real workers: new
options update the same post (a new run of the same document), the same options change nothing and
say so, and the answer always carries the article and the post's URL.

Every outcome is read back from the site (REST, context=edit).
"""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.dovecot import DOCX_TYPE, make_message
from tests.support import wait_run
from tests.wordpress.conftest import manuscript, picture, posts_of, publish_step, submit, tag_names, wp_get

pytestmark = [pytest.mark.wordpress, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


def upload(client, data: bytes, filename: str, **form):
    return client.post("/documents", files={"file": (filename, data)}, data=form)




def test_new_options_update_the_same_post_and_the_same_options_change_nothing(client, wp_stack, wordpress):
    data = manuscript("Sent again with new options", images=[picture(301)], seed=301)
    first = wait_run(client, submit(client, data, "again.docx", status="draft", tags="alpha")["run"]["id"])
    assert first["state"] == "succeeded", first["error"]
    post_id = publish_step(first)["result"]["post_id"]
    doc_id = first["document_id"]

    again = upload(client, data, "again-renamed.docx", status="pending", tags="beta, gamma")
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["duplicate"] is True and body["updated"] is True
    assert body["document"]["id"] == doc_id and body["run"]["id"] != first["id"]
    assert body["article_id"] == first["article_id"] and body["url"] == wp_get(wordpress, f"wp/v2/posts/{post_id}").json()["link"]
    assert body["document"]["options"] == {"status": "pending", "tags": ["beta", "gamma"]}
    second = wait_run(client, body["run"]["id"])
    assert second["state"] == "succeeded", second["error"]
    result = publish_step(second)["result"]
    assert result["post_id"] == post_id and result["created"] is False

    post = wp_get(wordpress, f"wp/v2/posts/{post_id}").json()
    assert post["status"] == "pending" and tag_names(wordpress, post["tags"]) == ["beta", "gamma"]
    assert [p["id"] for p in posts_of(wordpress, doc_id)] == [post_id]  # one post

    # The same options again, or none: the existing document and run, with the article and URL.
    for form in ({"status": "pending", "tags": "gamma, beta"}, {}):  # tags in another order: the same
        same = upload(client, data, "again.docx", **form)
        assert same.status_code == 200, same.text
        answer = same.json()
        assert answer["duplicate"] is True and answer["updated"] is False
        assert answer["run"]["id"] == second["id"] and answer["article_id"] == first["article_id"]
        assert answer["url"] == post["link"]
    assert [p["id"] for p in posts_of(wordpress, doc_id)] == [post_id]


def test_new_options_while_the_run_goes_on_are_refused_with_how_to_update(client, wp_stack, wordpress):
    # WordPress holds its first answer to the publish step for a few seconds: the run is not over
    # when the same file comes again.
    wordpress.fail_next(1, status=0, method="GET", route="#^/wp/v2/users/me$#", delay=4)
    data = manuscript("Sent again too soon", seed=311)
    first = submit(client, data, "soon.docx")
    refused = upload(client, data, "soon.docx", status="publish")
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["code"] == "invalid_state" and body["document"]["id"] == first["document"]["id"]
    assert first["run"]["id"] in body["detail"] and "send it again with the new options (status)" in body["detail"]
    assert body["run"]["id"] == first["run"]["id"] and "article_id" in body and "url" in body
    run = wait_run(client, first["run"]["id"])
    assert run["state"] == "succeeded", run["error"]
    post = wp_get(wordpress, f"wp/v2/posts/{publish_step(run)['result']['post_id']}").json()
    assert post["status"] == "draft"  # the refused options were not applied
    # Once it has ended, the same request updates the post.
    again = upload(client, data, "soon.docx", status="publish").json()
    assert again["updated"] is True and wait_run(client, again["run"]["id"])["state"] == "succeeded"
    assert wp_get(wordpress, f"wp/v2/posts/{post['id']}").json()["status"] == "publish"


# --- by mail ------------------------------------------------------------------------------------------


@pytest.fixture
def mail_source(wp_stack, dovecot):
    """A mailbox (IMAPS on the test Dovecot) whose runs publish to the default site; disabled after."""
    from app.core.db import session_scope
    from app.core.security import encrypt_secret
    from app.models import Source

    user = dovecot.fresh_user()
    with session_scope() as session:
        source = Source(
            id=uuid.uuid4(), name=f"desk-{uuid.uuid4().hex[:6]}", host=dovecot.host, port=dovecot.imaps_port,
            tls_mode="imaps", username=user, password_encrypted=encrypt_secret(dovecot.users[user]),
            allowed_senders=["@example.org"], poll_interval=1, enabled=True, workflow="publish_document",
            defaults={}, options={"ca_cert": open(dovecot.ca_file).read(), "timeout": 10}, consecutive_failures=0,
        )  # fmt: skip
        session.add(source)
    yield source.id, user
    with session_scope() as session:
        session.get(Source, source.id).enabled = False


@pytest.mark.imap
def test_a_mail_duplicate_with_new_directives_updates_the_post_and_says_so(client, mail_source, dovecot, wordpress):
    from app.tasks.mailbox.polling import poll_source
    from tests.mailbox.helpers import drive, folder_counts, settled

    source_id, user = mail_source
    data = manuscript("Mailed twice", seed=321)
    attachment = [("mailed.docx", data, DOCX_TYPE)]
    dovecot.deliver(user, make_message(subject="Story", text="Please publish.", attachments=attachment))
    assert poll_source(source_id)["runs"] == 1
    rows = drive(lambda: settled(source_id, 1), message="the first message to be filed")
    first_run = rows[0].run_ids[0]
    run = client.get(f"/runs/{first_run}").json()
    assert run["state"] == "succeeded", run["error"]
    post_id = publish_step(run)["result"]["post_id"]

    # Sent again with directives: a new run of the same document updates the same post.
    directives = "[status pending] [tags harbour, ferries]\nHere it is again."
    dovecot.deliver(user, make_message(subject="Story, again", text=directives, attachments=attachment))
    summary = poll_source(source_id)
    assert summary["duplicates"] == 1 and summary["runs"] == 1
    rows = drive(lambda: settled(source_id, 2), message="the second message to be filed")
    second = rows[1]
    assert second.state == "processed" and second.run_ids != rows[0].run_ids
    assert second.documents[0]["duplicate"] is True and second.documents[0]["document_id"] == str(run["document_id"])
    assert "mailed.docx was already received" in second.reason
    assert f"its directives (status, tags) are applied by run {second.run_ids[0]}, which updates its post" in second.reason
    rerun = client.get(f"/runs/{second.run_ids[0]}").json()
    assert rerun["state"] == "succeeded" and publish_step(rerun)["result"]["post_id"] == post_id
    post = wp_get(wordpress, f"wp/v2/posts/{post_id}").json()
    assert post["status"] == "pending" and tag_names(wordpress, post["tags"]) == ["ferries", "harbour"]

    # The same directives once more: nothing new, and the message says so, with the post's URL.
    dovecot.deliver(user, make_message(subject="Story, third", text=directives, attachments=attachment))
    summary = poll_source(source_id)
    assert summary["duplicates"] == 1 and summary.get("runs", 0) == 0
    rows = drive(lambda: settled(source_id, 3), message="the third message to be filed")
    assert rows[2].run_ids == second.run_ids
    assert rows[2].reason.endswith(f"with nothing new to apply: {post['link']}")
    assert len(posts_of(wordpress, run["document_id"])) == 1
    assert folder_counts(dovecot, user) == {"INBOX": 0, "Processed": 3, "Failed": 0}


@pytest.mark.imap
def test_directives_of_a_second_message_in_the_same_poll_join_the_first_ones_run(
    client, mail_source, dovecot, wordpress
):
    from app.tasks.mailbox.polling import poll_source
    from tests.mailbox.helpers import drive, settled

    source_id, user = mail_source
    attachment = [("twice.docx", manuscript("Mailed twice in a row", seed=331), DOCX_TYPE)]
    dovecot.deliver(user, make_message(subject="Story", text="Please publish.", attachments=attachment))
    dovecot.deliver(user, make_message(subject="Story", text="[status pending]", attachments=attachment))
    summary = poll_source(source_id)
    assert summary["runs"] == 1 and summary["duplicates"] == 1  # the run was not sent yet: it takes them
    first, second = drive(lambda: settled(source_id, 2), message="both messages to be filed")
    assert first.run_ids == second.run_ids and "(status) are applied by run" in second.reason
    run = client.get(f"/runs/{first.run_ids[0]}").json()
    assert run["state"] == "succeeded" and run["payload"] == {"status": "pending"}
    post = wp_get(wordpress, f"wp/v2/posts/{publish_step(run)['result']['post_id']}").json()
    assert post["status"] == "pending"
