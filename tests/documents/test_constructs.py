"""Each Word construct of issue 4, on a document the test builds (python-docx or raw WordprocessingML)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from xml.sax.saxutils import escape

import docx
import pytest
from docx.enum.text import WD_BREAK

from app.documents import image_placeholder, placeholder_keys, resolve_images, word_to_article
from tests.documents.builders import (
    abstract_num,
    inline_image,
    li,
    num,
    p,
    png,
    python_docx_bytes,
    r,
    style,
)
from tests.documents.builders import (
    docx as build,
)


def html_of(data: bytes) -> str:
    return word_to_article(data).html


# --- headings and title ----------------------------------------------------------------------


def test_headings_by_style_name():
    document = docx.Document()
    document.add_heading("Chapter", level=1)
    document.add_heading("Section", level=2)
    document.add_heading("Detail", level=3)
    document.add_paragraph("Body.")
    result = word_to_article(python_docx_bytes(document))
    assert "<h1>Chapter</h1>" in result.html
    assert "<h2>Section</h2>" in result.html
    assert "<h3>Detail</h3>" in result.html
    assert result.report.constructs["heading"] == 3


def test_heading_by_outline_level_of_a_custom_style():
    styles = style("Chapter", "Chapter Title", ppr='<w:outlineLvl w:val="0"/>') + style(
        "Part", "Part Head", ppr='<w:outlineLvl w:val="1"/>'
    )
    html = html_of(build(p("One", "Chapter") + p("Two", "Part") + p("text"), styles=styles))
    assert "<h1>One</h1>" in html and "<h2>Two</h2>" in html


def test_heading_through_a_derived_style():
    styles = (
        style("Heading2", "heading 2", ppr='<w:outlineLvl w:val="1"/>')
        + style("MyHeading", "My Heading", based_on="Heading2")
        + style("Mine", "Mine Again", based_on="MyHeading")
    )
    html = html_of(build(p("Derived", "Mine") + p("body"), styles=styles))
    assert "<h2>Derived</h2>" in html


def test_outline_level_set_on_one_paragraph_is_not_a_heading():
    html = html_of(build(p("Sunset: a photo", extra_ppr='<w:outlineLvl w:val="0"/>')))
    assert html == "<p>Sunset: a photo</p>"


def test_word_heading_levels_7_to_9_are_paragraphs_and_never_list_items():
    styles = style("Heading7", "heading 7", ppr='<w:outlineLvl w:val="6"/>')
    numbering = abstract_num(1, [("decimal", 1)] * 9) + num(1, 1)
    html = html_of(build(li("Deep", 1, 6, style="Heading7"), styles=styles, numbering=numbering))
    assert html == "<p>Deep</p>"


def test_title_from_title_paragraph_is_taken_out_of_the_body():
    document = docx.Document()
    document.add_heading("The Big Story", level=0)  # the "Title" style
    document.add_paragraph("Lead paragraph.")
    result = word_to_article(python_docx_bytes(document))
    assert result.title == "The Big Story"
    assert "Big Story" not in result.html
    assert result.report.constructs["title"] == 1


def test_title_from_core_properties_then_first_heading():
    document = docx.Document()
    document.core_properties.title = "From the properties"
    document.add_heading("First heading", level=1)
    assert word_to_article(python_docx_bytes(document)).title == "From the properties"
    document.core_properties.title = ""
    assert word_to_article(python_docx_bytes(document)).title == "First heading"


# --- paragraphs and inline formatting --------------------------------------------------------


def test_paragraphs_line_breaks_and_ignored_page_breaks():
    document = docx.Document()
    para = document.add_paragraph("first line")
    para.add_run().add_break()
    para.add_run("second line")
    para.add_run().add_break(WD_BREAK.PAGE)
    para.add_run("after the page break")
    document.add_section()
    document.add_paragraph("new section")
    html = html_of(python_docx_bytes(document))
    assert html == "<p>first line<br>second line after the page break</p>\n<p>new section</p>"


def test_bold_italic_underline_strike_scripts_small_caps():
    document = docx.Document()
    para = document.add_paragraph()
    para.add_run("bold").bold = True
    para.add_run(" ")
    para.add_run("italic").italic = True
    para.add_run(" ")
    para.add_run("under").underline = True
    para.add_run(" ")
    para.add_run("struck").font.strike = True
    para.add_run(" H")
    para.add_run("2").font.subscript = True
    para.add_run("O x")
    para.add_run("2").font.superscript = True
    para.add_run(" ")
    para.add_run("Small").font.small_caps = True
    html = html_of(python_docx_bytes(document))
    assert html == (
        "<p><strong>bold</strong> <em>italic</em> <u>under</u> <s>struck</s> H<sub>2</sub>O x<sup>2</sup> "
        '<span class="smallcaps">Small</span></p>'
    )


def test_marks_nest_across_runs_and_character_styles_count():
    styles = style("Strong", "Strong", kind="character", rpr="<w:b/>")
    runs = r("both ", "<w:b/><w:i/>") + r("bold", "<w:b/>") + r(" styled", '<w:rStyle w:val="Strong"/>')
    html = html_of(build(p(runs=runs), styles=styles))
    assert html == "<p><strong><em>both</em> bold styled</strong></p>"


def test_empty_paragraphs_are_dropped():
    html = html_of(build(p("one") + p("") + p("   ") + p(runs="<w:r><w:br/></w:r>") + p("two")))
    assert html == "<p>one</p>\n<p>two</p>"
    assert word_to_article(build(p("one") + p("   "))).report.dropped["empty_paragraph"] == 1


# --- links and fields ------------------------------------------------------------------------


def test_external_link_and_link_to_a_bookmark():
    body = p(
        runs=f'<w:hyperlink r:id="rId9">{r("our site")}</w:hyperlink> and '
        f'<w:hyperlink w:anchor="details">{r("the details")}</w:hyperlink>'
    ) + p(
        runs='<w:bookmarkStart w:id="1" w:name="details"/>' + r("Details here") + '<w:bookmarkEnd w:id="1"/>'
    )
    html = html_of(build(body, links={"rId9": "https://example.com/page?a=1&amp;b=2"}))
    assert '<a href="https://example.com/page?a=1&amp;b=2">our site</a>' in html
    assert '<a href="#details">the details</a>' in html
    assert '<p id="details">Details here</p>' in html


def test_link_to_a_missing_bookmark_keeps_its_text():
    html = html_of(build(p(runs=f'<w:hyperlink w:anchor="nowhere">{r("text")}</w:hyperlink>')))
    assert html == "<p>text</p>"


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " java\tscript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox",
        "file:///etc/passwd",
    ],
)
def test_unsafe_link_targets_are_removed_but_text_kept(url):
    result = word_to_article(
        build(p(runs=f'<w:hyperlink r:id="rId9">{r("click")}</w:hyperlink>'), links={"rId9": url})
    )
    assert result.html == "<p>click</p>"
    assert "href" not in result.blocks
    assert result.report.dropped["unsafe_link"] == 1


def test_hyperlink_fields_complex_and_simple():
    complex_field = (
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:instrText xml:space="preserve"> HYPERLINK "https://example.org/a" \\o "tip" </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        + r("field link", "<w:u/>")
        + '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )
    simple = (
        f'<w:fldSimple w:instr=" HYPERLINK &quot;mailto:desk@example.org&quot; ">{r("mail us")}</w:fldSimple>'
    )
    unsafe = f'<w:fldSimple w:instr="HYPERLINK &quot;javascript:x()&quot;">{r("bad")}</w:fldSimple>'
    html = html_of(build(p(runs=complex_field + r(" ") + simple + r(" ") + unsafe)))
    assert (
        html
        == '<p><a href="https://example.org/a">field link</a> <a href="mailto:desk@example.org">mail us</a> bad</p>'
    )


def test_field_codes_are_never_shown():
    page_field = (
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText> PAGE </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        + r("7")
        + '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )
    assert html_of(build(p(runs=r("Page ") + page_field))) == "<p>Page 7</p>"


# --- lists -----------------------------------------------------------------------------------


NUMBERING = (
    abstract_num(1, [("bullet", 1), ("bullet", 1), ("bullet", 1)])
    + abstract_num(2, [("decimal", 1), ("lowerLetter", 1), ("lowerRoman", 1)])
    + abstract_num(3, [("decimal", 5)])
    + num(1, 1)
    + num(2, 2)
    + num(3, 3)
    + num(4, 2, restart_at=1)
)


def test_bullets_numbers_and_nesting():
    body = (
        li("a", 1)
        + li("a.1", 1, 1)
        + li("a.1.i", 1, 2)
        + li("b", 1)
        + li("one", 2)
        + li("one.a", 2, 1)
        + li("two", 2)
    )
    html = html_of(build(body, numbering=NUMBERING))
    assert html == (
        "<ul><li>a<ul><li>a.1<ul><li>a.1.i</li></ul></li></ul></li><li>b</li></ul>\n"
        '<ol><li>one<ol type="a"><li>one.a</li></ol></li><li>two</li></ol>'
    )


def test_start_value_restart_and_continuation_across_paragraphs():
    body = (
        li("five", 3)
        + li("six", 3)
        + li("x", 2)
        + li("y", 2)
        + p("an interruption")
        + li("z", 2)
        + li("again", 4)
    )
    html = html_of(build(body, numbering=NUMBERING))
    assert html == (
        '<ol start="5"><li>five</li><li>six</li></ol>\n'
        "<ol><li>x</li><li>y</li></ol>\n<p>an interruption</p>\n"
        '<ol start="3"><li>z</li></ol>\n<ol><li>again</li></ol>'
    )


def test_list_paragraph_without_numbering_continues_the_item():
    styles = style("ListParagraph", "List Paragraph")
    body = li("item", 2, style="ListParagraph") + p("more about the item", "ListParagraph") + li("next", 2)
    html = html_of(build(body, styles=styles, numbering=NUMBERING))
    assert html == "<ol><li><p>item</p><p>more about the item</p></li><li>next</li></ol>"


def test_list_starting_below_level_zero_keeps_its_depth():
    html = html_of(build(li("deep", 1, 1), numbering=NUMBERING))
    assert html == "<ul><li><ul><li>deep</li></ul></li></ul>"


def test_python_docx_list_styles():
    document = docx.Document()
    document.add_paragraph("first", style="List Number")
    document.add_paragraph("second", style="List Number")
    document.add_paragraph("dot", style="List Bullet")
    html = html_of(python_docx_bytes(document))
    assert "<ol><li>first</li><li>second</li></ol>" in html
    assert "<ul><li>dot</li></ul>" in html


# --- tables ----------------------------------------------------------------------------------


def _tc(text: str, tcpr: str = "") -> str:
    return f"<w:tc>{f'<w:tcPr>{tcpr}</w:tcPr>' if tcpr else ''}{p(text)}</w:tc>"


def test_table_header_row_colspan_rowspan():
    header = (
        "<w:tr><w:trPr><w:tblHeader/></w:trPr>"
        + _tc("Name")
        + _tc("Scores", '<w:gridSpan w:val="2"/>')
        + "</w:tr>"
    )
    row1 = "<w:tr>" + _tc("Ann", '<w:vMerge w:val="restart"/>') + _tc("1") + _tc("2") + "</w:tr>"
    row2 = "<w:tr>" + _tc("", "<w:vMerge/>") + _tc("3") + _tc("4") + "</w:tr>"
    html = html_of(build(f"<w:tbl>{header}{row1}{row2}</w:tbl>"))
    assert html == (
        '<table><thead><tr><th>Name</th><th colspan="2">Scores</th></tr></thead>'
        '<tbody><tr><td rowspan="2">Ann</td><td>1</td><td>2</td></tr><tr><td>3</td><td>4</td></tr></tbody></table>'
    )


def test_nested_table_and_python_docx_first_row_header():
    inner = "<w:tbl><w:tr>" + _tc("inner") + "</w:tr></w:tbl>"
    outer = f"<w:tbl><w:tr><w:tc>{p('cell')}{inner}</w:tc>" + _tc("b") + "</w:tr></w:tbl>"
    html = html_of(build(outer))
    assert "<td><p>cell</p>\n<table><tbody><tr><td>inner</td></tr></tbody></table></td>" in html

    document = docx.Document()
    table = document.add_table(rows=2, cols=2)
    table.style = "Table Grid"
    for i, cell in enumerate(table._cells):
        cell.text = f"c{i}"
    html = html_of(python_docx_bytes(document))
    # python-docx tables carry Word's "Header Row" look: the first row is the header
    assert (
        html
        == "<table><thead><tr><th>c0</th><th>c1</th></tr></thead><tbody><tr><td>c2</td><td>c3</td></tr></tbody></table>"
    )


def test_table_with_first_row_look_gets_a_header():
    look = '<w:tblPr><w:tblLook w:val="04A0" w:firstRow="1"/></w:tblPr>'
    html = html_of(build(f"<w:tbl>{look}<w:tr>{_tc('H')}</w:tr><w:tr>{_tc('v')}</w:tr></w:tbl>"))
    assert html == "<table><thead><tr><th>H</th></tr></thead><tbody><tr><td>v</td></tr></tbody></table>"


# --- images, figures, captions ---------------------------------------------------------------


def test_inline_and_anchored_images_with_alt_and_size():
    image, other = png(8, 4), png(2, 2, (0, 0, 255))
    body = p(
        runs=r("before ") + inline_image("rIdimage1.png", alt="A red box", cx=9525 * 80, cy=9525 * 40)
    ) + p(runs=r("text ") + inline_image("rIdimage2.png", alt="Blue", anchor=True))
    result = word_to_article(build(body, media={"image1.png": image, "image2.png": other}))
    key = hashlib.sha256(image).hexdigest() + ".png"
    assert f'<img src="{image_placeholder(key)}" alt="A red box" width="80" height="40">' in result.html
    assert [img.key for img in result.images] == [key, hashlib.sha256(other).hexdigest() + ".png"]
    first = result.images[0]
    assert (first.width, first.height, first.content_type, first.alt, first.data) == (
        8,
        4,
        "image/png",
        "A red box",
        image,
    )
    assert result.report.constructs["image"] == 2 and result.report.constructs["floating_image"] == 1


def test_same_image_twice_is_one_file():
    image = png()
    body = p(runs=inline_image("rIdimage1.png")) + p(runs=r("x") + inline_image("rIdimage2.png"))
    result = word_to_article(build(body, media={"image1.png": image, "image2.png": image}))
    assert len(result.images) == 1
    assert result.html.count(image_placeholder(result.images[0].key)) == 2


def test_caption_makes_a_figure_with_figcaption():
    styles = style("Caption", "caption")
    seq = (
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText> SEQ Figure \\* ARABIC </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        + r("1")
        + '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )
    body = p(runs=inline_image("rIdimage1.png", alt="Chart")) + p(
        runs=r("Figure ") + seq + r(": Sales"), style="Caption"
    )
    result = word_to_article(build(body, styles=styles, media={"image1.png": png()}))
    key = result.images[0].key
    assert result.html == (
        f'<figure><img src="{image_placeholder(key)}" alt="Chart" width="100" height="50">'
        "<figcaption>Figure 1: Sales</figcaption></figure>"
    )
    assert result.images[0].caption == "Figure 1: Sales"
    assert '<figure class="wp-block-image"><img' in result.blocks
    assert '<figcaption class="wp-element-caption">Figure 1: Sales</figcaption>' in result.blocks


def test_table_caption_above_the_table():
    styles = style("Caption", "caption")
    body = p("Table 1: Prices", "Caption") + f"<w:tbl><w:tr>{_tc('x')}</w:tr></w:tbl>"
    html = html_of(build(body, styles=styles))
    assert (
        html
        == "<figure><figcaption>Table 1: Prices</figcaption><table><tbody><tr><td>x</td></tr></tbody></table></figure>"
    )


def test_linked_external_image_is_left_out_and_reported():
    body = p(
        runs='<w:r><w:drawing><wp:inline><wp:extent cx="1" cy="1"/><wp:docPr id="1" name="x"/><a:graphic>'
        '<a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:pic><pic:blipFill>'
        '<a:blip r:link="rId9"/></pic:blipFill></pic:pic></a:graphicData></a:graphic></wp:inline></w:drawing></w:r>'
    )
    result = word_to_article(build(body, links={"rId9": "http://example.com/x.png"}))
    assert result.images == [] and result.report.dropped["linked_image"] == 1


def test_emf_without_libreoffice_is_reported():
    emf = b"\x01\x00\x00\x00" + b"\0" * 36 + b" EMF" + b"\0" * 60
    result = word_to_article(build(p(runs=r("see ") + inline_image("rIdimage1.emf")), media={"image1.emf": emf}))
    assert result.html == "<p>see</p>"
    assert result.images == []
    assert result.report.dropped["vector_image"] == 1
    assert any(w.startswith("an EMF image was left out") for w in result.report.warnings)


def test_wmf_warning_reads_a_wmf():
    wmf = b"\x01\x00\x09\x00" + b"\0" * 60  # a WMF without the placeable header
    result = word_to_article(build(p(runs=r("see ") + inline_image("rIdimage1.wmf")), media={"image1.wmf": wmf}))
    assert result.report.dropped["vector_image"] == 1
    assert any(w.startswith("a WMF image was left out") for w in result.report.warnings)


# --- notes, text boxes, tracked changes, comments, equations, content controls ----------------


FOOTNOTES = (
    '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
    '<w:footnote w:id="1"><w:p><w:r><w:footnoteRef/></w:r>' + r(" A footnote.") + "</w:p></w:footnote>"
)
ENDNOTES = '<w:endnote w:id="1"><w:p><w:r><w:endnoteRef/></w:r>' + r(" An endnote.") + "</w:p></w:endnote>"


def test_footnotes_and_endnotes_become_linked_notes_at_the_end():
    body = p(
        runs=r("Claim")
        + '<w:r><w:footnoteReference w:id="1"/></w:r>'
        + r(" and more")
        + '<w:r><w:endnoteReference w:id="1"/></w:r>'
    )
    result = word_to_article(build(body, footnotes=FOOTNOTES, endnotes=ENDNOTES))
    assert result.html == (
        '<p>Claim<sup><a href="#fn-1" id="fnref-1">1</a></sup> and more<sup><a href="#fn-2" id="fnref-2">2</a></sup></p>\n'
        '<section class="footnotes"><ol><li id="fn-1"><p>A footnote. <a href="#fnref-1">↩</a></p></li>'
        '<li id="fn-2"><p>An endnote. <a href="#fnref-2">↩</a></p></li></ol></section>'
    )
    assert [(n.number, n.kind, n.html) for n in result.footnotes] == [
        (1, "footnote", "A footnote."),
        (2, "endnote", "An endnote."),
    ]
    note_id = result.footnotes[0].id
    assert (
        f'<sup data-fn="{note_id}" class="fn"><a href="#{note_id}" id="{note_id}-link">1</a></sup>'
        in result.blocks
    )
    assert result.blocks.endswith("<!-- wp:footnotes /-->")
    meta = json.loads(result.wordpress_meta()["footnotes"])
    assert meta[0] == {"id": note_id, "content": "A footnote."}
    assert "[1] A footnote." in result.text


def test_text_box_content_follows_its_paragraph():
    box = (
        '<w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wp:anchor><wp:extent cx="1" cy="1"/>'
        '<wp:docPr id="2" name="Text Box 2"/><a:graphic><a:graphicData '
        'uri="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"><wps:wsp><wps:txbx><w:txbxContent>'
        + p("Inside the box")
        + "</w:txbxContent></wps:txbx></wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing></mc:Choice>"
        "<mc:Fallback><w:pict><v:shape><v:textbox><w:txbxContent>"
        + p("Inside the box")
        + "</w:txbxContent></v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent></w:r>"
    )
    result = word_to_article(build(p(runs=r("Main text") + box) + p("after")))
    assert result.html == "<p>Main text</p>\n<p>Inside the box</p>\n<p>after</p>"
    assert result.report.constructs["text_box"] == 1


def test_tracked_changes_are_accepted():
    body = (
        p(
            runs=r("Kept ")
            + f'<w:ins w:id="1" w:author="a">{r("inserted ")}</w:ins>'
            + '<w:del w:id="2" w:author="a"><w:r><w:delText>deleted </w:delText></w:r></w:del>'
            + r("end.")
        )
        + p(
            # this paragraph's mark was deleted: it joins the next paragraph
            runs=r("Joined"),
            extra_ppr='<w:rPr><w:del w:id="3" w:author="a"/></w:rPr>',
        )
        + p(" paragraphs.")
        + '<w:del w:id="4" w:author="a"><w:p><w:r><w:delText>gone</w:delText></w:r></w:p></w:del>'
    )
    body += '<w:p><w:moveFrom w:id="5" w:author="a">' + r("moved away") + "</w:moveFrom></w:p>"
    result = word_to_article(build(body))
    assert result.html == "<p>Kept inserted end.</p>\n<p>Joined paragraphs.</p>"
    assert result.report.constructs["tracked_change"] >= 4
    assert any("tracked changes" in w for w in result.report.warnings)


def test_comments_are_dropped_and_counted():
    comments = '<w:comment w:id="0" w:author="ed"><w:p>' + r("Fix this") + "</w:p></w:comment>"
    body = p(
        runs='<w:commentRangeStart w:id="0"/>' + r("Text") + '<w:commentRangeEnd w:id="0"/>'
        '<w:r><w:commentReference w:id="0"/></w:r>'
    )
    result = word_to_article(build(body, comments=comments))
    assert result.html == "<p>Text</p>"
    assert result.report.dropped["comment"] == 1
    assert "Fix this" not in result.text


def test_equations_become_mathml_and_are_reported():
    fraction = (
        "<m:oMath><m:f><m:num><m:r><m:t>a</m:t></m:r></m:num><m:den><m:r><m:t>2</m:t></m:r></m:den></m:f>"
        "<m:sSup><m:e><m:r><m:t>x</m:t></m:r></m:e><m:sup><m:r><m:t>2</m:t></m:r></m:sup></m:sSup></m:oMath>"
    )
    body = p(runs=r("Half: ") + fraction) + f"<w:p><m:oMathPara>{fraction}</m:oMathPara></w:p>"
    result = word_to_article(build(body))
    assert "<math><mrow><mrow><mfrac><mrow><mi>a</mi></mrow><mrow><mn>2</mn></mrow></mfrac>" in result.html
    assert '<math display="block">' in result.html
    assert "<msup><mrow><mi>x</mi></mrow><mrow><mn>2</mn></mrow></msup>" in result.html
    assert result.report.constructs["equation"] == 2
    assert "<!-- wp:html -->" in result.blocks  # no core block keeps MathML through the editor
    assert "a2x2" in result.text.replace(" ", "")


def test_content_controls_and_smart_tags_keep_their_content():
    body = (
        '<w:sdt><w:sdtPr><w:alias w:val="Intro"/></w:sdtPr><w:sdtContent>'
        + p("Block control")
        + "</w:sdtContent></w:sdt>"
        + p(
            runs=r("Call ")
            + "<w:sdt><w:sdtContent>"
            + r("inline control")
            + "</w:sdtContent></w:sdt>"
            + '<w:smartTag w:uri="urn:x" w:element="place">'
            + r(" Paris")
            + "</w:smartTag>"
            + '<w:customXml w:element="x">'
            + r(" now")
            + "</w:customXml>"
        )
    )
    result = word_to_article(build(body))
    assert result.html == "<p>Block control</p>\n<p>Call inline control Paris now</p>"
    assert result.report.constructs["content_control"] == 2


def test_symbol_font_characters_become_unicode():
    body = p(
        runs='<w:r><w:sym w:font="Symbol" w:char="F061"/></w:r>' + r("b", '<w:rFonts w:ascii="Symbol"/>')
    )
    assert html_of(build(body)) == "<p>αβ</p>"


# --- outputs ---------------------------------------------------------------------------------


def test_core_properties_metadata():
    document = docx.Document()
    props = document.core_properties
    props.title, props.subject, props.author = "Budget", "City finances", "Ann Editor"
    props.keywords, props.comments, props.language = "budget; city, 2025", "Summary text", "en-GB"
    props.created = dt.datetime(2024, 5, 1, 9, 30)
    document.add_paragraph("x")
    meta = word_to_article(python_docx_bytes(document)).metadata
    assert (meta.title, meta.subject, meta.author) == ("Budget", "City finances", "Ann Editor")
    assert meta.keywords == ["budget", "city", "2025"]
    assert (meta.description, meta.language) == ("Summary text", "en-GB")
    assert meta.created.startswith("2024-05-01T09:30")


def test_block_markup_for_core_blocks():
    document = docx.Document()
    document.add_heading("Heading two", level=2)
    document.add_heading("Heading three", level=3)
    document.add_paragraph("Plain.")
    document.add_paragraph("one", style="List Number")
    table = document.add_table(rows=1, cols=1)
    table.cell(0, 0).text = "cell"
    blocks = word_to_article(python_docx_bytes(document)).blocks
    assert (
        '<!-- wp:heading -->\n<h2 class="wp-block-heading">Heading two</h2>\n<!-- /wp:heading -->' in blocks
    )
    assert '<!-- wp:heading {"level":3} -->\n<h3 class="wp-block-heading">Heading three</h3>' in blocks
    assert "<!-- wp:paragraph -->\n<p>Plain.</p>\n<!-- /wp:paragraph -->" in blocks
    assert (
        '<!-- wp:list {"ordered":true} -->\n<ol class="wp-block-list"><!-- wp:list-item -->\n<li>one</li>'
        in blocks
    )
    assert (
        '<!-- wp:table {"hasFixedLayout":false} -->\n<figure class="wp-block-table"><table><tbody><tr><td>cell</td>'
        in blocks
    )
    # every opened block is closed, in order
    stack = []
    for closing, name in re.findall(r"<!-- (/?)wp:([a-z-]+)(?: \{.*?\})? (?:/)?-->", blocks):
        if closing:
            assert stack.pop() == name
        elif not blocks.count(f"wp:{name} /-->"):
            stack.append(name)
    assert stack == []


def test_list_start_and_type_in_blocks():
    body = li("c", 3) + li("sub", 2, 1)
    blocks = word_to_article(build(body, numbering=NUMBERING)).blocks
    assert '<!-- wp:list {"ordered":true,"start":5} -->\n<ol start="5" class="wp-block-list">' in blocks


def test_sanitizer_keeps_only_the_allow_list():
    from app.documents.sanitize import clean_blocks, clean_html

    dirty = '<p onclick="x()" style="color:red">a<script>alert(1)</script><a href="javascript:x">b</a><iframe src="//x"></iframe></p>'
    assert clean_html(dirty) == "<p>a<a>b</a></p>"
    assert clean_blocks("<!-- wp:paragraph -->\n" + dirty + "\n<!-- /wp:paragraph -->").startswith(
        "<!-- wp:paragraph -->"
    )


def test_markup_characters_in_text_stay_text():
    text = escape("<script>alert('x')</script> & <!-- wp:html --> done")
    result = word_to_article(build(p(text)))
    assert "<script" not in result.html and "<script" not in result.blocks
    assert "&lt;script&gt;" in result.html
    assert result.blocks.count("<!--") == 2  # only our own block delimiters
    assert "&lt;!-- wp:html --&gt;" in result.blocks


def test_placeholders_resolve_to_stored_urls():
    result = word_to_article(build(p(runs=inline_image("rIdimage1.png")), media={"image1.png": png()}))
    key = result.images[0].key
    assert placeholder_keys(result.html) == [key] == placeholder_keys(result.blocks)
    assert f'src="https://cdn.example/{key}"' in resolve_images(
        result.html, {key: f"https://cdn.example/{key}"}
    )


def test_strict_ooxml_is_read():
    strict = build(p("Strict text")).replace(b"", b"")
    import io
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(strict))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for info in source.infolist():
            data = source.read(info)
            data = data.replace(
                b"http://schemas.openxmlformats.org/wordprocessingml/2006/main",
                b"http://purl.oclc.org/ooxml/wordprocessingml/main",
            ).replace(
                b"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument",
                b"http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument",
            )
            zf.writestr(info, data)
    assert html_of(out.getvalue()) == "<p>Strict text</p>"


def test_summary_is_json_ready():
    result = word_to_article(build(p("hello world"), media={}))
    summary = result.summary()
    json.dumps(summary)
    assert summary["words"] == 2


def test_form_checkboxes_show_their_state():
    def box(checked: bool) -> str:
        state = f'<w:checked w:val="{int(checked)}"/>' if checked else '<w:default w:val="0"/>'
        return (
            f'<w:r><w:fldChar w:fldCharType="begin"><w:ffData><w:checkBox>{state}</w:checkBox></w:ffData>'
            "</w:fldChar></w:r><w:r><w:instrText> FORMCHECKBOX </w:instrText></w:r>"
            '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
        )

    result = word_to_article(build(p(runs=r("yes ") + box(True) + r(" no ") + box(False))))
    assert result.html == "<p>yes ☒ no ☐</p>"
    assert result.report.constructs["checkbox"] == 2
