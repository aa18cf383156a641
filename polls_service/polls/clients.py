"""What polls_service asks other services synchronously (guarded by servicekit.http's timeout,
retries and circuit breaker). Only ``poll_open`` does: the number of choices is choice_service's."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from servicekit.errors import Problem
from servicekit.http import ServiceClient, service_client

logger = logging.getLogger(__name__)


def _choices_client() -> ServiceClient:
    return service_client("choices", settings.CHOICE_INTERNAL_URL)


def choice_count(poll_id: Any) -> int | None:
    """How many choices choice_service holds for the poll; ``None`` when it cannot answer right now.

    A 404 means choice_service has no choice (and no replica) for the poll: zero choices.
    """
    try:
        body = _choices_client().get_json(f"/internal/polls/{poll_id}/choices/")
    except Problem as exc:  # ServiceUnavailable (down, breaker open) or UpstreamError (unexpected answer)
        logger.warning(
            "choice_service could not answer; using the choice_count projection",
            extra={"poll": str(poll_id), "status": exc.status_code},
        )
        return None
    if body is None:
        return 0
    choices = body.get("choices")
    return len(choices) if isinstance(choices, list) else None
