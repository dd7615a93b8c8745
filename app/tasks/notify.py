"""Replies to senders and webhook deliveries in the running system. The message and the HTTP call are
`app.integrations.notify` (pure); this module decides who gets what, records every try in
`notifications`, and retries.

    beat ─▶ copydesk.notify.dispatch (every NOTIFY_INTERVAL s)
              ├─ plan: each run event a run's end or approval wait wrote (run_events, state succeeded,
              │        awaiting_approval or failed) not planned yet becomes notification rows, one per
              │        channel and recipient; the event is marked planned in the same transaction
              ├─ recover: rows whose task was lost (a worker killed) are sent again, see below
              └─▶ copydesk.notify.send(notification) on the io queue, per row

The workflow engine knows nothing of this: a failing SMTP server or endpoint never blocks or fails a
run, and a run's transitions write their events exactly as before.

Never twice for one event: (event, channel, recipient) is unique, and a send first claims its row
(pending/retrying -> claimed, committed). For e-mail the claim moves on to `sending`, committed,
only after the SMTP server has accepted sender and recipient and just before DATA (see
mail_out.send). A worker killed before that leaves a `claimed` row: after NOTIFY_CLAIM_TIMEOUT it is
claimed again and sent (a second claimer makes the first one's `sending` step fail, so it stops
before DATA). A worker killed after that, whether or not the server took the message, leaves a
`sending` row: it becomes `unconfirmed` and is NOT sent again. Replies are at most once: a reply
lost in that instant is the price of never writing to an author twice. Webhooks are at least once
instead (the receiver drops repeats by their `webhook-id`, the row's id).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from typing import Any

from pydantic import ValidationError
from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.db import session_scope
from app.core.errors import ConfigurationError, CopydeskError, describe, error_code
from app.core.logging import log_context
from app.core.security import decrypt_secret
from app.integrations.llm import diff_html
from app.integrations.notify import (
    EVENTS,
    DeliveryUnknown,
    ReplySettings,
    SmtpConfig,
    build_reply,
    render_reply,
)
from app.integrations.notify import deliver as deliver_webhook
from app.integrations.notify import send as send_email
from app.integrations.notify.mail_out import domain_of
from app.integrations.notify.webhooks import shown_recipient
from app.models import (
    NOTIFICATION_FINAL,
    Article,
    Document,
    MailMessage,
    Notification,
    Run,
    RunEvent,
    Source,
    Step,
    Webhook,
)
from app.tasks.celery_app import celery_app
from app.workflows.senders import sender_is_proven
from app.workflows.state import now

log = logging.getLogger("copydesk.notify")

DISPATCH_TASK = "copydesk.notify.dispatch"
SEND_TASK = "copydesk.notify.send"
BATCH = 200
# Every column a planned row may set, so that rows of both channels go in one INSERT.
ROW_DEFAULTS = {"source_id": None, "webhook_id": None, "payload": {}, "message_id": None, "last_error": None,
                "last_error_code": None}  # fmt: skip
SYNTHETIC_ID = "@copydesk.invalid"  # intake's Message-ID for a message that had none: nothing to thread under


def reply_settings(source: Source) -> ReplySettings:
    """A mailbox's reply settings (off unless set: PUT /sources/{id}/replies)."""
    return source.typed_options.replies or ReplySettings()


# --- planning: run events -> notification rows ----------------------------------------------------


def plan(limit: int = BATCH) -> list[uuid.UUID]:
    """Turn run events not planned yet into notification rows; the ids to send."""
    to_send: list[uuid.UUID] = []
    with session_scope() as session:
        events = (
            session.execute(
                select(RunEvent)
                .where(RunEvent.kind == "run", RunEvent.state.in_(EVENTS), RunEvent.notified_at.is_(None))
                .order_by(RunEvent.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        for event in events:
            try:
                with session.begin_nested():
                    to_send += _plan_event(session, event)
            except Exception as exc:  # a bug must not hold back every later event: log it, go on
                log.error(
                    "could not plan the notifications of run event %s: %s",
                    event.id,
                    describe(exc),
                    exc_info=exc,
                )
            event.notified_at = now()
    return to_send


def _plan_event(session: Session, event: RunEvent) -> list[uuid.UUID]:
    run = session.get(Run, event.run_id)
    if run is None:
        return []
    facts = _facts(session, run, event.state)
    rows = [*_reply_rows(session, run, event, facts), *_webhook_rows(session, run, event, facts)]
    if not rows:
        return []
    common = {"run_id": run.id, "event_id": event.id, "event": event.state, **ROW_DEFAULTS}
    inserted = session.execute(
        pg_insert(Notification)
        .values([{**common, "id": uuid.uuid4(), **row} for row in rows])
        .on_conflict_do_nothing(index_elements=["event_id", "channel", "recipient"])
        .returning(Notification.id, Notification.state)
    ).all()
    return [row.id for row in inserted if row.state == "pending"]


def _facts(session: Session, run: Run, event: str) -> dict[str, Any]:
    """What the reply and the webhook say about the run."""
    facts: dict[str, Any] = {"run_id": str(run.id), "workflow": run.workflow, "document_id": None}
    document = session.get(Document, run.document_id) if run.document_id else None
    if document is not None:
        facts.update(document_id=str(document.id), filename=document.filename)
        article = session.execute(
            select(Article).where(Article.document_id == document.id)
        ).scalar_one_or_none()
        if article is not None:
            facts.update(title=article.title or None, link=article.wp_url, status=article.status)
            if event == "succeeded":
                facts.update(_changes(article))
    if event == "failed":
        step = session.execute(
            select(Step.error, Step.error_code).where(Step.run_id == run.id, Step.name == run.error_step)
        ).first()
        facts.update(error=(step.error if step and step.error else run.error), error_step=run.error_step,
                     error_code=step.error_code if step else None)  # fmt: skip
    return facts


def _changes(article: Article) -> dict[str, int]:
    """What the editing step changed, counted: paragraphs (blocks) and words."""
    if not article.original_html or not article.html:
        return {}
    diff = diff_html(article.original_html, article.html)
    words = sum(len(text.split()) for op in diff.ops for tag, text in op.words if tag != "equal")
    words += sum(
        len(block.split()) - 1
        for op in diff.ops
        if op.op in ("insert", "delete")
        for block in op.original + op.edited
    )
    return {
        "changed_blocks": diff.changed_blocks,
        "total_blocks": sum(len(op.original) for op in diff.ops),
        "words_changed": words,
    }


@dataclass
class ReplyTarget:
    recipient: str
    settings: ReplySettings
    source: Source | None = None  # the mailbox the manuscript came through
    original: MailMessage | None = None  # the message answered


def _reply_target(session: Session, run: Run) -> ReplyTarget | None:
    """Mail: the sender of the message, with its mailbox's settings. API: the upload's reply_to."""
    if run.mail_message_id is not None:
        original = session.get(MailMessage, run.mail_message_id)
        source = session.get(Source, original.source_id) if original is not None else None
        if original is None or source is None or not original.sender:
            return None
        try:
            settings = reply_settings(source)
        except ValidationError as exc:
            _reply_failed(source, f"the mailbox's reply settings are not valid: {exc.errors()[0]['msg']}")
            return None
        return ReplyTarget(original.sender, settings, source, original)
    document = session.get(Document, run.document_id) if run.document_id else None
    reply_to = (document.options or {}).get("reply_to") if document is not None else None
    return ReplyTarget(reply_to, ReplySettings(enabled=True)) if reply_to else None


def _reply_rows(session: Session, run: Run, event: RunEvent, facts: dict[str, Any]) -> list[dict[str, Any]]:
    target = _reply_target(session, run)
    if target is None or not target.settings.enabled or event.state not in target.settings.events:
        return []
    source, original = target.source, target.original
    row: dict[str, Any] = {
        "channel": "email",
        "recipient": target.recipient,
        "source_id": source.id if source else None,
    }
    if original is not None and not sender_is_proven(original):
        return [{**row, "state": "skipped",
                 "last_error": f"not sent: {target.recipient} is not a proven sender (only the mailbox's allowed "
                               "senders are, and this mailbox lets anyone in)"}]  # fmt: skip
    settings = get_settings()
    try:
        if SmtpConfig.from_settings(settings) is None:
            raise ConfigurationError("replies are on, but no SMTP server is configured (SMTP_HOST)")
        from_address = target.settings.from_address or settings.smtp_from or settings.smtp_user
        if not from_address or "@" not in from_address:
            raise ConfigurationError(
                "replies need a From address: set SMTP_FROM or the mailbox's from_address"
            )
        if target.recipient.lower() in {from_address.lower(), (source.username if source else "").lower()}:
            return [
                {**row, "state": "skipped", "last_error": "not sent: the sender is Copydesk's own address"}
            ]
        reply = render_reply(
            event.state,
            facts,
            target.settings,
            language=original.language if original else None,
            original_subject=(original.subject or "") if original else None,
        )
    except ConfigurationError as exc:
        _reply_failed(source, exc.message)
        return [{**row, "state": "failed", "last_error": exc.message, "last_error_code": exc.code}]
    threaded = original is not None and original.message_id and not original.message_id.endswith(SYNTHETIC_ID)
    payload = {
        "from": from_address,
        "from_name": target.settings.from_name,
        "to": target.recipient,
        "subject": reply.subject,
        "text": reply.text,
        "html": reply.html,
        "language": reply.language,
        "in_reply_to": original.message_id if threaded else None,
        "references": list(original.references or []) if threaded else [],
    }
    return [
        {
            **row,
            "state": "pending",
            "payload": payload,
            "message_id": make_msgid(domain=domain_of(from_address)),
        }
    ]


def _webhook_rows(session: Session, run: Run, event: RunEvent, facts: dict[str, Any]) -> list[dict[str, Any]]:
    hooks = (
        session.execute(
            select(Webhook).where(
                Webhook.enabled, or_(Webhook.workflow.is_(None), Webhook.workflow == run.workflow)
            )
        )
        .scalars()
        .all()
    )
    hooks = [hook for hook in hooks if event.state in (hook.events or EVENTS)]
    if not hooks:
        return []
    source = session.get(Source, run.source_id) if run.source_id else None
    public = str(get_settings().public_url).rstrip("/")
    data = {
        "run_id": str(run.id),
        "event_id": event.id,
        "workflow": run.workflow,
        "state": event.state,
        "document_id": facts.get("document_id"),
        "filename": facts.get("filename"),
        "source": source.name if source else None,
        "title": facts.get("title"),
        "url": facts.get("link"),
        "status": facts.get("status"),
        "error": facts.get("error"),
        "error_step": facts.get("error_step"),
        "run_url": f"{public}/runs/{run.id}",
        "page_url": f"{public}/ui/runs/{run.id}",
    }
    payload = {"type": f"run.{event.state}", "timestamp": event.at.isoformat(), "data": data}
    return [
        {
            "channel": "webhook",
            "recipient": hook.url,
            "webhook_id": hook.id,
            "state": "pending",
            "payload": payload,
        }
        for hook in hooks
    ]


def _reply_failed(source: Source | None, message: str) -> None:
    """Show a reply problem on the mailbox (cleared by the next reply that is sent)."""
    if source is not None:
        source.reply_error, source.reply_error_at = message, now()


# --- sending ---------------------------------------------------------------------------------------


@dataclass
class Claimed:
    id: uuid.UUID
    run_id: uuid.UUID
    channel: str
    recipient: str
    payload: dict[str, Any]
    message_id: str | None
    attempts: int
    source_id: uuid.UUID | None
    secret: str | None = None  # a webhook's


class ClaimLost(Exception):
    """Another worker took the row over (this one was presumed dead): stop before sending."""


@dataclass
class Outcome:
    state: str  # sent | retrying | failed | unconfirmed | skipped | busy | lost
    retry_in: float | None = None


def _stale_before() -> datetime:
    return now() - timedelta(seconds=get_settings().notify_claim_timeout)


def _unconfirmed(row: Notification) -> None:
    row.state = "unconfirmed"
    row.last_error = (
        "the worker stopped while handing the reply to the SMTP server: it may have arrived, and it is not "
        "sent again (replies are sent at most once)"
    )
    row.last_error_code = DeliveryUnknown.code
    row.claimed_by = None
    log.warning("reply %s to %s: %s", row.id, row.recipient, row.last_error)


def _claim(session: Session, notification_id: uuid.UUID, worker: str) -> Claimed | Outcome:
    row = session.execute(
        select(Notification).where(Notification.id == notification_id).with_for_update()
    ).scalar_one_or_none()
    if row is None or row.state in NOTIFICATION_FINAL:
        return Outcome(row.state if row is not None else "gone")
    moment, stale = now(), _stale_before()
    live = row.claimed_at is not None and row.claimed_at > stale and row.claimed_by != worker
    if row.state == "sending" and row.channel == "email":
        if not live:
            _unconfirmed(row)
            return Outcome("unconfirmed")
        return Outcome("busy")
    if row.state in ("claimed", "sending") and live:
        return Outcome("busy")
    if (
        row.state == "retrying"
        and row.next_attempt_at
        and row.next_attempt_at > moment + timedelta(seconds=1)
    ):
        return Outcome("busy")  # an early duplicate of the retry: the scheduled one sends
    secret = None
    if row.channel == "webhook":
        hook = session.get(Webhook, row.webhook_id) if row.webhook_id else None
        if hook is None or not hook.enabled:
            row.state = "skipped"
            row.last_error = "not sent: the webhook was deleted or disabled"
            return Outcome("skipped")
        try:
            secret = decrypt_secret(hook.secret_encrypted)
        except CopydeskError as exc:  # ENCRYPTION_KEY changed: retrying cannot help
            row.state, row.last_error, row.last_error_code = "failed", exc.message, exc.code
            return Outcome("failed")
    row.state, row.claimed_by, row.claimed_at = "claimed", worker, moment
    row.attempts += 1
    row.next_attempt_at = None
    return Claimed(row.id, row.run_id, row.channel, row.recipient, dict(row.payload), row.message_id, row.attempts,
                   row.source_id, secret)  # fmt: skip


def _start_data(notification_id: uuid.UUID, worker: str) -> None:
    """claimed -> sending, committed before DATA: from here on the reply is never sent again."""
    with session_scope() as session:
        moved = session.execute(
            update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.state == "claimed",
                Notification.claimed_by == worker,
            )  # fmt: skip
            .values(state="sending", claimed_at=now(), updated_at=now())
        ).rowcount
    if moved != 1:
        raise ClaimLost(str(notification_id))


def _send_reply(claimed: Claimed, worker: str) -> str:
    config = SmtpConfig.from_settings(get_settings())
    if config is None:
        raise ConfigurationError("no SMTP server is configured (SMTP_HOST)")
    p = claimed.payload
    message = build_reply(
        from_address=p["from"], from_name=p.get("from_name") or "", to=p["to"], subject=p["subject"],
        text=p["text"], html=p["html"], message_id=claimed.message_id or make_msgid(domain=domain_of(p["from"])),
        in_reply_to=p.get("in_reply_to"), references=p.get("references") or (), language=p.get("language"),
    )  # fmt: skip
    return send_email(config, message, before_data=lambda: _start_data(claimed.id, worker))


def _deliver(claimed: Claimed) -> str:
    status = deliver_webhook(
        claimed.recipient,
        claimed.secret or "",
        str(claimed.id),
        claimed.payload,
        timeout=get_settings().webhook_timeout,
    )
    return f"HTTP {status}"


def send_one(notification_id: uuid.UUID, worker: str) -> Outcome:
    """Claim the row, send, record what happened. Never raises for a failed send."""
    with session_scope() as session:
        claimed = _claim(session, notification_id, worker)
    if isinstance(claimed, Outcome):
        return claimed
    with log_context(run_id=claimed.run_id, notification=claimed.id):
        try:
            answer = _send_reply(claimed, worker) if claimed.channel == "email" else _deliver(claimed)
        except ClaimLost:
            log.warning(
                "%s to %s was taken over by another worker; this one stops",
                claimed.channel,
                shown_recipient(claimed.channel, claimed.recipient),
            )
            return Outcome("lost")
        except Exception as exc:
            return _record_failure(claimed, exc)
        return _record_sent(claimed, answer)


def _log_entry(claimed: Claimed, **fields) -> dict[str, Any]:
    return {"attempt": claimed.attempts, "at": now().isoformat(), **fields}


def _record_sent(claimed: Claimed, answer: str) -> Outcome:
    with session_scope() as session:
        row = session.execute(
            select(Notification).where(Notification.id == claimed.id).with_for_update()
        ).scalar_one()
        row.state, row.sent_at, row.claimed_by = "sent", now(), None
        row.last_error = row.last_error_code = None
        row.attempt_log = [*row.attempt_log, _log_entry(claimed, ok=True, answer=answer[:300])]
        if claimed.channel == "email" and claimed.source_id:
            source = session.get(Source, claimed.source_id)
            if source is not None and source.reply_error is not None:
                source.reply_error = source.reply_error_at = None
    log.info(
        "%s to %s sent (%s)",
        claimed.channel,
        shown_recipient(claimed.channel, claimed.recipient),
        answer[:100],
    )
    return Outcome("sent")


def retry_wait(attempts: int) -> float:
    """Seconds before try `attempts + 1`: NOTIFY_RETRY_WAIT doubled each time, at most
    NOTIFY_RETRY_MAX_WAIT (and well below the broker's visibility timeout)."""
    settings = get_settings()
    cap = min(settings.notify_retry_max_wait, settings.visibility_timeout / 2)
    return min(settings.notify_retry_wait * 2 ** max(attempts - 1, 0), cap)


def _record_failure(claimed: Claimed, exc: BaseException) -> Outcome:
    settings = get_settings()
    message, code = describe(exc), error_code(exc)
    transient = isinstance(exc, CopydeskError) and exc.transient
    wait = (
        retry_wait(claimed.attempts)
        if transient and claimed.attempts < settings.notify_max_attempts
        else None
    )
    with session_scope() as session:
        row = session.execute(
            select(Notification).where(Notification.id == claimed.id).with_for_update()
        ).scalar_one()
        row.last_error, row.last_error_code, row.claimed_by = message, code, None
        row.attempt_log = [*row.attempt_log, _log_entry(claimed, error=message, code=code, next_wait=wait)]
        if isinstance(exc, DeliveryUnknown):
            row.state = "unconfirmed"
        elif wait is not None:
            row.state, row.next_attempt_at = "retrying", now() + timedelta(seconds=wait)
        else:
            row.state = "failed"
            if claimed.channel == "email" and claimed.source_id:
                _reply_failed(
                    session.get(Source, claimed.source_id), f"reply to {claimed.recipient}: {message}"
                )
        state = row.state
    who = shown_recipient(claimed.channel, claimed.recipient)
    if isinstance(exc, CopydeskError):
        then = f"next in {wait:g} s" if wait is not None else state
        log.warning(
            "%s to %s: %s (%s, try %d, %s)", claimed.channel, who, message, code, claimed.attempts, then
        )
    else:
        log.error("%s to %s failed unexpectedly: %s", claimed.channel, who, message, exc_info=exc)
    return Outcome(state, wait)


# --- recovery ------------------------------------------------------------------------------------


def recover(limit: int = BATCH) -> list[uuid.UUID]:
    """Rows nothing has happened to for NOTIFY_CLAIM_TIMEOUT: their task was lost (a killed worker,
    a lost countdown) or their worker died. E-mail caught in `sending` becomes `unconfirmed`; the
    others are sent again (their claim decides who goes on). Returns the ids to send."""
    stale = _stale_before()
    resend: list[uuid.UUID] = []
    with session_scope() as session:
        rows = (
            session.execute(
                select(Notification)
                .where(
                    Notification.state.in_(("pending", "retrying", "claimed", "sending")),
                    Notification.updated_at < stale,
                    or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at < stale),
                )
                .order_by(Notification.updated_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        for row in rows:
            if row.channel == "email" and row.state == "sending":
                _unconfirmed(row)
            else:
                row.updated_at = now()  # not again before another NOTIFY_CLAIM_TIMEOUT
                resend.append(row.id)
    return resend


# --- tasks -----------------------------------------------------------------------------------------


def queue_sends(ids: list[uuid.UUID]) -> None:
    for notification_id in ids:
        send_task.apply_async(args=[str(notification_id)], queue="io")


def dispatch() -> dict[str, int]:
    """What beat runs every NOTIFY_INTERVAL seconds: plan new events, recover lost sends, queue them."""
    planned, recovered = plan(), recover()
    queue_sends(planned + recovered)
    return {"planned": len(planned), "recovered": len(recovered)}


@celery_app.task(name=DISPATCH_TASK)
def dispatch_task() -> dict[str, int]:
    return dispatch()


@celery_app.task(name=SEND_TASK, bind=True, max_retries=None)
def send_task(self, notification_id: str) -> str:
    """Send one reply or webhook delivery; a transient failure comes back after a countdown."""
    outcome = send_one(uuid.UUID(notification_id), worker=f"{self.request.hostname}/{self.request.id}")
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, queue="io")
    return outcome.state
