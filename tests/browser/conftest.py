"""Real-browser tests: Debian's Chromium driven by Playwright (never a downloaded browser).

Without /usr/bin/chromium they skip, saying how to install it; with REQUIRE_BROWSER_TESTS=1
(set by .ci/run) that skip becomes a failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from conftest import PASSWORD

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OUTPUT = Path(settings.BASE_DIR) / "test-results"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        message = (
            f"browser tests need Chromium at {CHROMIUM}: "
            "install it with `apt-get update && apt-get install -y chromium`"
        )
        if os.environ.get("REQUIRE_BROWSER_TESTS"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the test body's ORM
    # calls are still plain synchronous code, so Django's async guard is lifted here only.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


def watch_console(page: Any, problems: list[str]) -> None:
    """Collect what the browser refused (CSP) or failed on (JavaScript errors)."""
    page.on(
        "console",
        lambda message: (
            problems.append(f"{message.text} @ {message.location}")
            if message.type == "error" and "favicon" not in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))


@pytest.fixture
def page(browser: Any, live_server: Any) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1200, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    problems: list[str] = []
    watch_console(page, problems)
    yield page
    context.close()
    # A test that simulates failures names the console errors it expects.
    expected = getattr(page, "expected_console_errors", [])
    problems = [p for p in problems if not any(text in p for text in expected)]
    assert not [p for p in problems if "Content Security Policy" in p or "Error" in p], problems


@pytest.fixture
def screenshot(request: pytest.FixtureRequest, page: Any) -> Any:
    """Save a full-page screenshot (of ``page`` or another) to test-results/<test>/<name>.png."""
    folder = OUTPUT / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)

    def take(name: str, of: Any = None) -> Path:
        path = folder / f"{name}.png"
        (of or page).screenshot(path=str(path), full_page=True)
        return path

    return take


def sign_in(page: Any, username: str) -> None:
    page.goto("/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)


@pytest.fixture
def asgi_server(transactional_db: None) -> Iterator[str]:
    """The app under uvicorn (streamed responses need ASGI; the live server is WSGI)."""
    from tests.servers import served_app

    with served_app(workers=1) as base:
        yield base


@pytest.fixture
def asgi_page(browser: Any, asgi_server: str) -> Iterator[Any]:
    context = browser.new_context(base_url=asgi_server, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    watch_console(page, problems)
    yield page
    context.close()
    assert not [p for p in problems if "Content Security Policy" in p or "Error" in p], problems
