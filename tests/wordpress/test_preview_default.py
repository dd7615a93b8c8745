"""With no site configured (no WP_URL, no site marked default) the local preview stays the publisher."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.wordpress.conftest import manuscript, publish_step, submit
from tests.support import wait_run

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


def test_no_site_publishes_to_the_local_preview(client, workers):
    from app.core.db import session_scope
    from app.services.sites import default_site

    with session_scope() as session:
        assert default_site(session) is None
    body = submit(client, manuscript("Preview only", images=[], seed=7), "preview-only.docx")
    run = wait_run(client, body["run"]["id"])
    assert run["state"] == "succeeded", run["error"]
    result = publish_step(run)["result"]
    assert result["publisher"] == "preview"
    article = client.get(f"/articles/{run['article_id']}").json()
    assert article["publisher"] == "preview" and article["wp_post_id"] is None
    assert article["wp_url"] == article["preview_url"] or "/preview/" in article["wp_url"]
    page = httpx.get(article["wp_url"])
    assert page.status_code == 200 and "Paragraph 1 of Preview only" in page.text


@pytest.mark.parametrize(
    "form, shown",
    [
        ({"status": "draft"}, "Draft"),
        ({"status": "pending"}, "Pending review"),
        ({"date": "2031-05-01T09:30:00+00:00"}, "Scheduled for 2031-05-01 09:30+00:00"),
        ({}, "Published"),
    ],
)
def test_the_preview_shows_the_status_the_run_asked_for(client, workers, form, shown):
    body = submit(client, manuscript(f"Status {shown}", images=[], seed=71), "status.docx", **form)
    run = wait_run(client, body["run"]["id"])
    assert run["state"] == "succeeded", run["error"]
    article = client.get(f"/articles/{run['article_id']}").json()
    assert article["status"] == form.get("status", "future" if "date" in form else "publish")
    page = httpx.get(article["preview_url"])
    assert page.status_code == 200
    status = re.search(r'<p class="status status-(\w+)" id="status">([^<]*)</p>', page.text)
    assert status and status.group(2) == shown, page.text[:1500]
