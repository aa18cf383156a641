"""URLs of polls_service. Paths match the gateway's, so nothing is rewritten on the way in."""

from django.contrib import admin
from django.urls import path

from accounts.urls import auth_urlpatterns, wellknown_urlpatterns
from polls.urls import api_urlpatterns, docs_urlpatterns, internal_urlpatterns
from servicekit.api import versioned_urlpatterns
from servicekit.errors import install_django_handlers
from servicekit.urls import ops_urlpatterns

admin.site.site_header = "polls service administration"
admin.site.site_title = "polls service"

urlpatterns = [
    *ops_urlpatterns,
    path("admin/polls/", admin.site.urls),
    *versioned_urlpatterns(auth_urlpatterns),
    *wellknown_urlpatterns,
    *api_urlpatterns,
    *internal_urlpatterns,
    *docs_urlpatterns,
]

install_django_handlers(globals())
