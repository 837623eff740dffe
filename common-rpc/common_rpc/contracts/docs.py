"""Render the event catalogue (``docs/events.md``) from the registered contracts.

    python -m common_rpc.contracts.docs > docs/events.md

A test fails when the committed file differs from what this renders, so the document
cannot drift from the code.
"""

from __future__ import annotations

import sys
from typing import Any

from . import all_contracts


def _type_of(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " or ".join(_type_of(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list[{_type_of(schema.get('items', {}))}]"
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    return str(schema.get("format") or schema.get("type") or "any")


def render_markdown() -> str:
    lines = [
        "# Events",
        "",
        "Generated from the contracts in `common_rpc/contracts` by",
        "`python -m common_rpc.contracts.docs`; do not edit by hand.",
        "",
        "Every event travels in the same envelope: `id`, `event_type`, `version`, `timestamp`,",
        "`project_id`, `request_id`, `user_id` and `payload`. The routing key is the event type,",
        "`<service>.<resource>.<action>[.<phase>]`, on the durable topic exchange",
        "`stackling.events`. Payloads may gain fields within a version; consumers ignore",
        "fields they do not know.",
        "",
    ]
    for contract in all_contracts():
        schema = contract.model.model_json_schema()
        required = set(schema.get("required", []))
        lines += [
            f"## `{contract.event_type}` (v{contract.version})",
            "",
            contract.description,
            "",
            f"Payload `{contract.model.__name__}`:",
            "",
            "| field | type | required |",
            "| --- | --- | --- |",
        ]
        for name, prop in schema.get("properties", {}).items():
            lines.append(f"| `{name}` | {_type_of(prop)} | {'yes' if name in required else 'no'} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
