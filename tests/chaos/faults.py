"""What the fault tests measure, per vote id: vote_service's ledger, choice_service's projection, the
results endpoint and the public tallies; and the duplicator (events published a second time)."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass

import psycopg
from kombu import Connection

from scripts.loadgen import database_url, projection
from servicekit.events import bus


def applied_vote_events(stack) -> int:
    """Vote events choice_service has applied (its inbox)."""
    with psycopg.connect(database_url(stack, "CHOICE_DATABASE_URL")) as conn:
        return conn.execute(
            "SELECT count(DISTINCT event_id) FROM servicekit_inbox_event WHERE event_type LIKE 'vote.%%'"
        ).fetchone()[0]


@dataclass
class Snapshot:
    ledger: dict[str, str]  # vote id -> choice id (vote_service's internal ledger read)
    projection: dict[str, str]  # vote id -> choice id (choice_service's live projection rows)
    results: dict[str, int]  # choice id -> votes in vote_service's /results
    tallies: dict[str, int]  # choice id -> the public ``votes`` of the choice (choice_service)


def public_tallies(platform, poll_id: str) -> dict[str, int]:
    response = platform.session.get(
        f"{platform.gateway_url}/api/v1/choices/", params={"poll": poll_id, "page_size": 100}, timeout=15
    )
    response.raise_for_status()
    return {c["id"]: c["votes"] for c in response.json()["results"]}


def snapshot(stack, platform, polls) -> Snapshot:
    ledger: dict[str, str] = {}
    results: dict[str, int] = {}
    tallies: dict[str, int] = {}
    for poll in polls:
        ledger.update(platform.ledger(poll.id))
        for entry in (platform.results(poll.id) or {}).get("choices", []):
            results[entry["choice"]] = entry["votes"]
        tallies.update(public_tallies(platform, poll.id))
    return Snapshot(ledger, projection(stack, [p.id for p in polls]), results, tallies)


def verdict(snap: Snapshot, expected: dict[str, str], polls) -> dict[str, int]:
    """Mismatches of one snapshot, per vote id (``expected``: what the clients were told)."""
    ledger, proj = snap.ledger, snap.projection
    counts = Counter(ledger.values())
    choices = [c for p in polls for c in p.choices]
    return {
        # acknowledged but not in the ledger (or with another choice)
        "lost": sum(1 for v, c in expected.items() if ledger.get(v) != c),
        # in the ledger although no client was told so (a retraction acknowledged, a phantom)
        "phantom": len(set(ledger) - set(expected)),
        "projection missing": len(set(ledger) - set(proj)),
        "projection extra": len(set(proj) - set(ledger)),
        "projection wrong choice": sum(1 for v, c in ledger.items() if v in proj and proj[v] != c),
        "results off": sum(abs(snap.results.get(c, -1) - counts.get(c, 0)) for c in choices),
        "tallies off": sum(abs(snap.tallies.get(c, -1) - counts.get(c, 0)) for c in choices),
    }


def republish_fraction(stack, broker_url: str, fraction: float, *, seed: int = 5) -> int:
    """Publish ``fraction`` of every service's already-sent events a second time (at-least-once, twice)."""
    rng = random.Random(seed)
    envelopes = []
    for env_name in ("POLLS_DATABASE_URL", "CHOICE_DATABASE_URL", "VOTE_DATABASE_URL"):
        with psycopg.connect(database_url(stack, env_name)) as conn:
            rows = conn.execute("SELECT envelope FROM servicekit_outbox_event WHERE sent_at IS NOT NULL").fetchall()
        envelopes += [r[0] for r in rows if rng.random() < fraction]
    publish(broker_url, envelopes, batch=50)
    return len(envelopes)


def publish(broker_url: str, envelopes: list[dict], *, batch: int = 1) -> None:
    """Publish envelopes to the events exchange like a relay: messages of up to ``batch`` envelopes
    of one type (confirmed by the broker)."""
    by_type: dict[str, list[str]] = {}
    for envelope in envelopes:
        by_type.setdefault(envelope["type"], []).append(json.dumps(envelope, default=str))
    with Connection(broker_url, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        bus.declare_topology(producer.channel)
        for event_type, texts in by_type.items():
            for start in range(0, len(texts), batch):
                bus.publish_batch(producer, event_type, texts[start : start + batch])
