"""Celery entry point: `celery -A app.tasks worker` finds the application here (as `app`/`celery`).

Task modules: runner (one task per step kind, fan-in, finish, errback), ops (sweeper, cache
retention), mailbox (dispatch, poll, settle), steps (the step kinds of publish_document).
"""

from app.tasks.celery_app import celery_app

app = celery = celery_app

__all__ = ["app", "celery", "celery_app"]
