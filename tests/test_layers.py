"""The package's import graph: one-way layers (pyproject's import-linter contract), no circle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_layers_contract_is_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Circles among the package's modules (a package counts as its ``__init__``)."""
    found, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(target) == "open":
                found.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph.modules):
        if module not in state:
            visit(module, [module])
    return found


def test_no_import_circle():
    graph = grimp.build_graph("mmm_eeg", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_cycle_finder_sees_a_circle(tmp_path, monkeypatch):
    package = tmp_path / "circle_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from circle_pkg import b\n")
    (package / "b.py").write_text("from circle_pkg import c\n")
    (package / "c.py").write_text("import circle_pkg.a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("circle_pkg", cache_dir=None)
    assert _cycles(graph) == [["circle_pkg.a", "circle_pkg.b", "circle_pkg.c", "circle_pkg.a"]]
