"""WordprocessingML -> document model.

One pass over the body with lxml, dispatching on tags. Word constructs that only wrap content
(content controls, smart tags, custom XML, insertions, bidi runs) are read through; deletions,
comments, field codes, page and section breaks are not. Fields (HYPERLINK, REF, SEQ) are followed
across runs and paragraphs with a small stack. Text boxes are emitted as blocks after the paragraph
that anchors them; notes are read after the body, in the order they are referenced.

What a web article should not have is left out and reported: tables of contents (TOC fields, their
content controls and paragraphs in TOC styles) and page numbers (PAGEREF fields). Hidden text is left
out too. Every w:t the reader visits is counted, so `unread_text()` can tell, after the pass, how
much text sat in elements it does not know (read through when they hold paragraphs or runs): that
text is reported, never lost silently.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

from lxml import etree

from app.core.errors import InvalidDocument, LimitExceeded
from app.documents import ns as N
from app.documents.images import ImageStore, is_generated_alt
from app.documents.inline import plain_text
from app.documents.model import (
    Break,
    Cell,
    Image,
    Link,
    Math,
    Note,
    NoteRef,
    Paragraph,
    Row,
    Table,
    Text,
)
from app.documents.numbering import Numbering
from app.documents.omml import OmmlConverter
from app.documents.package import Limits, Package, Relationship
from app.documents.result import ConversionReport
from app.documents.runprops import marks_of
from app.documents.styles import Styles
from app.documents.symbols import SYMBOL_FONT

SAFE_SCHEMES = {"http", "https", "mailto", "tel", "ftp", "ftps", "news", "sms"}
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")
_FIELD_ARG = re.compile(r'"([^"]*)"|(\S+)')
_EMU_PER_PX = 9525
_ON = {None, "1", "true", "on"}
# mc:Choice branches we can read (by the conventional prefixes of their Requires attribute).
_READABLE_CHOICES = {"wps", "wpg", "wpc", "wpi", "wp14", "w14", "w15", "w16se", "a14", "m", "v", "o", "w10"}
# Fields whose result is left out of the article: page numbers mean nothing on the web.
_OMITTED_FIELDS = {"TOC": "table_of_contents", "PAGEREF": "page_number"}
# A heading right before a table of contents that only names it.
_CONTENTS_HEADING = re.compile(
    r"^\W*(table of contents|contents|inhalt|inhaltsverzeichnis|sommaire|table des matières|índice|"
    r"indice|contenido|contenidos|sumário|inhoud|innehåll|indholdsfortegnelse|spis treści|obsah|"
    r"содержание|оглавление|目次|目录|目錄|목차)\W*$",
    re.I,
)
# Elements the reader skips on purpose (no article text in them, or text it reports itself).
_SKIPPED = {N.W_PPR, N.W_RPR, N.W_SECT_PR, N.W_TBL_PR, N.W_SDT_PR, N.W_DEL, N.W_MOVE_FROM}
_VML_LENGTH = re.compile(r"(width|height)\s*:\s*(\d+(?:\.\d+)?)\s*(pt|px|in|cm|mm)?", re.I)
_PX_PER_UNIT = {"pt": 96 / 72, "px": 1.0, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4, None: 96 / 72}


def safe_href(url: str | None) -> str | None:
    """The URL when its scheme is allowed (or it is relative or an anchor); None for javascript:,
    data:, vbscript:, file: and the like (browsers ignore control characters in schemes, so do we)."""
    if not url:
        return None
    url = url.strip()
    if url.startswith("#"):
        return url if len(url) > 1 else None
    squeezed = _CONTROL.sub("", url[:64])
    match = _SCHEME.match(squeezed)
    if match:
        if match.group(1).lower() not in SAFE_SCHEMES:
            return None
    elif squeezed.startswith("\\\\") or "\\" in squeezed[:3]:
        return None  # a Windows path: nothing a reader of the post can open
    return url.replace(" ", "%20")


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


@dataclass
class _Field:
    instr: list[str] = field(default_factory=list)
    in_code: bool = True
    link: Link | None = None
    depth: int = 0  # sink depth under the link
    omitted: str | None = None  # why its result is left out (a table of contents, a page number)


@dataclass
class _ReadState:
    """What belongs to the paragraph being read (saved and restored around text boxes)."""

    sinks: list
    floats: list
    bookmarks: list
    seq: str | None = None


class Reader:
    def __init__(
        self,
        package: Package,
        styles: Styles,
        numbering: Numbering,
        images: ImageStore,
        report: ConversionReport,
        limits: Limits,
    ):
        self.package = package
        self.styles = styles
        self.numbering = numbering
        self.images = images
        self.report = report
        self.limits = limits
        self.omml = OmmlConverter()
        self.notes: list[Note] = []
        self.comment_ids: set[str] = set()
        self._notes_by_key: dict[tuple[str, str], Note] = {}
        self._note_elements: dict[str, dict[str, etree._Element]] = {}
        self._note_parts: dict[str, str] = {}
        self._pending_notes: list[tuple[Note, etree._Element, str]] = []
        self._rels: dict[str, Relationship] = package.rels(package.main)
        self._fields: list[_Field] = []
        self._code_depth = 0  # fields whose code (not result) is being read
        self._state = _ReadState([], [], [])
        self._pending_bookmarks: list[str] = []
        self._carry: list | None = None  # content of a paragraph whose mark was deleted
        self._depth = 0
        self.internal_links: list[Link] = []
        self.bookmark_owner: dict[str, Paragraph] = {}
        self._omitted: list[str] = []  # what the text being read is left out as (innermost last)
        self._visited_chars = 0  # characters of every w:t read, kept or left out
        self._alternate_chars = 0  # characters in the branches of mc:AlternateContent not chosen
        self._roots: list[etree._Element] = []  # what was read: the body, then each note
        self.unknown: set[str] = set()  # tags of unknown elements that held text
        self._toc_started = False  # a table of contents began in the paragraph being read
        self._in_toc_paragraphs = False  # the last paragraph was a table of contents entry

    # --- parts ---------------------------------------------------------------------------------

    def load_notes(self, kind: str) -> None:
        """Index footnotes.xml or endnotes.xml (kind 'footnote' / 'endnote') by id."""
        part = self.package.related(self.package.main, f"{kind}s")
        try:
            root = self.package.xml(part) if part else None
        except LimitExceeded:
            raise
        except InvalidDocument:  # damaged notes cost the notes, not the article
            self.report.warn(f"the {kind}s could not be read and were left out")
            root = None
        elements: dict[str, etree._Element] = {}
        if root is not None:
            tag = N.W_FOOTNOTE if kind == "footnote" else N.W_ENDNOTE
            for note in root.iter(tag):
                if note.get(N.W_TYPE) in (None, "normal"):
                    elements[note.get(N.W_ID, "")] = note
        self._note_elements[kind] = elements
        self._note_parts[kind] = part or ""

    def read_body(self, body: etree._Element) -> list:
        self._roots.append(body)
        blocks = self.blocks(body)
        self._flush_carry(blocks)
        while self._pending_notes:  # notes may reference further notes
            note, element, part = self._pending_notes.pop(0)
            self._switch_part(part)
            self._fields, self._code_depth, self._omitted = [], 0, []
            self._roots.append(element)
            note.blocks = self.blocks(element)
            self._flush_carry(note.blocks)
        return blocks

    def unread_text(self) -> int:
        """Characters of text in what was read (body, notes) that the pass never visited: text in
        elements the reader does not know (named in `unknown`). Deleted text and unchosen
        alternatives do not count."""
        present = sum(text_chars(root) for root in self._roots)
        unread = max(0, present - self._alternate_chars - self._visited_chars)
        if unread:
            for root in self._roots:  # text of another vocabulary: named by its outermost element
                for t in _FOREIGN_TEXT(root, w=N.W_NS, m=N.M_NS):
                    outer = t
                    for ancestor in t.iterancestors():
                        if etree.QName(ancestor).namespace != etree.QName(t).namespace:
                            break
                        outer = ancestor
                    name = etree.QName(outer).localname
                    self.unknown.add(f"{outer.prefix}:{name}" if outer.prefix else name)
        return unread

    # --- text left out ---------------------------------------------------------------------------

    def _leave_out(self, name: str, element: etree._Element, occurrences: int = 1) -> None:
        """Skip an element whose text does not belong in the article, counting that text."""
        chars = text_chars(element)
        self._visited_chars += chars
        self.report.drop_text(name, chars, occurrences)

    def _start_omitting(self, name: str, out: list | None = None) -> None:
        """Text from here on is left out as `name` (until `_omitted` is popped). A table of contents
        takes the heading that only names it along."""
        if not self._omitted:
            self.report.drop(name)
            if name == "table_of_contents":
                self._toc_started = True
        self._omitted.append(name)
        if out is not None:
            self._drop_contents_heading(out)

    def _drop_contents_heading(self, out: list) -> None:
        if not self._toc_started:
            return
        self._toc_started = False
        last = out[-1] if out else None
        if isinstance(last, Paragraph) and last.kind in ("p", "h", "title"):
            text = plain_text(last.children)
            if _CONTENTS_HEADING.match(text):
                out.pop()
                self.report.drop_text("table_of_contents", len(text), 0)

    def _read_unknown(self, element: etree._Element, read) -> None:
        """An element the reader does not know: read through it (it may wrap paragraphs or runs);
        what stays unread is counted by `unread_text` and named here."""
        before = self._visited_chars
        read(element)
        if self._visited_chars - before < text_chars(element):
            self.unknown.add(etree.QName(element).localname if isinstance(element.tag, str) else "?")

    def _switch_part(self, part: str) -> None:
        self._rels = self.package.rels(part)

    # --- blocks --------------------------------------------------------------------------------

    def blocks(self, container: etree._Element) -> list:
        out: list = []
        for child in container:
            tag = child.tag
            if tag == N.W_P:
                self._paragraph(child, out)
            elif tag == N.W_TBL:
                self._table(child, out)
            elif tag == N.W_SDT:
                content = child.find(N.W_SDT_CONTENT)
                if content is None:
                    continue
                gallery = child.find(f"{N.W_SDT_PR}/{N.W_DOC_PART_GALLERY}")
                if gallery is not None and gallery.get(N.W_VAL) == "Table of Contents":
                    self._leave_out("table_of_contents", content)
                    self._toc_started = True
                    self._drop_contents_heading(out)
                    continue
                self.report.count("content_control")
                out.extend(self.blocks(content))
            elif tag in (N.W_CUSTOM_XML, N.W_SMART_TAG, N.W_INS, N.W_MOVE_TO):
                out.extend(self.blocks(child))
            elif tag == N.MC_ALTERNATE_CONTENT:
                chosen = self._choose(child)
                if chosen is not None:
                    out.extend(self.blocks(chosen))
            elif tag in (N.W_DEL, N.W_MOVE_FROM):
                self.report.count("tracked_change")
            elif tag == N.W_BOOKMARK_START:
                self._pending_bookmarks.append(child.get(N.W_NAME, ""))
            elif tag == N.W_ALT_CHUNK:
                self.report.drop("embedded_document")
                self.report.warn("a document embedded as an 'altChunk' was left out")
            elif tag in (N.W_R, N.W_HYPERLINK, N.W_FLD_SIMPLE):  # inline content outside a paragraph
                paragraph = etree.Element(N.W_P)
                paragraph.append(copy.deepcopy(child))
                self._paragraph(paragraph, out)
            elif tag not in _SKIPPED and has_text(child):
                self._read_unknown(child, lambda el: out.extend(self.blocks(el)))
        return out

    def _flush_carry(self, out: list) -> None:
        if self._carry:
            out.append(Paragraph(self._carry))
        self._carry = None

    def _paragraph(self, p: etree._Element, out: list) -> None:
        style_id = num_id = None
        ilvl: int | None = None
        mark_deleted = indented = drop_cap = False
        ppr = p.find(N.W_PPR)
        if ppr is not None:
            for prop in ppr:
                tag = prop.tag
                if tag == N.W_PSTYLE:
                    style_id = prop.get(N.W_VAL)
                elif tag == N.W_NUMPR:
                    num_el, ilvl_el = prop.find(N.W_NUM_ID), prop.find(N.W_ILVL)
                    if num_el is not None:
                        num_id = num_el.get(N.W_VAL)
                    if ilvl_el is not None:
                        ilvl = _int(ilvl_el.get(N.W_VAL))
                elif tag == N.W_RPR:
                    mark_deleted = prop.find(N.W_DEL) is not None or prop.find(N.W_MOVE_FROM) is not None
                elif tag == N.W_FRAME_PR:
                    drop_cap = prop.get(N.W_DROP_CAP) in ("drop", "margin")
                elif tag == N.W_IND:
                    indented = _int(prop.get(N.W_LEFT) or prop.get(N.W_START_IND)) > 0

        inlines: list = []
        state = self._state
        state.sinks = [inlines]
        state.bookmarks, self._pending_bookmarks = self._pending_bookmarks, []
        state.seq = None
        for fld in self._fields:  # a hyperlink field that spans paragraphs goes on in this one
            if fld.link is not None and not fld.in_code:
                link = Link(fld.link.href)
                if link.href.startswith("#"):
                    self.internal_links.append(link)
                state.sinks[-1].append(link)
                state.sinks.append(link.children)
                fld.link, fld.depth = link, len(state.sinks) - 1
        style = self.styles.paragraph(style_id)
        toc_entry = style.role == "toc"  # an entry (or the heading) of a table of contents
        if toc_entry:
            if not self._in_toc_paragraphs:
                self._start_omitting("table_of_contents")
            else:
                self._omitted.append("table_of_contents")
        self._in_toc_paragraphs = toc_entry
        try:
            self._inlines(p)
        finally:
            if toc_entry:
                self._omitted.pop()
        self._drop_contents_heading(out)
        floats, state.floats = state.floats, []
        if self._carry:
            inlines[:0] = self._carry
            self._carry = None
        if mark_deleted or drop_cap:  # a deleted paragraph mark, or a drop cap: joins the next one
            if mark_deleted:
                self.report.count("tracked_change")
            self._carry = inlines
            self._pending_bookmarks = state.bookmarks + self._pending_bookmarks
            out.extend(floats)
            return

        # Headings come from the style (its name, or an outline level defined in it or in a style it
        # derives from). An outline level set on one paragraph is ignored: real files carry it on
        # body text (e.g. "Sunset: <picture>" in a .doc), it only feeds Word's navigation pane.
        heading = style.heading
        para = Paragraph(inlines)
        if heading:
            para.kind, para.level = "h", heading
            self.report.count("heading")
        elif style.role in ("title", "subtitle", "code", "quote"):
            para.kind = style.role
        elif style.role == "caption" or state.seq:
            para.kind, para.seq = "caption", state.seq
        if para.kind == "p" and not style.outline:  # numbered headings stay headings
            if num_id is None:
                num_id = style.num_id
            if ilvl is None:
                ilvl = style.ilvl or 0
            if num_id is not None:
                para.list = self.numbering.item(num_id, ilvl)
            if para.list is None:
                # Numbering taken off an indented paragraph, or a "List Paragraph" without it:
                # Word's way of writing a second paragraph inside a list item.
                para.list_paragraph = style.role == "list_paragraph" or (num_id == "0" and indented)
            else:
                self.report.count("list_item")

        if has_content(inlines):
            if state.bookmarks:
                para.bookmarks = state.bookmarks
                for name in state.bookmarks:
                    self.bookmark_owner.setdefault(name, para)
            out.append(para)
        else:
            if inlines:
                self.report.drop("empty_paragraph")
            self._pending_bookmarks = state.bookmarks + self._pending_bookmarks
        out.extend(floats)

    def _table(self, tbl: etree._Element, out: list) -> None:
        if self._depth >= self.limits.max_nesting:
            self._leave_out("nested_too_deep", tbl)
            return
        self._depth += 1
        self.report.count("table")
        first_row_header = False
        tblpr = tbl.find(N.W_TBL_PR)
        look = tblpr.find(N.W_TBL_LOOK) if tblpr is not None else None
        if look is not None:
            flag = look.get(N.W_FIRST_ROW)
            if flag is not None:
                first_row_header = flag in ("1", "true", "on")
            else:
                try:
                    first_row_header = bool(int(look.get(N.W_VAL, "0"), 16) & 0x0020)
                except ValueError:
                    pass
        rows: list[Row] = []
        merging: dict[int, Cell] = {}  # grid column -> the cell a vertical merge started in
        for tr in _children(tbl, N.W_TR):
            trpr = tr.find(N.W_TR_PR)
            header = False
            column = 0
            if trpr is not None:
                if trpr.find(N.W_DEL) is not None:
                    self.report.count("tracked_change")
                    continue
                mark = trpr.find(N.W_TBL_HEADER)
                header = mark is not None and mark.get(N.W_VAL) in _ON
                before = trpr.find(N.W_GRID_BEFORE)
                column = _int(before.get(N.W_VAL)) if before is not None else 0
            cells: list[Cell] = []
            for tc in _children(tr, N.W_TC):
                span, vmerge = 1, None
                tcpr = tc.find(N.W_TC_PR)
                if tcpr is not None:
                    span_el = tcpr.find(N.W_GRID_SPAN)
                    span = max(1, min(_int(span_el.get(N.W_VAL), 1), 1000)) if span_el is not None else 1
                    vmerge = tcpr.find(N.W_V_MERGE)
                if vmerge is not None and vmerge.get(N.W_VAL) != "restart":
                    owner = merging.get(column)
                    if owner is not None:
                        owner.rowspan += 1
                        column += span
                        continue
                cell = Cell(self.blocks(tc), colspan=span)
                if vmerge is not None:
                    merging[column] = cell
                else:
                    merging.pop(column, None)
                cells.append(cell)
                column += span
            rows.append(Row(cells, header))
        leading = 0
        while leading < len(rows) and rows[leading].header:
            leading += 1
        for row in rows[leading:]:
            row.header = False
        if leading == 0 and first_row_header and len(rows) > 1:
            leading = 1
        # A header cell spanning rows down takes those rows into the header (a rowspan cannot
        # cross from <thead> into <tbody>).
        i = 0
        while i < leading < len(rows):
            leading = max([leading] + [i + cell.rowspan for cell in rows[i].cells])
            i += 1
        for row in rows[:leading]:
            row.header = True
        self._depth -= 1
        if rows:
            out.append(Table(rows))

    # --- inline content ------------------------------------------------------------------------

    def _append(self, node) -> None:
        self._state.sinks[-1].append(node)

    def _text(self, text: str, marks: int) -> None:
        sink = self._state.sinks[-1]
        if sink:
            last = sink[-1]
            if type(last) is Text and last.marks == marks:
                last.text += text
                return
        sink.append(Text(text, marks))

    def _inlines(self, parent: etree._Element) -> None:
        for child in parent:
            tag = child.tag
            if tag == N.W_R:
                self._run(child)
            elif tag == N.W_HYPERLINK:
                self._hyperlink(child)
            elif tag in (N.W_INS, N.W_MOVE_TO):
                self.report.count("tracked_change")
                self._inlines(child)
            elif tag in (N.W_SMART_TAG, N.W_CUSTOM_XML, N.W_DIR, N.W_BDO):
                self._inlines(child)
            elif tag == N.W_SDT:
                content = child.find(N.W_SDT_CONTENT)
                if content is not None:
                    self.report.count("content_control")
                    self._inlines(content)
            elif tag == N.W_FLD_SIMPLE:
                self._simple_field(child)
            elif tag in (N.W_DEL, N.W_MOVE_FROM):
                self.report.count("tracked_change")
            elif tag == N.W_BOOKMARK_START:
                self._state.bookmarks.append(child.get(N.W_NAME, ""))
            elif tag == N.M_OMATH_PARA or tag == N.M_OMATH:
                self._math(child)
            elif tag == N.MC_ALTERNATE_CONTENT:
                chosen = self._choose(child)
                if chosen is not None:
                    self._inlines(chosen)
            elif tag not in _SKIPPED and has_text(child):
                self._read_unknown(child, self._inlines)

    def _run(self, r: etree._Element) -> None:
        marks, hidden, symbol = 0, False, False
        rpr = r.find(N.W_RPR)
        if rpr is not None:
            style = rpr.find(N.W_RSTYLE)
            if style is not None:
                marks = self.styles.character_marks(style.get(N.W_VAL, ""))
            marks = marks_of(rpr, marks)
            vanish = rpr.find(N.W_VANISH)
            hidden = vanish is not None and vanish.get(N.W_VAL) in _ON
            fonts = rpr.find(N.W_RFONTS)
            symbol = fonts is not None and fonts.get(N.W_ASCII) == "Symbol"
        self._run_content(r, marks, hidden, symbol)

    def _run_content(self, r: etree._Element, marks: int, hidden: bool, symbol: bool = False) -> None:  # noqa: C901
        hidden_chars = 0
        for child in r:
            tag = child.tag
            if tag == N.W_T:
                text = child.text
                if not text:
                    continue
                self._visited_chars += len(text)
                if self._code_depth:
                    continue
                if hidden:
                    hidden_chars += len(text)
                elif self._omitted:
                    self.report.drop_text(self._omitted[0], len(text), 0)
                else:
                    self._text(text.translate(SYMBOL_FONT) if symbol else text, marks)
            elif tag == N.W_FLD_CHAR:
                kind = child.get(N.W_FLD_CHAR_TYPE)
                if kind == "begin" and not (self._code_depth or hidden or self._omitted):
                    self._form_checkbox(child, marks)
                self._field_char(kind)
            elif tag == N.W_INSTR_TEXT:
                if self._fields and self._fields[-1].in_code:
                    self._fields[-1].instr.append(child.text or "")
            elif tag == N.W_RPR:
                continue
            elif self._code_depth or hidden or self._omitted:
                if self._code_depth:  # a field's code, not its result: nothing Word shows
                    self._visited_chars += text_chars(child)
                elif hidden:
                    hidden_chars += text_chars(child)
                    self._visited_chars += text_chars(child)
                else:
                    self._leave_out(self._omitted[0], child, 0)
            elif tag == N.W_TAB or tag == N.W_PTAB:
                self._text("\t", marks)
            elif tag == N.W_BR:
                if child.get(N.W_TYPE) in (None, "textWrapping"):
                    self._append(Break())
                else:  # page and column breaks: no trace in HTML, but words stay apart
                    self._text(" ", marks)
            elif tag == N.W_CR:
                self._append(Break())
            elif tag == N.W_NO_BREAK_HYPHEN:
                self._text("\u2011", marks)
            elif tag == N.W_SOFT_HYPHEN:
                self._text("\u00ad", marks)
            elif tag == N.W_SYM:
                self._symbol(child, marks)
            elif tag == N.W_DRAWING:
                self._drawing(child)
            elif tag == N.W_PICT or tag == N.W_OBJECT:
                self._vml(child)
            elif tag == N.W_FOOTNOTE_REFERENCE:
                self._note_ref("footnote", child.get(N.W_ID, ""))
            elif tag == N.W_ENDNOTE_REFERENCE:
                self._note_ref("endnote", child.get(N.W_ID, ""))
            elif tag == N.W_COMMENT_REFERENCE:
                self.comment_ids.add(child.get(N.W_ID, ""))
            elif tag == N.MC_ALTERNATE_CONTENT:
                chosen = self._choose(child)
                if chosen is not None:
                    self._run_content(chosen, marks, hidden, symbol)
            elif tag == N.W_RUBY:
                base = child.find(N.W_RUBY_BASE)
                if base is not None:
                    self._inlines(base)
                annotation = child.find(N.W_RUBY_TEXT)
                if annotation is not None:  # the reading aid above the base text (no HTML for it)
                    self._leave_out("ruby_text", annotation)
            elif has_text(child):
                self._read_unknown(child, lambda el: self._run_content(el, marks, hidden, symbol))
        if hidden_chars:
            self.report.drop_text("hidden_text", hidden_chars)

    def _symbol(self, sym: etree._Element, marks: int) -> None:
        try:
            code = int(sym.get(N.W_CHAR, ""), 16)
        except ValueError:
            return
        if (sym.get(N.W_FONT) or "").lower() == "symbol":
            char = SYMBOL_FONT.get(code, "")
        elif 0xF000 <= code <= 0xF0FF:
            return  # Wingdings and friends draw pictures: no faithful Unicode equivalent
        elif 0x20 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            char = chr(code)
        else:
            return
        if char:
            self._text(char, marks)

    def _choose(self, alternate: etree._Element) -> etree._Element | None:
        """The branch to read: the first Choice whose requirements we read, else the Fallback. The
        other branches are alternatives of the same content; when none can be read, the first one
        is what gets reported as unread."""
        branches = list(alternate.iterchildren(N.MC_CHOICE, N.MC_FALLBACK))
        chosen = next(
            (
                b
                for b in branches
                if b.tag == N.MC_CHOICE
                and all(prefix in _READABLE_CHOICES for prefix in b.get("Requires", "").split())
            ),
            None,
        )
        if chosen is None:
            chosen = alternate.find(N.MC_FALLBACK)
        counted = chosen if chosen is not None else next(iter(branches), None)
        for branch in branches:
            if branch is not counted:
                self._alternate_chars += text_chars(branch)
        if chosen is None and counted is not None and has_text(counted):
            self.unknown.add(f"AlternateContent (requires {counted.get('Requires', '?')})")
        return chosen

    # hyperlinks and fields

    def _open_link(self, href: str | None) -> Link | None:
        if self._omitted:  # no link around text that is left out
            return None
        safe = safe_href(href)
        if safe is None:
            if href:
                self.report.drop("unsafe_link")
            return None
        link = Link(safe)
        if safe.startswith("#"):
            self.internal_links.append(link)
        self.report.count("link")
        self._append(link)
        return link

    def _hyperlink(self, el: etree._Element) -> None:
        rid, anchor = el.get(N.R_ID), el.get(N.W_ANCHOR)
        href = None
        if rid:
            rel = self._rels.get(rid)
            if rel is not None and rel.external:
                href = rel.target + (f"#{anchor}" if anchor else "")
        elif anchor:
            href = f"#{anchor}"
        link = self._open_link(href)
        sinks = self._state.sinks
        depth = len(sinks)
        if link is not None:
            sinks.append(link.children)
        self._inlines(el)
        del sinks[depth:]

    def _field_link(self, instr: str) -> str | None:
        """The target of a HYPERLINK or REF ... \\h field, None for other fields."""
        args = [a or b for a, b in _FIELD_ARG.findall(instr)]
        if not args:
            return None
        name = args[0].upper()
        if name == "HYPERLINK":
            url, anchor, i = "", "", 1
            while i < len(args):
                if args[i] == "\\l" and i + 1 < len(args):
                    anchor, i = args[i + 1], i + 2
                elif args[i].startswith("\\"):
                    i += 2 if args[i] in ("\\o", "\\t") else 1
                else:
                    url, i = url or args[i], i + 1
            if url or anchor:
                return url + (f"#{anchor}" if anchor else "")
        elif name in ("REF", "PAGEREF") and len(args) > 1 and "\\h" in (a.lower() for a in args[2:]):
            return f"#{args[1]}"
        elif name == "SEQ" and len(args) > 1:
            self._state.seq = args[1]
        return None

    def _field_char(self, kind: str | None) -> None:
        fields = self._fields
        if kind == "begin":
            if len(fields) < 64:
                fields.append(_Field())
                self._code_depth += 1
        elif kind == "separate":
            if fields and fields[-1].in_code:
                fld = fields[-1]
                fld.in_code = False
                self._code_depth -= 1
                if self._code_depth == 0:
                    instr = "".join(fld.instr)
                    fld.omitted = _OMITTED_FIELDS.get(_field_name(instr))
                    if fld.omitted:
                        self._start_omitting(fld.omitted)
                        return
                    link = self._open_link(self._field_link(instr))
                    if link is not None:
                        self._state.sinks.append(link.children)
                        fld.link, fld.depth = link, len(self._state.sinks) - 1
        elif kind == "end" and fields:
            fld = fields.pop()
            if fld.in_code:
                self._code_depth -= 1
                self._field_link("".join(fld.instr))  # a field without result can still be a SEQ
            elif fld.omitted:
                if self._omitted:
                    self._omitted.pop()
            elif fld.link is not None:
                del self._state.sinks[max(fld.depth, 1) :]

    def _form_checkbox(self, fld_char: etree._Element, marks: int) -> None:
        """A legacy form checkbox (FORMCHECKBOX) shows no result text: write its state as ☐/☒."""
        box = fld_char.find(N.W_FF_CHECKBOX)
        if box is None:
            return
        state = box.find(N.W_CHECKED)
        if state is None:
            state = box.find(N.W_DEFAULT_STATE)
        checked = state is not None and state.get(N.W_VAL) in _ON
        self.report.count("checkbox")
        self._text("☒" if checked else "☐", marks)

    def _simple_field(self, el: etree._Element) -> None:
        instr = el.get(N.W_INSTR, "")
        omitted = _OMITTED_FIELDS.get(_field_name(instr))
        if omitted:
            self._start_omitting(omitted)
            try:
                self._inlines(el)
            finally:
                self._omitted.pop()
            return
        link = self._open_link(self._field_link(instr))
        sinks = self._state.sinks
        depth = len(sinks)
        if link is not None:
            sinks.append(link.children)
        self._inlines(el)
        del sinks[depth:]

    # notes, equations

    def _note_ref(self, kind: str, note_id: str) -> None:
        if kind not in self._note_elements:
            self.load_notes(kind)
        note = self._notes_by_key.get((kind, note_id))
        if note is None:
            element = self._note_elements[kind].get(note_id)
            if element is None:
                return
            note = Note(kind, len(self.notes) + 1)
            self.notes.append(note)
            self._notes_by_key[(kind, note_id)] = note
            self._pending_notes.append((note, element, self._note_parts[kind]))
            self.report.count(kind)
        self._append(NoteRef(note))

    def _math(self, el: etree._Element) -> None:
        self._visited_chars += text_chars(el)  # the equation converter reads all of it
        if self._omitted:
            return
        unsupported = self.omml.unsupported
        mathml, text = self.omml.convert(el, el.tag == N.M_OMATH_PARA)
        self.report.count("equation")
        if self.omml.unsupported > unsupported:
            self.report.approximate("equation")
        self._append(Math(mathml, text, el.tag == N.M_OMATH_PARA))

    # images and text boxes

    def _image(self, rid: str | None, link_rid: str | None, alt: str, title: str, size: tuple | None) -> None:
        rel = self._rels.get(rid) if rid else None
        if rel is None or rel.external:
            if link_rid or (rel is not None and rel.external):
                self.report.drop("linked_image")
                self.report.warn("an image linked to an outside file (not embedded) was left out")
            return
        image = self.images.from_part(rel.target)
        if image is None:
            return
        alt, title = alt.strip(), title.strip()
        if is_generated_alt(alt):  # Word's automatic description is no description: the image needs one
            self.report.count("generated_alt_text")
            alt = ""
        if alt and not image.alt:
            image.alt = alt
        if title and not image.title:
            image.title = title
        width, height = size if size else (None, None)
        self.report.count("image")
        self._append(Image(image, alt, title, width, height))

    def _drawing(self, drawing: etree._Element) -> None:
        for frame in drawing:
            if frame.tag not in (N.WP_INLINE, N.WP_ANCHOR):
                continue
            doc_pr = frame.find(N.WP_DOC_PR)
            if doc_pr is not None and doc_pr.get("hidden") in ("1", "true"):
                if has_text(frame):
                    self._leave_out("hidden_text", frame)
                continue
            alt = doc_pr.get("descr", "") if doc_pr is not None else ""
            title = doc_pr.get("title", "") if doc_pr is not None else ""
            if frame.tag == N.WP_ANCHOR:
                self.report.count("floating_image")
            data = next(frame.iter(N.A_GRAPHIC_DATA), None)
            uri = data.get("uri", "") if data is not None else ""
            if uri.endswith("/chart") or "chartex" in uri:
                self.report.drop("chart")
                self.report.warn("a chart was left out (charts are not converted)")
                continue
            if uri.endswith("/diagram"):
                self.report.drop_text("diagram", self._diagram_chars(frame))
                self.report.warn("a SmartArt diagram was left out")
                continue
            blips = [b for b in frame.iter(N.A_BLIP) if _outside_text_box(b, frame)]
            size = None
            extent = frame.find(N.WP_EXTENT)
            if extent is not None and len(blips) == 1:
                width = _int(extent.get("cx")) // _EMU_PER_PX
                height = _int(extent.get("cy")) // _EMU_PER_PX
                size = (width, height) if width > 0 and height > 0 else None
            for blip in blips:
                self._image(blip.get(N.R_EMBED), blip.get(N.R_LINK), alt, title, size)
            for box in frame.iter(N.W_TXBX_CONTENT):
                if _outside_text_box(box, frame):
                    self._text_box(box)

    def _vml(self, el: etree._Element) -> None:
        if el.tag == N.W_OBJECT:
            self.report.count("embedded_object")
        for data in el.iter(N.V_IMAGEDATA):
            if not _outside_text_box(data, el):
                continue
            shape = data.getparent()
            alt = shape.get("alt", "") if shape is not None else ""
            size = _vml_size(shape.get("style", "")) if shape is not None else None
            self._image(data.get(N.R_ID), data.get(f"{{{N.R_NS}}}href"), alt, data.get(N.O_TITLE, ""), size)
        for box in el.iter(N.W_TXBX_CONTENT):
            if _outside_text_box(box, el):
                self._text_box(box)

    def _text_box(self, box: etree._Element) -> None:
        if self._depth >= self.limits.max_nesting:
            self._leave_out("nested_too_deep", box)
            return
        self.report.count("text_box")
        saved = (self._state, self._fields, self._code_depth, self._pending_bookmarks, self._carry, self._omitted)
        self._state, self._fields, self._code_depth = _ReadState([], [], []), [], 0
        self._pending_bookmarks, self._carry, self._omitted = [], None, []
        self._depth += 1
        try:
            blocks = self.blocks(box)
            self._flush_carry(blocks)
        finally:
            self._depth -= 1
            (
                self._state, self._fields, self._code_depth, self._pending_bookmarks, self._carry, self._omitted
            ) = saved
        self._state.floats.extend(blocks)

    def _diagram_chars(self, frame: etree._Element) -> int:
        """Characters of a SmartArt diagram's text (in its data part, which is not converted)."""
        ids = next(frame.iter(N.DGM_REL_IDS), None)
        rel = self._rels.get(ids.get(N.R_DM, "")) if ids is not None else None
        if rel is None or rel.external:
            return 0
        try:
            root = self.package.xml(rel.target)
        except InvalidDocument:
            return 0
        return sum(len(t.text or "") for t in root.iter(N.A_T)) if root is not None else 0


_ARTICLE_TEXT = etree.XPath(
    ".//w:t[not(ancestor::w:del or ancestor::w:moveFrom)]/text()"
    " | .//*[local-name()='t' and namespace-uri()!=$w and namespace-uri()!=$m]/text()",
    namespaces={"w": N.W_NS},
)
_FOREIGN_TEXT = etree.XPath(
    ".//*[local-name()='t' and namespace-uri()!=$w and namespace-uri()!=$m][text()]", namespaces={"w": N.W_NS}
)
_HAS_TEXT = etree.XPath(
    "boolean(.//w:t[text()] | .//*[local-name()='t' and namespace-uri()!=$w and namespace-uri()!=$m][text()])",
    namespaces={"w": N.W_NS},
)


def text_chars(element: etree._Element) -> int:
    """Characters of document text under `element`: its w:t (not deleted ones) and any `t` element
    of another vocabulary (an older Word namespace, DrawingML) that the reader would not read."""
    return sum(len(t) for t in _ARTICLE_TEXT(element, w=N.W_NS, m=N.M_NS))


def has_text(element: etree._Element) -> bool:
    return bool(_HAS_TEXT(element, w=N.W_NS, m=N.M_NS))


def _field_name(instr: str) -> str:
    first = instr.split(None, 1)
    return first[0].upper() if first else ""


def has_content(inlines: list) -> bool:
    for node in inlines:
        kind = type(node)
        if kind is Text:
            if not node.text.isspace():
                return True
        elif kind is Link:
            if has_content(node.children):
                return True
        elif kind is not Break:
            return True
    return False


def _children(parent: etree._Element, tag: str):
    """Children with this tag, looking through content controls, custom XML and insertions."""
    for child in parent:
        if child.tag == tag:
            yield child
        elif child.tag == N.W_SDT:
            content = child.find(N.W_SDT_CONTENT)
            if content is not None:
                yield from _children(content, tag)
        elif child.tag in (N.W_CUSTOM_XML, N.W_INS, N.W_MOVE_TO):
            yield from _children(child, tag)


def _outside_text_box(node: etree._Element, container: etree._Element) -> bool:
    """True when no text box lies between `node` and `container` (text boxes are read on their own)."""
    for ancestor in node.iterancestors():
        if ancestor is container:
            return True
        if ancestor.tag == N.W_TXBX_CONTENT:
            return False
    return True


def _vml_size(style: str) -> tuple[int, int] | None:
    found = {
        k.lower(): float(v) * _PX_PER_UNIT[u.lower() if u else None] for k, v, u in _VML_LENGTH.findall(style)
    }
    if "width" in found and "height" in found and found["width"] > 0 and found["height"] > 0:
        return round(found["width"]), round(found["height"])
    return None
