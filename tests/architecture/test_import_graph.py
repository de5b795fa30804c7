"""The shape of the code: no import cycles anywhere in cnndesk (function-level imports included),
the core grouped into capability packages that each say what they are for, few modules flat in
``cnndesk/core``. The layer contracts themselves are import-linter's (pyproject.toml), run by
``make test`` before pytest and here too."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "cnndesk" / "core"


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in graph.modules:
                    continue
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.find_modules_directly_imported_by(w)))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycles_function_level_imports_included():
    graph = grimp.build_graph("cnndesk")
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle():
    class G:  # a -> b -> c -> a, c -> d
        modules = {"a", "b", "c", "d"}
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}

        def find_modules_directly_imported_by(self, m):
            return self.edges[m]

    assert _cycles(G()) == [["a", "b", "c"]]


def test_core_is_grouped_into_capability_packages():
    flat = [p for p in CORE.glob("*.py")]
    assert len(flat) <= 12, f"{len(flat)} modules flat in cnndesk/core"
    packages = [p for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    assert len(packages) >= 8
    for pkg in packages:
        doc = ast.get_docstring(ast.parse((pkg / "__init__.py").read_text(encoding="utf-8")))
        assert doc and len(doc) > 20, f"{pkg.name}/__init__.py must say what the package is for"


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is part of the dev tools"
    out = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "layers" not in out.stdout or "BROKEN" not in out.stdout
