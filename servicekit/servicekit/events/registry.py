"""The event-type registry: ``contracts/events/registry.json`` and the JSON Schemas it names.

One file says, for every event type, which service produces it, which services consume it (their
queues are bound to it) and the schema of its ``data``::

    from servicekit.events.registry import get_registry
    registry = get_registry()
    registry.get("vote.cast").consumers        # ("choices",)
    registry.validate_data("vote.cast", data)  # raises InvalidEvent
    registry.validate_envelope(envelope)       # raises InvalidEvent / UnknownEventType
    registry.consumed_by("votes")              # ["choice.created", ..., "poll.updated"]

The registry is loaded without Django (settings use it to build the Celery queue topology). Its
directory is ``EVENT_CONTRACTS_DIR`` or ``<repository root>/contracts/events``. Types are only ever
added, never removed or narrowed.

Validation runs on every consumed event, so each schema is compiled once into a plain-Python check
of the keywords the contracts use (``type``, ``required``, ``properties``, ``enum``, ``pattern``,
lengths, bounds, ``uuid``/``date-time`` formats): about a microsecond per envelope instead of ~70 with
``jsonschema``. The check only ever *accepts*: whatever it does not accept (or a schema using any
other keyword) goes to the ``jsonschema`` validator, which decides and words the error, so the
outcome is exactly ``jsonschema``'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from servicekit.env import env

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


# --- The fast acceptor -------------------------------------------------------------------------------
# ``_compile(schema)`` returns ``check(instance) -> bool`` that is True only for instances jsonschema
# (Draft 2020-12 with its default FormatChecker) also accepts, or None when the schema uses a keyword
# it does not model. It may be stricter than jsonschema (e.g. ``integer`` only as a Python int, formats
# in their canonical form): a False just means "ask jsonschema".

_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "examples", "default"})
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_DATE_TIME = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?"
    r"([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)\Z"
)
_FORMATS = {"uuid": _UUID, "date-time": _DATE_TIME}
# Each JSON type as a Python condition on ``{v}`` (bool is not an integer, as in JSON Schema).
_TYPES = {
    "object": "type({v}) is dict",
    "array": "type({v}) is list",
    "string": "type({v}) is str",
    "integer": "type({v}) is int",
    "number": "type({v}) in (int, float)",
    "boolean": "type({v}) is bool",
    "null": "{v} is None",
}
Check = Callable[[Any], bool]


def _checked_formats() -> frozenset[str]:
    from jsonschema import FormatChecker

    return frozenset(FormatChecker().checkers)


def _conditions(schema: Any, v: str, consts: dict[str, Any], formats: frozenset[str]) -> list[str] | None:
    """Python conditions (on the expression ``v``) that all hold only if ``schema`` accepts it; None
    when the schema uses a keyword not modelled here."""
    if schema is True:
        return []
    if not isinstance(schema, dict):
        return None

    def const(value: Any) -> str:
        name = f"_c{len(consts)}"
        consts[name] = value
        return name

    out: list[str] = []
    for key, value in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key == "type":
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or not names or any(n not in _TYPES for n in names):
                return None
            out.append("(" + " or ".join(_TYPES[n].format(v=v) for n in names) + ")")
        elif key == "required":
            if value:
                out.append(f"(type({v}) is not dict or ({' and '.join(f'{k!r} in {v}' for k in value)}))")
        elif key == "properties":
            for name, sub in value.items():
                inner = _conditions(sub, f"{v}[{name!r}]", consts, formats)
                if inner is None:
                    return None
                if inner:
                    out.append(f"(type({v}) is not dict or {name!r} not in {v} or ({' and '.join(inner)}))")
        elif key == "additionalProperties":
            if value is not True:
                return None
        elif key == "enum":
            if not value or any(type(e) is not str for e in value):
                return None
            out.append(f"(type({v}) is str and {v} in {const(frozenset(value))})")
        elif key == "pattern":
            out.append(f"(type({v}) is not str or {const(re.compile(value).search)}({v}) is not None)")
        elif key == "format":
            if value not in formats:
                continue  # jsonschema does not check it either
            if value not in _FORMATS:
                return None
            out.append(f"(type({v}) is not str or {const(_FORMATS[value].match)}({v}) is not None)")
        elif key in ("minLength", "maxLength"):
            op = ">=" if key == "minLength" else "<="
            out.append(f"(type({v}) is not str or len({v}) {op} {int(value)})")
        elif key in ("minimum", "maximum"):
            if type(value) not in (int, float):
                return None
            op = ">=" if key == "minimum" else "<="
            out.append(f"(type({v}) not in (int, float) or {v} {op} {value!r})")
        else:
            return None
    return out


def _compile(schema: Any, formats: frozenset[str]) -> Check | None:
    """``check(instance) -> bool``, True only for instances jsonschema also accepts (None: not modelled)."""
    consts: dict[str, Any] = {}
    conditions = _conditions(schema, "v", consts, formats)
    if conditions is None:
        return None
    source = f"def check(v):\n    return {' and '.join(conditions) or 'True'}\n"
    exec(compile(source, "<schema check>", "exec"), consts)  # noqa: S102 - source built above from the schema
    check: Check = consts["check"]
    return check


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
        formats = _checked_formats()
        self._envelope_check = _compile(self.envelope_schema, formats)
        self._data_checks: dict[str, Check | None] = {
            name: _compile(spec.schema, formats) for name, spec in self.types.items()
        }

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
        check = self._data_checks.get(name)
        if check is not None and check(data):
            return
        spec = self.get(name)
        error = next(iter(self._validator_for(name, spec.schema).iter_errors(data)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "data"
            raise InvalidEvent(f"{name} {where}: {error.message}")

    def validate_envelope(self, envelope: Any) -> None:
        """Raise ``InvalidEvent`` (or ``UnknownEventType``) unless ``envelope`` is a valid event."""
        check = self._envelope_check
        if check is not None and check(envelope):
            self.validate_data(envelope["type"], envelope["data"])
            return
        error = next(iter(self._validator_for("$envelope", self.envelope_schema).iter_errors(envelope)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "envelope"
            raise InvalidEvent(f"envelope {where}: {error.message}")
        self.validate_data(envelope["type"], envelope["data"])


def contracts_dir() -> Path:
    return Path(env.str("EVENT_CONTRACTS_DIR", default="") or DEFAULT_DIR)


@lru_cache(maxsize=4)
def load_registry(directory: str | None = None) -> Registry:
    """The registry in ``directory`` (default: ``contracts_dir()``), cached per directory."""
    return Registry(directory or contracts_dir())


def get_registry() -> Registry:
    """The registry this process uses."""
    return load_registry(env.str("EVENT_CONTRACTS_DIR", default="") or _DEFAULT_DIR_STR)


_DEFAULT_DIR_STR = str(DEFAULT_DIR)
