"""servicekit: the one place for what every Polls Platform service needs.

Each module covers one concept and opens with a docstring showing how a service uses it:

- ``servicekit.settings``  -- environment-driven settings shared by all services
- ``servicekit.conf``      -- the ``SERVICEKIT = {...}`` options, resolved against defaults
- ``servicekit.errors``    -- RFC 9457 problem+json for every error
- ``servicekit.health``    -- ``/healthz`` and ``/readyz``
- ``servicekit.metrics``   -- Prometheus ``/metrics`` (multiprocess-safe)
- ``servicekit.logging``   -- JSON logs carrying the request id
- ``servicekit.celery``    -- the Celery app factory
"""
