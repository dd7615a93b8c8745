"""Adapters to the outside world (object storage, LLM, WordPress, mailboxes).

Pure code: plain data in, plain data out, errors from `app.core.errors`. Nothing here imports Celery,
FastAPI or the ORM.
"""
