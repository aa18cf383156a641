"""The event-type registry: ``contracts/events/registry.json`` and the JSON Schemas it names.

One file says, for every event type, which service produces it, which services consume it (their
queues are bound to it) and the schema of its ``data``::

    from servicekit.events.registry import get_registry
    registry = get_registry()
    registry.get("vote.cast").consumers        # ("choices",)
    registry.validate_data("vote.cast", data)  # raises InvalidEvent
    registry.consumed_by("votes")              # ["choice.created", ..., "poll.updated"]

The registry is loaded without Django (settings use it to build the Celery queue topology). Its
directory is ``EVENT_CONTRACTS_DIR`` or ``<repository root>/contracts/events``. Types are only ever
added, never removed or narrowed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(__file__).resolve().parents[3] / "contracts" / "events"


class UnknownEventType(LookupError):
    """The event type is not in the registry."""


class InvalidEvent(ValueError):
    """An envelope or data payload does not match its schema."""


@dataclass(frozen=True)
class EventType:
    name: str
    producer: str
    consumers: tuple[str, ...]
    schema: dict[str, Any] = field(repr=False, compare=False)


def _validator(schema: dict[str, Any]) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker

    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


class Registry:
    """Event types, their producer/consumers and compiled validators, read from one directory."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        raw = json.loads((self.directory / "registry.json").read_text())
        self.exchange: str = raw.get("exchange", "polls.events")
        self.envelope_schema: dict[str, Any] = json.loads((self.directory / raw["envelope"]).read_text())
        self.types: dict[str, EventType] = {}
        for name, spec in raw["events"].items():
            schema = json.loads((self.directory / spec["schema"]).read_text())
            self.types[name] = EventType(name, spec["producer"], tuple(spec.get("consumers", ())), schema)
        self._validators: dict[str, Any] = {}

    def get(self, name: str) -> EventType:
        """The registered type ``name``; raises ``UnknownEventType``."""
        try:
            return self.types[name]
        except KeyError:
            raise UnknownEventType(f"Event type {name!r} is not registered in {self.directory}/registry.json") from None

    def consumed_by(self, service: str) -> list[str]:
        """Event types whose consumers include ``service`` (the routing keys of its queue), sorted."""
        return sorted(name for name, spec in self.types.items() if service in spec.consumers)

    def produced_by(self, service: str) -> list[str]:
        return sorted(name for name, spec in self.types.items() if spec.producer == service)

    def consumer_services(self) -> list[str]:
        """Every service with a queue on the exchange."""
        return sorted({c for spec in self.types.values() for c in spec.consumers})

    def _validator_for(self, key: str, schema: dict[str, Any]) -> Any:
        validator = self._validators.get(key)
        if validator is None:
            validator = self._validators[key] = _validator(schema)
        return validator

    def validate_data(self, name: str, data: Any) -> None:
        """Raise ``InvalidEvent`` unless ``data`` matches the schema of type ``name``."""
        spec = self.get(name)
        error = next(iter(self._validator_for(name, spec.schema).iter_errors(data)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "data"
            raise InvalidEvent(f"{name} {where}: {error.message}")

    def validate_envelope(self, envelope: Any) -> None:
        """Raise ``InvalidEvent`` (or ``UnknownEventType``) unless ``envelope`` is a valid event."""
        error = next(iter(self._validator_for("$envelope", self.envelope_schema).iter_errors(envelope)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "envelope"
            raise InvalidEvent(f"envelope {where}: {error.message}")
        self.validate_data(envelope["type"], envelope["data"])


def contracts_dir() -> Path:
    return Path(os.environ.get("EVENT_CONTRACTS_DIR") or DEFAULT_DIR)


@lru_cache(maxsize=4)
def load_registry(directory: str | None = None) -> Registry:
    """The registry in ``directory`` (default: ``contracts_dir()``), cached per directory."""
    return Registry(directory or contracts_dir())


def get_registry() -> Registry:
    """The registry this process uses."""
    return load_registry(os.environ.get("EVENT_CONTRACTS_DIR") or _DEFAULT_DIR_STR)


_DEFAULT_DIR_STR = str(DEFAULT_DIR)
