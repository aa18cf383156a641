from rest_framework.routers import SimpleRouter

from choices.api.views import ChoiceViewSet

router = SimpleRouter()
router.register("choices", ChoiceViewSet, basename="choice")

urlpatterns = router.urls
