"""The transform step's own logic without workers: where each editing option comes from, what is
refused, which block markup gets published, and the PostgreSQL edit cache."""

from __future__ import annotations

import uuid

import pytest

from app.core.errors import ConfigurationError
from app.documents import word_to_article
from app.integrations.llm import OfflineEditor, EditRequest, markup
from app.tasks.steps.transform import _blocks, edit_options
from tests.llm.documents import press_release

WORKFLOW = {"instructions": "Polish it.", "model": "gpt-4o-mini", "temperature": 0.2, "other": "ignored"}


def test_each_option_comes_from_the_first_layer_that_sets_it():
    options = edit_options(
        payload={"llm": {"model": "gpt-4o", "instructions": "  "}},  # blank: not set
        document_options={"llm": {"temperature": 0.9, "model": "doc-model"}},
        source_defaults={"llm": {"instructions": "Write for teenagers.", "temperature": 0.1, "max_wait": 5}},
        step_options=WORKFLOW,
    )
    assert options.values == {
        "model": "gpt-4o",
        "temperature": 0.9,
        "instructions": "Write for teenagers.",
        "max_wait": 5.0,
    }
    assert options.origin == {
        "model": "the run's payload",
        "temperature": "the document's options",
        "instructions": "the source's defaults",
        "max_wait": "the source's defaults",
    }
    # Nothing but the workflow: its options; nothing at all: the settings and the editor's defaults.
    assert edit_options(step_options=WORKFLOW).values == {
        "instructions": "Polish it.", "model": "gpt-4o-mini", "temperature": 0.2
    }
    assert edit_options().values == {}
    unset = edit_options(payload={"llm": {"temperature": None}}, step_options=WORKFLOW)
    assert unset.get("temperature") == 0.2


RUN, DOC, SOURCE = "the run's payload", "the document's options", "the source's defaults"


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ({"payload": {"llm": {"temperature": "hot"}}}, f"{RUN}: llm.temperature must be a number"),
        ({"payload": {"llm": {"temperature": 3}}}, "llm.temperature must be between 0 and 2 (it is 3)"),
        ({"source_defaults": {"llm": {"max_attempts": 2.5}}}, f"{SOURCE}: llm.max_attempts must be a whole"),
        ({"document_options": {"llm": {"temprature": 1}}}, f"{DOC}: unknown llm option(s) temprature"),
        ({"payload": {"llm": "gpt-4o"}}, f"{RUN}: llm must be a mapping"),
        ({"step_options": {"max_attempts": 0}}, "step's options: llm.max_attempts must be between 1"),
    ],
)
def test_a_wrong_option_names_its_layer_and_key(layers, message):
    with pytest.raises(ConfigurationError) as caught:
        edit_options(**layers)
    assert message in caught.value.message


def test_the_converters_blocks_are_published_only_when_the_text_was_not_rewritten():
    data, title = press_release(1)
    converted = word_to_article(data, "press.docx")
    assert converted.blocks.startswith("<!-- wp:heading")
    unchanged = OfflineEditor().edit(EditRequest(html=converted.html, text=converted.text, title=title))
    blocks = _blocks(converted.html, converted.blocks, unchanged.html, [title, unchanged.title])
    # The same text: the converter's blocks, without the heading that repeats the post title.
    assert blocks.startswith("<!-- wp:paragraph -->") and title not in blocks
    assert blocks == converted.blocks.split("\n\n", 1)[1]
    # A rewrite: no blocks, so the edited HTML is what gets published (not the original text).
    edited = unchanged.html.replace("In order to save", "To save")
    assert _blocks(converted.html, converted.blocks, edited, [title]) == ""


def test_a_leading_heading_block_goes_only_when_it_repeats_the_title():
    blocks = (
        '<!-- wp:heading {"level":1} -->\n<h1 class="wp-block-heading">The  <em>Title</em></h1>\n'
        "<!-- /wp:heading -->\n\n<!-- wp:paragraph -->\n<p>x</p>\n<!-- /wp:paragraph -->"
    )
    assert markup.drop_leading_heading_block(blocks, ["the title"]).startswith("<!-- wp:paragraph")
    assert markup.drop_leading_heading_block(blocks, ["Another title", ""]) == blocks


@pytest.mark.postgres
def test_the_postgres_edit_cache_reads_what_it_wrote_and_upserts(stack_env):
    from app.core.db import session_scope
    from app.models import LlmCache
    from app.services.llm_cache import PostgresEditCache

    cache, key = PostgresEditCache(), f"test:{uuid.uuid4().hex}"
    assert cache.get(key) is None
    cache.put(key, {"title": "First", "tags": ["a"]})
    assert cache.get(key) == {"title": "First", "tags": ["a"]}
    cache.put(key, {"title": "Second"})  # a second writer of the same key wins, without an error
    assert cache.get(key) == {"title": "Second"}
    with session_scope() as session:
        assert session.get(LlmCache, key).result == {"title": "Second"}


@pytest.mark.postgres
def test_cached_edits_older_than_the_retention_are_deleted_and_the_rest_kept(stack_env):
    from datetime import datetime, timedelta, timezone

    from app.core.db import session_scope
    from app.models import LlmCache
    from app.tasks.ops import prune_llm_cache

    now = datetime.now(timezone.utc)
    old, recent = f"test:old:{uuid.uuid4().hex}", f"test:recent:{uuid.uuid4().hex}"
    with session_scope() as session:
        session.add(LlmCache(key=old, result={"title": "Old"}, created_at=now - timedelta(days=91)))
        session.add(LlmCache(key=recent, result={"title": "Recent"}, created_at=now - timedelta(days=89)))

    assert prune_llm_cache(days=0) == 0  # 0: kept forever
    assert prune_llm_cache(days=90) >= 1
    with session_scope() as session:
        assert session.get(LlmCache, old) is None
        assert session.get(LlmCache, recent).result == {"title": "Recent"}
