"""Every generated block in README.md and docs/*.md is exactly what its record renders to."""

import json

import pytest

from rf8sim.infra import docgen
from rf8sim.cli import main


def test_every_generated_block_matches_its_record():
    files = docgen.doc_files()
    assert any(f.name == "README.md" for f in files) and any(f.name == "claims.md" for f in files)
    n = 0
    for f in files:
        for key, body in docgen.blocks(f.read_text()):  # an unregistered key or a missing record raises
            assert body == docgen.render(key), f"{f.name}: block {key} is stale; run `rf8sim docs`"
            n += 1
    assert n >= 8  # README's measured table, the claims table, wall times and 5 detail tables


def test_every_block_is_in_the_registry_of_its_page():
    """docgen.PAGES lists each page's blocks with the renderer that writes them (module:function), and
    rendering a block imports that module only (a subprocess starts from an empty registry)."""
    import subprocess
    import sys

    n = 0
    for f in docgen.doc_files():
        page = "README.md" if f.name == "README.md" else f"docs/{f.name}"
        keys = list(dict.fromkeys(k for k, _ in docgen.blocks(f.read_text())))
        assert keys == [] or page in docgen.PAGES, f"{page} has generated blocks but no entry in docgen.PAGES"
        have = docgen.PAGES.get(page, {})
        docgen.load_all()
        missing = {k: docgen.renderer_module(docgen.REGISTRY[k]) for k in keys if k not in have and k in docgen.REGISTRY}
        assert not missing, f"add these blocks of {page} to docgen.PAGES[{page!r}] (key: module): {missing}"
        assert set(keys) == set(have), f"{page}: docgen.PAGES lists blocks the page lacks: {set(have) - set(keys)}"
        for key in keys:
            docgen.render(key)
            assert docgen.renderer_module(docgen.REGISTRY[key]) == docgen.PAGES[page][key].split(":")[0], (page, key)
            n += 1
    assert n >= 50
    code = ("import sys; from rf8sim.infra import docgen; docgen.render('training:bench'); "
            "print(sorted(m for m in sys.modules if m.startswith('rf8sim.hdl') or m.startswith('rf8sim.study')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out  # the training page's renderer alone: no hdl or study module imported
    with pytest.raises(docgen.DocgenError, match="no page 'docs/nope.md'.*README.md"):
        docgen.load_page("docs/nope.md")


def test_importing_a_renderer_module_registers_nothing():
    """Renderers are found through docgen.PAGES only: importing docgen, every module PAGES names and every
    study module leaves the registry empty (a module-level @register or register(...)(fn) fails this)."""
    import subprocess
    import sys

    code = ("import importlib, pkgutil, rf8sim.study\n"
            "from rf8sim.infra import docgen\n"
            "mods = sorted({e.split(':')[0] for keys in docgen.PAGES.values() for e in keys.values()}\n"
            "              | {m.name for m in pkgutil.walk_packages(rf8sim.study.__path__, 'rf8sim.study.')})\n"
            "for m in mods:\n"
            "    importlib.import_module(m)\n"
            "print(len(mods), sorted(docgen.REGISTRY))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert int(out[0]) >= 50 and out[1].strip() == "[]", out


def test_renderer_entries_resolve_to_module_functions():
    """Every PAGES entry names a module-level function; a block on two pages has one renderer; bad entries
    are one clear error."""
    n, seen = 0, {}
    for keys in docgen.PAGES.values():
        for key, entry in keys.items():
            assert seen.setdefault(key, entry) == entry, (key, entry, seen[key])
            mod, _, fn = entry.partition(":")
            assert fn and "." not in fn and "<" not in fn, entry
            n += 1
    assert n >= 80
    assert docgen.resolve("rf8sim.study.claims.report:render_detail(gg-fit)")() == \
        __import__("rf8sim.study.claims.report", fromlist=["x"]).render_detail("gg-fit")
    with pytest.raises(docgen.DocgenError, match="bad renderer entry 'rf8sim.bench'"):
        docgen.resolve("rf8sim.bench")
    with pytest.raises(docgen.DocgenError, match="rf8sim.bench has no function 'nope'"):
        docgen.resolve("rf8sim.bench:nope")


def test_every_registered_block_is_used_somewhere():
    docgen.load_all()
    used = {key for f in docgen.doc_files() for key, _ in docgen.blocks(f.read_text())}
    assert set(docgen.REGISTRY) <= used, set(docgen.REGISTRY) - used


def test_check_and_update(tmp_path, monkeypatch):
    calls = []

    @docgen.register("test:demo")
    def _demo():
        calls.append(1)
        return "| a |\n|---|\n| 1 |"

    try:
        doc = tmp_path / "x.md"
        doc.write_text("intro\n<!-- BEGIN generated:test:demo -->\nold\n<!-- END generated:test:demo -->\ntail\n")
        assert docgen.check_file(doc) == ["test:demo"]
        assert main(["docs", "--check", str(doc)]) == 1
        assert docgen.update_file(doc) and not docgen.update_file(doc)
        assert doc.read_text() == ("intro\n<!-- BEGIN generated:test:demo -->\n| a |\n|---|\n| 1 |\n"
                                   "<!-- END generated:test:demo -->\ntail\n")
        assert docgen.check_file(doc) == [] and main(["docs", "--check", str(doc)]) == 0
        doc.write_text("<!-- BEGIN generated:test:demo -->\nno end\n")
        with pytest.raises(docgen.DocgenError, match="markers"):
            docgen.check_file(doc)
        doc.write_text("<!-- BEGIN generated:test:nope -->\n<!-- END generated:test:nope -->\n")
        with pytest.raises(docgen.DocgenError, match="no renderer"):
            docgen.check_file(doc)
        assert main(["docs", "--check", str(doc)]) == 2  # a clear error, no traceback
    finally:
        docgen.REGISTRY.pop("test:demo")


def test_a_missing_record_fails_the_render(tmp_path, monkeypatch):
    from rf8sim.study.claims import report

    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path)
    with pytest.raises(docgen.DocgenError, match="record .*gg-fit.json missing"):
        docgen.render("claims:detail:gg-fit")


def test_claim_verdicts_recorded_with_their_rule():
    """The verdict in each results file is what the recipe's verdict function computes from its numbers."""
    import importlib

    from rf8sim.study.claims import RECIPES
    from rf8sim.study.claims.common import RESULTS_DIR

    for name, mod in RECIPES.items():
        p = json.loads((RESULTS_DIR / f"{name}.json").read_text())
        want = importlib.import_module(mod).verdict(p)
        assert p["verdict"] == json.loads(json.dumps(want)), name
        assert p["verdict"]["verdict"] in ("supported", "partly supported", "not supported")
        assert len(p["verdict"]["rule"]) > 40


def test_claims_header_renders_what_the_record_says():
    from rf8sim.study.claims.report import _head

    base = {"command": "rf8sim claims gg-fit", "setting": "full", "wall_time_s": 10.0, "seeds": []}
    prov = {"torch_threads": 1, "torch": "2.13.0", "python": "3.11.7", "rf8sim": "0.1.0",
            "machine": {"cpu": "Xeon", "cores": 2, "load_1min": 3.5}, "commit": "a" * 40, "dirty": True,
            "diff_sha256": "f" * 64}
    h = _head({**base, "provenance": prov})
    assert "uncommitted changes (diff sha256 ffffffffffff)" in h and "Xeon, 2 cores, load 3.5" in h
    assert "shared with other jobs" not in h
    h = _head({**base, "provenance": {**prov, "dirty": False}})
    assert "commit aaaaaaaaaa (clean tree)" in h
    old = {k: v for k, v in prov.items() if k not in ("commit", "dirty", "diff_sha256")}
    h = _head({**base, "provenance": {**old, "git_commit": "bb42c94", "machine": "vm x86_64 2 cpus"}})
    assert "commit bb42c94 (dirty-tree flag not recorded)" in h and "vm x86_64 2 cpus" in h
