"""What lands on the site, through real workers and the offline editor (no OPENAI_API_KEY): tags
only from the document and the site's own terms and no new site terms by default, the featured image
chosen and kept out of the body, media attached to their post, slugs in six scripts.

Every outcome is read back from the site (REST, context=edit).
"""

from __future__ import annotations

import io
from urllib.parse import quote, unquote

import pytest
from docx import Document
from docx.shared import Inches

from tests.support import wait_run
from tests.wordpress.conftest import (
    make_site,
    picture,
    publish_step,
    published,
    submit,
    tag_count,
    tag_names,
    wp_get,
)

pytestmark = [pytest.mark.wordpress, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]


def article_docx(
    title: str,
    paragraphs: list[str],
    *,
    headings: list[str] = (),
    keywords: str = "",
    images: list[tuple[bytes, float]] = (),
) -> bytes:
    """A .docx: the title as a heading, each heading followed by the paragraphs, then the images
    (bytes, width in inches)."""
    doc = Document()
    doc.core_properties.title = title
    doc.core_properties.keywords = keywords
    doc.add_heading(title, level=1)
    for heading in headings or [""]:
        if heading:
            doc.add_heading(heading, level=2)
        for text in paragraphs:
            doc.add_paragraph(text)
    for data, width in images:
        doc.add_picture(io.BytesIO(data), width=Inches(width))
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()








def forget_terms() -> None:
    """The test changed the site's terms behind Copydesk's back: the editors ask the site again."""
    from app.services.sites import env_wordpress_site, forget_site_terms

    forget_site_terms(env_wordpress_site())




# --- tags ---------------------------------------------------------------------------------------------

HARBOUR = [
    "The Lighthouse Keepers met on Monday to plan the repairs of the old quay after the winter storm.",
    "Hours Monday to Saturday stay the same, and the Lighthouse Keepers will keep the visitor centre open.",
    "The Ferry Timetable changes from June, when the Lighthouse Keepers expect the first summer visitors.",
]


def test_offline_tags_only_from_the_document_and_the_sites_terms_and_no_new_terms(
    client, admin_client, wp_stack, wordpress
):
    with wordpress.client() as c:
        for name in ("Lighthouse Keepers", "Ferry Timetable", "Unrelated Topic"):
            c.post("wp/v2/tags", json={"name": name})  # 400 term_exists when an earlier test made it
    forget_terms()
    before = tag_count(wordpress)
    data = article_docx("Notes from the coast", HARBOUR, keywords="Tidal Energy")
    run, result, post = published(client, wordpress, data, "coast.docx")

    # The post's tags are the site's own terms that the text mentions (other tests' terms too, when
    # it mentions them); nothing new on the site.
    names = tag_names(wordpress, post["tags"])
    assert {"Ferry Timetable", "Lighthouse Keepers"} <= set(names) and "Unrelated Topic" not in names
    text = " ".join(HARBOUR).casefold()
    assert all(name.casefold() in text for name in names)
    assert tag_count(wordpress) == before and result["terms_created"] == []
    # The document's keywords property was proposed, and left out with a warning: the offline
    # editor makes no site term unless the site says so.
    article = client.get(f"/articles/{run['article_id']}").json()
    assert article["tags"][0] == "Tidal Energy" and sorted(article["tags"][1:]) == names
    assert "tags:Tidal Energy" in result["terms_left_out"]
    (warning,) = [w for w in run["warnings"] if w.startswith("Tags not on")]
    assert "'Tidal Energy'" in warning and "offline editor" in warning and "'sender_and_llm'" in warning

    # A site that allows it (create_terms: always) gets the offline editor's new terms.
    site = make_site(admin_client, wordpress, options={"create_terms": "always"})
    try:
        data = article_docx("Tidal power for the quay", HARBOUR[:2], keywords="Tidal Energy")
        run, result, post = published(client, wordpress, data, "tidal.docx", site=site["name"])
        assert "Tidal Energy" in tag_names(wordpress, post["tags"])
        assert "tags:Tidal Energy" in result["terms_created"]
        assert tag_count(wordpress) == before + len(result["terms_created"])
    finally:
        admin_client.delete(f"/sites/{site['id']}")


# --- the featured image and media ------------------------------------------------------------------


def shapes(seed: int) -> tuple[bytes, bytes, bytes]:
    """An icon, a strip and a photo (the one to feature)."""
    return picture(seed, (16, 16)), picture(seed + 1, (716, 22)), picture(seed + 2, (640, 480))


def media_of(wordpress, post_id: int) -> list[dict]:
    return wp_get(wordpress, "wp/v2/media", parent=post_id, per_page=100).json()


def test_featured_image_chosen_out_of_the_body_and_media_attached(client, admin_client, wp_stack, wordpress):
    icon, strip, photo = shapes(401)
    paragraphs = ["A paragraph long enough to be an article's opening, with several words in it."]
    data = article_docx("Three pictures", paragraphs, images=[(icon, 0.2), (strip, 6), (photo, 3)])
    run, result, post = published(client, wordpress, data, "pictures.docx")

    media = {item["id"]: item for item in media_of(wordpress, post["id"])}  # attached: their parent is the post
    assert set(media) == set(result["media"].values()) and len(media) == 3
    assert all(item["post"] == post["id"] for item in media.values())
    featured = media[post["featured_media"]]
    assert (featured["media_details"]["width"], featured["media_details"]["height"]) == (640, 480)
    raw = post["content"]["raw"]
    assert featured["source_url"] not in raw and f'"id":{featured["id"]}' not in raw  # not shown twice
    assert sum(f'"id":{media_id}' in raw for media_id in media) == 2  # the icon and the strip stay

    # A site whose theme does not show featured images keeps it in the body.
    site = make_site(admin_client, wordpress, options={"featured_image_in_body": True})
    try:
        icon, strip, photo = shapes(411)
        data = article_docx("Three pictures again", paragraphs, images=[(icon, 0.2), (strip, 6), (photo, 3)])
        run, result, post = published(client, wordpress, data, "kept.docx", site=site["name"])
        featured = wp_get(wordpress, f"wp/v2/media/{post['featured_media']}").json()
        assert featured["source_url"] in post["content"]["raw"]
        assert featured["post"] == post["id"] and len(media_of(wordpress, post["id"])) == 3
    finally:
        admin_client.delete(f"/sites/{site['id']}")


# --- slugs in six scripts ------------------------------------------------------------------------------

SCRIPTS = {
    "zh": ("北京市图书馆将于明年春天重新开放并为市民增加三万册可以免费借阅的新书",
           ["北京市图书馆今天宣布，经过两年的翻修，图书馆将于明年春天重新开放。新馆将增加三万册新书。"]),
    "ja": ("東京都の新しい市立図書館が来年春に開館する予定で蔵書は約三十万冊になる見込み",
           ["東京都は二十日、新しい市立図書館を来年春に開館すると発表した。図書館は約三十万冊の本を所蔵する予定だ。"]),
    "ko": ("서울시 새 도서관 내년 봄 개관 예정 장서 삼십만 권 규모로 시민에게 무료로 개방된다",
           ["서울시는 새 시립 도서관을 내년 봄에 개관한다고 발표했다. 도서관은 약 삼십만 권의 책을 소장할 예정이다."]),
    "ru": ("Городская библиотека откроется весной после долгой реконструкции и получит новые книги",
           ["Городская библиотека откроется весной после двух лет реконструкции. Читатели получат тысячи новых книг."]),
    "de": ("Die Straßenbahnfreunde beschließen den Ausbau der Bürgerbibliothek im Frühjahr nächsten Jahres",
           ["Die Straßenbahnfreunde haben am Montag beschlossen, die Bürgerbibliothek im Frühjahr auszubauen."]),
    "ar": ("المكتبة العامة في المدينة تفتح أبوابها من جديد في الربيع المقبل بعد أعمال تجديد طويلة",
           ["أعلنت المدينة اليوم أن المكتبة العامة ستفتح أبوابها من جديد في الربيع المقبل بعد عامين من أعمال التجديد."]),
}  # fmt: skip


def test_titles_in_six_scripts_keep_their_words_in_utf8_slugs_cut_between_words(client, wp_stack, wordpress):
    from app.documents.words import words

    runs = {
        language: submit(client, article_docx(title, body), f"{language}.docx", status="publish")["run"]["id"]
        for language, (title, body) in SCRIPTS.items()
    }
    for language, run_id in runs.items():
        title = SCRIPTS[language][0]
        run = wait_run(client, run_id)
        assert run["state"] == "succeeded", (language, run["error"])
        slug = client.get(f"/articles/{run['article_id']}").json()["slug"]
        post = wp_get(wordpress, f"wp/v2/posts/{publish_step(run)['result']['post_id']}").json()

        # The slug is the title's first words, whole, in its own script, within 60 characters and
        # 200 bytes once percent-encoded; the next word would not have fitted.
        title_words = [w.lower() for w in words(title)]
        parts = slug.split("-")
        assert parts == title_words[: len(parts)] and len(parts) < len(title_words), (language, slug)
        longer = f"{slug}-{title_words[len(parts)]}"
        assert len(slug) <= 60 and len(quote(slug, safe="-")) <= 200
        assert len(longer) > 60 or len(quote(longer, safe="-")) > 200, (language, slug)

        # WordPress keeps it, percent-encoded; Latin accents it folds itself, by its locale's rules
        # (remove_accents: "ß" is "s" on this en_US site, "ss" on a German one).
        if language == "de":
            assert slug == "die-straßenbahnfreunde-beschließen-den-ausbau-der"
            assert post["slug"] == wordpress.php(f"echo sanitize_title({slug!r});").strip()
            assert post["slug"] == "die-strasenbahnfreunde-beschliesen-den-ausbau-der"
        else:
            assert post["slug"] == quote(slug, safe="-").lower() and unquote(post["slug"]) == slug, language
        assert post["link"].rstrip("/").endswith(post["slug"]) and post["status"] == "publish"
