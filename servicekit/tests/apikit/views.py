"""Tiny versioned views over ``auth.Group`` that exercise servicekit.api without any service code."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from servicekit.api import VersionedAPIView, VersionedGenericViewSet, link, links_field
from servicekit.api import action as hal_action
from servicekit.api.fields import TextField
from servicekit.api.schema import problem_response, schema_urlpatterns
from servicekit.api.versioning import versioned_urlpatterns

CALLS = {"create": 0, "crash": 0}


class GroupInput(serializers.Serializer):
    name = TextField(min_length=1, max_length=150)


class GroupV1(serializers.ModelSerializer):
    class Meta:
        model = Group
        fields = ("id", "name")


class GroupV3(GroupV1):
    _links = links_field("self", optional=("rename",))

    class Meta(GroupV1.Meta):
        fields = ("id", "name", "_links")

    def get__links(self, group: Group) -> dict[str, Any]:
        return {
            "self": link(f"/api/v3/groups/{group.id}/"),
            "rename": hal_action(f"/api/v3/groups/{group.id}/", "PATCH"),
        }


class ShoutSerializer(serializers.Serializer):
    name = serializers.CharField()


class GroupViewSet(VersionedGenericViewSet):
    """Groups (a stand-in resource)."""

    queryset = Group.objects.all()
    serializer_classes = {"v1": GroupV1, "v3": GroupV3}
    input_serializer_classes = {"create": GroupInput, "crash": GroupInput, "shout": None}
    v2_filter_backends = (OrderingFilter,)
    ordering_fields = ("id", "name")
    ordering = ("-id",)
    embedded_name = "groups"
    action_versions = {"shout": ("v2", "v3")}
    error_statuses = {"create": (409,)}

    def list(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        return Response(self.get_serializer(self.get_object()).data)

    def create(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        data = self.validated_input(request)
        CALLS["create"] += 1
        group = Group.objects.create(name=data["name"])
        return Response(self.get_serializer(group).data, status=201, headers={"Location": f"/groups/{group.id}/"})

    @action(detail=False, methods=["post"])
    def crash(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        CALLS["crash"] += 1
        raise RuntimeError("boom")

    @extend_schema(responses={200: ShoutSerializer, 409: problem_response(409, "Too loud already.")})
    @action(detail=True, methods=["post"])
    def shout(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        group = self.get_object()
        return Response({"name": group.name.upper()})


class OnlyV3(VersionedAPIView):
    versions = ("v3",)

    def get(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        return Response({"version": request.version})


router = SimpleRouter()
router.register("groups", GroupViewSet, basename="group")

urlpatterns = [
    *versioned_urlpatterns(router.urls),
    *versioned_urlpatterns([path("only3/", OnlyV3.as_view())]),
    *schema_urlpatterns("kit"),
]
