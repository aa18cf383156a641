"""``/api/docs/``: one Swagger UI (from drf-spectacular-sidecar, served locally) for every service and version."""

from __future__ import annotations

from typing import Any

from django.views.generic import TemplateView

from servicekit.api.versioning import VERSIONS

SERVICES = ("polls", "choices", "votes")


def schema_documents() -> list[dict[str, str]]:
    """The nine schema documents as gateway paths, for the docs page's selector."""
    return [
        {"name": f"{service} {version}", "url": f"/api/schema/{service}/{version}/"}
        for version in reversed(VERSIONS)
        for service in SERVICES
    ]


class ApiDocsView(TemplateView):
    template_name = "polls/api_docs.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["schemas"] = schema_documents()
        return context
