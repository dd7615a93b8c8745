"""Headless Chromium (Debian's chromium package) driven by Playwright, on the test API."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import require, starts

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="session")
@starts("browser")
def browser():
    require(Path(CHROMIUM).exists(), "Chromium", "install the Debian packages chromium and chromium-driver")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def editor(api):
    """An editor account: (e-mail, password)."""
    from tests.conftest import make_user

    return make_user("editor")


@pytest.fixture
def page(browser, api):
    """A fresh browser tab on the API (no session storage); fails the test on any script error or
    Content-Security-Policy violation the page causes."""
    context = browser.new_context(base_url=api, viewport={"width": 1400, "height": 2200})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    tab.on(
        "console",
        lambda msg: problems.append(f"console {msg.type}: {msg.text}")
        if msg.type == "error" and "401" not in msg.text
        else None,
    )
    yield tab
    context.close()
    assert not problems, problems


def screenshot(page, name: str, locator=None) -> Path:
    """tests/artifacts/<name>.png: the viewport (tall enough for a run page; a full-page capture would
    leave the sandboxed preview frames blank), or one element."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    (locator or page).screenshot(path=str(path))
    return path


def log_in(page, email: str, password: str, *, start: str = "/ui/") -> None:
    page.goto(start)
    page.wait_for_url("**/ui/login?next=*")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#login-submit")
    page.wait_for_url(f"**{start}")
