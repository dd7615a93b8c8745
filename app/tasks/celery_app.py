"""The workers' side of the Celery app (app/core/broker.py): the task modules, beat's schedule and
the process hooks — REDIS_URL required, JSON logging, the run on Celery's own lines about its tasks,
fresh database connections in each pool child. `celery -A app.tasks worker|beat|flower` loads it;
a process that only sends work never does."""

from __future__ import annotations

import uuid

from celery import signals

from app.core.broker import celery_app
from app.core.config import get_settings
from app.core.db import reset_engines
from app.core.errors import ConfigurationError
from app.core.logging import configure_logging, log_context
from app.services.mailboxes import DISPATCH_TASK
from app.tasks.mailbox.dispatch import WhenDue

_settings = get_settings()
celery_app.conf.update(
    include=["app.tasks.runner", "app.tasks.ops", "app.tasks.mailbox.tasks", "app.tasks.notify"],
    beat_schedule={
        "sweep-stuck-runs": {
            "task": "copydesk.sweep",
            "schedule": _settings.sweep_interval,
            "options": {"queue": "io", "expires": _settings.sweep_interval},
        },
        "prune-llm-cache": {
            "task": "copydesk.prune_llm_cache",
            "schedule": 3600,
            "options": {"queue": "io", "expires": 3600},
        },
        "dispatch-mailbox-polls": {  # sent only when a mailbox is due or has mail to file
            "task": DISPATCH_TASK,
            "schedule": WhenDue(_settings.mailbox_dispatch_interval),
            "options": {"queue": "io", "expires": _settings.mailbox_dispatch_interval},
        },
        "dispatch-notifications": {
            "task": "copydesk.notify.dispatch",
            "schedule": _settings.notify_interval,
            "options": {"queue": "io", "expires": _settings.notify_interval},
        },
    },
)


@signals.worker_init.connect
def _refuse_without_redis(**_) -> None:
    if not get_settings().redis_url:
        raise ConfigurationError(
            "REDIS_URL is not set: start everything with `copydesk dev`, or set REDIS_URL=redis://host:6379/0"
        )


@signals.setup_logging.connect
def _logging(**_) -> None:
    configure_logging()


_task_log_context: dict[str, object] = {}


@signals.task_prerun.connect
def _enter_log_context(task_id=None, task=None, args=None, **_) -> None:
    # Celery's own lines about a task of a run ("… succeeded in 0.2s") carry the run too; a task whose
    # first argument is another id names its field (`log_field`, e.g. the mailbox tasks' source_id).
    if not task or not task.name.startswith("copydesk.") or not args:
        return
    try:
        uuid.UUID(str(args[0]))
    except ValueError:
        return
    # The runner adds the step and the document once it knows them; Celery's lines before and after
    # the body (the task name says which step) carry the run and the task.
    context = log_context(**{getattr(task, "log_field", "run_id"): args[0]}, task_id=task_id)
    context.__enter__()
    _task_log_context[task_id] = context


@signals.task_postrun.connect
def _leave_log_context(task_id=None, **_) -> None:
    context = _task_log_context.pop(task_id, None)
    if context is not None:
        context.__exit__(None, None, None)


@signals.worker_process_init.connect
def _fresh_connections(**_) -> None:
    # A forked pool child must not share the parent's database connections.
    reset_engines()
