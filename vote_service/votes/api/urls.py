"""Public routes of votes: ``api/<version>/votes/`` and ``api/<version>/results/{poll}/`` (v1-v3) and this
service's OpenAPI documents (``api/schema/votes/v<n>/``)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from servicekit.api import schema_urlpatterns, versioned_urlpatterns
from votes.api.views import ResultsView, VoteViewSet

router = SimpleRouter()
router.register("votes", VoteViewSet, basename="vote")

urlpatterns = [
    *versioned_urlpatterns([*router.urls, path("results/<uuid:poll_id>/", ResultsView.as_view(), name="results")]),
    *schema_urlpatterns("votes"),
]
