"""Which editor a worker uses: OpenAI when a key is configured, else the offline editor."""

from __future__ import annotations

from typing import Any

from app.integrations.llm.base import Editor
from app.integrations.llm.cache import CachedEditor, EditCache
from app.integrations.llm.offline import OfflineEditor
from app.integrations.llm.openai_editor import OpenAIEditor


def editor_from_settings(settings: Any, *, cache: EditCache | None = None, **overrides: Any) -> Editor:
    """An editor built from `app.core.config.Settings`. `overrides` are OpenAIEditor arguments
    (model, temperature, timeout, chunk_tokens, max_attempts, …) from a workflow or a source; they
    are ignored by the offline editor. `cache` wraps the OpenAI editor (the offline one is free) and
    keeps the parts of long articles."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if not key:
        return OfflineEditor()
    options: dict[str, Any] = {
        "base_url": settings.openai_base_url,
        "model": settings.openai_model,
        "timeout": settings.openai_timeout,
    }
    options.update({name: value for name, value in overrides.items() if value is not None})
    if cache is None:
        return OpenAIEditor(key, **options)
    # The same backend holds whole edits (CachedEditor) and the parts of long ones (part_cache).
    return CachedEditor(OpenAIEditor(key, part_cache=cache, **options), cache)
