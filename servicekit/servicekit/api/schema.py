"""OpenAPI (drf-spectacular) for versioned views: every error, 304 and header documented.

Services set the schema class once (``servicekit.settings`` does) and mount one schema per version::

    REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "servicekit.api.schema.VersionedAutoSchema"}

    from servicekit.api import schema_urlpatterns
    urlpatterns = [*schema_urlpatterns("polls")]   # /api/schema/polls/v1/ ... /api/schema/polls/v3/

``VersionedAutoSchema`` adds to every operation the problem+json responses it can produce (401 and
429 everywhere; 400/413/415 with a body; 403 on writes; 404 on detail paths and paginated lists;
304 + ``If-None-Match`` + ``ETag`` on v2+ reads; ``Idempotency-Key`` + 409/422 on v2+ POST;
``RateLimit-Policy`` + ``RateLimit`` on operations with a token bucket, ``servicekit.ratelimit``), marks
v1 operations ``deprecated`` with their ``Deprecation``/``Sunset``/``Link`` headers, and lets a view
add statuses per action::

    class PollViewSet(VersionedViewMixin, viewsets.GenericViewSet):
        error_statuses = {"open": (409, 503), "create": (409,)}
"""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any, Literal

from django.urls import path
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_doc
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers

from servicekit.api.fields import text_pattern
from servicekit.api.versioning import VERSIONS, version_at_least
from servicekit.conf import servicekit_settings
from servicekit.errors import PROBLEM_CONTENT_TYPE

DESCRIPTIONS = {
    304: "Not modified: the representation still matches `If-None-Match`.",
    400: "Invalid input (malformed JSON, wrong types, failed validation) or invalid query parameters.",
    401: "Missing, invalid or expired credentials.",
    403: "The caller may not perform this action.",
    404: "No such resource (or not visible to the caller), or an invalid page or cursor.",
    405: "Method not allowed.",
    409: "Conflicts with the resource's current state (or the same Idempotency-Key is still in progress).",
    412: "A precondition (`If-Match`) failed.",
    413: "Request body larger than 64 KiB.",
    415: "Unsupported media type: send `application/json`.",
    422: "Well-formed but cannot be applied (e.g. an Idempotency-Key reused with a different body).",
    429: "Too many requests; retry after `Retry-After` seconds.",
    503: "A dependency is unavailable; retry after `Retry-After` seconds.",
}

_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class ProblemSerializer(serializers.Serializer[Any]):
    """RFC 9457 problem details, the body of every error response."""

    type = serializers.CharField(help_text="URI identifying the problem type.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    # Optional (RFC 9457): the services always send it, the gateway's own answers (413, 502) do not.
    instance = serializers.CharField(required=False, help_text="Path of the request that failed.")
    # SerializerMetaclass pops declared fields off the class, so this field never hides Serializer.errors.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages per field, for validation errors.",
    )


def _header(name: str, description: str, *, response: Any = True, type_: Any = OpenApiTypes.STR) -> OpenApiParameter:
    return OpenApiParameter(
        name=name, type=type_, location=OpenApiParameter.HEADER, response=response, description=description
    )


class VersionedAutoSchema(AutoSchema):
    """``AutoSchema`` that documents the platform's error responses, conditional requests and versions."""

    def _api_version(self) -> str | None:
        request = getattr(self.view, "request", None)
        return getattr(request, "version", None) or getattr(self.view, "kwargs", {}).get("version")

    def _is_versioned(self) -> bool:
        return self._api_version() in VERSIONS

    def is_excluded(self) -> bool:
        serves = getattr(self.view, "serves", None)
        if (
            serves is not None
            and self._is_versioned()
            and not serves(self._api_version(), getattr(self.view, "action", None))
        ):
            return True
        return super().is_excluded()

    def get_description(self) -> str:  # type: ignore[override]
        # The view's own docstring only: never the generic text of servicekit's base classes.
        action_or_method = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        action_doc = get_doc(action_or_method) if action_or_method is not None else ""
        own_doc = self.view.__class__.__dict__.get("__doc__") or ""
        return action_doc or (get_doc(self.view.__class__) if own_doc else "")

    def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> Any:
        # drf-spectacular leaves its private AutoSchema hooks unannotated (untyped_calls_exclude misses super()).
        schema = super()._map_serializer_field(field, direction, bypass_extensions)  # type: ignore[no-untyped-call]
        # A plain CharField refuses NUL and, when it trims, whitespace-only values: say so, so a schema-driven
        # client never sends what the field refuses (TextField documents its own, stricter rule).
        if (
            direction == "request"
            and type(field) is serializers.CharField
            and isinstance(schema, dict)
            and schema.get("type") == "string"
            and "pattern" not in schema
            and "format" not in schema
            and not any(hasattr(validator, "regex") for validator in field.validators)
        ):
            if field.allow_blank:
                schema["pattern"] = text_pattern(forbidden="\\x00", allow_blank=True)
            else:
                schema["minLength"] = max(schema.get("minLength", 1), 1)
                schema["pattern"] = text_pattern(forbidden="\\x00", allow_blank=not field.trim_whitespace)
        return schema

    def _map_basic_serializer(self, serializer: Any, direction: str) -> Any:
        schema = super()._map_basic_serializer(serializer, direction)  # type: ignore[no-untyped-call]  # as above
        # Serializers that refuse unknown fields (``reject_unknown_fields = True``) say so in requests.
        if direction == "request" and getattr(serializer, "reject_unknown_fields", False) and isinstance(schema, dict):
            schema["additionalProperties"] = False
        return schema

    def _get_format_parameters(self) -> list[Any]:
        # Versioned views negotiate by Accept only (``HeaderContentNegotiation``): no ``?format=``.
        return [] if self._is_versioned() else super()._get_format_parameters()

    def _get_filter_parameters(self) -> list[Any]:
        parameters: list[Any] = super()._get_filter_parameters()  # type: ignore[no-untyped-call]  # as above
        # django-filter treats an empty value (``?status=``) as "no filter": document that it is accepted.
        for parameter in parameters:
            schema = parameter.get("schema")
            if parameter.get("required") or not isinstance(schema, dict):
                continue
            if "enum" in schema or "format" in schema or schema.get("type") in ("integer", "number", "boolean"):
                parameter["schema"] = {"oneOf": [schema, {"type": "string", "maxLength": 0}]}
        return parameters

    def get_auth(self) -> list[dict[str, Any]]:
        auths = super().get_auth()
        # Reads that anyone may make declare the bearer token optional (``{}``), so clients and
        # fuzzers know an anonymous 200 is intended, not an ignored credential.
        if auths and {} not in auths and self._anonymous_allowed():
            auths.append({})
        return auths

    def _anonymous_allowed(self) -> bool:
        anonymous = SimpleNamespace(is_authenticated=False, is_anonymous=True, id=None, pk=None, roles=frozenset())
        request = SimpleNamespace(method=self.method, user=anonymous, auth=None, headers={}, META={}, data={})
        try:
            return all(
                permission.has_permission(request, self.view)  # type: ignore[arg-type]  # the shim above
                for permission in self.view.get_permissions()
            )
        except Exception:  # a permission that needs more of the request than the shim has: assume not
            return False

    def get_tags(self) -> list[str]:
        # "/api/{version}/polls/{id}/" -> "polls" (the resource), not "api".
        parts = [part for part in self.path.strip("/").split("/") if part and not part.startswith("{")]
        if len(parts) >= 3 and parts[0] == "api" and parts[1] in VERSIONS:
            return [parts[2]]
        if len(parts) == 2 and parts[0] == "api":
            return ["entry point"]
        return super().get_tags()

    def get_request_serializer(self) -> Any:
        get_input = getattr(self.view, "get_input_serializer_class", None)
        if get_input is not None and getattr(self.view, "action", None) in getattr(
            self.view, "input_serializer_classes", {}
        ):
            return get_input()
        return super().get_request_serializer()

    def get_operation(self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any) -> Any:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is not None and self._deprecation():
            operation["deprecated"] = True
        return operation

    def _rate_limited(self) -> bool:
        """Whether this operation spends a token bucket (``servicekit.ratelimit.rate_limited``)."""
        route = getattr(self.view, "rate_limit", None)
        return route is not None and self.method in route.methods

    def _deprecation(self) -> dict[str, Any] | None:
        import servicekit.api.deprecation  # noqa: F401 - registers the API_DEPRECATIONS default

        deprecation: dict[str, Any] | None = servicekit_settings.API_DEPRECATIONS.get(self._api_version() or "")
        return deprecation

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if not self._is_versioned():
            return parameters
        version = self._api_version()
        if version_at_least(version, "v2") and self.method == "GET":
            parameters.append(
                OpenApiParameter(
                    name="If-None-Match",
                    type=OpenApiTypes.STR,
                    location=OpenApiParameter.HEADER,
                    required=False,
                    description="An ETag from an earlier response; answered with 304 when unchanged.",
                )
            )
            parameters.append(_header("ETag", "Strong validator of this representation.", response=[200, 304]))
        if version_at_least(version, "v2") and self.method == "POST":
            parameters.append(
                OpenApiParameter(
                    name="Idempotency-Key",
                    type={"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
                    location=OpenApiParameter.HEADER,
                    required=False,
                    description="Unique key per intended operation; a retry with the same key and body replays "
                    "the original response instead of executing again.",
                )
            )
            parameters.append(
                _header("Idempotent-Replayed", "`true` when this response is a replay.", response=[200, 201])
            )
        if self._rate_limited():
            parameters += [
                _header(
                    "RateLimit-Policy",
                    'The token bucket of this route class (`"vote";q=<size>;w=<seconds to refill>`).',
                ),
                _header("RateLimit", 'What is left of it (`"vote";r=<tokens left>;t=<seconds until full>`).'),
            ]
        if self._deprecation():
            parameters += [
                _header("Deprecation", "When this API version was deprecated (RFC 9745, `@<unix time>`)."),
                _header("Sunset", "When this API version stops being served (RFC 8594)."),
                _header("Link", 'The successor version of this resource (`rel="successor-version"`).'),
            ]
        return parameters

    # --- error responses -------------------------------------------------------------------------------

    def error_statuses(self) -> set[int]:
        """The problem+json statuses this operation can answer."""
        version = self._api_version()
        codes = {401, 429}
        has_body = self.method in _BODY_METHODS and self.get_request_serializer() is not None
        if has_body:
            codes |= {400, 413, 415}
        if self.method in _WRITE_METHODS:
            codes.add(403)
        if "{" in self.path.replace("{version}", ""):
            codes.add(404)
        if self.method == "GET" and self._is_list_view():
            if getattr(self.view, "pagination_class", None):
                codes |= {400, 404}  # an invalid page_size; a page or cursor that does not exist
            if self.get_filter_backends():
                codes.add(400)
        if self.method == "POST" and version_at_least(version, "v2"):
            codes |= {400, 409, 422}  # Idempotency-Key: malformed, in progress, reused with another body
        extra: Any = getattr(self.view, "error_statuses", None) or {}
        if isinstance(extra, dict):
            action = getattr(self.view, "action", None) or self.method.lower()
            codes |= set(extra.get(action, ())) | set(extra.get("*", ()))
        elif isinstance(extra, Iterable):
            codes |= set(extra)
        return codes

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response" or not self._is_versioned():
            return responses
        problem = self.resolve_serializer(ProblemSerializer, "response").ref
        for status_code, body in responses.items():
            # Problems declared by a view (``problem_response``) are served as problem+json, whatever the renderers.
            content = body.get("content") if isinstance(body, dict) else None
            if status_code >= "400" and content and any(media.get("schema") == problem for media in content.values()):
                body["content"] = {PROBLEM_CONTENT_TYPE: {"schema": problem}}
        deprecation_headers = self._response_headers_for("400")
        for code in sorted(self.error_statuses()):
            if str(code) in responses:
                continue
            response: dict[str, Any] = {
                "description": DESCRIPTIONS.get(code, ""),
                "content": {PROBLEM_CONTENT_TYPE: {"schema": problem}},
            }
            headers = dict(deprecation_headers)
            if code in (429, 503):
                headers["Retry-After"] = {"schema": {"type": "integer"}, "description": "Seconds to wait."}
            if code == 401:
                headers["WWW-Authenticate"] = {"schema": {"type": "string"}, "description": "The auth scheme."}
            if headers:
                response["headers"] = headers
            responses[str(code)] = response
        if self.method == "GET" and version_at_least(self._api_version(), "v2") and "200" in responses:
            responses["304"] = {
                "description": DESCRIPTIONS[304],
                "headers": self._response_headers_for("304"),
            }
        return responses

    def _response_headers_for(self, code: str) -> dict[str, Any]:
        return self._get_response_headers_for_code(code, "response") or {}


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents ``servicekit.auth.JWTAuthentication`` as an HTTP bearer (RS256 JWT) scheme."""

    target_class = "servicekit.auth.JWTAuthentication"
    name = "bearerAuth"
    match_subclasses = True
    priority = 1

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Access token from `POST /api/v{n}/auth/token/` (`Authorization: Bearer <access>`).",
        }


def problem_response(code: int, description: str | None = None) -> OpenApiResponse:
    """An ``OpenApiResponse`` for ``@extend_schema(responses={409: problem_response(409)})``."""
    return OpenApiResponse(response=ProblemSerializer, description=description or DESCRIPTIONS.get(code, ""))


def schema_settings(service: str, version: str) -> dict[str, Any]:
    """drf-spectacular settings of one service's schema of ``version`` (served and exported alike)."""
    return {
        "TITLE": f"{service} API {version}",
        "DESCRIPTION": (
            f"The {service} service of the Polls Platform, API {version}. Errors are RFC 9457 problem+json. "
            "All paths are gateway paths. Policy for versions and deprecation: README, section API versions."
        ),
        "VERSION": version.lstrip("v") + ".0.0",
    }


def schema_urlpatterns(service: str, *, versions: Iterable[str] = VERSIONS) -> list[Any]:
    """``/api/schema/<service>/<version>/`` for each version: that version's OpenAPI 3 document."""
    patterns = []
    for version in versions:
        view = SpectacularAPIView.as_view(api_version=version, custom_settings=schema_settings(service, version))
        patterns.append(path(f"api/schema/{service}/{version}/", view, name=f"schema-{service}-{version}"))
    return patterns
