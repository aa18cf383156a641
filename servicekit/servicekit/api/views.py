"""Versioned API views: one view class serves v1, v2 and v3, choosing per ``request.version``.

A service view declares what differs per version and inherits the rest::

    from servicekit.api import VersionedGenericViewSet

    class PollViewSet(mixins.ListModelMixin, VersionedGenericViewSet):
        serializer_classes = {"v1": PollSerializer, "v3": PollHALSerializer}  # v2 falls back to v1
        v2_filter_backends = (DjangoFilterBackend, SearchFilter, OrderingFilter)  # v2 and later
        embedded_name = "polls"                                                 # v3 collection key
        ordering = ("-created_at",)

What the mixin does for every request:

- version: URL path (``api/<version>/``); renderer: HAL (``application/hal+json``) for v3, JSON otherwise;
  pagination: page numbers (v1), cursors (v2), HAL collections (v3); filters only from v2.
- bodies over ``SERVICEKIT["MAX_BODY_BYTES"]`` -> 413; malformed JSON -> 400; other media types -> 415.
- v1: ``Deprecation``/``Sunset``/``Link`` headers (``servicekit.api.deprecation``).
- v2+: ``ETag`` on every successful GET, ``If-None-Match`` -> 304 (``servicekit.api.conditional``);
  ``Idempotency-Key`` on POST (``servicekit.api.idempotency``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from rest_framework import exceptions, generics, viewsets
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from servicekit.api import idempotency
from servicekit.api.conditional import apply_etag
from servicekit.api.deprecation import add_deprecation_headers
from servicekit.api.pagination import pagination_for
from servicekit.api.renderers import HALJSONRenderer
from servicekit.api.schema import VersionedAutoSchema
from servicekit.api.versioning import VERSIONS, PathVersioning, for_version, version_at_least
from servicekit.conf import servicekit_settings
from servicekit.errors import Problem


class HeaderContentNegotiation(DefaultContentNegotiation):
    """Content negotiation by ``Accept`` only: ``?format=`` is an ordinary (ignored) query parameter."""

    # Only URL_FORMAT_OVERRIDE is read from it: a namespace instead of DRF's api_settings (which honour ?format=).
    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)  # type: ignore[assignment]

    # DRF passes the list from APIView.get_renderers(); the stub's Iterable would not allow renderers[0].
    def select_renderer(  # type: ignore[override]
        self, request: Any, renderers: Sequence[Any], format_suffix: str | None = None
    ) -> Any:
        # What API clients send (no Accept, ``*/*``, or exactly the first renderer's type) picks the first
        # renderer, as DRF's parsing of the header would: answered without parsing it on every request.
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        if format_suffix is None and renderers and accept in ("*/*", renderers[0].media_type):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)


if TYPE_CHECKING:  # what the mixin is mixed into: its super() calls and attributes are GenericAPIView's
    _ViewBase = generics.GenericAPIView[Any]
else:
    _ViewBase = object


class VersionedViewMixin(_ViewBase):
    """Selects serializer, pagination, renderers and filters by API version; adds v1/v2+ HTTP semantics."""

    versioning_class = PathVersioning
    content_negotiation_class = HeaderContentNegotiation
    schema = VersionedAutoSchema()
    #: ``{"v1": S1, "v3": S3}``; a version without an entry uses the latest earlier one.
    serializer_classes: Mapping[str, Any] = {}
    #: Request-body serializer per action when it differs from the representation, e.g.
    #: ``{"create": PollCreateSerializer, "open": None}`` (``None``: the action takes no body).
    input_serializer_classes: Mapping[str, Any] = {}
    #: Filter backends used from v2 on (v1 has no filtering).
    v2_filter_backends: Sequence[Any] = ()
    #: Key of the item list in a v3 HAL collection (``_embedded.<name>``).
    embedded_name: str | None = None
    #: Versions this view serves (the schema of other versions leaves it out; requests get 404).
    versions: Sequence[str] = VERSIONS
    #: Actions that exist only in some versions, e.g. ``{"partial_update": ("v2", "v3")}`` (others: 405).
    action_versions: Mapping[str, Sequence[str]] = {}
    #: Extra problem statuses per action for the OpenAPI schema, e.g. ``{"open": (409, 503)}``.
    error_statuses: Mapping[str, Sequence[int]] = {}
    _idempotency_claim: idempotency.Claim | None

    # --- version-dependent choices ------------------------------------------------------------------

    @property
    def api_version(self) -> str | None:
        """The request's version; available before DRF's ``determine_version`` too (from the URL)."""
        request = getattr(self, "request", None)
        return getattr(request, "version", None) or getattr(self, "kwargs", {}).get("version")

    def get_serializer_class(self) -> Any:
        if self.serializer_classes:
            return for_version(self.serializer_classes, self.api_version)
        return super().get_serializer_class()

    def get_input_serializer_class(self) -> Any:
        """The request-body serializer of the current action (the representation's when not declared)."""
        action = getattr(self, "action", None)
        if action is not None and action in self.input_serializer_classes:
            return self.input_serializer_classes[action]
        return self.get_serializer_class()

    def validated_input(self, request: Any, *, partial: bool = False) -> dict[str, Any]:
        """The request body validated by the action's input serializer (400 problem+json otherwise).

        An input serializer on a hot path may define ``fast_validate(data) -> dict | None``: the
        validated data of a well-formed body, or None for anything else, which the serializer itself
        then validates (and answers 400 for), so error messages have one source.
        """
        serializer_class = self.get_input_serializer_class()
        fast_validate = getattr(serializer_class, "fast_validate", None)
        if fast_validate is not None and not partial:
            validated: dict[str, Any] | None = fast_validate(request.data)
            if validated is not None:
                return validated
        serializer = serializer_class(data=request.data, partial=partial, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def represent(self, instance: Any, *, many: bool = False, context: Mapping[str, Any] | None = None) -> Any:
        """The version's representation of ``instance`` (of each item with ``many``).

        A serializer on a hot path may define a classmethod ``fast_represent(instance, context) -> dict |
        None``: what its ``.data`` would be, without building and binding a deep copy of its fields for
        every call; None for anything it does not handle, which the serializer itself then renders.
        """
        serializer_class = self.get_serializer_class()
        if context is None:
            context = self.get_serializer_context()
        fast_represent = getattr(serializer_class, "fast_represent", None)
        if fast_represent is not None:
            bodies = [fast_represent(item, context) for item in (instance if many else [instance])]
            if None not in bodies:
                return bodies if many else bodies[0]
        return serializer_class(instance, many=many, context=context).data

    @property
    def pagination_class(self) -> Any:  # type: ignore[override]  # a property: chosen per version
        return pagination_for(self.api_version, self.embedded_name)

    @property
    def filter_backends(self) -> list[Any]:  # type: ignore[override]  # a property: none in v1
        return list(self.v2_filter_backends) if version_at_least(self.api_version, "v2") else []

    def filter_queryset(self, queryset: Any) -> Any:
        queryset = super().filter_queryset(queryset)
        # v1 has no filters and page-number pagination: keep the view's order so pages are stable.
        ordering = getattr(self, "ordering", None)
        if ordering and not version_at_least(self.api_version, "v2") and hasattr(queryset, "order_by"):
            queryset = queryset.order_by(*ordering)
        return queryset

    def get_renderers(self) -> list[Any]:
        if self.api_version == "v3":
            return [HALJSONRenderer(), JSONRenderer()]
        return [JSONRenderer()]

    def serves(self, version: str | None, action: str | None) -> bool:
        """Whether this view answers ``action`` in ``version`` (see ``versions``/``action_versions``)."""
        if version not in self.versions:
            return False
        allowed = self.action_versions.get(action or "")
        return allowed is None or version in allowed

    @property
    def allowed_methods(self) -> list[str]:
        """``Allow`` lists only the methods this version serves (``action_versions``)."""
        methods: list[str] = super().allowed_methods
        action_map = getattr(self, "action_map", None) or {}
        version = self.api_version
        if not action_map or version is None:
            return methods
        return [m for m in methods if m.lower() not in action_map or self.serves(version, action_map[m.lower()])]

    @property
    def actor(self) -> Any:
        """The authenticated ``Principal``, or ``None`` for an anonymous caller."""
        user = getattr(self.request, "user", None)
        return user if getattr(user, "is_authenticated", False) else None

    # --- request life cycle -------------------------------------------------------------------------

    def initial(self, request: Any, *args: Any, **kwargs: Any) -> None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > servicekit_settings.MAX_BODY_BYTES:
            raise Problem("The request body is larger than this service accepts.", status=413, code="payload-too-large")
        super().initial(request, *args, **kwargs)
        if not self.serves(request.version, getattr(self, "action", None)):
            if request.version not in self.versions:
                raise exceptions.NotFound()
            raise exceptions.MethodNotAllowed(request.method)
        key = request.META.get(idempotency.HEADER_META) if request.method == "POST" else None
        if key is not None and version_at_least(request, "v2"):
            user = self.actor
            self._idempotency_claim = idempotency.claim(
                key=key,
                scope=f"user:{user.id}" if user is not None else "anonymous",
                method=request.method,
                path=request.get_full_path(),
                body=request.body,
            )

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, idempotency.Replay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        claim = getattr(self, "_idempotency_claim", None)
        if claim is not None:
            claim.store(response)
            self._idempotency_claim = None
        version = getattr(request, "version", None)
        if version is not None:
            add_deprecation_headers(response, version, request.path)
        if request.method in ("GET", "HEAD") and response.status_code == 200 and version_at_least(request, "v2"):
            response = apply_etag(request, response)
        return response

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self._idempotency_claim = None
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            # Still claimed here only when the view crashed: free the key so the client can retry.
            claim = getattr(self, "_idempotency_claim", None)
            if claim is not None:
                claim.release()
                self._idempotency_claim = None


class VersionedAPIView(VersionedViewMixin, APIView):
    """An ``APIView`` served at ``api/<version>/`` with the platform's versioned behaviour."""


class VersionedGenericAPIView(VersionedViewMixin, generics.GenericAPIView[Any]):
    """A ``GenericAPIView`` with the platform's versioned behaviour."""


class VersionedGenericViewSet(VersionedViewMixin, viewsets.GenericViewSet[Any]):
    """A ``GenericViewSet`` with the platform's versioned behaviour; add the model mixins you need."""
