"""Steps of features/operator.feature: the operator moderates through the polls admin over HTTP.

The admin is a Django admin behind the gateway at ``/admin/polls/``: a form login with its CSRF
token, the change list's search, and its actions (``PollAdmin.close_polls`` / ``delete_polls``).
"""

from __future__ import annotations

import html
import re

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from .helpers import bearer

pytestmark = pytest.mark.stack

scenarios("operator.feature")

ADMIN = "/admin/polls/"
CHANGE_LIST = f"{ADMIN}polls/poll/"


def csrf_token(page_html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page_html).group(1)


def selectable(page_html: str) -> list[str]:
    """The ids the change list offers for an action (its row checkboxes)."""
    return re.findall(r'name="_selected_action" value="([^"]+)"', page_html)


def form_headers(stack, path: str) -> dict[str, str]:
    # A browser sends Origin and Referer; Django's CSRF check compares them with the forwarded Host.
    return {"Origin": stack.gateway_url, "Referer": f"{stack.gateway_url}{path}"}


@given("the operator has logged in to the polls admin")
def admin_login(stack, gateway, operator_credentials) -> None:
    username, password = operator_credentials
    login = f"{ADMIN}login/"
    form = {"csrfmiddlewaretoken": csrf_token(gateway.get(login).text), "username": username, "password": password}
    response = gateway.post(
        login, data={**form, "next": ADMIN}, headers=form_headers(stack, login), allow_redirects=False
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(ADMIN), response.text[:500]


@when("the operator finds the poll in the admin by its question")
def find_in_admin(gateway, journey) -> None:
    page = gateway.get(CHANGE_LIST, params={"q": journey.poll["question"]})
    assert page.status_code == 200, page.text[:500]
    assert selectable(page.text) == [journey.poll["id"]], "the search should find exactly this poll"
    journey.response = page


@when(parsers.parse('the operator applies the admin action "{action}" to it'))
def apply_action(stack, gateway, journey, action: str) -> None:
    page = journey.response
    form = {"csrfmiddlewaretoken": csrf_token(page.text), "action": action, "index": "0"}
    # The action redirects back to the change list, which shows the outcome as a message.
    journey.response = gateway.post(
        page.url, data={**form, "_selected_action": journey.poll["id"]}, headers=form_headers(stack, page.url)
    )
    assert journey.response.status_code == 200, journey.response.text[:500]


@then(parsers.parse('the admin reports "{message}"'))
def admin_reports(journey, message: str) -> None:
    messages = re.findall(r'<li class="(?:success|info|warning|error)">(.*?)</li>', journey.response.text)
    shown = [html.unescape(m) for m in messages]
    assert message in shown, shown


@then("the poll is gone for API clients")
def poll_gone(platform, gateway, journey) -> None:
    owner = bearer(platform.token(platform.owner_id))
    assert gateway.get(f"/api/v2/polls/{journey.poll['id']}/", headers=owner).status_code == 404


@then("the admin no longer finds the poll")
def admin_no_longer_finds(gateway, journey) -> None:
    page = gateway.get(CHANGE_LIST, params={"q": journey.poll["question"]})
    assert page.status_code == 200 and selectable(page.text) == [], selectable(page.text)
