"""The Celery application as every process needs it to send work: the Redis broker and result
backend, two queues (`cpu`, `io`) and the delivery settings. Work is sent by task
name (app/workflows/engine.py), so a process that only sends — the API, the CLI — loads no task
module; the workers (and beat) add their tasks, process hooks and schedule in app/tasks.

The settings are the ones the measurements in the design notes call for: at-least-once delivery
(acks_late + reject_on_worker_lost + prefetch 1), a visibility timeout above the longest task and
retry countdown (or messages run twice), results kept well past the longest workflow (chord counters
share that TTL: an expired counter silently stalls a chord), chord error callbacks set explicitly, and
events on for Flower. Every connection to Redis (broker and backend) gets the timeouts, keepalive and
bounded retries of app/core/connections.py, so a broker cut off the network costs seconds.
"""

from __future__ import annotations

from weakref import WeakValueDictionary

from celery import Celery
from celery.backends.redis import RedisBackend
from kombu import Queue

from app.core.config import get_settings
from app.core.connections import redis_options

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


def configure(celery: Celery) -> None:
    """Apply the settings to the Celery app."""
    settings = get_settings()
    redis = redis_options()
    # Bounded retries on a dead broker (a publish, a result write): the connections already wait
    # REDIS_SOCKET_TIMEOUT per reply, so Celery's defaults (3 publish and 20 backend retries) would
    # hold the caller for minutes.
    retry_policy = {"max_retries": settings.redis_retries, "interval_start": 0, "interval_step": 0.5,
                    "interval_max": 1}
    broker = settings.redis_url or _PLACEHOLDER_BROKER
    celery.conf.update(
        broker_url=broker,
        result_backend=f"{__name__}.SendOnlyRedisBackend+{broker}",
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
    )


celery_app = Celery("copydesk")
configure(celery_app)
