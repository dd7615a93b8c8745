from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, created_at, updated_at, uuid_pk

RUN_STATES = ("queued", "running", "awaiting_approval", "succeeded", "failed", "cancelled")
RUN_TERMINAL = ("succeeded", "failed", "cancelled")
STEP_STATES = (
    "pending",
    "running",
    "retrying",
    "awaiting_approval",
    "succeeded",
    "failed",
    "skipped",
    "cancelled",
)
STEP_DONE = ("succeeded", "skipped")
STEP_TERMINAL = ("succeeded", "failed", "skipped", "cancelled")


class Run(Base):
    """One execution of a workflow definition (recorded as it was when the run started)."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_state_created", "state", "created_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    workflow: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    workflow_version: Mapped[int] = mapped_column(Integer, nullable=False)
    definition: Mapped[dict] = mapped_column(nullable=False)
    payload: Mapped[dict] = mapped_column(nullable=False, default=dict)
    document_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL"), index=True
    )
    source_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    mail_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("mail_messages.id", ondelete="SET NULL")
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(20), nullable=False, default="queued")
    error: Mapped[str | None] = mapped_column(Text)
    error_step: Mapped[str | None] = mapped_column(String(200))
    warnings: Mapped[list] = mapped_column(nullable=False, default=list)
    progress_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    usage: Mapped[dict] = mapped_column(nullable=False, default=dict)
    launches: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # start + resumes + sweeps
    sweeps: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = created_at()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = updated_at()

    steps: Mapped[list[Step]] = relationship(
        back_populates="run", order_by="Step.position", cascade="all, delete-orphan"
    )


class Work:
    """What a step and a fan-out item both record: their state, attempts and outcome, and the claim
    of the execution working on them."""

    state: Mapped[str] = mapped_column(String(20), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    attempt_log: Mapped[list] = mapped_column(nullable=False, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(100))
    result: Mapped[dict | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(300))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = updated_at()


class Step(Work, Base):
    """A step of a run. Its (run, step) pair is the idempotency key of its side effects."""

    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)  # the step id in the definition
    task: Mapped[str] = mapped_column(String(200), nullable=False)  # the step kind
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    queue: Mapped[str] = mapped_column(String(50), nullable=False)
    summary: Mapped[str | None] = mapped_column(Text)
    items_total: Mapped[int | None] = mapped_column(Integer)  # fan-out steps, once known
    items_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    items_failed: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    approved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    run: Mapped[Run] = relationship(back_populates="steps")
    items: Mapped[list[StepItem]] = relationship(
        back_populates="step", order_by="StepItem.index", cascade="all, delete-orphan"
    )


class StepItem(Work, Base):
    """One item of a fan-out step (e.g. one image upload). Idempotency key: (run, step, index)."""

    __tablename__ = "step_items"
    __table_args__ = (UniqueConstraint("step_id", "index"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    step_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("steps.id", ondelete="CASCADE"), nullable=False)
    index: Mapped[int] = mapped_column(Integer, nullable=False)
    key: Mapped[str] = mapped_column(Text, nullable=False)  # what the item is about, e.g. an image key
    value: Mapped[dict | None] = mapped_column()  # {"value": <the list element>}

    step: Mapped[Step] = relationship(back_populates="items")


class RunEvent(Base):
    """Every change of a run, its steps and items, in order (the SSE stream replays these)."""

    __tablename__ = "run_events"
    __table_args__ = (
        Index("ix_run_events_run_id_id", "run_id", "id"),
        # Run events not yet turned into replies and webhooks (app/tasks/notify.py): a few rows at most.
        Index(
            "ix_run_events_to_notify",
            "id",
            postgresql_where=text(
                "kind = 'run' AND state IN ('succeeded', 'awaiting_approval', 'failed') AND notified_at IS NULL"
            ),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)
    at: Mapped[datetime] = created_at()
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # run | step | item
    step: Mapped[str | None] = mapped_column(String(200))
    item: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    message: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(nullable=False, default=dict)
    notified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # planned into notifications
