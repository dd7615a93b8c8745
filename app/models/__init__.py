"""SQLAlchemy 2 models, one module per aggregate. Importing this package registers every table."""

from app.models.article import Article, LlmCache
from app.models.base import Base
from app.models.document import Asset, Document
from app.models.notification import NOTIFICATION_FINAL, Notification, Webhook
from app.models.run import (
    RUN_STATES,
    RUN_TERMINAL,
    STEP_DONE,
    STEP_STATES,
    STEP_TERMINAL,
    Run,
    RunEvent,
    Step,
    StepItem,
)
from app.models.site import Site, SiteMedia, SiteOptions, StoredSiteOptions
from app.models.source import MailMessage, Source
from app.models.user import ROLES, User

__all__ = [
    "NOTIFICATION_FINAL",
    "ROLES",
    "RUN_STATES",
    "RUN_TERMINAL",
    "STEP_DONE",
    "STEP_STATES",
    "STEP_TERMINAL",
    "Article",
    "Asset",
    "Base",
    "Document",
    "LlmCache",
    "MailMessage",
    "Notification",
    "Run",
    "RunEvent",
    "Site",
    "SiteMedia",
    "SiteOptions",
    "Source",
    "Step",
    "StepItem",
    "StoredSiteOptions",
    "User",
    "Webhook",
]
