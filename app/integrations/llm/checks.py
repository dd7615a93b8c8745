"""What a rewrite must keep: images, links, untouchable parts (code, formulas, footnotes), ids,
headings, tables, numbers and proper names.

`check_edit` compares the protected original (see markup.protect) with the model's answer and returns
the problems in words the model is told on its second chance (and an editor reads in the warning).
"""

from __future__ import annotations

import re
from collections import Counter

from app.integrations.llm import markup

_NUMBER = re.compile(r"\d+(?:[.,\u202f\u00a0']\d+)*")
_WORD = re.compile(r"(?<!\w)[^\W\d_](?:[\w'’-]*\w)?")
# Between two words, one of these means the second one starts a sentence (capitalised anyway).
_SENTENCE_BREAK = re.compile(r"[.!?:;\"“”«»„()\[\]•–—]")
# Languages that capitalise every noun: a capital letter says nothing about names there.
_NOUN_CAPITALISING = {"de", "lb"}
_NOT_NAMES = {"I", "OK"}


def numbers_of(text: str) -> set[str]:
    """Numbers as digit strings: "1,200", "1.200" and "1200" are the same number to this check
    (locales differ in separators; a changed digit is what matters)."""
    return {re.sub(r"\D", "", match).lstrip("0") or "0" for match in _NUMBER.findall(text)}


def names_of(text: str, language: str = "") -> set[str]:
    """Capitalised words that do not start a sentence: names of people, places, organisations,
    products, and acronyms. Heuristic by design; empty for noun-capitalising languages."""
    if language[:2].lower() in _NOUN_CAPITALISING:
        return set()
    names: set[str] = set()
    mid_sentence_words = capitalised = 0
    for line in text.splitlines():
        previous_end = None
        for match in _WORD.finditer(line):
            word = match.group()
            starts_sentence = previous_end is None or _SENTENCE_BREAK.search(
                line[previous_end : match.start()]
            )
            previous_end = match.end()
            if starts_sentence:
                continue
            mid_sentence_words += 1
            if word[0].isupper():
                capitalised += 1
                word = re.sub(r"['’]s$", "", word)
                if word not in _NOT_NAMES:
                    names.add(word)
    if mid_sentence_words >= 40 and capitalised / mid_sentence_words > 0.3:
        return set()  # German-like text (or shouting): the check would demand every noun
    return names


def _missing_names(names: set[str], text: str) -> list[str]:
    return sorted(n for n in names if not re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text))


def _quote(items, limit: int = 12) -> str:
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_edit(original_html: str, edited_html: str, *, language: str = "") -> list[str]:
    """Problems with the rewrite (empty: it keeps everything it must)."""
    problems: list[str] = []
    before, after = markup.structure_of(original_html), markup.structure_of(edited_html)

    def kept(srcs: list[str]) -> list[str]:
        return [s for s in srcs if s.startswith(markup.KEEP_TOKEN)]

    def images(srcs: list[str]) -> list[str]:
        return [s for s in srcs if not s.startswith(markup.KEEP_TOKEN)]

    for kind, element, wanted, got in (
        ("images", '<img src="{}">', images(before.images), images(after.images)),
        ("parts to keep unchanged", '<img src="{}">', kept(before.images), kept(after.images)),
        ("links", '<a href="{}">', before.links, after.links),
    ):
        have = Counter(got)
        missing = [t for t in wanted if have[t] == 0]
        extra = sorted((have - Counter(wanted)).keys())
        if missing:
            problems.append(
                f"{kind} missing: keep each of {_quote(element.format(t) for t in missing)} exactly once"
            )
        if extra:
            problems.append(
                f"{kind} not in the original or repeated: {_quote(extra)}; "
                "use each original one exactly once and invent none"
            )
    if missing_ids := [i for i in before.ids if i not in after.ids]:
        listed = _quote('id="' + i + '"' for i in missing_ids)
        problems.append(f"id attributes missing: keep {listed} on their elements")
    if before.headings != after.headings:
        problems.append(
            f"the headings changed: the original has {len(before.headings)} "
            f"({', '.join(before.headings) or 'none'}), the answer {len(after.headings)} "
            f"({', '.join(after.headings) or 'none'}); keep every heading, its level and its order"
        )
    if before.tables != after.tables:
        shapes = "; ".join(f"{r} rows × {c} columns" for r, c in before.tables) or "none"
        problems.append(f"the tables changed: keep every table with its rows and columns ({shapes})")

    original_text, edited_text = markup.text_of(original_html), markup.text_of(edited_html)
    original_numbers, edited_numbers = numbers_of(original_text), numbers_of(edited_text)
    if missing := original_numbers - edited_numbers:
        problems.append(f"numbers of the original missing or changed: {_quote(sorted(missing))}")
    if invented := edited_numbers - original_numbers:
        problems.append(f"numbers that are not in the original: {_quote(sorted(invented))}")
    # Headings are often in Title Case: their capitals say nothing about names.
    soup = markup.parse_html(original_html)
    for heading in soup.find_all(markup.HEADINGS):
        heading.decompose()
    body_text = markup.text_of(markup.serialize(soup))
    if missing_names := _missing_names(names_of(body_text, language), edited_text):
        problems.append(f"names of the original missing: {_quote(missing_names)}")
    return problems
