"""URLs of choice_service. Paths match the gateway's, so nothing is rewritten on the way in."""

from django.contrib import admin
from django.urls import include, path

from servicekit.errors import install_django_handlers
from servicekit.urls import ops_urlpatterns

admin.site.site_header = "choices service administration"
admin.site.site_title = "choices service"

urlpatterns = [
    *ops_urlpatterns,
    path("admin/choices/", admin.site.urls),
    path("", include("choices.api.urls")),
    path("", include("choices.internal.urls")),
]

install_django_handlers(globals())
