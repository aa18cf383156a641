"""Routes of the accounts app; polls_service mounts ``auth_urlpatterns`` under every API version."""

from django.urls import path

from accounts.api import views

auth_urlpatterns = [
    path("auth/register/", views.RegisterView.as_view(), name="auth-register"),
    path("auth/token/", views.TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh/", views.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/me/", views.MeView.as_view(), name="auth-me"),
]

wellknown_urlpatterns = [path(".well-known/jwks.json", views.jwks_view, name="jwks")]
