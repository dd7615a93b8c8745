"""HTML read into the document model and written by the converter's writers: the body of an e-mail
without a Word attachment (`convert_html`), and an article's HTML after the edit (`from_html`), whose
block markup so keeps the converter's structure (headings, lists, tables, figures with caption and alt
text, quotes, code, footnotes, formulas) with the edited words.

What is read is HTML that left through the allow-list (sanitize.py), parsed by BeautifulSoup with lxml
(`parse_html`). An element the model has no place for is read through (a `<div>`'s blocks, a
`<span>`'s text), so no text is lost. Images are the document's own only: an image placeholder, or a
URL the caller maps to an image key; any other image is left out and counted (mail bodies refer to
theirs by cid:, which is not kept).
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable, Mapping

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.dammit import EntitySubstitution
from bs4.element import PreformattedString
from bs4.formatter import HTMLFormatter

from app.core.errors import InvalidDocument
from app.documents.convert import write
from app.documents.model import (
    Break,
    Cell,
    Figure,
    Group,
    Image,
    Link,
    ListBlock,
    Math,
    Note,
    NoteRef,
    Paragraph,
    Row,
    Table,
    Text,
)
from app.documents.numbering import OL_TYPES
from app.documents.result import (
    ConversionReport,
    ConversionResult,
    DocumentMetadata,
    ExtractedImage,
    placeholder_key,
)
from app.documents.runprops import BOLD, CODE, ITALIC, SMALL_CAPS, STRIKE, SUBSCRIPT, SUPERSCRIPT, UNDERLINE
from app.documents.sanitize import clean_html
from app.documents.structure import arrange, first_heading
from app.documents.text_writer import text_of

# HTML5 void elements (`<img>`, not `<img/>`); text escaped as XML (&amp; &lt; &gt;), no other entity.
_FORMATTER = HTMLFormatter(
    entity_substitution=EntitySubstitution.substitute_xml, void_element_close_prefix=None
)


def parse_html(html: str) -> BeautifulSoup:
    """An HTML fragment as a tree, whose top-level nodes are the soup's children (lxml puts what it
    reads into html/head/body elements: they are unwrapped)."""
    soup = BeautifulSoup(html, "lxml")
    for name in ("html", "head", "body"):
        for tag in soup.find_all(name):
            tag.unwrap()
    return soup


def serialize(node: Tag) -> str:
    """A tree (or one element) back to HTML."""
    return node.decode(formatter=_FORMATTER)


_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_MARKS = {
    "strong": BOLD, "b": BOLD, "em": ITALIC, "i": ITALIC, "u": UNDERLINE, "s": STRIKE, "del": STRIKE,
    "strike": STRIKE, "sup": SUPERSCRIPT, "sub": SUBSCRIPT, "code": CODE, "kbd": CODE, "samp": CODE,
}  # fmt: skip
_LIST_FORMATS = {html_type: fmt for fmt, html_type in OL_TYPES.items()}  # <ol type="a"> -> lowerLetter
# Elements that hold blocks, not text: read as blocks wherever they stand.
_BLOCK_ELEMENTS = {
    "p", *_HEADINGS, "ul", "ol", "li", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "td", "th",
    "caption", "figure", "figcaption", "blockquote", "pre", "section", "div", "article", "aside", "header",
    "footer", "main", "nav", "address", "hr",
}  # fmt: skip
_UNREAD = {"script", "style", "template", "head", "title", "meta", "link"}
_NOTE_ITEM = re.compile(r"^fn-(\d{1,6})$")
_NOTE_REF = re.compile(r"#fn-(\d{1,6})")
_BACK_LINK = re.compile(r"#fnref-\d{1,6}")


def _number(value, default):
    """A whole number from an attribute (at most six digits), else `default`."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 7 else default


def _blank(nodes: list) -> bool:
    return all((type(n) is Text and not n.text.strip()) or type(n) is Break for n in nodes)


class HtmlReader:
    """One HTML fragment -> blocks and notes of the document model."""

    def __init__(self, image_keys: Mapping[str, str] | None = None, report: ConversionReport | None = None):
        self.image_keys = image_keys or {}  # an <img src> that is not a placeholder -> its image key
        self.report = report or ConversionReport()
        self._notes: dict[int, Note] = {}

    def read(self, html: str) -> tuple[list, list[Note]]:
        blocks = arrange(self.blocks(parse_html(html).children))
        notes = [self._notes[n] for n in sorted(self._notes)]
        for note in notes:
            note.blocks = arrange(note.blocks)
        return blocks, notes

    # --- blocks ------------------------------------------------------------------------------------

    def blocks(self, nodes: Iterable) -> list:
        """Block elements in order; text and inline elements between them make a paragraph."""
        out: list = []
        run: list = []
        for node in nodes:
            if isinstance(node, Tag) and node.name in _BLOCK_ELEMENTS:
                self._paragraph_of(run, out)
                out.extend(self.block(node))
            else:
                run.append(node)
        self._paragraph_of(run, out)
        return out

    def _paragraph_of(self, run: list, out: list) -> None:
        children = self.inline(run)
        run.clear()
        if not _blank(children):
            self.report.count("paragraph")
            out.append(Paragraph(children))

    def block(self, tag: Tag) -> list:
        name = tag.name
        if name == "p":
            self.report.count("paragraph")
            return [Paragraph(self.inline(tag.children), id=tag.get("id") or None)]
        if name in _HEADINGS:
            self.report.count("heading")
            return [Paragraph(self.inline(tag.children), kind="h", level=_HEADINGS[name], id=tag.get("id") or None)]
        if name in ("ul", "ol"):
            return [self.list(tag)]
        if name == "table":
            return [table] if (table := self.table(tag)).rows else []
        if name == "figure":
            return self.figure(tag)
        if name == "blockquote":
            return self.quote(tag)
        if name == "pre":  # one paragraph of lines, so the lines keep their indentation
            lines: list = []
            for line in tag.get_text().split("\n"):
                lines += [Break(), Text(line)] if lines else [Text(line)]
            return [Group("code", [Paragraph(lines, kind="code")])]
        if name == "section" and "footnotes" in tag.get("class", []):
            return self.notes(tag)
        if name == "hr":
            return []
        return self.blocks(tag.children)  # a container (div, section, a stray li or cell …): its content

    def list(self, tag: Tag) -> ListBlock:
        ordered = tag.name == "ol"
        fmt = _LIST_FORMATS.get(tag.get("type", ""), "decimal") if ordered else "bullet"
        block = ListBlock(ordered, fmt, _number(tag.get("start"), 1) if ordered else 1)
        for child in tag.children:
            if isinstance(child, Tag) and child.name == "li":
                self.report.count("list_item")
                block.items.append(self.blocks(child.children))
            elif content := self.blocks([child]):  # a list written right in the list: its item's
                if block.items:
                    block.items[-1].extend(content)
                else:
                    block.items.append(content)
        return block

    def table(self, tag: Tag) -> Table:
        self.report.count("table")
        rows = []
        for child in tag.find_all(["thead", "tbody", "tfoot", "tr"], recursive=False):
            in_head = child.name == "thead"
            for tr in [child] if child.name == "tr" else child.find_all("tr", recursive=False):
                cells = tr.find_all(["td", "th"], recursive=False)
                rows.append(
                    Row(
                        [
                            Cell(
                                self.blocks(cell.children),
                                colspan=_number(cell.get("colspan"), 1) or 1,
                                rowspan=_number(cell.get("rowspan"), 1) or 1,
                            )
                            for cell in cells
                        ],
                        header=in_head or (bool(cells) and all(c.name == "th" for c in cells)),
                    )
                )
        return Table(rows)

    def figure(self, tag: Tag) -> list:
        """An image or a table with its caption; anything else in a figure is read as blocks."""
        caption_tag = tag.find("figcaption", recursive=False)
        content = [c for c in tag.children if c is not caption_tag]
        blocks = arrange(self.blocks(content))
        caption = None
        if caption_tag is not None and not _blank(children := self.inline(caption_tag.children)):
            caption = Paragraph(children, kind="caption")
        if caption is None:
            return blocks
        first = next((c for c in tag.children if isinstance(c, Tag)), None)
        if len(blocks) == 1 and isinstance(blocks[0], (Figure, Table)):
            figure = blocks[0] if isinstance(blocks[0], Figure) else Figure(blocks[0])
            figure.caption, figure.caption_first = caption, first is caption_tag
            return [figure]
        return [caption, *blocks] if first is caption_tag else [*blocks, caption]

    def quote(self, tag: Tag) -> list:
        """Paragraphs (and headings) of a quote make a quote group; other blocks in it stand between
        groups (a quote group holds paragraphs only)."""
        out: list = []
        paragraphs: list[Paragraph] = []
        for block in self.blocks(tag.children):
            if isinstance(block, Paragraph):
                paragraphs.append(block)
                continue
            if paragraphs:
                out.append(Group("quote", paragraphs))
                paragraphs = []
            out.append(block)
        if paragraphs:
            out.append(Group("quote", paragraphs))
        return out

    def notes(self, section: Tag) -> list:
        """The footnotes section: each `<li id="fn-N">` is note N (its back-links dropped). A section
        without such items is read as any container."""
        items = section.find_all("li", id=_NOTE_ITEM)
        if not items:
            return self.blocks(section.children)
        for item in items:
            for back in item.find_all("a", href=_BACK_LINK):
                back.decompose()
            number = int(_NOTE_ITEM.match(item["id"]).group(1))
            self.note(number).blocks = self.blocks(item.children)
        return []

    def note(self, number: int) -> Note:
        if number not in self._notes:
            self.report.count("footnote")
            self._notes[number] = Note("footnote", number)
        return self._notes[number]

    # --- inline content ----------------------------------------------------------------------------

    def inline(self, nodes: Iterable, marks: int = 0) -> list:
        out: list = []
        for node in nodes:
            if isinstance(node, NavigableString):
                if not isinstance(node, PreformattedString):  # comments, CDATA, doctypes
                    out.append(Text(str(node).replace("\r", " ").replace("\n", " "), marks))
                continue
            if not isinstance(node, Tag) or node.name in _UNREAD:
                continue
            name = node.name
            if name == "br":
                out.append(Break())
            elif name == "img":
                if (image := self.image(node)) is not None:
                    out.append(image)
            elif name == "math":
                self.report.count("equation")
                text = " ".join(node.get_text(" ").split())
                out.append(Math(serialize(node), text, display=node.get("display") == "block"))
            elif name == "a" and node.get("href"):
                self.report.count("link")
                out.append(Link(node["href"], self.inline(node.children, marks)))
            elif name == "sup" and (ref := self.note_ref(node)) is not None:
                out.append(ref)
            elif name in _MARKS:
                out.extend(self.inline(node.children, marks | _MARKS[name]))
            elif name == "span" and "smallcaps" in node.get("class", []):
                out.extend(self.inline(node.children, marks | SMALL_CAPS))
            else:
                out.extend(self.inline(node.children, marks))
        return out

    def note_ref(self, sup: Tag) -> NoteRef | None:
        """`<sup><a href="#fn-N">N</a></sup>`: a reference to note N."""
        parts = [c for c in sup.children if not (isinstance(c, NavigableString) and not c.strip())]
        if len(parts) != 1 or not isinstance(parts[0], Tag) or parts[0].name != "a":
            return None
        found = _NOTE_REF.fullmatch(parts[0].get("href", ""))
        return NoteRef(self.note(int(found.group(1)))) if found else None

    def image(self, tag: Tag) -> Image | None:
        src = tag.get("src", "")
        key = placeholder_key(src) or self.image_keys.get(src)
        if key is None:
            self.report.drop("image")
            return None
        self.report.count("image")
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        return Image(
            ExtractedImage(key=key, sha256=key.split(".", 1)[0], content_type=content_type, data=b""),
            alt=tag.get("alt", ""),
            title=tag.get("title", ""),
            width=_number(tag.get("width"), None),
            height=_number(tag.get("height"), None),
        )


def from_html(html: str, *, title: str = "", image_keys: Mapping[str, str] | None = None) -> ConversionResult:
    """HTML (already through the allow-list) -> the outputs of a conversion: HTML, block markup,
    footnotes and text written from the document model. `image_keys` maps image URLs (an article's
    HTML once its images were stored) to image keys; the outputs hold image placeholders."""
    report = ConversionReport()
    blocks, notes = HtmlReader(image_keys, report).read(html)
    if dropped := report.dropped.get("image"):
        report.warn(f"{dropped} image(s) that are not the document's own were left out")
    written = write(blocks, notes)
    return ConversionResult(
        title=title or first_heading(blocks),
        html=written.html,
        blocks=written.blocks,
        text=text_of(blocks, notes),
        images=[],
        metadata=DocumentMetadata(title=title),
        report=report,
        footnotes=written.footnotes,
    )


def convert_html(data: bytes, *, title: str = "") -> ConversionResult:
    """The body of an e-mail without a Word attachment: sanitized with the same allow-list as converted
    Word documents, then read and written as any HTML (see `from_html`)."""
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidDocument("the message body is not UTF-8 text") from None
    result = from_html(clean_html(source), title=title)
    if not result.text.strip():
        raise InvalidDocument("the message body has no text left once cleaned")
    return result
