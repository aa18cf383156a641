"""URLs of vote_service. Paths match the gateway's, so nothing is rewritten on the way in."""

from django.contrib import admin
from django.urls import include, path

from servicekit.errors import install_django_handlers
from servicekit.urls import ops_urlpatterns

admin.site.site_header = "votes service administration"
admin.site.site_title = "votes service"

urlpatterns = [
    *ops_urlpatterns,
    path("admin/votes/", admin.site.urls),
    path("", include("votes.api.urls")),
    path("", include("votes.internal.urls")),
]

install_django_handlers(globals())
