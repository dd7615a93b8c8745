"""No OPENAI_API_KEY: the offline editor edits the run, says so on the run, and the diff shows what
it changed (the title heading moved to the post title, nothing else)."""

from __future__ import annotations

import httpx
import pytest

from app.tasks.steps.transform import OFFLINE_WARNING
from tests.llm.documents import press_release
from tests.llm.helpers import steps, submit
from tests.support import wait_run

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


def test_the_offline_editor_is_labelled_on_the_run_and_its_diff_is_real(client, workers):
    data, title = press_release(301)
    run = wait_run(client, submit(client, data, "press-301.docx"))
    assert run["state"] == "succeeded", run["error"]
    assert OFFLINE_WARNING in run["warnings"]
    assert run["usage"] == {
        "prompt_tokens": 0, "completion_tokens": 0, "requests": 0, "total_tokens": 0, "cost_usd": 0.0,
        "cached_edits": 0, "engine": "offline",
    }
    assert steps(run)["transform"]["summary"] == f"offline: {title}"

    article = client.get(f"/articles/{run['article_id']}").json()
    assert article["edit_engine"] == "offline" and article["title"] == title
    assert article["excerpt"].startswith("In order to save water, Mayor Jane Quimby opened plant 301")
    assert article["slug"] == "springfield-opens-water-plant-number-301"
    # Tags only from what the document names itself (here its title) and its body discusses.
    assert article["tags"] and all(tag.casefold() in title.casefold() for tag in article["tags"])
    assert "In order to save water" in article["html"] and "<h1" not in article["html"]
    assert article["html"].count("/media/") == 2
    # The converter's blocks are published (the text was not rewritten), without the title heading.
    assert article["blocks"].startswith("<!-- wp:paragraph -->") and title not in article["blocks"]
    preview = httpx.get(article["preview_url"]).text
    assert preview.count(title) == 2  # <title> and the post's <h1 class="title">

    diff = client.get(f"/articles/{article['id']}/diff").json()
    assert diff["engine"] == "offline" and diff["warnings"] == [] and diff["changed"]
    assert diff["changed_blocks"] == 1
    assert [op["op"] for op in diff["ops"]] == ["delete", "equal"]
    assert diff["ops"][0]["original"] == [f"h1: {title}"]
    kept = diff["ops"][1]["original"]
    assert kept == diff["ops"][1]["edited"]
    assert sum(line.startswith("figure: [image http") for line in kept) == 2  # images as published
    assert any(line.startswith("tr: Pipes | 3.5") for line in kept)
    assert diff["similarity"] > 0.9
    assert client.get("/articles/00000000-0000-0000-0000-000000000000/diff").status_code == 404
