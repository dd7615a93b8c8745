from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at, updated_at, uuid_pk


class Site(Base):
    """A WordPress site posts are published to. The application password is encrypted at rest."""

    __tablename__ = "sites"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    username: Mapped[str] = mapped_column(String(200), nullable=False)
    app_password_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    body_format: Mapped[str] = mapped_column(String(20), nullable=False, default="blocks")  # blocks | html
    import_images: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    default_status: Mapped[str] = mapped_column(String(20), nullable=False, default="draft")
    default_category: Mapped[str | None] = mapped_column(String(200))
    media_prefix: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
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
