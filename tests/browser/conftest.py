"""Browser tests: Playwright (sync API) driving Debian's Chromium against the gateway.

The gateway URL comes from the test stack's session fixture in ``tests/conftest.py``: its HTTPS
listener (TLS 1.3, HTTP/2), trusted through the stack's development CA. Set ``BROWSER_BASE_URL`` to
point the tests at another running gateway instead (e.g. ``make up``'s https://127.0.0.1:8443, with
``BROWSER_CA_BUNDLE=.run/secrets/dev-ca.pem``). Screenshots go to ``test-output/screenshots/``.
Chromium is never downloaded: ``/usr/bin/chromium`` (apt package ``chromium``) is launched headless.

Chromium reads trust anchors from the system or an NSS database only, so rather than changing either,
it is told to accept exactly the chains carrying the dev CA's key
(``--ignore-certificate-errors-spki-list``: SHA-256 of the CA's public key; the gateway sends the CA
with its certificate); any other certificate still fails, as does plain HTTP's absence of one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from . import helpers
from .helpers import SCREENSHOTS

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

expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def ca_bundle(request) -> Path | None:
    """The CA the gateway's certificate is issued by: ``BROWSER_CA_BUNDLE``, else the test stack's dev CA."""
    if os.environ.get("BROWSER_BASE_URL"):
        override = os.environ.get("BROWSER_CA_BUNDLE")
        return Path(override) if override else None
    return request.getfixturevalue("dev_ca")


@pytest.fixture(scope="session")
def base_url(request, ca_bundle: Path | None) -> str:
    helpers.trust(ca_bundle)  # ApiUser's requests verify the gateway against it
    override = os.environ.get("BROWSER_BASE_URL")
    if override:
        return override.rstrip("/")
    stack = request.getfixturevalue("stack")
    return stack.gateway_https_url.rstrip("/")


def spki_sha256(bundle: Path) -> list[str]:
    """Base64 SHA-256 of each certificate's SubjectPublicKeyInfo in a PEM bundle (Chromium's SPKI list)."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return [
        base64.b64encode(
            hashlib.sha256(
                cert.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            ).digest()
        ).decode()
        for cert in x509.load_pem_x509_certificates(bundle.read_bytes())
    ]


@pytest.fixture(scope="session")
def browser(ca_bundle: Path | None) -> Browser:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    args = list(CHROMIUM_ARGS)
    if ca_bundle:
        args.append("--ignore-certificate-errors-spki-list=" + ",".join(spki_sha256(ca_bundle)))
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield chromium
        chromium.close()


class PageProblems:
    """Console errors, CSP violations, uncaught exceptions and failed loads of the client's own files seen by a page."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("pageerror", lambda exc: self.messages.append(f"uncaught: {exc}"))
        page.on(
            "console",
            lambda msg: self.messages.append(f"console {msg.type}: {msg.text}") if self.unexpected(msg) else None,
        )
        # A module that fails to load leaves the page on "Loading…" with nothing in the console but a 4xx line
        # (ignored above): name the file, so such a failure says what went missing instead of timing out blind.
        page.on("response", self.client_file_answered)
        page.on("requestfailed", self.client_file_failed)

    def client_file_answered(self, response) -> None:
        if response.status >= 400 and self.client_file(response.url):
            self.messages.append(f"client file {response.url} answered {response.status}")

    def client_file_failed(self, request) -> None:
        if self.client_file(request.url) and request.failure != "net::ERR_ABORTED":  # ABORTED: a reload cancelled it
            self.messages.append(f"client file {request.url} failed: {request.failure}")

    @staticmethod
    def unexpected(msg) -> bool:
        # Chromium logs every 4xx response; those are the API answering and the page shows them.
        return msg.type == "error" and not re.search(r"status of 4\d\d", msg.text)

    @staticmethod
    def client_file(url: str) -> bool:
        """The page itself and its assets, as opposed to the API calls it makes."""
        return not urlsplit(url).path.startswith(("/api/", "/oauth/", "/.well-known/"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.browser_call_failed = report.failed


@pytest.fixture
def open_page(request, browser: Browser, base_url: str):
    """``open_page(viewport=...)`` -> a Page in a fresh browser context (one user each).

    When the test fails, every page it opened is saved under ``test-output/screenshots/failures/``.
    """
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
    if getattr(request.node, "browser_call_failed", False):
        folder = SCREENSHOTS / "failures"
        folder.mkdir(parents=True, exist_ok=True)
        for number, (context, _) in enumerate(contexts):
            for index, page in enumerate(context.pages):
                page.screenshot(path=str(folder / f"{request.node.name}-{number}-{index}.png"), full_page=True)
    for context, _ in contexts:
        context.close()
    allowed = tuple(a for _, al in contexts for a in al)
    unexpected = [m for m in problems.messages if not any(a in m for a in allowed)]
    assert not unexpected, f"the page reported errors: {unexpected}"
