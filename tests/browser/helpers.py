"""Helpers of the browser tests: unique names, screenshots, API users and UI steps."""

from __future__ import annotations

import uuid
from pathlib import Path

import requests
from playwright.sync_api import Page, expect

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "screenshots"
PASSWORD = "correct-horse-battery-42"
PAGE_SIZE = 10  # web/src/js/views/list.js asks the API for pages of this size
# What ApiUser's requests verify the gateway's certificate against (``trust``; the browser conftest sets it).
CA_BUNDLE: Path | None = None


def trust(bundle: Path | None) -> None:
    """Verify HTTPS answers against ``bundle`` (the dev CA) instead of the system's authorities."""
    global CA_BUNDLE
    CA_BUNDLE = bundle


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


class TrustingSession(requests.Session):
    """A ``requests.Session`` verifying against ``CA_BUNDLE``: per request, since REQUESTS_CA_BUNDLE in the
    environment would otherwise win over ``session.verify`` (psf/requests#3829)."""

    def request(self, method, url, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        kwargs.setdefault("verify", str(CA_BUNDLE) if CA_BUNDLE else True)
        return super().request(method, url, *args, **kwargs)


class ApiUser:
    """A user driven through the public API directly (set-up and 'direct request' checks)."""

    def __init__(self, base_url: str, username: str, password: str = PASSWORD):
        self.base = base_url
        self.username = username
        self.password = password
        self.http = TrustingSession()
        self.http.headers["Accept"] = "application/hal+json, application/json;q=0.9"
        self.links = self.http.get(f"{base_url}/api/v3/", timeout=10).json()["_links"]

    def url(self, rel_or_href: str) -> str:
        href = self.links[rel_or_href]["href"] if rel_or_href in self.links else rel_or_href
        return self.base + href

    def register(self) -> ApiUser:
        body = {"username": self.username, "password": self.password}
        r = self.http.post(self.url("register"), json=body, timeout=10)
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
