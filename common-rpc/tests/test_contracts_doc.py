"""The committed event catalogue matches the contracts."""

from pathlib import Path

from common_rpc.contracts.docs import render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_events_md_is_up_to_date() -> None:
    assert DOC.read_text() == render_markdown(), (
        "docs/events.md is stale: python -m common_rpc.contracts.docs > docs/events.md"
    )
