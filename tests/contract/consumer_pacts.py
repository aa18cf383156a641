"""Consumer halves of the contracts, run inside one consumer service's Django environment.

    cd vote_service && python ../tests/contract/consumer_pacts.py votes <pact dir>

HTTP: the consumer's *own* code (its services, clients and ServiceClient) talks to a Pact mock
provider; the interactions it needs are recorded as pacts: replica misses (each internal read carries
the aggregate's ``version``), the gate commands polls_service sends before it commits (``PUT
/internal/polls/{id}/state/``: vote_service seals, choice_service freezes) and choice_service's ledger
read for reconciliation (``GET /internal/polls/{id}/votes/``). Messages: for every event type the service
handles, the expected message is recorded and fed through the consumer's real handlers
(``servicekit.events.consumer.consume``: schema check, inbox, handler). Pact files go to <pact dir>.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, os.getcwd())

import django  # noqa: E402

django.setup()

import states as S  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from pact import Pact, match  # noqa: E402

SERVICE_HEADER = match.regex("Service example-token", regex=r"^Service \S+$")


def poll_body():
    return {
        "id": match.uuid(S.P_OPEN),
        "owner_id": match.int(S.OWNER),
        "status": match.regex("open", regex=r"^(draft|open|closed)$"),
        "closes_at": None,
        "version": match.int(3),
    }


def two_choices():
    """An array of at least two choices shaped like the example ones."""
    return match.type(
        [
            {"id": S.C_1, "text": "Yes", "position": 0, "version": 1},
            {"id": S.C_2, "text": "No", "position": 1, "version": 1},
        ],
        min=2,
    )


def state_command(status: str, *, version: int = 2, **extra):
    """The body of a gate command: the poll's state at its new version."""
    return {
        "version": match.int(version),
        "owner_id": match.int(S.OWNER),
        "status": status,
        "closes_at": None,
        **extra,
    }


def contract_poll(poll_id: str, *, status: str, version: int):
    """An unsaved polls_service ``Poll`` at ``version`` (what ``poll_open``/``poll_close`` hold before commit)."""
    from polls.models import Poll

    return Poll(id=poll_id, owner_id=S.OWNER, question="Contract poll", status=status, version=version)


def polls_pact(consumer: str) -> Pact:
    pact = Pact(consumer, "polls_service").with_specification("V4")
    (
        pact.upon_receiving("a replica-miss request for an open poll")
        .given(S.POLL_OPEN)
        .with_request("GET", f"/internal/polls/{S.P_OPEN}/")
        .with_header("Authorization", SERVICE_HEADER)
        .will_respond_with(200)
        .with_body(poll_body(), content_type="application/json")
    )
    (
        pact.upon_receiving("a replica-miss request for an unknown poll")
        .given(S.POLL_MISSING)
        .with_request("GET", f"/internal/polls/{S.P_MISSING}/")
        .with_header("Authorization", SERVICE_HEADER)
        .will_respond_with(404)
    )
    return pact


def votes_http(pact_dir: str) -> None:
    from votes.services import choice_replica_get_or_fetch, choice_replicas_warm, poll_replica_get_or_fetch

    pact = polls_pact("vote_service")
    with pact.serve() as srv:
        settings.POLLS_INTERNAL_URL = str(srv.url)
        replica = poll_replica_get_or_fetch(poll_id=S.P_OPEN, warm_choices=False)
        assert replica is not None and replica.status == "open" and replica.owner_id == S.OWNER, replica
        assert replica.version == 3, replica.version
        assert poll_replica_get_or_fetch(poll_id=S.P_MISSING, warm_choices=False) is None
    pact.write_file(pact_dir, overwrite=True)

    pact = Pact("vote_service", "choice_service").with_specification("V4")
    (
        pact.upon_receiving("a replica-miss request for a choice")
        .given(S.CHOICES_EXIST)
        .with_request("GET", f"/internal/choices/{S.C_1}/")
        .with_header("Authorization", SERVICE_HEADER)
        .will_respond_with(200)
        .with_body(
            {
                "id": match.uuid(S.C_1),
                "poll_id": match.uuid(S.P_OPEN),
                "text": match.str("Yes"),
                "position": match.int(0),
                "version": match.int(1),
            },
            content_type="application/json",
        )
    )
    (
        pact.upon_receiving("a replica-miss request for an unknown choice")
        .given(S.CHOICE_MISSING)
        .with_request("GET", f"/internal/choices/{S.C_MISSING}/")
        .with_header("Authorization", SERVICE_HEADER)
        .will_respond_with(404)
    )
    (
        pact.upon_receiving("a request for every choice of a poll")
        .given(S.CHOICES_EXIST)
        .with_request("GET", f"/internal/polls/{S.P_OPEN}/choices/")
        .with_header("Authorization", SERVICE_HEADER)
        .will_respond_with(200)
        .with_body(
            {"poll_id": match.uuid(S.P_OPEN), "choices": two_choices()},
            content_type="application/json",
        )
    )
    with pact.serve() as srv:
        settings.CHOICE_INTERNAL_URL = str(srv.url)
        choice = choice_replica_get_or_fetch(choice_id=S.C_1)
        assert choice is not None and str(choice.poll_id) == S.P_OPEN and choice.version == 1
        assert choice_replica_get_or_fetch(choice_id=S.C_MISSING) is None
        assert choice_replicas_warm(poll_id=S.P_OPEN) >= 2
    pact.write_file(pact_dir, overwrite=True)


def choices_http(pact_dir: str) -> None:
    from choices.services import _ledger_votes, poll_replica_get_or_fetch

    pact = polls_pact("choice_service")
    with pact.serve() as srv:
        settings.POLLS_INTERNAL_URL = str(srv.url)
        replica = poll_replica_get_or_fetch(poll_id=S.P_OPEN)
        assert replica is not None and replica.status == "open" and replica.owner_id == S.OWNER, replica
        assert replica.version == 3, replica.version
        assert poll_replica_get_or_fetch(poll_id=S.P_MISSING) is None
    pact.write_file(pact_dir, overwrite=True)

    # Reconciliation reads vote_service's ledger page by page (here: one page, ``next`` null).
    pact = Pact("choice_service", "vote_service").with_specification("V4")
    (
        pact.upon_receiving("a request for the first page of a poll's vote ledger")
        .given(S.LEDGER_TWO_VOTES)
        .with_request("GET", f"/internal/polls/{S.P_OPEN}/votes/")
        .with_query_parameter("limit", "1000")
        .with_header("Authorization", SERVICE_HEADER)
        .will_respond_with(200)
        .with_body(
            {
                "poll_id": match.uuid(S.P_OPEN),
                "votes": match.type(
                    [
                        {"id": S.V_1, "choice_id": S.C_1, "version": 1},
                        {"id": S.V_2, "choice_id": S.C_2, "version": 2},
                    ],
                    min=1,
                ),
                "next": None,
            },
            content_type="application/json",
        )
    )
    with pact.serve() as srv:
        settings.VOTE_INTERNAL_URL = str(srv.url)
        votes = _ledger_votes(S.P_OPEN)
        assert votes is not None and {v["id"] for v in votes} == {S.V_1, S.V_2}, votes
        assert all(isinstance(v["version"], int) for v in votes), votes
    pact.write_file(pact_dir, overwrite=True)


def polls_http(pact_dir: str) -> None:
    from polls.clients import NotEnoughChoices, choices_gate, votes_gate

    # Open: choice_service freezes the poll's choices (and counts them) before polls_service commits.
    pact = Pact("polls_service", "choice_service").with_specification("V4")
    (
        pact.upon_receiving("a freeze command opening a draft with two choices")
        .given(S.DRAFT_TWO_CHOICES)
        .with_request("PUT", f"/internal/polls/{S.P_DRAFT}/state/")
        .with_header("Authorization", SERVICE_HEADER)
        .with_body(state_command("open", min_choices=2), content_type="application/json")
        .will_respond_with(200)
        .with_body(
            {"poll_id": match.uuid(S.P_DRAFT), "version": match.int(2), "status": "open", "choices": match.int(2)},
            content_type="application/json",
        )
    )
    (
        pact.upon_receiving("a freeze command opening a draft with one choice")
        .given(S.DRAFT_ONE_CHOICE)
        .with_request("PUT", f"/internal/polls/{S.P_ONE}/state/")
        .with_header("Authorization", SERVICE_HEADER)
        .with_body(state_command("open", min_choices=2), content_type="application/json")
        .will_respond_with(409)
        .with_body(
            {
                "type": match.regex(
                    "https://polls.example/problems/not-enough-choices", regex=r"^\S+/not-enough-choices$"
                ),
                "status": 409,
                "choices": match.int(1),
            },
            content_type="application/problem+json",
        )
    )
    with pact.serve() as srv:
        settings.CHOICE_INTERNAL_URL = str(srv.url)
        held = choices_gate(contract_poll(S.P_DRAFT, status="open", version=2), min_choices=2)
        assert held["status"] == "open" and held["version"] == 2 and held["choices"] == 2, held
        try:
            choices_gate(contract_poll(S.P_ONE, status="open", version=2), min_choices=2)
        except NotEnoughChoices as refused:
            assert refused.choices == 1
        else:
            raise AssertionError("a freeze refused with 409 did not raise NotEnoughChoices")
    pact.write_file(pact_dir, overwrite=True)

    # Close: vote_service seals the poll before polls_service commits.
    pact = Pact("polls_service", "vote_service").with_specification("V4")
    (
        pact.upon_receiving("a seal command closing an open poll")
        .given(S.VOTES_OPEN)
        .with_request("PUT", f"/internal/polls/{S.P_OPEN}/state/")
        .with_header("Authorization", SERVICE_HEADER)
        .with_body(state_command("closed"), content_type="application/json")
        .will_respond_with(200)
        .with_body(
            {"poll_id": match.uuid(S.P_OPEN), "version": match.int(2), "status": "closed"},
            content_type="application/json",
        )
    )
    with pact.serve() as srv:
        settings.VOTE_INTERNAL_URL = str(srv.url)
        held = votes_gate(contract_poll(S.P_OPEN, status="closed", version=2))
        assert held["status"] == "closed" and held["version"] == 2, held
    pact.write_file(pact_dir, overwrite=True)


# --- Messages ---------------------------------------------------------------------------------------

UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def data_expectation(event_type: str) -> dict:
    """What a consumer relies on in ``data`` (nullable fields such as closes_at are checked by schema)."""
    if event_type.startswith("poll."):
        return {
            "id": match.uuid(S.P_OPEN),
            "owner_id": match.int(S.OWNER),
            "status": match.regex("open", regex=r"^(draft|open|closed|deleted)$"),
            "question": match.str("Tea?"),
            "closes_at": None,  # polls in these contracts have no closing time
        }
    if event_type.startswith("user."):
        return {
            "user_id": match.int(42),
            "generation": match.int(2),
            "reason": match.regex("logout_everywhere", regex=r"^[a-z_]+$"),
        }
    if event_type.startswith("choice."):
        return {
            "id": match.uuid(S.C_1),
            "poll_id": match.uuid(S.P_OPEN),
            "text": match.str("Yes"),
            "position": match.int(0),
        }
    data = {
        "id": match.uuid("6c1f0b8e-5a1d-4c3e-9f00-0000000000f1"),
        "poll_id": match.uuid(S.P_OPEN),
        "choice_id": match.uuid(S.C_1),
        "voter_id": match.int(42),
    }
    if event_type == "vote.changed":
        data["choice_id"] = match.uuid(S.C_2)
        data["previous_choice_id"] = match.uuid(S.C_1)
    return data


def messages(service: str, pact_dir: str) -> list[str]:
    from servicekit.events import handlers_for
    from servicekit.events.consumer import consume
    from servicekit.events.registry import get_registry

    registry = get_registry()
    handled = [t for t in registry.consumed_by(service) if handlers_for(t)]
    by_producer: dict[str, list[str]] = {}
    for event_type in handled:
        by_producer.setdefault(registry.get(event_type).producer, []).append(event_type)
    consumer = {"polls": "polls_service", "choices": "choice_service", "votes": "vote_service"}[service]
    applied: list[str] = []
    for producer, types in sorted(by_producer.items()):
        provider = {"polls": "polls_service", "choices": "choice_service", "votes": "vote_service"}[producer]
        pact = Pact(f"{consumer}-events", f"{provider}-events").with_specification("V4")
        for n, event_type in enumerate(types):
            envelope = {
                "id": match.uuid(f"6c1f0b8e-5a1d-4c3e-9f00-0000000e{n:04d}"),
                "type": event_type,
                "occurred_at": match.regex(
                    "2026-01-01T12:00:00.000000Z", regex=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"
                ),
                "producer": producer,
                "aggregate_id": match.str(S.P_OPEN),
                # Replicas order changes by it, never by occurred_at.
                "version": match.int(1),
                "data": data_expectation(event_type),
            }
            (pact.upon_receiving(f"a {event_type} event", "Async").with_body(envelope, content_type="application/json"))

        def handler(body, metadata):
            envelope = json.loads(body)
            envelope.setdefault("traceparent", None)
            consume(envelope)  # raises on a schema mismatch or a handler that cannot use the message
            applied.append(envelope["type"])

        errors = pact.verify(handler, "Async", raises=False)
        if errors:
            raise SystemExit(
                "message contract failed:\n" + "\n".join(f"  {e.description}: {e.error!r}" for e in errors)
            )
        pact.write_file(pact_dir, overwrite=True)
    return applied


if __name__ == "__main__":
    service, pact_dir = sys.argv[1], sys.argv[2]
    call_command("migrate", verbosity=0)
    {"votes": votes_http, "choices": choices_http, "polls": polls_http}[service](pact_dir)
    print("messages verified:", " ".join(messages(service, pact_dir)))
    print("consumer pacts written")
