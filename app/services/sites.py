"""WordPress sites for the workers and the API: the `sites` table as WordPressSite settings, the
default site from WP_URL / WP_USER / WP_APP_PASSWORD, which site a document is published to, and a
site's existing terms (for the transform step: the editors choose tags and a category from them).

The default site. When WP_URL is set, the environment defines the default site: `ensure_env_site()`
keeps a row named "default" (options.from_env) in step with WP_URL, WP_USER, WP_APP_PASSWORD
(+ WP_BODY_FORMAT, WP_IMPORT_IMAGES, WP_DEFAULT_STATUS, WP_DEFAULT_CATEGORY, WP_SITE_OPTIONS, read
from the process environment), and makes it the default. It is idempotent and cheap (one SELECT when nothing changed),
and is called by the publish step and by the /sites routes, so the row exists as soon as either runs.
The row is needed for what hangs off a site (its media index, the article's binding to it) and so that
GET /sites shows it. The API refuses to change or delete it: change the environment instead. When WP_URL
is unset, a row left by an earlier configuration stays (its media index too) but is no longer the
default; a site created through the API with is_default=true is the default then.

Which site (`site_for`): the run's `site` input (a site name; "preview" forces the local preview) >
the document's site_id > its source's default site > the default site > none, which means the local
preview publisher.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import redis
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.errors import ConfigurationError, CopydeskError, NotFound
from app.core.redis_client import redis_client
from app.core.security import decrypt_secret, encrypt_secret
from app.integrations.llm import SiteTerm
from app.integrations.wordpress import WordPressClient, WordPressSite
from app.models import Document, Site, SiteOptions, Source, StoredSiteOptions

log = logging.getLogger("copydesk.sites")

ENV_SITE_NAME = "default"
PREVIEW = "preview"  # a run's `site: preview` publishes to the local preview, whatever is configured


# --- the environment's site -----------------------------------------------------------------------


def env_site_options() -> SiteOptions:
    """WP_SITE_OPTIONS, checked as the API checks a site's options."""
    try:
        return SiteOptions.model_validate(get_settings().wp_site_options or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"WP_SITE_OPTIONS: {problems}") from None


def env_wordpress_site() -> WordPressSite | None:
    """The default site as the settings describe it (WP_URL, WP_USER, WP_APP_PASSWORD, WP_BODY_FORMAT,
    WP_IMPORT_IMAGES, WP_DEFAULT_STATUS, WP_DEFAULT_CATEGORY, WP_SITE_OPTIONS), or None without WP_URL."""
    settings = get_settings()
    if settings.wp_url is None:
        return None
    return WordPressSite(
        url=str(settings.wp_url),
        user=settings.wp_user or "",
        app_password=settings.wp_app_password.get_secret_value() if settings.wp_app_password else "",
        body_format=settings.wp_body_format,
        import_images=settings.wp_import_images,
        default_status=settings.wp_default_status,
        default_category=settings.wp_default_category or "",
        **env_site_options().client_settings(),
    )


def _env_values(wp: WordPressSite) -> dict[str, Any]:
    return {
        "url": wp.url,
        "username": wp.user,
        "body_format": wp.body_format,
        "import_images": wp.import_images,
        "default_status": wp.default_status,
        "default_category": wp.default_category or None,
    }


def _password_matches(site: Site, password: str) -> bool:
    try:
        return decrypt_secret(site.app_password_encrypted) == password
    except ConfigurationError:  # saved under another ENCRYPTION_KEY: rewrite it
        return False


def ensure_env_site(session: Session) -> Site | None:
    """The site WP_URL defines, created or brought in step with the environment (idempotent, safe
    under concurrency); None when WP_URL is not set. The caller commits."""
    wp = env_wordpress_site()
    if wp is None:
        session.execute(
            update(Site)
            .where(Site.is_default, Site.options["from_env"].as_boolean())
            .values(is_default=False)
            .execution_options(synchronize_session=False)
        )
        return None
    values = _env_values(wp)
    options = StoredSiteOptions(**env_site_options().model_dump(exclude_none=True), from_env=True)
    site = session.execute(select(Site).where(Site.name == ENV_SITE_NAME)).scalar_one_or_none()
    if (
        site is not None
        and site.options == options
        and site.is_default
        and all(getattr(site, k) == v for k, v in values.items())
        and _password_matches(site, wp.app_password)
    ):
        return site
    session.execute(
        pg_insert(Site)
        .values(
            id=uuid.uuid4(),
            name=ENV_SITE_NAME,
            app_password_encrypted=encrypt_secret(wp.app_password),
            media_prefix="",
            is_default=False,
            options=options,
            **values,
        )
        .on_conflict_do_nothing(index_elements=["name"])
    )
    site = session.execute(
        select(Site)
        .where(Site.name == ENV_SITE_NAME)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    for key, value in values.items():
        if getattr(site, key) != value:
            setattr(site, key, value)
    if not _password_matches(site, wp.app_password):
        site.app_password_encrypted = encrypt_secret(wp.app_password)
    if site.options != options:
        site.options = options
    if not site.is_default:
        session.execute(
            update(Site)
            .where(Site.id != site.id, Site.is_default)
            .values(is_default=False)
            .execution_options(synchronize_session=False)
        )
        session.flush()
        site.is_default = True
    session.flush()
    return site


def default_site(session: Session) -> Site | None:
    """The site WP_URL defines, else the site marked default in the database, else None."""
    site = ensure_env_site(session)
    if site is not None:
        return site
    return session.execute(select(Site).where(Site.is_default)).scalars().first()


# --- which site ----------------------------------------------------------------------------------


def _by_name(session: Session, name: str, where: str) -> Site:
    site = session.execute(select(Site).where(Site.name == name)).scalar_one_or_none()
    if site is None:
        if name == ENV_SITE_NAME and (site := ensure_env_site(session)) is not None:
            return site
        known = ", ".join(session.execute(select(Site.name).order_by(Site.name)).scalars()) or "none"
        raise NotFound(f"{where} names the WordPress site {name!r}, which does not exist (sites: {known}).")
    return site


def site_for(
    session: Session, *, payload: dict | None = None, document: Document | None = None
) -> Site | None:
    """The site a run publishes to (see the module's docstring); None: the local preview."""
    name = str((payload or {}).get("site") or "").strip()
    if name:
        return None if name == PREVIEW else _by_name(session, name, "The run")
    if document is not None and document.site_id:
        site = session.get(Site, document.site_id)
        if site is not None:
            return site
    if document is not None and document.source_id:
        source = session.get(Source, document.source_id)
        name = str(((source.defaults or {}) if source else {}).get("site") or "").strip()
        if name:
            return None if name == PREVIEW else _by_name(session, name, f"The source {source.name!r}")
    return default_site(session)


def wordpress_site(site: Site, **overrides: Any) -> WordPressSite:
    """The client settings for a site row (the application password decrypted here, in memory only)."""
    try:
        password = decrypt_secret(site.app_password_encrypted)
    except ConfigurationError:
        raise ConfigurationError(
            f"The application password of the WordPress site {site.name!r} cannot be decrypted "
            "(ENCRYPTION_KEY changed since it was saved): set it again (PATCH /sites/{id})."
            if not site.options.from_env
            else f"The application password of the WordPress site {site.name!r} cannot be decrypted."
        ) from None
    return WordPressSite(
        url=site.url,
        user=site.username,
        app_password=password,
        body_format=site.body_format,
        import_images=site.import_images,
        default_status=site.default_status,
        default_category=site.default_category or "",
        **{**site.options.client_settings(), **overrides},
    )


# --- terms ---------------------------------------------------------------------------------------

MAX_SITE_TAGS = 1000  # the most used ones: a site with more keeps its rare tags out of the editors' lists
MAX_SITE_CATEGORIES = 500
TERMS_KEY = "copydesk:site-terms:"


def fetch_categories(wp: WordPressSite) -> list[dict]:
    """Every category of the site: [{id, name, slug, count, parent}], by name. Raises typed errors."""
    with WordPressClient(wp) as client:
        return client.terms("categories", limit=10_000, orderby="name", fields="id,name,slug,count,parent")


@dataclass
class SiteTerms:
    """What a site already has, for the editors to choose from."""

    tags: list[SiteTerm] = field(default_factory=list)  # the most used first
    categories: list[str] = field(default_factory=list)  # by name
    error: str | None = None  # why the site could not be asked (then both lists are empty)


def _terms_key(wp: WordPressSite) -> str:
    return TERMS_KEY + hashlib.sha256(f"{wp.url}\n{wp.user}".encode()).hexdigest()[:32]


def site_terms(wp: WordPressSite | None) -> SiteTerms:
    """The site's tags (the MAX_SITE_TAGS most used) and categories; none for the local preview (None).

    Asked by the io worker's transform step, never by an API request, and kept in Redis for
    SITE_TERMS_TTL seconds, shared by every worker, so a batch of documents asks the site once; the
    publish step forgets them when it adds a term. A site that cannot be asked gives empty lists and
    the reason (choosing terms is a nicety: the publish step reports a site that is down)."""
    if wp is None:
        return SiteTerms()
    ttl = get_settings().site_terms_ttl
    key = _terms_key(wp)
    if ttl > 0:
        try:
            cached = redis_client().get(key)
        except redis.RedisError as exc:
            log.warning("the site terms cache cannot be read: %s", exc)
            cached = None
        if cached:
            data = json.loads(cached)
            return SiteTerms([SiteTerm(name, slug) for name, slug in data["tags"]], data["categories"])
    try:
        with WordPressClient(_quick(wp)) as client:
            tags = client.terms("tags", limit=MAX_SITE_TAGS, fields="name,slug")
            categories = client.terms("categories", limit=MAX_SITE_CATEGORIES, orderby="name", fields="name")
    except CopydeskError as exc:
        log.warning("cannot read the terms of %s: %s", wp.url, exc.message)
        return SiteTerms(error=exc.message)
    terms = SiteTerms([SiteTerm(t["name"], t["slug"]) for t in tags], [c["name"] for c in categories])
    if ttl > 0:
        value = {"tags": [[t.name, t.slug] for t in terms.tags], "categories": terms.categories}
        try:
            redis_client().set(key, json.dumps(value), ex=max(1, round(ttl)))
        except redis.RedisError as exc:
            log.warning("the site terms cache cannot be written: %s", exc)
    return terms


def forget_site_terms(wp: WordPressSite) -> None:
    """Drop the site's cached terms (the publish step added one): the next edit asks the site."""
    try:
        redis_client().delete(_terms_key(wp))
    except redis.RedisError as exc:  # it expires by itself
        log.warning("the site terms cache cannot be cleared: %s", exc)


def _quick(wp: WordPressSite) -> WordPressSite:
    """One attempt, short timeout: a lookup that must not hold up the caller."""
    return replace(wp, attempts=1, timeout=min(wp.timeout, 10.0))
