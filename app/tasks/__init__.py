"""The workers: `celery -A app.tasks worker` finds the application here (as `app`/`celery`).

Task modules: runner (one task per step kind, fan-in, finish, errback; it loads steps, the code of the
built-in step kinds), ops (sweeper, cache retention), mailbox (dispatch, poll, settle). A process that
only sends work uses app/core/broker.py and never imports this package.
"""

from app.tasks.celery_app import celery_app

app = celery = celery_app

__all__ = ["app", "celery", "celery_app"]
