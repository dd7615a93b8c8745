"""Helpers for the observability tests: scraping /metrics, capturing the API's log lines."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

from prometheus_client.parser import text_string_to_metric_families



def scrape(http) -> dict[tuple, float]:
    """{(sample name, ((label, value), …)): value} from GET /metrics."""
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@contextlib.contextmanager
def api_logs() -> Iterator[io.StringIO]:
    """Everything the (in-process) API logs inside the block, through Copydesk's own handler — set up
    again first, as an API started with the current settings would have it (their secrets redacted)."""
    from app.core.logging import configure_logging

    configure_logging()
    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_copydesk", False))
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(old)


def json_lines(text: str) -> list[dict]:
    """The JSON log records in a log (other lines, e.g. Celery's start-up banner, are skipped)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out

