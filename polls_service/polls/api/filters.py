"""Poll filters (v2 and later): ``status``, ``owner``, ``search``; ordering is declared on the view set."""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema_field

from polls.models import Poll, PollStatus
from servicekit.api.fields import has_control_characters, text_pattern

SEARCH_MAX = 200


def _no_control_characters(value: str) -> None:
    if has_control_characters(value):
        raise ValidationError("Control characters are not allowed.")


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1})
class UserIdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


@extend_schema_field({"type": "string", "maxLength": SEARCH_MAX, "pattern": text_pattern(allow_blank=True)})
class SearchFilter(django_filters.CharFilter):
    pass


class PollFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=PollStatus.choices, help_text="Only polls in this state.")
    owner = UserIdFilter(
        field_name="owner_id", min_value=0, max_value=2**63 - 1, help_text="Only polls of this user id."
    )
    search = SearchFilter(
        method="filter_search",
        max_length=SEARCH_MAX,
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
