from django.urls import re_path

from polls.internal.views import InternalPollView
from servicekit.api import UUID_PATTERN

urlpatterns = [
    re_path(rf"^internal/polls/(?P<poll_id>{UUID_PATTERN})/$", InternalPollView.as_view(), name="internal-poll"),
]
