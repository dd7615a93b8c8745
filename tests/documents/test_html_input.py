"""HTML read into the document model (app/documents/html_input.py): the converter's own HTML read back
gives the converter's outputs; an edited article keeps its structure; mail bodies; the parser."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from app.core.errors import InvalidDocument
from app.documents import word_to_article, convert_html, from_html, image_placeholder
from app.documents.html_input import parse_html, serialize
from tests.documents.builders import abstract_num, inline_image, li, num, p, png, r, structured_manuscript, style
from tests.documents.builders import docx as build

PNG = png(8, 4)
KEY = hashlib.sha256(PNG).hexdigest() + ".png"


def names(blocks: str) -> list[str]:
    return re.findall(r"<!-- wp:([a-z-]+)", blocks)


def notes_of(result) -> list[tuple]:
    return [(n.id, n.number, n.html) for n in result.footnotes]


def rich_document() -> bytes:
    """What structured_manuscript lacks: spans, a nested table, an endnote, inline images and math, a
    bookmark link, code whose lines are indented, an item of two paragraphs, marks and links."""
    styles = style("Heading2", "heading 2") + style("Code", "Source Code") + style("ListParagraph", "List Paragraph")
    numbering = abstract_num(1, [("decimal", 1)]) + num(1, 1)
    endnotes = '<w:endnote w:id="1"><w:p><w:r><w:endnoteRef/></w:r>' + r(" See the annex.") + "</w:p></w:endnote>"
    fraction = "<m:oMath><m:f><m:num><m:r><m:t>a</m:t></m:r></m:num><m:den><m:r><m:t>2</m:t></m:r></m:den></m:f></m:oMath>"

    def tc(content: str, tcpr: str = "") -> str:
        return f"<w:tc>{f'<w:tcPr>{tcpr}</w:tcPr>' if tcpr else ''}{content}</w:tc>"

    spans = (
        "<w:tbl><w:tr><w:trPr><w:tblHeader/></w:trPr>"
        + tc(p("Name"))
        + tc(p("Scores"), '<w:gridSpan w:val="2"/>')
        + "</w:tr><w:tr>"
        + tc(p("Ann"), '<w:vMerge w:val="restart"/>')
        + tc(p("1"))
        + tc(p("2"))
        + "</w:tr><w:tr>"
        + tc(p(""), "<w:vMerge/>")
        + tc(p("3"))
        + tc(p("4"))
        + "</w:tr></w:tbl>"
    )
    nested = f"<w:tbl><w:tr>{tc(p('outer') + '<w:tbl><w:tr>' + tc(p('inner')) + '</w:tr></w:tbl>')}{tc(p('b'))}</w:tr></w:tbl>"
    bookmark = '<w:bookmarkStart w:id="0" w:name="costs"/>' + r("Costs") + '<w:bookmarkEnd w:id="0"/>'
    body = (
        p(runs=r("Bold ", "<w:b/>") + r("both", "<w:b/><w:i/>") + r(" and ") + r("struck", "<w:strike/>")
          + '<w:hyperlink w:anchor="costs">' + r("see costs") + "</w:hyperlink>"
          + '<w:hyperlink r:id="rId1">' + r("a report", "<w:b/>") + "</w:hyperlink>"
          + '<w:r><w:endnoteReference w:id="1"/></w:r>')
        + p(runs=r("Before ") + inline_image("rIdimage1.png", alt="A box") + r(" after, and ") + fraction)
        + p(runs=bookmark, style="Heading2")
        + spans
        + nested
        + li("one item", 1)
        + p("its second paragraph", "ListParagraph")
        + li("another", 1)
        + p(runs=r("def f():") + "<w:r><w:br/></w:r>" + r("    return 1"), style="Code")
    )  # fmt: skip
    return build(
        body, styles=styles, numbering=numbering, endnotes=endnotes,
        links={"rId1": "https://example.org/report?a=1&amp;b=2"}, media={"image1.png": PNG},
    )  # fmt: skip


@pytest.mark.parametrize("data", [rich_document(), structured_manuscript("Harbour", PNG)], ids=["rich", "structured"])
def test_the_converters_html_read_back_gives_the_converters_outputs(data):
    converted = word_to_article(data)
    back = from_html(converted.html)
    assert back.html == converted.html
    assert back.blocks == converted.blocks  # the one block writer, the same blocks
    assert notes_of(back) == notes_of(converted)  # the same footnote ids: derived from the HTML
    assert back.images == [] and back.report.dropped == {}


def test_what_the_rich_document_holds():
    blocks = from_html(word_to_article(rich_document()).html).blocks
    assert names(blocks) == [
        "paragraph", "html", "heading", "table", "html", "list", "list-item", "list-item", "code", "footnotes"
    ]  # fmt: skip
    assert "<strong>Bold <em>both</em></strong> and <s>struck</s>" in blocks
    assert '<a href="#costs">see costs</a><strong><a href="https://example.org/report?a=1&amp;b=2">a report</a><sup data-fn=' in blocks
    assert '<h2 class="wp-block-heading" id="costs">Costs</h2>' in blocks
    assert '<th colspan="2">Scores</th>' in blocks and '<td rowspan="2">Ann</td>' in blocks
    assert f'Before <img src="{image_placeholder(KEY)}" alt="A box" width="100" height="50"> after' in blocks
    assert "<li>one item<br>its second paragraph</li>" in blocks
    assert "<code>def f():\n    return 1</code>" in blocks  # indentation kept


def test_an_edit_keeps_the_structure_and_says_the_new_words():
    converted = word_to_article(structured_manuscript("Harbour", PNG))
    edited = converted.html.replace("In order to save", "To save").replace("Steel pipes", "Pipes of steel")
    back = from_html(edited)
    assert names(back.blocks) == names(converted.blocks)
    assert "To save water" in back.blocks and "<li>Pipes of steel</li>" in back.blocks
    assert "In order to save" not in back.blocks
    assert notes_of(back)[0][1:] == (1, "Council minutes, page 4.")
    assert f'data-fn="{back.footnotes[0].id}"' in back.blocks


def test_html_a_model_writes_differently_still_makes_the_blocks():
    html = (
        "<div><p>Intro with <b>bold</b> and <i>italic</i></p></div>"
        f'<p><img src="{image_placeholder(KEY)}" alt="Lone"></p>'  # a lone image: an image block
        "<blockquote><p>Said once.</p><ul><li>a list in a quote</li></ul><p>Said twice.</p></blockquote>"
        "<table><tr><th>H</th></tr><tr><td>v</td></tr></table>"
        "Trailing words"
    )
    blocks = from_html(html).blocks
    assert names(blocks) == [
        "paragraph", "image", "quote", "paragraph", "list", "list-item", "quote", "paragraph", "table", "paragraph",
    ]  # fmt: skip
    assert "Intro with <strong>bold</strong> and <em>italic</em>" in blocks
    assert "<thead><tr><th>H</th></tr></thead><tbody><tr><td>v</td></tr></tbody>" in blocks
    assert "<p>Trailing words</p>" in blocks


def test_images_are_the_documents_own_only():
    url = "http://storage.test/media/" + KEY
    html = f'<p>a <img src="{url}" alt="Ours"> b <img src="https://tracker.example/pixel.gif" alt="Theirs"></p>'
    result = from_html(html, image_keys={url: KEY})
    assert f'<img src="{image_placeholder(KEY)}" alt="Ours">' in result.blocks
    assert "tracker.example" not in result.blocks + result.html
    assert result.report.dropped == {"image": 1}
    assert result.report.warnings == ["1 image(s) that are not the document's own were left out"]


def test_a_mail_body_is_written_like_a_document():
    body = (
        "<html><head><style>p{}</style></head><body>"
        "<h2>Council meets</h2><p>The council <strong>met</strong>.</p><ol type=\"a\"><li>budget</li></ol>"
        '<p onclick="alert(1)">Bye <img src="cid:logo"></p><script>alert(2)</script></body></html>'
    )
    result = convert_html(body.encode())
    assert result.title == "Council meets"
    assert result.html == (
        "<h2>Council meets</h2>\n<p>The council <strong>met</strong>.</p>\n"
        '<ol type="a"><li>budget</li></ol>\n<p>Bye</p>'
    )
    assert names(result.blocks) == ["heading", "paragraph", "list", "list-item", "paragraph"]
    assert result.text == "Council meets\nThe council met.\n1. budget\nBye"
    assert result.report.constructs["heading"] == 1 and result.images == []
    assert convert_html(b"<p>x</p>", title="Subject").title == "Subject"
    with pytest.raises(InvalidDocument, match="not UTF-8"):
        convert_html(b"\xff\xfe<p>x</p>")
    with pytest.raises(InvalidDocument, match="no text left"):
        convert_html(b"<script>alert(1)</script><img src=cid:x>")


def test_a_fragment_parses_as_a_fragment():
    soup = parse_html("Lead <b>in</b><p>a &amp; b</p>\n<p>c</p>")
    assert [getattr(node, "name", None) for node in soup.children] == [None, "b", "p", None, "p"]
    assert serialize(soup) == "Lead <b>in</b><p>a &amp; b</p>\n<p>c</p>"
    assert serialize(parse_html('<img src="x" alt="">')) == '<img alt="" src="x">'
    assert serialize(parse_html("<html><body><p>x</p></body></html>")) == "<p>x</p>"
    assert json.dumps(serialize(parse_html("<pre>\n  a\n</pre>"))) == json.dumps("<pre>\n  a\n</pre>")
