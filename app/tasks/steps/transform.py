"""The transform step: the article edited for the web, and the fields of its post.

The editor: OpenAI when OPENAI_API_KEY is set (OPENAI_BASE_URL for any compatible server), else the
offline extractive editor, which is labelled on the run. Edits are cached in PostgreSQL (llm_cache):
a resume or a re-run of the same content does not pay twice.

What the editor is told comes in layers; each key comes from the first layer that sets it:

    1. the run's payload              llm: {instructions, model, temperature, …}
    2. the document's options         llm: {…}   (directives that came with the manuscript)
    3. the source's defaults          llm: {…}   (a mailbox's settings)
    4. the workflow step's options    instructions: …, model: …, temperature: …  (in the YAML)
    5. the settings                   OPENAI_MODEL, OPENAI_TIMEOUT, then the editor's own defaults

Keys: instructions, model, temperature, and the tuning knobs max_attempts (HTTP attempts per model
call), max_wait (the longest Retry-After waited for in the worker), chunk_tokens, timeout.

Directives beat the model: a category (or categories), tags, slug or excerpt given with the run
(payload, then the document's options) is used as given. Otherwise the model chooses the category
from a `site_categories` list given with the run, else from the existing categories of the site the
run publishes to; with neither it chooses none.

The site's existing terms (app/services/sites.py `site_terms`: asked here, in the io worker, and
kept in Redis a few minutes) are the editors' choices: its categories for the category, its tags for
the tags (the offline editor proposes only those the text mentions, besides the document's keywords
and headings; the OpenAI editor is asked to prefer them). The site's `transliterate_slugs` option
asks for slugs in Latin letters.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from app import services
from app.core.db import session_scope
from app.core.errors import ConfigurationError, CopydeskError
from app.integrations.llm import EditRequest, EditResult, Usage, markup
from app.integrations.wordpress import WordPressSite
from app.models import Document, Source
from app.services import sites
from app.tasks.steps.common import article, document
from app.workflows import state
from app.workflows.registry import StepContext, implements

# name -> (type, (lowest, highest) or None)
LLM_OPTIONS: dict[str, tuple[type, tuple[float, float] | None]] = {
    "instructions": (str, None),
    "model": (str, None),
    "temperature": (float, (0.0, 2.0)),
    "max_attempts": (int, (1, 10)),
    "max_wait": (float, (0.0, 600.0)),
    "chunk_tokens": (int, (200, 200_000)),
    "timeout": (float, (1.0, 600.0)),
}
EDITOR_ARGUMENTS = ("model", "temperature", "max_attempts", "max_wait", "chunk_tokens", "timeout")
OFFLINE_WARNING = (
    "editing: done by the offline editor (no OPENAI_API_KEY is set): the body is cleaned, not "
    "rewritten; title, excerpt and tags are taken from the text"
)


# --- options ---------------------------------------------------------------------------------------


@dataclass
class EditOptions:
    values: dict[str, Any] = field(default_factory=dict)  # only the keys some layer set
    origin: dict[str, str] = field(default_factory=dict)  # key -> the layer it came from

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def _checked(layer: str, key: str, value: Any) -> Any:
    kind, bounds = LLM_OPTIONS[key]
    where = f"{layer}: llm.{key}"
    if kind is str:
        if not isinstance(value, str):
            raise ConfigurationError(f"{where} must be text")
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{where} must be a number")
    if kind is int and value != int(value):
        raise ConfigurationError(f"{where} must be a whole number")
    low, high = bounds  # type: ignore[misc]
    if not low <= value <= high:
        raise ConfigurationError(f"{where} must be between {low:g} and {high:g} (it is {value})")
    return kind(value)


def _llm_mapping(layer: str, container: dict[str, Any] | None) -> dict[str, Any]:
    llm = (container or {}).get("llm")
    if llm is None:
        return {}
    if not isinstance(llm, dict):
        raise ConfigurationError(f"{layer}: llm must be a mapping of {', '.join(LLM_OPTIONS)}")
    if unknown := sorted(set(llm) - set(LLM_OPTIONS)):
        raise ConfigurationError(
            f"{layer}: unknown llm option(s) {', '.join(unknown)}; known: {', '.join(LLM_OPTIONS)}"
        )
    return llm


def edit_options(
    *,
    payload: dict[str, Any] | None = None,
    document_options: dict[str, Any] | None = None,
    source_defaults: dict[str, Any] | None = None,
    step_options: dict[str, Any] | None = None,
) -> EditOptions:
    """The editing options of a run, layer by layer (see the module docstring). A value that is
    null or blank does not count; a value of the wrong type or range is a ConfigurationError naming
    the layer and the key."""
    layers = [
        ("the run's payload", _llm_mapping("the run's payload", payload)),
        ("the document's options", _llm_mapping("the document's options", document_options)),
        ("the source's defaults", _llm_mapping("the source's defaults", source_defaults)),
        ("the workflow step's options", {k: v for k, v in (step_options or {}).items() if k in LLM_OPTIONS}),
    ]
    options = EditOptions()
    for layer, values in layers:
        for key, value in values.items():
            if key in options.values or value is None or (isinstance(value, str) and not value.strip()):
                continue
            options.values[key] = _checked(layer, key, value)
            options.origin[key] = layer
    return options


# --- categories --------------------------------------------------------------------------------------


def _names(items: Any) -> list[str]:
    """Names (categories, tags) from a comma-separated text, a list of names, or a list of
    {"name": …} objects (as WordPress lists them); without blanks and repeats."""
    if isinstance(items, str):
        items = items.split(",")
    names: list[str] = []
    for item in items or []:
        name = item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str) and name.strip() and name.strip() not in names:
            names.append(name.strip())
    return names


def publishing_site(session, doc: Document, payload: dict[str, Any]) -> WordPressSite | None:
    """The WordPress site this run will publish to (None: the local preview), whose existing terms
    the editors choose from."""
    try:
        site = sites.site_for(session, payload=payload, document=doc)
    except CopydeskError:  # an unknown site name: the publish step reports it; no categories here
        return None
    return sites.wordpress_site(site) if site is not None else None


# --- usage -------------------------------------------------------------------------------------------


def usage_of(result: EditResult) -> dict[str, Any]:
    usage = result.usage
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "requests": usage.requests,
        "cost_usd": round(usage.cost_usd, 8),
        "cached": result.cached,
        "cached_parts": result.cached_parts,
        "chunks": result.chunks,
        "note": usage.note,
    }


def add_run_usage(session, run_id: uuid.UUID, usage: Usage, *, engine: str, cached: bool = False) -> dict:
    """Add an edit's spending to `runs.usage` (a run may edit more than once: retries, resumes)."""
    run = state.lock_run(session, run_id)
    total = dict(run.usage or {})
    for key in ("prompt_tokens", "completion_tokens", "requests"):
        total[key] = int(total.get(key) or 0) + int(getattr(usage, key))
    total["total_tokens"] = total["prompt_tokens"] + total["completion_tokens"]
    total["cost_usd"] = round(float(total.get("cost_usd") or 0) + usage.cost_usd, 8)
    total["cached_edits"] = int(total.get("cached_edits") or 0) + int(cached)
    total["engine"] = engine
    if usage.note and not cached:  # e.g. a model without a known price
        total["cost_note"] = usage.note
    run.usage = total
    return total


# --- the step ----------------------------------------------------------------------------------------


@dataclass
class _Input:
    request: EditRequest
    options: EditOptions
    directives: dict[str, Any]
    document_title: str


def _load(ctx: StepContext) -> _Input:
    with session_scope() as session:
        doc = document(session, ctx)
        art = article(session, doc.id)
        source = session.get(Source, doc.source_id) if doc.source_id else None
        options = edit_options(
            payload=ctx.payload,
            document_options=doc.options,
            source_defaults=source.defaults if source is not None else None,
            step_options=ctx.options,
        )
        directives = {**(doc.options or {}), **(ctx.payload or {})}
        wp_site = publishing_site(session, doc, ctx.payload)
        # The model chooses a category only when the sender did not: from a list given with the
        # run, else from the site's.
        chosen_category = bool(directives.get("category") or directives.get("categories"))
        categories = [] if chosen_category else _names(directives.get("site_categories"))
        # The document's own title (parse's), not the article's: a re-run must send what the first
        # run sent, or the cache would miss.
        title = str((ctx.results.get("parse") or {}).get("title") or art.title or "")
        metadata = art.doc_metadata or {}
        request = EditRequest(
            html=art.original_html,
            text=art.text,
            title=title,
            keywords=[str(k) for k in metadata.get("keywords") or []],
            categories=categories,
            instructions=options.get("instructions", ""),
            language=str(metadata.get("language") or ""),
            transliterate_slug=bool(wp_site and wp_site.transliterate_slugs),
        )
    if wp_site is not None:  # asked outside the transaction; kept in Redis per site for a few minutes
        terms = sites.site_terms(wp_site)
        if terms.error:
            ctx.warn(f"editing: the site's tags and categories could not be read ({terms.error})")
        request.site_tags = terms.tags
        if not chosen_category and not request.categories:
            request.categories = terms.categories
    return _Input(request, options, directives, title)


def _edit(ctx: StepContext, request: EditRequest, options: EditOptions) -> EditResult:
    arguments = {key: options.get(key) for key in EDITOR_ARGUMENTS}
    editor = services.editor(**arguments)
    try:
        return editor.edit(request)
    except CopydeskError as exc:
        spent: Usage | None = getattr(exc, "usage", None)
        if spent is not None and spent.requests:  # failed requests are on the run too
            with session_scope() as session:
                add_run_usage(session, ctx.run_id, spent, engine=editor.engine)
        raise
    finally:
        close = getattr(editor, "close", None)
        if close is not None:
            close()


def _blocks(original_html: str, original_blocks: str, edited_html: str, titles: list[str]) -> str:
    """The block markup to publish: the converter's when the body's text was not rewritten (without
    a leading heading that repeats the title), else none, so the edited HTML is what gets published
    (blocks made from the original text would undo the edit)."""
    original = original_html
    for title in titles:
        original = markup.clean_html(original, drop_leading_heading=title)
    if markup.block_texts(original) != markup.block_texts(edited_html):
        return ""
    return markup.drop_leading_heading_block(original_blocks, titles)


@implements("transform")
def transform(ctx: StepContext) -> dict:
    """Edit the article for the web and write its title, excerpt, slug, tags and category."""
    job = _load(ctx)
    result = _edit(ctx, job.request, job.options)
    directives = job.directives

    if result.engine == "offline":
        ctx.warn(OFFLINE_WARNING)
    for warning in result.warnings:
        ctx.warn(f"editing: {warning}")
    categories = _names(directives.get("categories"))
    categories = categories or _names([directives.get("category") or result.category])
    fields = {
        "title": result.title,
        "excerpt": str(directives.get("excerpt") or result.excerpt),
        "slug": str(directives.get("slug") or result.slug).strip(),
        "tags": _names(directives.get("tags")) or result.tags,
        "categories": categories,
    }
    usage = usage_of(result)
    with session_scope() as session:
        art = article(session, ctx.document_id)
        art.html = result.html  # original_html stays as converted
        titles = [job.document_title, result.title]
        art.blocks = _blocks(art.original_html, art.original_blocks, result.html, titles)
        for name, value in fields.items():
            setattr(art, name, value)
        art.edit_engine = result.engine
        art.edit_warnings = list(result.warnings)
        art.usage = usage
        add_run_usage(session, ctx.run_id, result.usage, engine=result.engine, cached=result.cached)

    summary = f"{result.engine}: {result.title}"
    if result.cached:
        summary += " · from the cache (no request, no cost)"
    elif result.usage.requests:
        summary += f" · {result.usage.total_tokens} tokens, ${result.usage.cost_usd:.4f}"
    if result.kept_original_body:
        summary += " · original body kept"
    return {
        "engine": result.engine,
        "title": result.title,
        "cached": result.cached,
        "kept_original_body": result.kept_original_body,
        "chunks": result.chunks,
        "cached_parts": result.cached_parts,
        "usage": usage,
        "options": {key: job.options.origin[key] for key in sorted(job.options.origin)},
        "summary": summary,
    }
