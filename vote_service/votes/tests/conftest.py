"""Fixtures of the votes suite: a voter, poll replicas and fake upstream services.

Callers (``anon``, ``owner``, ``other``, ``operator``, ``client_for``) and the hermetic settings
come from ``servicekit.testing_fixtures`` (loaded by the service's root ``conftest.py``).
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from servicekit.testing_fixtures import OWNER_ID, upstream_fixture
from votes.models import PollReplica
from votes.tests.factories import ChoiceReplicaFactory, PollReplicaFactory

VOTER_ID = 33

fake_polls = upstream_fixture("POLLS_INTERNAL_URL")
fake_choices = upstream_fixture("CHOICE_INTERNAL_URL")


@pytest.fixture
def voter(client_for) -> APIClient:
    return client_for(VOTER_ID)


@pytest.fixture
def open_poll(db) -> PollReplica:
    """An open poll owned by OWNER_ID with three choices (positions 0, 1, 2) in the replica."""
    poll = PollReplicaFactory(owner_id=OWNER_ID, status="open")
    for position in range(3):
        ChoiceReplicaFactory(poll_id=poll.id, position=position)
    return poll


def choices_of(poll: PollReplica) -> list:
    from votes.models import ChoiceReplica

    return list(ChoiceReplica.objects.filter(poll_id=poll.id).order_by("position"))
