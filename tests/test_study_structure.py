"""The package's layering: layers that only point down, no import circles, studies by workload."""

from __future__ import annotations

import ast
from pathlib import Path

import rf8sim.study

STUDY = Path(rf8sim.study.__file__).parent

#: what the top level of rf8sim/ may hold: the spec, the CLI, the front doors, and the subpackages
TOP_MODULES = {"__init__", "errors", "formats", "accspec", "scales", "cli", "commands", "bench", "verify", "verify_array"}
TOP_PACKAGES = {"infra", "workloads", "golden", "hdl", "training", "tech", "study"}
#: rf8sim/study/ holds one folder per workload (and what they share); its own modules are only these
STUDY_MODULES = {"__init__", "commands"}
STUDY_PACKAGES = {"common", "flow", "mnist1d", "minilm", "tinylm", "zoo", "claims"}


def _children(d: Path) -> tuple[set, set]:
    mods = {p.stem for p in d.glob("*.py")}
    pkgs = {p.name for p in d.iterdir() if (p / "__init__.py").is_file()}
    return mods, pkgs


def test_top_level_holds_the_spec_the_cli_and_the_front_doors():
    mods, pkgs = _children(STUDY.parent)
    assert mods - TOP_MODULES == set(), f"new top-level modules of rf8sim/ (put them in a subpackage): {mods - TOP_MODULES}"
    assert pkgs == TOP_PACKAGES


def test_study_is_organized_by_workload():
    mods, pkgs = _children(STUDY)
    assert mods - STUDY_MODULES == set(), \
        f"modules at the top of rf8sim/study (put them in the workload they serve, or common/): {mods - STUDY_MODULES}"
    assert pkgs == STUDY_PACKAGES
    # every workload folder has modules (and ``configs/`` stays package data of rf8sim.study)
    assert all(len(_children(STUDY / p)[0]) > 1 for p in pkgs) and (STUDY / "configs" / "flow.toml").is_file()


def test_flow_stages_do_not_import_the_flow_driver():
    g = _package_graph()
    assert {"rf8sim.study.flow.run", "rf8sim.study.flow.stages", "rf8sim.study.mnist1d.area_accuracy"} <= set(g)
    assert "rf8sim.study.flow.run" not in g["rf8sim.study.flow.stages"] | g["rf8sim.study.mnist1d.area_accuracy"]


# ---- the whole package: layers that only point down, no import circles (deferred imports count) ----------

#: module-name prefix -> layer; a module may import its own layer or lower ones.  Longest prefix wins.
#: errors < spec < infrastructure < golden, workloads < hdl, training < study (and the front doors built on it) < CLI
LAYERS = {
    "rf8sim.errors": 0,
    "rf8sim.formats": 1, "rf8sim.accspec": 1, "rf8sim.scales": 1,
    "rf8sim.infra": 2,
    "rf8sim.workloads": 3, "rf8sim.golden": 3,
    "rf8sim.hdl": 4, "rf8sim.training": 4, "rf8sim.tech": 4,
    "rf8sim.study": 5, "rf8sim.verify": 5, "rf8sim.verify_array": 5, "rf8sim.bench": 5,
    "rf8sim.cli": 6,
}
#: the CLI layer also holds every part's ``commands`` and ``*_cli`` modules (its subcommands), and the
#: package's front door ``rf8sim/__init__.py`` (its lazy attributes import anything)
CLI_MODULES = ("commands", "cli")

#: Known upward imports (importer prefix, imported prefix), each to be removed by its part's owner:
KNOWN_UPWARD: set[tuple[str, str]] = set()

#: Known import circles, each as the prefixes covering all of its members (to be broken by their owners):
KNOWN_CIRCLES: list = []


def _package_graph() -> dict[str, set[str]]:
    """module -> rf8sim modules it imports anywhere in its source (module level or deferred)."""
    root = STUDY.parent
    mods = {}
    for p in root.rglob("*.py"):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    g = {}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - (node.level - 1)]
                    name = ".".join(base + ([node.module] if node.module else []))
                else:
                    name = node.module or ""
                if not name.startswith("rf8sim"):
                    continue
                if name == "rf8sim" and all(a.name.startswith("__") for a in node.names):
                    continue  # __version__: metadata, not a dependency on the front door
                subs = [f"{name}.{a.name}" for a in node.names if f"{name}.{a.name}" in mods]
                deps.update(subs or [name])
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("rf8sim"))
        g[m] = {d for d in deps if d in mods and d != m}
    return g


def _layer(m: str) -> int | None:
    last = m.rpartition(".")[2]
    if m == "rf8sim" or last in CLI_MODULES or last.endswith("_cli"):
        return 6
    best = max((k for k in LAYERS if m == k or m.startswith(k + ".")), key=len, default=None)
    return None if best is None else LAYERS[best]


def _covered(m: str, prefixes) -> bool:
    return any(m == p or m.startswith(p + ".") for p in prefixes)


def _circles(g) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    import sys

    index, low, stack, on, out = {}, {}, [], set(), []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
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

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    g = _package_graph()
    assert len(g) > 100 and "rf8sim.hdl.spec" in g
    assert [m for m in g if _layer(m) is None] == []


def test_imports_only_point_down():
    g = _package_graph()
    up = sorted((m, d) for m, ds in g.items() for d in ds if _layer(d) > _layer(m)
                and not any(_covered(m, [a]) and _covered(d, [b]) for a, b in KNOWN_UPWARD))
    assert up == [], "upward imports (import the lower layer instead, or pass the object down): " + \
        "; ".join(f"{m} -> {d}" for m, d in up)


def test_no_import_circles_beyond_the_known_ones():
    g = _package_graph()
    new = [c for c in _circles(g) if not any(all(_covered(m, k) for m in c) for k in KNOWN_CIRCLES)]
    assert new == [], f"import circles: {new}"
    # the hdl part has none (the spec, the units and the tool probes sit below everything that uses them)
    assert not [c for c in _circles(g) if any(m.startswith("rf8sim.hdl") for m in c)]


def test_layering_checks_can_fail():
    assert _circles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert _layer("rf8sim.hdl.spec") == 4 and _layer("rf8sim.hdl.commands") == 6 and _layer("rf8sim.nope") is None
    assert _layer("rf8sim.infra.tools") < _layer("rf8sim.golden") < _layer("rf8sim.hdl.synth")


def test_every_module_the_package_tells_users_to_run_exists():
    """Each ``python -m rf8sim.X`` in the package's messages, usage lines and docstrings names a module with a
    ``__main__`` block: after the reorganization, an error told users to run ``rf8sim.hdl.ppa16`` (gone) and
    another pointed at ``rf8sim.hdl.route_cli`` (no entry point)."""
    import re

    root = STUDY.parent
    named = {}
    for p in root.rglob("*.py"):
        for m in re.findall(r"python -m (rf8sim(?:\.\w+)*)", p.read_text()):
            named.setdefault(m, p.relative_to(root.parent).as_posix())
    bad = {}
    for mod, where in named.items():
        f = root.parent / (mod.replace(".", "/") + ".py")
        if not f.is_file() or '__name__ == "__main__"' not in f.read_text():
            bad[mod] = where
    assert len(named) >= 10 and not bad, f"modules named by `python -m` that cannot run: {bad}"
