"""Replies and webhooks (admin only): a mailbox's reply settings, webhook endpoints and their
deliveries. A run's own replies and deliveries are listed with the run (GET /runs/{id})."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from app.api.deps import AdminUser, Session
from app.api.schemas import NotificationOut
from app.api.views import notifications_of
from app.core.config import get_settings
from app.core.errors import NotFound
from app.core.security import encrypt_secret
from app.integrations.notify import EVENTS, ReplySettings, new_secret
from app.integrations.notify.replies import Event, builtin
from app.models import Notification, Source, Webhook
from app.workflows.schema import get_workflow

router = APIRouter(tags=["notifications"])


# --- replies of a mailbox -------------------------------------------------------------------------


class RepliesOut(BaseModel):
    settings: ReplySettings
    smtp_configured: bool  # SMTP_HOST is set
    builtin_languages: list[str]  # the languages of the built-in templates
    reply_error: str | None  # the last reply that failed for good, until one is sent
    reply_error_at: datetime | None


async def _source(session, source_id: uuid.UUID) -> Source:
    source = await session.get(Source, source_id)
    if source is None:
        raise NotFound(f"no source {source_id}")
    return source


def _replies_out(source: Source) -> RepliesOut:
    return RepliesOut(
        settings=source.typed_options.replies or ReplySettings(),
        smtp_configured=bool(get_settings().smtp_host),
        builtin_languages=sorted(builtin()),
        reply_error=source.reply_error,
        reply_error_at=source.reply_error_at,
    )


@router.get("/sources/{source_id}/replies", response_model=RepliesOut)
async def get_replies(source_id: uuid.UUID, session: Session, _: AdminUser) -> RepliesOut:
    """Whether this mailbox answers senders, for which events, from which address, with which texts."""
    return _replies_out(await _source(session, source_id))


@router.put("/sources/{source_id}/replies", response_model=RepliesOut)
async def put_replies(
    source_id: uuid.UUID, body: ReplySettings, session: Session, _: AdminUser
) -> RepliesOut:
    """Replace the mailbox's reply settings (templates are checked: a broken one is a 422)."""
    source = await _source(session, source_id)
    source.options = {
        **(source.options or {}),
        "replies": body.model_dump(mode="json", exclude_defaults=True),
    }
    await session.commit()
    await session.refresh(source)
    return _replies_out(source)


# --- webhooks --------------------------------------------------------------------------------------


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000, description="http:// or https://")
    workflow: str | None = Field(None, description="only this workflow's runs (default: every run)")
    events: list[Event] = Field(default_factory=lambda: list(EVENTS))
    description: str = Field("", max_length=1000)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL")
        return value


class WebhookUpdate(BaseModel):
    """Only the fields sent are changed (the URL and the secret never: make a new webhook)."""

    model_config = ConfigDict(extra="forbid")

    workflow: str | None = None
    events: list[Event] | None = None
    enabled: bool | None = None
    description: str | None = Field(None, max_length=1000)


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    workflow: str | None
    events: list[str]
    enabled: bool
    description: str
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="whsec_…: shown once, to verify signatures (Standard Webhooks)")


async def _webhook(session, webhook_id: uuid.UUID) -> Webhook:
    hook = await session.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound(f"no webhook {webhook_id}")
    return hook


def _check_workflow(name: str | None) -> None:
    if name is not None:
        get_workflow(name)  # NotFound (404) names it


@router.get("/webhooks", response_model=list[WebhookOut])
async def list_webhooks(session: Session, _: AdminUser) -> list[Webhook]:
    return list((await session.execute(select(Webhook).order_by(Webhook.created_at))).scalars())


@router.post("/webhooks", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED)
async def create_webhook(body: WebhookCreate, session: Session, _: AdminUser) -> WebhookCreated:
    """Send run events (succeeded, failed, awaiting_approval) to a URL, for every workflow or one.
    The answer holds the signing secret, once; it is stored encrypted (ENCRYPTION_KEY)."""
    _check_workflow(body.workflow)
    if (await session.execute(select(Webhook.id).where(Webhook.url == body.url))).first():
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"a webhook for {body.url} already exists")
    secret = new_secret()
    hook = Webhook(
        id=uuid.uuid4(), url=body.url, workflow=body.workflow, events=list(dict.fromkeys(body.events)),
        secret_encrypted=encrypt_secret(secret), enabled=True, description=body.description,
    )  # fmt: skip
    session.add(hook)
    await session.commit()
    await session.refresh(hook)
    return WebhookCreated(**WebhookOut.model_validate(hook).model_dump(), secret=secret)


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut)
async def get_webhook(webhook_id: uuid.UUID, session: Session, _: AdminUser) -> Webhook:
    return await _webhook(session, webhook_id)


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut)
async def update_webhook(
    webhook_id: uuid.UUID, body: WebhookUpdate, session: Session, _: AdminUser
) -> Webhook:
    hook = await _webhook(session, webhook_id)
    sent = body.model_dump(exclude_unset=True)
    if "workflow" in sent:
        _check_workflow(sent["workflow"])
    for name, value in sent.items():
        if value is not None or name == "workflow":
            setattr(hook, name, list(dict.fromkeys(value)) if name == "events" else value)
    await session.commit()
    await session.refresh(hook)
    return hook


@router.delete("/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: uuid.UUID, session: Session, _: AdminUser) -> Response:
    """Stop sending to it. Its deliveries stay listed on their runs; pending ones are not sent."""
    await session.delete(await _webhook(session, webhook_id))
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=list[NotificationOut])
async def list_deliveries(
    webhook_id: uuid.UUID,
    session: Session,
    _: AdminUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[NotificationOut]:
    """Its deliveries, newest first: state, tries (each with its answer or error), next try."""
    await _webhook(session, webhook_id)
    return await notifications_of(
        session, Notification.webhook_id == webhook_id, newest=limit, full_urls=True
    )
