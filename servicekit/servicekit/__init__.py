"""servicekit: the one place for what every Polls Platform service needs.

Each module covers one concept and opens with a docstring showing how a service uses it:

- ``servicekit.env``       -- ``env``, the one reader of the environment
- ``servicekit.settings``  -- environment-driven settings shared by all services
- ``servicekit.jwks``      -- RSA keys, ``kid`` thumbprints and JWK Sets (no settings, no Django)
- ``servicekit.auth``      -- access-token and service-credential authentication
- ``servicekit.throttling`` -- credential-endpoint budgets (defaults in ``servicekit.throttle_rates``)
- ``servicekit.ratelimit`` -- per-user token buckets in Redis for route classes (``@rate_limited``)
- ``servicekit.conf``      -- the ``SERVICEKIT = {...}`` options, resolved against defaults
- ``servicekit.errors``    -- RFC 9457 problem+json for every error
- ``servicekit.health``    -- ``/healthz`` and ``/readyz``
- ``servicekit.metrics``   -- Prometheus ``/metrics`` (multiprocess-safe)
- ``servicekit.logging``   -- JSON logs carrying the request id
- ``servicekit.celery``    -- the Celery app factory

The full list: docs/architecture.md ("Where things live").
"""
