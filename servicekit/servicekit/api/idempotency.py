"""``Idempotency-Key`` for v2+ ``POST``: a retried request is answered, never executed twice.

``VersionedViewMixin`` applies it to every v2+ POST that carries the header::

    POST /api/v2/polls/  Idempotency-Key: 5b0c...  {"question": "Tea?"}   -> 201 (executed)
    same key, same body                                                   -> 201, same body, Idempotent-Replayed: true
    same key, different body                                              -> 422 problem+json
    same key while the first request still runs                           -> 409 problem+json

Records live in the service's cache (Redis in production) under the caller, method and path, for
``SERVICEKIT["IDEMPOTENCY_TTL"]`` seconds (default 24 h). The first request claims the key with an
atomic ``cache.add``, so two concurrent requests with one key never both run. Only final answers are
stored: a 5xx (or a crash) releases the key so the client may retry.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.http import HttpResponse

from servicekit.conf import servicekit_settings
from servicekit.errors import Conflict, Problem, UnprocessableEntity

servicekit_settings.register_defaults(
    {
        "IDEMPOTENCY_TTL": 24 * 3600,
        # How long a claim may stay "in progress" before another request may take it over (a crashed worker).
        "IDEMPOTENCY_LOCK_TTL": 60,
    }
)

HEADER = "Idempotency-Key"
HEADER_META = "HTTP_IDEMPOTENCY_KEY"  # its ``request.META`` key
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
_REPLAYED_HEADERS = ("Content-Type", "Location", "ETag")
_IN_PROGRESS = "in-progress"


@dataclass
class Claim:
    """A key claimed by the current request; ``store`` or ``release`` it when the answer is known."""

    cache_key: str
    fingerprint: str

    def store(self, response: Any) -> None:
        """Keep the final answer for replay (5xx answers release the key instead)."""
        if response.status_code >= 500:
            self.release()
            return
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response.render()
        headers = {name: response[name] for name in _REPLAYED_HEADERS if response.has_header(name)}
        record = {
            "fingerprint": self.fingerprint,
            "status": response.status_code,
            "headers": headers,
            "body": bytes(response.content),
        }
        cache.set(self.cache_key, record, timeout=servicekit_settings.IDEMPOTENCY_TTL)

    def release(self) -> None:
        cache.delete(self.cache_key)


class Replay(Exception):
    """Raised when a stored answer exists: the view answers with ``response`` without running."""

    def __init__(self, response: HttpResponse):
        super().__init__("idempotent replay")
        self.response = response


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, full path and body bytes."""
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def claim(*, key: str, scope: str, method: str, path: str, body: bytes) -> Claim:
    """Claim ``key`` for this request, or raise ``Replay`` (stored answer), 409 (in progress) or 422 (reused).

    ``scope`` identifies the caller (user id or "anonymous"), so keys of different users never meet.
    """
    if not _KEY_RE.match(key):
        raise Problem(
            f"{HEADER} must be 1 to 255 visible ASCII characters.",
            status=400,
            code="invalid-idempotency-key",
            errors={HEADER: ["Must be 1 to 255 visible ASCII characters."]},
        )
    fingerprint = request_fingerprint(method=method, path=path, body=body)
    cache_key = "idempotency:" + hashlib.sha256(f"{scope}\0{method}\0{path}\0{key}".encode()).hexdigest()
    pending = {"fingerprint": fingerprint, "status": _IN_PROGRESS}
    if cache.add(cache_key, pending, timeout=servicekit_settings.IDEMPOTENCY_LOCK_TTL):
        return Claim(cache_key=cache_key, fingerprint=fingerprint)

    record = cache.get(cache_key)
    if record is None:  # expired between add() and get(): try once more
        if cache.add(cache_key, pending, timeout=servicekit_settings.IDEMPOTENCY_LOCK_TTL):
            return Claim(cache_key=cache_key, fingerprint=fingerprint)
        record = cache.get(cache_key) or pending
    if record["fingerprint"] != fingerprint:
        raise UnprocessableEntity(
            f"This {HEADER} was already used with a different request.", code="idempotency-key-reused"
        )
    if record["status"] == _IN_PROGRESS:
        raise Conflict(
            f"A request with this {HEADER} is still being processed; retry later.",
            code="idempotency-in-progress",
            headers={"Retry-After": "1"},
        )
    response = HttpResponse(record["body"], status=record["status"])
    for name, value in record["headers"].items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    raise Replay(response)
