"""Publish a PostDraft to a WordPress site through its REST API, exactly once.

One `publish()`:
1. finds the post: by `existing_post_id` (GET ?context=edit, trash included; deleted → a new post and a
   warning), else by the draft's marker (see below);
2. resolves categories and tags by name, creating the missing ones only when the site's
   `create_terms` allows it for whoever named them (the sender, the OpenAI editor, the offline
   editor; a 400 term_exists names the term); names left out are a warning;
3. imports images into the media library — all body images when the site asks for it, the featured
   image always — reusing what the site already has (the caller's media index, else the attachment's
   content-addressed slug), with alt text and caption;
4. takes the featured image out of the body (unless the site's `featured_image_in_body`: themes show
   it above the post), rewrites image URLs in the body (classic HTML or block markup, wp:image gets
   the media id) and creates or updates the post (status, date for scheduled posts, slug, excerpt,
   featured_media, and with block markup the draft's post meta: core's `footnotes`);
5. attaches the post's media that belong to no post yet (WordPress's `post` field of a media item:
   the media library lists them under their post; an image another post already has stays there).

Exactly once, with core REST features only. Every post carries an invisible marker at the end of its
body, an HTML comment `<!-- copydesk:post:KEY -->`, where KEY is the draft's `idempotency_key` (the
caller passes something stable for the document, e.g. its id). When the caller has no post id — the
first publish, or a worker that died after WordPress answered but before the id was committed — the
post is looked up with WordPress's search (which reads the raw content, in every status, trash
included) and verified by the exact marker in `content.raw`, then updated instead of created. The same
lookup runs before a create is retried, since a 5xx or a timeout can come after WordPress wrote the
post. Post meta would be tidier, but core REST cannot write meta that a plugin did not register, and a
unique slug would show in the post's URL. Limits: a search plugin that replaces WordPress's search for
REST requests and does not index drafts or comments defeats the lookup; an editor who deletes the
comment in the block editor removes the marker (the stored post id still binds the post).

Images are named by content: an imported image gets the attachment slug `copydesk-<sha256 prefix>`
(slugs of attachments are unique and never shown to readers), so one GET `/media?slug=a,b,c` finds
what an earlier run or another article already imported; the caller may also pass a media index
(image key → media id, per site) that is consulted first and filled as images are imported.
"""

from __future__ import annotations

import mimetypes
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC
from typing import Protocol

import httpx

from app.core.errors import (
    ConnectionFailed,
    NotFound,
    PermanentError,
    RemoteError,
    ServiceUnavailable,
    TimedOut,
)
from app.integrations.wordpress.base import PostDraft, PostImage, PublishedPost
from app.integrations.wordpress.client import WordPressClient
from app.integrations.wordpress.content import (
    MediaRef,
    has_marker,
    marker_token,
    media_slug,
    remove_image,
    rewrite_images,
    with_marker,
)
from app.integrations.wordpress.settings import STATUSES, WordPressSite, may_create_terms

_NAMED_BY = {
    "sender": "named by the sender",
    "llm": "proposed by the OpenAI editor",
    "offline": "proposed by the offline editor",
}
_CREATES = {
    "never": "adds no terms",
    "sender": "adds only the terms the sender names",
    "sender_and_llm": "adds only the terms the sender names or the OpenAI editor proposes",
}


class MediaIndex(Protocol):
    """Media already imported into one site, by image key (a dict works; the caller may persist it)."""

    def get(self, key: str, default: int | None = None) -> int | None: ...

    def __setitem__(self, key: str, media_id: int) -> None: ...


def _chunks(items: list, size: int = 100) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def upload_filename(image: PostImage) -> str:
    """A file name WordPress accepts: the image's own (unicode kept), with an extension that matches
    its content type (WordPress checks both)."""
    name = image.filename or image.key.rsplit("/", 1)[-1]
    name = re.sub(r'[\x00-\x1f\x7f"\\/]', "", name).strip() or "image"
    extensions = mimetypes.guess_all_extensions(image.content_type)
    if extensions and not name.lower().endswith(tuple(extensions)):
        name += ".jpg" if ".jpg" in extensions else extensions[0]
    return name


def text_field(value: str) -> str:
    """A plain-text value for a field WordPress keeps as HTML (a post's title, its excerpt): `<` and `>`
    become entities, so a manuscript titled "Budget <script>…" shows those characters and runs nothing.
    (Themes print titles unescaped, and an administrator's posts skip WordPress's own filtering.)"""
    return (value or "").replace("<", "&lt;").replace(">", "&gt;")


_SCRIPTS = re.compile(r"<(script|style)\b.*?(</\1\s*>|$)", re.I | re.S)
_MARKUP = re.compile(r"<[^>]*>?")


def term_name(name: str) -> str:
    """A category or tag name as WordPress will keep it: without markup (WordPress strips tags from term
    names, and a name that is only markup would be refused as empty and fail the whole publish)."""
    return " ".join(_MARKUP.sub(" ", _SCRIPTS.sub(" ", name or "")).split())


class WordPressPublisher:
    """The Publisher for one WordPress site."""

    name = "wordpress"

    def __init__(
        self,
        site: WordPressSite,
        *,
        media_index: MediaIndex | None = None,
        fetch_image: Callable[[PostImage], bytes] | None = None,
        client: WordPressClient | None = None,
    ) -> None:
        self.site = site
        self.client = client or WordPressClient(site)
        self.media_index = media_index
        self.fetch_image = fetch_image or self._download

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> WordPressPublisher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- publish ---------------------------------------------------------------------------------

    def publish(self, draft: PostDraft, *, existing_post_id: int | None = None) -> PublishedPost:
        retries_before = self.client.retries
        created_before = len(self.client.created_terms)
        warnings: list[str] = []
        status = draft.status or self.site.default_status
        if status not in STATUSES:
            raise PermanentError(f"Unknown post status {status!r}: use one of {', '.join(STATUSES)}.")
        if status == "future" and draft.date is None:
            raise PermanentError("A scheduled post (status future) needs a date.")
        token = marker_token(draft.idempotency_key or uuid.uuid4().hex)
        self.client.me()  # credentials first, for a clear 401

        # 1. The post this draft is bound to, if it exists.
        existing: dict | None = None
        recovered = deleted = False
        if existing_post_id:
            existing = self.client.get_post(existing_post_id)
            deleted = existing is None
        if existing is None:
            existing = self._find_by_marker(token, warnings)
            recovered = existing is not None
        if existing is not None and existing.get("status") == "trash":
            warnings.append(
                f"Post {existing['id']} was in the trash on {self.site.url}: it was restored and updated."
            )

        # 2. Terms.
        left_out: list[str] = []
        if draft.categories:
            categories = self._term_ids("categories", draft.categories, draft.categories_from, left_out, warnings)
        else:  # the site's default category: an admin named it
            default = [self.site.default_category] if self.site.default_category else []
            categories = self._term_ids("categories", default, "sender", left_out, warnings)
        tags = self._term_ids("tags", draft.tags, draft.tags_from, left_out, warnings)

        # 3. Images.
        featured_key = draft.featured_image
        by_key = {image.key: image for image in draft.images}
        if featured_key and featured_key not in by_key:
            warnings.append(
                f"The featured image {featured_key} is not among the article's images: no featured image."
            )
            featured_key = None
        if self.site.import_images:
            to_import = list(by_key.values())
        else:
            to_import = [by_key[featured_key]] if featured_key else []
        media = self._import_images(to_import, post_id=existing["id"] if existing else None)

        # 4. The body and the post.
        as_blocks = bool(draft.blocks) and (self.site.body_format == "blocks" or not draft.html)
        body = draft.blocks if as_blocks else draft.html
        if featured_key and not self.site.featured_image_in_body and by_key[featured_key].url:
            body = remove_image(body, by_key[featured_key].url)
        if self.site.import_images:
            body = rewrite_images(body, {by_key[k].url: ref for k, ref in media.items() if by_key[k].url})
        payload: dict = {
            "title": text_field(draft.title),
            "content": with_marker(body, token),
            "excerpt": text_field(draft.excerpt),
            "status": status,
            "tags": tags,
            "featured_media": media[featured_key].id if featured_key else 0,
        }
        if as_blocks and draft.meta:
            payload["meta"] = draft.meta
        if categories:
            payload["categories"] = categories
        if draft.slug:
            payload["slug"] = draft.slug
        if draft.date is not None:
            if draft.date.tzinfo is not None:
                payload["date_gmt"] = (
                    draft.date.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
                )
            else:
                payload["date"] = draft.date.isoformat(timespec="seconds")

        if existing is not None:
            post = self.client.update_post(existing["id"], payload)
            if existing.get("status") == "trash" and draft.slug and post.get("slug") != draft.slug:
                # Leaving the trash, WordPress puts back the slug the post had before; ours comes second.
                post = self.client.update_post(existing["id"], {"slug": draft.slug})
            created = False
        else:
            post, created = self.client.create_post(
                payload, find_existing=lambda: self._find_by_marker(token, warnings, retry=False)
            )
            recovered = recovered or not created
        if deleted:
            outcome = (
                "a new post was created"
                if created
                else f"post {post['id']}, which carries its marker, was updated"
            )
            warnings.insert(
                0, f"Post {existing_post_id} no longer exists on {self.site.url} (deleted there): {outcome}."
            )
        if status == "future" and post.get("status") == "publish":
            warnings.append("The scheduled date is in the past: WordPress published the post at once.")
        attached = self._attach(media, post["id"], warnings)

        return PublishedPost(
            post_id=post["id"],
            url=post.get("link", ""),
            status=post.get("status", status),
            created=created,
            media={key: ref.id for key, ref in media.items()},
            warnings=warnings,
            featured_media=post.get("featured_media") or None,
            recovered=recovered,
            retries=self.client.retries - retries_before,
            terms_created=[f"{tax}:{name}" for tax, name in self.client.created_terms[created_before:]],
            terms_left_out=left_out,
            attached=attached,
        )

    # --- terms -----------------------------------------------------------------------------------

    def _term_ids(
        self, taxonomy: str, names: list[str], origin: str, left_out: list[str], warnings: list[str]
    ) -> list[int]:
        """The ids of the named terms; a name the site lacks is created only when the site's
        `create_terms` allows it for `origin`, else left out (a warning)."""
        create = may_create_terms(self.site.create_terms, origin)
        ids: list[int] = []
        missing: list[str] = []
        for name in filter(None, map(term_name, names)):
            term_id = self.client.term_id(taxonomy, name, create=create)
            if term_id is None:
                missing.append(name)
            else:
                ids.append(term_id)
        if missing:
            left_out.extend(f"{taxonomy}:{name}" for name in missing)
            label = "Tags" if taxonomy == "tags" else "Categories"
            warnings.append(
                f"{label} not on {self.site.url}, left out: {', '.join(map(repr, missing))} "
                f"({_NAMED_BY[origin]}; the site's create_terms {self.site.create_terms!r} "
                f"{_CREATES[self.site.create_terms]})."
            )
        return ids

    # --- attaching media -------------------------------------------------------------------------

    def _attach(self, media: dict[str, MediaRef], post_id: int, warnings: list[str]) -> list[int]:
        """Attach to the post the media it uses that no post has yet; once: an attached item is left
        alone (also one attached to another post, which showed it first)."""
        attached: list[int] = []
        for ref in {ref.id: ref for ref in media.values()}.values():
            if ref.post:
                continue
            try:
                self.client.attach_media(ref.id, post_id)
            except PermanentError as exc:  # the post is written: say so, do not fail it
                warnings.append(f"Media {ref.id} could not be attached to post {post_id}: {exc.message}")
                continue
            attached.append(ref.id)
        return attached

    # --- finding our post ------------------------------------------------------------------------

    def _find_by_marker(self, token: str, warnings: list[str], *, retry: bool = True) -> dict | None:
        found = self.client.find_posts(token, retry=retry)
        ours = [post for post in found if has_marker((post.get("content") or {}).get("raw", ""), token)]
        if len(ours) > 1:
            warnings.append(
                f"{len(ours)} posts on {self.site.url} carry this document's marker "
                f"({', '.join(str(p['id']) for p in ours)}): post {ours[0]['id']} was updated."
            )
        return ours[0] if ours else None

    # --- media -----------------------------------------------------------------------------------

    def _import_images(self, images: list[PostImage], *, post_id: int | None) -> dict[str, MediaRef]:
        """key → MediaRef for each image, reusing what the site has, uploading the rest."""
        refs: dict[str, MediaRef] = {}
        if not images:
            return refs
        if self.media_index is not None:
            known = {image.key: self.media_index.get(image.key) for image in images}
            ids = sorted({int(i) for i in known.values() if i})
            found: dict[int, dict] = {}
            for chunk in _chunks(ids):
                found.update({m["id"]: m for m in self.client.media(include=",".join(map(str, chunk)))})
            for key, media_id in known.items():
                if media_id and int(media_id) in found:
                    item = found[int(media_id)]
                    refs[key] = MediaRef(int(media_id), item["source_url"], int(item.get("post") or 0))
        missing = [image for image in images if image.key not in refs]
        if missing:
            by_slug: dict[str, dict] = {}
            for chunk in _chunks([media_slug(image.key) for image in missing]):
                by_slug.update({m["slug"]: m for m in self.client.media(slug=",".join(chunk))})
            for image in missing:
                media = by_slug.get(media_slug(image.key))
                if media is None:
                    media = self._upload(image, post_id=post_id)
                refs[image.key] = MediaRef(media["id"], media["source_url"], int(media.get("post") or 0))
                if self.media_index is not None:
                    self.media_index[image.key] = media["id"]  # at once: a crash later keeps it
        if self.media_index is not None:
            for key, ref in refs.items():
                if self.media_index.get(key) != ref.id:
                    self.media_index[key] = ref.id
        return refs

    def _upload(self, image: PostImage, *, post_id: int | None) -> dict:
        data = image.data if image.data is not None else self.client.retrying(lambda: self.fetch_image(image))
        slug = media_slug(image.key)
        params = {"slug": slug, "alt_text": image.alt, "caption": text_field(image.caption)}
        if post_id:
            params["post"] = post_id

        def find_existing() -> dict | None:
            return next(iter(self.client.media(slug=slug, retry=False)), None)

        return self.client.upload_media(
            data,
            filename=upload_filename(image),
            content_type=image.content_type,
            params=params,
            find_existing=find_existing,
        )

    def _download(self, image: PostImage) -> bytes:
        """The image's bytes from storage (no WordPress credentials on this request)."""
        try:
            response = httpx.get(image.url, timeout=self.site.upload_timeout, follow_redirects=True)
        except httpx.TimeoutException as exc:
            raise TimedOut(f"Fetching the image {image.key} from storage timed out.") from exc
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"Cannot fetch the image {image.key} from storage: {exc}") from exc
        if response.status_code == 404:
            raise NotFound(f"The image {image.key} is not in storage ({image.url}).")
        if response.status_code >= 500 or response.status_code == 429:
            raise ServiceUnavailable(f"Storage answered {response.status_code} for the image {image.key}.")
        if not response.is_success:
            raise RemoteError(f"Storage answered {response.status_code} for the image {image.key}.")
        return response.content
