"""The baseline of `make bench`: the platform's durable vote work in a minimal Starlette + asyncpg app.

``POST /votes/`` with ``Authorization: Bearer <RS256 JWT>`` (PyJWT, public key loaded once) and a JSON body
``{poll, choice}``: in ONE transaction a vote row (unique (poll_id, voter_id) -> 409) and an outbox row
(a JSON envelope), durable commits. Run by scripts/bench.py under uvicorn (2 workers, uvloop); config:
BASELINE_DSN, BASELINE_PUBLIC_KEY_FILE, BASELINE_ISSUER, BASELINE_AUDIENCE.
"""

import contextlib
import datetime
import json
import os
import uuid

import asyncpg
import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

with open(os.environ["BASELINE_PUBLIC_KEY_FILE"], "rb") as _pem:
    PUBLIC_KEY = load_pem_public_key(_pem.read())  # parsed once, at start-up
ISSUER, AUDIENCE = os.environ["BASELINE_ISSUER"], os.environ["BASELINE_AUDIENCE"]
SCHEMA = """
CREATE TABLE IF NOT EXISTS vote (id uuid PRIMARY KEY, poll_id uuid NOT NULL, choice_id uuid NOT NULL,
  voter_id bigint NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
  CONSTRAINT vote_one_per_voter_per_poll UNIQUE (poll_id, voter_id));
CREATE INDEX IF NOT EXISTS vote_voter_created_idx ON vote (voter_id, created_at);
CREATE INDEX IF NOT EXISTS vote_poll_choice_idx ON vote (poll_id, choice_id);
CREATE TABLE IF NOT EXISTS outbox (id bigserial PRIMARY KEY, event_id uuid NOT NULL, event_type text NOT NULL,
  aggregate_id text NOT NULL, envelope jsonb NOT NULL, created_at timestamptz NOT NULL,
  sent_at timestamptz, attempts integer NOT NULL DEFAULT 0, last_error text NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS outbox_pending_idx ON outbox (id) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sent_idx ON outbox (sent_at);
"""  # the same rows and indexes as the platform's vote ledger and servicekit outbox
pool: asyncpg.Pool


def problem(status: int, title: str) -> Response:
    body = json.dumps({"type": "about:blank", "title": title, "status": status})
    return Response(body, status, media_type="application/problem+json")


async def vote(request):
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        claims = jwt.decode(
            token,
            PUBLIC_KEY,
            algorithms=["RS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "jti", "sub", "iss", "aud"]},
        )
        if scheme != "Bearer" or claims.get("token_type") != "access":
            raise jwt.InvalidTokenError
        voter = int(claims["sub"])
    except (jwt.PyJWTError, ValueError):
        return problem(401, "Not authenticated")
    try:
        body = json.loads(await request.body())
        poll, choice = uuid.UUID(body["poll"]), uuid.UUID(body["choice"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return problem(400, "Invalid body")
    vote_id, event_id, now = uuid.uuid4(), uuid.uuid4(), datetime.datetime.now(datetime.UTC)
    envelope = {
        "id": str(event_id),
        "type": "vote.cast",
        "version": 1,
        "producer": "baseline",
        "occurred_at": now.isoformat(),
        "aggregate_id": str(vote_id),
        "data": {"id": str(vote_id), "poll": str(poll), "choice": str(choice), "voter": voter},
    }
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO vote (id, poll_id, choice_id, voter_id, created_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $5)",
                vote_id,
                poll,
                choice,
                voter,
                now,
            )
            await conn.execute(
                "INSERT INTO outbox (event_id, event_type, aggregate_id, envelope, created_at)"
                " VALUES ($1, 'vote.cast', $2, $3, $4)",
                event_id,
                str(vote_id),
                json.dumps(envelope),
                now,
            )
    except asyncpg.UniqueViolationError:
        return problem(409, "Already voted in this poll")
    return JSONResponse({"id": str(vote_id), "poll": str(poll), "choice": str(choice)}, 201)


@contextlib.asynccontextmanager
async def lifespan(app):
    global pool
    pool = await asyncpg.create_pool(
        os.environ["BASELINE_DSN"], min_size=2, max_size=8, server_settings={"synchronous_commit": "on"}
    )  # durable commits
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(4242)")  # two workers start at once
        await conn.execute(SCHEMA)
    yield
    await pool.close()


app = Starlette(routes=[Route("/votes/", vote, methods=["POST"])], lifespan=lifespan)
