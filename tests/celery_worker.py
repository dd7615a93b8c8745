"""The Celery app as the test suite's workers load it (`celery -A tests.celery_worker worker`):
Copydesk's own, plus what only a measured test run needs. A prefork pool child ends with os._exit
(no atexit), a second after telling the pool it is done, and the pool may end it before that: what
it measured under coverage is saved when it stops taking tasks."""

from __future__ import annotations

from celery import signals

from app.tasks import celery_app

app = celery_app


@signals.worker_process_shutdown.connect
def _save_coverage(**_) -> None:
    try:
        import coverage
    except ImportError:  # the suite runs without --cov too
        return
    current = coverage.Coverage.current()
    if current is not None:
        current.stop()
        current.save()
