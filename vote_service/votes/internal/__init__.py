"""Service-to-service endpoints (``/internal/...``): service credential only, never routed by the gateway.

- ``PUT internal/polls/{id}/state/``: polls_service's gate command ("seal"), before it commits a close
  or a delete (or, compensating, a newer state): stored by version under the replica row's lock.
- ``GET internal/polls/{id}/votes/?after=&limit=``: the vote ledger by id, for choice_service's
  reconciliation.
"""
