"""Identifier fields that accept only what the OpenAPI schema promises.

DRF's ``UUIDField`` also turns an integer into a UUID (``5`` -> ``00000000-...-0005``), so a client
sending a number where the schema says ``string``/``uuid`` would get a confusing 404/422 instead of a
400. ``StrictUUIDField`` accepts strings only. Likewise DRF's ``IntegerField`` takes ``"5"`` and
``true``; ``StrictIntegerField`` takes JSON numbers with an integral value only::

    from servicekit.api.strict_fields import StrictIntegerField, StrictUUIDField

    class VoteCreateSerializer(serializers.Serializer):
        poll = StrictUUIDField()

    class ChoiceUpdateSerializer(serializers.Serializer):
        position = StrictIntegerField(min_value=0)
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StrictUUIDField(serializers.UUIDField):
    """A ``UUIDField`` whose input must be a string (numbers, booleans and objects are a 400)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """An ``IntegerField`` whose input must be a JSON number with an integral value (not a string or boolean)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        if isinstance(data, float) and not data.is_integer():
            self.fail("invalid")
        return super().to_internal_value(data)
