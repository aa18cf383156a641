"""Operational scripts of the Polls Platform (stack supervisor, dev secrets, gateway rendering)."""
