"""Editing by an LLM (openai SDK) or the offline extractive editor."""

from app.integrations.llm.base import Editor, EditRequest, EditResult, SiteTerm, Usage
from app.integrations.llm.cache import CachedEditor, EditCache, MemoryEditCache, cache_key, content_hash
from app.integrations.llm.checks import check_edit
from app.integrations.llm.chunking import estimate_tokens, split_into_chunks
from app.integrations.llm.diff import DiffOp, HtmlDiff, diff_html
from app.integrations.llm.factory import editor_from_settings
from app.integrations.llm.fields import field_problems, settle_fields, slugify
from app.integrations.llm.offline import OfflineEditor, excerpt_of
from app.integrations.llm.openai_editor import OpenAIEditor
from app.integrations.llm.pricing import DEFAULT_PRICES, estimate_cost

__all__ = [
    "DEFAULT_PRICES",
    "CachedEditor",
    "DiffOp",
    "EditCache",
    "EditRequest",
    "EditResult",
    "Editor",
    "HtmlDiff",
    "MemoryEditCache",
    "OfflineEditor",
    "OpenAIEditor",
    "SiteTerm",
    "Usage",
    "cache_key",
    "check_edit",
    "content_hash",
    "diff_html",
    "editor_from_settings",
    "estimate_cost",
    "estimate_tokens",
    "excerpt_of",
    "field_problems",
    "settle_fields",
    "slugify",
    "split_into_chunks",
]
