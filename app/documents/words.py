"""Words and sentences in every script, by ICU's boundary rules (PyICU).

`str.split()` sees one word in a Japanese, Chinese or Thai paragraph: those scripts write no spaces
between words. ICU's word break iterator finds the words with its dictionaries (Chinese, Japanese,
Thai, Lao, Khmer, Burmese) and the Unicode rules (UAX #29) elsewhere; every count, cut and length
rule of Copydesk goes through here.

ICU counts offsets in UTF-16 code units, so the text is handed over as an `icu.UnicodeString` and
sliced there (a character outside the BMP, an emoji, is two units). Iterators are not thread-safe:
each thread makes its own (the io worker runs threads).
"""

from __future__ import annotations

import threading

import icu

_ROOT = icu.Locale.getRoot()
_local = threading.local()
# getRuleStatus() of a word break: 0-99 spaces and punctuation, 100+ numbers, letters, kana, ideographs.
_WORD_STATUS = 100


def _iterator(kind: str):
    iterators = getattr(_local, "iterators", None)
    if iterators is None:
        iterators = _local.iterators = {
            "word": icu.BreakIterator.createWordInstance(_ROOT),
            "sentence": icu.BreakIterator.createSentenceInstance(_ROOT),
        }
    return iterators[kind]


def _segments(text: str, kind: str) -> list[tuple[int, int, int, str]]:
    """(start, end, rule status, segment) in Python character offsets."""
    if not text:
        return []
    unicode = icu.UnicodeString(text)
    iterator = _iterator(kind)
    iterator.setText(unicode)
    out = []
    previous, chars = 0, 0
    for boundary in iterator:
        piece = str(unicode[previous:boundary])
        out.append((chars, chars + len(piece), iterator.getRuleStatus(), piece))
        previous, chars = boundary, chars + len(piece)
    return out


def words(text: str) -> list[str]:
    """The words (and numbers) of `text`, in order, without spaces and punctuation."""
    return [piece for _, _, status, piece in _segments(text, "word") if status >= _WORD_STATUS]


def word_count(text: str) -> int:
    return len(words(text))


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each word in `text`."""
    return [(s, e) for s, e, status, _ in _segments(text, "word") if status >= _WORD_STATUS]


def sentences(text: str) -> list[str]:
    """The sentences of `text` (whitespace collapsed), "。" and "!" ending them as much as ". "."""
    flat = " ".join(text.split())
    return [piece.strip() for _, _, _, piece in _segments(flat, "sentence") if piece.strip()]


def cut_at_word(text: str, max_chars: int, ellipsis: str = "…") -> str:
    """`text` (whitespace collapsed) within `max_chars`, cut after the last whole word that fits, with
    `ellipsis` when something was cut. A first word longer than the limit is cut in its middle
    (the only way to stay within it)."""
    flat = " ".join(text.split())
    if len(flat) <= max_chars:
        return flat
    room = max(0, max_chars - len(ellipsis))
    end = 0
    for _, word_end in word_spans(flat):
        if word_end > room:
            break
        end = word_end
    kept = flat[:end] if end else flat[:room]
    return kept.rstrip(" ,;:.-–—") + ellipsis


def scripts(text: str) -> dict[str, int]:
    """How many letters of `text` each script has ("Latin", "Han", "Hiragana", "Cyrillic"…); digits,
    punctuation and symbols (ICU's Common and Inherited) are not counted."""
    counts: dict[str, int] = {}
    for char in text:
        if not char.isalpha():
            continue
        name = icu.Script.getScript(char).getName()
        if name not in ("Common", "Inherited"):
            counts[name] = counts.get(name, 0) + 1
    return counts
