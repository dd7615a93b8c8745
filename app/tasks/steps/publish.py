"""The publish step: the article to its WordPress site (exactly once), or to the local preview.

Which site: app/services/sites.py `site_for` (the run's `site` > the document's site > its source's >
the default site (WP_URL, or the site marked default) > none: the local preview, as before any site
is configured).

Exactly once. The post is bound to the document: the idempotency key is the document id (stamped into
the post as an invisible marker, see app/integrations/wordpress/publisher.py) and the post id is
committed on the article as soon as WordPress answers. A retry, a redelivered task (a worker killed
after WordPress answered but before the commit) or a later run of the same document finds the post by
its stored id, else by its marker, and updates it; a post deleted on the site is created again, with a
warning on the run. Media already imported into the site are remembered per site and image content
(SiteMedia, one short transaction per media id, as soon as it is known), so a retry uploads nothing
twice.

Retries, two layers that do different jobs: each WordPress request is tried up to REQUEST_ATTEMPTS
times (429 with its Retry-After, 5xx, timeouts; a create or upload first looks for what a lost try
wrote), because a whole publish makes 7–15 requests and, against a site failing 30% of them, a whole
attempt gets through only 3% of the time (0.7^10; 6 runs in 10 failed that way in
tests/resilience/test_faults.py). What outlasts them fails the attempt, and the step's retry policy
(publish_document.yaml) repeats the whole publish later, with WordPress's own error on the step. The
result says how many requests were retried (`retries`). A site's `attempts` option overrides
REQUEST_ATTEMPTS. 401/403 and other 4xx are permanent: the step fails at once with WordPress's
explanation.

What the site gets (the publisher applies the site's options): tags and categories the site lacks are
added only when its `create_terms` allows it for whoever named them — the sender (run inputs and the
document's directives), the OpenAI editor or the offline editor — else left out with a warning; the
featured image leaves the body unless `featured_image_in_body`; the media the post uses are attached
to it.
"""

from __future__ import annotations

import html
import mimetypes
import re
import uuid
from datetime import datetime
from pathlib import PurePath

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.core.db import session_scope
from app.core.errors import NotFound, PermanentError
from app.documents import from_html, placeholder_keys, resolve_images
from app.documents.featured import choose_featured_image
from app.integrations.wordpress import PostDraft, PostImage, WordPressPublisher
from app.models import Asset, Document, SiteMedia
from app.services import preview_url, storage
from app.services.sites import forget_site_terms, site_for, wordpress_site
from app.tasks.steps.common import article
from app.workflows.registry import StepContext, implements
from app.workflows.state import now

REQUEST_ATTEMPTS = 4  # tries per WordPress request (see the module docstring)


class SiteMediaIndex:
    """The site's media library as far as Copydesk knows it: image key -> media id, kept in SiteMedia
    by content hash. A new id is committed at once, in a transaction of its own."""

    def __init__(self, site_id: uuid.UUID, known: dict[str, int]) -> None:
        self.site_id = site_id
        self._ids = dict(known)  # sha256 -> media id

    @staticmethod
    def sha_of(key: str) -> str:
        return PurePath(key).name.split(".", 1)[0]

    @classmethod
    def load(cls, session, site_id: uuid.UUID, keys: list[str]) -> SiteMediaIndex:
        shas = [cls.sha_of(k) for k in keys]
        rows = session.execute(
            select(SiteMedia.sha256, SiteMedia.media_id).where(
                SiteMedia.site_id == site_id, SiteMedia.sha256.in_(shas)
            )
        ).all()
        return cls(site_id, dict(rows))

    def get(self, key: str, default: int | None = None) -> int | None:
        return self._ids.get(self.sha_of(key), default)

    def __setitem__(self, key: str, media_id: int) -> None:
        sha = self.sha_of(key)
        if self._ids.get(sha) == media_id:
            return
        with session_scope() as session:
            session.execute(
                pg_insert(SiteMedia)
                .values(site_id=self.site_id, sha256=sha, media_id=int(media_id), url="")
                .on_conflict_do_update(index_elements=["site_id", "sha256"], set_={"media_id": int(media_id)})
            )
        self._ids[sha] = media_id


# --- directives ----------------------------------------------------------------------------------


def _directives(ctx: StepContext, doc: Document | None) -> dict:
    """The document's options (intake directives), overridden by the run's inputs."""
    given = {k: v for k, v in (ctx.payload or {}).items() if v not in (None, "", [])}
    return {**((doc.options or {}) if doc else {}), **given}


def _names(value) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [" ".join(str(v).split()) for v in items if str(v).strip()]


def _date(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise PermanentError(
            f"The publish date {value!r} is not an ISO 8601 date (e.g. 2030-05-01T09:00:00+02:00).",
            code="invalid_request",
        ) from None


def _filename(doc: Document | None, asset: Asset, number: int) -> str:
    stem = PurePath(doc.filename).stem if doc else ""
    stem = re.sub(r"\s+", " ", stem).strip() or "image"
    ext = PurePath(asset.key).suffix or (mimetypes.guess_extension(asset.content_type) or "")
    return f"{stem}-{number}{ext}"


def _body_blocks(art, urls: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The block body and its post meta (core's footnotes): the converter's blocks while they hold
    the article's text, else the article's HTML (the edit step writes HTML) read back into the
    document model and written by the converter's block writer, so the edit keeps the structure."""
    edited = art.html != resolve_images(art.original_html, urls)
    blocks_untouched = art.blocks == resolve_images(art.original_blocks, urls)
    if art.blocks and not (edited and blocks_untouched):
        return art.blocks, dict((art.doc_metadata or {}).get("wp_meta") or {})
    body = from_html(art.html, image_keys={url: key for key, url in urls.items()})
    return resolve_images(body.blocks, urls), body.wordpress_meta()


# --- the step ------------------------------------------------------------------------------------


@implements("publish")
def publish(ctx: StepContext) -> dict:
    """Publish the article: to its WordPress site, or to the local preview when no site is configured."""
    with session_scope() as session:
        art = article(session, ctx.document_id)
        doc = session.get(Document, ctx.document_id) if ctx.document_id else None
        assets = list(
            session.execute(
                select(Asset).where(Asset.document_id == ctx.document_id).order_by(Asset.position)
            ).scalars()
        )
        urls = {a.key: a.url for a in assets if a.url}
        missing = [k for k in placeholder_keys(art.html) if k not in urls]
        if missing:
            raise NotFound(f"{len(missing)} image(s) have no stored URL yet: {', '.join(missing[:3])}")
        art.html = resolve_images(art.html, urls)
        art.blocks = resolve_images(art.blocks, urls)
        wanted = _directives(ctx, doc)
        status = str(wanted.get("status") or "")
        date = _date(wanted.get("date"))
        if date is not None and not status:
            status = "future"
        site = site_for(session, payload=ctx.payload, document=doc)
        if site is None:  # the preview shows the status asked for (a draft says so)
            art.publisher = "preview"
            art.wp_url = preview_url(art.id)
            art.status = status or "publish"
            art.publish_at = date
            art.published_at = now()
            url = art.wp_url
            return {"url": url, "publisher": "preview", "status": art.status, "summary": f"preview at {url}"}

        in_body = [a for a in assets if a.url and (a.url in art.html or html.escape(a.url) in art.html)]
        # The featured image: the one a directive names (by its position in the manuscript, 1 = the
        # first, or its key), else the one the parse step chose (None: no image qualified).
        featured_key = art.featured_image if any(a.key == art.featured_image for a in assets) else None
        featured_warning = None
        if wanted.get("featured_image"):
            featured = choose_featured_image(assets, wanted["featured_image"])
            featured_key = featured.image.key if featured.image is not None else None
            featured_warning = featured.reason if featured.unknown_name else None
        chosen = list(in_body)
        if featured_key and featured_key not in {a.key for a in chosen}:
            chosen.append(next(a for a in assets if a.key == featured_key))
        blocks, meta = _body_blocks(art, urls) if site.body_format == "blocks" else (art.html, {})
        # Names the sender gave are theirs; the others the editor proposed (whether the site takes a
        # name it lacks depends on who named it: the site's create_terms).
        sender_tags = _names(wanted.get("tags"))
        sender_categories = _names(wanted.get("categories") or wanted.get("category"))
        edited_by = "llm" if (art.edit_engine or "").startswith("openai") else "offline"
        draft = PostDraft(
            title=str(wanted.get("title") or art.title),
            html=art.html,
            blocks=blocks,
            meta=meta,
            excerpt=str(wanted.get("excerpt") or art.excerpt or ""),
            slug=str(wanted.get("slug") or art.slug or ""),
            tags=sender_tags or list(art.tags or []),
            categories=sender_categories or list(art.categories or []),
            tags_from="sender" if sender_tags else edited_by,
            categories_from="sender" if sender_categories else edited_by,
            status=status,
            date=date,
            images=[
                PostImage(
                    key=a.key,
                    url=a.url or "",
                    content_type=a.content_type,
                    alt=a.alt,
                    caption=a.caption,
                    filename=_filename(doc, a, a.position + 1),
                )
                for a in chosen
            ],
            featured_image=featured_key,
            idempotency_key=str(ctx.document_id),
        )
        bound = art.site_id == site.id and art.publisher == "wordpress"
        existing_post_id = art.wp_post_id if bound else None
        wp = wordpress_site(site, attempts=site.options.attempts or REQUEST_ATTEMPTS)
        site_id, site_name, article_id = site.id, site.name, art.id
        media_index = SiteMediaIndex.load(session, site_id, [a.key for a in chosen])
        stored = {a.key: a.storage_key or a.artifact_key for a in chosen}
    if featured_warning:
        ctx.warn(featured_warning)

    def fetch_image(image: PostImage) -> bytes:
        return storage().get(stored[image.key])

    with WordPressPublisher(wp, media_index=media_index, fetch_image=fetch_image) as publisher:
        post = publisher.publish(draft, existing_post_id=existing_post_id)

    # Bind the post to the document at once: a crash after this line cannot make a second post.
    with session_scope() as session:
        art = article(session, ctx.document_id)
        art.site_id = site_id
        art.publisher = "wordpress"
        art.wp_post_id = post.post_id
        art.wp_url = post.url
        art.status = post.status
        art.publish_at = draft.date
        art.published_at = now()
    if post.terms_created:  # the editors' next choices include them
        forget_site_terms(wp)
    for warning in post.warnings:
        ctx.warn(warning)
    verb = "created" if post.created else "updated"
    return {
        "url": post.url,
        "publisher": "wordpress",
        "site": site_name,
        "post_id": post.post_id,
        "status": post.status,
        "created": post.created,
        "recovered": post.recovered,
        "media": post.media,
        "featured_media": post.featured_media,
        "retries": post.retries,
        "terms_created": post.terms_created,
        "terms_left_out": post.terms_left_out,
        "attached": post.attached,
        "article_id": str(article_id),
        "summary": f"{verb} post {post.post_id} ({post.status}) on {site_name}: {post.url}",
    }
