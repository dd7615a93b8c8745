"""numbering.xml: list levels (bullet or number, format, start) and Word's counters.

Word keeps one counter per abstract numbering and level: two `w:num` instances that share an
abstract numbering continue each other, unless an instance carries a `w:startOverride` (a restart),
which applies the first time that instance is used. Using a level resets the deeper levels.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from app.documents.ns import (
    MC_FALLBACK,
    W_ABSTRACT_NUM,
    W_ABSTRACT_NUM_ID,
    W_ILVL,
    W_LVL,
    W_LVL_OVERRIDE,
    W_NUM,
    W_NUM_FMT,
    W_NUM_ID,
    W_NUM_STYLE_LINK,
    W_NUMPR,
    W_PPR,
    W_START,
    W_START_OVERRIDE,
    W_STYLE,
    W_STYLE_ID,
    W_VAL,
)

MAX_LEVEL = 8

# numFmt -> <ol type>; formats not listed are shown as decimal.
OL_TYPES = {"lowerLetter": "a", "upperLetter": "A", "lowerRoman": "i", "upperRoman": "I"}


@dataclass(frozen=True)
class Level:
    ordered: bool
    fmt: str  # Word's numFmt: "decimal", "bullet", "lowerLetter"...
    start: int


@dataclass(frozen=True)
class ListItemInfo:
    key: str  # identifies one logical list: the abstract numbering
    level: int  # 0..8
    ordered: bool
    fmt: str
    value: int  # the number Word shows for this item


_BULLET = Level(False, "bullet", 1)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _level_of(lvl: etree._Element) -> Level:
    fmt_el = lvl.find(W_NUM_FMT)
    if fmt_el is None:  # w14 custom formats sit in mc:AlternateContent, with a plain fallback
        fmt_el = next((f for f in lvl.iter(W_NUM_FMT) if f.getparent().tag == MC_FALLBACK), None)
    fmt = fmt_el.get(W_VAL, "decimal") if fmt_el is not None else "decimal"
    start_el = lvl.find(W_START)
    start = _int(start_el.get(W_VAL), 1) if start_el is not None else 1
    return Level(fmt not in ("bullet", "none"), fmt, start)


class Numbering:
    def __init__(self, root: etree._Element | None, styles_root: etree._Element | None = None):
        self._abstract: dict[str, dict[int, Level]] = {}
        self._style_link: dict[str, str] = {}  # abstract id -> numbering style it defers to
        self._nums: dict[str, tuple[str, dict[int, int], dict[int, Level]]] = {}
        self._style_nums: dict[str, str] = {}  # numbering style id -> num id
        self._counters: dict[str, list[int | None]] = {}
        self._started: set[tuple[str, int]] = set()
        if root is None:
            return
        for abstract in root.iter(W_ABSTRACT_NUM):
            aid = abstract.get(W_ABSTRACT_NUM_ID)
            if aid is None:
                continue
            self._abstract[aid] = {_int(lvl.get(W_ILVL), 0): _level_of(lvl) for lvl in abstract.iter(W_LVL)}
            link = abstract.find(W_NUM_STYLE_LINK)
            if link is not None and link.get(W_VAL):
                self._style_link[aid] = link.get(W_VAL)
        for num in root.iter(W_NUM):
            nid = num.get(W_NUM_ID)
            aid_el = num.find(W_ABSTRACT_NUM_ID)
            if nid is None or aid_el is None:
                continue
            starts: dict[int, int] = {}
            levels: dict[int, Level] = {}
            for override in num.iter(W_LVL_OVERRIDE):
                ilvl = _int(override.get(W_ILVL), 0)
                start = override.find(W_START_OVERRIDE)
                if start is not None:
                    starts[ilvl] = _int(start.get(W_VAL), 1)
                lvl = override.find(W_LVL)
                if lvl is not None:
                    levels[ilvl] = _level_of(lvl)
            self._nums[nid] = (aid_el.get(W_VAL, ""), starts, levels)
        if styles_root is not None and self._style_link:
            # numStyleLink: the abstract numbering is defined by a numbering style's own w:num.
            for style in styles_root.iter(W_STYLE):
                ppr = style.find(W_PPR)
                numpr = ppr.find(W_NUMPR) if ppr is not None else None
                num_el = numpr.find(W_NUM_ID) if numpr is not None else None
                if num_el is not None:
                    self._style_nums[style.get(W_STYLE_ID, "")] = num_el.get(W_VAL, "")

    def _abstract_levels(self, aid: str) -> tuple[str, dict[int, Level]]:
        link = self._style_link.get(aid)
        if link is not None:
            nid = self._style_nums.get(link)
            if nid in self._nums and self._nums[nid][0] != aid:
                target = self._nums[nid][0]
                return target, self._abstract.get(target, {})
        return aid, self._abstract.get(aid, {})

    def item(self, num_id: str, ilvl: int) -> ListItemInfo | None:
        """Advance Word's counter for one list paragraph; None when num_id is not a list."""
        if num_id == "0" or num_id not in self._nums:
            return None
        ilvl = max(0, min(ilvl, MAX_LEVEL))
        aid, starts, overrides = self._nums[num_id]
        key, levels = self._abstract_levels(aid)
        level = overrides.get(ilvl) or levels.get(ilvl) or _BULLET
        counters = self._counters.setdefault(key, [None] * (MAX_LEVEL + 1))
        if ilvl in starts and (num_id, ilvl) not in self._started:
            self._started.add((num_id, ilvl))
            counters[ilvl] = starts[ilvl] - 1
        elif counters[ilvl] is None:
            counters[ilvl] = level.start - 1
        counters[ilvl] += 1  # type: ignore[operator]
        for deeper in range(ilvl + 1, MAX_LEVEL + 1):
            counters[deeper] = None
        return ListItemInfo(key, ilvl, level.ordered, level.fmt, counters[ilvl])  # type: ignore[arg-type]
