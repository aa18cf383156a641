"""The gates polls_service moves synchronously, before it commits a poll's change (guarded by
servicekit.http's timeout, retries and circuit breaker).

Both are ``PUT /internal/polls/{id}/state/`` with the poll's state at its new version; each is
idempotent by version (a stale command changes nothing and answers the state the gate holds):

- vote_service *seals* the poll (``closed`` / ``deleted``): once that answered, it accepts no vote,
  change or retraction for it;
- choice_service *freezes* its choices (``open``), and refuses (409 ``not-enough-choices``) when the
  poll has fewer than ``min_choices``: the number of choices is choice_service's truth.

Failures raise ``servicekit.errors.ServiceUnavailable`` (unreachable, 5xx, breaker open: 503 with
``Retry-After``), ``NotEnoughChoices`` (409) or ``servicekit.http.UpstreamError`` (any other answer, 502).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from polls.models import Poll
from servicekit.errors import Conflict
from servicekit.http import ServiceClient, UpstreamError, service_client

logger = logging.getLogger(__name__)

_encoder = DjangoJSONEncoder()


class NotEnoughChoices(Conflict):
    """choice_service counted fewer choices than a poll needs to open."""

    def __init__(self, *, choices: int, needed: int):
        super().__init__(
            f"A poll needs at least {needed} choices to open; it has {choices}.",
            code="not-enough-choices",
            extensions={"choices": choices},
        )
        self.choices = choices


def _choices_client() -> ServiceClient:
    return service_client("choices", settings.CHOICE_INTERNAL_URL)


def _votes_client() -> ServiceClient:
    return service_client("votes", settings.VOTE_INTERNAL_URL)


def poll_state_command(poll: Poll, *, status: str | None = None, **extra: Any) -> dict[str, Any]:
    """The body of a ``PUT state`` command: the poll's state at ``poll.version`` (``closes_at`` encoded
    as in its events, so a gate and an event of one version never disagree)."""
    closes_at = poll.closes_at
    return {
        "version": poll.version,
        "owner_id": poll.owner_id,
        "status": status or poll.status,
        "closes_at": _encoder.default(closes_at) if closes_at is not None else None,
        **extra,
    }


def _put_state(client: ServiceClient, poll: Poll, command: dict[str, Any]) -> dict[str, Any]:
    body = client.request_json("PUT", f"/internal/polls/{poll.id}/state/", json=command)
    try:
        held = int(body["version"]) if isinstance(body, dict) else None
    except (KeyError, TypeError, ValueError):
        held = None
    if held is None or held < command["version"]:
        # 404 (no such endpoint) or an answer that does not show our version applied: the gate is not
        # known to hold, so the change must not commit.
        raise UpstreamError(f"The {client.name} service did not confirm poll state v{command['version']}.")
    if held > command["version"] or body.get("status") != command["status"]:
        logger.warning(
            "gate holds a newer state than the command",
            extra={"target": client.name, "poll": str(poll.id), "sent": command, "held": body},
        )
    return body


def votes_gate(poll: Poll, *, status: str | None = None) -> dict[str, Any]:
    """Seal (``closed``/``deleted``) or restore the poll's state in vote_service at ``poll.version``."""
    return _put_state(_votes_client(), poll, poll_state_command(poll, status=status))


def choices_gate(poll: Poll, *, status: str | None = None, min_choices: int | None = None) -> dict[str, Any]:
    """Freeze (``open``, at least ``min_choices``) or restore the poll's state in choice_service at
    ``poll.version``. Raises ``NotEnoughChoices`` when choice_service counted fewer."""
    extra = {"min_choices": min_choices} if min_choices is not None else {}
    try:
        return _put_state(_choices_client(), poll, poll_state_command(poll, status=status, **extra))
    except UpstreamError as exc:
        body = exc.upstream_body if isinstance(exc.upstream_body, dict) else {}
        code = body.get("code") or str(body.get("type", "")).rsplit("/", 1)[-1]
        if exc.upstream_status == 409 and code == "not-enough-choices":
            raise NotEnoughChoices(choices=int(body.get("choices", 0)), needed=min_choices or 0) from None
        raise
