"""A document that arrives as HTML (the body of an e-mail without a Word attachment): sanitized with
the same allow-list as converted Word documents; no images (mail bodies refer to theirs by cid:,
which is not kept)."""

from __future__ import annotations

import lxml.html

from app.core.errors import InvalidDocument
from app.documents.result import ConversionReport, ConversionResult, DocumentMetadata
from app.documents.sanitize import clean_html

_BLOCKS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td", "th", "figcaption")


def convert_html(data: bytes, *, title: str = "") -> ConversionResult:
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidDocument("the message body is not UTF-8 text") from None
    html = clean_html(source).strip()
    if not html:
        raise InvalidDocument("the message body has no text left once cleaned")
    tree = lxml.html.fragment_fromstring(html, create_parent="div")
    report = ConversionReport()
    lines: list[str] = []
    first_heading = ""
    for element in tree.iter(*_BLOCKS):
        text = " ".join(element.text_content().split())
        if not text:
            continue
        report.count("heading" if element.tag.startswith("h") and len(element.tag) == 2 else "paragraph")
        if element.tag in ("h1", "h2") and not first_heading:
            first_heading = text
        lines.append(text)
    if not lines:  # bare text without block elements
        lines = [" ".join(tree.text_content().split())]
    report.count("link", len(tree.findall(".//a")))
    return ConversionResult(
        title=title or first_heading,
        html=html,
        blocks="",  # the publisher makes blocks from the HTML when a site wants them
        text="\n".join(lines),
        images=[],
        metadata=DocumentMetadata(title=title),
        report=report,
    )
