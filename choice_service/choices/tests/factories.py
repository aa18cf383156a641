import uuid

import factory
from django.utils import timezone

from choices.models import Choice, PollReplica


class PollReplicaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PollReplica

    id = factory.LazyFunction(uuid.uuid4)
    owner_id = factory.Sequence(lambda n: 1000 + n)
    status = PollReplica.Status.DRAFT
    closes_at = None
    source_time = factory.LazyFunction(timezone.now)


class ChoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Choice

    poll_id = factory.LazyFunction(lambda: PollReplicaFactory().id)
    text = factory.Sequence(lambda n: f"Choice {n}")
    position = factory.Sequence(lambda n: n)
    votes = 0
