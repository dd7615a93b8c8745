"""The language a sender wrote in, simply: the Content-Language header when the message has one, else
the language whose most common short words the text uses most (English, German, French), else none.
Good enough to choose the reply's template; never a claim about the text."""

from __future__ import annotations

import re

_COMMON_WORDS = {
    "en": "the and of to a in is that for it with as was on are be this have by at from you your not we "
    "our please attached here",
    "de": "der die das und ist nicht ein eine zu den mit von im für auf dem sich des auch es ich sie wir "
    "bitte anbei hier ihr ihre über",
    "fr": "le la les et est un une des du en que pour dans qui pas sur au avec ce je vous nous ci-joint "
    "merci voici votre",
}
WORDS = {lang: frozenset(words.split()) for lang, words in _COMMON_WORDS.items()}
_TAG = re.compile(r"^\s*([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*\s*(?:[,;].*)?$")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)?", re.UNICODE)
MIN_HITS = 2  # fewer common words than this says nothing


def from_header(value: str | None) -> str | None:
    """The primary language of a Content-Language header ("de-AT, en" -> "de"), or None."""
    match = _TAG.match(value or "")
    return match.group(1).lower() if match else None


def guess(text: str, *, max_words: int = 400) -> str | None:
    """The language whose common words appear most in the first `max_words` words, or None."""
    words = [w.lower() for w in _WORD.findall(text or "")[:max_words]]
    hits = {lang: sum(w in common for w in words) for lang, common in WORDS.items()}
    best = max(hits, key=hits.__getitem__)
    ranked = sorted(hits.values(), reverse=True)
    if ranked[0] < MIN_HITS or ranked[0] == ranked[1]:
        return None
    return best


def detect_language(content_language: str | None, text: str) -> str | None:
    return from_header(content_language) or guess(text)
