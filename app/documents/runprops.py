"""Run formatting as a bit set of marks (cheap to compare and merge)."""

from __future__ import annotations

from lxml import etree

from app.documents.ns import W_B, W_DSTRIKE, W_I, W_SMALL_CAPS, W_STRIKE, W_U, W_VAL, W_VERT_ALIGN

BOLD = 1
ITALIC = 2
UNDERLINE = 4
STRIKE = 8
SUPERSCRIPT = 16
SUBSCRIPT = 32
SMALL_CAPS = 64
CODE = 128

# HTML for each mark, outermost first (the order nested tags are opened in).
MARK_TAGS = [
    (CODE, "<code>", "</code>"),
    (BOLD, "<strong>", "</strong>"),
    (ITALIC, "<em>", "</em>"),
    (UNDERLINE, "<u>", "</u>"),
    (STRIKE, "<s>", "</s>"),
    (SMALL_CAPS, '<span class="smallcaps">', "</span>"),
    (SUPERSCRIPT, "<sup>", "</sup>"),
    (SUBSCRIPT, "<sub>", "</sub>"),
]

_TOGGLES = {W_B: BOLD, W_I: ITALIC, W_STRIKE: STRIKE, W_DSTRIKE: STRIKE, W_SMALL_CAPS: SMALL_CAPS}
_OFF = {"0", "false", "off", "none"}


def marks_of(rpr: etree._Element, marks: int = 0) -> int:
    """Apply the direct properties of one w:rPr to `marks` (explicit 'off' values clear a mark)."""
    for child in rpr:
        tag = child.tag
        bit = _TOGGLES.get(tag)
        if bit is not None:
            if child.get(W_VAL) in _OFF:
                marks &= ~bit
            else:
                marks |= bit
        elif tag == W_U:
            if child.get(W_VAL, "single") in _OFF:
                marks &= ~UNDERLINE
            else:
                marks |= UNDERLINE
        elif tag == W_VERT_ALIGN:
            marks &= ~(SUPERSCRIPT | SUBSCRIPT)
            value = child.get(W_VAL)
            if value == "superscript":
                marks |= SUPERSCRIPT
            elif value == "subscript":
                marks |= SUBSCRIPT
    return marks
