"""Pure parts of the WordPress publisher: body rewriting, markers, file names, settings, error texts.

No WordPress needed (httpx.MockTransport stands in where an answer is needed); the real-site tests
are in test_wordpress.py.
"""

from __future__ import annotations

import json

import httpx
import pytest

from app.core.errors import (
    AuthenticationFailed,
    ConfigurationError,
    RateLimited,
    RemoteError,
    ServiceUnavailable,
)
from app.integrations.wordpress import PostImage, WordPressClient, WordPressSite
from app.integrations.wordpress.client import parse_retry_after
from app.integrations.wordpress.content import (
    MediaRef,
    has_marker,
    marker_token,
    media_slug,
    remove_image,
    rewrite_images,
    with_marker,
)
from app.integrations.wordpress.publisher import upload_filename
from tests.fixtures.wordpress import site_from_env

URL = "https://storage.test/media/ab/abc.png?x=1&y=2"
MEDIA = {URL: MediaRef(42, "https://site.test/wp-content/uploads/2026/01/photo.png")}


def test_block_image_gets_media_id_url_and_class():
    body = (
        '<!-- wp:image {"sizeSlug":"large","linkDestination":"none"} -->\n'
        f'<figure class="wp-block-image size-large"><img src="{URL.replace("&", "&amp;")}" alt="A"/>'
        "<figcaption>Cap</figcaption></figure>\n<!-- /wp:image -->"
    )
    out = rewrite_images(body, MEDIA)
    assert out.startswith('<!-- wp:image {"id":42,"sizeSlug":"large","linkDestination":"none"} -->')
    assert (
        '<img src="https://site.test/wp-content/uploads/2026/01/photo.png" alt="A" class="wp-image-42"/>'
        in out
    )
    assert "storage.test" not in out
    assert out.endswith("<!-- /wp:image -->")


def test_the_featured_image_leaves_the_body_in_every_form():
    other = "https://storage.test/media/other.png"
    blocks = (
        "<!-- wp:paragraph -->\n<p>Lead.</p>\n<!-- /wp:paragraph -->\n\n"
        f'<!-- wp:image {{"sizeSlug":"large"}} -->\n<figure class="wp-block-image"><img src="{URL.replace("&", "&amp;")}" '
        'alt="A"/><figcaption>Cap</figcaption></figure>\n<!-- /wp:image -->\n\n'
        f'<!-- wp:image -->\n<figure class="wp-block-image"><img src="{other}"/></figure>\n<!-- /wp:image -->'
    )
    out = remove_image(blocks, URL)
    assert "Cap" not in out and "abc.png" not in out and other in out and "<p>Lead.</p>" in out
    assert out.count("<!-- wp:image") == 1 and "\n\n\n" not in out
    html = (
        f'<p>Lead.</p><figure><img src="{URL}"><figcaption>Cap</figcaption></figure>'
        f'<p><img src="{URL}"></p><p>Text <img src="{URL}"> around.</p><figure><img src="{other}"></figure>'
    )
    assert remove_image(html, URL) == f'<p>Lead.</p><p>Text  around.</p><figure><img src="{other}"></figure>'
    assert remove_image(html, "https://storage.test/elsewhere.png") == html  # not there: untouched


def test_block_without_attributes_and_existing_id_replaced():
    body = (
        "<!-- wp:image -->\n"
        f'<figure class="wp-block-image"><img src="{URL}" class="old wp-image-7"/></figure>\n'
        "<!-- /wp:image -->"
    )
    out = rewrite_images(body, MEDIA)
    assert out.startswith('<!-- wp:image {"id":42} -->')
    assert 'class="old wp-image-42"' in out


def test_classic_html_images_and_links():
    body = f"<p>x</p><figure><a href='{URL}'><img alt='A' src='{URL}'></a></figure><img src=\"https://other.test/a.png\">"
    out = rewrite_images(body, MEDIA)
    assert "<a href='https://site.test/wp-content/uploads/2026/01/photo.png'>" in out
    assert (
        "<img alt='A' src='https://site.test/wp-content/uploads/2026/01/photo.png' class=\"wp-image-42\">"
        in out
    )
    assert '<img src="https://other.test/a.png">' in out  # not ours: untouched


def test_block_attributes_are_escaped_like_wordpress():
    body = (
        '<!-- wp:image {"alt":"a -- <b>"} -->\n<figure><img src="' + URL + '"/></figure>\n<!-- /wp:image -->'
    )
    out = rewrite_images(body, MEDIA)
    head = out.split("-->", 1)[0]
    assert "\\u002d\\u002d" in head and "\\u003cb\\u003e" in head
    attrs = json.loads(head[len("<!-- wp:image ") :].strip())
    assert attrs == {"id": 42, "alt": "a -- <b>"}


def test_marker():
    token = marker_token("doc-123")
    assert token == "copydesk:post:doc-123"
    body = with_marker("<p>x</p>", token)
    assert has_marker(body, token) and not has_marker(body, marker_token("doc-12"))
    # keys WordPress's search would split (spaces, quotes, commas) are hashed into one term
    odd = marker_token('a key, with "spaces"')
    assert " " not in odd and "," not in odd and odd == marker_token('a key, with "spaces"')


def test_media_slug_from_content_key():
    key = "media/ab/" + "ab" * 32 + ".png"
    assert media_slug(key) == "copydesk-" + "ab" * 16
    assert (
        media_slug("not-a-hash.png").startswith("copydesk-") and len(media_slug("x")) == len("copydesk-") + 32
    )


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("été photo 東京.png", "image/png", "été photo 東京.png"),
        ('we"ird\\na/me.jpeg', "image/jpeg", "weirdname.jpeg"),
        ("", "image/jpeg", "k.jpg"),
        ("photo", "image/webp", "photo.webp"),
        ("photo.png", "image/jpeg", "photo.png.jpg"),
    ],
)
def test_upload_filename(filename, content_type, expected):
    image = PostImage(key="media/k", url="", content_type=content_type, filename=filename)
    assert upload_filename(image) == expected


def test_site_settings():
    site = WordPressSite(url="https://news.example.org/", user="u", app_password="abcd efgh")
    assert site.url == "https://news.example.org" and not site.is_local and site.uses_https
    assert "abcd" not in repr(site)
    assert WordPressSite(url="http://127.0.0.1:8080", user="u", app_password="p").is_local
    with pytest.raises(ConfigurationError):
        WordPressSite(url="news.example.org", user="u", app_password="p")
    with pytest.raises(ConfigurationError):
        WordPressSite(url="https://x.org", user="u", app_password="p", body_format="markdown")
    env = {
        "WP_URL": "https://x.org",
        "WP_USER": "u",
        "WP_APP_PASSWORD": "p",
        "WP_IMPORT_IMAGES": "no",
        "WP_BODY_FORMAT": "html",
    }
    site = site_from_env(env)
    assert site is not None and site.import_images is False and site.body_format == "html"
    assert site_from_env({}) is None


def test_retry_after_parsing():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert 0 <= parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") <= 1  # a date in the past: now


def _client(handler, url="http://news.example.org", **kw) -> WordPressClient:
    site = WordPressSite(url=url, user="editor", app_password="p", backoff=0.01, attempts=3, **kw)
    return WordPressClient(site, transport=httpx.MockTransport(handler))


def _wp_error(status, code, message, headers=None):
    return httpx.Response(
        status, json={"code": code, "message": message, "data": {"status": status}}, headers=headers
    )


def test_401_over_plain_http_on_a_public_site_says_why():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/wp-json/":
            return httpx.Response(200, json={"authentication": []})  # no application-passwords: refused here
        return _wp_error(
            401, "rest_cannot_create", "Sorry, you are not allowed to create posts as this user."
        )

    with _client(handler) as client, pytest.raises(AuthenticationFailed) as info:
        client.json("POST", "wp/v2/posts", json={})
    message = info.value.message
    assert "rest_cannot_create" in message and "plain HTTP" in message and "https://" in message
    assert info.value.details["status"] == 401 and not info.value.transient


def test_401_with_application_passwords_available_blames_the_password():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/wp-json/":
            return httpx.Response(200, json={"authentication": {"application-passwords": {}}})
        return _wp_error(
            401, "incorrect_password", "The provided password is an invalid application password."
        )

    with (
        _client(handler, url="https://news.example.org") as client,
        pytest.raises(AuthenticationFailed) as info,
    ):
        client.json("GET", "wp/v2/users/me")
    assert "incorrect_password" in info.value.message and "application password" in info.value.message
    assert calls == ["/wp-json/wp/v2/users/me", "/wp-json/"]  # no retry


def test_429_and_5xx_are_retried_then_raised_with_wordpress_words():
    statuses = iter([429, 503, 502])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        return _wp_error(
            status, f"code_{status}", "busy", headers={"Retry-After": "0"} if status == 429 else None
        )

    client = _client(handler)
    with pytest.raises(ServiceUnavailable) as info:
        client.json("GET", "wp/v2/posts")
    assert client.retries == 2 and "code_502" in info.value.message


def test_retry_after_beyond_the_limit_is_left_to_the_caller():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return _wp_error(429, "too_many", "slow down", headers={"Retry-After": "3600"})

    with _client(handler) as client, pytest.raises(RateLimited) as info:
        client.json("GET", "wp/v2/posts")
    assert info.value.retry_after == 3600 and len(calls) == 1


def test_html_answer_is_a_clear_error():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>Just a moment…</html>", headers={"content-type": "text/html"})

    with _client(handler) as client, pytest.raises(RemoteError) as info:
        client.json("GET", "wp/v2/posts")
    assert "not JSON" in info.value.message


def test_network_failures_are_typed_and_retried():
    from app.core.errors import ConnectionFailed, TimedOut

    for exc, kind in (
        (httpx.ReadTimeout("slow"), TimedOut),
        (httpx.ConnectError("refused"), ConnectionFailed),
    ):
        calls = []

        def handler(request: httpx.Request, exc=exc, calls=calls) -> httpx.Response:
            calls.append(1)
            raise exc

        client = _client(handler)
        with pytest.raises(kind) as info:
            client.json("GET", "wp/v2/posts")
        assert info.value.transient and len(calls) == 3 and client.retries == 2
