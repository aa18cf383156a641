"""The operators' admin: polls are found and closed or deleted through the services (events included)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from polls.models import Poll
from polls.tests.factories import ChoiceReplicaFactory, PollFactory, VoteReplicaFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/polls/polls/poll/"


@pytest.fixture
def staff_client() -> Client:
    user = get_user_model().objects.create_user("opal-admin", password="x" * 12, is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


def test_changelist_lists_polls(staff_client) -> None:
    poll = PollFactory(question="Visible in the admin?")
    response = staff_client.get(CHANGELIST)
    assert response.status_code == 200 and "Visible in the admin?" in response.content.decode()
    assert staff_client.get(f"{CHANGELIST}{poll.pk}/change/").status_code == 200  # read-only view


def test_choice_count_is_the_live_choices_of_the_projection(staff_client, django_assert_max_num_queries) -> None:
    polls = PollFactory.create_batch(3)
    ChoiceReplicaFactory.create_batch(2, poll_id=polls[0].id)
    ChoiceReplicaFactory(poll_id=polls[0].id, deleted=True, version=2)
    response = staff_client.get(CHANGELIST, {"o": "5"})  # ordered by the choices column
    assert response.status_code == 200
    counts = [poll.choice_count for poll in response.context["cl"].result_list]
    assert sorted(counts) == [0, 0, 2]
    with django_assert_max_num_queries(12):  # the count is a subquery, not a query per poll
        staff_client.get(CHANGELIST)
    change = staff_client.get(f"{CHANGELIST}{polls[0].pk}/change/")
    assert change.status_code == 200 and change.context["original"].choice_count == 2


def test_projections_are_read_only_in_the_admin(staff_client) -> None:
    vote = VoteReplicaFactory(voter_id=5)
    choice = ChoiceReplicaFactory()
    for base, row in (("/admin/polls/polls/votereplica/", vote), ("/admin/polls/polls/choicereplica/", choice)):
        assert staff_client.get(base).status_code == 200
        assert str(row.pk) in staff_client.get(base).content.decode()
        assert staff_client.get(f"{base}{row.pk}/change/").status_code == 200
        assert staff_client.get(f"{base}add/").status_code == 403
        assert staff_client.post(f"{base}{row.pk}/delete/", {"post": "yes"}).status_code == 403


def test_close_action_goes_through_the_service(staff_client, outbox) -> None:
    open_poll = PollFactory(opened=True)
    draft = PollFactory()
    response = staff_client.post(
        CHANGELIST, {"action": "close_polls", "_selected_action": [str(open_poll.pk), str(draft.pk)]}, follow=True
    )
    assert response.status_code == 200
    assert Poll.objects.get(pk=open_poll.pk).status == "closed"
    assert Poll.objects.get(pk=draft.pk).status == "draft"  # refused with a message, not changed
    assert [e["aggregate_id"] for e in outbox("poll.closed")] == [str(open_poll.id)]


def test_delete_action_emits_poll_deleted(staff_client, outbox) -> None:
    poll = PollFactory(closed=True)
    staff_client.post(CHANGELIST, {"action": "delete_polls", "_selected_action": [str(poll.pk)]})
    assert not Poll.objects.filter(pk=poll.pk).exists()
    assert [e["aggregate_id"] for e in outbox("poll.deleted")] == [str(poll.id)]


def test_no_direct_edits_or_adds(staff_client) -> None:
    poll = PollFactory()
    assert staff_client.get(f"{CHANGELIST}add/").status_code == 403
    staff_client.post(f"{CHANGELIST}{poll.pk}/change/", {"question": "Edited behind the API"})
    assert Poll.objects.get(pk=poll.pk).question != "Edited behind the API"


def test_oauth_clients_are_listed_and_deactivated_never_added_in_the_admin(staff_client) -> None:
    from accounts import services
    from accounts.models import OAuthClient

    client, secret = services.oauth_client_register(client_id="board", name="Board", scopes=["results:read"])
    changelist = "/admin/polls/accounts/oauthclient/"
    listing = staff_client.get(changelist)
    assert listing.status_code == 200 and "board" in listing.content.decode()
    page = staff_client.get(f"{changelist}{client.pk}/change/").content.decode()
    assert secret not in page and client.secret_hash not in page
    assert staff_client.get(f"{changelist}add/").status_code == 403  # a secret is shown once, by the command
    changed = staff_client.post(
        f"{changelist}{client.pk}/change/", {"name": "Board", "scopes": "results:read", "is_active": ""}
    )
    assert changed.status_code == 302
    assert OAuthClient.objects.get(pk=client.pk).is_active is False
