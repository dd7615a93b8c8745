from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at, updated_at, uuid_pk

# What a run event becomes, per channel and recipient. pending -> claimed (a worker has it) ->
# sending (e-mail: the message is being handed over) -> sent; retrying between tries; failed (given
# up, with the reason); skipped (not sent on purpose, e.g. an unproven sender); unconfirmed (the
# worker died while handing an e-mail over: not sent again, replies are at most once).
NOTIFICATION_STATES = (
    "pending",
    "claimed",
    "sending",
    "retrying",
    "sent",
    "failed",
    "skipped",
    "unconfirmed",
)
NOTIFICATION_FINAL = ("sent", "failed", "skipped", "unconfirmed")


class Notification(Base):
    """One reply or webhook delivery for one run event. (event, channel, recipient) is unique: a
    redelivered task, a second dispatcher or a retry finds the row and never sends a second one."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_id", "channel", "recipient"),
        Index("ix_notifications_state_updated", "state", "updated_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()  # also the webhook-id header: stable across retries
    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True
    )
    event_id: Mapped[int] = mapped_column(BigInteger, nullable=False)  # the run_events row it answers
    event: Mapped[str] = mapped_column(
        String(30), nullable=False
    )  # the run's state: app.integrations.notify.EVENTS
    channel: Mapped[str] = mapped_column(String(20), nullable=False)  # email | webhook
    recipient: Mapped[str] = mapped_column(String(2000), nullable=False)  # an address or a URL
    source_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sources.id", ondelete="SET NULL"), index=True
    )
    webhook_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhooks.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(String(20), nullable=False, default="pending")
    # What is sent, fixed when the event is planned so every try sends the same: the rendered reply
    # (from, to, subject, text, html, threading headers) or the webhook's JSON body.
    payload: Mapped[dict] = mapped_column(nullable=False, default=dict)
    message_id: Mapped[str | None] = mapped_column(String(1000))  # the reply's Message-ID
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    attempt_log: Mapped[list] = mapped_column(nullable=False, default=list)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_code: Mapped[str | None] = mapped_column(String(50))
    claimed_by: Mapped[str | None] = mapped_column(String(300))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Webhook(Base):
    """An endpoint receiving run events as signed JSON (Standard Webhooks). No workflow: every run's."""

    __tablename__ = "webhooks"

    id: Mapped[uuid.UUID] = uuid_pk()
    url: Mapped[str] = mapped_column(String(2000), unique=True, nullable=False)
    workflow: Mapped[str | None] = mapped_column(String(200))
    events: Mapped[list] = mapped_column(nullable=False, default=list)
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)  # "whsec_…", Fernet-encrypted
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
