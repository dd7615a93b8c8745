"""Edit results cached by what produced them, so a resume or a re-run does not pay twice.

The key covers everything the model sees and everything that changes its answer: the article and its
context (title, keywords, categories, language, transliterated slugs), the instructions, the model, the
temperature, and the prompt version; but not the site's existing tags (see `content_hash`). Backends store JSON-able dicts (`EditResult.to_dict()`): the in-memory one here, a
PostgreSQL table `llm_cache(key text primary key, result jsonb, created_at timestamptz)` in the app.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Protocol

from app.integrations.llm.base import Editor, EditRequest, EditResult, Usage
from app.integrations.llm.prompts import PROMPT_VERSION

log = logging.getLogger(__name__)


class EditCache(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, result: dict[str, Any]) -> None: ...


class MemoryEditCache:
    """A bounded in-process cache (least recently used entries go first)."""

    def __init__(self, max_entries: int = 1000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            if key not in self._entries:
                return None
            self._entries.move_to_end(key)
            return json.loads(json.dumps(self._entries[key]))  # a copy the caller may change

    def put(self, key: str, result: dict[str, Any]) -> None:
        with self._lock:
            self._entries[key] = json.loads(json.dumps(result))
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def content_hash(request: EditRequest) -> str:
    """sha256 of the article and the context the model sees with it."""
    content = {
        "html": request.html,
        "title": request.title,
        "keywords": request.keywords,
        "categories": request.categories,
        "language": request.language,
    }
    if request.transliterate_slug:  # absent before it existed: old keys still hit
        content["transliterate_slug"] = True
    # The site's tags are not part of the key: they are a hint the model may follow, and they grow
    # with every post, so a resubmission or a re-run would pay again (and be worded anew) otherwise.
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def cache_key(request: EditRequest, *, namespace: str = "") -> str:
    """The cache key of a request whose model and temperature are resolved (see CachedEditor).
    `namespace` separates servers that might give one model name to different models."""
    parts = {
        "prompt_version": PROMPT_VERSION,
        "namespace": namespace,
        "content": content_hash(request),
        "instructions": request.instructions.strip(),
        "model": request.model,
        "temperature": request.temperature,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class CachedEditor:
    """Wraps an editor: a request seen before is answered from the cache, without a request.

    A cached result reports `cached=True` and zero usage (nothing was spent this time). A failing
    cache backend never fails an edit: it is logged and the edit goes to the model."""

    def __init__(self, editor: Editor, cache: EditCache, *, namespace: str | None = None) -> None:
        self.editor = editor
        self.cache = cache
        self.namespace = namespace if namespace is not None else getattr(editor, "base_url", "")

    @property
    def engine(self) -> str:
        return self.editor.engine

    def close(self) -> None:
        close = getattr(self.editor, "close", None)
        if close is not None:
            close()

    def key_for(self, request: EditRequest) -> str:
        resolved = replace(
            request,
            model=request.model or getattr(self.editor, "model", None),
            temperature=(
                request.temperature
                if request.temperature is not None
                else getattr(self.editor, "temperature", None)
            ),
        )
        return cache_key(resolved, namespace=self.namespace)

    def edit(self, request: EditRequest) -> EditResult:
        key = self.key_for(request)
        try:
            hit = self.cache.get(key)
        except Exception:
            log.warning("the edit cache could not be read; editing without it", exc_info=True)
            hit = None
        if hit is not None:
            result = EditResult.from_dict(hit)
            result.cached = True
            result.cached_parts = result.chunks
            result.usage = Usage(note="served from the cache: no request, no cost")
            return result
        result = self.editor.edit(request)
        try:
            self.cache.put(key, result.to_dict())
        except Exception:
            log.warning("the edit result could not be cached", exc_info=True)
        return result
