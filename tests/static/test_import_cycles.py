"""No module of a package is part of an import cycle, deferred (function-level) imports included.

A cycle held together by an import inside a function still ties the modules together: each
needs the other to work. grimp (import-linter's graph) reads every import statement; only
those under ``if TYPE_CHECKING:`` are left out, as they never run.
"""

from __future__ import annotations

import grimp
import pytest

PACKAGES = [
    "common_rpc",
    "compute_svc",
    "network_svc",
    "volume_svc",
    "api_gateway",
]


def cycles(package: str) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), migrations left out."""
    graph = grimp.build_graph(package, cache_dir=None, exclude_type_checking_imports=True)
    nodes = sorted(m for m in graph.modules if ".migrations" not in m)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & set(nodes)) for m in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in nodes:
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package: str) -> None:
    assert cycles(package) == []


def test_a_cycle_is_found(tmp_path, monkeypatch) -> None:
    pkg = tmp_path / "cyclepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    return a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cycles("cyclepkg") == [["cyclepkg.a", "cyclepkg.b"]]
