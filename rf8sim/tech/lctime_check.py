"""Cross-check of rf8sim's ngspice runs against lctime (librecell), an independent characterizer.

lctime 0.0.26 drives its inputs with linear ramps whose *whole* 0-100 % duration is the table slew,
where rf8sim (like the published library) takes the slew as the 20-80 % time; the check therefore runs
rf8sim with ``SLEW_SPAN = 1.0`` and compares delay and transition tables of one cell point by point.
Energies are not compared: lctime counts the load's charge differently.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ToolMissingError
from . import TechError
from .cells import SLEWS_NS, cell

__all__ = ["lctime_check"]

_TEMPLATE = """library (lctime_check) {{
  delay_model : table_lookup;
  time_unit : "1ns"; voltage_unit : "1V"; current_unit : "1mA"; leakage_power_unit : "1nW";
  capacitive_load_unit (1, pf);
  nom_voltage : 1.8; nom_temperature : 25; nom_process : 1;
  input_threshold_pct_fall : 50; input_threshold_pct_rise : 50;
  output_threshold_pct_fall : 50; output_threshold_pct_rise : 50;
  slew_lower_threshold_pct_fall : 20; slew_lower_threshold_pct_rise : 20;
  slew_upper_threshold_pct_fall : 80; slew_upper_threshold_pct_rise : 80; slew_derate_from_library : 1;
  cell ({name}) {{
    pg_pin (VPWR) {{ pg_type : primary_power; voltage_name : VPWR; }}
    pg_pin (VGND) {{ pg_type : primary_ground; voltage_name : VGND; }}
    pg_pin (VPB) {{ pg_type : nwell; voltage_name : VPB; }}
    pg_pin (VNB) {{ pg_type : pwell; voltage_name : VNB; }}
{pins}
  }}
}}
"""


def _lctime_exe() -> str:
    import sys

    exe = Path(sys.executable).parent / "lctime"
    if exe.exists():
        return str(exe)
    found = shutil.which("lctime")
    if not found:
        raise ToolMissingError("lctime is not installed; run: pip install lctime==0.0.26 (the rf8sim[tech] extra)")
    return found


def lctime_check(name: str = "inv_1", workdir=None) -> dict:
    """Characterize ``name`` with lctime and with rf8sim (0-100 % ramps); per-table relative differences."""
    from . import spice
    from .char import characterize_cell
    from .spice import model_lib, spice_file
    from .libfile import tables

    c = cell(name)
    if c.sequential or len(c.outputs) != 1:
        raise TechError("the lctime cross-check takes a single-output combinational cell")
    out = next(iter(c.outputs))
    loads = c.loads(out)
    pins = "\n".join(f"    pin ({p}) {{ direction : input; }}" for p in c.inputs)
    pins += f'\n    pin ({out}) {{ direction : output; function : "{c.outputs[out]}"; }}'
    with tempfile.TemporaryDirectory(prefix="rf8lctime") as tmp:
        d = Path(workdir or tmp)
        (d / "wd").mkdir(parents=True, exist_ok=True)
        (d / "tmpl.lib").write_text(_TEMPLATE.format(name=c.full_name, pins=pins))
        (d / "models.sp").write_text(f'.option scale=1e-6\n.lib "{model_lib()}" tt\n')
        cmd = [_lctime_exe(), "-l", "tmpl.lib", "--cell", c.full_name, "--spice", str(spice_file(c)),
               "-I", "models.sp", "-o", "out.lib", "--output-loads", ",".join(f"{x:g}" for x in loads),
               "--slew-times", ",".join(f"{x:g}" for x in SLEWS_NS), "--simulator", "ngspice-interactive",
               "--workingdir", "wd"]
        r = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=3600)
        if r.returncode != 0 or not (d / "out.lib").is_file():
            raise TechError(f"lctime failed on {c.full_name}: {(r.stdout + r.stderr).strip()[-300:]}")
        from liberty.parser import parse_liberty

        theirs = tables(parse_liberty((d / "out.lib").read_text()).get_groups("cell")[0])
    span = spice.SLEW_SPAN
    try:
        spice.SLEW_SPAN = 1.0
        ours_raw = characterize_cell(name)
    finally:
        spice.SLEW_SPAN = span
    rows = []
    for arc in ours_raw["arcs"]:
        for e in ("rise", "fall"):
            g = arc["edges"][e]
            od = g["out_dir"]
            for tname, key in ((f"cell_{od}", "delay_ns"), (f"{od}_transition", "transition_ns")):
                t = theirs.get((out, arc["pin"], arc["sense"], tname))
                if t is None:
                    continue
                lt = np.asarray(t[2], float).T  # lctime: [load][slew]
                ours = np.asarray(g[key], float)
                rel = np.abs(ours - lt) / np.abs(lt)
                rows.append({"pin": arc["pin"], "table": tname, "points": int(rel.size),
                             "max_rel": round(float(rel.max()), 4), "median_rel": round(float(np.median(rel)), 4),
                             "within_2pct": int((rel <= 0.02).sum()), "within_5pct": int((rel <= 0.05).sum())})
    if not rows:
        raise TechError("lctime's Liberty has none of the characterized tables")
    return {"kind": "sky130-lctime-check", "cell": c.full_name, "lctime": _version("lctime"),
            "slews_ns": list(SLEWS_NS), "loads_pf": list(loads), "tables": rows}


def _version(pkg: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
