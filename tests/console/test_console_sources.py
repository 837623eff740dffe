"""The console's sources: JavaScript unit tests (Node's runner) and what the code must
never contain (HTML sinks, eval, assets from elsewhere, inline scripts or styles)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "api-gateway" / "api_gateway" / "console"
SOURCES = sorted(p for p in CONSOLE.rglob("*") if p.suffix in (".js", ".html", ".css", ".svg"))
# Ways to turn a string into markup or code; the CSP (Trusted Types) refuses them at run
# time as well, this keeps them out of the code in the first place.
FORBIDDEN = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new Function|"
    r"setTimeout\(\s*[\"'`]|srcdoc|javascript:"
)
SVG_NS = "http://www.w3.org/2000/svg"


def test_the_javascript_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (make setup installs nodejs)")
    run = subprocess.run(
        [node, "--test", str(ROOT / "tests" / "console" / "js")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert re.search(r"^# pass [1-9]", run.stdout, re.M), run.stdout[-2000:]
    assert re.search(r"^# fail 0$", run.stdout, re.M), run.stdout[-2000:]


def test_no_source_builds_markup_or_code_from_strings() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in SOURCES
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert found == []


def test_every_asset_is_served_by_the_gateway_itself() -> None:
    urls = [
        f"{path.relative_to(ROOT)}: {url}"
        for path in SOURCES
        for url in re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", path.read_text())
        if not url.startswith(SVG_NS)
    ]
    assert urls == []


def test_the_page_has_no_inline_script_or_style() -> None:
    html = (CONSOLE / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S)
    assert scripts and all(body.strip() == "" for body in scripts)
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+\s*=", html)  # no event handler attributes
