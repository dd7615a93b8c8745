from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at, uuid_pk


class Document(Base):
    """A manuscript as received. The original bytes stay in storage (`original_key`), always."""

    __tablename__ = "documents"

    id: Mapped[uuid.UUID] = uuid_pk()
    filename: Mapped[str] = mapped_column(String(1000), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # docx | doc | html | text
    content_type: Mapped[str] = mapped_column(String(200), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    original_key: Mapped[str] = mapped_column(String(1000), nullable=False)
    origin: Mapped[str] = mapped_column(String(20), nullable=False, default="api")  # api | mail
    # Dedupe key shared by API and mail intake: who sent what (Message-ID or user) + content hash.
    dedupe_key: Mapped[str | None] = mapped_column(String(1200), unique=True)
    source_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    mail_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("mail_messages.id", ondelete="SET NULL")
    )
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    submitted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    options: Mapped[dict] = mapped_column(nullable=False, default=dict)  # directives: category, tags, status…
    created_at: Mapped[datetime] = created_at()


class Asset(Base):
    """An image of a document, stored once by content hash."""

    __tablename__ = "assets"
    __table_args__ = (UniqueConstraint("document_id", "sha256"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), nullable=False, index=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    key: Mapped[str] = mapped_column(String(200), nullable=False)  # "<sha256>.<ext>"
    artifact_key: Mapped[str] = mapped_column(String(1000), nullable=False)  # private copy from parsing
    storage_key: Mapped[str | None] = mapped_column(String(1000))  # public copy (media/…)
    url: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(200), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    alt: Mapped[str] = mapped_column(Text, nullable=False, default="")
    caption: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = created_at()
