"""The edited article (HTML) as block markup, for a site that wants blocks: read back into the document
model and written by the converter's block writer, so the edit keeps the converter's structure."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from app.documents import word_to_article, from_html, image_placeholder, resolve_images
from app.integrations.wordpress.content import MediaRef, rewrite_images
from tests.documents.builders import structured_manuscript
from tests.support import wait_run
from tests.wordpress.conftest import picture, posts_of, wp_get

URL = "https://cdn.example/a.png"
KEY = "ab" * 32 + ".png"


def names(blocks: str) -> list[str]:
    return re.findall(r"<!-- wp:([a-z-]+)", blocks)


def test_edited_html_becomes_the_blocks_of_every_part():
    html = (
        '<h2>Section</h2><p>Text &amp; <strong>bold</strong> <a href="https://example.org/?a=1&amp;b=2">link</a></p>'
        "<ul><li>one<ul><li>nested</li></ul></li><li>two</li></ul>"
        '<ol start="3"><li>three</li></ol>'
        f'<figure><img src="{URL}" alt="An alt" width="10" height="5"><figcaption>Cap</figcaption></figure>'
        "<table><tbody><tr><td>1</td><td>2</td></tr></tbody></table>"
        "<blockquote><p>Quoted</p></blockquote><pre><code>x &lt; y</code></pre>"
        '<section class="footnotes"><ol><li id="fn-1"><p>Note</p></li></ol></section>'
    )
    body = from_html(html, image_keys={URL: KEY})
    blocks = resolve_images(body.blocks, {KEY: URL})
    assert names(blocks) == [
        "heading", "paragraph", "list", "list-item", "list", "list-item", "list-item", "list", "list-item",
        "image", "table", "quote", "paragraph", "code", "footnotes",
    ]  # fmt: skip
    assert '<h2 class="wp-block-heading">Section</h2>' in blocks
    assert "Text &amp; <strong>bold</strong>" in blocks and 'href="https://example.org/?a=1&amp;b=2"' in blocks
    assert '<!-- wp:list {"ordered":true,"start":3} -->' in blocks
    assert f'<figure class="wp-block-image"><img src="{URL}" alt="An alt">' in blocks
    assert '<figcaption class="wp-element-caption">Cap</figcaption>' in blocks
    assert "x &lt; y" in blocks
    # The footnotes section is core's footnotes: the block, and the notes as post meta.
    assert json.loads(body.wordpress_meta()["footnotes"])[0]["content"] == "Note"
    # Every opened block is closed (wp:footnotes closes itself).
    assert len(re.findall(r"<!-- wp:[a-z-]+(?: \{[^}]*\})? -->", blocks)) == len(re.findall(r"<!-- /wp:", blocks))


def test_image_blocks_get_their_media_id():
    blocks = from_html(f'<figure><img src="{image_placeholder(KEY)}" alt=""></figure>').blocks
    out = rewrite_images(resolve_images(blocks, {KEY: URL}), {URL: MediaRef(42, "https://site/wp-content/uploads/a.png")})
    assert '<!-- wp:image {"id":42} -->' in out and 'class="wp-image-42"' in out
    assert "https://site/wp-content/uploads/a.png" in out


# --- through the pipeline: an article the model rewrote, published as blocks -------------------------


@pytest.fixture(scope="module")
def blocks_stack(stack_env, api, wp_env, llm_server_session, tmp_path_factory):
    """Workers publishing to the test WordPress (blocks), editing with the OpenAI test server."""
    from tests.fixtures.stack import isolated_stack

    overrides = {
        **wp_env,
        "WP_SITE_OPTIONS": '{"featured_image_in_body": true}',  # the one image (featured) stays in the body
        "OPENAI_API_KEY": llm_server_session.api_key,
        "OPENAI_BASE_URL": llm_server_session.base_url,
        "OPENAI_TIMEOUT": "10",
    }
    with isolated_stack(stack_env, tmp_path_factory.mktemp("blocks-workers"), overrides, cpu=1, io=4) as stack:
        yield stack
    from kombu import pools

    pools.reset()


@pytest.mark.wordpress
@pytest.mark.llm
@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.redis
def test_a_rewritten_article_keeps_the_converters_blocks(client, blocks_stack, wordpress, llm_server):
    title = f"Harbour budget {uuid.uuid4().hex[:6]}"
    data = structured_manuscript(title, picture(901))
    response = client.post("/documents", files={"file": ("harbour.docx", data)})
    assert response.status_code == 201, response.text
    run = wait_run(client, response.json()["run"]["id"])
    assert run["state"] == "succeeded", run["error"]
    article = client.get(f"/articles/{run['article_id']}").json()
    assert "To save water" in article["html"] and article["blocks"] == ""  # rewritten: the HTML is published

    (post,) = posts_of(wordpress, run["document_id"])
    post = wp_get(wordpress, f"wp/v2/posts/{post['id']}").json()
    content = post["content"]["raw"]
    converted = word_to_article(data)
    # The converter's blocks, in order, but the leading heading (the post's title, shown by WordPress).
    assert names(converted.blocks)[0] == "heading"
    assert names(content) == names(converted.blocks)[1:]
    assert names(content) == [
        "paragraph", "heading", "table", "image", "list", "list-item", "list", "list-item", "list-item",
        "list", "list-item", "list-item", "quote", "paragraph", "code", "html", "footnotes",
    ]  # fmt: skip
    assert "To save water the harbour board met." in content and "In order to" not in content
    assert '<h2 class="wp-block-heading">What it costs</h2>' in content
    assert "<thead><tr><th>Item</th><th>Cost</th></tr></thead>" in content
    assert '<figcaption class="wp-element-caption">Table 1: Costs</figcaption>' in content
    (media_id,) = re.findall(r'<!-- wp:image \{"id":(\d+)\} -->', content)
    assert re.search(
        rf'<figure class="wp-block-image"><img src="{re.escape(wordpress.url)}/wp-content/uploads/[^"]+" '
        rf'alt="The harbour at dawn" class="wp-image-{media_id}"/?>'
        r'<figcaption class="wp-element-caption">Figure 1: The harbour</figcaption></figure>',
        content,
    )
    assert '<!-- wp:list {"ordered":true,"start":3,"type":"lower-alpha"} -->' in content
    assert "<li>Steel pipes</li>" in content
    assert '<blockquote class="wp-block-quote"><!-- wp:paragraph -->\n<p>To grow, we build.</p>' in content
    assert '<pre class="wp-block-code"><code>flow = pipes * 2</code></pre>' in content
    assert '<math display="block">' in content
    # The footnote: a reference in the text, its note in the post meta under the same id.
    (note_id,) = re.findall(r'<sup data-fn="([0-9a-f-]{36})" class="fn">', content)
    assert json.loads(post["meta"]["footnotes"]) == [{"id": note_id, "content": "Council minutes, page 4."}]
