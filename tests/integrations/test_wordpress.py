"""The WordPress publisher against a real WordPress (tests/servers/wordpress.py).

Every assertion on the outcome reads the site back through its REST API (posts, media, terms), not
only what the publisher returned.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from PIL import Image

from app.core.errors import AuthenticationFailed, PermissionDenied
from app.integrations.wordpress import PostDraft, PostImage, WordPressPublisher, WordPressSite
from app.integrations.wordpress.content import marker_token, media_slug
from tests.support import require, wait_until

pytestmark = pytest.mark.wordpress


# --- helpers ------------------------------------------------------------------------------------


def make_image(seed: int, *, size=(640, 480), fmt="JPEG", filename="", alt="", caption="") -> PostImage:
    image = Image.new("RGB", size, ((seed * 67) % 256, (seed * 131) % 256, (seed * 29) % 256))
    for x in range(0, size[0], 16):  # a little structure so images differ beyond their colour
        image.putpixel((x, (x * seed) % size[1]), (255, 255, 255))
    buf = io.BytesIO()
    image.save(buf, fmt)
    return image_from_bytes(buf.getvalue(), fmt, filename=filename, alt=alt, caption=caption)


def image_from_bytes(data: bytes, fmt: str, *, filename="", alt="", caption="") -> PostImage:
    ext = {"JPEG": "jpg", "PNG": "png"}[fmt]
    key = f"media/{hashlib.sha256(data).hexdigest()}.{ext}"
    return PostImage(
        key=key,
        url=f"https://storage.test/{key}",
        content_type=f"image/{'jpeg' if ext == 'jpg' else ext}",
        alt=alt,
        caption=caption,
        filename=filename,
        data=data,
    )


def make_draft(images: list[PostImage] = (), **fields) -> PostDraft:
    blocks = ["<!-- wp:paragraph -->\n<p>An article body.</p>\n<!-- /wp:paragraph -->"]
    html = ["<p>An article body.</p>"]
    for image in images:
        caption = f"<figcaption>{image.caption}</figcaption>" if image.caption else ""
        blocks.append(
            '<!-- wp:image {"sizeSlug":"large","linkDestination":"none"} -->\n'
            f'<figure class="wp-block-image size-large"><img src="{image.url}" alt="{image.alt}"/>'
            f"{caption}</figure>\n"
            "<!-- /wp:image -->"
        )
        html.append(f'<figure><img src="{image.url}" alt="{image.alt}">{caption}</figure>')
    fields.setdefault("title", "An article")
    fields.setdefault("idempotency_key", f"doc-{uuid.uuid4().hex[:12]}")
    # The draft names its featured image (the publish step chooses it); here the first, as a rule.
    fields.setdefault("featured_image", images[0].key if images else None)
    return PostDraft(html="\n".join(html), blocks="\n\n".join(blocks), images=list(images), **fields)


def ids(values) -> str:
    return ",".join(
        map(str, values)
    )  # PHP keeps only the last of repeated query keys: WordPress takes lists as a,b,c


def rest(wordpress) -> httpx.Client:
    return wordpress.client()


def get_post(wordpress, post_id: int) -> dict:
    with rest(wordpress) as c:
        response = c.get(f"wp/v2/posts/{post_id}", params={"context": "edit"})
        response.raise_for_status()
        return response.json()


def get_media(wordpress, media_id: int) -> dict:
    with rest(wordpress) as c:
        response = c.get(f"wp/v2/media/{media_id}", params={"context": "edit"})
        response.raise_for_status()
        return response.json()


def posts_with_marker(wordpress, draft: PostDraft) -> list[dict]:
    token = marker_token(draft.idempotency_key)
    return [p for p in wordpress.posts(search=token) if token in p["content"]["raw"]]


def requests_to(wordpress, method: str, route: str) -> list[dict]:
    return [r for r in wordpress.requests() if r["m"] == method and r["route"] == route]


@pytest.fixture
def publisher(wordpress_site):
    with WordPressPublisher(wordpress_site) as pub:
        yield pub


# --- publishing ---------------------------------------------------------------------------------


def test_full_publish_with_images(wordpress, publisher):
    images = [
        make_image(i, alt=f"Alt {i}", caption=f"Caption {i}", filename=f"photo-{i}.jpg") for i in range(3)
    ]
    draft = make_draft(
        images,
        title="Full publish",
        excerpt="A short excerpt.",
        slug="full-publish",
        status="publish",
        categories=["Reports"],
        tags=["alpha", "beta"],
    )
    result = publisher.publish(draft)

    assert result.created and result.status == "publish" and not result.warnings
    post = get_post(wordpress, result.post_id)
    assert post["status"] == "publish" and post["slug"] == "full-publish"
    assert post["title"]["raw"] == "Full publish" and post["excerpt"]["raw"] == "A short excerpt."
    assert post["link"] == result.url and result.url.endswith("/full-publish/")
    raw = post["content"]["raw"]
    assert "storage.test" not in raw  # every body image now points at the media library
    assert set(result.media) == {image.key for image in images}
    for image in images:
        media_id = result.media[image.key]
        media = get_media(wordpress, media_id)
        assert media["alt_text"] == image.alt and media["caption"]["raw"] == image.caption
        assert media["mime_type"] == "image/jpeg" and media["media_type"] == "image"
        assert media["post"] == result.post_id  # attached to its post in the media library
        with httpx.Client() as c:  # the file is really served by the site
            assert c.get(media["source_url"]).content == image.data
    assert sorted(result.attached) == sorted(result.media.values())
    assert post["featured_media"] == result.media[images[0].key] == result.featured_media
    # The featured image is shown by themes above the post: it left the body, caption and all.
    featured = get_media(wordpress, result.featured_media)
    assert featured["source_url"] not in raw and "Caption 0" not in raw and "storage.test" not in raw
    for image in images[1:]:
        media_id = result.media[image.key]
        assert f'<!-- wp:image {{"id":{media_id},' in raw and f'class="wp-image-{media_id}"' in raw
        assert f'src="{get_media(wordpress, media_id)["source_url"]}"' in raw
    with rest(wordpress) as c:
        assert [
            t["name"] for t in c.get("wp/v2/categories", params={"include": ids(post["categories"])}).json()
        ] == ["Reports"]
        assert sorted(
            t["name"] for t in c.get("wp/v2/tags", params={"include": ids(post["tags"])}).json()
        ) == ["alpha", "beta"]
        rendered = c.get(f"wp/v2/posts/{result.post_id}").json()["content"]["rendered"]
    assert "wp-image-" in rendered and marker_token(draft.idempotency_key) in raw
    assert len(posts_with_marker(wordpress, draft)) == 1


def test_classic_html_body(wordpress, wordpress_site):
    images = [make_image(10, alt="Featured", caption="Lead photo"), make_image(11, alt="Classic")]
    site = replace(wordpress_site, body_format="html")
    with WordPressPublisher(site) as pub:
        result = pub.publish(make_draft(images, title="Classic body"))
    raw = get_post(wordpress, result.post_id)["content"]["raw"]
    media_id = result.media[images[1].key]
    assert "<!-- wp:" not in raw and f'class="wp-image-{media_id}"' in raw
    assert get_media(wordpress, media_id)["source_url"] in raw and "storage.test" not in raw
    # the featured image's figure left the body (its caption is the media item's)
    assert "Lead photo" not in raw and f"wp-image-{result.featured_media}" not in raw


def test_featured_image_stays_in_the_body_when_the_site_says_so(wordpress, wordpress_site):
    images = [make_image(15, caption="Kept caption"), make_image(16)]
    site = replace(wordpress_site, featured_image_in_body=True)
    with WordPressPublisher(site) as pub:
        result = pub.publish(make_draft(images, title="Featured twice"))
    raw = get_post(wordpress, result.post_id)["content"]["raw"]
    assert result.featured_media == result.media[images[0].key]
    for image in images:
        assert f'<!-- wp:image {{"id":{result.media[image.key]},' in raw
    assert "Kept caption" in raw


def test_new_and_existing_categories_and_tags(wordpress, publisher):
    with rest(wordpress) as c:
        existing_cat = c.post("wp/v2/categories", json={"name": "Politics"}).json()["id"]
        existing_tag = c.post("wp/v2/tags", json={"name": "Culture & Arts"}).json()["id"]  # stored as &amp;
    wordpress.reset()
    draft = make_draft(
        categories=["politics", "Brand New Section"], tags=["CULTURE & ARTS", "fresh tag", "fresh tag"]
    )
    result = publisher.publish(draft)

    post = get_post(wordpress, result.post_id)
    assert existing_cat in post["categories"] and existing_tag in post["tags"]
    with rest(wordpress) as c:
        cats = {t["id"]: t["name"] for t in c.get("wp/v2/categories", params={"per_page": 100}).json()}
        tags = {t["id"]: t["name"] for t in c.get("wp/v2/tags", params={"per_page": 100}).json()}
    assert sorted(cats[i] for i in post["categories"]) == ["Brand New Section", "Politics"]
    assert sorted(tags[i] for i in post["tags"]) == ["Culture &amp; Arts", "fresh tag"]
    assert list(cats.values()).count("Politics") == 1 and list(tags.values()).count("Culture &amp; Arts") == 1
    # the existing tag with an entity was missed by WordPress's search and came back as term_exists
    assert [r["status"] for r in requests_to(wordpress, "POST", "/wp/v2/tags")] == [400, 201]


def tag_count(wordpress) -> int:
    with rest(wordpress) as c:
        return int(c.get("wp/v2/tags", params={"per_page": 1}).headers["X-WP-Total"])


@pytest.mark.parametrize(
    ("policy", "origin", "created"),
    [
        ("sender_and_llm", "offline", False),  # the default: the offline editor's guesses are not kept
        ("sender_and_llm", "llm", True),
        ("sender_and_llm", "sender", True),
        ("sender", "llm", False),
        ("never", "sender", False),
        ("always", "offline", True),
    ],
)
def test_new_terms_only_when_the_site_allows_them(wordpress, wordpress_site, policy, origin, created):
    existing = f"Harbour {uuid.uuid4().hex[:6]}"
    with rest(wordpress) as c:
        existing_id = c.post("wp/v2/tags", json={"name": existing}).json()["id"]
    new_tag, new_category = f"Invented {uuid.uuid4().hex[:6]}", f"Section {uuid.uuid4().hex[:6]}"
    before = tag_count(wordpress)
    site = replace(wordpress_site, create_terms=policy)
    draft = make_draft(
        tags=[existing.upper(), new_tag], categories=[new_category], tags_from=origin, categories_from=origin
    )
    with WordPressPublisher(site) as pub:
        result = pub.publish(draft)

    post = get_post(wordpress, result.post_id)
    assert existing_id in post["tags"]  # an existing term is always used
    assert tag_count(wordpress) == before + created
    if created:
        assert len(post["tags"]) == 2 and result.terms_created == [f"categories:{new_category}", f"tags:{new_tag}"]
        assert result.terms_left_out == [] and not result.warnings
    else:
        assert post["tags"] == [existing_id] and post["categories"] == [1]  # WordPress's own default
        assert result.terms_created == [] and result.terms_left_out == [f"categories:{new_category}", f"tags:{new_tag}"]
        (categories, tags) = result.warnings
        assert categories.startswith("Categories not on") and repr(new_category) in categories
        assert tags.startswith("Tags not on") and repr(new_tag) in tags and f"create_terms {policy!r}" in tags


def test_default_category_and_status_from_the_site(wordpress, wordpress_site):
    site = replace(wordpress_site, default_category="Inbox", default_status="pending")
    with WordPressPublisher(site) as pub:
        result = pub.publish(make_draft(title="Defaults"))
    post = get_post(wordpress, result.post_id)
    assert post["status"] == "pending"
    with rest(wordpress) as c:
        assert [
            t["name"] for t in c.get("wp/v2/categories", params={"include": ids(post["categories"])}).json()
        ] == ["Inbox"]


def test_featured_image_named_by_the_draft(wordpress, publisher):
    images = [make_image(20 + i) for i in range(3)]
    result = publisher.publish(make_draft(images, featured_image=images[2].key))
    assert get_post(wordpress, result.post_id)["featured_media"] == result.media[images[2].key]


def test_featured_image_imported_even_when_the_site_keeps_storage_urls(wordpress, wordpress_site):
    images = [make_image(30 + i) for i in range(2)]
    site = replace(wordpress_site, import_images=False)
    with WordPressPublisher(site) as pub:
        result = pub.publish(make_draft(images))
    post = get_post(wordpress, result.post_id)
    assert set(result.media) == {images[0].key}  # only the featured image went to the library
    assert post["featured_media"] == result.media[images[0].key]
    assert images[0].url not in post["content"]["raw"]  # featured: above the post, not in it as well
    assert images[1].url in post["content"]["raw"]
    assert len(requests_to(wordpress, "POST", "/wp/v2/media")) == 1
    assert get_media(wordpress, result.featured_media)["post"] == result.post_id


def test_scheduled_post(wordpress, publisher):
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    result = publisher.publish(make_draft(title="Later", status="future", date=when))
    post = get_post(wordpress, result.post_id)
    assert result.status == post["status"] == "future"
    assert post["date_gmt"] == when.replace(tzinfo=None).isoformat()


def test_scheduled_in_the_past_is_published_with_a_warning(wordpress, publisher):
    result = publisher.publish(make_draft(status="future", date=datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)))
    assert get_post(wordpress, result.post_id)["status"] == "publish"
    assert any("in the past" in w for w in result.warnings)


def test_image_without_bytes_is_fetched_from_storage(wordpress, publisher):
    image = make_image(95, filename="fetched.jpg")
    served = (
        wordpress.site_dir / "storage-test" / image.key.rsplit("/", 1)[-1]
    )  # php -S serves it as storage would
    served.parent.mkdir(exist_ok=True)
    served.write_bytes(image.data)
    image = replace(image, url=f"{wordpress.url}/storage-test/{served.name}", data=None)
    result = publisher.publish(make_draft([image]))
    media = get_media(wordpress, result.media[image.key])
    with httpx.Client() as c:
        assert c.get(media["source_url"]).content == served.read_bytes()


# --- exactly once -------------------------------------------------------------------------------


def test_update_on_rerun(wordpress, publisher):
    images = [make_image(40 + i) for i in range(3)]
    draft = make_draft(images, title="First title", status="draft", tags=["one"])
    first = publisher.publish(draft)
    uploads = len(requests_to(wordpress, "POST", "/wp/v2/media"))

    second = publisher.publish(
        replace(draft, title="Second title", status="publish", tags=["two"]), existing_post_id=first.post_id
    )

    assert second.post_id == first.post_id and not second.created and not second.recovered
    assert second.media == first.media
    assert len(requests_to(wordpress, "POST", "/wp/v2/media")) == uploads == 3  # images not uploaded twice
    # attached once, by the first publish; the update finds them attached and sends nothing
    assert sorted(first.attached) == sorted(first.media.values()) and second.attached == []
    attaching = [r for r in wordpress.requests() if r["m"] == "POST" and r["route"].startswith("/wp/v2/media/")]
    assert len(attaching) == 3
    post = get_post(wordpress, first.post_id)
    assert post["title"]["raw"] == "Second title" and post["status"] == "publish"
    with rest(wordpress) as c:
        assert [t["name"] for t in c.get("wp/v2/tags", params={"include": ids(post["tags"])}).json()] == [
            "two"
        ]
    assert len(posts_with_marker(wordpress, draft)) == 1


def test_no_duplicate_after_a_crash_between_the_answer_and_our_commit(wordpress, publisher, wordpress_site):
    draft = make_draft([make_image(50)], title="Crash")
    lost = publisher.publish(draft)  # WordPress created the post; the worker died before recording the id

    with WordPressPublisher(wordpress_site) as fresh_worker:  # the redelivered task, in another process
        again = fresh_worker.publish(replace(draft, title="Crash, retried"), existing_post_id=None)

    assert again.post_id == lost.post_id and not again.created and again.recovered
    assert again.media == lost.media
    assert [p["id"] for p in posts_with_marker(wordpress, draft)] == [lost.post_id]
    assert get_post(wordpress, lost.post_id)["title"]["raw"] == "Crash, retried"


def test_answer_lost_after_wordpress_wrote_the_post(wordpress, publisher):
    # WordPress creates the post, then the answer turns into a 500 (as a proxy timeout would):
    # the retry must find the post rather than create a second one.
    wordpress.fail_next(1, status=500, method="POST", route="#^/wp/v2/posts$#", after=True)
    draft = make_draft(title="Lost answer")
    result = publisher.publish(draft)

    assert wordpress.faults_served() == 1 and result.retries == 1 and result.recovered
    assert [p["id"] for p in posts_with_marker(wordpress, draft)] == [result.post_id]
    assert [r["status"] for r in requests_to(wordpress, "POST", "/wp/v2/posts")] == [500]  # then an update


def test_upload_answer_lost_does_not_duplicate_the_media(wordpress, publisher):
    wordpress.fail_next(1, status=502, method="POST", route="#^/wp/v2/media$#", after=True)
    image = make_image(55)
    result = publisher.publish(make_draft([image]))
    assert result.retries == 1
    with rest(wordpress) as c:
        same = c.get("wp/v2/media", params={"slug": media_slug(image.key)}).json()
    assert [m["id"] for m in same] == [result.media[image.key]]


def test_post_deleted_on_the_site_gives_a_new_post_and_a_warning(wordpress, publisher):
    draft = make_draft(title="Deleted")
    first = publisher.publish(draft)
    with rest(wordpress) as c:
        assert c.delete(f"wp/v2/posts/{first.post_id}", params={"force": "true"}).status_code == 200

    again = publisher.publish(draft, existing_post_id=first.post_id)

    assert again.created and again.post_id != first.post_id
    assert any(str(first.post_id) in w and "deleted" in w for w in again.warnings)
    assert [p["id"] for p in posts_with_marker(wordpress, draft)] == [again.post_id]


def test_post_in_the_trash_is_restored_and_updated(wordpress, publisher):
    draft = make_draft(title="Trashed", slug="trashed-post", status="publish")
    first = publisher.publish(draft)
    with rest(wordpress) as c:
        assert c.delete(f"wp/v2/posts/{first.post_id}").json()["status"] == "trash"

    again = publisher.publish(replace(draft, slug="trashed-post-again"), existing_post_id=first.post_id)

    assert again.post_id == first.post_id and not again.created
    assert any("trash" in w for w in again.warnings)
    post = get_post(wordpress, first.post_id)
    assert post["status"] == "publish" and post["slug"] == "trashed-post-again"


def test_media_attached_to_the_first_post_that_uses_them(wordpress, publisher):
    shared = make_image(65)
    first = publisher.publish(make_draft([shared, make_image(66)], title="First user"))
    # an image imported before media were attached (post 0) is attached by the next publish
    with rest(wordpress) as c:
        c.post(f"wp/v2/media/{first.media[shared.key]}", json={"post": 0}).raise_for_status()
    second = publisher.publish(make_draft([shared], title="Second user"))
    assert second.attached == [first.media[shared.key]]
    assert get_media(wordpress, first.media[shared.key])["post"] == second.post_id
    # attached to a post already: another post that shows it leaves it there
    third = publisher.publish(make_draft([shared], title="Third user"))
    assert third.attached == [] and get_media(wordpress, first.media[shared.key])["post"] == second.post_id


def test_media_index_hook(wordpress, wordpress_site):
    shared = make_image(60)
    index: dict[str, int] = {}
    with WordPressPublisher(wordpress_site, media_index=index) as pub:
        first = pub.publish(make_draft([shared, make_image(61)]))
        assert index == first.media
        second = pub.publish(make_draft([shared]))  # another article with the same image
        assert second.media[shared.key] == first.media[shared.key]
        assert len(requests_to(wordpress, "POST", "/wp/v2/media")) == 2

        with rest(wordpress) as c:  # someone deletes it from the library: imported again
            c.delete(f"wp/v2/media/{first.media[shared.key]}", params={"force": "true"}).raise_for_status()
        third = pub.publish(make_draft([shared]))
    assert third.media[shared.key] != first.media[shared.key] == second.media[shared.key]
    assert index[shared.key] == third.media[shared.key]
    assert get_post(wordpress, third.post_id)["featured_media"] == third.media[shared.key]


# --- errors -------------------------------------------------------------------------------------


def test_wrong_password_fails_at_once(wordpress, wordpress_site):
    site = replace(wordpress_site, app_password="abcd EFGH ijkl MNOP qrst UVWX")
    with WordPressPublisher(site) as pub, pytest.raises(AuthenticationFailed) as info:
        pub.publish(make_draft(title="Never"))
    error = info.value
    assert error.details["status"] == 401 and error.details["wordpress_code"] and not error.transient
    assert "application password" in error.message and wordpress_site.app_password not in error.message
    assert [r["status"] for r in wordpress.requests() if r["route"] != "/"] == [401]  # no retry


def test_application_passwords_refused_by_the_site(wordpress, wordpress_site):
    wordpress.set_app_passwords_available(False)  # as WordPress does over plain HTTP on a non-local site
    with WordPressPublisher(wordpress_site) as pub, pytest.raises(AuthenticationFailed) as info:
        pub.publish(make_draft(title="Never"))
    assert "does not accept application passwords" in info.value.message and "HTTPS" in info.value.message


def test_a_role_without_the_capability_is_permission_denied(wordpress, wordpress_site):
    out = wordpress.php(
        "$id = wp_insert_user(['user_login' => 'contrib', 'user_pass' => wp_generate_password(),"
        " 'role' => 'contributor']);"
        "[$pw] = WP_Application_Passwords::create_new_application_password($id, ['name' => 't']); echo $pw;"
    )
    site = replace(wordpress_site, user="contrib", app_password=out.strip())
    with WordPressPublisher(site) as pub, pytest.raises(PermissionDenied) as info:
        pub.publish(make_draft(title="Not allowed", status="publish"))
    assert info.value.details["status"] == 403 and "rest_cannot_publish" in info.value.message


def test_wordpress_answering_500_then_recovering(wordpress, publisher):
    wordpress.fail_next(3, status=500, route="#^/wp/v2/#")  # every kind of request, whatever comes next
    draft = make_draft([make_image(70)], title="Recovered")
    result = publisher.publish(draft)

    assert wordpress.faults_served() == 3 and result.retries == 3
    assert [p["id"] for p in posts_with_marker(wordpress, draft)] == [result.post_id]
    assert get_post(wordpress, result.post_id)["featured_media"] == result.media[draft.images[0].key]


def test_429_with_retry_after_is_honoured(wordpress, publisher):
    wordpress.fail_next(1, status=429, retry_after=1, method="POST", route="#^/wp/v2/posts$#")
    draft = make_draft(title="Rate limited")
    result = publisher.publish(draft)
    assert result.retries == 1 and wordpress.faults_served() == 1
    # The site saw the retry no sooner than it had asked for.
    refused, retried = [r for r in wordpress.requests() if r["m"] == "POST" and r["route"] == "/wp/v2/posts"][:2]
    assert refused["status"] == 429 and retried["t"] - refused["t"] >= 1.0
    assert [p["id"] for p in posts_with_marker(wordpress, draft)] == [result.post_id]


# --- content ------------------------------------------------------------------------------------


def test_unicode_titles_and_file_names(wordpress, publisher):
    images = [make_image(80, filename="été photo 東京.jpg", alt="Tour à Zürich", caption="Légende — 東京 🚀")]
    title = "Été à Zürich — 東京の夏 🚀"
    result = publisher.publish(
        make_draft(images, title=title, tags=["Ünïcödé"], categories=["Actualités"], status="publish")
    )
    post = get_post(wordpress, result.post_id)
    assert post["title"]["raw"] == title
    media = get_media(wordpress, result.media[images[0].key])
    assert media["source_url"].endswith(".jpg") and "東京" in media["source_url"]
    assert media["alt_text"] == "Tour à Zürich" and media["caption"]["raw"] == "Légende — 東京 🚀"
    with httpx.Client() as c:
        assert c.get(media["source_url"]).content == images[0].data
        assert c.get(result.url).status_code == 200  # the pretty permalink with a unicode slug resolves


@pytest.mark.slow
def test_a_10_mb_image(wordpress, publisher):
    side = 1880  # random noise does not compress: 1880² × 3 bytes ≈ 10.6 MB of PNG
    noise = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    noise.save(buf, "PNG", compress_level=0)
    image = image_from_bytes(buf.getvalue(), "PNG", filename="big.png")
    assert len(image.data) >= 10 * 1024 * 1024

    result = publisher.publish(make_draft([image], title="Big image"))

    media = get_media(wordpress, result.media[image.key])
    with httpx.Client(timeout=60) as c:
        served = c.get(media["source_url"]).content
    assert hashlib.sha256(served).hexdigest() == hashlib.sha256(image.data).hexdigest()
    assert media["media_details"]["width"] == side and "medium" in media["media_details"]["sizes"]
    assert get_post(wordpress, result.post_id)["featured_media"] == media["id"]


def test_site_on_plain_permalinks(wordpress, publisher):
    wordpress.php(
        "global $wp_rewrite; $wp_rewrite->set_permalink_structure(''); $wp_rewrite->flush_rules(false);"
    )
    try:
        result = publisher.publish(make_draft(title="Plain permalinks"))
        assert publisher.client.rest_route_mode
        assert publisher.client.get_post(result.post_id)["title"]["raw"] == "Plain permalinks"
    finally:
        wordpress.php(
            f"global $wp_rewrite; $wp_rewrite->set_permalink_structure({wordpress.permalinks!r});"
            "$wp_rewrite->flush_rules(false);"
        )


@pytest.mark.parametrize("database", ["shared", "private"])
def test_server_teardown_leaves_nothing(wordpress, database):
    import shutil

    from tests.servers.wordpress import SHARED_DB, WordPressServer, _port_open

    if database == "private":
        require(shutil.which("mariadbd") is not None, "mariadbd (the private-database fallback)",
                "install the Debian package mariadb-server-core")
    else:
        require(_port_open(*SHARED_DB), "MariaDB on 127.0.0.1:3306", "start mariadbd (.ci/run does)")
    with WordPressServer(workers=2, database=database) as other:
        processes, state, db = other.processes(), other.dir, other.db_name
        assert len(processes) == (3 if database == "shared" else 4)  # php -S, its two workers (+ mariadbd)
        with httpx.Client() as c:
            assert c.get(other.rest_url).status_code == 200
        with WordPressPublisher(
            WordPressSite(url=other.url, user=other.user, app_password=other.app_password)
        ) as pub:
            result = pub.publish(make_draft([make_image(90)], status="publish"))
        assert other.count_posts() == 1 and result.media
    wait_until(lambda: not [pid for pid in processes if _alive(pid)], timeout=30,
               message=lambda: f"the stopped server's processes to exit (alive: {[p for p in processes if _alive(p)]})")
    assert not state.exists()
    assert db not in wordpress.php("echo implode(',', $wpdb->get_col('SHOW DATABASES'));")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
