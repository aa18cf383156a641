"""URLs of polls_service. Paths match the gateway's, so nothing is rewritten on the way in."""

from django.contrib import admin
from django.urls import include, path

from servicekit.errors import install_django_handlers
from servicekit.urls import ops_urlpatterns

admin.site.site_header = "polls service administration"
admin.site.site_title = "polls service"

urlpatterns = [
    *ops_urlpatterns,
    path("admin/polls/", admin.site.urls),
    path("", include("accounts.api.urls")),
    path("", include("polls.api.urls")),
    path("", include("polls.internal.urls")),
]

install_django_handlers(globals())
