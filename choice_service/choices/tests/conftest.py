"""Fixtures of the choices suite: poll replicas and fake upstream services.

Callers (``anon``, ``owner``, ``other``, ``operator``, ``client_for``) and the hermetic settings
come from ``servicekit.testing_fixtures`` (loaded by the service's root ``conftest.py``).
"""

from __future__ import annotations

import pytest

from choices.models import PollReplica
from choices.tests.factories import PollReplicaFactory
from servicekit.testing_fixtures import OWNER_ID, upstream_fixture

fake_polls = upstream_fixture("POLLS_INTERNAL_URL")
fake_votes = upstream_fixture("VOTE_INTERNAL_URL")


@pytest.fixture
def draft_poll(db) -> PollReplica:
    return PollReplicaFactory(owner_id=OWNER_ID, status="draft")


@pytest.fixture
def open_poll(db) -> PollReplica:
    return PollReplicaFactory(owner_id=OWNER_ID, status="open")
