"""Vote filters: ``poll`` (v2 and later)."""

from __future__ import annotations

import django_filters

from votes.models import Vote


class VoteFilter(django_filters.FilterSet):
    poll = django_filters.UUIDFilter(field_name="poll_id", help_text="Only your vote in this poll.")

    class Meta:
        model = Vote
        fields: list[str] = []
