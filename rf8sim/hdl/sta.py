"""Static timing and per-cell energies with OpenSTA (Debian ``opensta``, binary ``sta``).

Timing constraints (one clock ``clk`` of ``clock_ns``, ideal, no clock tree): every other
input is launched by a ``DFFPOSX1`` on the same clock (``set_driving_cell`` with input
delay 0), every output drives one ``DFFPOSX1`` D pin (``set_load``, output delay 0), as
if the unit sat between registers of an array.  Critical path = ``clock_ns - worst
slack`` (it includes the setup time of the capturing flip-flop), fmax = 1 / critical path.

Energies: the Debian build (OpenSTA 2.0.17, 2019) cannot take per-net activities:
``set_power_activity -pins`` fails (its Tcl calls an undefined ``get_pins_error`` and
loops over an unset variable), and an activity set on an internal pin with
``sta::set_power_pin_activity`` is overwritten by OpenSTA's own probabilistic
propagation from the inputs before ``report_power`` reads it.  Its power model is
linear in each pin's activity, though (switching ``0.5 C V^2 a``; internal energy from
the Liberty tables, slews from timing, times ``a``), so :func:`cell_energies` asks
OpenSTA for every instance's power twice, with ``set_power_activity -global`` at 0 and at
1 transition per clock period: the first run leaves clock-pin internal power and
leakage, the difference is each instance's internal and switching energy per output
transition.  :mod:`rf8sim.hdl.power` multiplies these by the toggle counts of the
gate-level simulation.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ..infra import tools
from ..tech import TECHS
from .mac import HdlError

__all__ = ["sta_exe", "sta_version", "sta_available", "timing", "cell_energies", "run_sta"]

STA_PACKAGE = "opensta"


sta_exe = tools.sta_exe
sta_version = tools.sta_version


sta_available = tools.sta_available


def run_sta(workdir: Path, script: str, name: str = "sta") -> str:
    """Run a Tcl script with ``sta -no_init -exit`` in ``workdir``; its stdout, or HdlError with the log."""
    workdir = Path(workdir)
    (workdir / f"{name}.tcl").write_text(script)
    r = subprocess.run([sta_exe(), "-no_init", "-no_splash", "-exit", f"{name}.tcl"], cwd=workdir,
                       capture_output=True, text=True, timeout=3600)
    out = r.stdout + r.stderr
    (workdir / f"{name}.log").write_text(out)
    if r.returncode != 0 or re.search(r"^Error", out, re.M):
        raise HdlError(f"OpenSTA failed in {workdir} ({name}.tcl):\n{out[-2000:]}")
    return r.stdout


def liberty_pins(lib: Path) -> dict:
    """``{cell: {pin: (direction, capacitance)}}`` read from a Liberty file."""
    text = Path(lib).read_text(errors="replace")
    parts = re.split(r"\bcell\s*\(\s*\"?([\w$]+)\"?\s*\)", text)
    cells = {}
    for name, body in zip(parts[1::2], parts[2::2]):
        pins = {}
        segs = re.split(r"\bpin\s*\(\s*\"?(\w+)\"?\s*\)", body)
        for pin, pbody in zip(segs[1::2], segs[2::2]):
            d = re.search(r"\bdirection\s*:\s*\"?(\w+)", pbody)
            c = re.search(r"\bcapacitance\s*:\s*([0-9.eE+-]+)", pbody)
            pins[pin] = (d.group(1) if d else None, float(c.group(1)) if c else 0.0)
        cells[name] = pins
    return cells


#: the flip-flop that launches the inputs and loads the outputs of a unit, per library (first found)
BOUNDARY_FLOPS = tuple(t.flop for t in TECHS.values())  # (cell, D, Q) per technology (rf8sim.tech.TECHS)


def boundary_flop(pins: dict) -> tuple:
    """``(cell, D, Q)`` of the first :data:`BOUNDARY_FLOPS` cell in a Liberty's pins (HdlError if none)."""
    for cell, d, q in BOUNDARY_FLOPS:
        if d in pins.get(cell, {}) and q in pins.get(cell, {}):
            return cell, d, q
    raise HdlError(f"the Liberty file has none of the boundary flip-flops {[c for c, _, _ in BOUNDARY_FLOPS]}")


def _setup(lib: str, netlist: str, top: str, clock_ns: float, work: Path | None = None,
           spef: str | None = None) -> str:
    if not clock_ns > 0:
        raise HdlError(f"clock period must be > 0 ns, got {clock_ns}")
    libp = Path(lib) if Path(lib).is_absolute() or work is None else Path(work) / lib
    pins = liberty_pins(libp)
    flop, d_pin, q_pin = boundary_flop(pins)
    load = pins[flop][d_pin][1]
    # wire parasitics of a routed netlist (rf8sim.hdl.route): read after linking, before any timing query
    parasitics = f"read_spef {spef}\n" if spef else ""
    return f"""read_liberty {lib}
read_verilog {netlist}
link_design {top}
{parasitics}set rf8_ports [all_inputs]
if {{[llength [get_ports -quiet clk]]}} {{
  create_clock -name clk -period {clock_ns!r} [get_ports clk]
  set rf8_ports [delete_from_list [all_inputs] [get_ports clk]]
}} else {{
  create_clock -name clk -period {clock_ns!r}
}}
set_input_delay 0 -clock clk $rf8_ports
set_driving_cell -lib_cell {flop} -pin {q_pin} $rf8_ports
set_output_delay 0 -clock clk [all_outputs]
set_load {load!r} [all_outputs]
"""


def timing(lib: Path, netlist: Path, top: str, clock_ns: float = 10.0, spef: Path | None = None) -> dict:
    """Worst setup path of a mapped netlist at ``clock_ns``: critical path, slack, fmax (with ``spef``: the
    routed netlist's wire parasitics annotated)."""
    work = Path(netlist).parent
    script = _setup(Path(lib).name if Path(lib).parent == work else str(lib), Path(netlist).name, top, clock_ns, work,
                    _rel(spef, work))
    script += "report_checks -path_delay max -format full -digits 4\nreport_wns\nreport_tns\n"
    out = run_sta(work, script, "timing")
    slack = re.findall(r"^\s*(-?[0-9.]+)\s+slack \((MET|VIOLATED)\)", out, re.M)
    arrival = re.findall(r"^\s*(-?[0-9.]+)\s+data arrival time", out, re.M)
    if not slack:
        raise HdlError(f"OpenSTA found no constrained path in {netlist} (log in {work}/timing.log)")
    sp = re.search(r"Startpoint:\s*(\S+)", out)
    ep = re.search(r"Endpoint:\s*(\S+)", out)
    s = float(slack[0][0])
    crit = clock_ns - s
    return {"clock_ns": clock_ns, "slack_ns": s, "met": slack[0][1] == "MET", "critical_path_ns": crit,
            "arrival_ns": float(arrival[0]) if arrival else None, "fmax_mhz": 1e3 / crit,
            "startpoint": sp.group(1) if sp else None, "endpoint": ep.group(1) if ep else None,
            "sta": sta_version()}


def _rel(p, work: Path) -> str | None:
    if p is None:
        return None
    p = Path(p)
    return p.name if p.parent == Path(work) else str(p)


_INST_LINE = re.compile(r"^\s*([-0-9.eE+]+)\s+([-0-9.eE+]+)\s+([-0-9.eE+]+)\s+([-0-9.eE+]+)\s+(\S+)\s*$", re.M)
_TOTAL_LINE = re.compile(r"^Total\s+([-0-9.eE+]+)\s+([-0-9.eE+]+)\s+([-0-9.eE+]+)\s+([-0-9.eE+]+)", re.M)


def _power_blocks(out: str, marker: str) -> str:
    i = out.index(f"@@{marker}@@")
    j = out.find("@@", i + len(marker) + 4)
    return out[i:j if j >= 0 else len(out)]


def cell_energies(lib: Path, netlist: Path, top: str, clock_ns: float = 10.0, spef: Path | None = None) -> dict:
    """Per-instance energies from OpenSTA ``report_power`` (see the module docstring).

    Returns ``{"instances": {name: {"clock_int_j", "leak_w", "int_j", "sw_j"}}, "totals": ...}``:
    ``clock_int_j`` the internal energy per clock cycle at activity 0 (clock pins),
    ``leak_w`` leakage, ``int_j`` / ``sw_j`` internal / switching energy per transition of
    the instance's pins at activity 1 (for a flip-flop, D and Q together).
    """
    work = Path(netlist).parent
    script = _setup(Path(lib).name if Path(lib).parent == work else str(lib), Path(netlist).name, top, clock_ns, work,
                    _rel(spef, work))
    script += """set rf8_cells [get_cells *]
foreach a {0 1} {
  set_power_activity -global -activity $a -duty 0.5
  puts "@@act$a@@"
  report_power -digits 12
  report_power -instances $rf8_cells -digits 12
}
"""
    out = run_sta(work, script, "power")
    res = {}
    tot = {}
    for a in ("0", "1"):
        blk = _power_blocks(out, f"act{a}")
        t = _TOTAL_LINE.search(blk)
        if not t:
            raise HdlError(f"OpenSTA report_power gave no Total line (log in {work}/power.log)")
        tot[a] = [float(x) for x in t.groups()]
        rows = {m.group(5): [float(m.group(k)) for k in (1, 2, 3, 4)] for m in _INST_LINE.finditer(blk)
                if not m.group(5).endswith("%")}
        res[a] = rows
    T = clock_ns * 1e-9
    inst = {}
    for name, (i0, s0, l0, _) in res["0"].items():
        i1, s1, _, _ = res["1"][name]
        inst[name] = {"clock_int_j": i0 * T, "leak_w": l0, "int_j": (i1 - i0) * T, "sw_j": (s1 - s0) * T,
                      "sw0_w": s0}
    return {"instances": inst, "clock_ns": clock_ns,
            "totals": {f"activity{a}": dict(zip(("internal_w", "switching_w", "leakage_w", "total_w"), tot[a]))
                       for a in tot},
            "sta": sta_version()}


def report_power_at(lib: Path, netlist: Path, top: str, clock_ns: float, global_activity: float | None = None,
                    input_activity: float | None = None) -> dict:
    """OpenSTA's own ``report_power`` totals at ``clock_ns`` (for checks of the flow)."""
    work = Path(netlist).parent
    script = _setup(Path(lib).name if Path(lib).parent == work else str(lib), Path(netlist).name, top, clock_ns, work)
    if global_activity is not None:
        script += f"set_power_activity -global -activity {global_activity!r} -duty 0.5\n"
    if input_activity is not None:
        script += f"set_power_activity -input -activity {input_activity!r} -duty 0.5\n"
    script += "report_power -digits 12\n"
    out = run_sta(work, script, "report_power")
    t = _TOTAL_LINE.search(out)
    if not t:
        raise HdlError(f"OpenSTA report_power gave no Total line (log in {work}/report_power.log)")
    return dict(zip(("internal_w", "switching_w", "leakage_w", "total_w"), (float(x) for x in t.groups())))
