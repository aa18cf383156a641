"""Service-to-service endpoints (``/internal/...``): service credential only, never routed by the gateway."""
