"""VoteCreateSerializer.fast_validate never accepts what the serializer's fields would not, or differently."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from votes.api.serializers import VoteCreateSerializer

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
