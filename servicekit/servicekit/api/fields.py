"""Text input fields: trimmed, control characters rejected, length limits enforced (all as 400).

Use them for every free-text input so the rule is identical in every service::

    from servicekit.api.fields import TextField

    class PollWriteSerializer(serializers.Serializer):
        question = TextField(min_length=1, max_length=500)
        description = TextField(max_length=5000, multiline=True, required=False, allow_blank=True)

The OpenAPI schema carries a ``pattern`` that says the same (no control characters, not blank), so
schema-driven clients and fuzzers generate only values the service accepts.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

# C0 and C1 control characters and DEL. (Lone surrogates cannot come out of valid UTF-8 JSON text; DRF's
# CharField refuses them anyway. Leaving them out of the pattern keeps it usable by every regex engine.)
_SINGLE_LINE_FORBIDDEN = "\\x00-\\x1f\\x7f-\\x9f"
# Multi-line text may contain tab, line feed and carriage return.
_MULTILINE_FORBIDDEN = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f"
# Whitespace that trimming removes (``str.isspace``) beyond the control characters above: spelled out,
# because ``\\s`` means ASCII whitespace to some engines and Unicode whitespace to others.
_SPACES = "\\x20\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_CONTROL_SPACES = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f\\x85"

_ALLOWED_IN_MULTILINE = {"\t", "\n", "\r"}


def has_control_characters(value: str, *, multiline: bool = False) -> bool:
    """True when ``value`` contains a control character (or a lone surrogate) not allowed in the field."""
    for char in value:
        if multiline and char in _ALLOWED_IN_MULTILINE:
            continue
        if unicodedata.category(char) in ("Cc", "Cs"):
            return True
    return False


def text_pattern(*, multiline: bool = False, allow_blank: bool = False, forbidden: str | None = None) -> str:
    """The regular expression (OpenAPI ``pattern``) that a valid value of a ``TextField`` matches.

    ``forbidden`` overrides the excluded characters (a character-class body), e.g. ``"\\x00"`` for a
    plain ``CharField`` that only refuses NUL.
    """
    if forbidden is None:
        forbidden = _MULTILINE_FORBIDDEN if multiline else _SINGLE_LINE_FORBIDDEN
    if allow_blank:
        return f"^[^{forbidden}]*$"
    # At least one character that survives trimming.
    return f"^[^{forbidden}]*[^{forbidden}{_SPACES}{_CONTROL_SPACES}][^{forbidden}]*$"


class TextField(serializers.CharField):
    """A ``CharField`` that trims, rejects control characters (NUL included) and enforces lengths.

    ``multiline=True`` allows tab, CR and LF (descriptions); everything else in Unicode category Cc
    is rejected. Lengths apply to the trimmed value.
    """

    default_error_messages = {
        "control_characters": _("Control characters are not allowed."),
    }

    def __init__(self, *, multiline: bool = False, **kwargs: Any):
        kwargs.setdefault("trim_whitespace", True)
        self.multiline = multiline
        super().__init__(**kwargs)
        self._pattern = text_pattern(multiline=multiline, allow_blank=self.allow_blank)

    def to_internal_value(self, data: Any) -> str:
        # Only strings are text: numbers and booleans are a client error, not something to coerce.
        if not isinstance(data, str):
            self.fail("invalid")
        if has_control_characters(data, multiline=self.multiline):
            self.fail("control_characters")
        return super().to_internal_value(data)


def _register_schema_extension() -> None:
    from drf_spectacular.extensions import OpenApiSerializerFieldExtension
    from drf_spectacular.plumbing import build_basic_type
    from drf_spectacular.types import OpenApiTypes

    class TextFieldExtension(OpenApiSerializerFieldExtension):
        target_class = TextField
        match_subclasses = True

        def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
            field: TextField = self.target
            schema = build_basic_type(OpenApiTypes.STR) or {"type": "string"}  # None only for OpenApiTypes.NONE
            if field.max_length is not None:
                schema["maxLength"] = field.max_length
            if field.min_length is not None:
                schema["minLength"] = field.min_length
            elif not field.allow_blank:
                schema["minLength"] = 1
            if direction == "request":
                schema["pattern"] = field._pattern
            return schema


_register_schema_extension()

__all__ = ["TextField", "has_control_characters", "text_pattern"]
