"""Event contracts: each event type's payload is a versioned pydantic model.

Producers build payloads from these models and consumers validate what they receive
against them, so a change to a shape is a change here, visible to both sides.
``docs/events.md`` and the gateway's ``/v1/events/types`` are generated from this registry.

    >>> contract_for("network.port.update.end").version
    '1.0'
"""

from . import payloads, volume_backup  # noqa: F401  (register the contracts)
from .registry import (
    EventContract,
    all_contracts,
    contract_for,
    matches,
    register,
    validate_payload,
)

__all__ = [
    "EventContract",
    "all_contracts",
    "contract_for",
    "matches",
    "register",
    "validate_payload",
]
