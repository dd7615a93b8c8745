"""What phase 2 added to the OpenAI editor, against the OpenAI-compatible test server: parts of long
articles cached (a resume pays only for what failed), the spending carried by an error, errors that
tell the caller not to retry, the title not repeated in the body, images in figures in the diff."""

from __future__ import annotations

import pytest

from app.core.errors import RateLimited, ServiceUnavailable
from app.documents import word_to_article
from app.integrations.llm import CachedEditor, EditRequest, MemoryEditCache, OfflineEditor, diff_html, markup
from tests.llm.documents import press_release, sectioned

pytestmark = pytest.mark.llm


def sectioned_request(seed: int) -> EditRequest:
    converted = word_to_article(sectioned(seed)[0], "districts.docx")
    return EditRequest(html=converted.html, text=converted.text, title=converted.title)


def part_numbers(requests) -> list[str]:
    import re

    out = []
    for r in requests:
        found = re.search(r"part (\d+) of (\d+)", r["json"]["messages"][-1]["content"])
        out.append(found.group(1) if found else "fields")
    return out


def test_a_failed_long_edit_keeps_its_parts_and_the_next_pays_only_the_rest(llm_server, make_openai_editor):
    cache = MemoryEditCache()
    llm_server.queue({}, {}, {"status": 500}, {"status": 500})  # parts 1 and 2 answer, part 3 fails twice
    first = CachedEditor(make_openai_editor(chunk_tokens=200, max_attempts=2, part_cache=cache), cache)
    with pytest.raises(ServiceUnavailable) as caught:
        first.edit(sectioned_request(11))
    assert "(after 2 attempts)" in caught.value.message
    spent = caught.value.usage  # what the failed edit cost: on the run, not lost with the error
    assert spent.requests == 4 and spent.prompt_tokens > 0 and spent.cost_usd > 0
    assert part_numbers(llm_server.chat_requests) == ["1", "2", "3", "3"]
    assert len(cache) == 2  # the two parts that passed the checks

    llm_server.reset()
    second = CachedEditor(make_openai_editor(chunk_tokens=200, part_cache=cache), cache)
    result = second.edit(sectioned_request(11))
    assert part_numbers(llm_server.chat_requests) == ["3", "fields"]
    assert result.chunks == 3 and result.cached_parts == 2 and not result.cached
    assert result.usage.requests == 2
    assert markup.headings_of(result.html) == ["District 1", "District 2", "District 3"]
    assert "To keep the budget" in result.html and "In order to" not in result.html

    llm_server.reset()  # the whole edit is cached now: no request at all
    again = second.edit(sectioned_request(11))
    assert llm_server.chat_requests == [] and again.cached and again.cached_parts == 3
    assert again.html == result.html


def test_a_rate_limit_that_outlasts_the_attempts_is_final_not_handed_up(llm_server, make_openai_editor):
    llm_server.rate_limit(retry_after_ms=10, times=5)
    with pytest.raises(ServiceUnavailable) as caught:
        make_openai_editor(max_attempts=3).edit(sectioned_request(12))
    assert not isinstance(caught.value, RateLimited)  # a workflow retrying rate_limited leaves it
    assert "429" in caught.value.message and "still rate limited after 3 attempts" in caught.value.message
    assert caught.value.retry_after is None and caught.value.details["attempts"] == 3
    assert len(llm_server.chat_requests) == 3


def test_a_long_retry_after_is_handed_up_with_what_it_cost(llm_server, make_openai_editor):
    llm_server.rate_limit(retry_after=120)
    with pytest.raises(RateLimited) as caught:
        make_openai_editor(max_wait=30).edit(sectioned_request(13))
    assert caught.value.retry_after == 120 and caught.value.usage.requests == 1


def test_a_leading_heading_that_becomes_the_title_is_not_repeated_in_the_body(llm_server, make_openai_editor):
    html = "<h1>Budget day in Springfield</h1><p>The council of Springfield met on Monday.</p>"
    result = make_openai_editor().edit(EditRequest(html=html, text="", title=""))  # no title of its own
    assert result.title == "Budget day in Springfield"
    assert markup.headings_of(result.html) == [] and "council of Springfield" in result.html


def test_the_diff_shows_an_image_dropped_from_a_figure():
    converted = word_to_article(press_release(14)[0], "press.docx")
    original = OfflineEditor().edit(EditRequest(html=converted.html, text="", title=converted.title)).html
    without_image = original.replace(original[original.rindex("<figure>") :], "")
    changes = diff_html(original, without_image)
    assert changes.changed_blocks == 1
    assert [op.op for op in changes.ops] == ["equal", "delete"]
    assert changes.ops[1].original == [f"figure: [image copydesk-image:{converted.images[1].key}]"]
    captioned = [line for line in markup.block_texts(original) if line.startswith("figure:")][0]
    assert captioned.endswith("] The plant at dawn")
