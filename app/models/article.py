from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at, updated_at, uuid_pk


class Article(Base):
    """The post made from a document. Bound to its document (one article per document), so a re-run
    updates the same WordPress post instead of creating a second one."""

    __tablename__ = "articles"

    id: Mapped[uuid.UUID] = uuid_pk()
    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(Text, nullable=False, default="")
    original_html: Mapped[str] = mapped_column(Text, nullable=False, default="")  # as converted
    original_blocks: Mapped[str] = mapped_column(Text, nullable=False, default="")
    html: Mapped[str] = mapped_column(Text, nullable=False, default="")  # as edited (placeholders)
    blocks: Mapped[str] = mapped_column(Text, nullable=False, default="")
    text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    excerpt: Mapped[str] = mapped_column(Text, nullable=False, default="")
    slug: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    tags: Mapped[list] = mapped_column(nullable=False, default=list)
    categories: Mapped[list] = mapped_column(nullable=False, default=list)
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="draft")
    publish_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    featured_image: Mapped[str | None] = mapped_column(String(200))
    report: Mapped[dict] = mapped_column(nullable=False, default=dict)  # conversion report
    doc_metadata: Mapped[dict] = mapped_column(nullable=False, default=dict)
    edit_engine: Mapped[str | None] = mapped_column(String(200))
    edit_warnings: Mapped[list] = mapped_column(nullable=False, default=list)
    usage: Mapped[dict] = mapped_column(nullable=False, default=dict)  # LLM tokens and cost
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    publisher: Mapped[str | None] = mapped_column(String(50))  # preview | wordpress
    wp_post_id: Mapped[int | None] = mapped_column(BigInteger)
    wp_url: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class LlmCache(Base):
    """Edit results by (content hash, instructions, model): a resume or re-run does not pay twice."""

    __tablename__ = "llm_cache"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    result: Mapped[dict] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = created_at()
