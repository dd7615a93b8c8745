"""Script smuggled into a manuscript — hyperlinks to javascript:, vbscript: and data: URLs, markup in
the title, the alt text, the captions and the text — and markup a model could be talked into writing
(a prompt injection in the manuscript: the LLM's answer carries <script>, event handlers and
javascript: links in the body, the title and the excerpt) never reaches WordPress as markup. Each
post is published to a real WordPress through the real workers and read back raw (context=edit), as
the site's editor and theme get it: no script, no event handler, no dangerous URL scheme in the body,
the title, the excerpt, the media library's alt texts and captions; the words themselves survive as
text.
"""

from __future__ import annotations

import html
import io
import re
import uuid

import docx
import pytest
from bs4 import BeautifulSoup
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Inches

from tests.support import starts, wait_run
from tests.wordpress.conftest import picture, posts_of

pytestmark = [pytest.mark.wordpress, pytest.mark.llm, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]

TITLE = "Budget <script>alert('title')</script> & <img src=x onerror=alert('t')> review"
LINKS = {
    "javascript:alert('href')": "a javascript link",
    "JaVaScRiPt:alert(document.cookie)": "a mixed-case javascript link",
    " javascript:alert('spaced')": "a javascript link after a space",
    "vbscript:msgbox('x')": "a vbscript link",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgnZGF0YScpPC9zY3JpcHQ+": "a data: link",
    "https://example.org/report?a=1&b=<2>": "the real report",
}
ALTS = ["\"><script>alert('alt')</script>", "x\" onerror=\"alert('alt2')"]
CAPTIONS = ["<img src=x onerror=alert('caption')>", "<a href=\"javascript:alert('c')\">click</a>"]
TEXT = "Literal <script>alert('text')</script> and <iframe src=\"javascript:alert(1)\"></iframe> in the prose."
BAD_SCHEMES = ("javascript:", "vbscript:", "data:text/html")
BAD_TAGS = {"script", "iframe", "object", "embed", "style", "svg", "math", "form", "base", "meta", "link"}


def _link(paragraph, url: str, text: str) -> None:
    rel = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link, run, t = OxmlElement("w:hyperlink"), OxmlElement("w:r"), OxmlElement("w:t")
    link.set(qn("r:id"), rel)
    t.text = text
    t.set(qn("xml:space"), "preserve")
    run.append(t)
    link.append(run)
    paragraph._p.append(link)


def hostile_manuscript(seed: int) -> tuple[bytes, list[bytes]]:
    d = docx.Document()
    d.core_properties.title = TITLE
    d.add_heading(TITLE, level=1)
    d.add_paragraph(TEXT)
    for url, text in LINKS.items():
        p = d.add_paragraph("See ")
        _link(p, url, text)
        p.add_run(".")
    images = [picture(seed * 10 + i) for i in range(2)]
    for i, data in enumerate(images):
        d.add_picture(io.BytesIO(data), width=Inches(2))
        d.inline_shapes[-1]._inline.docPr.set("descr", ALTS[i])
        d.add_paragraph(CAPTIONS[i], style="Caption")
    out = io.BytesIO()
    d.save(out)
    return out.getvalue(), images


def assert_inert_markup(markup: str, where: str) -> None:
    """No element or attribute that runs script, no URL with a dangerous scheme (entities decoded)."""
    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup.find_all(True):
        assert tag.name not in BAD_TAGS, f"{where}: <{tag.name}> in {str(tag)[:200]}"
        for name, value in tag.attrs.items():
            assert not name.lower().startswith("on"), f"{where}: {name}= on <{tag.name}>"
            values = value if isinstance(value, list) else [value]
            for v in values:
                text = re.sub(r"[\s\x00-\x1f]", "", html.unescape(str(v))).lower()
                assert not text.startswith(BAD_SCHEMES), f"{where}: {name}={v!r} on <{tag.name}>"
    # And nothing that looks like it once the text is unescaped by a careless consumer? No: escaped
    # text is text. What must not be there is live markup, checked above, or a raw tag in the source.
    assert not re.search(r"<\s*(script|iframe|object|embed)\b", markup, re.I), f"{where}: raw tag in {markup[:300]}"


def assert_plain_text(value: str, where: str) -> None:
    """A title, an excerpt, an alt text: text, not markup (escaped entities are fine)."""
    assert not re.search(r"<\s*/?\s*[a-z!]", value, re.I), f"{where} holds markup: {value!r}"
    assert not re.search(r"javascript:|vbscript:", re.sub(r"\s", "", html.unescape(value)), re.I) or "<" not in value


@pytest.fixture(scope="module")
@starts("worker")
def xss_stack(stack_env, api, wordpress, llm_server_session, tmp_path_factory):
    from tests.fixtures.stack import isolated_stack

    overrides = {
        "WP_URL": wordpress.url,
        "WP_USER": wordpress.user,
        "WP_APP_PASSWORD": wordpress.app_password,
        "WP_DEFAULT_STATUS": "publish",
        "OPENAI_API_KEY": llm_server_session.api_key,
        "OPENAI_BASE_URL": llm_server_session.base_url,
        "OPENAI_TIMEOUT": "10",
    }
    with isolated_stack(stack_env, tmp_path_factory.mktemp("xss-workers"), overrides, cpu=1, io=4) as stack:
        yield stack
    from kombu import pools

    pools.reset()


def publish(client, data: bytes, name: str) -> dict:
    response = client.post("/documents", files={"file": (name, data)})
    assert response.status_code == 201, response.text
    run = wait_run(client, response.json()["run"]["id"])
    assert run["state"] == "succeeded", run["error"]
    return run


def read_back(wordpress, run: dict, images: list[bytes]) -> tuple[dict, list[dict]]:
    (post,) = posts_of(wordpress, run["document_id"])
    import hashlib

    slugs = ",".join(f"copydesk-{hashlib.sha256(i).hexdigest()[:32]}" for i in images)
    with wordpress.client() as c:
        media = c.get("wp/v2/media", params={"slug": slugs, "context": "edit", "per_page": 100}).json()
    return post, media


def test_hostile_manuscript_reaches_wordpress_inert(client, xss_stack, wordpress, llm_server):
    data, images = hostile_manuscript(seed=701)
    run = publish(client, data, f"hostile-{uuid.uuid4().hex[:6]}.docx")  # the model echoes it back
    post, media = read_back(wordpress, run, images)

    body = post["content"]["raw"]
    assert_inert_markup(body, "post body")
    assert_inert_markup(post["content"]["rendered"], "rendered post")
    assert_plain_text(post["title"]["raw"], "title")
    assert_inert_markup(post["title"]["rendered"], "rendered title")
    assert_plain_text(post["excerpt"]["raw"], "excerpt")
    assert len(media) == 2
    for item in media:
        assert_plain_text(item["alt_text"], "alt text")
        assert_inert_markup(item["caption"]["raw"], "media caption")
        assert_inert_markup(item["caption"]["rendered"], "rendered caption")
    # The words survive, as text: what was dangerous is shown, not run.
    text = BeautifulSoup(body, "html.parser").get_text(" ")
    assert "alert('text')" in text and "the real report" in text and "a javascript link" in text
    assert 'href="https://example.org/report?a=1&amp;b=%3C2%3E"' in body or "example.org/report" in body
    assert "Budget" in post["title"]["raw"] and "review" in post["title"]["raw"]


def test_a_model_talked_into_writing_script_does_not_reach_wordpress(client, xss_stack, wordpress, llm_server):
    data, images = hostile_manuscript(seed=702)
    evil = {
        "title": "Fine title <script>alert('model-title')</script><img src=x onerror=alert(2)>",
        "excerpt": "Read <a href=\"javascript:alert('ex')\">this</a> <script>alert('excerpt')</script>",
        "slug": "fine-title",
        "tags": ["<script>alert('tag')</script>", "Budget"],
        "category": None,
        "body_html": (
            "<p onclick=\"alert('p')\">Edited <a href=\"javascript:alert('m')\">link</a>.</p>"
            "<script>alert('model')</script><iframe src=\"data:text/html,<script>alert(1)</script>\"></iframe>"
            "<p><img src=\"image:1\" alt=\"x\" onerror=\"alert('img')\"></p><p><img src=\"image:2\" alt=\"y\"></p>"
            "<svg onload=\"alert('svg')\"></svg><p style=\"background:url(javascript:alert(1))\">styled</p>"
        ),
    }
    llm_server.queue({"json": evil}, {"json": evil})  # the answer, and again for its second chance
    run = publish(client, data, f"injected-{uuid.uuid4().hex[:6]}.docx")
    post, media = read_back(wordpress, run, images)
    body = post["content"]["raw"]
    assert_inert_markup(body, "post body")
    assert_inert_markup(post["content"]["rendered"], "rendered post")
    assert_plain_text(post["title"]["raw"], "title")
    assert post["title"]["raw"].startswith("Fine title")  # the model's answer was used
    assert_plain_text(post["excerpt"]["raw"], "excerpt")
    assert "style=" not in body or "javascript" not in body.lower()
    with wordpress.client() as c:
        tags = c.get("wp/v2/tags", params={"include": ",".join(map(str, post["tags"])) or "0", "context": "edit"}).json()
    for tag in tags:
        assert_plain_text(tag["name"], "tag")
    assert "Budget" in [t["name"] for t in tags]  # a tag that was only markup is dropped, not a failure
