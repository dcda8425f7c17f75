"""Generated blocks in README.md and docs/*.md: every table of numbers is rendered from a record.

A block is delimited by ``<!-- BEGIN generated:KEY -->`` and ``<!-- END generated:KEY -->``
and its content is exactly ``render(KEY)``: a function registered under KEY that reads a
checked-in record (``rf8sim.infra.records``) and returns markdown.  ``rf8sim docs`` rewrites
every block; ``rf8sim docs --check`` (and ``tests/test_docs_sync.py``) fails when a
block differs from its render, names an unknown key, or its record is missing.

A renderer is a plain module-level function beside the code that produces its record; importing
a module registers nothing.  The registry by page is :data:`PAGES`: for every page, each of its
generated blocks and the renderer that writes it, as ``"module:function"`` (or
``"module:function(arg)"`` for a renderer of a family, called with the one string argument)::

    "docs/claims.md": {
        "claims:table": "rf8sim.study.claims.report:render_claims_table",
        "claims:detail:gg-fit": "rf8sim.study.claims.report:render_detail(gg-fit)",
    },

Rendering a block imports that one module (:func:`render`, :func:`resolve`); a page's blocks must
all be listed under it (``tests/test_docs_sync.py``), so the owner of every number on a page is
found there, and ``rf8sim docs`` on one page loads only that page's renderers.  :func:`register`
adds a renderer by hand (tests, a page outside the checkout); it is never called at import.  A
missing record raises :class:`DocgenError` from the renderer.  Contributor notes:
docs/contributing.md.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from pathlib import Path

from ..errors import RF8SimError

__all__ = ["REGISTRY", "PAGES", "register", "render", "update_file", "check_file", "blocks", "doc_files",
           "load_all", "load_page", "renderer_module", "DocgenError", "load_record", "record_head", "resolve"]

#: key -> function returning the block's markdown (without the marker lines): the renderers resolved
#: from :data:`PAGES` so far and those added with :func:`register`; empty after any import.
REGISTRY: dict[str, Callable[[], str]] = {}

#: The registry by page: page (relative to the checkout) -> generated-block key -> its renderer,
#: ``"module:function"`` or ``"module:function(arg)"`` (:func:`resolve`).  A new block goes under its page here.
PAGES: dict[str, dict[str, str]] = {
    "README.md": {
        "readme:answer": "rf8sim.study.flow.results:render_readme_lead",
        "readme:demo-time": "rf8sim.study.flow.demotime:render_demo_time",
        "study:minilm-run": "rf8sim.study.flow.results:render_run",
        "readme:w8a16-findings": "rf8sim.hdl.ppa_cli:render_w8a16_findings",
        "readme:minilm-answer": "rf8sim.study.flow.results:render_readme_answer",
        "readme:measured": "rf8sim.bench:measured_table",
        "readme:ci-time": "rf8sim.study.flow.demotime:render_ci_time",
        "readme:claims": "rf8sim.study.claims.report:render_readme_claims",
    },
    "docs/claims.md": {
        "claims:table": "rf8sim.study.claims.report:render_claims_table",
        "claims:wall-times": "rf8sim.study.claims.report:render_wall_times",
        "claims:qualifications": "rf8sim.study.claims.qualify:render_qualifications",
        "claims:detail:gg-fit": "rf8sim.study.claims.report:render_detail(gg-fit)",
        "claims:detail:gg-init": "rf8sim.study.claims.report:render_detail(gg-init)",
        "claims:detail:backslash": "rf8sim.study.claims.report:render_detail(backslash)",
        "claims:detail:deepshape": "rf8sim.study.claims.report:render_detail(deepshape)",
        "claims:detail:rf8-inference": "rf8sim.study.claims.report:render_detail(rf8-inference)",
    },
    "docs/formats.md": {
        "golden:narrow-gemm": "rf8sim.golden.bench:narrow_table",
        "formats:aligned-width": "rf8sim.study.minilm.aligned_error:render_widths",
        "golden:w8a16-gemm": "rf8sim.golden.bench_w8a16:table",
        "formats:aligned-error": "rf8sim.study.minilm.aligned_error:render_table",
    },
    "docs/hdl.md": {
        "tech:sky130-char": "rf8sim.tech.docs:render_char",
        "tech:sky130-compare": "rf8sim.tech.docs:render_compare",
        "hdl:w8a16-verify": "rf8sim.hdl.sim:render_verify_records",
        "hdl:w8a16-area": "rf8sim.hdl.synth:render_w8a16_table",
        "hdl:w8a16-goals": "rf8sim.hdl.synth:render_w8a16_summary",
        "hdl:area": "rf8sim.hdl.synth:render_area_table",
        "hdl:area-findings": "rf8sim.hdl.synth:render_area_findings",
        "hdl:w8a16-findings": "rf8sim.hdl.synth:render_w8a16_findings",
        "hdl:ppa": "rf8sim.hdl.ppa_cli:render_ppa_table",
        "hdl:ppa-streams": "rf8sim.hdl.ppa_cli:render_stream_table",
        "hdl:ppa-anchors": "rf8sim.hdl.ppa_cli:render_ppa_anchors",
        "hdl:ppa-findings": "rf8sim.hdl.ppa_cli:render_ppa_findings",
        "hdl:ppa-glitch": "rf8sim.hdl.ppa_cli:render_glitch_table",
        "hdl:activity-calibration": "rf8sim.hdl.activity:render_calibration",
        "hdl:ppa-w8a16": "rf8sim.hdl.ppa_cli:render_ppa_w8a16_table",
        "hdl:ppa-w8a16-findings": "rf8sim.hdl.ppa_cli:render_ppa_w8a16_findings",
        "hdl:bench": "rf8sim.hdl.bench:render_bench_table",
        "hdl:array-minilm": "rf8sim.verify_array:render_minilm",
        "hdl:array-bench": "rf8sim.verify_array:render_bench",
        "hdl:array-activity": "rf8sim.hdl.array_activity:render",
        "hdl:array-schedule": "rf8sim.verify_array:render_schedule",
        "hdl:array-cost": "rf8sim.hdl.array_cost:render_table",
        "hdl:array-goals": "rf8sim.hdl.array_cost:render_goals",
        "hdl:array-cost-sky130": "rf8sim.hdl.array_cost:render_table(sky130)",
        "hdl:array-goals-sky130": "rf8sim.hdl.array_cost:render_goals(sky130)",
        "hdl:route-osu018": "rf8sim.hdl.route_study:render_routed(osu018)",
        "hdl:route-failures-osu018": "rf8sim.hdl.route_study:render_failures(osu018)",
        "hdl:route-spread-osu018": "rf8sim.hdl.route_study:render_spread(osu018)",
        "hdl:route-noise-osu018": "rf8sim.hdl.route_study:render_noise(osu018)",
        "hdl:route-anchors-osu018": "rf8sim.hdl.route_study:render_anchors(osu018)",
        "hdl:route-sky130": "rf8sim.hdl.route_study:render_routed(sky130)",
        "hdl:route-failures-sky130": "rf8sim.hdl.route_study:render_failures(sky130)",
        "hdl:route-spread-sky130": "rf8sim.hdl.route_study:render_spread(sky130)",
        "hdl:route-noise-sky130": "rf8sim.hdl.route_study:render_noise(sky130)",
        "hdl:route-anchors-sky130": "rf8sim.hdl.route_study:render_anchors(sky130)",
        "hdl:route-osu018-w8a16": "rf8sim.hdl.route_study:render_routed(osu018-w8a16)",
        "hdl:route-failures-osu018-w8a16": "rf8sim.hdl.route_study:render_failures(osu018-w8a16)",
        "hdl:route-noise-osu018-w8a16": "rf8sim.hdl.route_study:render_noise(osu018-w8a16)",
        "hdl:route-sky130-w8a16": "rf8sim.hdl.route_study:render_routed(sky130-w8a16)",
        "hdl:route-failures-sky130-w8a16": "rf8sim.hdl.route_study:render_failures(sky130-w8a16)",
        "hdl:route-noise-sky130-w8a16": "rf8sim.hdl.route_study:render_noise(sky130-w8a16)",
        "hdl:route-array-sky130": "rf8sim.hdl.route_study:render_array_route(sky130)",
    },
    "docs/study.md": {
        "study:full-run": "rf8sim.study.mnist1d.sweep_records:render_full_run",
        "study:full-pareto": "rf8sim.study.mnist1d.sweep_records:render_full_pareto",
        "study:full-iso": "rf8sim.study.mnist1d.sweep_records:render_full_iso",
        "study:full-area": "rf8sim.study.mnist1d.sweep_records:render_full_area",
        "study:full-rounding": "rf8sim.study.mnist1d.sweep_records:render_full_rounding",
        "study:full-facts": "rf8sim.study.mnist1d.sweep_records:render_full_facts",
        "study:full-findings": "rf8sim.study.mnist1d.sweep_records:render_full_findings",
        "study:gg-sqnr": "rf8sim.study.mnist1d.sweep_records:render_gg_sqnr",
        "study:gg-wins": "rf8sim.study.mnist1d.sweep_records:render_gg_wins",
        "study:zoo-table": "rf8sim.study.zoo.report:render_zoo_table",
        "study:zoo-facts": "rf8sim.study.zoo.report:render_zoo_facts",
        "study:zoo-rtl": "rf8sim.study.zoo.report:render_zoo_rtl",
        "study:zoo-prove": "rf8sim.study.zoo.report:render_zoo_prove",
        "study:zoo-mac": "rf8sim.study.zoo.report:render_zoo_mac",
        "study:zoo-tinylm": "rf8sim.study.zoo.pareto:render_zoo_tinylm",
        "study:zoo-pareto": "rf8sim.study.zoo.pareto:render_zoo_pareto",
        "study:minilm-run": "rf8sim.study.flow.results:render_run",
        "study:minilm-points": "rf8sim.study.flow.results:render_points",
        "study:minilm-pairs": "rf8sim.study.flow.results:render_pairs",
        "study:minilm-mixed": "rf8sim.study.flow.results:render_mixed",
        "study:minilm-answer": "rf8sim.study.flow.results:render_answer",
        "study:minilm-mac-costs": "rf8sim.study.minilm.mac_costs:render_default_costs",
        "readme:demo-time": "rf8sim.study.flow.demotime:render_demo_time",
        "study:minilm-costs": "rf8sim.study.minilm.costs:render_costs",
        "study:tinylm-run": "rf8sim.study.tinylm.study:render_run",
        "study:tinylm-points": "rf8sim.study.tinylm.study:render_points",
        "study:tinylm-pairs": "rf8sim.study.tinylm.study:render_pairs",
        "study:tinylm-answer": "rf8sim.study.tinylm.study:render_answer",
        "study:thesis": "rf8sim.study.tinylm.thesis:render",
        "cluster:scaling": "rf8sim.study.mnist1d.cluster_scaling:render_table",
    },
    "docs/training.md": {
        "training:verify-layer": "rf8sim.verify:render_records",
        "training:sweeps": "rf8sim.training.docs:sweeps_table",
        "training:bench": "rf8sim.training.docs:bench_table",
        "training:gpu": "rf8sim.training.docs:gpu_table",
    },
}

#: markers stand alone on their line (a marker quoted inside a sentence is text)
_BLOCK = re.compile(r"^<!-- BEGIN generated:(?P<key>[A-Za-z0-9_.:/-]+) -->\n(?P<body>.*?)"
                    r"^<!-- END generated:(?P=key) -->$", re.S | re.M)
_MARKER = re.compile(r"^<!-- (BEGIN|END) generated:([^ ]*) -->$", re.M)


class DocgenError(RF8SimError, ValueError):
    """A generated block that cannot be rendered: unknown key, unbalanced markers, missing record."""


def record_head(prov: dict) -> str:
    """A generated block's opening words for its record: "Record: `command` (commit, CPU, cores)"."""
    m = prov.get("machine", {})
    return f"Record: `{prov.get('command')}` (commit {str(prov.get('commit'))[:10]}, {m.get('cpu')}, {m.get('cores')} cores)"


def load_record(rel_path, kind: str, how: str) -> dict:
    """The checked-in record ``rel_path`` (relative to the checkout) for a renderer: it must exist
    (else ``how`` says which command writes it) and be of ``kind``."""
    import json

    p = Path(__file__).resolve().parents[2] / rel_path
    if not p.is_file():
        raise DocgenError(f"record {rel_path} is missing: run `{how}` and check it in")
    try:
        rec = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as e:
        raise DocgenError(f"record {rel_path} is not valid JSON ({e}): restore it (git checkout -- {rel_path}) "
                          f"or re-record it with `{how}`") from None
    if not isinstance(rec, dict) or rec.get("kind") != kind:
        raise DocgenError(f"{rel_path} is not a {kind} record (its kind is "
                          f"{rec.get('kind') if isinstance(rec, dict) else type(rec).__name__!r})")
    return rec


def register(key: str):
    """Decorator: ``fn`` renders the block ``key`` (by hand: the checked-in pages' renderers are in :data:`PAGES`)."""
    if not re.fullmatch(r"[A-Za-z0-9_.:/-]+", key):
        raise DocgenError(f"bad generated-block key {key!r} (letters, digits and _.:/- only)")

    def deco(fn: Callable[[], str]) -> Callable[[], str]:
        if key in REGISTRY and REGISTRY[key] is not fn:
            raise DocgenError(f"generated-block key {key!r} is registered twice "
                              f"({REGISTRY[key].__module__} and {fn.__module__})")
        REGISTRY[key] = fn
        return fn

    return deco


_ENTRY = re.compile(r"(?P<module>[A-Za-z_][\w.]*):(?P<function>[A-Za-z_]\w*)(?:\((?P<arg>[\w.-]+)\))?")


def resolve(entry: str) -> Callable[[], str]:
    """The renderer named by a :data:`PAGES` entry: ``"module:function"`` (the function itself) or
    ``"module:function(arg)"`` (the function with its one string argument); imports that module."""
    m = _ENTRY.fullmatch(entry)
    if not m:
        raise DocgenError(f"bad renderer entry {entry!r}: write 'module:function' or 'module:function(arg)'")
    fn = getattr(importlib.import_module(m["module"]), m["function"], None)
    if not callable(fn):
        raise DocgenError(f"renderer entry {entry!r}: {m['module']} has no function {m['function']!r}")
    return functools.partial(fn, m["arg"]) if m["arg"] is not None else fn


def _load(key: str, entry: str) -> None:
    if key not in REGISTRY:
        REGISTRY[key] = resolve(entry)


def load_all() -> None:
    """Resolve the renderer of every block of every page of :data:`PAGES` into :data:`REGISTRY`."""
    for keys in PAGES.values():
        for key, entry in keys.items():
            _load(key, entry)


def load_page(page: str) -> None:
    """Resolve the renderers of one page of :data:`PAGES` (``"README.md"``, ``"docs/hdl.md"``)."""
    if page not in PAGES:
        raise DocgenError(f"no page {page!r} in the docs registry; pages: {', '.join(PAGES)}")
    for key, entry in PAGES[page].items():
        _load(key, entry)


def renderer_module(fn) -> str:
    """The module that defines renderer ``fn`` (a function, a lambda or a functools.partial of one)."""
    while hasattr(fn, "func"):  # functools.partial
        fn = fn.func
    return fn.__module__


def _owner(key: str) -> str | None:
    return next((keys[key] for keys in PAGES.values() if key in keys), None)


def render(key: str) -> str:
    """The markdown of block ``key``, ending with exactly one newline (imports only its renderer's module)."""
    if key not in REGISTRY and _owner(key):
        _load(key, _owner(key))
    if key not in REGISTRY:
        known = sorted({*REGISTRY, *(k for keys in PAGES.values() for k in keys)})
        raise DocgenError(f"no renderer registered for generated block {key!r} (add it to docgen.PAGES); "
                          f"known: {', '.join(known)}")
    try:
        text = REGISTRY[key]()
    except RF8SimError:
        raise
    except (ValueError, KeyError, TypeError) as e:  # a damaged record (JSONDecodeError is a ValueError)
        bad = _unreadable_records()
        raise DocgenError(f"generated block {key!r} cannot be rendered: {type(e).__name__}: {e}"
                          + (f"; unreadable record(s): {', '.join(bad)} - restore them (git checkout -- FILE) "
                             "or re-record them" if bad else " (a record it reads lacks what it needs?)")) from None
    return text.rstrip("\n") + "\n"


def _unreadable_records() -> list[str]:
    """Checked-in JSON records (``*/results/*.json`` and the like) that do not parse, relative to the checkout."""
    import json

    root = Path(__file__).resolve().parents[2]
    bad = []
    for f in sorted(root.glob("**/results/**/*.json")) + sorted(root.glob("golden/*.json")):
        if ".venv" in f.parts or "build" in f.relative_to(root).parts[:1]:
            continue
        try:
            json.loads(f.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            bad.append(str(f.relative_to(root)))
    return bad


def blocks(text: str) -> list[tuple[str, str]]:
    """``(key, current body)`` of every block in ``text``; DocgenError on unbalanced markers."""
    found = [(m.group("key"), m.group("body")) for m in _BLOCK.finditer(text)]
    markers = _MARKER.findall(text)
    if len(markers) != 2 * len(found):
        raise DocgenError(f"{len(markers)} generated-block markers but {len(found)} complete blocks: "
                          "every <!-- BEGIN generated:KEY --> needs its <!-- END generated:KEY --> on a later line")
    return found


def _rendered(text: str) -> str:
    blocks(text)  # validates the markers
    return _BLOCK.sub(lambda m: f"<!-- BEGIN generated:{m.group('key')} -->\n{render(m.group('key'))}"
                                f"<!-- END generated:{m.group('key')} -->", text)


def check_file(path) -> list[str]:
    """Keys of the blocks in ``path`` whose content differs from their render (empty: in sync)."""
    text = Path(path).read_text()
    return [key for key, body in blocks(text) if body != render(key)]


def update_file(path) -> bool:
    """Rewrite every block in ``path`` from its render; True when the file changed (written atomically)."""
    from . import fileio

    p = Path(path)
    text = p.read_text()
    new = _rendered(text)
    if new == text:
        return False
    fileio.write_text(p, new, overwrite=True)
    return True


def doc_files(root=None) -> list[Path]:
    """README.md and docs/*.md of the checkout (the files ``rf8sim docs`` maintains)."""
    from .resources import source_root

    r = Path(root) if root else source_root()
    if r is None:
        raise DocgenError("rf8sim docs works on a source checkout (README.md and docs/ are not installed)")
    return [p for p in [r / "README.md", *sorted((r / "docs").glob("*.md"))] if p.exists()]
