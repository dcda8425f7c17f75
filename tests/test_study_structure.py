"""rf8sim.study has no import cycle between its modules (module-level or deferred imports)."""

from __future__ import annotations

import ast
from pathlib import Path

import rf8sim.study

STUDY = Path(rf8sim.study.__file__).parent


def _graph() -> dict[str, set[str]]:
    mods = {p.stem for p in STUDY.glob("*.py")}
    g: dict[str, set[str]] = {}
    for p in STUDY.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rf8sim.study."):
                deps.add(node.module.split(".")[2])
        g[p.stem] = {d for d in deps if d in mods and d != p.stem}
    return g


def _cycle(g):
    state = {}

    def visit(n, path):
        state[n] = 1
        for d in sorted(g[n]):
            if state.get(d) == 1:
                return path + [n, d]
            if d not in state and (c := visit(d, path + [n])):
                return c
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state and (c := visit(n, [])):
            return c
    return None


def test_study_modules_form_no_import_cycle():
    g = _graph()
    assert {"flow", "flow_stages", "flow_report", "pipeline", "area_accuracy"} <= set(g)
    assert "flow" not in g["flow_stages"] and "flow" not in g["area_accuracy"]
    assert _cycle(g) is None, f"import cycle: {' -> '.join(_cycle(g))}"


def test_cycle_detector_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert _cycle({"a": {"b"}, "b": set()}) is None
