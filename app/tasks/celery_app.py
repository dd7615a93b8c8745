"""The Celery application: Redis broker and result backend, two queues (`cpu`, `io`).

The settings below are the ones the measurements in the design notes call for: at-least-once delivery
(acks_late + reject_on_worker_lost + prefetch 1), a visibility timeout above the longest task and
retry countdown (or messages run twice), results kept well past the longest workflow (chord counters
share that TTL: an expired counter silently stalls a chord), chord error callbacks set explicitly, and
events on for Flower.
"""

from __future__ import annotations

from weakref import WeakValueDictionary

from celery import Celery, signals
from celery.backends.redis import RedisBackend
from kombu import Queue

from app.core.config import get_settings
from app.core.errors import ConfigurationError

_PLACEHOLDER_BROKER = "redis://redis-url-not-configured.invalid:6379/0"


class SendOnlyRedisBackend(RedisBackend):
    """The Redis result backend, with the keepalive timings of app/core/connections.py and minus one
    habit: Celery subscribes a process to a pub/sub channel for every task it sends and every group
    result it builds, in case it waits for them, and only a wait ever unsubscribes. Copydesk never
    waits on Celery results (run state lives in PostgreSQL), so the API and the workers would collect
    subscriptions forever. Here a process subscribes only when it actually waits (`AsyncResult.get()`,
    `GroupResult.join_native()`); the wait reads the current state after subscribing, so nothing is
    missed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Celery's settings turn keepalive on or off only: its timings come from DEAD_PEER_TIMEOUT.
        if self.connparams.get("socket_keepalive"):  # TCP (a Unix socket has no keepalive)
            from app.core.connections import redis_options

            self.connparams["socket_keepalive_options"] = redis_options()["socket_keepalive_options"]

    def on_task_call(self, producer, task_id):
        pass

    def _add_pending_result(self, task_id, result, weak=False):
        concrete, weak_ = self._pending_results
        mapping, waiters = (weak_, WeakValueDictionary) if weak else (concrete, dict)
        mapping.setdefault(task_id, waiters())[id(result)] = result

    def _wait_for_pending(self, result, **kwargs):
        for node in getattr(result, "results", None) or [result]:
            self.result_consumer.consume_from(node.id)
        return super()._wait_for_pending(result, **kwargs)


def make_celery() -> Celery:
    celery = Celery("copydesk", include=["app.tasks.runner", "app.tasks.ops", "app.tasks.mailbox"])
    configure(celery)
    return celery


def configure(celery: Celery) -> None:
    """(Re)apply the settings to the Celery app (tests call it after changing the environment):
    connections, producers and the result backend made for the old settings are dropped."""
    from kombu import pools

    from app.core.connections import redis_options

    settings = get_settings()
    redis = redis_options()
    # Bounded retries on a dead broker (a publish, a result write): the connections already wait
    # REDIS_SOCKET_TIMEOUT per reply, so Celery's defaults (3 publish and 20 backend retries) would
    # hold the caller for minutes.
    retry_policy = {"max_retries": settings.redis_retries, "interval_start": 0, "interval_step": 0.5,
                    "interval_max": 1}
    pools.reset()  # kombu keeps one connection/producer pool per broker URL, process-wide
    celery._after_fork()  # and the app its own references to them
    if "control" in celery.__dict__:  # the control mailbox caches a producer pool of its own
        celery.control.mailbox.__dict__.pop("producer_pool", None)
    celery._backend_cache = None
    celery._local = __import__("threading").local()
    broker = settings.redis_url or _PLACEHOLDER_BROKER
    celery.conf.update(
        broker_url=broker,
        result_backend=f"app.tasks.celery_app.SendOnlyRedisBackend+{broker}",
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": settings.unacked_restore_interval,
            **redis,
        },
        broker_connection_timeout=settings.connect_timeout,
        task_publish_retry_policy=retry_policy,
        result_backend_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            "retry_policy": retry_policy,
        },
        redis_socket_timeout=redis["socket_timeout"],
        redis_socket_connect_timeout=redis["socket_connect_timeout"],
        redis_socket_keepalive=True,
        redis_backend_health_check_interval=redis["health_check_interval"],
        result_expires=settings.result_expires,
        result_extended=True,
        task_track_started=True,
        task_allow_error_cb_on_chord_header=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_default_queue="cpu",
        task_queues=(Queue("cpu"), Queue("io")),
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_deduplicate_successful_tasks=False,
        timezone="UTC",
        beat_schedule={
            "sweep-stuck-runs": {
                "task": "copydesk.sweep",
                "schedule": settings.sweep_interval,
                "options": {"queue": "io", "expires": settings.sweep_interval},
            },
            "prune-llm-cache": {
                "task": "copydesk.prune_llm_cache",
                "schedule": 3600,
                "options": {"queue": "io", "expires": 3600},
            },
            "dispatch-mailbox-polls": {
                "task": "copydesk.mailbox.dispatch",
                "schedule": settings.mailbox_dispatch_interval,
                "options": {"queue": "io", "expires": settings.mailbox_dispatch_interval},
            },
        },
    )


celery_app = make_celery()


@signals.worker_init.connect
def _refuse_without_redis(**_) -> None:
    if not get_settings().redis_url:
        raise ConfigurationError(
            "REDIS_URL is not set: start everything with `copydesk dev`, or set REDIS_URL=redis://host:6379/0"
        )


@signals.setup_logging.connect
def _logging(**_) -> None:
    from app.core.logging import configure_logging

    configure_logging()


_task_log_context: dict[str, object] = {}


@signals.task_prerun.connect
def _enter_log_context(task_id=None, task=None, args=None, **_) -> None:
    # Celery's own lines about a task of a run ("… succeeded in 0.2s") carry the run too.
    if not task or not task.name.startswith("copydesk.") or not args:
        return
    try:
        import uuid as _uuid

        _uuid.UUID(str(args[0]))
    except ValueError:
        return
    from app.core.logging import log_context

    # The runner adds the step and the document once it knows them; Celery's lines before and after
    # the body (the task name says which step) carry the run and the task.
    context = log_context(run_id=args[0], task_id=task_id)
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
    from app.core.db import reset_engines

    reset_engines()


@signals.worker_process_shutdown.connect
def _save_coverage(**_) -> None:
    # Under the test suite's coverage, a prefork child exits with os._exit: save what it measured.
    try:
        import coverage
    except ImportError:  # pragma: no cover - production images do not ship coverage
        return
    current = coverage.Coverage.current()
    if current is not None:
        current.stop()
        current.save()
