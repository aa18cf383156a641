"""Public routes of polls: ``api/<version>/polls/`` (v1-v3), the v3 entry point (``api/v3/``), this
service's OpenAPI documents (``api/schema/polls/v<n>/``) and the docs page for every service (``api/docs/``)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from polls.api.docs import ApiDocsView
from polls.api.entrypoint import EntryPointView
from polls.api.views import PollViewSet
from servicekit.api import schema_urlpatterns, versioned_urlpatterns

router = SimpleRouter()
router.register("polls", PollViewSet, basename="poll")

urlpatterns = [
    *versioned_urlpatterns(router.urls),
    *versioned_urlpatterns([path("", EntryPointView.as_view(), name="entry-point")], versions=("v3",)),
    *schema_urlpatterns("polls"),
    path("api/docs/", ApiDocsView.as_view(), name="api-docs"),
]
