"""Bodies and queries of the internal endpoints other services call."""

from __future__ import annotations

from rest_framework import serializers

from servicekit.api.strict_fields import StrictIntegerField
from votes.models import PollReplica

_BIGINT_MAX = 2**63 - 1


class PollStateSerializer(serializers.Serializer):
    """``{version, owner_id, status, closes_at}``; ``min_choices`` (choice_service's) is accepted and ignored."""

    version = StrictIntegerField(min_value=1, max_value=_BIGINT_MAX)
    owner_id = StrictIntegerField(min_value=-_BIGINT_MAX, max_value=_BIGINT_MAX)
    status = serializers.ChoiceField(choices=PollReplica.Status.choices)
    closes_at = serializers.DateTimeField(allow_null=True, required=False, default=None)
    min_choices = StrictIntegerField(min_value=0, required=False)


class LedgerQuerySerializer(serializers.Serializer):
    after = serializers.UUIDField(required=False)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=1000)
