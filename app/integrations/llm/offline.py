"""The offline editor: no network, no model. Title from the document, excerpt from its opening
sentences (or an extractive summary), tags from its keywords and yake's, body cleaned but not
rewritten."""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter

import yake

from app.integrations.llm import markup
from app.integrations.llm.base import EditRequest, EditResult

log = logging.getLogger(__name__)

_SENTENCE = re.compile(r"(?<=[.!?…])\s+(?=[\"“«(\[]?[^\W\d_])")
_YAKE_MAX_CHARS = 40_000  # yake's time grows with the text; the opening pages hold the topics


def slugify(text: str, max_length: int = 80) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()
    return text[:max_length].rstrip("-") or "untitled"


def sentences_of(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(" ".join(text.split())) if s]


def excerpt_of(text: str, max_chars: int = 300) -> str:
    """The opening sentences of `text` that fit in max_chars (one cut sentence if the first is longer)."""
    out = ""
    for sentence in sentences_of(text):
        if out and len(out) + len(sentence) + 1 > max_chars:
            break
        out = f"{out} {sentence}".strip()
    if len(out) > max_chars:
        out = out[: max_chars - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return out


def shorten(text: str, max_chars: int) -> str:
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 1].rsplit(" ", 1)[0].rstrip(",;:.") + "…"


def keywords_of(text: str, language: str = "", top: int = 20) -> list[str]:
    """Key phrases (one or two words) by yake, best first."""
    lan = (language or "en")[:2].lower()
    try:
        extractor = yake.KeywordExtractor(lan=lan, n=2, top=top, dedup_lim=0.7)
        return [phrase for phrase, _score in extractor.extract_keywords(text[:_YAKE_MAX_CHARS])]
    except Exception:  # yake on odd input (symbols only, unknown language files): no keywords, no failure
        log.warning("yake could not extract keywords", exc_info=True)
        return []


def summarize(text: str, max_chars: int = 300, keywords: list[str] | None = None, language: str = "") -> str:
    """A simple extractive summary: the sentences that carry most of the document's key phrases,
    in document order, within max_chars."""
    sentences = [s for s in sentences_of(text) if 5 <= len(s.split()) <= 60]
    if not sentences:  # a note of a few words, or no words at all (a table of figures)
        return excerpt_of(text, max_chars) if len(re.findall(r"[^\W\d_]{2,}", text)) >= 3 else ""
    words = Counter(w.lower() for k in (keywords or keywords_of(text, language, 10)) for w in k.split())

    def score(sentence: str) -> float:
        tokens = re.findall(r"\w+", sentence.lower())
        return sum(words[t] for t in tokens) / math.sqrt(len(tokens))

    ranked = sorted(range(len(sentences)), key=lambda i: (-score(sentences[i]), i))
    chosen: list[int] = []
    length = 0
    for i in ranked:
        if length + len(sentences[i]) + 1 > max_chars:
            continue
        chosen.append(i)
        length += len(sentences[i]) + 1
    if not chosen:
        return excerpt_of(sentences[ranked[0]], max_chars)
    return " ".join(sentences[i] for i in sorted(chosen))


def _is_prose(text: str) -> bool:
    # Skips bylines, dates, captions, labels, rows of figures: an opening paragraph has words.
    return len(re.findall(r"[^\W\d_]{2,}", text)) >= 8


def opening_excerpt(html: str, title: str = "", max_chars: int = 300) -> str:
    soup = markup.parse_html(html)
    prose = []
    for paragraph in soup.find_all(["p", "li", "blockquote"]):
        if paragraph.find_parent(["table", "section", "figure"]):  # cells, footnotes, captions
            continue
        text = " ".join(paragraph.get_text(" ").split())
        if _is_prose(text) and text != title:
            prose.append(text)
        if sum(len(p) for p in prose) > max_chars:
            break
    return excerpt_of(" ".join(prose), max_chars) if prose else ""


def choose_tags(document_keywords: list[str], extracted: list[str], max_tags: int = 8) -> list[str]:
    """The document's own keywords first, then the extracted ones, without near-repeats."""
    tags: list[str] = []
    seen_words: set[str] = set()
    for n, candidate in enumerate([*document_keywords, *extracted]):
        tag = " ".join(candidate.strip(" .,;:#").split())
        words = {w.casefold().removesuffix("s") for w in tag.split()}
        if len(tag) < 3 or len(tag) > 40 or not re.search(r"[^\W\d_]", tag):
            continue
        # Extracted phrases overlap ("City Council", "Council", "Council meeting"): one of them is
        # enough. The document's own keywords are always kept.
        if n >= len(document_keywords) and words & seen_words:
            continue
        tags.append(tag)
        seen_words |= words
        if len(tags) == max_tags:
            break
    return tags


def choose_category(categories: list[str], text: str, tags: list[str]) -> str | None:
    """The category named most often in the text (a match among the tags counts more), or None."""
    lowered = text.casefold()
    tag_set = {t.casefold() for t in tags}
    best, best_score = None, 0
    for category in categories:
        name = category.casefold().strip()
        if not name:
            continue
        score = len(re.findall(rf"(?<!\w){re.escape(name)}(?!\w)", lowered)) + 3 * (name in tag_set)
        if score > best_score:
            best, best_score = category, score
    return best


def _prose_text(html: str) -> str:
    """The text without code and formulas: their identifiers make poor tags."""
    soup = markup.parse_html(html)
    for code in soup.find_all(["pre", "code", "math"]):
        code.decompose()
    return markup.text_of(markup.serialize(soup))


def title_of(request: EditRequest, text: str) -> str:
    if request.title.strip():
        return " ".join(request.title.split())
    blocks = markup.top_level_blocks(request.html)[:3]
    for block in blocks:  # a heading at the very top is the title
        if markup.is_heading(block):
            return markup.first_heading(block)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return "Untitled"
    first = lines[0].strip(" *•·-–—#>\t")
    if len(first) <= 100:
        return first.rstrip(".")
    return shorten(sentences_of(first)[0], 70)


class OfflineEditor:
    engine = "offline"

    def __init__(self, *, max_tags: int = 8, excerpt_chars: int = 300, excerpt: str = "opening") -> None:
        if excerpt not in ("opening", "summary"):
            raise ValueError("excerpt must be 'opening' or 'summary'")
        self.max_tags = max_tags
        self.excerpt_chars = excerpt_chars
        self.excerpt = excerpt

    def edit(self, request: EditRequest) -> EditResult:
        text = markup.text_of(request.html) or request.text
        title = title_of(request, text)
        html = markup.clean_html(request.html, drop_leading_heading=title)
        body_text = markup.text_of(html) or text
        keywords = keywords_of(_prose_text(html) or body_text, request.language)
        excerpt = ""
        if self.excerpt == "opening":
            excerpt = opening_excerpt(html, title, self.excerpt_chars)
        if not excerpt:
            excerpt = summarize(body_text, self.excerpt_chars, keywords)
        tags = choose_tags(request.keywords, keywords, self.max_tags)
        return EditResult(
            html=html,
            title=title,
            excerpt=excerpt,
            slug=slugify(title, 60),
            tags=tags,
            category=choose_category(request.categories, body_text, tags),
            engine=self.engine,
        )
