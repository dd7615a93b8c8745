"""The editing ("transform") interface: an article in, an edited article and its post fields out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol


@dataclass
class SiteTerm:
    """A term (tag) that already exists on the target site, as WordPress lists it."""

    name: str
    slug: str = ""  # as WordPress stores it (UTF-8 slugs percent-encoded); "" to match by name only


@dataclass
class EditRequest:
    html: str  # sanitized article HTML; images as `copydesk-image:` placeholders
    text: str  # the same article as plain text
    title: str = ""  # the document's own title, if any
    keywords: list[str] = field(default_factory=list)  # from the document's properties
    categories: list[str] = field(default_factory=list)  # the site's existing categories to choose from
    instructions: str = ""  # the workflow's / source's editing instructions
    language: str = ""
    # The site's existing tags: the offline editor proposes tags only from the document and these.
    site_tags: list[SiteTerm] = field(default_factory=list)
    transliterate_slug: bool = False  # a slug in Latin letters (pinyin, romaji…) instead of the title's script
    model: str | None = None  # None: the editor's default
    temperature: float | None = None  # None: the editor's default


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0  # HTTP requests sent, failed attempts included
    cost_usd: float = 0.0  # estimated from the price table (see pricing.py)
    note: str = ""  # e.g. why the cost is 0

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.requests += other.requests
        self.cost_usd += other.cost_usd

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class EditResult:
    html: str
    title: str
    excerpt: str
    slug: str
    tags: list[str]
    category: str | None
    engine: str  # "offline" or "openai:<model>"
    warnings: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cached: bool = False
    kept_original_body: bool = False  # the model's body failed the checks; (part of) the original is kept
    chunks: int = 1  # how many pieces the body was edited in
    cached_parts: int = 0  # pieces answered from the part cache (all of them when `cached`)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (for the cache table and the API)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EditResult:
        """The inverse of to_dict; unknown keys (from a newer version) are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        usage = values.get("usage") or {}
        usage_known = {f.name for f in fields(Usage)}
        values["usage"] = Usage(**{k: v for k, v in usage.items() if k in usage_known})
        values["tags"] = list(values.get("tags") or [])
        values["warnings"] = list(values.get("warnings") or [])
        return cls(**values)


class Editor(Protocol):
    engine: str

    def edit(self, request: EditRequest) -> EditResult: ...
