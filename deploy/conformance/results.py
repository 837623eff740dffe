"""Tempest's subunit stream -> one status per listed test, results.json and the summary line.

Every ID of the list gets a status:
- ``passed``: Tempest reported success;
- ``skipped``: skipped, and accepted-skips.txt names it (a skip upstream also has on a
  libvirt cloud without the feature, with its reason);
- ``failed``: anything else: a failure or error, a skip nobody accepted (a feature we do
  not have is a failure, however Tempest reports it), a test Tempest never reported
  (its class's setUpClass failed: that error is given), or an ID Tempest does not know.

Runs in the conformance venv (python-subunit and testtools come with Tempest); the
classification is plain Python, checked by tests/static/test_conformance.py.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# "tempest.api...Class.test_x[id-...,negative]" -> "tempest.api...Class.test_x"
_ATTRS = re.compile(r"\[.*\]$")
# "setUpClass (tempest.api...Class)" -> the class; also tearDownClass, setUpModule...
_FIXTURE = re.compile(r"^(\w+) \(([\w.]+)\)$")
DETAIL_LINES = 8


def read_ids(path: Path) -> list[str]:
    """The test IDs of a list file: one a line; blank lines and ``#`` comments skipped."""
    ids = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ids.append(line)
    return ids


def read_accepted(path: Path | None) -> dict[str, str]:
    """accepted-skips.txt: ``<test id>  # <why upstream skips it too>``."""
    if path is None or not path.exists():
        return {}
    accepted = {}
    for line in path.read_text().splitlines():
        test_id, _, reason = line.partition("#")
        if test_id.strip():
            accepted[test_id.strip()] = reason.strip()
    return accepted


def error_lines(text: str) -> str:
    """The exception at the end of a traceback (its message, up to DETAIL_LINES lines)."""
    lines = text.rstrip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith('  File "')]
    start = frames[-1] + 1 if frames else 0
    while start < len(lines) and lines[start].startswith("    "):
        start += 1  # the frame's source line and its ^^^ marks
    tail = [line for line in lines[start:] if line.strip()] or lines[-DETAIL_LINES:]
    return "\n".join(tail[:DETAIL_LINES])


def parse_stream(stream: Any) -> list[dict[str, Any]]:
    """Every finished test of a subunit v2 stream: id, status, details as text."""
    import subunit  # the conformance venv's (Tempest's); the rest of this file needs none
    import testtools

    records: list[dict[str, Any]] = []

    def on_test(test: dict[str, Any]) -> None:
        if test["status"] in ("exists", "inprogress", None):
            return
        details = {}
        for name, content in test["details"].items():
            try:
                details[name] = content.as_text()
            except Exception:  # a binary attachment: not needed here
                continue
        records.append({"id": test["id"], "status": test["status"], "details": details})

    result = testtools.StreamToDict(on_test)
    result.startTestRun()
    try:
        subunit.ByteStreamToStreamResult(stream, non_subunit_name="stdout").run(result)
    finally:
        result.stopTestRun()
    return records


def _detail(record: dict[str, Any]) -> str:
    details = record["details"]
    if record["status"] == "skip":
        return details.get("reason", "").strip()
    return error_lines(details.get("traceback", "") or "\n".join(details.values()))


def classify(
    ids: Iterable[str],
    records: list[dict[str, Any]],
    accepted: dict[str, str],
    known: set[str] | None = None,
) -> dict[str, dict[str, str]]:
    """Status of each listed ID: passed, failed or skipped (see the module's docstring)."""
    by_test: dict[str, dict[str, Any]] = {}
    by_class: dict[str, dict[str, Any]] = {}
    for record in records:
        fixture = _FIXTURE.match(record["id"])
        if fixture:
            # setUpClass's failure or skip stands for the tests it kept from running
            if fixture.group(1) in ("setUpClass", "setUpModule"):
                by_class.setdefault(fixture.group(2), record)
            continue
        by_test[_ATTRS.sub("", record["id"])] = record
    out: dict[str, dict[str, str]] = {}
    for test_id in ids:
        record = by_test.get(test_id)
        prefix = ""
        if record is None:
            record = by_class.get(test_id.rsplit(".", 1)[0])
            prefix = "setUpClass: " if record is not None else ""
        if record is None:
            why = "not run: Tempest reported nothing for it"
            if known is not None and test_id not in known:
                why = "not found in this Tempest (`tempest run --list-tests`)"
            out[test_id] = {"status": "failed", "outcome": "missing", "detail": why}
            continue
        detail = prefix + _detail(record)
        outcome = record["status"]
        if outcome in ("success", "xfail"):
            status = "passed"
        elif outcome == "skip" and test_id in accepted:
            status, detail = "skipped", f"{detail} (accepted: {accepted[test_id]})"
        else:
            status = "failed"
        out[test_id] = {"status": status, "outcome": outcome, "detail": detail}
    return out


def summary(results: dict[str, dict[str, str]]) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for result in results.values():
        counts[result["status"]] += 1
    return counts


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--ids", type=Path, required=True, help="the list that was run")
    args.add_argument("--subunit", type=Path, required=True)
    args.add_argument("--accepted", type=Path, help="accepted-skips.txt")
    args.add_argument("--known", type=Path, help="`tempest run --list-tests` output")
    args.add_argument("--out", type=Path, required=True, help="results.json to write")
    opts = args.parse_args()

    ids = read_ids(opts.ids)
    known = None
    if opts.known is not None:
        known = {_ATTRS.sub("", line.strip()) for line in opts.known.read_text().splitlines()}
    with opts.subunit.open("rb") as stream:
        records = parse_stream(stream)
    results = classify(ids, records, read_accepted(opts.accepted), known)
    counts = summary(results)
    extra = [r["id"] for r in records if _FIXTURE.match(r["id"]) and r["status"] == "fail"]
    document = {
        "summary": {**counts, "total": len(ids), "fixture_failures": extra},
        "tests": results,
    }
    opts.out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")

    failing = sorted(test_id for test_id, r in results.items() if r["status"] == "failed")
    if failing:
        print("failing:")
        for test_id in failing:
            first = results[test_id]["detail"].splitlines()[:1] or [""]
            print(f"  {test_id}  [{results[test_id]['outcome']}] {first[0][:160]}")
    print(f"results: {opts.out}")
    print(f"conformance: passed={counts['passed']} failed={counts['failed']} "
          f"skipped={counts['skipped']}")  # fmt: skip
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
