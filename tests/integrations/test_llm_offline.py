"""The pure parts of the LLM package: the offline editor on real-looking Word documents, the checks,
chunking, the cache key and serialisation, the diff, pricing. No server needed."""

from __future__ import annotations

import io
import json
from urllib.parse import quote

import pytest

from app.documents.convert import word_to_article
from app.documents.result import placeholder_keys
from app.integrations.llm import (
    EditRequest,
    EditResult,
    MemoryEditCache,
    OfflineEditor,
    SiteTerm,
    Usage,
    cache_key,
    check_edit,
    diff_html,
    editor_from_settings,
    estimate_cost,
    estimate_tokens,
    markup,
    slugify,
    split_into_chunks,
)
from app.integrations.llm.checks import names_of, numbers_of

# --- documents built here, the way editors write them ---------------------------------------------


def png_bytes(color=(30, 120, 200)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, "PNG")
    return buffer.getvalue()


def press_release_docx() -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = "Springfield opens its water recycling plant"
    document.core_properties.keywords = "water; recycling"
    document.add_heading("Springfield opens its water recycling plant", level=0)
    document.add_paragraph("By Kent Brockman")
    document.add_paragraph("12 May 2025")
    document.add_paragraph(
        "The Springfield council opened the new water recycling plant on Tuesday, three years after "
        "the drought of 2022. Mayor Jane Quimby said the plant will serve 40,000 homes and cut the "
        "town's water bill by 12 percent. The plant recycles the water of the old Hydroworks site."
    )
    document.add_paragraph().add_run().add_picture(io.BytesIO(png_bytes()))
    document.add_heading("What it costs", level=2)
    document.add_paragraph(
        "The plant cost 12.5 million dollars, paid by the state and by a water recycling levy. "
        "Environment groups welcomed the plant, which filters 9 million litres of water a day."
    )
    document.add_heading("What comes next", level=2)
    document.add_paragraph(
        "A second water recycling plant in Shelbyville is planned for 2028, if the levy is renewed."
    )
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def request_from_docx(data: bytes, **changes) -> tuple[EditRequest, object]:
    converted = word_to_article(data, "manuscript.docx")
    fields = dict(
        html=converted.html,
        text=converted.text,
        title=converted.title,
        keywords=converted.metadata.keywords,
        language=converted.metadata.language,
    )
    fields.update(changes)
    return EditRequest(**fields), converted


def test_offline_editor_on_a_press_release():
    request, converted = request_from_docx(
        press_release_docx(), categories=["Sport", "Environment", "Politics"]
    )
    result = OfflineEditor().edit(request)

    assert result.engine == "offline" and result.usage == Usage() and result.warnings == []
    assert result.title == "Springfield opens its water recycling plant"
    assert result.slug == "springfield-opens-its-water-recycling-plant"
    # The body is cleaned, not rewritten: the same words, minus the heading that repeats the title.
    assert markup.headings_of(result.html) == ["What it costs", "What comes next"]
    original_lines = [line for line in markup.text_of(converted.html).splitlines() if line != result.title]
    assert markup.text_of(result.html).splitlines() == original_lines
    assert placeholder_keys(result.html) == [converted.images[0].key]
    # The excerpt opens with the first real paragraph, not the byline or the date.
    assert result.excerpt.startswith(
        "The Springfield council opened the new water recycling plant on Tuesday"
    )
    assert len(result.excerpt) <= 300 and result.excerpt.endswith(".")
    # The document's own keywords come first, then extracted ones.
    assert result.tags[:2] == ["water", "recycling"]
    assert 3 <= len(result.tags) <= 8 and "Springfield" in " ".join(result.tags)
    assert result.category == "Environment"


def test_offline_editor_without_title_or_heading_uses_the_first_line():
    html = (
        "<p>Annual report of the garden club</p>"
        "<p>The garden club of Ogdenville planted 120 trees this year. Members met on 14 Saturdays "
        "and welcomed 35 new members.</p>"
    )
    result = OfflineEditor().edit(EditRequest(html=html, text=markup.text_of(html)))
    assert result.title == "Annual report of the garden club"
    assert result.excerpt.startswith("The garden club of Ogdenville planted 120 trees")
    assert result.category is None
    assert "Annual report" in result.html  # a paragraph, not a heading: kept


def test_offline_editor_summary_excerpt():
    html = (
        "<h1>Notes</h1><p>Some remarks were made about many things at the meeting today.</p>"
        "<p>The budget for solar panels doubled, and solar panels now cover the school roof.</p>"
        "<p>Lunch was served at noon in the hall by the volunteers of the parish.</p>"
        "<p>Solar panels on the school roof will pay for themselves within eight years.</p>"
    )
    result = OfflineEditor(excerpt="summary", excerpt_chars=160).edit(EditRequest(html=html, text=""))
    assert result.title == "Notes"
    assert "solar panels" in result.excerpt.lower() and len(result.excerpt) <= 160
    assert "Lunch" not in result.excerpt


def test_offline_editor_on_an_empty_document():
    result = OfflineEditor().edit(EditRequest(html="", text=""))
    assert (result.title, result.excerpt, result.tags, result.slug) == ("Untitled", "", [], "untitled")


def test_offline_editor_in_german():
    html = (
        "<h1>Neue Kläranlage in Musterstadt</h1><p>Die Stadt Musterstadt hat am Dienstag die neue "
        "Kläranlage eröffnet. Bürgermeisterin Anna Berger sagte, die Anlage versorge 40.000 Haushalte "
        "mit gereinigtem Wasser.</p>"
    )
    site_tags = [SiteTerm("Musterstadt", "musterstadt"), SiteTerm("Wasser", "wasser"), SiteTerm("Sport", "sport")]
    result = OfflineEditor().edit(EditRequest(html=html, text="", language="de", site_tags=site_tags))
    assert result.title == "Neue Kläranlage in Musterstadt"
    # The slug keeps the letters (WordPress folds them by the site's locale); none is dropped.
    assert result.slug == "neue-kläranlage-in-musterstadt"
    # Tags: phrases the title names, and the site's terms the text mentions; nothing else.
    assert result.tags[0] == "Musterstadt" and "Wasser" in result.tags and "Sport" not in result.tags
    assert all(tag.lower() not in {"die", "der", "hat"} for tag in result.tags)


# --- checks ----------------------------------------------------------------------------------------


def test_numbers_are_compared_by_their_digits():
    assert numbers_of("1,200 and 1.200 and 1200 and 3,5") == {"1200", "35"}
    assert numbers_of("in 2024, 007") == {"2024", "7"}


def test_names_skip_sentence_starts_and_noun_capitalising_languages():
    text = "The council met. Mayor Jane Quimby spoke to NASA and the Hydroworks team. Then it rained."
    assert names_of(text) == {"Jane", "Quimby", "NASA", "Hydroworks"}
    assert names_of("Die Stadt hat die Anlage eröffnet.", language="de") == set()


def test_check_edit_accepts_a_faithful_rewrite_and_lists_every_problem():
    original = markup.protect(
        '<h2>Costs</h2><p>Mayor Jane Quimby approved 1,200 dollars. <img src="copydesk-image:x"></p>'
        '<table><tr><td>a</td><td>1</td></tr></table><p><a href="https://e.org">report</a></p>'
    ).html
    faithful = (
        "<h2>What it costs</h2><p>Jane Quimby, the Mayor, approved 1200 dollars.</p>"
        '<p><img src="image:1"></p>'
        '<table><tr><td>A</td><td>1</td></tr></table><p>Read <a href="link:1">the report</a>.</p>'
    )
    assert check_edit(original, faithful) == []
    broken = (
        '<h3>Costs</h3><p>The mayor approved 1,300 dollars. <img src="image:2"></p>'
        "<table><tr><td>a</td></tr></table><p>report</p>"
    )
    problems = check_edit(original, broken)
    assert problems == [
        'images missing: keep each of <img src="image:1"> exactly once',
        "images not in the original or repeated: image:2; use each original one exactly once and invent none",
        'links missing: keep each of <a href="link:1"> exactly once',
        "the headings changed: the original has 1 (h2), the answer 1 (h3); keep every heading, its level "
        "and its order",
        "the tables changed: keep every table with its rows and columns (1 rows × 2 columns)",
        "numbers of the original missing or changed: 1, 1200",  # the table's 1 went with its column
        "numbers that are not in the original: 1300",
        "names of the original missing: Jane, Quimby",  # "Mayor" opens the sentence: not a name
    ]


# --- chunking --------------------------------------------------------------------------------------


def sections(count: int, words_per_section: int) -> str:
    paragraph = "word " * (words_per_section // 2)
    return "".join(f"<h2>Section {n}</h2><p>{paragraph}</p><p>{paragraph}</p>" for n in range(count))


def test_a_short_article_is_one_chunk():
    html = sections(2, 100)
    assert split_into_chunks(html, 6_000) == ["".join(markup.top_level_blocks(html))]
    assert split_into_chunks("", 6_000) == []


def test_chunks_are_cut_at_headings_under_the_budget_and_join_back():
    html = sections(30, 400)
    chunks = split_into_chunks(html, 2_000)
    assert len(chunks) > 5
    assert all(estimate_tokens(chunk) <= 2_000 for chunk in chunks)
    assert all(chunk.startswith("<h2>") for chunk in chunks)
    assert "".join(chunks) == "".join(markup.top_level_blocks(html))


def test_a_section_longer_than_the_budget_is_cut_between_paragraphs_never_inside_one():
    huge = "<p>" + "word " * 3_000 + "</p>"
    html = f"<h2>Long</h2><p>{'a ' * 500}</p><p>{'b ' * 500}</p>{huge}<h2>Short</h2><p>end</p>"
    chunks = split_into_chunks(html, 1_000)
    assert huge in chunks  # alone, over budget: blocks are never cut
    assert "".join(chunks) == "".join(markup.top_level_blocks(html))


# --- cache key, serialisation, cost ---------------------------------------------------------------


def test_cache_key_covers_content_instructions_model_and_temperature():
    base = EditRequest(html="<p>a</p>", text="a", instructions="Polish", model="gpt-4o-mini", temperature=0.2)
    key = cache_key(base)
    assert key == cache_key(EditRequest(**vars(base))) and len(key) == 64
    variants = [
        {"html": "<p>b</p>"},
        {"instructions": "Shorten"},
        {"model": "gpt-4o"},
        {"temperature": 0.3},
        {"categories": ["News"]},
        {"title": "Another"},
    ]
    keys = {cache_key(EditRequest(**{**vars(base), **change})) for change in variants}
    assert len(keys) == len(variants) and key not in keys
    assert cache_key(base, namespace="http://other/v1") != key


def test_edit_result_round_trips_through_json():
    result = EditResult(
        html="<p>x</p>", title="T", excerpt="E", slug="t", tags=["a"], category=None, engine="openai:m",
        warnings=["w"], usage=Usage(1, 2, 3, 0.5, "n"), kept_original_body=True, chunks=2,
    )  # fmt: skip
    data = json.loads(json.dumps(result.to_dict()))
    assert EditResult.from_dict(data) == result
    assert EditResult.from_dict({**data, "added_later": 1}) == result


def test_memory_cache_forgets_the_least_recently_used():
    cache = MemoryEditCache(max_entries=2)
    cache.put("a", {"n": 1})
    cache.put("b", {"n": 2})
    assert cache.get("a") == {"n": 1}
    cache.put("c", {"n": 3})
    assert cache.get("b") is None and cache.get("a") == {"n": 1} and len(cache) == 2
    cache.get("a")["n"] = 99  # callers get copies
    assert cache.get("a") == {"n": 1}


@pytest.mark.parametrize(
    ("model", "cost", "note"),
    [
        ("gpt-4o-mini", 0.15 + 0.60, ""),
        ("gpt-4o-mini-2024-07-18", 0.15 + 0.60, ""),
        ("gpt-4o", 2.50 + 10.00, ""),
        ("llama3.1:8b", 0.0, "no price known for model 'llama3.1:8b': cost recorded as 0"),
    ],
)
def test_estimated_cost(model, cost, note):
    assert estimate_cost(model, 1_000_000, 1_000_000) == (pytest.approx(cost), note)


# --- diff ------------------------------------------------------------------------------------------


def test_diff_shows_what_the_model_changed():
    original = (
        '<h2>Plan</h2><p>In order to save water, the council acted.</p><p><img src="copydesk-image:k"></p>'
        "<p>Unchanged paragraph.</p>"
    )
    edited = "<h2>Plan</h2><p>To save water, the council acted.</p><p>Unchanged paragraph.</p><p>New.</p>"
    changes = diff_html(original, edited)
    assert changes.changed and changes.changed_blocks == 3
    assert [op.op for op in changes.ops] == ["equal", "replace", "equal", "insert"]
    replaced = changes.ops[1]
    assert replaced.original == [
        "p: In order to save water, the council acted.",
        "p: [image copydesk-image:k]",
    ]
    assert ("delete", "In order to") in replaced.words and ("insert", "To") in replaced.words
    assert "-p: [image copydesk-image:k]" in changes.unified and "+p: New." in changes.unified
    assert json.loads(json.dumps(changes.to_dict()))["ops"][1]["op"] == "replace"
    assert not diff_html(original, original).changed


# --- choosing the editor ---------------------------------------------------------------------------


def test_editor_from_settings_without_a_key_is_offline():
    from app.core.config import load_settings

    settings = load_settings(OPENAI_API_KEY="")
    assert isinstance(editor_from_settings(settings, model="gpt-4o"), OfflineEditor)


# --- what the offline editor gives a site (issue 16) -------------------------------------------------


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("中国经济增长放缓", "中国-经济-增长-放-缓"),
        ("東京に新しい図書館が開館", "東京-に-新しい-図書館-が-開館"),
        ("서울시, 새 도서관 개관", "서울시-새-도서관-개관"),
        ("Москва открывает новую библиотеку", "москва-открывает-новую-библиотеку"),
        ("Die Größe der Straße", "die-größe-der-straße"),
        ("افتتاح مكتبة جديدة في القاهرة", "افتتاح-مكتبة-جديدة-في-القاهرة"),
    ],
)
def test_slugs_keep_the_titles_meaning_in_every_script(title, slug):
    assert slugify(title) == slug


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("中国经济增长放缓", "zhong-guo-jing-ji-zeng-zhang-fang-huan"),
        ("서울시, 새 도서관 개관", "seoulsi-sae-doseogwan-gaegwan"),
        ("Москва открывает новую библиотеку", "moskva-otkryvaet-novuu-biblioteku"),
        ("Die Größe der Straße", "die-grosse-der-strasse"),
    ],
)
def test_slugs_in_latin_letters_when_a_site_asks(title, slug):
    assert slugify(title, transliterate=True) == slug


def test_slugs_are_cut_between_words_within_the_limits():
    title = "Get your documents published from Word and ready for print in a few easy steps"
    assert slugify(title) == "get-your-documents-published-from-word-and-ready-for-print"  # not "…ready-for-pr"
    assert len(slugify(title)) <= 60
    chinese = slugify("国务院新闻办公室今天举行新闻发布会介绍经济运行情况以及下一步政策安排和工作重点" * 2)
    assert len(quote(chinese, safe="-")) <= 200 and not chinese.endswith("-")
    assert slugify("!!!") == "untitled"


def test_offline_tags_come_only_from_keywords_headings_and_site_terms():
    html = (
        "<h1>Budget vote</h1><p>The council of Ogdenville voted the budget on Monday. The budget "
        "funds two schools, a bridge and a new library, and the council thanked the volunteers.</p>"
        "<h2>Schools</h2><p>Both schools get new roofs before winter, said the council.</p>"
    )
    site = [SiteTerm("Council", "council"), SiteTerm("New Library", "new-library"), SiteTerm("Sport", "sport")]
    request = EditRequest(html=html, text="", keywords=["finance"], site_tags=site)
    tags = OfflineEditor().edit(request).tags
    assert tags[0] == "finance"  # the document's keywords property first
    assert "budget" in [t.casefold() for t in tags] and "schools" in [t.casefold() for t in tags]  # in headings
    assert "Council" in tags and "New Library" in tags  # the site's own spelling, found in the text
    assert "Sport" not in tags and len(tags) <= 5
    # Nothing else: every tag is a keyword, names a heading, or is a site term.
    allowed = {"finance", "budget", "budget vote", "vote", "schools", "council", "new library"}
    assert {t.casefold() for t in tags} <= allowed
    # Without keywords, headings that name a topic, or site terms: no tags at all.
    bare = "<p>The council of Ogdenville voted the budget on Monday and thanked the volunteers warmly.</p>"
    assert OfflineEditor().edit(EditRequest(html=bare, text="")).tags == []


def test_a_tag_that_matches_a_site_term_by_slug_takes_its_name():
    site = [SiteTerm("Économie", "economie")]
    html = "<p>Un texte sur l'économie de la ville, qui parle de l'économie locale et des emplois.</p>"
    result = OfflineEditor().edit(EditRequest(html=html, text="", keywords=["economie"], site_tags=site))
    assert result.tags == ["Économie"]


def test_the_offline_excerpt_is_the_first_real_paragraph():
    html = (
        '<p><a href="#_Toc1">What can you do with it?</a>4</p>'
        '<p><a href="#_Toc2">Selecting your insertion point</a> 5</p>'
        "<h2>What can you do with it?</h2>"
        "<p>By Kent Brockman</p><p>Monday, 12 May 2025, Springfield</p>"
        "<p>Figure 1: The plant at dawn, seen from the river bank near the old mill.</p>"
        "<figure><figcaption>The plant at dawn</figcaption></figure>"
        "<p>The council opened the new plant on Tuesday, three years after the drought of 2022.</p>"
        "<p>It will serve 40,000 homes.</p>"
    )
    result = OfflineEditor().edit(EditRequest(html=html, text="", title="Springfield's plant"))
    assert result.excerpt == "The council opened the new plant on Tuesday, three years after the drought of 2022."


def test_a_japanese_excerpt_is_cut_at_a_sentence():
    first = "東京都は二十日、新しい市立図書館を来年春に開館すると発表した。"
    html = f"<h1>新しい図書館</h1><p>{first}図書館は渋谷区の旧庁舎を改修し、約三十万冊の本を所蔵する予定だ。</p>"
    result = OfflineEditor(excerpt_chars=50).edit(EditRequest(html=html, text=""))
    assert result.title == "新しい図書館" and result.slug == "新しい-図書館"
    assert result.excerpt == first
