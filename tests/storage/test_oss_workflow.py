"""The publish_document workflow with OSS storage (the OSS-protocol test server), through real workers."""

from __future__ import annotations

import pytest

from tests.fixtures.oss import OSS_BUCKET, oss_settings
from tests.samples import docx
from tests.support import starts, wait_run

pytestmark = [pytest.mark.oss, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
@starts("worker")
def oss_stack(stack_env, oss_server, tmp_path):
    from tests.fixtures.stack import isolated_stack

    overrides = {
        **oss_settings(oss_server),
    }
    with isolated_stack(stack_env, tmp_path, overrides, io=24) as stack:
        yield stack


def submit_and_wait(client, data: bytes, name: str) -> dict:
    response = client.post("/documents", files={"file": (name, data)})
    assert response.status_code == 201, response.text
    return wait_run(client, response.json()["run"]["id"])


def test_twenty_images_upload_in_parallel_and_once(client, oss_server, oss_stack):
    oss_server.latency = 0.1  # every OSS request takes at least 100 ms
    run = submit_and_wait(client, docx("Twenty pictures", images=20, seed=7), "twenty.docx")
    assert run["state"] == "succeeded", run["error"]
    uploads = [
        r for r in oss_server.requests if r.method == "PUT" and r.key.startswith("media/") and r.status == 200
    ]
    assert len(uploads) == 20
    # One task per image on the io queue: the uploads overlap instead of queueing one after another,
    # many requests in flight at once (how long it takes is bench/'s business).
    assert oss_server.max_concurrency() >= 8, f"peak concurrency {oss_server.max_concurrency()}"
    # The original is kept privately in the bucket; the images are served from the public base URL.
    article = client.get(f"/articles/{run['article_id']}").json()
    assert article["html"].count(f"{oss_server.endpoint}/{OSS_BUCKET}/media/") == 20
    assert any(r.method == "PUT" and r.key.startswith("manuscripts/") for r in oss_server.requests)

    # A re-upload of another document holding the same images stores nothing new.
    oss_server.requests.clear()
    run = submit_and_wait(client, docx("Same twenty pictures, new text", images=20, seed=7, paragraphs=5), "again.docx")
    assert run["state"] == "succeeded", run["error"]
    media_puts = [r for r in oss_server.requests if r.method == "PUT" and r.key.startswith("media/")]
    assert media_puts == []


def test_transient_oss_failures_are_retried_and_shown(client, oss_server, oss_stack):
    oss_server.fail_next(2, 503, "ServiceUnavailable", method="PUT")
    run = submit_and_wait(client, docx("Flaky storage", images=1, seed=99), "flaky.docx")
    assert run["state"] == "succeeded", run["error"]
    assert oss_server.count("PUT", status=503) == 2


def test_wrong_credentials_fail_the_step_with_bucket_and_key_but_no_secret(client, oss_server, stack_env, tmp_path):
    from tests.fixtures.stack import isolated_stack

    overrides = {
        **oss_settings(oss_server, public_urls=False),
        "OSS_ACCESS_KEY_SECRET": "not-the-right-secret-123",
    }
    from sqlalchemy import func, select

    from app.core.db import session_scope
    from app.models import Document

    with session_scope() as session:
        before = session.execute(select(func.count()).select_from(Document)).scalar_one()
    with isolated_stack(stack_env, tmp_path, overrides):
        response = client.post("/documents", files={"file": ("denied.docx", docx("Denied", seed=5))})
    # The API keeps the original before anything else: refused by OSS, it says so and records nothing.
    assert response.status_code == 502
    body = response.json()
    assert body["code"] == "auth_failed"
    assert OSS_BUCKET in body["detail"] and "not-the-right-secret-123" not in response.text
    with session_scope() as session:
        assert session.execute(select(func.count()).select_from(Document)).scalar_one() == before
