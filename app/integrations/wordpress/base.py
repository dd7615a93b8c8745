"""The publishing interface: an article with resolved image URLs in, the post's id and URL out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass
class PostImage:
    key: str  # content-addressed image key (`<sha256>.<ext>`)
    url: str  # where storage serves it
    content_type: str
    alt: str = ""
    caption: str = ""
    filename: str = ""
    data: bytes | None = field(default=None, repr=False)  # only when the publisher must import it


@dataclass
class PostDraft:
    title: str
    html: str  # classic HTML body, image URLs resolved
    blocks: str  # block markup body, image URLs resolved
    meta: dict[str, str] = field(default_factory=dict)  # post meta sent with the blocks (core's footnotes)
    excerpt: str = ""
    slug: str = ""
    tags: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # empty: the site's default category
    # Who named the tags and the categories: sender | llm | offline. A name the site does not have
    # becomes a new term only when the site's `create_terms` allows it for that origin.
    tags_from: str = "sender"
    categories_from: str = "sender"
    status: str = ""  # draft | pending | publish | future | private; empty: the site's default status
    date: datetime | None = None  # for scheduled posts (aware: UTC instant; naive: the site's local time)
    images: list[PostImage] = field(default_factory=list)
    featured_image: str | None = None  # key of the featured image (None: none; see app/documents/featured.py)
    # Stable for one document (e.g. its id): stamped into the post, so a post created by an attempt
    # whose answer was lost (crash, timeout) is found and updated instead of created twice.
    idempotency_key: str = ""


@dataclass
class PublishedPost:
    post_id: int | None
    url: str
    status: str
    created: bool  # False when an existing post was updated
    media: dict[str, int] = field(default_factory=dict)  # image key -> WordPress media id
    warnings: list[str] = field(default_factory=list)
    featured_media: int | None = None
    recovered: bool = False  # found by its marker (an earlier attempt created it) rather than by id
    retries: int = 0  # requests retried after a 429, a 5xx or a network failure
    terms_created: list[str] = field(default_factory=list)  # "tags:Name", "categories:Name" made on the site
    terms_left_out: list[str] = field(default_factory=list)  # names the site lacks and may not get from us
    attached: list[int] = field(default_factory=list)  # media ids attached to the post by this publish


class Publisher(Protocol):
    name: str

    def publish(self, draft: PostDraft, *, existing_post_id: int | None = None) -> PublishedPost: ...
