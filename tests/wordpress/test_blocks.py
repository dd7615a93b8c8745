"""The edited article (classic HTML) as block markup, for a site that wants blocks."""

from __future__ import annotations

import re

from app.integrations.wordpress.content import html_to_blocks, rewrite_images, MediaRef


def names(blocks: str) -> list[str]:
    return re.findall(r"<!-- wp:([a-z-]+)", blocks)


def test_html_to_blocks_keeps_every_part():
    html = (
        "<h2>Section</h2><p>Text &amp; <b>bold</b> <a href=\"https://example.org/?a=1&amp;b=2\">link</a></p>"
        "<ul><li>one<ul><li>nested</li></ul></li><li>two</li></ul>"
        '<ol start="3"><li>three</li></ol>'
        '<figure><img src="https://cdn.example/a.png" alt="An alt" width="10" height="5"><figcaption>Cap</figcaption></figure>'
        "<table><tbody><tr><td>1</td><td>2</td></tr></tbody></table>"
        "<blockquote><p>Quoted</p></blockquote><pre><code>x &lt; y</code></pre><hr>"
        '<section class="footnotes"><ol><li id="fn-1">Note</li></ol></section>'
    )
    blocks = html_to_blocks(html)
    assert names(blocks) == [
        "heading", "paragraph", "list", "list-item", "list", "list-item", "list-item", "list", "list-item",
        "image", "table", "quote", "paragraph", "code", "separator", "html",
    ]  # fmt: skip
    assert '<h2 class="wp-block-heading">Section</h2>' in blocks
    assert "Text &amp; <b>bold</b>" in blocks and 'href="https://example.org/?a=1&amp;b=2"' in blocks
    assert '<!-- wp:list {"ordered":true,"start":3} -->' in blocks
    assert '<figure class="wp-block-image"><img src="https://cdn.example/a.png" alt="An alt">' in blocks
    assert '<figcaption class="wp-element-caption">Cap</figcaption>' in blocks
    assert "x &lt; y" in blocks and 'id="fn-1"' in blocks
    # Every opened block is closed.
    assert len(re.findall(r"<!-- wp:", blocks)) == len(re.findall(r"<!-- /wp:", blocks))


def test_image_blocks_get_their_media_id():
    blocks = html_to_blocks('<figure><img src="https://cdn.example/a.png" alt=""></figure>')
    out = rewrite_images(blocks, {"https://cdn.example/a.png": MediaRef(42, "https://site/wp-content/uploads/a.png")})
    assert '<!-- wp:image {"id":42} -->' in out and 'class="wp-image-42"' in out
    assert "https://site/wp-content/uploads/a.png" in out
