"""A crash point for the replies tests, loaded into the test workers through STEP_MODULES.

A test arms it for one recipient by setting the Redis key `test:notify:crash:after_send:<address>`;
the worker that has just handed a reply to that address to the SMTP server (the server answered
250 to DATA) takes the key and SIGKILLs its own process before it can record anything: a machine
lost between sending and recording."""

from __future__ import annotations

import os
import signal

import redis
from celery import current_task

import app.tasks.notify as notify
from app.core.config import get_settings

KEY = "test:notify:crash:after_send:{}"
CRASHED = "test:notify:crashed"

_send_email = notify.send_email


def send_email(config, message, **kwargs):
    answer = _send_email(config, message, **kwargs)
    task = current_task._get_current_object()
    if task is not None and task.request.id:
        client = redis.Redis.from_url(get_settings().redis_url)
        recipient = message["To"].addresses[0].addr_spec
        if client.delete(KEY.format(recipient)):
            client.rpush(CRASHED, recipient)
            os.kill(os.getpid(), signal.SIGKILL)
    return answer


notify.send_email = send_email
