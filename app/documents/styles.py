"""styles.xml: what a paragraph or character style means once its `basedOn` chain is followed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from app.documents.ns import (
    W_BASED_ON,
    W_DEFAULT,
    W_ILVL,
    W_NAME,
    W_NUM_ID,
    W_NUMPR,
    W_OUTLINE_LVL,
    W_PPR,
    W_RPR,
    W_STYLE,
    W_STYLE_ID,
    W_TYPE,
    W_VAL,
)
from app.documents.runprops import CODE, marks_of

_HEADING_NAME = re.compile(r"^(?:heading|überschrift|titre|titolo|encabezado|kop)\s*([1-9])$")

# Paragraph roles recognised by style name (lower-case), anywhere in the basedOn chain.
_ROLE_BY_NAME = {
    "title": "title",
    "subtitle": "subtitle",
    "caption": "caption",
    "quote": "quote",
    "intense quote": "quote",
    "block text": "quote",
    "block quote": "quote",
    "source code": "code",
    "html preformatted": "code",
    "code": "code",
    "macro text": "code",
    "list paragraph": "list_paragraph",
    "list continue": "list_paragraph",
    # Entries and heading of a table of contents (Word names its built-in styles in English in the
    # file, whatever the language of its interface).
    "toc heading": "toc",
    "table of figures": "toc",
    **{f"toc {n}": "toc" for n in range(1, 10)},
}


@dataclass(frozen=True)
class ParagraphStyle:
    heading: int = 0  # 1..6, 0 when not a heading
    outline: int = 0  # Word's heading level, 1..9 (levels 7-9 are paragraphs in HTML, never list items)
    role: str = ""  # "", "title", "subtitle", "caption", "quote", "code", "list_paragraph", "toc"
    num_id: str | None = None  # numbering inherited from the style
    ilvl: int | None = None


_PLAIN = ParagraphStyle()


@dataclass
class _Raw:
    kind: str
    name: str
    based_on: str | None
    element: etree._Element


class Styles:
    def __init__(self, root: etree._Element | None):
        self._raw: dict[str, _Raw] = {}
        self._by_name: dict[str, str] = {}
        self.default_paragraph: str | None = None
        self._para_cache: dict[str | None, ParagraphStyle] = {}
        self._char_cache: dict[str, int] = {}
        if root is None:
            return
        for style in root.iter(W_STYLE):
            sid = style.get(W_STYLE_ID)
            if not sid:
                continue
            name_el = style.find(W_NAME)
            name = (name_el.get(W_VAL) if name_el is not None else None) or sid
            based = style.find(W_BASED_ON)
            kind = style.get(W_TYPE, "paragraph")
            self._raw[sid] = _Raw(
                kind, name.strip().lower(), based.get(W_VAL) if based is not None else None, style
            )
            self._by_name.setdefault(name.strip().lower(), sid)
            if kind == "paragraph" and style.get(W_DEFAULT) in ("1", "true", "on"):
                self.default_paragraph = sid

    def _resolve(self, style_id: str | None) -> _Raw | None:
        if style_id is None:
            return None
        raw = self._raw.get(style_id)
        if raw is None:  # a few producers reference styles by name
            sid = self._by_name.get(style_id.lower())
            raw = self._raw.get(sid) if sid else None
        return raw

    def _chain(self, style_id: str | None):
        seen: set[str] = set()
        raw = self._resolve(style_id)
        while raw is not None and raw.name not in seen and len(seen) < 32:
            seen.add(raw.name)
            yield raw
            raw = self._resolve(raw.based_on)

    def name(self, style_id: str | None) -> str:
        raw = self._resolve(style_id)
        return raw.name if raw else ""

    def paragraph(self, style_id: str | None) -> ParagraphStyle:
        """What a paragraph style means (heading level, role, inherited numbering)."""
        key = style_id or self.default_paragraph
        cached = self._para_cache.get(key)
        if cached is not None:
            return cached
        named: int | None = None  # from a "heading N" name in the chain (nearest wins)
        outline: int | None = None  # from an outline level in the chain (nearest wins)
        role = ""
        num_id = ilvl = None
        for raw in self._chain(key):
            if named is None:
                match = _HEADING_NAME.match(raw.name)
                if match:
                    named = int(match.group(1))
                elif raw.name == "title":
                    named = 0
            ppr = raw.element.find(W_PPR)
            if ppr is not None:
                if outline is None:
                    found = ppr.find(W_OUTLINE_LVL)
                    if found is not None:
                        outline = _int(found.get(W_VAL), 9) + 1
                numpr = ppr.find(W_NUMPR)
                if numpr is not None and num_id is None:
                    num_el, ilvl_el = numpr.find(W_NUM_ID), numpr.find(W_ILVL)
                    if num_el is not None:
                        num_id = num_el.get(W_VAL)
                    if ilvl_el is not None:
                        ilvl = _int(ilvl_el.get(W_VAL), 0)
            if not role:
                role = _ROLE_BY_NAME.get(raw.name, "")
        # A heading style's name says its level (a custom "Heading 0" based on Heading 1 is an h1);
        # other styles are headings through an outline level. HTML stops at h6: deeper levels
        # (Word's heading 7-9) are paragraphs, as pandoc and mammoth make them.
        level = named if named is not None else (outline or 0)
        heading = level if 1 <= level <= 6 else 0
        if level > 0 or role or num_id:
            result = ParagraphStyle(heading, level if 1 <= level <= 9 else 0, role, num_id, ilvl)
        else:
            result = _PLAIN
        self._para_cache[key] = result
        return result

    def character_marks(self, style_id: str) -> int:
        """The marks (bold, italic...) a character style applies, following its chain."""
        cached = self._char_cache.get(style_id)
        if cached is not None:
            return cached
        marks = 0
        chain = list(self._chain(style_id))
        for raw in reversed(chain):  # the base first, so derived styles override it
            rpr = raw.element.find(W_RPR)
            if rpr is not None:
                marks = marks_of(rpr, marks)
        if any("code" in raw.name or "verbatim" in raw.name for raw in chain):
            marks |= CODE
        self._char_cache[style_id] = marks
        return marks


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
