"""Public routes of accounts: ``api/<version>/auth/...`` (v1-v3) and the public key set ``.well-known/jwks.json``."""

from django.urls import path

from accounts.api import views
from servicekit.api import versioned_urlpatterns

urlpatterns = [
    *versioned_urlpatterns(
        [
            path("auth/register/", views.RegisterView.as_view(), name="auth-register"),
            path("auth/token/", views.TokenObtainView.as_view(), name="auth-token"),
            path("auth/token/refresh/", views.TokenRefreshView.as_view(), name="auth-token-refresh"),
            path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
            path("auth/logout/all/", views.LogoutEverywhereView.as_view(), name="auth-logout-everywhere"),
            path("auth/password/", views.PasswordChangeView.as_view(), name="auth-password"),
            path("auth/me/", views.MeView.as_view(), name="auth-me"),
        ]
    ),
    path(".well-known/jwks.json", views.jwks_view, name="jwks"),
]
