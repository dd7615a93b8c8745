from __future__ import annotations

import ssl
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column, validates

from app.integrations.notify.replies import ReplySettings
from app.models.base import Base, created_at, updated_at, uuid_pk


class SourceOptions(BaseModel):
    """`Source.options`, typed: how to reach the server and how much one poll may take. Checked each
    time options are assigned (so the API, the CLI and the default mailbox's variables all get the
    same clear error for an unknown key or a bad value); read as `source.typed_options.timeout`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_plain: bool = False  # plain IMAP sends the password unencrypted: local test servers only
    ca_cert: str | None = Field(None, max_length=100_000)  # PEM of a CA to trust (self-signed servers)
    timeout: float = Field(30, gt=0, le=600)  # seconds, for connecting and for every answer
    max_messages_per_poll: int = Field(200, ge=1, le=10_000)
    max_bytes_per_poll: int = Field(256 * 1024 * 1024, ge=1)
    replies: ReplySettings | None = None  # answers to senders (PUT /sources/{id}/replies)

    @field_validator("ca_cert")
    @classmethod
    def _loadable_pem(cls, pem: str | None) -> str | None:
        if not pem:
            return None
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem)
        except (ssl.SSLError, TypeError, ValueError):
            raise ValueError("must be a PEM certificate (-----BEGIN CERTIFICATE-----) that TLS can load") from None
        return pem


class SourceDefaults(BaseModel):
    """`Source.defaults`: what runs started from the mailbox get unless a message's directives say
    otherwise (keys as the workflow's inputs)."""

    model_config = ConfigDict(extra="forbid")

    site: str | None = Field(None, max_length=200, description="WordPress site name (default: the default site)")
    category: str | None = Field(None, max_length=200)
    status: Literal["draft", "pending", "publish", "future"] | None = None
    llm: dict[str, Any] | None = Field(None, description="editing options: instructions, model, temperature…")


class Source(Base):
    """A mailbox Copydesk polls. The password is encrypted at rest and never returned by the API."""

    __tablename__ = "sources"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    host: Mapped[str] = mapped_column(String(500), nullable=False)
    port: Mapped[int] = mapped_column(Integer, nullable=False, default=993)
    tls_mode: Mapped[str] = mapped_column(String(20), nullable=False, default="imaps")  # imaps|starttls|plain
    username: Mapped[str] = mapped_column(String(500), nullable=False)
    password_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    folder: Mapped[str] = mapped_column(String(500), nullable=False, default="INBOX")
    processed_folder: Mapped[str] = mapped_column(String(500), nullable=False, default="Processed")
    failed_folder: Mapped[str] = mapped_column(String(500), nullable=False, default="Failed")
    allowed_senders: Mapped[list] = mapped_column(nullable=False, default=list)
    poll_interval: Mapped[int] = mapped_column(Integer, nullable=False, default=60)  # seconds
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    workflow: Mapped[str] = mapped_column(String(200), nullable=False, default="publish_document")
    defaults: Mapped[dict] = mapped_column(nullable=False, default=dict)  # site, category, status, llm…
    options: Mapped[dict] = mapped_column(nullable=False, default=dict)  # SourceOptions, see typed_options
    # Polling cursor and health.
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int | None] = mapped_column(BigInteger)
    last_poll_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_poll_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_code: Mapped[str | None] = mapped_column(String(50))  # app.core.errors code, e.g. auth_failed
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    consecutive_failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Replies to senders (app/tasks/notify.py): the last one that failed for good, cleared by one sent.
    reply_error: Mapped[str | None] = mapped_column(Text)
    reply_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    @validates("options")
    def _check_options(self, _key: str, value: dict | None) -> dict:
        """Refuse unknown keys and bad values (pydantic's ValidationError) before they are stored."""
        return SourceOptions.model_validate(value or {}).model_dump(exclude_unset=True, exclude_none=True)

    @property
    def typed_options(self) -> SourceOptions:
        return SourceOptions.model_validate(self.options or {})


class MailMessage(Base):
    """One message seen in a source's folder, and what became of it. Nothing is ever deleted."""

    __tablename__ = "mail_messages"
    __table_args__ = (
        UniqueConstraint("source_id", "uidvalidity", "uid"),
        Index("ix_mail_messages_source_id_state", "source_id", "state"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    source_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), nullable=False)
    uidvalidity: Mapped[int] = mapped_column(BigInteger, nullable=False)
    uid: Mapped[int] = mapped_column(BigInteger, nullable=False)
    message_id: Mapped[str | None] = mapped_column(String(1000), index=True)
    sender: Mapped[str | None] = mapped_column(String(1000))
    subject: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)  # the subject without directives
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    size: Mapped[int | None] = mapped_column(BigInteger)
    # accepted (its runs are under way) -> processed | failed (moved to that folder);
    # ignored (nothing to publish) and unauthorized (unknown sender): kept in place, marked, never processed.
    state: Mapped[str] = mapped_column(String(20), nullable=False, default="new")
    reason: Mapped[str | None] = mapped_column(Text)  # why it was ignored, refused or failed, for an editor
    folder: Mapped[str | None] = mapped_column(String(500))  # where it was moved to
    moved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    directives: Mapped[dict] = mapped_column(nullable=False, default=dict)
    warnings: Mapped[list] = mapped_column(nullable=False, default=list, server_default=text("'[]'::jsonb"))
    # One entry per manuscript found: filename, kind, size, document_id, run_id, duplicate, error.
    documents: Mapped[list] = mapped_column(nullable=False, default=list, server_default=text("'[]'::jsonb"))
    # The runs whose end decides where the message goes (its own, or those of the earlier copy it duplicates).
    run_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), nullable=False, default=list, server_default=text("'{}'::uuid[]")
    )
    error: Mapped[str | None] = mapped_column(Text)  # the last problem moving or marking it on the server
    # For replies: the message's language (Content-Language, else guessed from its text) and References.
    language: Mapped[str | None] = mapped_column(String(20))
    references: Mapped[list] = mapped_column(nullable=False, default=list, server_default=text("'[]'::jsonb"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
