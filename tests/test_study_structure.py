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


# ---- the whole package: layers that only point down, no import circles (deferred imports count) ----------

#: module-name prefix -> layer; a module may import its own layer or lower ones.  Longest prefix wins.
#: errors < spec < infrastructure < golden < hdl, training < study (and the front doors built on it) < CLI
LAYERS = {
    "rf8sim.errors": 0,
    "rf8sim.formats": 1, "rf8sim.accspec": 1, "rf8sim.scales": 1,
    "rf8sim.fileio": 2, "rf8sim.records": 2, "rf8sim.cache": 2, "rf8sim.cluster": 2, "rf8sim.raylocal": 2,
    "rf8sim.resources": 2, "rf8sim.docgen": 2, "rf8sim.tools": 2, "rf8sim.console": 2,
    "rf8sim.golden": 3,
    "rf8sim.hdl": 4, "rf8sim.training": 4, "rf8sim.tech": 4,
    "rf8sim.study": 5, "rf8sim.verify": 5, "rf8sim.verify_array": 5, "rf8sim.bench": 5, "rf8sim.cluster_scaling": 5,
    "rf8sim.cli": 6,
}
#: the CLI layer also holds every part's ``commands`` and ``*_cli`` modules (its subcommands), and the
#: package's front door ``rf8sim/__init__.py`` (its lazy attributes import anything)
CLI_MODULES = ("commands", "cli")

#: Known upward imports (importer prefix, imported prefix), each to be removed by its part's owner:
KNOWN_UPWARD = {
    ("rf8sim.golden.aligned_error", "rf8sim.study"),   # the aligned-error study reads MiniLM data from study
    ("rf8sim.hdl.streams", "rf8sim.study"),            # the minilm energy stream captures MiniLM activations
    ("rf8sim.cluster_scaling", "rf8sim.study.commands"),  # with the circle below
}

#: Known import circles, each as the prefixes covering all of its members (to be broken by their owners):
KNOWN_CIRCLES = [
    ("rf8sim.cluster_scaling", "rf8sim.study.commands"),
    ("rf8sim.study.claims",),                          # the package's __init__ and its runner
    ("rf8sim.cache", "rf8sim.records"),                # records name cache paths, the cache writes records
    ("rf8sim.tech.char", "rf8sim.tech.charseq"),        # the flip-flop characterization and its driver
]


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
    assert _layer("rf8sim.tools") < _layer("rf8sim.golden") < _layer("rf8sim.hdl.synth")
