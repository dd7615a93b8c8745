"""What a web article should not have, and what it must not lose (issue 16): tables of contents and
page numbers left out and reported, every character of text accounted for, Word's generated alt
text removed, the featured image chosen by size and shape, words in scripts without spaces."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from app.documents import word_to_article
from app.documents.featured import choose_featured_image
from app.documents.words import cut_at_word, sentences, word_count, words
from tests.documents.builders import docx, inline_image, p, png, png_header_only, r, style

STYLES = (
    style("Heading1", "heading 1", ppr='<w:outlineLvl w:val="0"/>')
    + style("TOCHeading", "TOC Heading", based_on="Heading1")
    + style("TOC1", "toc 1")
    + style("TOC2", "toc 2")
)


def field(instr: str, result_runs: str) -> str:
    """A complex field: begin, its code, separate, the result's runs, end."""
    return (
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        f'<w:r><w:instrText xml:space="preserve"> {instr} </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        f'{result_runs}<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )


def toc_entry(text: str, anchor: str, page: str, *, as_field: bool) -> str:
    """A TOC line as Word writes it: the entry linked to its heading, a tab, a PAGEREF page number
    (a field nested in the link); the link is a w:hyperlink or a HYPERLINK field."""
    inner = r(text) + "<w:r><w:tab/></w:r>" + field(f"PAGEREF {anchor} \\h", r(page))
    if as_field:
        return field(f'HYPERLINK \\l "{anchor}"', inner)
    return f'<w:hyperlink w:anchor="{anchor}">{inner}</w:hyperlink>'


def heading(text: str, anchor: str) -> str:
    return (
        f'<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:bookmarkStart w:id="1" w:name="{anchor}"/>'
        f'{r(text)}<w:bookmarkEnd w:id="1"/></w:p>'
    )


def toc_document(*, as_field: bool) -> bytes:
    begin = (
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:instrText xml:space="preserve"> TOC \\o "1-3" \\h \\z \\u </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
    )
    body = (
        p("Contents", "TOCHeading")
        + p(runs=begin + toc_entry("Introduction", "_Toc1", "4", as_field=as_field), style="TOC1")
        + p(runs=toc_entry("Getting started", "_Toc2", "5", as_field=as_field), style="TOC2")
        + p(runs='<w:r><w:fldChar w:fldCharType="end"/></w:r>')
        + heading("Introduction", "_Toc1")
        + p("Copydesk turns manuscripts into posts.")
        + heading("Getting started", "_Toc2")
        + p(runs=r("As said on page ") + field("PAGEREF _Toc1 \\h", r("4")) + r(", it is simple."))
    )
    return docx(body, styles=STYLES)


# --- tables of contents and page numbers -----------------------------------------------------------


@pytest.mark.parametrize("as_field", [False, True], ids=["w:hyperlink", "HYPERLINK field"])
def test_a_table_of_contents_and_page_numbers_are_left_out_and_reported(as_field):
    result = word_to_article(toc_document(as_field=as_field))
    assert result.html == (
        '<h1 id="_Toc1">Introduction</h1>\n<p>Copydesk turns manuscripts into posts.</p>\n'
        '<h1 id="_Toc2">Getting started</h1>\n<p>As said on page , it is simple.</p>'
    ) or result.html == (
        "<h1>Introduction</h1>\n<p>Copydesk turns manuscripts into posts.</p>\n"
        "<h1>Getting started</h1>\n<p>As said on page , it is simple.</p>"
    )
    assert "Contents" not in result.text and "Introduction4" not in result.text
    report = result.report
    assert report.dropped["table_of_contents"] == 1 and report.dropped["page_number"] == 1
    # "Contents", "Introduction", "4", "Getting started", "5"; and the page number in the text.
    toc_chars = len("Contents") + len("Introduction4") + len("Getting started5")
    assert report.dropped_text == {"table_of_contents": toc_chars, "page_number": 1}
    assert report.dropped_text_chars == toc_chars + 1
    assert any("table of contents was left out" in w for w in report.warnings)


def test_a_table_of_contents_in_a_content_control_goes_with_its_heading():
    gallery = '<w:sdtPr><w:docPartObj><w:docPartGallery w:val="Table of Contents"/></w:docPartObj></w:sdtPr>'
    toc = f"<w:sdt>{gallery}<w:sdtContent>{p('Table of Contents', 'TOCHeading')}{p('Intro 1', 'TOC1')}</w:sdtContent></w:sdt>"
    result = word_to_article(docx(p("Contents", "Heading1") + toc + p("The story."), styles=STYLES))
    assert result.html == "<p>The story.</p>"
    assert result.report.dropped_text_chars == len("Contents") + len("Table of Contents") + len("Intro 1")


def test_no_field_result_is_glued_to_the_text_beside_it():
    # A link inside a link (a REF with \h in a HYPERLINK field) after a tab: "Chapter 3", not "Chapter3".
    nested = field('HYPERLINK "https://example.org/"', r("Chapter") + "<w:r><w:tab/></w:r>" + field("REF _Ref1 \\h", r("3")))
    spaced = '<w:hyperlink w:anchor="x">' + r(" inside ") + "</w:hyperlink>"
    result = word_to_article(docx(p(runs=r("See ") + nested + r(" and") + spaced + r("after."))))
    text = result.text
    assert "Chapter 3" in text and "Chapter3" not in text
    assert "and inside after." in text
    assert "Chapter 3" in result.html.replace("</a>", "").replace('<a href="https://example.org/">', "")


# --- nothing disappears without a line in the report ----------------------------------------------

OLD_WORD = "http://schemas.microsoft.com/office/word/2003/wordml"


def test_a_text_box_in_an_older_namespace_is_reported_not_lost():
    old_box = (
        '<w:r><w:pict><v:shape style="width:200pt;height:50pt"><v:textbox>'
        f'<o2:txbxContent xmlns:o2="{OLD_WORD}"><o2:p><o2:r><o2:t>Old text box story</o2:t></o2:r></o2:p>'
        "</o2:txbxContent></v:textbox></v:shape></w:pict></w:r>"
    )
    result = word_to_article(docx(p(runs=r("Before the box.") + old_box)))
    assert result.text == "Before the box."
    assert result.report.dropped["unknown_element"] == 1
    assert result.report.dropped_text_chars == len("Old text box story")
    assert any("o2:txbxContent" in w and "18 characters" in w for w in result.report.warnings)


def test_a_vml_text_box_is_read():
    box = (
        '<w:r><w:pict><v:shape style="width:200pt;height:50pt"><v:textbox><w:txbxContent>'
        f"{p('Inside the box.')}</w:txbxContent></v:textbox></v:shape></w:pict></w:r>"
    )
    result = word_to_article(docx(p(runs=r("Anchor.") + box)))
    assert "Inside the box." in result.text and result.report.dropped_text_chars == 0


def test_alternate_content_counts_once_and_an_unreadable_choice_is_reported():
    same = p("Shown once.")
    readable = (
        '<w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wp:anchor><wp:extent cx="1" cy="1"/>'
        "<a:graphic><a:graphicData><wps:wsp><wps:txbx><w:txbxContent>"
        f"{same}</w:txbxContent></wps:txbx></wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing>"
        f"</mc:Choice><mc:Fallback><w:pict><v:shape><v:textbox><w:txbxContent>{same}</w:txbxContent>"
        "</v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent></w:r>"
    )
    future = (
        '<mc:AlternateContent><mc:Choice Requires="w99">'
        f"{p('From a future Word.')}</mc:Choice></mc:AlternateContent>"
    )
    result = word_to_article(docx(p(runs=r("Anchor.") + readable) + future))
    assert result.text.count("Shown once.") == 1 and "future" not in result.text
    assert result.report.dropped_text_chars == len("From a future Word.")
    assert any("AlternateContent (requires w99)" in w for w in result.report.warnings)


def test_an_unknown_wrapper_is_read_through():
    wrapped = f'<x:section xmlns:x="urn:example:wrapper">{p("Wrapped paragraph.")}</x:section>'
    result = word_to_article(docx(p("First.") + wrapped))
    assert result.text == "First.\nWrapped paragraph." and result.report.dropped_text_chars == 0


def test_hidden_text_is_left_out_and_counted():
    result = word_to_article(docx(p(runs=r("Shown. ") + r("Secret note.", "<w:vanish/>"))))
    assert result.text == "Shown."
    assert result.report.dropped["hidden_text"] == 1 and result.report.dropped_text_chars == len("Secret note.")


# --- alt text -------------------------------------------------------------------------------------


def test_alt_text_that_word_generated_is_treated_as_missing():
    generated = "Table&#10;&#10;Description automatically generated"
    medium = "A picture containing text, sign&#10;&#10;Description automatically generated with medium confidence"
    body = (
        p(runs=inline_image("rIdimage1.png", alt=generated))
        + p(runs=inline_image("rIdimage2.png", alt=medium))
        + p(runs=inline_image("rIdimage3.png", alt="The new town hall at night"))
    )
    media = {"image1.png": png(color=(1, 2, 3)), "image2.png": png(color=(4, 5, 6)), "image3.png": png()}
    result = word_to_article(docx(body, media=media))
    first, second, third = result.images
    assert (first.alt, second.alt, third.alt) == ("", "", "The new town hall at night")
    assert "automatically" not in result.html and 'alt=""' in result.html
    assert result.report.missing_alt == [first.key, second.key]
    assert any("2 image(s) need an alt text (2 had a description Word generated" in w for w in result.report.warnings)


# --- the featured image ---------------------------------------------------------------------------


def gif_1x1() -> bytes:
    out = io.BytesIO()
    PILImage.new("P", (1, 1)).save(out, "GIF")
    return out.getvalue()


def test_the_featured_image_is_the_largest_that_fits_not_the_first():
    media = {
        "spacer.gif": gif_1x1(),
        "bullet.png": png(7, 11),
        "strip.png": png_header_only(716, 22),
        "tall.png": png_header_only(300, 1000),  # 3.3:1, a banner on its side
        "photo.png": png_header_only(640, 480),
        "small.png": png_header_only(250, 200),
    }
    body = "".join(p(runs=inline_image(f"rId{name}")) for name in media) + p("A story with pictures.")
    result = word_to_article(docx(body, media=media))
    assert [(i.width, i.height) for i in result.images][:2] == [(1, 1), (7, 11)]
    assert (result.featured_image.width, result.featured_image.height) == (640, 480)
    assert result.summary()["featured_image"] == {"name": result.featured_image.key, "width": 640, "height": 480}


def test_no_featured_image_when_none_qualifies_and_the_report_says_so():
    media = {"spacer.gif": gif_1x1(), "strip.png": png_header_only(716, 22)}
    body = "".join(p(runs=inline_image(f"rId{name}")) for name in media)
    result = word_to_article(docx(body, media=media))
    assert result.featured_image is None and result.summary()["featured_image"] is None
    assert any(w.startswith("no featured image: none of the 2 image(s)") for w in result.report.warnings)


def test_a_featured_image_named_by_the_sender_wins():
    media = {"strip.png": png_header_only(716, 22), "photo.png": png_header_only(640, 480)}
    result = word_to_article(docx("".join(p(runs=inline_image(f"rId{name}")) for name in media), media=media))
    strip = result.images[0]
    assert choose_featured_image(result.images, "1").image is strip
    assert choose_featured_image(result.images, strip.sha256[:10]).image is strip
    unknown = choose_featured_image(result.images, "7")
    assert unknown.unknown_name and unknown.image is result.images[1]
    assert unknown.reason.startswith("the featured image '7' is not one of the article's images")


# --- words in every script ------------------------------------------------------------------------


def test_words_are_found_in_scripts_without_spaces():
    assert word_count("東京都は新しい図書館を開館すると発表した。") >= 8
    assert word_count("北京市政府今天宣布新的图书馆将于明年开放") >= 8
    assert word_count("กรุงเทพมหานครประกาศเปิดห้องสมุดแห่งใหม่") >= 4
    assert words("Größe, 2024: naïve! 😀") == ["Größe", "2024", "naïve"]
    assert sentences("最初の文。次の文！ Third one. Fourth.") == ["最初の文。", "次の文！", "Third one.", "Fourth."]


def test_text_is_cut_between_words():
    assert cut_at_word("Get your documents published and ready for print", 30) == "Get your documents published…"
    assert cut_at_word("東京都は新しい図書館を開館すると発表した", 12).endswith("…")
    assert len(cut_at_word("東京都は新しい図書館を開館すると発表した", 12)) <= 12
    assert cut_at_word("Short.", 30) == "Short."
