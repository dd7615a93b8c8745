"""The edit cache of the workers: the `llm_cache` table (key, result jsonb, created_at).

Whole edits are keyed by what produced them (see app/integrations/llm/cache.py: content, context,
instructions, model, temperature, prompt version, server); parts of long articles by the messages
sent for them (`part:<sha256>`). One table for every worker, so a resume or a re-run on another
machine does not pay twice. A write is an upsert: two workers finishing the same edit both succeed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert

from app.core.db import session_scope
from app.models import LlmCache


class PostgresEditCache:
    """An `EditCache` (get/put of JSON-able dicts) over the llm_cache table."""

    def get(self, key: str) -> dict[str, Any] | None:
        with session_scope() as session:
            row = session.get(LlmCache, key)
            return dict(row.result) if row is not None else None

    def put(self, key: str, result: dict[str, Any]) -> None:
        statement = insert(LlmCache).values(key=key, result=result)
        statement = statement.on_conflict_do_update(
            index_elements=[LlmCache.key],
            set_={"result": statement.excluded.result, "created_at": func.now()},
        )
        with session_scope() as session:
            session.execute(statement)
