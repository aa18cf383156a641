from django.urls import path

from votes.internal.views import InternalPollState, InternalPollVotes

urlpatterns = [
    path("internal/polls/<uuid:poll_id>/state/", InternalPollState.as_view(), name="internal-poll-state"),
    path("internal/polls/<uuid:poll_id>/votes/", InternalPollVotes.as_view(), name="internal-poll-votes"),
]
