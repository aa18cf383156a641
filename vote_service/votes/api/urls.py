from django.urls import path
from rest_framework.routers import SimpleRouter

from votes.api.views import ResultsView, VoteViewSet

router = SimpleRouter()
router.register("votes", VoteViewSet, basename="vote")

urlpatterns = [
    *router.urls,
    path("results/<uuid:poll_id>/", ResultsView.as_view(), name="results"),
]
