"""WordPress sites posts are published to. Reading is for every user (editors pick a site by name);
creating, changing, deleting and testing are for admins. The application password is write-only:
encrypted at rest (ENCRYPTION_KEY), never returned, never logged.

The site named "default" comes from WP_URL / WP_USER / WP_APP_PASSWORD when they are set (see
app/services/sites.py): it is listed here, tested and asked for its categories like any other, but it
is changed through the environment, not through the API.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import select, update

from app.api.deps import AdminUser, CurrentUser, Session, get_or_404
from app.core.errors import ConfigurationError, CopydeskError, error_code
from app.core.security import encrypt_secret
from app.integrations.wordpress import WordPressClient, WordPressSite
from app.models import Site, SiteOptions, StoredSiteOptions
from app.services.sites import (
    ENV_SITE_NAME,
    PREVIEW,
    ensure_env_site,
    env_wordpress_site,
    fetch_categories,
    wordpress_site,
)

router = APIRouter(prefix="/sites", tags=["sites"])

BodyFormat = Literal["blocks", "html"]
DefaultStatus = Literal["draft", "pending", "publish", "private"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,199}$"
PREFIX_PATTERN = r"^[A-Za-z0-9._-]*(/[A-Za-z0-9._-]+)*$"


# --- schemas -----------------------------------------------------------------------------------------


class SiteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=200, pattern=NAME_PATTERN, description="how runs and sources name it"
    )
    url: str = Field(min_length=1, max_length=2000, description="its address: https://news.example.org")
    username: str = Field(min_length=1, max_length=200)
    app_password: SecretStr = Field(
        description="an application password (Users → Profile → Application Passwords); write-only"
    )
    body_format: BodyFormat = "blocks"
    import_images: bool = Field(
        True, description="body images into the media library (false: their storage URLs stay)"
    )
    default_status: DefaultStatus = "draft"
    default_category: str | None = Field(None, max_length=200)
    media_prefix: str = Field(
        "", max_length=200, pattern=PREFIX_PATTERN, description="storage folder under media/"
    )
    is_default: bool = False
    options: SiteOptions = Field(default_factory=SiteOptions)


class SiteUpdate(BaseModel):
    """Only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200, pattern=NAME_PATTERN)
    url: str | None = Field(None, min_length=1, max_length=2000)
    username: str | None = Field(None, min_length=1, max_length=200)
    app_password: SecretStr | None = None
    body_format: BodyFormat | None = None
    import_images: bool | None = None
    default_status: DefaultStatus | None = None
    default_category: str | None = Field(None, max_length=200, description='"" removes it')
    media_prefix: str | None = Field(None, max_length=200, pattern=PREFIX_PATTERN)
    is_default: bool | None = None
    options: SiteOptions | None = None


class SiteOut(BaseModel):
    id: uuid.UUID
    name: str
    url: str
    username: str
    app_password_set: bool  # the password itself is never returned
    body_format: str
    import_images: bool
    default_status: str
    default_category: str | None
    media_prefix: str
    is_default: bool
    from_env: bool  # defined by WP_URL / WP_USER / WP_APP_PASSWORD: change it there
    options: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SiteUser(BaseModel):
    id: int | None
    name: str
    slug: str
    roles: list[str]


class SiteTest(BaseModel):
    ok: bool
    error: str | None = None
    error_code: str | None = None
    user: SiteUser | None = None
    can: dict[str, bool] = Field(default_factory=dict, description="the capabilities publishing needs")
    warnings: list[str] = Field(default_factory=list)
    elapsed_ms: float = 0


class Category(BaseModel):
    id: int
    name: str
    slug: str
    count: int = 0
    parent: int = 0


# --- helpers -----------------------------------------------------------------------------------------


def _invalid(message: str) -> HTTPException:
    return HTTPException(422, detail=message)


def _conflict(message: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, detail=message)


def site_out(site: Site) -> SiteOut:
    return SiteOut(
        id=site.id,
        name=site.name,
        url=site.url,
        username=site.username,
        app_password_set=bool(site.app_password_encrypted),
        body_format=site.body_format,
        import_images=site.import_images,
        default_status=site.default_status,
        default_category=site.default_category,
        media_prefix=site.media_prefix,
        is_default=site.is_default,
        from_env=site.options.from_env,
        options=site.options.client_settings(),
        created_at=site.created_at,
        updated_at=site.updated_at,
    )


def _check(values: dict[str, Any]) -> WordPressSite:
    """The values as the publisher will read them (URL normalised), or 422 with the reason."""
    try:
        return WordPressSite(
            url=values["url"],
            user=values["username"],
            app_password="unused-for-validation",
            body_format=values["body_format"],
            import_images=values["import_images"],
            default_status=values["default_status"],
            default_category=values.get("default_category") or "",
            **values["options"].client_settings(),
        )
    except ConfigurationError as exc:
        raise _invalid(exc.message) from None


def _reserved(name: str) -> bool:
    return name.casefold() in (ENV_SITE_NAME, PREVIEW)


async def _ensure_env(session) -> None:
    await session.run_sync(ensure_env_site)
    await session.commit()


async def _name_taken(session, name: str, but: uuid.UUID | None = None) -> bool:
    query = select(Site.id).where(Site.name == name)
    if but is not None:
        query = query.where(Site.id != but)
    return (await session.execute(query)).first() is not None


async def _make_default(session, site: Site) -> None:
    if env_wordpress_site() is not None:
        raise _conflict(
            "The default site is the one WP_URL, WP_USER and WP_APP_PASSWORD define: unset them to "
            "make a site of the database the default."
        )
    await session.execute(
        update(Site).where(Site.id != site.id, Site.is_default).values(is_default=False)
        .execution_options(synchronize_session=False)
    )
    await session.flush()
    site.is_default = True


def _apply(site: Site, values: dict[str, Any], password: SecretStr | None) -> None:
    checked = _check(values)
    site.name = values["name"]
    site.url = checked.url
    site.username = checked.user
    site.body_format = checked.body_format
    site.import_images = checked.import_images
    site.default_status = checked.default_status
    site.default_category = checked.default_category or None
    site.media_prefix = (values.get("media_prefix") or "").strip("/")
    site.options = StoredSiteOptions(**values["options"].client_settings(), from_env=site.options.from_env)
    if password is not None:
        secret = password.get_secret_value().strip()
        if not secret:
            raise _invalid("app_password: must not be empty")
        site.app_password_encrypted = encrypt_secret(secret)


# --- routes ------------------------------------------------------------------------------------------


@router.get("", response_model=list[SiteOut])
async def list_sites(session: Session, _: CurrentUser) -> list[SiteOut]:
    """Every site, the default first (the one WP_URL defines, when set, is named "default")."""
    await _ensure_env(session)
    sites = (await session.execute(select(Site).order_by(Site.is_default.desc(), Site.name))).scalars()
    return [site_out(s) for s in sites]


@router.post("", response_model=SiteOut, status_code=status.HTTP_201_CREATED)
async def create_site(body: SiteCreate, session: Session, _: AdminUser) -> SiteOut:
    """Add a site. Check its credentials with POST /sites/{id}/test."""
    if _reserved(body.name):
        raise _conflict(f"the name {body.name!r} is reserved (the site from WP_URL; the local preview)")
    if await _name_taken(session, body.name):
        raise _conflict(f"a site named {body.name!r} already exists")
    values = {**body.model_dump(exclude={"app_password", "is_default"}), "options": body.options}
    site = Site(id=uuid.uuid4(), options=StoredSiteOptions(), is_default=False)
    _apply(site, values, body.app_password)
    session.add(site)
    await session.flush()
    if body.is_default:
        await _make_default(session, site)
    await session.commit()
    await session.refresh(site)
    return site_out(site)


@router.get("/{site_id}", response_model=SiteOut)
async def get_site(site_id: uuid.UUID, session: Session, _: CurrentUser) -> SiteOut:
    await _ensure_env(session)
    return site_out(await get_or_404(session, Site, site_id, "site"))


@router.patch("/{site_id}", response_model=SiteOut)
async def update_site(site_id: uuid.UUID, body: SiteUpdate, session: Session, _: AdminUser) -> SiteOut:
    site = await get_or_404(session, Site, site_id, "site")
    if site.options.from_env and env_wordpress_site() is not None:
        raise _conflict(
            "This site comes from WP_URL, WP_USER and WP_APP_PASSWORD: change those variables instead."
        )
    sent = body.model_dump(exclude_unset=True, exclude={"app_password", "is_default"})
    sent = {k: v for k, v in sent.items() if v is not None or k == "default_category"}
    if "name" in sent:
        if _reserved(sent["name"]) and sent["name"] != site.name:
            raise _conflict(f"the name {sent['name']!r} is reserved")
        if await _name_taken(session, sent["name"], but=site.id):
            raise _conflict(f"a site named {sent['name']!r} already exists")
    current = {
        "name": site.name,
        "url": site.url,
        "username": site.username,
        "body_format": site.body_format,
        "import_images": site.import_images,
        "default_status": site.default_status,
        "default_category": site.default_category,
        "media_prefix": site.media_prefix,
        "options": site.options,
    }
    if body.options is not None:  # the options sent are changed, the others kept
        sent["options"] = SiteOptions(**{**site.options.client_settings(), **body.options.client_settings()})
    _apply(site, {**current, **sent}, body.app_password)
    if body.is_default is True and not site.is_default:
        await _make_default(session, site)
    elif body.is_default is False:
        site.is_default = False
    await session.commit()
    await session.refresh(site)
    return site_out(site)


@router.delete("/{site_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_site(site_id: uuid.UUID, session: Session, _: AdminUser) -> Response:
    """Forget a site and what Copydesk knows of its media library. Its posts stay on the site; the
    articles published there keep their URL but are no longer bound to a site (a new run publishes
    to the site it is given, where the post's marker still finds the post)."""
    site = await get_or_404(session, Site, site_id, "site")
    if site.options.from_env and env_wordpress_site() is not None:
        raise _conflict("This site comes from WP_URL, WP_USER and WP_APP_PASSWORD: unset them instead.")
    await session.delete(site)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


NEEDED = {
    "edit_posts": "write posts",
    "publish_posts": "publish posts (status publish or future)",
    "upload_files": "import images into the media library",
    "manage_categories": "create missing categories",
}


def _test(wp: WordPressSite) -> SiteTest:
    started = time.monotonic()
    warnings: list[str] = []
    if not wp.uses_https and not wp.is_local:
        warnings.append(
            "The address is plain HTTP: WordPress accepts application passwords only over HTTPS "
            "(or on a site whose environment type is 'local')."
        )
    try:
        with WordPressClient(wp) as client:
            me = client.me()
    except CopydeskError as exc:
        return SiteTest(
            ok=False, error=exc.message, error_code=error_code(exc), warnings=warnings,
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        )  # fmt: skip
    capabilities = me.get("capabilities") or {}
    can = {name: bool(capabilities.get(name)) for name in NEEDED}
    for name, what in NEEDED.items():
        if not can[name]:
            warnings.append(f"User {wp.user!r} cannot {what} (capability {name}).")
    return SiteTest(
        ok=can["edit_posts"],
        error=None if can["edit_posts"] else f"User {wp.user!r} cannot write posts on {wp.url}.",
        error_code=None if can["edit_posts"] else "forbidden",
        user=SiteUser(
            id=me.get("id"), name=str(me.get("name") or ""), slug=str(me.get("slug") or ""),
            roles=list(me.get("roles") or []),
        ),  # fmt: skip
        can=can,
        warnings=warnings,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
    )


@router.post("/{site_id}/test", response_model=SiteTest)
async def test_site(site_id: uuid.UUID, session: Session, _: AdminUser) -> SiteTest:
    """Log in to the site's REST API (users/me) and say what the account can do. Changes nothing."""
    site = await get_or_404(session, Site, site_id, "site")
    try:
        wp = wordpress_site(site, attempts=1)
    except CopydeskError as exc:
        return SiteTest(ok=False, error=exc.message, error_code=error_code(exc))
    return await run_in_threadpool(_test, wp)


@router.get("/{site_id}/categories", response_model=list[Category])
async def site_categories(site_id: uuid.UUID, session: Session, _: CurrentUser) -> list[Category]:
    """The site's existing categories, by name (asked from the site now)."""
    site = await get_or_404(session, Site, site_id, "site")
    wp = wordpress_site(site, attempts=2)
    categories = await run_in_threadpool(fetch_categories, wp)
    return [Category(**c) for c in categories]
