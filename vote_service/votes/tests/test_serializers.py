"""The serializers' fast paths agree with their fields: ``VoteCreateSerializer.fast_validate`` never accepts
what the fields would not, or differently; ``fast_represent`` gives exactly (keys in order) what ``.data``
gives, in v1/v2 and in v3 (HAL)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

from django.utils import timezone as django_timezone
from hypothesis import given
from hypothesis import strategies as st

from votes.api.hal import VoteHALSerializer
from votes.api.serializers import VoteCreateSerializer, VoteSerializer
from votes.models import PollReplica, Vote

uuid_texts = st.uuids().flatmap(
    lambda u: st.sampled_from([str(u), u.hex, f"{{{u}}}", f"urn:uuid:{u}", str(u).upper(), f" {u}", f"{u}x"])
)
values = st.one_of(uuid_texts, st.text(max_size=40), st.integers(), st.none(), st.booleans(), st.lists(st.integers()))
bodies = st.one_of(
    st.fixed_dictionaries({"poll": values, "choice": values}, optional={"voter": values, "extra": values}),
    st.dictionaries(st.sampled_from(["poll", "choice", "voter"]), values),
    st.lists(values),
    st.text(max_size=10),
)


@given(bodies)
def test_the_fast_path_agrees_with_the_fields(body) -> None:
    fast = VoteCreateSerializer.fast_validate(body)
    serializer = VoteCreateSerializer(data=body)
    if fast is not None:
        assert serializer.is_valid(), serializer.errors
        assert fast == dict(serializer.validated_data)


def test_a_well_formed_body_takes_the_fast_path() -> None:
    poll, choice = uuid.uuid4(), uuid.uuid4()
    assert VoteCreateSerializer.fast_validate({"poll": str(poll), "choice": choice.hex, "voter": 9}) == {
        "poll": poll,
        "choice": choice,
    }
    assert VoteCreateSerializer.fast_validate({"poll": str(poll), "choice": 5}) is None
    assert VoteCreateSerializer.fast_validate({"poll": str(poll)}) is None
    assert VoteCreateSerializer.fast_validate([str(poll), str(choice)]) is None


zones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
naive_moments = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1))
aware_moments = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=zones)
moments = st.one_of(aware_moments, naive_moments)


def _vote(created_at: datetime, updated: str, other: datetime, **fields: object) -> Vote:
    vote = Vote(**fields)
    vote.created_at = created_at
    if updated == "same":  # a new vote: one instant for both
        vote.updated_at = created_at
    elif updated == "same-instant-elsewhere" and created_at.tzinfo is not None:
        vote.updated_at = created_at.astimezone(timezone(timedelta(hours=3)))
    else:
        vote.updated_at = other
    return vote


vote_instances = st.builds(
    _vote,
    created_at=moments,
    updated=st.sampled_from(["same", "same-instant-elsewhere", "other"]),
    other=moments,
    id=st.uuids(),
    poll_id=st.uuids(),
    choice_id=st.uuids(),
    voter_id=st.integers(min_value=1, max_value=2**63 - 1),
    version=st.integers(min_value=1, max_value=1000),
)
# A field left empty (None: none is), which the fast path leaves to the fields.
blanked_fields = st.sampled_from([None, "id", "poll_id", "choice_id", "voter_id", "created_at", "updated_at"])
# The vote's poll as the v3 view finds it: unknown here, open (closing never or far away) or not open.
poll_states = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from(["draft", "open", "closed", "deleted"]),
        st.sampled_from([None, timedelta(days=-1), timedelta(days=1)]),
    ),
)


def _fast_and_slow(serializer_class, vote, blanked, context) -> tuple:
    if blanked is not None:
        setattr(vote, blanked, None)
    fast = serializer_class.fast_represent(vote, context)
    assert (fast is None) == (blanked is not None)
    return fast, serializer_class(vote, context=context).data


@given(vote_instances, blanked_fields)
def test_the_fast_representation_is_the_serializers(vote, blanked) -> None:
    fast, slow = _fast_and_slow(VoteSerializer, vote, blanked, {})
    if fast is not None:
        assert json.dumps(fast) == json.dumps(slow)  # key order included: the same bytes on the wire


@given(vote_instances, blanked_fields, poll_states)
def test_the_fast_hal_representation_is_the_serializers(vote, blanked, poll_state) -> None:
    context: dict = {}
    if poll_state is not None:
        status, closes_in = poll_state
        closes_at = None if closes_in is None else django_timezone.now() + closes_in
        context["polls"] = {vote.poll_id: PollReplica(id=vote.poll_id, status=status, closes_at=closes_at)}
    fast, slow = _fast_and_slow(VoteHALSerializer, vote, blanked, context)
    if fast is not None:
        assert json.dumps(fast) == json.dumps(slow)
        assert ("retract" in fast["_links"]) == (poll_state in {("open", None), ("open", timedelta(days=1))})
