"""Public routes of choices: ``api/<version>/choices/`` (v1-v3) and this service's OpenAPI documents
(``api/schema/choices/v<n>/``)."""

from rest_framework.routers import SimpleRouter

from choices.api.views import ChoiceViewSet
from servicekit.api import schema_urlpatterns, versioned_urlpatterns

router = SimpleRouter()
router.register("choices", ChoiceViewSet, basename="choice")

urlpatterns = [
    *versioned_urlpatterns(router.urls),
    *schema_urlpatterns("choices"),
]
