"""The browser client against the live stack: two users, live results, and the error paths."""

from __future__ import annotations

import re
import time
import uuid

from playwright.sync_api import Page, expect

from .helpers import PAGE_SIZE, PASSWORD, ApiUser, results_row, shot, ui_create_poll, ui_login, ui_register, unique


def open_poll_from_list(page: Page, question: str) -> None:
    page.goto("/#/polls?status=open")
    page.get_by_label("Search polls").fill(question)
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_role("link", name=question).click()
    expect(page.get_by_role("heading", level=1, name=question)).to_be_visible()


def test_two_users_vote_and_the_owner_sees_results_live(open_page):
    owner_page = open_page()
    voter_page = open_page()
    owner, voter = unique("owner"), unique("voter")
    question = f"Which tea? {unique('q')}"

    ui_register(owner_page, owner)
    shot(owner_page, "01-polls-list")
    ui_create_poll(owner_page, question, ["Green", "Black", "Oolong"])
    # A draft: management controls come from the poll's _links; no vote or results yet.
    expect(owner_page.get_by_role("heading", name="Manage this draft")).to_be_visible()
    expect(owner_page.get_by_role("button", name=re.compile("^Vote for"))).to_have_count(0)
    shot(owner_page, "02-draft-poll")
    owner_page.get_by_role("button", name="Open poll for voting").click()
    expect(owner_page.locator(".meta .badge")).to_have_text("Open")
    expect(owner_page.get_by_role("heading", name="Manage this draft")).to_have_count(0)
    expect(owner_page.locator("#results-total")).to_have_text("0 votes in total")
    results_statuses = []
    owner_page.on("response", lambda r: results_statuses.append(r.status) if "/api/v3/results/" in r.url else None)

    ui_register(voter_page, voter)
    open_poll_from_list(voter_page, question)
    expect(voter_page.get_by_role("button", name="Close poll")).to_have_count(0)  # not the owner
    voter_page.get_by_role("button", name="Vote for “Black”").click()
    expect(voter_page.locator("#my-vote")).to_have_text("You voted for Black.")
    expect(voter_page.get_by_role("button", name=re.compile("^Vote for"))).to_have_count(0)
    shot(voter_page, "03-voted")

    # The owner's page was never reloaded: the results poll (ETag) brings the vote in.
    expect(owner_page.locator("#results-total")).to_have_text("1 vote in total")
    expect(results_row(owner_page, "Black").locator(".count")).to_have_text("1 vote · 100%")
    expect(results_row(owner_page, "Green").locator(".count")).to_have_text("0 votes · 0%")
    expect(owner_page.locator("#results-live")).to_have_text("Results updated: 1 vote in total.")
    shot(owner_page, "04-owner-live-results")

    # Change the vote (PATCH), then retract it (DELETE); the owner follows along.
    voter_page.get_by_role("button", name="Change my vote to “Oolong”").click()
    expect(voter_page.locator("#my-vote")).to_have_text("You voted for Oolong.")
    expect(results_row(owner_page, "Oolong").locator(".count")).to_have_text("1 vote · 100%")
    expect(results_row(owner_page, "Black").locator(".count")).to_have_text("0 votes · 0%")
    voter_page.get_by_role("button", name="Retract my vote").click()
    expect(voter_page.get_by_role("button", name="Vote for “Green”")).to_be_visible()
    expect(owner_page.locator("#results-total")).to_have_text("0 votes in total")
    # Live updates revalidate with If-None-Match: changes cost a 200 and, now that nothing changes any
    # more, the next revalidation must be a 304 (waiting for it, not sampling, keeps this independent
    # of how the 2 s polling interleaves with the clicks above).
    with owner_page.expect_response(lambda r: "/api/v3/results/" in r.url and r.status == 304, timeout=15_000):
        pass
    assert 200 in results_statuses, results_statuses


def test_wrong_password_shows_a_message_next_to_the_form(open_page, base_url):
    page = open_page()
    user = ApiUser(base_url, unique("pw")).register()
    page.goto("/#/login")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password", exact=True).fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    alert = page.locator("form .error-slot")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Log in failed")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()  # still signed out
    assert "{" not in alert.inner_text()  # a sentence, never raw JSON
    shot(page, "05-wrong-password")
    ui_login(page, user.username)


def test_registration_field_errors_appear_next_to_the_fields(open_page, base_url):
    page = open_page()
    taken = ApiUser(base_url, unique("taken")).register().username
    page.goto("/#/register")
    page.get_by_label("Username").fill(taken)
    page.get_by_label("Password", exact=True).fill(PASSWORD_OK)
    page.get_by_role("button", name="Create account").click()
    username_input = page.get_by_label("Username")
    expect(username_input).to_have_attribute("aria-invalid", "true")
    error_id = username_input.get_attribute("aria-describedby").split()[-1]
    expect(page.locator(f"#{error_id}")).to_be_visible()
    expect(page.locator(f"#{error_id}")).not_to_be_empty()
    shot(page, "06-register-field-error")


PASSWORD_OK = "another-long-password-7"


def test_voting_twice_is_refused_by_the_api_and_explained(open_page, base_url):
    owner = ApiUser(base_url, unique("own")).register()
    question = f"Lunch? {unique('q')}"
    page_owner = open_page()
    ui_login(page_owner, owner.username)
    ui_create_poll(page_owner, question, ["Soup", "Salad"], open_now=True)
    expect(page_owner.locator(".meta .badge")).to_have_text("Open")

    voter = ApiUser(base_url, unique("twice")).register()
    stale = open_page()
    ui_login(stale, voter.username)
    open_poll_from_list(stale, question)
    expect(stale.get_by_role("button", name="Vote for “Soup”")).to_be_visible()

    fresh = open_page()
    ui_login(fresh, voter.username)
    open_poll_from_list(fresh, question)
    fresh.get_by_role("button", name="Vote for “Salad”").click()
    expect(fresh.locator("#my-vote")).to_have_text("You voted for Salad.")
    # The UI no longer offers a vote ...
    expect(fresh.get_by_role("button", name=re.compile("^Vote for"))).to_have_count(0)
    # ... and the API refuses a direct second vote.
    poll_id = fresh.url.rsplit("/", 1)[-1]
    direct = voter.post("votes", {"poll": poll_id, "choice": _choice_id(voter, poll_id, "Soup")})
    assert direct.status_code == 409, direct.text
    assert direct.headers["Content-Type"].startswith("application/problem+json")

    # The stale tab still shows the buttons: the API's refusal is shown next to them.
    stale.get_by_role("button", name="Vote for “Soup”").click()
    error = stale.locator("#section-vote .error-slot")
    expect(error).to_be_visible()
    expect(error).not_to_contain_text("{")
    expect(stale.locator("#my-vote")).to_have_text("You voted for Salad.")
    shot(stale, "07-voted-twice")


def wait_until(condition, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds (eventual consistency between services), else fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the platform did not converge in time"
        time.sleep(0.25)


def _choice_id(user: ApiUser, poll_id: str, text: str) -> str:
    poll = user.get(f"/api/v3/polls/{poll_id}/").json()
    choices = user.get(poll["_links"]["choices"]["href"]).json()["_embedded"]["choices"]
    return next(c["id"] for c in choices if c["text"] == text)


def test_closed_poll_refuses_votes_and_shows_final_results(open_page, base_url):
    owner_page = open_page()
    ui_register(owner_page, unique("closer"))
    question = f"Best season? {unique('q')}"
    ui_create_poll(owner_page, question, ["Spring", "Autumn"], open_now=True)

    voter_page = open_page()
    ui_register(voter_page, unique("late"))
    open_poll_from_list(voter_page, question)
    expect(voter_page.get_by_role("button", name="Vote for “Autumn”")).to_be_visible()

    owner_page.get_by_role("button", name="Close poll").click()
    owner_page.get_by_role("button", name="Yes, close it").click()
    expect(owner_page.locator(".meta .badge")).to_have_text("Closed")
    expect(owner_page.get_by_role("heading", name="Final results")).to_be_visible()

    # Services learn of the close through events: wait until the vote service knows it too. The probe
    # names a choice of no poll, so it can never be counted: refused as "choice not in poll" while the
    # vote service still thinks the poll is open, as "poll not open" once the close has reached it.
    probe = ApiUser(base_url, unique("probe")).register()
    poll_id = owner_page.url.rsplit("/", 1)[-1]

    def vote_service_knows_it_is_closed() -> bool:
        refused = probe.post("votes", {"poll": poll_id, "choice": str(uuid.uuid4())})
        assert refused.status_code in (400, 404, 409, 422), refused.text
        return "not-open" in refused.json().get("type", "")

    wait_until(vote_service_knows_it_is_closed)

    # The voter's page was opened before the close: the API refuses and the message is shown.
    voter_page.get_by_role("button", name="Vote for “Autumn”").click()
    error = voter_page.locator("#page-error")
    expect(error).to_be_visible()
    expect(error).not_to_contain_text("{")
    expect(voter_page.get_by_role("heading", name="Final results")).to_be_visible()
    expect(voter_page.get_by_text("This poll is closed. Voting has ended.")).to_be_visible()
    expect(voter_page.get_by_role("button", name=re.compile("^Vote for"))).to_have_count(0)
    shot(voter_page, "08-closed-poll")

    # Closed polls are listed under "Closed" with their final results.
    voter_page.goto("/#/polls?status=closed")
    voter_page.get_by_label("Search polls").fill(question)
    voter_page.get_by_role("button", name="Search", exact=True).click()
    card = voter_page.locator(".poll-card").filter(has_text=question)
    expect(card.locator(".final-total")).to_have_text("Final results: 0 votes")
    expect(card.locator(".final-results li")).to_have_count(2)
    shot(voter_page, "15-closed-list")
    voter_page.get_by_role("link", name=question).click()
    expect(voter_page.locator("#results-total")).to_have_text("0 votes in total")


def test_a_past_closing_time_is_refused_next_to_its_field(open_page):
    page = open_page()
    ui_register(page, unique("timer"))
    page.get_by_role("link", name="New poll").first.click()
    page.get_by_label("Question").fill(f"Too late? {unique('q')}")
    page.get_by_label("Closes at (optional)").fill("2001-01-01T12:00")
    page.get_by_label("Choice 1", exact=True).fill("Yes")
    page.get_by_label("Choice 2", exact=True).fill("No")
    page.get_by_role("button", name="Create poll").click()
    closes_at = page.get_by_label("Closes at (optional)")
    expect(closes_at).to_have_attribute("aria-invalid", "true")
    error_id = closes_at.get_attribute("aria-describedby").split()[-1]
    expect(page.locator(f"#{error_id}")).not_to_be_empty()
    expect(page.get_by_role("heading", name="New poll")).to_be_visible()  # nothing was created


def test_draft_choices_reorder_remove_and_duplicate_error(open_page):
    page = open_page()
    ui_register(page, unique("drafter"))
    question = f"Order me {unique('q')}"
    ui_create_poll(page, question, ["One", "Two", "Three"])
    manage = page.locator(".manage-list .choice-text")
    expect(manage).to_have_text(["One", "Two", "Three"])
    page.get_by_role("button", name="Move “Three” up").click()
    expect(manage).to_have_text(["One", "Three", "Two"])
    page.get_by_role("button", name="Remove “One”").click()
    expect(manage).to_have_text(["Three", "Two"])
    page.get_by_label("New choice").fill("two")  # same text, other case: the API refuses it
    page.get_by_role("button", name="Add choice").click()
    expect(page.get_by_label("New choice")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#section-manage .inline-form .field-error")).to_be_visible()
    shot(page, "09-draft-duplicate-choice")
    page.get_by_label("New choice").fill("Four")
    page.get_by_role("button", name="Add choice").click()
    expect(manage).to_have_text(["Three", "Two", "Four"])
    # Edit the draft's question (the poll's "edit" link); a blank question is refused next to the field.
    page.get_by_text("Edit question and description").click()
    edit = page.locator(".edit-poll")
    edit.get_by_label("Question").fill("   ")
    edit.get_by_role("button", name="Save changes").click()
    expect(edit.get_by_label("Question")).to_have_attribute("aria-invalid", "true")
    edit.get_by_label("Question").fill(f"{question} (edited)")
    edit.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{question} (edited)")


def test_session_survives_reload_and_an_expired_session_returns_to_login(open_page):
    page = open_page()
    username = unique("reload")
    ui_register(page, username)
    before = page.evaluate("sessionStorage.getItem('polls.refresh')")
    assert before
    with page.expect_response(lambda r: r.url.endswith("/auth/token/refresh/") and r.status == 200):
        page.reload()  # the access token lived in memory only: the stored refresh token gets a new one
    expect(page.locator(".whoami")).to_contain_text(username)
    rotated = page.evaluate("sessionStorage.getItem('polls.refresh')")
    assert rotated and rotated != before  # refresh tokens rotate
    # The refresh token is revoked (logout elsewhere): the next start sends the user to log in.
    page.evaluate("sessionStorage.setItem('polls.refresh', 'revoked-token')")
    page.reload()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.locator(".notice.warning")).to_have_text("Your session has expired. Please log in again.")
    shot(page, "10-session-expired")


def test_logout_revokes_and_forgets_the_session(open_page, base_url):
    page = open_page()
    ui_register(page, unique("bye"))
    refresh = page.evaluate("sessionStorage.getItem('polls.refresh')")
    with page.expect_response(lambda r: r.url.endswith("/auth/logout/")) as logout:
        page.get_by_role("button", name="Log out").click()
    assert logout.value.ok
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    page.reload()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('polls.refresh')") is None
    api = ApiUser(base_url, "nobody")
    assert api.post("refresh", {"refresh": refresh}).status_code == 401  # revoked on the server too


def test_network_failure_shows_a_retry(open_page):
    page = open_page(allowed_errors=("net::ERR_FAILED", "Failed to load resource"))
    page.goto("/#/polls")
    expect(page.get_by_role("heading", name="Polls")).to_be_visible()
    page.route("**/api/v3/polls/**", lambda route: route.abort())
    page.get_by_role("link", name="Closed").click()
    expect(page.get_by_role("heading", name="Can't reach the server")).to_be_visible()
    shot(page, "11-network-retry")
    page.unroute("**/api/v3/polls/**")
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("heading", name="Polls")).to_be_visible()


def test_search_and_load_more_follow_next_links(open_page, base_url):
    owner = ApiUser(base_url, unique("many")).register()
    tag = unique("bulk")
    for n in range(PAGE_OVERFLOW):
        poll = owner.post("polls", {"question": f"{tag} question {n}"}).json()
        add = poll["_links"]["add_choice"]["href"]
        for position, text in enumerate(("Yes", "No")):
            assert owner.post(add, {"poll": poll["id"], "text": text, "position": position}).status_code == 201
        assert owner.post(poll["_links"]["open"]["href"], {}).status_code == 200
    page = open_page()
    page.goto(f"/#/polls?status=open&q={tag}")
    cards = page.locator(".poll-card")
    expect(cards.first).to_be_visible()
    more = page.get_by_role("button", name="Load more polls")
    while more.is_visible():
        before = cards.count()
        more.click()
        expect(cards).not_to_have_count(before)
    expect(cards).to_have_count(PAGE_OVERFLOW)
    shot(page, "12-search-results")


PAGE_OVERFLOW = PAGE_SIZE + 1  # two pages: the second comes from _links.next


def test_phone_sized_screen_has_no_horizontal_scroll(open_page):
    page = open_page(viewport={"width": 375, "height": 740})
    ui_register(page, unique("phone"))
    ui_create_poll(page, f"Small screens? {unique('q')}", ["Yes, works", "Scrolls sideways"], open_now=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.keyboard.press("Tab")
    focused = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert focused != "none"
    shot(page, "13-phone")


def test_keyboard_only_login_and_vote(open_page, base_url):
    owner = ApiUser(base_url, unique("kbown")).register()
    poll = owner.post("create_poll", {"question": f"Keyboard? {unique('q')}"}).json()
    add_choice = poll["_links"]["add_choice"]["href"]
    for position, text in enumerate(("Tab", "Mouse")):
        assert owner.post(add_choice, {"poll": poll["id"], "text": text, "position": position}).status_code == 201
    assert owner.post(poll["_links"]["open"]["href"], {}).status_code == 200
    voter = ApiUser(base_url, unique("kb")).register()

    page = open_page()
    page.goto(f"/#/login?next=/polls/{poll['id']}")
    expect(page.get_by_label("Username")).to_be_focused()  # the form takes focus
    page.keyboard.type(voter.username)
    page.keyboard.press("Tab")
    page.keyboard.type(voter.password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name=poll["question"])).to_be_focused()
    vote = page.get_by_role("button", name="Vote for “Tab”")
    expect(vote).to_be_visible()
    for _ in range(30):
        if page.evaluate("document.activeElement.getAttribute('aria-label')") == "Vote for “Tab”":
            break
        page.keyboard.press("Tab")
    expect(vote).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"  # visible focus
    page.keyboard.press("Enter")
    expect(page.locator("#my-vote")).to_have_text("You voted for Tab.")
    expect(page.locator("#vote-heading")).to_be_focused()  # keyboard users stay where they acted


def test_live_results_pause_with_a_retry_when_the_network_fails(open_page):
    page = open_page(allowed_errors=("net::ERR_FAILED", "Failed to load resource"))
    ui_register(page, unique("offline"))
    ui_create_poll(page, f"Offline? {unique('q')}", ["Yes", "No"], open_now=True)
    expect(page.locator("#results-total")).to_have_text("0 votes in total")
    page.route("**/api/v3/results/**", lambda route: route.abort())
    notice = page.locator("#section-results .error-slot")
    expect(notice).to_contain_text("Live updates are paused")
    shot(page, "14-live-updates-paused")
    page.unroute("**/api/v3/results/**")
    notice.get_by_role("button", name="Retry").click()
    expect(notice).to_be_hidden()


def test_a_401_mid_session_returns_to_login_and_back(open_page, base_url):
    page = open_page()
    username = unique("midway")
    ui_register(page, username)
    question = f"Still there? {unique('q')}"
    ui_create_poll(page, question, ["Yes", "No"], open_now=True)
    expect(page.get_by_role("button", name="Vote for “Yes”")).to_be_visible()
    # The session is revoked elsewhere (logout from another device) and the access token is refused:
    refresh = page.evaluate("sessionStorage.getItem('polls.refresh')")
    other_device = ApiUser(base_url, username).login()
    assert other_device.post("logout", {"refresh": refresh}).status_code in (200, 204)
    page.route(
        "**/api/v3/votes/",
        lambda route: route.fulfill(
            status=401,
            content_type="application/problem+json",
            body='{"title": "Authentication required.", "status": 401, "detail": "Token expired."}',
        ),
    )
    page.get_by_role("button", name="Vote for “Yes”").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.locator(".notice.warning")).to_have_text("Your session has expired. Please log in again.")
    assert "next=" in page.url
    page.unroute("**/api/v3/votes/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1, name=question)).to_be_visible()  # back where the user was


def test_a_client_file_that_fails_to_load_is_reported_by_name(browser, base_url):
    # The page's own files are checked in every test (conftest.PageProblems): a module answered 404 leaves the
    # page on "Loading…" with only an ignored 4xx console line, so the report must name the file.
    from .conftest import PageProblems

    context = browser.new_context(base_url=base_url)
    try:
        page = context.new_page()
        problems = PageProblems()
        problems.watch(page)
        page.route("**/assets/js/dom.*.js", lambda route: route.fulfill(status=404, body="gone"))
        page.goto("/#/polls")
        expect(page.locator("main .loading")).to_have_text("Loading…")  # the entry module never ran
        deadline = time.monotonic() + 10
        while not problems.messages and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        missing = re.compile(r"client file \S+/assets/js/dom\.[0-9a-f]{12}\.js answered 404")
        assert any(missing.search(message) for message in problems.messages), problems.messages
        expect(page.locator("#nav li")).to_have_count(0)
    finally:
        context.close()
