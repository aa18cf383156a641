"""Choice filters: ``poll`` (v2 and later as a filter backend; v1 applies the same set in the view)."""

from __future__ import annotations

import django_filters

from choices.models import Choice


class ChoiceFilter(django_filters.FilterSet):
    poll = django_filters.UUIDFilter(field_name="poll_id", help_text="Only the choices of this poll.")

    class Meta:
        model = Choice
        fields: list[str] = []
