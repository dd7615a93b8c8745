from __future__ import annotations

import uuid
from datetime import datetime

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Boolean, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, PydanticJSON, created_at, updated_at, uuid_pk


class SiteOptions(BaseModel):
    """How Copydesk talks to a site and writes its posts (unset: the defaults of WordPressSite,
    app/integrations/wordpress/settings.py). An admin sets them through the API (the default site:
    WP_SITE_OPTIONS), which refuses unknown keys and values out of range."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout: float | None = Field(None, gt=0, le=600, description="seconds per request (default 30)")
    upload_timeout: float | None = Field(
        None, gt=0, le=3600, description="seconds per media upload (default 300)"
    )
    verify_tls: bool | None = Field(None, description="false only for a test site (self-signed certificate)")
    attempts: int | None = Field(
        None,
        ge=1,
        le=10,
        description="tries per request while publishing (429, 5xx, timeouts; creates first look for what "
        "a lost try wrote); default 4. What outlasts them, the publish step's retry policy repeats.",
    )
    create_terms: Literal["never", "sender", "sender_and_llm", "always"] | None = Field(
        None,
        description="who may add tags and categories the site does not have yet: never (nobody: "
        "unknown names are left out), sender (names the sender gave: upload form, mail directive, "
        "mailbox default, the site's default category), sender_and_llm (default: also what the OpenAI "
        "editor proposes), always (also what the offline editor proposes). Left-out names are a "
        "warning on the run.",
    )
    featured_image_in_body: bool | None = Field(
        None,
        description="true: the featured image also stays in the post's body; default false (themes "
        "show the featured image above the post, so it would show twice)",
    )
    transliterate_slugs: bool | None = Field(
        None,
        description="true: slugs in Latin letters (pinyin, romaji, Revised Romanization, ...); default "
        "false: in the title's own script (WordPress keeps UTF-8 slugs)",
    )

    def client_settings(self) -> dict[str, float | bool | int | str]:
        """The options that are set, as WordPressSite arguments."""
        return self.model_dump(include=set(SiteOptions.model_fields), exclude_none=True)


class StoredSiteOptions(SiteOptions):
    """Site.options as stored: the admin's options, and whether WP_URL defines the site."""

    from_env: bool = False  # set by Copydesk on the site WP_URL / WP_USER / WP_APP_PASSWORD define


class Site(Base):
    """A WordPress site posts are published to. The application password is encrypted at rest.

    At most one site is the default (a partial unique index). The site named "default" with
    options.from_env is the one WP_URL/WP_USER/WP_APP_PASSWORD define (app/services/sites.py keeps it
    in step with the environment)."""

    __tablename__ = "sites"
    __table_args__ = (
        Index("uq_sites_is_default", "is_default", unique=True, postgresql_where=text("is_default")),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    username: Mapped[str] = mapped_column(String(200), nullable=False)
    app_password_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    body_format: Mapped[str] = mapped_column(String(20), nullable=False, default="blocks")  # blocks | html
    # True: body images go into the site's media library; False: they keep their storage URLs
    # (the featured image is imported either way: WordPress needs a media id for it).
    import_images: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    default_status: Mapped[str] = mapped_column(String(20), nullable=False, default="draft")
    default_category: Mapped[str | None] = mapped_column(String(200))
    media_prefix: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    options: Mapped[StoredSiteOptions] = mapped_column(
        PydanticJSON(StoredSiteOptions), nullable=False, default=StoredSiteOptions
    )
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class SiteMedia(Base):
    """An image already in a site's media library, by content hash: imported once per site."""

    __tablename__ = "site_media"

    site_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_id: Mapped[int] = mapped_column(nullable=False)
    url: Mapped[str] = mapped_column(String(2000), nullable=False, default="")
    created_at: Mapped[datetime] = created_at()
