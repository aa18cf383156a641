"""factory_boy factories for polls and the projections polls keeps."""

from __future__ import annotations

import uuid

import factory
from django.utils import timezone

from polls.models import ChoiceReplica, Poll, PollStatus, VoteReplica


class PollFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Poll

    question = factory.Sequence(lambda n: f"Question number {n}?")
    description = "A poll made by a factory."
    status = PollStatus.DRAFT
    owner_id = 1
    owner_username = factory.LazyAttribute(lambda poll: f"user{poll.owner_id}")

    class Params:
        opened = factory.Trait(status=PollStatus.OPEN, version=2, opened_at=factory.LazyFunction(timezone.now))
        closed = factory.Trait(
            status=PollStatus.CLOSED,
            version=3,
            opened_at=factory.LazyFunction(timezone.now),
            closed_at=factory.LazyFunction(timezone.now),
        )


class VoteReplicaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VoteReplica

    id = factory.LazyFunction(uuid.uuid4)
    version = 1
    poll_id = factory.LazyAttribute(lambda _: PollFactory().id)
    voter_id = 2
    deleted = False


class ChoiceReplicaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChoiceReplica

    id = factory.LazyFunction(uuid.uuid4)
    version = 1
    poll_id = factory.LazyAttribute(lambda _: PollFactory().id)
    deleted = False
