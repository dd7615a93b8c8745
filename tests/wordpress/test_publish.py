"""The publish step through real workers to a real WordPress: the default site from WP_URL, sites
created through the API, images, terms, statuses, and exactly one post per document whatever fails.

Every outcome is read back from the site (REST, context=edit), not only from what Copydesk reports.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support import wait_requeued, wait_run, wait_until
from tests.wordpress.conftest import (
    make_site,
    manuscript,
    marker,
    noise_png,
    picture,
    posts_of,
    publish_step,
    published,
    rerun,
    submit,
    wp_get,
)

pytestmark = [pytest.mark.wordpress, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def media_by_slug(wordpress, images: list[bytes]) -> dict[str, dict]:
    """The media items Copydesk imported for these images (slug copydesk-<sha256 prefix>), by sha."""
    slugs = {f"copydesk-{sha(i)[:32]}": sha(i) for i in images}
    found = wp_get(wordpress, "wp/v2/media", slug=",".join(slugs), per_page=100).json()
    return {slugs[m["slug"]]: m for m in found}


# --- a full publish ---------------------------------------------------------------------------------


def test_full_publish_images_terms_and_featured_image(client, wp_stack, wordpress, api):
    with wordpress.client() as c:
        existing_category = c.post("wp/v2/categories", json={"name": "Existing Desk"}).json()
        existing_tag = c.post("wp/v2/tags", json={"name": "Existing Tag"}).json()
    images = [picture(11), picture(12), picture(13)]
    data = manuscript(
        "Through the workers", images=images, alts=["First alt", "Second alt", ""], captions=["First caption", "", ""]
    )
    new_tag = f"fresh tag {uuid.uuid4().hex[:6]}"
    run, result, post = published(
        client, wordpress, data, "full.docx", category="existing desk", tags=f"{new_tag}, existing tag"
    )
    doc_id = run["document_id"]

    # Copydesk's record: the article is bound to the post on the default site (WP_URL).
    assert result["publisher"] == "wordpress" and result["site"] == "default"
    assert result["created"] is True and result["recovered"] is False
    article = client.get(f"/articles/{run['article_id']}").json()
    assert (article["publisher"], article["wp_post_id"], article["wp_url"]) == ("wordpress", post["id"], post["link"])
    assert article["published_at"] is not None

    # The post on the site.
    assert post["title"]["raw"] == "Through the workers"
    assert post["status"] == "draft"  # the site's default status (WP_DEFAULT_STATUS unset)
    assert post["categories"] == [existing_category["id"]]  # found by name, case aside: not created again
    tags = wp_get(wordpress, "wp/v2/tags", include=",".join(map(str, post["tags"]))).json()
    assert sorted(t["name"] for t in tags) == sorted([new_tag, "Existing Tag"])
    assert existing_tag["id"] in post["tags"]

    # Images imported into the media library (the default site imports them), with alt and caption.
    media = media_by_slug(wordpress, images)
    assert set(media) == {sha(i) for i in images}
    first = media[sha(images[0])]
    assert first["alt_text"] == "First alt" and "First caption" in first["caption"]["raw"]
    assert media[sha(images[1])]["alt_text"] == "Second alt"
    assert post["featured_media"] == first["id"]  # the largest image that qualifies, the first of equals
    assert result["featured_media"] == first["id"]
    assert all(item["post"] == post["id"] for item in media.values())  # attached to their post

    # The body: block markup whose images point at the media library (wp:image with the media id);
    # the featured image is not in it (themes show it above the post).
    raw = post["content"]["raw"]
    assert "<!-- wp:paragraph -->" in raw and "Paragraph 1 of Through the workers" in raw
    assert f'"id":{first["id"]}' not in raw and first["source_url"] not in raw and "First caption" not in raw
    for image in images[1:]:
        item = media[sha(image)]
        assert f'"id":{item["id"]}' in raw and item["source_url"] in raw and f"wp-image-{item['id']}" in raw
    assert f"{api}/media/" not in raw  # no storage URL left
    assert raw.count(f"<!-- {marker(doc_id)} -->") == 1
    assert [p["id"] for p in posts_of(wordpress, doc_id)] == [post["id"]]
    # The article keeps its HTML with storage URLs (placeholders resolved), for the preview.
    assert f"{api}/media/" in article["html"] and "copydesk-image:" not in article["html"]


def test_rerun_updates_the_same_post(client, wp_stack, wordpress):
    data = manuscript("Re-run me", images=[picture(21)], seed=21)
    run, result, post = published(client, wordpress, data, "rerun.docx", tags="first")
    doc_id = run["document_id"]

    second = wait_run(client, rerun(doc_id, {"status": "pending", "tags": ["second"], "excerpt": "A new excerpt."}))
    assert second["state"] == "succeeded", second["error"]
    again = publish_step(second)["result"]
    assert again["post_id"] == post["id"] and again["created"] is False
    after = wp_get(wordpress, f"wp/v2/posts/{post['id']}").json()
    assert after["status"] == "pending" and after["excerpt"]["raw"] == "A new excerpt."
    tags = wp_get(wordpress, "wp/v2/tags", include=",".join(map(str, after["tags"]))).json()
    assert [t["name"] for t in tags] == ["second"]
    assert after["featured_media"] == post["featured_media"]  # the image was not uploaded again
    assert len(media_by_slug(wordpress, [picture(21)])) == 1
    assert [p["id"] for p in posts_of(wordpress, doc_id)] == [post["id"]]


def test_scheduled_post_in_a_new_category(client, wp_stack, wordpress):
    when = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    category = f"Desk {uuid.uuid4().hex[:6]} — Été"
    run, result, post = published(
        client, wordpress, manuscript("Scheduled", seed=31), "scheduled.docx",
        status="future", date=when.isoformat(), category=category, slug="scheduled-for-later",
    )  # fmt: skip
    assert post["status"] == "future" and result["status"] == "future"
    assert datetime.fromisoformat(post["date_gmt"]).replace(tzinfo=UTC) == when
    assert post["slug"] == "scheduled-for-later"
    made = wp_get(wordpress, "wp/v2/categories", include=str(post["categories"][0])).json()
    assert [c["name"] for c in made] == [category]  # created, since the site had none of that name
    article = client.get(f"/articles/{run['article_id']}").json()
    assert article["status"] == "future"


def test_date_without_status_schedules_and_bad_date_fails_clearly(client, wp_stack, wordpress):
    when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    _, _, post = published(client, wordpress, manuscript("Dated", seed=33), "dated.docx", date=when.isoformat())
    assert post["status"] == "future"

    body = submit(client, manuscript("Bad date", seed=34), "bad-date.docx", date="next tuesday")
    run = wait_run(client, body["run"]["id"])
    step = publish_step(run)
    assert run["state"] == "failed" and step["attempts"] == 1
    assert "ISO 8601" in step["error"] and "next tuesday" in step["error"]


# --- sites of the database --------------------------------------------------------------------------


def test_site_without_image_import_keeps_storage_urls_and_classic_html(client, admin_client, wp_stack, wordpress, api):
    site = make_site(admin_client, wordpress, body_format="html", import_images=False, default_status="publish")
    try:
        images = [picture(41), picture(42)]
        run, result, post = published(
            client, wordpress, manuscript("Classic", images=images, seed=41), "classic.docx", site=site["name"]
        )
        assert result["site"] == site["name"] and post["status"] == "publish"
        raw = post["content"]["raw"]
        assert "<!-- wp:" not in raw  # classic HTML, no block markup
        storage_urls = [f"{api}/media/{sha(i)}.png" for i in images]
        assert storage_urls[0] not in raw  # the featured image, shown by themes above the post
        for url in storage_urls[1:]:
            assert url in raw
            # the storage URL is served (here by the test API on 127.0.0.1, reachable from the site too)
            image = httpx.get(url)
            assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        # Only the featured image went into the media library: WordPress needs a media id for it.
        media = media_by_slug(wordpress, images)
        assert list(media) == [sha(images[0])]
        assert post["featured_media"] == media[sha(images[0])]["id"]
        # What readers get (WordPress's rendering) shows the images from storage.
        assert all(url in post["content"]["rendered"] for url in storage_urls[1:])
        article = client.get(f"/articles/{run['article_id']}").json()
        assert article["wp_post_id"] == post["id"]
    finally:
        admin_client.delete(f"/sites/{site['id']}")


def test_featured_image_named_by_a_directive(stack_env, client, wp_stack, wordpress):
    from app.core.db import session_scope
    from app.workflows import engine, intake

    images = [picture(51), picture(52), picture(53)]
    data = manuscript("Featured second", images=images, seed=51)
    with session_scope() as session:
        submission = intake.submit(
            session, data, "featured.docx", payload={"featured_image": "2"}, options={"featured_image": "2"}
        )
    engine.send(submission.run)
    run = wait_run(client, str(submission.run.id))
    assert run["state"] == "succeeded", run["error"]
    post = wp_get(wordpress, f"wp/v2/posts/{publish_step(run)['result']['post_id']}").json()
    media = media_by_slug(wordpress, images)
    assert post["featured_media"] == media[sha(images[1])]["id"]


def test_unicode_title_and_file_name(client, wp_stack, wordpress):
    title = "Ünïcödé — 北京 café ☕ «naïve»"
    images = [picture(61)]
    run, result, post = published(client, wordpress, manuscript(title, images=images, seed=61), "Résumé été 北京.docx")
    assert post["title"]["raw"] == title
    (item,) = media_by_slug(wordpress, images).values()
    assert post["featured_media"] == item["id"]
    # The image is named after the manuscript (WordPress's sanitize_file_name drops the accents only).
    assert item["title"]["raw"] == "Resume-ete-北京-1" and "/Resume-ete-北京-1.png" in item["source_url"]
    assert item["mime_type"] == "image/png"
    download = httpx.get(item["source_url"])
    assert download.status_code == 200 and download.content == images[0]


@pytest.mark.slow
def test_ten_megabyte_image(client, wp_stack, wordpress):
    big = noise_png(10.2, seed=71)
    assert len(big) > 10 * 1024 * 1024
    run, result, post = published(client, wordpress, manuscript("Big picture", images=[big], seed=71), "big.docx")
    (item,) = media_by_slug(wordpress, [big]).values()
    assert post["featured_media"] == item["id"]
    download = httpx.get(item["source_url"], timeout=60)
    assert download.status_code == 200 and sha(download.content) == sha(big)


# --- exactly once -----------------------------------------------------------------------------------


def test_answer_lost_after_wordpress_wrote_the_post_no_duplicate(client, wp_stack, wordpress):
    # WordPress creates the post, then its answer is replaced by a 500 (lost on the way back).
    wordpress.fail_next(1, status=500, method="POST", route="#^/wp/v2/posts$#", after=True)
    run, result, post = published(client, wordpress, manuscript("Lost answer", seed=81), "lost.docx")
    step = publish_step(run)
    assert wordpress.faults_served() == 1
    # The request was tried again; before creating again, the publisher found the post by its marker.
    assert step["attempts"] == 1 and result["retries"] >= 1
    assert result["created"] is False and result["recovered"] is True  # found by its marker, updated
    assert [p["id"] for p in posts_of(wordpress, run["document_id"])] == [post["id"]]


def test_wordpress_500_then_recovering(client, wp_stack, wordpress):
    from app.services.sites import env_wordpress_site, site_terms

    site_terms(env_wordpress_site())  # the editors' terms in the cache: the publish's requests alone below
    wordpress.reset()
    started = time.time()  # a request an earlier test left waiting in WordPress is logged when it ends
    wordpress.fail_next(2, status=500, message="Database is busy")
    tags = f"flaky-{uuid.uuid4().hex[:6]}, other-{uuid.uuid4().hex[:6]}"  # new to the site: looked up, then made
    body = submit(client, manuscript("Flaky site", images=[picture(91)], seed=91), "flaky.docx", tags=tags)
    run = wait_run(client, body["run"]["id"])
    requests = [(r["m"], r["route"], r["status"]) for r in wordpress.requests() if r["t"] >= started]
    assert run["state"] == "succeeded", run["error"]
    step = publish_step(run)
    assert wordpress.faults_served() == 2
    # The failing request was tried again (twice) and the publish went on: one step attempt.
    assert step["attempts"] == 1 and step["result"]["retries"] == 2
    assert len(posts_of(wordpress, run["document_id"])) == 1
    # Only the failing request was repeated, not the whole publish.
    assert requests[:2] == [("GET", "/wp/v2/users/me", 500)] * 2
    assert requests[2:] == [
        ("GET", "/wp/v2/users/me", 200),
        ("GET", "/wp/v2/posts", 200),  # the marker lookup: no post yet
        ("GET", "/wp/v2/tags", 200), ("POST", "/wp/v2/tags", 201),
        ("GET", "/wp/v2/tags", 200), ("POST", "/wp/v2/tags", 201),
        ("GET", "/wp/v2/media", 200),  # by content slug: not imported yet
        ("POST", "/wp/v2/media", 201),
        ("POST", "/wp/v2/posts", 201),
        ("POST", f"/wp/v2/media/{step['result']['media'].popitem()[1]}", 200),  # attached to the post
    ], requests


def test_rate_limited_waits_what_wordpress_asks(client, wp_stack, wordpress):
    # On the create itself: the first request of a run may be another (e.g. the categories, when a fresh
    # worker process has not cached them yet), which is retried where it is made.
    wordpress.fail_next(1, status=429, retry_after=3, message="Slow down", method="POST", route="#^/wp/v2/posts$#")
    run, result, post = published(client, wordpress, manuscript("Rate limited", seed=95), "slow.docx")
    step = publish_step(run)
    assert step["attempts"] == 1 and result["retries"] == 1
    limited = [r for r in wordpress.requests() if r["status"] == 429]
    retried = [r for r in wordpress.requests() if (r["m"], r["route"]) == (limited[0]["m"], limited[0]["route"])
               and r["status"] != 429]
    assert retried and retried[0]["t"] - limited[0]["t"] >= 3  # Retry-After honoured
    assert len(posts_of(wordpress, run["document_id"])) == 1


def test_step_failed_after_the_post_was_written_resume_updates_it(client, wp_stack, wordpress):
    wordpress.fail_next(
        1, status=400, method="POST", route="#^/wp/v2/posts$#", after=True,
        code="rest_invalid_param", message="Invalid parameter(s): status",
    )  # fmt: skip
    body = submit(client, manuscript("Resume me", seed=101), "resume.docx")
    run = wait_run(client, body["run"]["id"])
    step = publish_step(run)
    assert run["state"] == "failed" and step["attempts"] == 1  # a 400 is not retried
    assert "rest_invalid_param" in step["error"] and "Invalid parameter(s): status" in step["error"]
    written = posts_of(wordpress, run["document_id"])
    assert len(written) == 1  # WordPress did write it; Copydesk never heard of it

    assert client.post(f"/runs/{run['id']}/resume").status_code == 200
    run = wait_run(client, run["id"])
    assert run["state"] == "succeeded", run["error"]
    result = publish_step(run)["result"]
    assert result["post_id"] == written[0]["id"] and result["created"] is False
    assert [p["id"] for p in posts_of(wordpress, run["document_id"])] == [written[0]["id"]]
    assert client.get(f"/articles/{run['article_id']}").json()["wp_post_id"] == written[0]["id"]


def test_post_deleted_on_the_site_is_created_again_with_a_warning(client, wp_stack, wordpress):
    run, result, post = published(client, wordpress, manuscript("Deleted there", seed=111), "deleted.docx")
    with wordpress.client() as c:
        assert c.delete(f"wp/v2/posts/{post['id']}", params={"force": "true"}).status_code == 200

    second = wait_run(client, rerun(run["document_id"]))
    assert second["state"] == "succeeded", second["error"]
    again = publish_step(second)["result"]
    assert again["post_id"] != post["id"] and again["created"] is True
    assert any(f"Post {post['id']} no longer exists" in w and "new post was created" in w for w in second["warnings"])
    assert [p["id"] for p in posts_of(wordpress, run["document_id"])] == [again["post_id"]]
    assert client.get(f"/articles/{run['article_id']}").json()["wp_post_id"] == again["post_id"]


@pytest.mark.slow
def test_worker_killed_after_wordpress_answered_no_duplicate(client, wp_stack, wordpress):
    """SIGKILL the io worker while WordPress holds its answer to the create (the post is already
    written); the run, re-queued by the sweeper to a new worker, updates that post."""
    from tests.fixtures.stack import WorkerProcess

    wordpress.fail_next(1, status=0, method="POST", route="#^/wp/v2/posts$#", after=True, delay=30)
    body = submit(client, manuscript("Killed mid-publish", seed=121), "killed.docx")
    doc_id = body["document"]["id"]
    wait_until(lambda: len(posts_of(wordpress, doc_id)) == 1, timeout=90, interval=0.2,
               message="WordPress to write the post")  # fmt: skip
    workers = wp_stack["workers"]
    io = next(w for w in workers if w.name == "io")
    io.kill()
    run = client.get(f"/runs/{body['run']['id']}").json()
    assert publish_step(run)["state"] == "running" and run["state"] == "running"
    assert client.get(f"/articles/{run['article_id']}").json()["wp_post_id"] is None  # never committed

    replacement = WorkerProcess("io", "io", "threads", 4, wp_stack["env"], io.log_path.parent).start()
    workers[workers.index(io)] = replacement  # stopped with the stack
    wait_requeued(body["run"]["id"])
    run = wait_run(client, body["run"]["id"])
    assert run["state"] == "succeeded", run["error"]
    (only,) = posts_of(wordpress, doc_id)
    result = publish_step(run)["result"]
    assert result["post_id"] == only["id"] and result["created"] is False and result["recovered"] is True
    assert client.get(f"/articles/{run['article_id']}").json()["wp_post_id"] == only["id"]


# --- errors -----------------------------------------------------------------------------------------


def test_wrong_application_password_fails_at_once_and_is_never_shown(client, admin_client, wp_stack, wordpress):
    wrong = "Wrng " + " ".join(uuid.uuid4().hex[i : i + 4] for i in range(0, 20, 4))
    site = make_site(admin_client, wordpress, app_password=wrong)
    try:
        body = submit(client, manuscript("Wrong password", seed=131), "wrong.docx", site=site["name"])
        run = wait_run(client, body["run"]["id"])
        step = publish_step(run)
        assert run["state"] == "failed" and step["state"] == "failed"
        assert step["attempts"] == 1 and step["error_code"] == "auth_failed"  # not retried
        assert "application password" in step["error"].lower() and wordpress.user in step["error"]
        assert posts_of(wordpress, run["document_id"]) == []

        test = admin_client.post(f"/sites/{site['id']}/test").json()
        assert test["ok"] is False and test["error_code"] == "auth_failed"

        seen = [
            client.get(f"/runs/{run['id']}").text,
            admin_client.get("/sites").text,
            admin_client.get(f"/sites/{site['id']}").text,
            str(test),
            *(w.log() for w in wp_stack["workers"]),
        ]
        for text in seen:
            assert wrong not in text and wrong.replace(" ", "") not in text
    finally:
        admin_client.delete(f"/sites/{site['id']}")


def test_unknown_site_name_fails_with_the_known_names(client, wp_stack, wordpress):
    from app.core.db import session_scope
    from app.services.sites import ensure_env_site

    with session_scope() as session:  # the row WP_URL defines, as the first publish to it records it
        ensure_env_site(session)
    body = submit(client, manuscript("Nowhere", seed=141), "nowhere.docx", site="no-such-site")
    run = wait_run(client, body["run"]["id"])
    step = publish_step(run)
    assert run["state"] == "failed" and step["attempts"] == 1 and step["error_code"] == "not_found"
    assert "'no-such-site'" in step["error"] and "default" in step["error"]


def test_site_preview_forces_the_local_preview(client, wp_stack, wordpress):
    before = wordpress.count_posts()
    body = submit(client, manuscript("Preview anyway", seed=151), "preview.docx", site="preview")
    run = wait_run(client, body["run"]["id"])
    assert run["state"] == "succeeded", run["error"]
    assert publish_step(run)["result"]["publisher"] == "preview"
    article = client.get(f"/articles/{run['article_id']}").json()
    assert article["publisher"] == "preview" and httpx.get(article["preview_url"]).status_code == 200
    assert wordpress.count_posts() == before
