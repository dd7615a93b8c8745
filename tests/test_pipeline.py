"""The main workflow end to end: upload -> real workers -> preview with images."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.samples import docx
from tests.support import wait_run

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


def test_upload_to_preview_with_images(client, workers, stack_env):
    data = docx("Pipeline test", paragraphs=4, images=3, seed=1234, keywords="pipeline, test")
    response = client.post("/documents", files={"file": ("pipeline.docx", data)}, data={"status": "draft"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["duplicate"] is False and body["document"]["kind"] == "docx"
    assert body["run"]["state"] == "queued" and body["run_url"].endswith(body["run"]["id"])

    run = wait_run(client, body["run"]["id"])
    assert run["state"] == "succeeded", run["error"]
    steps = {s["name"]: s for s in run["steps"]}
    assert [s["name"] for s in run["steps"]] == ["store", "to_docx", "parse", "transform", "upload_image", "publish"]
    assert steps["to_docx"]["state"] == "skipped"  # .docx needs no LibreOffice
    assert all(steps[n]["state"] == "succeeded" for n in ("store", "parse", "transform", "upload_image", "publish"))
    assert steps["upload_image"]["items_total"] == 3
    # store, to_docx (skipped), parse, transform, 3 image uploads, publish
    assert run["progress"] == {"done": 8, "total": 8, "text": "8 of 8"}

    article = client.get(f"/articles/{run['article_id']}").json()
    assert article["title"] == "Pipeline test"
    assert article["edit_engine"] == "offline"
    assert "pipeline" in [t.lower() for t in article["tags"]]
    # The preview page needs no login and shows the article with its images, all reachable.
    page = httpx.get(article["preview_url"])
    assert page.status_code == 200
    assert "Paragraph 1 of the manuscript" in page.text
    images = re.findall(r'<img[^>]+src="([^"]+)"', page.text)
    assert len(images) == 3
    for url in images:
        image = httpx.get(url)
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert "immutable" in image.headers["cache-control"]
    # A wrong preview token is refused.
    assert httpx.get(article["preview_url"][:-4] + "0000").status_code == 403

    # The original is kept exactly as received.
    original = client.get(f"/documents/{body['document']['id']}/original")
    assert original.status_code == 200 and original.content == data


def test_same_manuscript_twice_is_one_document(client, workers):
    data = docx("Duplicate", seed=777)
    first = client.post("/documents", files={"file": ("dup.docx", data)})
    second = client.post("/documents", files={"file": ("dup-again.docx", data)})
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["duplicate"] is True
    assert second.json()["document"]["id"] == first.json()["document"]["id"]
    assert second.json()["run"]["id"] == first.json()["run"]["id"]


def test_run_list_filters_and_pages(client, workers):
    ids = []
    for seed in (501, 502, 503):
        ids.append(client.post("/documents", files={"file": (f"{seed}.docx", docx(seed=seed))}).json()["run"]["id"])
    for run_id in ids:
        wait_run(client, run_id)
    page = client.get("/runs", params={"workflow": "publish_document", "state": "succeeded", "limit": 2}).json()
    assert page["limit"] == 2 and len(page["items"]) == 2 and page["total"] >= 3
    assert all(r["state"] == "succeeded" and r["workflow"] == "publish_document" for r in page["items"])
    following = client.get("/runs", params={"workflow": "publish_document", "limit": 2, "offset": 2}).json()
    assert not {r["id"] for r in page["items"]} & {r["id"] for r in following["items"]}
    assert client.get("/runs", params={"state": "nonsense"}).status_code == 422


def test_the_same_manuscript_uploaded_at_the_same_moment_is_one_document(client, workers):
    """Concurrent identical uploads race on the unique dedupe key: one wins, the others get it back."""
    from concurrent.futures import ThreadPoolExecutor

    data = docx("Raced upload", seed=31337)

    def upload(_):
        return client.post("/documents", files={"file": ("race.docx", data)})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(upload, range(8)))
    assert sorted(r.status_code for r in responses).count(201) == 1
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["document"]["id"] for r in responses}) == 1
