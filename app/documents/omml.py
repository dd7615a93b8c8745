"""Word equations (OMML) to MathML, for the constructs editors actually type.

Covers runs, fractions, scripts, radicals, delimiters, n-ary operators, functions, accents, bars,
limits, group characters, matrices, equation arrays and boxes. Anything else keeps its content as a
plain <mrow> and is counted, so the report can say the equation was approximated.
"""

from __future__ import annotations

import re
from html import escape

from lxml import etree

from app.documents.ns import M_NS, W_INS, W_R, W_T, W_VAL

_M = f"{{{M_NS}}}"
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]|\s+|.", re.S)


def _tag(el: etree._Element) -> str:
    tag = el.tag
    return tag[len(_M) :] if isinstance(tag, str) and tag.startswith(_M) else ""


def _prop(el: etree._Element, props: str, name: str, default: str | None = None) -> str | None:
    pr = el.find(_M + props)
    if pr is None:
        return default
    found = pr.find(_M + name)
    if found is None:
        return default
    return found.get(f"{_M}val", found.get(W_VAL, default if default is not None else ""))


def _child(el: etree._Element, name: str) -> etree._Element | None:
    return el.find(_M + name)


class OmmlConverter:
    def __init__(self) -> None:
        self.unsupported = 0

    def convert(self, omath: etree._Element, display: bool) -> tuple[str, str]:
        """(MathML, linear text) of one m:oMath or m:oMathPara."""
        maths = [omath] if _tag(omath) == "oMath" else list(omath.iter(_M + "oMath"))
        body = "".join(self._row(m) for m in maths)
        text = "".join(t.text or "" for t in omath.iter(_M + "t", W_T))
        attr = ' display="block"' if display else ""
        return f"<math{attr}><mrow>{body}</mrow></math>", text

    def _row(self, el: etree._Element | None) -> str:
        if el is None:
            return "<mrow></mrow>"
        return "<mrow>" + "".join(self._node(child) for child in el) + "</mrow>"

    def _node(self, el: etree._Element) -> str:  # noqa: C901 - one branch per OMML construct
        name = _tag(el)
        if not name:
            if el.tag == W_R:  # a Word run inside an equation
                return "".join(f"<mtext>{escape(t.text or '')}</mtext>" for t in el.iter(W_T))
            if el.tag == W_INS:
                return "".join(self._node(c) for c in el)
            return ""  # w:del, bookmarks, proofing marks
        if name.endswith("Pr") or name == "del":
            return ""
        if name == "r":
            return self._run(el)
        if name == "f":
            kind = _prop(el, "fPr", "type", "bar")
            num, den = self._row(_child(el, "num")), self._row(_child(el, "den"))
            if kind == "lin":
                return f"<mrow>{num}<mo>/</mo>{den}</mrow>"
            thickness = ' linethickness="0"' if kind == "noBar" else ""
            return f"<mfrac{thickness}>{num}{den}</mfrac>"
        if name == "sSup":
            return f"<msup>{self._row(_child(el, 'e'))}{self._row(_child(el, 'sup'))}</msup>"
        if name == "sSub":
            return f"<msub>{self._row(_child(el, 'e'))}{self._row(_child(el, 'sub'))}</msub>"
        if name == "sSubSup":
            e, sub, sup = (self._row(_child(el, n)) for n in ("e", "sub", "sup"))
            return f"<msubsup>{e}{sub}{sup}</msubsup>"
        if name == "sPre":
            e, sub, sup = (self._row(_child(el, n)) for n in ("e", "sub", "sup"))
            return f"<mmultiscripts>{e}<mprescripts/>{sub}{sup}</mmultiscripts>"
        if name == "rad":
            e = self._row(_child(el, "e"))
            deg = _child(el, "deg")
            if _prop(el, "radPr", "degHide") in ("1", "on", "true") or deg is None or not len(deg):
                return f"<msqrt>{e}</msqrt>"
            return f"<mroot>{e}{self._row(deg)}</mroot>"
        if name == "d":
            begin = _prop(el, "dPr", "begChr", "(")
            end = _prop(el, "dPr", "endChr", ")")
            sep = _prop(el, "dPr", "sepChr", "|")
            parts = [self._row(e) for e in el.findall(_M + "e")]
            inner = f"<mo>{escape(sep or '')}</mo>".join(parts)
            return f"<mrow><mo>{escape(begin or '')}</mo>{inner}<mo>{escape(end or '')}</mo></mrow>"
        if name == "nary":
            op = f"<mo>{escape(_prop(el, 'naryPr', 'chr', '∫') or '∫')}</mo>"
            sub = (
                "" if _prop(el, "naryPr", "subHide") in ("1", "on", "true") else self._row(_child(el, "sub"))
            )
            sup = (
                "" if _prop(el, "naryPr", "supHide") in ("1", "on", "true") else self._row(_child(el, "sup"))
            )
            under = _prop(el, "naryPr", "limLoc", "subSup") == "undOvr"
            if sub and sup:
                tag = "munderover" if under else "msubsup"
                op = f"<{tag}>{op}{sub}{sup}</{tag}>"
            elif sub:
                tag = "munder" if under else "msub"
                op = f"<{tag}>{op}{sub}</{tag}>"
            elif sup:
                tag = "mover" if under else "msup"
                op = f"<{tag}>{op}{sup}</{tag}>"
            return f"<mrow>{op}{self._row(_child(el, 'e'))}</mrow>"
        if name == "func":
            fname = "".join(t.text or "" for t in el.iter(_M + "t") if _is_in(t, el, "fName"))
            return f"<mrow><mi>{escape(fname)}</mi><mo>&#x2061;</mo>{self._row(_child(el, 'e'))}</mrow>"
        if name == "acc":
            accent = escape(_prop(el, "accPr", "chr", "\u0302") or "\u0302")
            return f'<mover accent="true">{self._row(_child(el, "e"))}<mo>{accent}</mo></mover>'
        if name == "bar":
            if _prop(el, "barPr", "pos", "bot") == "top":
                return f'<mover accent="true">{self._row(_child(el, "e"))}<mo>¯</mo></mover>'
            return f"<munder>{self._row(_child(el, 'e'))}<mo>_</mo></munder>"
        if name == "limLow":
            return f"<munder>{self._row(_child(el, 'e'))}{self._row(_child(el, 'lim'))}</munder>"
        if name == "limUpp":
            return f"<mover>{self._row(_child(el, 'e'))}{self._row(_child(el, 'lim'))}</mover>"
        if name == "groupChr":
            char = escape(_prop(el, "groupChrPr", "chr", "⏟") or "⏟")
            if _prop(el, "groupChrPr", "pos", "bot") == "top":
                return f"<mover>{self._row(_child(el, 'e'))}<mo>{char}</mo></mover>"
            return f"<munder>{self._row(_child(el, 'e'))}<mo>{char}</mo></munder>"
        if name == "m":
            rows = "".join(
                "<mtr>" + "".join(f"<mtd>{self._row(e)}</mtd>" for e in mr.findall(_M + "e")) + "</mtr>"
                for mr in el.findall(_M + "mr")
            )
            return f"<mtable>{rows}</mtable>"
        if name == "eqArr":
            rows = "".join(f"<mtr><mtd>{self._row(e)}</mtd></mtr>" for e in el.findall(_M + "e"))
            return f"<mtable>{rows}</mtable>"
        if name == "borderBox":
            return f'<menclose notation="box">{self._row(_child(el, "e"))}</menclose>'
        if name in ("box", "phant", "e", "oMath", "num", "den", "sub", "sup", "deg", "lim", "fName"):
            return self._row(el if name != "box" and name != "phant" else _child(el, "e"))
        self.unsupported += 1
        return self._row(el)

    @staticmethod
    def _run(el: etree._Element) -> str:
        text = "".join(t.text or "" for t in el.iter(_M + "t"))
        if el.find(f"{_M}rPr/{_M}nor") is not None:
            return f"<mtext>{escape(text)}</mtext>"
        out = []
        for token in _TOKEN.findall(text):
            if token.isspace():
                continue
            if token[0].isdigit():
                out.append(f"<mn>{escape(token)}</mn>")
            elif token.isalpha():
                out.append(f"<mi>{escape(token)}</mi>")
            else:
                out.append(f"<mo>{escape(token)}</mo>")
        return "".join(out)


def _is_in(node: etree._Element, stop: etree._Element, name: str) -> bool:
    for ancestor in node.iterancestors():
        if ancestor is stop:
            return False
        if _tag(ancestor) == name:
            return True
    return False
