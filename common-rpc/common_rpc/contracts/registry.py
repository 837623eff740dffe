"""The registry of event contracts: each event type with its versioned payload model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class EventContract:
    event_type: str
    version: str
    model: type[BaseModel]
    description: str


_REGISTRY: dict[str, EventContract] = {}


def register(
    event_type: str, model: type[BaseModel], description: str, version: str = "1.0"
) -> None:
    if event_type in _REGISTRY:
        raise ValueError(f"event type {event_type!r} registered twice")
    parts = event_type.split(".")
    if not 3 <= len(parts) <= 4:
        raise ValueError(f"{event_type!r} is not <service>.<resource>.<action>[.<phase>]")
    _REGISTRY[event_type] = EventContract(event_type, version, model, description)


def contract_for(event_type: str) -> EventContract:
    try:
        return _REGISTRY[event_type]
    except KeyError:
        raise KeyError(f"no contract for event type {event_type!r}") from None


def validate_payload(event_type: str, payload: dict[str, Any]) -> BaseModel:
    return contract_for(event_type).model.model_validate(payload)


def all_contracts() -> list[EventContract]:
    return sorted(_REGISTRY.values(), key=lambda c: c.event_type)


def matches(pattern: str, event_type: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more words."""
    return _match(pattern.split("."), event_type.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _match(rest, words[1:])
