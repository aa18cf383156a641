"""What the fault tests measure: the ledger, the tallies, the results endpoint; and the duplicator."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

import psycopg
from celery import Celery
from kombu import Connection

from servicekit.events import bus


def database_url(stack, env_name: str) -> str:
    return stack.env[env_name].replace("postgres://", "postgresql://", 1)


@dataclass
class Snapshot:
    ledger: dict[str, tuple[str, str, int]]  # vote id -> (poll, choice, voter)
    ledger_counts: Counter  # choice id -> votes in the ledger
    tallies: dict[str, int]  # choice id -> tally in choice_service
    results: dict[str, int] = field(default_factory=dict)  # choice id -> votes in the results endpoint


def snapshot(stack, platform, polls) -> Snapshot:
    with psycopg.connect(database_url(stack, "VOTE_DATABASE_URL")) as conn:
        rows = conn.execute("SELECT id::text, poll_id::text, choice_id::text, voter_id FROM votes_vote").fetchall()
    ledger = {r[0]: (r[1], r[2], r[3]) for r in rows}
    counts = Counter(r[2] for r in rows)
    poll_ids = [p.id for p in polls]
    with psycopg.connect(database_url(stack, "CHOICE_DATABASE_URL")) as conn:
        tallies = {
            r[0]: r[1]
            for r in conn.execute(
                "SELECT id::text, votes FROM choices_choice WHERE poll_id::text = ANY(%s)", [poll_ids]
            ).fetchall()
        }
    results: dict[str, int] = {}
    for poll in polls:
        body = platform.results(poll.id) or {}
        for entry in body.get("choices", []):
            results[entry["choice"]] = entry["votes"]
    return Snapshot(ledger, counts, tallies, results)


def verdict(snap: Snapshot, acknowledged: dict[int, dict], polls) -> dict[str, int]:
    """Figures of one snapshot: lost/duplicated acknowledged votes and tally/results mismatches."""
    ledger_by_voter_poll = Counter((poll, voter) for poll, _choice, voter in snap.ledger.values())
    lost = sum(1 for vote in acknowledged.values() if vote["id"] not in snap.ledger)
    duplicated = sum(n - 1 for n in ledger_by_voter_poll.values() if n > 1)
    choices = [c for p in polls for c in p.choices]
    tally_off = sum(abs(snap.tallies.get(c, 0) - snap.ledger_counts.get(c, 0)) for c in choices)
    over_counted = sum(max(0, snap.tallies.get(c, 0) - snap.ledger_counts.get(c, 0)) for c in choices)
    results_off = sum(abs(snap.results.get(c, -1) - snap.ledger_counts.get(c, 0)) for c in choices)
    return {
        "lost": lost,
        "duplicated": duplicated,
        "tally_off": tally_off,
        "over_counted": over_counted,
        "results_off": results_off,
    }


def republish_fraction(stack, broker_url: str, fraction: float, *, seed: int = 5) -> int:
    """Publish ``fraction`` of every service's already-sent events a second time (at-least-once, twice)."""
    rng = random.Random(seed)
    envelopes = []
    for env_name in ("POLLS_DATABASE_URL", "CHOICE_DATABASE_URL", "VOTE_DATABASE_URL"):
        with psycopg.connect(database_url(stack, env_name)) as conn:
            rows = conn.execute("SELECT envelope FROM servicekit_outbox_event WHERE sent_at IS NOT NULL").fetchall()
        envelopes += [r[0] for r in rows if rng.random() < fraction]
    app = Celery("chaos-duplicator", broker=broker_url)
    with Connection(broker_url, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        bus.declare_topology(producer.channel)
        for envelope in envelopes:
            bus.publish_event(producer, app, envelope)
    return len(envelopes)
