"""Bodies of the internal commands other services send."""

from __future__ import annotations

from rest_framework import serializers

from choices.models import PollReplica
from servicekit.api.strict_fields import StrictIntegerField
from servicekit.replicas import TOMBSTONE_VERSION

BIGINT_MAX = 2**63 - 1


class PollStateSerializer(serializers.Serializer):
    """The freeze command's body: a poll's state at ``version``, sent by polls_service before it commits."""

    version = StrictIntegerField(min_value=1, max_value=TOMBSTONE_VERSION - 1)
    owner_id = StrictIntegerField(min_value=-BIGINT_MAX, max_value=BIGINT_MAX)
    status = serializers.ChoiceField(choices=PollReplica.Status.choices)
    closes_at = serializers.DateTimeField(allow_null=True, required=False, default=None)
    min_choices = StrictIntegerField(required=False, min_value=0, max_value=BIGINT_MAX)
