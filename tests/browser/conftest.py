"""Browser tests: Playwright (sync API) driving Debian's Chromium against the gateway.

The gateway URL comes from the test stack's session fixture in ``tests/conftest.py``; set
``BROWSER_BASE_URL`` to point the tests at another running gateway instead (e.g. ``make up``'s
http://127.0.0.1:8080). Screenshots go to ``test-output/screenshots/``. Chromium is never
downloaded: ``/usr/bin/chromium`` (apt package ``chromium``) is launched headless.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PASSWORD = "correct-horse-battery-42"

expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def base_url(request) -> str:
    override = os.environ.get("BROWSER_BASE_URL")
    if override:
        return override.rstrip("/")
    stack = request.getfixturevalue("stack")
    url = getattr(stack, "gateway_url", None) or (stack.get("gateway_url") if isinstance(stack, dict) else None)
    return str(url or stack).rstrip("/")


@pytest.fixture(scope="session")
def browser() -> Browser:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class PageProblems:
    """Console errors, CSP violations and uncaught exceptions seen by a page."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda exc: self.messages.append(f"uncaught: {exc}"))
        page.on(
            "console",
            lambda msg: self.messages.append(f"console {msg.type}: {msg.text}") if self.unexpected(msg) else None,
        )

    @staticmethod
    def unexpected(msg) -> bool:
        # Chromium logs every 4xx response; those are the API answering and the page shows them.
        return msg.type == "error" and not re.search(r"status of 4\d\d", msg.text)


@pytest.fixture
def open_page(browser: Browser, base_url: str):
    """``open_page(viewport=...)`` -> a Page in a fresh browser context (one user each)."""
    contexts = []
    problems = PageProblems()

    def factory(viewport: dict | None = None, allowed_errors: tuple[str, ...] = ()) -> Page:
        context = browser.new_context(base_url=base_url, viewport=viewport or {"width": 1100, "height": 900})
        contexts.append((context, allowed_errors))
        page = context.new_page()
        problems.watch(page)
        return page

    factory.problems = problems
    yield factory
    for context, _ in contexts:
        context.close()
    allowed = tuple(a for _, al in contexts for a in al)
    unexpected = [m for m in problems.messages if not any(a in m for a in allowed)]
    assert not unexpected, f"the page reported errors: {unexpected}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


class ApiUser:
    """A user driven through the public API directly (set-up and 'direct request' checks)."""

    def __init__(self, base_url: str, username: str, password: str = PASSWORD):
        self.base = base_url
        self.username = username
        self.password = password
        self.http = requests.Session()
        self.http.headers["Accept"] = "application/hal+json, application/json;q=0.9"
        self.links = self.http.get(f"{base_url}/api/v3/", timeout=10).json()["_links"]

    def url(self, rel_or_href: str) -> str:
        href = self.links[rel_or_href]["href"] if rel_or_href in self.links else rel_or_href
        return self.base + href

    def register(self) -> ApiUser:
        r = self.http.post(self.url("register"), json={"username": self.username, "password": self.password}, timeout=10)
        assert r.status_code == 201, r.text
        return self.login()

    def login(self) -> ApiUser:
        r = self.http.post(self.url("token"), json={"username": self.username, "password": self.password}, timeout=10)
        assert r.status_code == 200, r.text
        self.http.headers["Authorization"] = f"Bearer {r.json()['access']}"
        return self

    def post(self, href: str, body: dict) -> requests.Response:
        return self.http.post(self.url(href), json=body, timeout=10)

    def get(self, href: str) -> requests.Response:
        return self.http.get(self.url(href), timeout=10)


def ui_register(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/#/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".whoami")).to_contain_text(username)


def ui_login(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/#/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".whoami")).to_contain_text(username)


def ui_create_poll(page: Page, question: str, choices: list[str], *, open_now: bool = False) -> None:
    page.get_by_role("link", name="New poll").first.click()
    expect(page.get_by_role("heading", name="New poll")).to_be_visible()
    page.get_by_label("Question").fill(question)
    for index, text in enumerate(choices):
        if index >= 2:
            page.get_by_role("button", name="Add another choice").click()
        page.get_by_label(f"Choice {index + 1}", exact=True).fill(text)
    if open_now:
        page.get_by_label("Open the poll for voting right away").check()
    page.get_by_role("button", name="Create poll").click()
    expect(page.get_by_role("heading", name=question)).to_be_visible()


def results_row(page: Page, choice_text: str):
    return page.locator("#results li.result").filter(has_text=choice_text)
