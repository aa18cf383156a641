import uuid

import factory

from votes.models import ChoiceReplica, PollReplica, Vote


class PollReplicaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PollReplica

    id = factory.LazyFunction(uuid.uuid4)
    owner_id = factory.Sequence(lambda n: 1000 + n)
    status = PollReplica.Status.OPEN
    closes_at = None
    version = 1


class ChoiceReplicaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChoiceReplica

    id = factory.LazyFunction(uuid.uuid4)
    poll_id = factory.LazyFunction(lambda: PollReplicaFactory().id)
    position = factory.Sequence(lambda n: n)
    version = 1


class VoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Vote

    choice_id = factory.LazyFunction(lambda: ChoiceReplicaFactory().id)
    poll_id = factory.LazyAttribute(lambda o: ChoiceReplica.objects.get(pk=o.choice_id).poll_id)
    voter_id = factory.Sequence(lambda n: 5000 + n)
