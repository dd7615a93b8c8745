"""The offline editor: no network, no model, and nothing invented that a site keeps.

Title from the document; excerpt: its first real body paragraph (never a table of contents entry, a
caption, a heading, a byline or a date line), or an extractive summary; body cleaned, not rewritten.
Tags are public pages of a site, so they come only from what the document or the site already says:
the document's keywords property, key phrases (yake) that its headings name, and the site's existing
terms (`EditRequest.site_tags`, matched by name or slug) that the text mentions. At most a handful.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from urllib.parse import unquote

import yake

from app.documents.words import cut_at_word, scripts, sentences, word_count, words
from app.integrations.llm import markup
from app.integrations.llm.base import EditRequest, EditResult, SiteTerm
from app.integrations.llm.fields import slugify

log = logging.getLogger(__name__)

_YAKE_MAX_CHARS = 40_000  # yake's time grows with the text; the opening pages hold the topics
MAX_TAGS = 5
_UNSPACED_SCRIPTS = {"Han", "Hiragana", "Katakana", "Thai", "Lao", "Khmer", "Myanmar"}
_MIN_PARAGRAPH_WORDS = 8  # an opening paragraph says something; a label, a dateline does not
# A line of a table of contents: text ending in a page number (glued, after dots, a tab or spaces).
_TOC_LINE = re.compile(r"(?:^|[^\d\s.,;:!?%)\]])(?:\s|\.{2,}|…|\t)*\d{1,4}$|[?!:)]\s*\d{1,4}$")
_CAPTION = re.compile(
    r"^(?:figure|fig\.|table|photo|image|illustration|chart|source|credit|abbildung|abb\.|tabelle|bild|"
    r"foto|quelle|figura|tabla|tableau|fuente|source|图|表|図)\s*[\dIVXivx.\-–]*\s*[:.\-–—]",
    re.I,
)
_BYLINE = re.compile(
    r"^(?:by|from|written by|text|words|photos?|author|reporting by|von|text und fotos|par|por|di|door|av|af|"
    r"автор|著|文)\b\s*[:]?",
    re.I,
)
# Month and weekday names (and the CJK date units): a line of these, numbers and a place is a date line.
_DATE_WORDS = re.compile(
    r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"januar|februar|märz|mai|juni|juli|oktober|dezember|montag|dienstag|mittwoch|donnerstag|freitag|"
    r"samstag|sonntag|janvier|février|mars|avril|juin|juillet|août|septembre|octobre|novembre|décembre|"
    r"lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|enero|febrero|marzo|abril|mayo|junio|julio|"
    r"agosto|septiembre|octubre|noviembre|diciembre|lunes|martes|miércoles|jueves|viernes|sábado|domingo|"
    r"updated|published|posted|am|pm|de|del|der|den|le|la|of|the|on|at)\b|[年月日曜時分]|\d+",
    re.I,
)
# Headings that name a part of any document, not its topic.
_GENERIC_HEADINGS = {
    "introduction", "conclusion", "conclusions", "summary", "contents", "table of contents", "overview",
    "background", "references", "bibliography", "appendix", "abstract", "discussion", "results",
    "methods", "acknowledgements", "acknowledgments", "notes", "preface", "foreword", "index",
    "einleitung", "zusammenfassung", "fazit", "inhalt", "sommaire", "résumé", "conclusión", "resumen",
}  # fmt: skip


def excerpt_of(text: str, max_chars: int = 300) -> str:
    """The opening sentences of `text` that fit in max_chars (the first one cut at a word if longer)."""
    out = ""
    for sentence in sentences(text):
        joined = f"{out} {sentence}".strip() if not _no_space_after(out) else out + sentence
        if out and len(joined) > max_chars:
            break
        out = joined
    return cut_at_word(out, max_chars) if len(out) > max_chars else out


def _no_space_after(text: str) -> bool:
    """Sentences of Chinese and Japanese follow each other without a space."""
    return bool(text) and text[-1] in "。！？」』"


def shorten(text: str, max_chars: int) -> str:
    return cut_at_word(text, max_chars)


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
    candidates = [s for s in sentences(text) if 5 <= word_count(s) <= 60]
    if not candidates:  # a note of a few words, or no words at all (a table of figures)
        return excerpt_of(text, max_chars) if len(re.findall(r"[^\W\d_]{2,}", text)) >= 3 else ""
    weights = Counter(w.casefold() for k in (keywords or keywords_of(text, language, 10)) for w in words(k))

    def score(sentence: str) -> float:
        tokens = [w.casefold() for w in words(sentence)]
        return sum(weights[t] for t in tokens) / math.sqrt(len(tokens))

    ranked = sorted(range(len(candidates)), key=lambda i: (-score(candidates[i]), i))
    chosen: list[int] = []
    length = 0
    for i in ranked:
        if length + len(candidates[i]) + 1 > max_chars:
            continue
        chosen.append(i)
        length += len(candidates[i]) + 1
    if not chosen:
        return excerpt_of(candidates[ranked[0]], max_chars)
    return " ".join(candidates[i] for i in sorted(chosen))


def is_real_paragraph(text: str, title: str = "") -> bool:
    """A paragraph of the body that says something: not the title again, not a table of contents
    entry, a caption, a byline, a date line, a label or a row of figures."""
    if not text or text.casefold() == title.casefold():
        return False
    if word_count(text) < _MIN_PARAGRAPH_WORDS:
        return False
    short = word_count(text) <= 25
    if short and _TOC_LINE.search(text):
        return False
    if _CAPTION.match(text) or (short and _BYLINE.match(text)):
        return False
    if short and word_count(_DATE_WORDS.sub(" ", text)) <= 2 and re.search(r"\d", text):
        return False
    return len(re.findall(r"[^\W\d_]", text)) >= 0.5 * len(re.sub(r"\s", "", text))  # mostly letters


def body_paragraphs(html: str, title: str = "") -> list[str]:
    """The texts of the real paragraphs of the body, in order (not in tables, figures, footnotes
    or lists; not a link list such as a table of contents)."""
    soup = markup.parse_html(html)
    out = []
    for paragraph in soup.find_all("p"):
        if paragraph.find_parent(["table", "section", "figure", "li"]):  # cells, footnotes, captions
            continue
        links = paragraph.find_all("a", href=re.compile(r"^#"))
        text = " ".join(paragraph.get_text(" ").split())
        linked = " ".join(" ".join(a.get_text(" ").split()) for a in links)
        if links and len(linked) >= 0.8 * len(text):  # entries of a table of contents, links to parts
            continue
        if is_real_paragraph(text, title):
            out.append(text)
    return out


def opening_excerpt(html: str, title: str = "", max_chars: int = 300) -> str:
    """The first real paragraph of the body, within max_chars (whole sentences when they fit)."""
    paragraphs = body_paragraphs(html, title)
    return excerpt_of(paragraphs[0], max_chars) if paragraphs else ""


def _mentions(term: str, text: str) -> int:
    """How often `term` appears in `text` as whole words (for scripts without spaces: as it is)."""
    if not term:
        return 0
    if set(scripts(term)) & _UNSPACED_SCRIPTS:
        return text.casefold().count(term.casefold())
    return len(re.findall(rf"(?<!\w){re.escape(term.casefold())}(?!\w)", text.casefold()))


def choose_tags(
    keywords: list[str],
    headings: list[str],
    extracted: list[str],
    site_tags: list[SiteTerm],
    text: str,
    max_tags: int = MAX_TAGS,
) -> list[str]:
    """Tags a site may keep, best first, at most `max_tags`: the document's keywords property; key
    phrases (`extracted`, best first) that one of its headings names and the body (`text`, without
    headings) discusses; the site's existing terms that the body mentions, most mentioned first. A candidate that matches a site term by name or
    slug takes the site's spelling (no new term for "economy" when the site has "Economy")."""
    by_name = {term.name.casefold(): term.name for term in site_tags if term.name.strip()}
    by_slug = {unquote(term.slug).casefold(): term.name for term in site_tags if term.slug}

    def on_site(tag: str) -> str:
        return by_name.get(tag.casefold()) or by_slug.get(slugify(tag)) or tag

    heading_text = "\n".join(h for h in headings if h.casefold().strip() not in _GENERIC_HEADINGS)
    from_headings = [
        phrase
        for phrase in extracted
        if phrase.casefold() not in _GENERIC_HEADINGS and _mentions(phrase, heading_text) and _mentions(phrase, text)
    ]
    mentioned = sorted(
        ((count, n, term.name) for n, term in enumerate(site_tags) if (count := _mentions(term.name, text))),
        key=lambda item: (-item[0], item[1]),
    )
    tags: list[str] = []
    seen_words: set[str] = set()
    own = len(keywords)
    for n, candidate in enumerate([*keywords, *from_headings, *(name for _, _, name in mentioned)]):
        tag = on_site(" ".join(candidate.strip(" .,;:#").split()))
        these = {w.casefold().removesuffix("s") for w in words(tag)}
        if len(tag) < 2 or len(tag) > 40 or not re.search(r"[^\W\d_]", tag) or len(these) > 4:
            continue
        if tag.casefold() in (t.casefold() for t in tags):
            continue
        # Phrases overlap ("City Council", "Council", "Council meeting"): one of them is enough. The
        # document's own keywords are always kept.
        if n >= own and these & seen_words:
            continue
        tags.append(tag)
        seen_words |= these
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


def _prose_text(html: str, *, without_headings: bool = False) -> str:
    """The text without code and formulas (their identifiers make poor tags), and without headings
    when asked."""
    soup = markup.parse_html(html)
    for code in soup.find_all(["pre", "code", "math", *(markup.HEADINGS if without_headings else [])]):
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
    return shorten((sentences(first) or [first])[0], 70)


class OfflineEditor:
    engine = "offline"

    def __init__(
        self, *, max_tags: int = MAX_TAGS, excerpt_chars: int = 300, excerpt: str = "opening"
    ) -> None:
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
        paragraphs = body_paragraphs(html, title)
        # Never a heading, a caption, a byline, a date line or a table of contents: only paragraphs
        # that say something (none: no excerpt, rather than a wrong one).
        excerpt = ""
        if self.excerpt == "opening" and paragraphs:
            excerpt = excerpt_of(paragraphs[0], self.excerpt_chars)
        elif paragraphs:
            excerpt = summarize(" ".join(paragraphs), self.excerpt_chars, keywords)
        # The document's own title and headings (a title made from the first line is not one).
        headings = [request.title, *markup.headings_of(request.html)]
        prose = _prose_text(html, without_headings=True)
        tags = choose_tags(request.keywords, headings, keywords, request.site_tags, prose, self.max_tags)
        return EditResult(
            html=html,
            title=title,
            excerpt=excerpt,
            slug=slugify(title, transliterate=request.transliterate_slug),
            tags=tags,
            category=choose_category(request.categories, body_text, tags),
            engine=self.engine,
        )
