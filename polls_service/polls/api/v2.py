"""v2 additions for polls: filtering (``status``, ``owner``, ``search``) and ordering."""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from polls.models import Poll, PollStatus
from servicekit.api.fields import has_control_characters


def _no_control_characters(value: str) -> None:
    if has_control_characters(value):
        raise ValidationError("Control characters are not allowed.")


class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class PollFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=PollStatus.choices, help_text="Only polls in this state.")
    owner = IntegerFilter(
        field_name="owner_id", min_value=0, max_value=2**63 - 1, help_text="Only polls of this user id."
    )
    search = django_filters.CharFilter(
        method="filter_search",
        max_length=200,
        validators=[_no_control_characters],
        help_text="Text in the question or description.",
    )

    class Meta:
        model = Poll
        fields = ("status", "owner", "search")

    def filter_search(self, queryset: QuerySet[Poll], name: str, value: str) -> QuerySet[Poll]:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(question__icontains=value) | Q(description__icontains=value))
