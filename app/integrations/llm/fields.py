"""The post fields an editor writes (title, excerpt, slug, tags): how a slug is made, and the checks
each field must pass before a site keeps it.

Slugs keep the title's meaning in every script: WordPress accepts UTF-8 slugs (it stores them
percent-encoded, at most 200 bytes, and folds accents on its own, by the site's locale), so 北京の図書館
becomes "北京-の-図書館" and "Größe" stays "größe". `transliterate=True` writes Latin letters instead
(ICU's transforms: pinyin for Chinese, romaji for kana, Revised Romanization for Hangul), for a site
that wants ASCII URLs. Words are ICU's, so a slug is cut only between two words.

When a model's rewrite is rejected (the original body is kept), its post fields are suspect too
("stub" was seen as a published title): `settle_fields` keeps each field only when it passes its
own checks (`field_problems`) and takes the document's own value otherwise.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import quote

import icu

from app.documents.words import scripts, words

SLUG_MAX_CHARS = 60
SLUG_MAX_BYTES = 200  # WordPress's post_name: the percent-encoded slug
TITLE_MAX_CHARS = 150
EXCERPT_MAX_CHARS = 400
TAG_MAX_CHARS = 40
TAG_MAX_WORDS = 4

# Words a model (or a template) writes when it has nothing to say.
_GENERIC = re.compile(
    r"^(?:stub|untitled(?: document| post| article)?|no title|title|new (?:document|post|article)|"
    r"document\d*|article|post|headline|heading|draft|test|todo|tbd|tba|placeholder|lorem ipsum.*|"
    r"excerpt|summary|description|slug|tags?|keywords?|none|null|n/?a|example|sample|text|"
    r"ohne titel|sans titre|sin título|senza titolo|無題|无标题|제목 없음|без названия)\s*\d*$",
    re.I,
)
_TRANSLITERATOR = "Any-Latin; Latin-ASCII; Lower"


def slugify(text: str, max_chars: int = SLUG_MAX_CHARS, *, transliterate: bool = False) -> str:
    """A URL slug for `text`: its words (letters and digits of any script), lower-cased, joined by
    hyphens, at most `max_chars` characters and SLUG_MAX_BYTES percent-encoded, cut between words.
    "untitled" when nothing is left."""
    text = unicodedata.normalize("NFC", text)
    if transliterate:
        text = icu.Transliterator.createInstance(_TRANSLITERATOR).transliterate(text)
    parts = []
    for word in words(text):
        part = "".join(filter(_slug_char, word.lower()))
        if transliterate:
            part = re.sub(r"[^a-z0-9]+", "", part)
        if part:
            parts.append(part)
    slug = ""
    for part in parts:
        longer = f"{slug}-{part}" if slug else part
        if len(longer) > max_chars or len(quote(longer, safe="-")) > SLUG_MAX_BYTES:
            if not slug:  # one word longer than the limit: its start, the only way to stay within
                slug = _cut_to_limits(part, max_chars)
            break
        slug = longer
    return slug or "untitled"


def _slug_char(char: str) -> bool:
    return char.isalnum() or unicodedata.category(char) in ("Mn", "Mc")  # Thai, Hindi vowel signs


def _slug_word(part: str) -> bool:
    return bool(part) and all(map(_slug_char, part)) and part == part.lower()


def _cut_to_limits(word: str, max_chars: int) -> str:
    cut = word[:max_chars]
    while cut and len(quote(cut, safe="-")) > SLUG_MAX_BYTES:
        cut = cut[:-1]
    return cut


# --- checks ---------------------------------------------------------------------------------------


def is_generic(value: str) -> bool:
    core = " ".join(re.sub(r"[^\w\s]", " ", value).split())
    return not core or bool(_GENERIC.match(core))


def in_document_language(value: str, document_text: str) -> bool:
    """True when `value` is written in the scripts the document is written in (a Latin "stub" for a
    Japanese article is not; digits and punctuation say nothing). A check of the script, not of the
    language: it cannot tell English from French."""
    mine = scripts(value)
    if not mine:
        return True
    theirs = scripts(document_text)
    total = sum(theirs.values())
    if not total:
        return True
    # The document's scripts that are more than a sprinkle (a Latin brand name in a Chinese article).
    # Chinese and Japanese share Han; Japanese mixes in kana.
    main = {name for name, count in theirs.items() if count >= 0.1 * total}
    if main & {"Han", "Hiragana", "Katakana"}:
        main |= {"Han", "Hiragana", "Katakana"}
    inside = sum(count for name, count in mine.items() if name in main)
    return inside >= 0.5 * sum(mine.values())


def field_problems(name: str, value, document_text: str, *, transliterated_slug: bool = False) -> list[str]:
    """What is wrong with one post field ("title", "excerpt", "slug" or "tags"); [] when it may be
    used. A slug is in the document's scripts, or in ASCII when the site wants transliterated slugs."""
    if name == "tags":
        if not value:
            return ["no tags"]
        problems = []
        for tag in value:
            problems += [f"tag {tag!r}: {p}" for p in _text_problems(str(tag), document_text, TAG_MAX_CHARS)]
            if len(words(str(tag))) > TAG_MAX_WORDS:
                problems.append(f"tag {tag!r}: more than {TAG_MAX_WORDS} words")
        return problems
    value = str(value or "")
    if name == "slug":
        if not value.strip():
            return ["empty"]
        problems = [] if all(map(_slug_word, value.split("-"))) else ["not words joined by hyphens"]
        if is_generic(value.replace("-", " ")):
            problems.append("generic")
        if len(quote(value, safe="-")) > SLUG_MAX_BYTES:
            problems.append(f"longer than {SLUG_MAX_BYTES} bytes in a URL")
        if transliterated_slug and not value.isascii():
            problems.append("not in Latin letters (the site wants transliterated slugs)")
        elif not transliterated_slug and not in_document_language(value, document_text):
            problems.append("not in the document's language")
        return problems
    limit = TITLE_MAX_CHARS if name == "title" else EXCERPT_MAX_CHARS
    return _text_problems(value, document_text, limit)


def _text_problems(value: str, document_text: str, max_chars: int) -> list[str]:
    value = " ".join(value.split())
    if not value:
        return ["empty"]
    problems = []
    if is_generic(value):
        problems.append("generic")
    if len(value) > max_chars:
        problems.append(f"longer than {max_chars} characters")
    if not in_document_language(value, document_text):
        problems.append("not in the document's language")
    return problems


@dataclass
class PostFields:
    title: str
    excerpt: str
    slug: str
    tags: list[str] = field(default_factory=list)


def settle_fields(
    proposed: PostFields, own: PostFields, document_text: str, *, transliterated_slug: bool = False
) -> tuple[PostFields, list[str]]:
    """Each proposed field that passes its checks, else the document's own value; and a line for
    each field replaced. Tags that fail are dropped one by one; when none is left, the own tags."""
    notes: list[str] = []
    settled = PostFields(own.title, own.excerpt, own.slug, list(own.tags))
    for name in ("title", "excerpt", "slug"):
        value = getattr(proposed, name)
        problems = field_problems(name, value, document_text, transliterated_slug=transliterated_slug)
        if problems:
            notes.append(f"the model's {name} {value!r} was not used ({'; '.join(problems)})")
        else:
            setattr(settled, name, value)
    good = [tag for tag in proposed.tags if not field_problems("tags", [tag], document_text)]
    if good:
        settled.tags = good
    if len(good) < len(proposed.tags):
        left = [tag for tag in proposed.tags if tag not in good]
        notes.append(f"the model's tags {left!r} were not used (generic, too long or in another script)")
    return settled, notes
