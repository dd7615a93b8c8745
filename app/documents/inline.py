"""Inline content -> HTML, shared by the HTML and block writers.

Marks are nested with a stack, so "**bold *both***" becomes `<strong>bold <em>both</em></strong>`
and not a tag pair per Word run; spaces at the edge of a mark move outside it.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from app.documents.model import Break, Image, Link, Math, NoteRef, Text
from app.documents.result import image_placeholder
from app.documents.runprops import MARK_TAGS, UNDERLINE

_OPEN = {bit: open_tag for bit, open_tag, _ in MARK_TAGS}
_CLOSE = {bit: close_tag for bit, _, close_tag in MARK_TAGS}


class InlineRenderer:
    def __init__(self, note_ref: Callable, is_dropped: Callable):
        self.note_ref = note_ref  # NoteRef -> HTML
        self.is_dropped = is_dropped  # ExtractedImage -> bool

    def render(self, nodes: list, base: int = 0, in_link: bool = False) -> str:
        out: list[str] = []
        stack: list[int] = []
        pending = ""  # whitespace not yet placed
        started = False

        def set_marks(marks: int) -> None:
            nonlocal pending
            keep = 0
            while keep < len(stack) and stack[keep] & marks:
                keep += 1
            for bit in reversed(stack[keep:]):
                out.append(_CLOSE[bit])
            del stack[keep:]
            if pending:
                out.append(pending)
                pending = ""
            for bit in _OPEN:
                if marks & bit and bit not in stack:
                    out.append(_OPEN[bit])
                    stack.append(bit)

        def place_pending() -> None:
            nonlocal pending
            if pending:
                out.append(pending)
                pending = ""

        for node in _flatten(nodes):
            kind = type(node)
            if kind is Text:
                text = node.text.replace("\t", " ")
                core = text.strip()
                if not core:
                    if started:
                        pending += " "
                    continue
                if started and text[0].isspace():
                    pending = " "
                set_marks(node.marks & ~base)
                out.append(escape(core, quote=False))
                started = True
                pending = " " if text[-1].isspace() else ""
            elif kind is Break:
                pending = ""
                if started:  # a break before any content shows nothing worth keeping
                    out.append("<br>")
            elif kind is Link:
                # Word underlines links through the Hyperlink style: the <a> says it already.
                # Spaces at the edges of the link's text stay outside it, and apart from the text
                # around it (a TOC entry's page number is a link inside a link after a tab).
                leading, trailing = _edge_spaces(node.children)
                if in_link:  # no link inside a link
                    inner = self.render(node.children, base | UNDERLINE | _common_marks(node.children), True)
                    if inner and started and leading:
                        pending = " "
                    if inner:
                        place_pending()
                else:
                    common = _common_marks(node.children) & ~base & ~UNDERLINE
                    inner = self.render(node.children, base | common | UNDERLINE, True)
                    if inner:
                        if started and leading:
                            pending = " "
                        set_marks(common)
                        inner = f'<a href="{escape(node.href)}">{inner}</a>'
                out.append(inner)
                if inner:
                    started = True
                    pending = " " if trailing else ""
            elif kind is Image:
                if self.is_dropped(node.ref):
                    continue
                place_pending()
                out.append(image_tag(node))
                started = True
            elif kind is NoteRef:
                place_pending()
                out.append(self.note_ref(node))
                started = True
            elif kind is Math:
                place_pending()
                out.append(node.mathml)
                started = True
        while out and out[-1] == "<br>":  # nor does one after the last content
            out.pop()
        for bit in reversed(stack):
            out.append(_CLOSE[bit])
        return "".join(out)


def image_tag(node: Image, sized: bool = True) -> str:
    attrs = [f'src="{image_placeholder(node.ref.key)}"', f'alt="{escape(node.alt or node.ref.alt)}"']
    if node.title:
        attrs.append(f'title="{escape(node.title)}"')
    if sized and node.width and node.height:
        attrs.append(f'width="{node.width}" height="{node.height}"')
    return f"<img {' '.join(attrs)}>"


def _flatten(nodes: list):
    """Links that lost their target are read as their text."""
    for node in nodes:
        if type(node) is Link and not node.href:
            yield from _flatten(node.children)
        else:
            yield node


def _edge_spaces(nodes: list) -> tuple[bool, bool]:
    """Whether the text of these inlines starts and ends with whitespace (a tab counts)."""
    text = _joined(nodes, image="\0")
    return bool(text) and text[0].isspace(), bool(text) and text[-1].isspace()


def _common_marks(nodes: list) -> int:
    common = -1
    for node in nodes:
        if type(node) is Text and not node.text.isspace():
            common &= node.marks
        elif type(node) is Link:
            common &= _common_marks(node.children)
    return 0 if common == -1 else common


def plain_text(nodes: list) -> str:
    return _joined(nodes).strip()


def _joined(nodes: list, image: str = "") -> str:
    """The text of inlines with its edges (links read through, breaks as newlines)."""
    parts: list[str] = []
    for node in nodes:
        kind = type(node)
        if kind is Text:
            parts.append(node.text.replace("\t", " "))
        elif kind is Break:
            parts.append("\n")
        elif kind is Link:
            parts.append(_joined(node.children, image))
        elif kind is NoteRef:
            parts.append(f"[{node.note.number}]")
        elif kind is Math:
            parts.append(node.text)
        elif kind is Image:
            parts.append(image)
    return "".join(parts)
