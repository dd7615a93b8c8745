"""The editors' web page in a real browser (headless Chromium) against the real API and workers."""

from __future__ import annotations

import httpx
import pytest
import redis

from tests.conftest import login
from tests.samples import docx
from tests.support import wait_until
from tests.web.conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
LONG = 90_000  # ms


@pytest.fixture
def as_editor(api, editor):
    """The API as the same editor the browser logs in as."""
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {login(api, *editor)}"}, timeout=30) as c:
        yield c


def start(http, workflow: str, **payload) -> str:
    response = http.post(f"/workflows/{workflow}/runs", json=payload)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def wait_state(http, run_id: str, *states: str) -> dict:
    def check():
        run = http.get(f"/runs/{run_id}").json()
        return run if run["state"] in states else None

    return wait_until(check, timeout=90, interval=0.2, message=f"run {run_id} to be {states}")


def upload(page, name: str, data: bytes) -> str:
    page.set_input_files("#upload-file", files=[{"name": name, "mimeType": DOCX, "buffer": data}])
    page.click("#upload-submit")
    link = page.locator("#upload-run-link")
    link.wait_for(timeout=30_000)
    return link.get_attribute("href").rsplit("/", 1)[1]


def test_log_in_submit_watch_the_progress_and_see_the_preview(page, editor, as_editor, workers):
    from playwright.sync_api import expect

    log_in(page, *editor)
    expect(page.locator("#who")).to_contain_text(editor[0])
    expect(page.locator("#live")).to_have_text("live")
    # Record every progress the row shows, to see it move rather than only its end.
    page.evaluate(
        """() => { window.__seen = []; new MutationObserver(() => {
                 for (const p of document.querySelectorAll('#runs tbody .progress-text'))
                     window.__seen.push(p.closest('tr').dataset.runId + ' ' + p.textContent); })
             .observe(document.querySelector('#runs tbody'), {subtree: true, childList: true, characterData: true}); }"""
    )
    run_id = upload(page, "harbour-library.docx", docx("Harbour library reopens", paragraphs=40, images=12, seed=501))
    expect(page.locator("#upload-result")).to_contain_text("Submitted harbour-library.docx")

    row = page.locator(f'#runs tr[data-run-id="{run_id}"]')
    expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    run = as_editor.get(f"/runs/{run_id}").json()
    total = run["progress"]["total"]
    assert run["state"] == "succeeded" and run["progress"]["done"] == total
    expect(row.locator(".progress-text")).to_have_text(f"{total} of {total}")
    assert row.locator("progress").evaluate("p => [p.value, p.max]") == [total, total]
    seen = [s.split(" ", 1)[1] for s in page.evaluate("window.__seen") if s.startswith(run_id)]
    done_seen = [int(s.split(" of ")[0]) for s in seen]
    assert done_seen == sorted(done_seen) and seen[-1] == f"{total} of {total}", seen  # forward, to the end
    article = as_editor.get(f"/articles/{run['article_id']}").json()
    expect(row.locator("a.run-link")).to_have_text(article["title"])
    screenshot(page, "web-runs-list")

    # The bar moves with a run: one held at its approval shows part of its steps done, then all of them.
    held = start(as_editor, "t_control")
    held_row = page.locator(f'#runs tr[data-run-id="{held}"]')
    expect(held_row).to_have_attribute("data-state", "awaiting_approval", timeout=LONG)
    done, of = map(int, held_row.locator(".progress-text").text_content().split(" of "))
    assert 0 < done < of
    assert as_editor.post(f"/runs/{held}/approve").status_code == 200
    expect(held_row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    expect(held_row.locator(".progress-text")).to_have_text(f"{of} of {of}")
    held_seen = [int(s.split(" ", 1)[1].split(" of ")[0]) for s in page.evaluate("window.__seen") if s.startswith(held)]
    assert done in held_seen and held_seen == sorted(held_seen) and held_seen[-1] == of, held_seen

    row.locator("a.run-link").click()
    page.wait_for_url(f"**/ui/runs/{run_id}")
    expect(page.locator("body")).to_have_attribute("data-run-state", "succeeded", timeout=LONG)
    expect(page.locator("#run-title")).to_have_text(article["title"])
    steps = page.locator("#timeline > li")
    expect(steps).to_have_count(len(run["steps"]))
    for step in run["steps"]:
        expect(page.locator(f'#timeline > li[data-step="{step["name"]}"]')).to_have_attribute("data-state", step["state"])
    expect(page.locator('#timeline > li[data-step="to_docx"]')).to_have_attribute("data-state", "skipped")
    expect(page.locator('#timeline > li[data-step="upload_image"] .items')).to_have_text("items: 12 of 12 done")
    # Preview (as edited and published) beside the original (as converted), both with their images.
    preview = page.frame_locator("#preview-frame")
    expect(preview.locator("h1.title")).to_have_text(article["title"])
    original = page.frame_locator("#original-frame")
    expect(original.locator("h1").first).to_have_text("Harbour library reopens")
    for frame in (preview, original):
        images = frame.locator("img")
        expect(images).to_have_count(12)
        wait_until(lambda f=frame: all(f.locator("img").evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")),
                   timeout=20, message="the images to load")
    expect(page.locator("#diff-summary")).to_contain_text("edited by offline")
    assert page.locator("#diff").inner_text().strip() != ""
    expect(page.locator("#approve")).to_be_disabled()
    expect(page.locator("#resume")).to_be_disabled()
    expect(page.locator("#cancel")).to_be_disabled()
    screenshot(page, "web-run-succeeded")
    screenshot(page, "web-article-side-by-side", page.locator("#article"))


def test_the_same_file_again_says_what_it_did(page, editor, as_editor, workers):
    from playwright.sync_api import expect

    log_in(page, *editor)
    data = docx("Uploaded twice", seed=541)
    first = upload(page, "twice.docx", data)
    row = page.locator(f'#runs tr[data-run-id="{first}"]')
    expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    page.select_option("#upload-status", "pending")
    second = upload(page, "twice.docx", data)
    result = page.locator("#upload-result")
    expect(result).to_contain_text("Submitted before: twice.docx, its post is updated with the new options")
    assert second != first and "/preview/" in result.get_by_text("its post").get_attribute("href")
    expect(page.locator(f'#runs tr[data-run-id="{second}"]')).to_have_attribute("data-state", "succeeded", timeout=LONG)
    assert upload(page, "twice.docx", data) == second
    expect(result).to_contain_text("Already submitted, nothing new to apply: twice.docx")


def test_approve_a_run_that_waits_and_see_its_retries(page, editor, as_editor, workers):
    from playwright.sync_api import expect

    run_id = start(as_editor, "t_control", failures=2)
    wait_state(as_editor, run_id, "awaiting_approval")
    log_in(page, *editor, start=f"/ui/runs/{run_id}")
    expect(page.locator("body")).to_have_attribute("data-run-state", "awaiting_approval")
    expect(page.locator("#run-state")).to_have_text("awaiting approval")
    flaky = page.locator('#timeline > li[data-step="flaky"]')
    expect(flaky.locator('[data-role="retries"]')).to_contain_text("3 attempts · 2 retries")
    expect(flaky.locator(".attempts li")).to_have_count(2)
    expect(flaky.locator(".attempts li").first).to_contain_text("transient failure #1")
    expect(page.locator('#timeline > li[data-step="gate"]')).to_have_attribute("data-state", "awaiting_approval")
    expect(page.locator("#cancel")).to_be_enabled()
    expect(page.locator("#resume")).to_be_disabled()
    expect(page.locator("#run-progress-text")).to_have_text("4 of 6")
    screenshot(page, "web-run-awaiting-approval")

    page.click("#approve")
    expect(page.locator("body")).to_have_attribute("data-run-state", "succeeded", timeout=LONG)
    expect(page.locator('#timeline > li[data-step="gate"]')).to_have_attribute("data-state", "succeeded")
    expect(page.locator('#timeline > li[data-step="last"]')).to_have_attribute("data-state", "succeeded")
    expect(page.locator("#run-progress-text")).to_have_text("6 of 6")  # moved on live, through the run's events
    assert page.locator("#run-progress").evaluate("p => [p.value, p.max]") == [6, 6]
    expect(page.locator("#approve")).to_be_disabled()
    run = as_editor.get(f"/runs/{run_id}").json()
    assert run["state"] == "succeeded"
    gate = next(s for s in run["steps"] if s["name"] == "gate")
    assert gate["approved_at"] is not None
    screenshot(page, "web-run-approved")


def test_reject_a_waiting_run_with_a_reason(page, editor, as_editor, workers):
    from playwright.sync_api import expect

    run_id = start(as_editor, "t_control")
    wait_state(as_editor, run_id, "awaiting_approval")
    log_in(page, *editor, start=f"/ui/runs/{run_id}")
    expect(page.locator("#reject")).to_be_enabled()
    page.fill("#reject-reason", "not for this issue <b>sorry</b>")
    page.click("#reject")
    expect(page.locator("body")).to_have_attribute("data-run-state", "cancelled", timeout=LONG)
    expect(page.locator("#run-error")).to_have_text(f"rejected by {editor[0]}: not for this issue <b>sorry</b>")
    assert as_editor.get(f"/runs/{run_id}").json()["state"] == "cancelled"


def test_the_runs_list_filters_by_state_live(page, editor, as_editor, workers):
    from playwright.sync_api import expect

    wait_state(as_editor, start(as_editor, "t_fanout", count=0), "succeeded")
    run_id = start(as_editor, "t_control")
    wait_state(as_editor, run_id, "awaiting_approval")
    log_in(page, *editor)
    row = page.locator(f'#runs tr[data-run-id="{run_id}"]')
    expect(row).to_have_attribute("data-state", "awaiting_approval")
    page.select_option("#state-filter", "succeeded")
    expect(row).to_have_count(0)
    expect(page.locator("#runs tbody tr").first).to_have_attribute("data-state", "succeeded")
    page.select_option("#state-filter", "awaiting_approval")
    expect(row).to_have_count(1)
    states = page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.state)")
    assert set(states) == {"awaiting_approval"}
    # It stays live after the filter changed: the run leaves the list when it is approved elsewhere.
    assert as_editor.post(f"/runs/{run_id}/approve").status_code == 200
    expect(row).to_have_count(0, timeout=LONG)


def test_a_failed_run_shows_its_error_and_resumes(page, editor, as_editor, workers, stack_env):
    from playwright.sync_api import expect

    run_id = start(as_editor, "t_fanout", count=4, fail_items=[2])
    wait_state(as_editor, run_id, "failed")
    log_in(page, *editor, start=f"/ui/runs/{run_id}")
    expect(page.locator("body")).to_have_attribute("data-run-state", "failed")
    expect(page.locator("#run-error")).to_contain_text("item item-2 is broken")
    each = page.locator('#timeline > li[data-step="each"]')
    expect(each).to_have_attribute("data-state", "failed")
    expect(each.locator(".attempts li")).to_contain_text(["item 2 (item-2): item item-2 is broken"])
    expect(page.locator("#resume")).to_be_enabled()
    screenshot(page, "web-run-failed")

    redis.Redis.from_url(stack_env["env"]["REDIS_URL"]).set(f"test:{run_id}:heal", "1")  # the cause is fixed
    page.click("#resume")
    expect(page.locator("body")).to_have_attribute("data-run-state", "succeeded", timeout=LONG)
    expect(each).to_have_attribute("data-state", "succeeded")
    expect(page.locator("#run-error")).to_be_hidden()
    screenshot(page, "web-run-resumed")


def test_titles_and_file_names_from_manuscripts_are_shown_as_text(page, editor, as_editor, workers):
    from playwright.sync_api import expect

    evil = '<img src=x onerror="window.__pwned=1">Budget <script>window.__pwned=2</script>'
    log_in(page, *editor)
    run_id = upload(page, '<img src=y onerror="window.__pwned=3">.docx', docx(evil, images=1, seed=666))
    wait_state(as_editor, run_id, "succeeded", "failed")
    row = page.locator(f'#runs tr[data-run-id="{run_id}"]')
    expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    assert "<img src=" in row.locator("td.title").inner_text()
    assert row.locator("td.title img, td.title script").count() == 0
    row.locator("a.run-link").click()
    page.wait_for_url(f"**/ui/runs/{run_id}")
    expect(page.locator("body")).to_have_attribute("data-run-state", "succeeded", timeout=LONG)
    expect(page.frame_locator("#original-frame").locator("h1").first).to_contain_text("Budget")
    assert "<img src=" in page.locator("#run-title").inner_text() or "Budget" in page.locator("#run-title").inner_text()
    assert page.locator("#run-title img, #run-title script, #article-fields img").count() == 0
    # Nothing from the manuscript ran: not in the page, not in the frames (sandboxed, no script).
    assert page.evaluate("window.__pwned") is None
    for frame in page.frames:
        assert frame.evaluate("window.__pwned") is None
    screenshot(page, "web-escaped-title")


def test_the_page_sends_strangers_to_the_login_and_back(page, editor, as_editor, workers):
    from playwright.sync_api import expect

    run_id = start(as_editor, "t_fanout", count=0)
    wait_state(as_editor, run_id, "succeeded")
    page.goto(f"/ui/runs/{run_id}")
    page.wait_for_url("**/ui/login?next=*")
    page.fill("#email", editor[0])
    page.fill("#password", "not the password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("wrong e-mail or password")
    assert page.evaluate("sessionStorage.getItem('copydesk.token')") is None
    page.fill("#password", editor[1])
    page.click("#login-submit")
    page.wait_for_url(f"**/ui/runs/{run_id}")
    expect(page.locator("body")).to_have_attribute("data-run-state", "succeeded")
    # The pages allow no inline or foreign script, and cannot be framed by another site.
    response = page.request.get("/ui/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    page.click("#logout")
    page.wait_for_url("**/ui/login")
    assert page.evaluate("sessionStorage.getItem('copydesk.token')") is None


def test_the_login_page_offers_no_log_out(page):
    from playwright.sync_api import expect

    page.goto("/ui/login")
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.get_by_text("Log out")).to_be_hidden()
    expect(page.locator("#login-error")).to_be_hidden()
