import uuid

import factory

from choices.models import Choice, PollReplica, VoteProjection


class PollReplicaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PollReplica

    id = factory.LazyFunction(uuid.uuid4)
    owner_id = factory.Sequence(lambda n: 1000 + n)
    status = PollReplica.Status.DRAFT
    closes_at = None
    version = 1


class ChoiceFactory(factory.django.DjangoModelFactory):
    """``ChoiceFactory(votes=3)`` also records three live votes for it in the vote projection."""

    class Meta:
        model = Choice
        skip_postgeneration_save = True

    poll_id = factory.LazyFunction(lambda: PollReplicaFactory().id)
    text = factory.Sequence(lambda n: f"Choice {n}")
    position = factory.Sequence(lambda n: n)

    @factory.post_generation
    def votes(choice, create, extracted, **kwargs):  # noqa: N805 - factory_boy passes the instance
        if extracted:
            VoteProjection.objects.bulk_create(
                VoteProjection(id=uuid.uuid4(), version=1, poll_id=choice.poll_id, choice_id=choice.id)
                for _ in range(extracted)
            )


def tally(choice) -> int:
    """A choice's ``votes`` as the API derives it (live rows of the vote projection)."""
    from choices.selectors import choice_get_with_votes

    return choice_get_with_votes(choice_id=choice.id).votes
