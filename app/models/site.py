from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at, updated_at, uuid_pk


class Site(Base):
    """A WordPress site posts are published to. The application password is encrypted at rest.

    At most one site is the default (a partial unique index). The site named "default" with
    options.from_env is the one WP_URL/WP_USER/WP_APP_PASSWORD define (app/tasks/sites.py keeps it
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
    # timeout, upload_timeout (seconds), verify_tls; from_env (set by Copydesk for the WP_URL site)
    options: Mapped[dict] = mapped_column(nullable=False, default=dict)
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
