"""Response and request models of the REST API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# One address, nothing more (no display name, no list): what a reply may be sent to.
EmailAddress = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+$")
]


class ORM(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class UserOut(ORM):
    id: uuid.UUID
    email: str
    role: str
    is_active: bool
    created_at: datetime


class UserCreate(BaseModel):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=8, max_length=200)
    role: Literal["admin", "editor"] = "editor"


class DocumentOut(ORM):
    id: uuid.UUID
    filename: str
    kind: str
    content_type: str
    size: int
    sha256: str
    origin: str
    source_id: uuid.UUID | None
    site_id: uuid.UUID | None
    options: dict[str, Any]
    created_at: datetime


class ItemOut(ORM):
    index: int
    key: str
    state: str
    attempts: int
    attempt_log: list[dict[str, Any]]
    error: str | None
    error_code: str | None
    result: dict[str, Any] | None
    started_at: datetime | None
    finished_at: datetime | None


class StepOut(ORM):
    name: str
    task: str
    queue: str
    state: str
    attempts: int
    attempt_log: list[dict[str, Any]]
    error: str | None
    error_code: str | None
    summary: str | None
    result: dict[str, Any] | None
    items_total: int | None
    items_done: int
    items_failed: int
    next_attempt_at: datetime | None
    approved_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    items: list[ItemOut] = []


class Progress(BaseModel):
    done: int
    total: int
    text: str


class RunSummary(ORM):
    id: uuid.UUID
    workflow: str
    workflow_version: int
    state: str
    document_id: uuid.UUID | None
    source_id: uuid.UUID | None
    mail_message_id: uuid.UUID | None
    error: str | None
    error_step: str | None
    warnings: list[str]
    progress: Progress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    filename: str | None = None  # of its document
    title: str | None = None  # of its article, once there is one


class NotificationOut(ORM):
    """A reply to the sender (channel email) or a webhook delivery, for one event of a run."""

    id: uuid.UUID  # also the webhook-id header of a delivery
    run_id: uuid.UUID
    event: str  # succeeded | awaiting_approval | failed
    channel: str  # email | webhook
    recipient: str
    state: str  # pending, claimed, sending, retrying; sent, failed, skipped, unconfirmed
    subject: str | None = None  # of a reply
    message_id: str | None
    attempts: int
    attempt_log: list[dict[str, Any]]
    last_error: str | None
    last_error_code: str | None
    source_id: uuid.UUID | None
    webhook_id: uuid.UUID | None
    next_attempt_at: datetime | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime


class RunOut(RunSummary):
    payload: dict[str, Any]
    usage: dict[str, Any]
    launches: int
    definition: dict[str, Any]
    steps: list[StepOut]
    article_id: uuid.UUID | None = None
    notifications: list[NotificationOut] = []  # replies and webhook deliveries, oldest first


class RunPage(BaseModel):
    items: list[RunSummary]
    total: int
    limit: int
    offset: int


class Submitted(BaseModel):
    document: DocumentOut
    run: RunSummary | None
    duplicate: bool  # the same content was submitted before
    updated: bool = False  # … and `run` is a new run that applies the new options to its post
    run_url: str | None
    article_id: uuid.UUID | None = None  # the same content before: its article
    url: str | None = None  # … and its post (or preview) once published


class ArticleOut(ORM):
    id: uuid.UUID
    document_id: uuid.UUID
    run_id: uuid.UUID | None
    title: str
    excerpt: str
    slug: str
    tags: list[str]
    categories: list[str]
    status: str
    html: str
    blocks: str
    report: dict[str, Any]
    doc_metadata: dict[str, Any]
    edit_engine: str | None
    edit_warnings: list[str]
    usage: dict[str, Any]
    publisher: str | None
    wp_post_id: int | None
    wp_url: str | None
    preview_url: str
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WorkflowOut(BaseModel):
    name: str
    version: int
    description: str
    steps: list[dict[str, Any]]
    inputs: dict[str, Any]
    canvas: str


class ApproveRequest(BaseModel):
    reason: str | None = Field(None, max_length=2000)


