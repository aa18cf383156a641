"""Poll URLs: the versioned API (``api/<version>/polls/``), the v3 entry point, the internal endpoint,
this service's schemas (``api/schema/polls/v<n>/``) and the docs page for all nine (``api/docs/``)."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from polls.api.docs import ApiDocsView
from polls.api.entrypoint import EntryPointView
from polls.api.internal import InternalPollView
from polls.api.views import PollViewSet
from servicekit.api import UUID_PATTERN, schema_urlpatterns, versioned_urlpatterns

router = SimpleRouter()
router.register("polls", PollViewSet, basename="poll")

api_urlpatterns = [
    *versioned_urlpatterns(router.urls),
    *versioned_urlpatterns([path("", EntryPointView.as_view(), name="entry-point")], versions=("v3",)),
]

internal_urlpatterns = [
    re_path(rf"^internal/polls/(?P<poll_id>{UUID_PATTERN})/$", InternalPollView.as_view(), name="internal-poll"),
]

docs_urlpatterns = [
    *schema_urlpatterns("polls"),
    path("api/docs/", ApiDocsView.as_view(), name="api-docs"),
]
