"""docs/attribute-policy.md is the rules the services enforce: the table is read here and
each service's rows are compared with its code, so neither can change alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from network_svc.domain import policy as network_policy

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "attribute-policy.md"
COLUMNS = ["service", "resource", "attribute", "values", "create", "update", "reference"]


def _cells(line: str) -> list[str]:
    return [c.strip().strip("`").strip() for c in line.strip().strip("|").split("|")]


def table() -> list[dict[str, str]]:
    """The rows of the table whose header is COLUMNS (the doc's other tables are prose)."""
    lines = DOC.read_text().splitlines()
    for n, line in enumerate(lines):
        if line.startswith("|") and _cells(line) == COLUMNS:
            assert re.fullmatch(r"\|(\s*-+\s*\|)+", lines[n + 1].replace(" ", "")), lines[n + 1]
            rows = []
            for row in lines[n + 2 :]:
                if not row.startswith("|"):
                    break
                cells = _cells(row)
                assert len(cells) == len(COLUMNS), row
                rows.append(dict(zip(COLUMNS, cells, strict=True)))
            return rows
    raise AssertionError(f"no table with the columns {COLUMNS} in {DOC}")


def test_the_table_is_well_formed() -> None:
    rows = table()
    assert rows, "the table is empty"
    keys = [(r["service"], r["resource"], r["attribute"], r["values"]) for r in rows]
    assert len(keys) == len(set(keys)), "a row is listed twice"
    for row in rows:
        assert all(row[c] for c in ("service", "resource", "attribute", "create", "update"))
        assert row["reference"], f"{row}: which reference rule does it follow?"


def test_network_rows_are_the_rules_network_svc_enforces() -> None:
    documented = {
        (r["resource"], r["attribute"], r["values"]): (r["create"], r["update"], r["reference"])
        for r in table()
        if r["service"] == "network"
    }
    enforced = {
        (rule.resource, rule.attribute, rule.values): (
            rule.create.value,
            rule.update.value,
            rule.reference,
        )
        for rule in network_policy.RULES
    }
    missing = sorted(set(enforced) - set(documented))
    extra = sorted(set(documented) - set(enforced))
    assert not missing, f"enforced but not in {DOC.name}: {missing}"
    assert not extra, f"in {DOC.name} but not enforced: {extra}"
    for key, rule in enforced.items():
        assert documented[key] == rule, f"{key}: the table says {documented[key]}, code {rule}"


def test_every_who_word_is_explained() -> None:
    text = DOC.read_text()
    for who in network_policy.Who:
        assert f"| {who.value} |" in text, f"'{who.value}' is used but not explained"


@pytest.mark.parametrize(
    ("resource", "attribute"),
    [
        ("port", "device_owner"),
        ("port", "mac_address"),
        ("port", "fixed_ips:ip_address"),
        ("port", "binding:host_id"),
        ("port", "binding:profile"),
        ("port", "allowed_address_pairs"),
        ("port", "port_security_enabled"),
        ("network", "shared"),
        ("network", "router:external"),
        ("network", "provider:network_type"),
        ("network", "provider:physical_network"),
        ("network", "provider:segmentation_id"),
        ("subnet", "network_id"),
        ("router", "external_gateway_info:external_fixed_ips"),
    ],
)
def test_the_issue_s_attributes_are_restricted(resource: str, attribute: str) -> None:
    """The attributes hardening named: none of them is anyone's to set."""
    rows = [
        r
        for r in table()
        if (r["service"], r["resource"], r["attribute"]) == ("network", resource, attribute)
    ]
    assert rows and any(r["create"] != network_policy.Who.ANYONE.value for r in rows), rows
