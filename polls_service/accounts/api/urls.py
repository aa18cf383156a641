"""Public routes of accounts: ``api/<version>/auth/...`` (v1-v3), the public key set ``.well-known/jwks.json``
and OAuth 2.0 (``oauth/token/``, ``oauth/revoke/``, ``.well-known/oauth-authorization-server``)."""

from django.urls import path

from accounts.api import oauth, views
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
    path(".well-known/oauth-authorization-server", oauth.MetadataView.as_view(), name="oauth-metadata"),
    path("oauth/token/", oauth.TokenView.as_view(), name="oauth-token"),
    path("oauth/revoke/", oauth.RevocationView.as_view(), name="oauth-revoke"),
]
