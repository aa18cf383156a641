"""factory_boy factories for polls."""

from __future__ import annotations

import factory
from django.utils import timezone

from polls.models import Participation, Poll, PollStatus


class PollFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Poll

    question = factory.Sequence(lambda n: f"Question number {n}?")
    description = "A poll made by a factory."
    status = PollStatus.DRAFT
    owner_id = 1
    owner_username = factory.LazyAttribute(lambda poll: f"user{poll.owner_id}")
    choice_count = 0

    class Params:
        opened = factory.Trait(status=PollStatus.OPEN, choice_count=2, opened_at=factory.LazyFunction(timezone.now))
        closed = factory.Trait(
            status=PollStatus.CLOSED,
            choice_count=2,
            opened_at=factory.LazyFunction(timezone.now),
            closed_at=factory.LazyFunction(timezone.now),
        )


class ParticipationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participation

    poll_id = factory.LazyAttribute(lambda _: PollFactory().id)
    voter_id = 2
