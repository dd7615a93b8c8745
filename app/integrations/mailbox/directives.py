"""Publishing directives written in a message, as Postie and Jetpack's Post by Email have them.

    [category News] [tags city, council] [status draft] Budget vote tonight

Recognised anywhere in the subject or the body (case-insensitive keyword, then a space or `:`/`=`):

| directive | value | becomes |
| --- | --- | --- |
| `[category News]`, `[categories a, b]` | comma-separated names | `categories` (merged, in order, no repeats) |
| `[tags a, b]`, `[tag a]` | comma-separated names | `tags` (merged) |
| `[status draft]` | draft, pending or publish | `status` |
| `[date 2026-12-01 09:00]` | ISO 8601 date, date + time, optional offset | `date` (naive = the site's time zone) |
| `[slug my-post]` | text | `slug` (spaces become hyphens; WordPress sanitises the rest) |
| `[excerpt Short text]` or Jetpack's `[excerpt]Short text[/excerpt]` | text | `excerpt` |
| `[end]` (Jetpack, body only) | — | everything after it is dropped (a footer, a disclaimer) |

Every recognised directive is removed from the title and from the body. A bracket that is not one of
these keywords (`[Draft 2] Report`, `[EXT]`) is ordinary text and stays. A directive with a value that
cannot be used (`[status maybe]`, `[date next week]`) is removed too and reported as a warning, so the
editor sees why it had no effect instead of finding it in the published title. When the subject and
the body both set a single-valued directive (status, date, slug, excerpt), the subject wins.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

STATUSES = ("draft", "pending", "publish")

_KEYWORDS = {
    "category": "categories",
    "categories": "categories",
    "tag": "tags",
    "tags": "tags",
    "status": "status",
    "date": "date",
    "slug": "slug",
    "excerpt": "excerpt",
}
_INLINE = re.compile(
    r"\[\s*(?P<key>categories|category|tags|tag|status|date|slug|excerpt)(?:\s*[:=]\s*|\s+)(?P<value>[^\[\]<>\n]*?)\s*\]",
    re.IGNORECASE,
)
_BLOCK_EXCERPT = re.compile(r"\[\s*excerpt\s*\](?P<value>.*?)\[\s*/\s*excerpt\s*\]", re.IGNORECASE | re.DOTALL)
END_MARKER = re.compile(r"\[\s*end\s*\]", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
# "Re:", "Fwd:", "Fw:", "AW:", "WG:", "TR:", "RV:", "SV:", "Vs:", with or without "[n]" counts
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|aw|wg|tr|rv|sv|vs)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)


@dataclass
class Directives:
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    status: str | None = None  # draft | pending | publish
    date: datetime | None = None
    slug: str | None = None
    excerpt: str | None = None
    warnings: list[str] = field(default_factory=list)

    def merge(self, other: Directives) -> Directives:
        """Self wins for single values; lists are joined."""
        return Directives(
            categories=_unique(self.categories + other.categories),
            tags=_unique(self.tags + other.tags),
            status=self.status or other.status,
            date=self.date or other.date,
            slug=self.slug or other.slug,
            excerpt=self.excerpt or other.excerpt,
            warnings=self.warnings + [w for w in other.warnings if w not in self.warnings],
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly, only what was set (warnings left out)."""
        out: dict[str, Any] = {}
        if self.categories:
            out["categories"] = self.categories
        if self.tags:
            out["tags"] = self.tags
        for name in ("status", "slug", "excerpt"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.date:
            out["date"] = self.date.isoformat()
        return out

    def run_inputs(self) -> dict[str, Any]:
        """What they change in a run, keyed as publish_document's inputs: the first category is the
        post's `category`; `categories` lists them all when there are several."""
        out = {name: list(value) if isinstance(value, list) else value for name, value in self.as_dict().items()}
        categories = out.pop("categories", [])
        if categories:
            out["category"] = categories[0]
        if len(categories) > 1:
            out["categories"] = categories
        return out

    def __bool__(self) -> bool:
        return bool(self.as_dict())


def extract_directives(text: str, *, is_html: bool = False) -> tuple[Directives, str]:
    """The directives found in `text` and the text without them (HTML stays HTML when is_html)."""
    found = Directives()

    def take(key: str, raw_value: str) -> None:
        value = _plain(raw_value) if is_html else raw_value
        _apply(found, _KEYWORDS[key.lower()], " ".join(value.split()))

    def block(match: re.Match[str]) -> str:
        take("excerpt", match.group("value"))
        return ""

    def inline(match: re.Match[str]) -> str:
        take(match.group("key"), match.group("value"))
        return ""

    cleaned = _BLOCK_EXCERPT.sub(block, text)
    cleaned = _INLINE.sub(inline, cleaned)
    return found, cleaned


def parse_subject(subject: str) -> tuple[Directives, str]:
    """Directives of a subject and the title that remains (reply/forward prefixes dropped too)."""
    found, rest = extract_directives(subject)
    title = " ".join(rest.split())
    title = _REPLY_PREFIX.sub("", title).strip()
    return found, title


def _apply(found: Directives, name: str, value: str) -> None:
    if name in ("categories", "tags"):
        names = getattr(found, name)
        for item in (item.strip() for item in value.split(",")):
            if item and item not in names:
                names.append(item)
        return
    if not value:
        found.warnings.append(f"[{name}] has no value and was ignored")
        return
    if name == "status":
        status = value.lower()
        if status in STATUSES:
            found.status = found.status or status
        else:
            found.warnings.append(f"[status {value}] is not one of {', '.join(STATUSES)}: ignored")
    elif name == "date":
        parsed = _parse_date(value)
        if parsed is None:
            found.warnings.append(f"[date {value}] is not a date like 2026-12-01 09:00: ignored")
        else:
            found.date = found.date or parsed
    elif name == "slug":
        found.slug = found.slug or "-".join(value.split()).lower()
    elif name == "excerpt":
        found.excerpt = found.excerpt or value


def _parse_date(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("/", "-"))
    except ValueError:
        return None


def _plain(fragment: str) -> str:
    return html.unescape(_TAG.sub(" ", fragment))


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
