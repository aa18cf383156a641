from django.urls import path

from choices.internal.views import InternalChoice, InternalPollChoices, InternalPollState

urlpatterns = [
    path("internal/choices/<uuid:choice_id>/", InternalChoice.as_view(), name="internal-choice"),
    path("internal/polls/<uuid:poll_id>/choices/", InternalPollChoices.as_view(), name="internal-poll-choices"),
    path("internal/polls/<uuid:poll_id>/state/", InternalPollState.as_view(), name="internal-poll-state"),
]
