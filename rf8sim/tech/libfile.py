"""Liberty files: write the characterized sky130 library, read Liberty tables back, check a library.

Conventions of the written library (the published sky130_fd_sc_hd typical library's):
delays from 50 % to 50 %, transitions 20-80 % (``slew_derate_from_library : 1``), energies in pJ
per transition with internal energy = energy drawn from the cell's supply minus half the load's
C*V^2 (so a falling output's internal energy is negative, the load's charge being counted by the
timer's switching power), leakage in nW per input state, capacitances in pF.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from . import TechError
from .cells import CELLS, SLEWS_NS, VDD, Cell, cell as _cell

__all__ = ["write_library", "read_cells", "check_liberty", "cell_group", "tables", "LIB_NAME"]

LIB_NAME = "rf8sim_sky130_fd_sc_hd__tt_025C_1v80"
#: which characterized point gives a pin's capacitance: the second input slew, the smallest load
CAP_POINT = (1, 0)


def _num(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        raise TechError("a characterized table has a missing point; re-run `rf8sim tech characterize` for that cell")
    return f"{x:.7g}"


def _idx(v) -> str:
    return '"' + ", ".join(_num(x) for x in v) + '"'


def _values(rows) -> str:
    return ", \\\n            ".join('"' + ", ".join(_num(x) for x in r) + '"' for r in rows)


def _table(kind: str, template: str, i1, i2, rows, ind: str) -> list:
    out = [f"{ind}{kind} (\"{template}\") {{", f"{ind}  index_1 ({_idx(i1)});"]
    if i2 is not None:
        out.append(f"{ind}  index_2 ({_idx(i2)});")
        out.append(f"{ind}  values ({_values(rows)});")
    else:
        out.append(f"{ind}  values ({_idx(rows)});")
    out.append(f"{ind}}}")
    return out


def _sub(a, b, f=1.0):
    return [[None if x is None else x - f * y for x in row] for row, y in zip(a, b)] if isinstance(b, list) else \
        [[None if x is None else x - b for x in row] for row in a]


def _internal(supply, loads):
    """Supply energy (pJ) per [slew][load] minus half the load's C*V^2."""
    return [[None if x is None else x - 0.5 * c * VDD * VDD for x, c in zip(row, loads)] for row in supply]


def _mean_tables(ts):
    ts = [t for t in ts if t is not None]
    if not ts:
        return None
    return [[sum(t[i][j] for t in ts) / len(ts) for j in range(len(ts[0][0]))] for i in range(len(ts[0]))]


def _function(expr: str) -> str:
    return "(" + expr + ")"


def _header(meta: dict) -> list:
    sl = ", ".join(_num(s) for s in SLEWS_NS)
    lines = [f"/* {line} */" for line in meta.get("comment", [])]
    lines += [f"library (\"{LIB_NAME}\") {{",
              '  technology ("cmos");', '  delay_model : "table_lookup";',
              '  time_unit : "1ns";', '  voltage_unit : "1V";', '  current_unit : "1mA";',
              '  leakage_power_unit : "1nW";', '  pulling_resistance_unit : "1kohm";',
              '  capacitive_load_unit (1.0, "pf");',
              "  nom_process : 1.0;", f"  nom_voltage : {VDD:g};", "  nom_temperature : 25.0;",
              "  input_threshold_pct_rise : 50.0;", "  input_threshold_pct_fall : 50.0;",
              "  output_threshold_pct_rise : 50.0;", "  output_threshold_pct_fall : 50.0;",
              "  slew_lower_threshold_pct_rise : 20.0;", "  slew_lower_threshold_pct_fall : 20.0;",
              "  slew_upper_threshold_pct_rise : 80.0;", "  slew_upper_threshold_pct_fall : 80.0;",
              "  slew_derate_from_library : 1.0;",
              "  default_max_transition : 1.5;", "  default_cell_leakage_power : 0.0;",
              "  default_input_pin_cap : 0.0;", "  default_output_pin_cap : 0.0;", "  default_inout_pin_cap : 0.0;",
              "  default_fanout_load : 1.0;",
              '  operating_conditions ("tt_025C_1v80") {', "    process : 1.0;", f"    voltage : {VDD:g};",
              "    temperature : 25.0;", "  }", '  default_operating_conditions : "tt_025C_1v80";',
              '  lu_table_template ("delay_tbl") {', '    variable_1 : "input_net_transition";',
              '    variable_2 : "total_output_net_capacitance";', f'    index_1 ("{sl}");',
              f'    index_2 ("{", ".join(str(k + 1) for k in range(len(SLEWS_NS)))}");', "  }",
              '  power_lut_template ("energy_tbl") {', '    variable_1 : "input_transition_time";',
              '    variable_2 : "total_output_net_capacitance";', f'    index_1 ("{sl}");',
              f'    index_2 ("{", ".join(str(k + 1) for k in range(len(SLEWS_NS)))}");', "  }",
              '  power_lut_template ("energy_1d") {', '    variable_1 : "input_transition_time";',
              f'    index_1 ("{sl}");', "  }",
              '  lu_table_template ("constraint_3x3") {', '    variable_1 : "related_pin_transition";',
              '    variable_2 : "constrained_pin_transition";', '    index_1 ("1, 2, 3");', '    index_2 ("1, 2, 3");',
              "  }"]
    return lines


def _when(st: dict) -> str:
    """A leakage state as a Liberty ``when``: the flip-flop state IQ is named by its output Q."""
    return "&".join(((k if v else "!" + k).replace("IQ", "Q")) for k, v in st.items() if v is not None)


def _leak(res: dict, ind: str) -> list:
    vals = [x["power_nw"] for x in res["leakage"] if x["power_nw"] is not None]
    out = [f"{ind}cell_leakage_power : {_num(sum(vals) / len(vals))};"]
    for x in res["leakage"]:
        w = _when(x["when"])
        if x["power_nw"] is not None and w:
            out += [f"{ind}leakage_power () {{", f"{ind}  value : {_num(x['power_nw'])};", f'{ind}  when : "{w}";',
                    f"{ind}}}"]
    return out


def _cap_lines(charges: "list[tuple]", ind: str) -> list:
    """(rise_charge_pc, fall_charge_pc) pairs -> capacitance lines (pF)."""
    rise = [q / VDD for q, _ in charges if q is not None]
    fall = [-q / VDD for _, q in charges if q is not None]
    if not rise or not fall:
        raise TechError("a pin's input charge was not measured")
    r, f = sum(rise) / len(rise), sum(fall) / len(fall)
    return [f"{ind}capacitance : {_num((r + f) / 2)};", f"{ind}rise_capacitance : {_num(r)};",
            f"{ind}fall_capacitance : {_num(f)};"]


def _comb_cell(c: Cell, res: dict) -> list:
    ind = "    "
    lines = [f"  cell (\"{c.full_name}\") {{", f"{ind}area : {_num(res['area_um2'])};"]
    lines += _leak(res, ind)
    ci, cj = CAP_POINT
    for p in c.inputs:
        charges = [(a["edges"]["rise"]["input_pc"][ci][cj], a["edges"]["fall"]["input_pc"][ci][cj])
                   for a in res["arcs"] if a["pin"] == p]
        lines += [f"{ind}pin (\"{p}\") {{", f'{ind}  direction : "input";', *_cap_lines(charges, ind + "  "),
                  f"{ind}}}"]
    for o, fn in c.outputs.items():
        lines += [f"{ind}pin (\"{o}\") {{", f'{ind}  direction : "output";', f'{ind}  function : "{_function(fn)}";']
        if fn in ("0", "1"):
            lines.append(f"{ind}}}")
            continue
        lines.append(f"{ind}  max_capacitance : {_num(c.max_load[o])};")
        oarcs = [a for a in res["arcs"] if a["out"] == o]
        for a in oarcs:
            i1, i2 = a["slews_ns"], a["loads_pf"]
            t = ind + "    "
            lines += [f"{ind}  timing () {{", f'{t}related_pin : "{a["pin"]}";', f'{t}timing_sense : "{a["sense"]}";',
                      f'{t}timing_type : "combinational";']
            for e in ("rise", "fall"):
                g = a["edges"][e]
                od = g["out_dir"]
                lines += _table(f"cell_{od}", "delay_tbl", i1, i2, g["delay_ns"], t)
                lines += _table(f"{od}_transition", "delay_tbl", i1, i2, g["transition_ns"], t)
            lines.append(f"{ind}  }}")
        for p in c.inputs:
            parcs = [a for a in oarcs if a["pin"] == p]
            if not parcs:
                continue
            i1, i2 = parcs[0]["slews_ns"], parcs[0]["loads_pf"]
            t = ind + "    "
            lines += [f"{ind}  internal_power () {{", f'{t}related_pin : "{p}";']
            for od in ("rise", "fall"):
                tabs = [_internal(g["supply_pj"], i2) for a in parcs for g in a["edges"].values() if g["out_dir"] == od]
                lines += _table(f"{od}_power", "energy_tbl", i1, i2, _mean_tables(tabs), t)
            lines.append(f"{ind}  }}")
        lines.append(f"{ind}}}")
    lines.append("  }")
    return lines


def _flop_cell(c: Cell, res: dict) -> list:
    ind = "    "
    f, cons = res["flop"], res["constraints"]
    i1, i2 = f["slews_ns"], f["loads_pf"]
    clk, d, rst = c.clock, c.data, c.reset
    lines = [f"  cell (\"{c.full_name}\") {{", f"{ind}area : {_num(res['area_um2'])};"]
    lines += _leak(f, ind)
    ff = [f'{ind}ff ("IQ", "IQ_N") {{', f'{ind}  clocked_on : "{clk}";', f'{ind}  next_state : "{d}";']
    if rst:
        ff.append(f'{ind}  clear : "!{rst}";')
    lines += ff + [f"{ind}}}"]
    ci = CAP_POINT[0]
    t = ind + "    "
    for p in c.inputs:
        q = f["input_pc"][p]
        lines += [f"{ind}pin (\"{p}\") {{", f'{ind}  direction : "input";']
        if p == clk:
            lines.append(f'{ind}  clock : "true";')
        lines += _cap_lines([(q["rise"][ci], q["fall"][ci])], ind + "  ")
        pe = f["pin_energy_pj"].get(p, {})
        if pe.get("rise") and (p != rst or True):
            lines += [f"{ind}  internal_power () {{"]
            for e in ("rise", "fall"):
                if pe.get(e):
                    lines += _table(f"{e}_power", "energy_1d", i1, None, pe[e], t)
            lines.append(f"{ind}  }}")
        if p == d:
            sl = cons["slews_ns"]
            for kind in ("setup", "hold"):
                lines += [f"{ind}  timing () {{", f'{t}related_pin : "{clk}";', f'{t}timing_type : "{kind}_rising";']
                for e in ("rise", "fall"):
                    g = cons[f"{kind}_{e}_ns"]  # [data][clock] -> Liberty [clock][data]
                    if any(v is None for row in g for v in row):
                        continue  # never passed inside the searched range: not written (the record says so)
                    rows = [[g[a][b] for a in range(len(sl))] for b in range(len(sl))]
                    if len(sl) == 1:  # one characterized point: a scalar constraint
                        lines += [f'{t}{e}_constraint ("scalar") {{', f'{t}  values ("{_num(rows[0][0])}");', f"{t}}}"]
                    else:
                        lines += _table(f"{e}_constraint", "constraint_3x3", sl, sl, rows, t)
                lines.append(f"{ind}  }}")
        lines.append(f"{ind}}}")
    lines += [f"{ind}pin (\"Q\") {{", f'{ind}  direction : "output";', f'{ind}  function : "IQ";',
              f"{ind}  max_capacitance : {_num(c.max_load['Q'])};",
              f"{ind}  timing () {{", f'{t}related_pin : "{clk}";', f'{t}timing_type : "rising_edge";',
              f'{t}timing_sense : "non_unate";']
    for e in ("rise", "fall"):
        lines += _table(f"cell_{e}", "delay_tbl", i1, i2, f["clk_q"][e]["delay_ns"], t)
        lines += _table(f"{e}_transition", "delay_tbl", i1, i2, f["clk_q"][e]["transition_ns"], t)
    lines.append(f"{ind}  }}")
    if rst and "reset_q" in f:
        lines += [f"{ind}  timing () {{", f'{t}related_pin : "{rst}";', f'{t}timing_type : "clear";',
                  f'{t}timing_sense : "positive_unate";']
        lines += _table("cell_fall", "delay_tbl", i1, i2, f["reset_q"]["delay_ns"], t)
        lines += _table("fall_transition", "delay_tbl", i1, i2, f["reset_q"]["transition_ns"], t)
        lines.append(f"{ind}  }}")
    # clock-to-Q internal energy: the event's supply energy less the load's half C*V^2 and less the
    # clock pin's own (no-change) energy, which the timer counts on the clock pin
    clk_rise = f["pin_energy_pj"][clk]["rise"]
    lines += [f"{ind}  internal_power () {{", f'{t}related_pin : "{clk}";']
    for e in ("rise", "fall"):
        lines += _table(f"{e}_power", "energy_tbl", i1, i2,
                        _sub(_internal(f["clk_q"][e]["supply_pj"], i2), clk_rise), t)
    lines.append(f"{ind}  }}")
    if rst and "reset_q" in f:
        lines += [f"{ind}  internal_power () {{", f'{t}related_pin : "{rst}";']
        lines += _table("fall_power", "energy_tbl", i1, i2, _internal(f["reset_q"]["supply_pj"], i2), t)
        lines.append(f"{ind}  }}")
    lines += [f"{ind}}}", "  }"]
    return lines


def tie_cell_group(c: Cell, area_um2: float) -> str:
    """A tie cell (constant outputs, no arcs) from its definition and LEF area: nothing to simulate for
    timing; its leakage (through the tie resistors) is not characterized."""
    ind = "    "
    lines = [f"  cell (\"{c.full_name}\") {{", f"{ind}area : {_num(area_um2)};", f'{ind}dont_touch : "true";']
    for o, fn in c.outputs.items():
        lines += [f"{ind}pin (\"{o}\") {{", f'{ind}  direction : "output";', f'{ind}  function : "{_function(fn)}";',
                  f"{ind}}}"]
    return "\n".join(lines + ["  }"]) + "\n"


def cell_group(res: dict) -> str:
    c = _cell(res["cell"])
    return "\n".join(_flop_cell(c, res) if c.sequential else _comb_cell(c, res)) + "\n"


def write_library(results: list, meta: dict | None = None, ties: dict | None = None) -> str:
    """The Liberty text of characterized cells (results of :func:`rf8sim.tech.char.characterize_cell`) and
    of tie cells (``ties``: name -> LEF area), in the order of :data:`rf8sim.tech.cells.CELLS`."""
    order = {c.full_name: n for n, c in enumerate(CELLS)}
    groups = [(order[r["cell"]], cell_group(r)) for r in results]
    for name, area in (ties or {}).items():
        c = _cell(name)
        if c.full_name not in {r["cell"] for r in results}:
            groups.append((order[c.full_name], tie_cell_group(c, area)))
    return "\n".join(_header(meta or {})) + "\n" + "".join(g for _, g in sorted(groups)) + "}\n"


# ------------------------------------------------------------------------------------------------
# reading

_CELL = re.compile(r'\bcell\s*\(\s*"?([\w$]+)"?\s*\)\s*\{')


def _split_cells(text: str) -> dict:
    """cell name -> its group's text (brace-matched)."""
    out = {}
    for m in _CELL.finditer(text):
        depth, i = 1, m.end()
        n = len(text)
        while depth and i < n:
            ch = text[i]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            i += 1
        if depth:
            raise TechError(f"cell {m.group(1)} is not closed (truncated Liberty file?)")
        out[m.group(1)] = text[m.start():i]
    return out


def _read_text(path) -> str:
    p = Path(path)
    if not p.is_file():
        raise TechError(f"Liberty file {p} does not exist")
    try:
        if p.suffix == ".gz":
            import gzip

            return gzip.decompress(p.read_bytes()).decode(errors="replace")
        return p.read_text(errors="replace")
    except (OSError, EOFError) as e:
        raise TechError(f"Liberty file {p} cannot be read: {e}") from None


def check_liberty(path, cells: "list | tuple | set" = ()) -> dict:
    """Check that ``path`` is a complete Liberty library defining ``cells``; returns cell -> group text.

    A missing file, a file that is not Liberty, one that is truncated (unbalanced braces, no closing
    brace of the library) and one that lacks a listed cell are each a one-line :class:`TechError`.
    """
    text = _read_text(path)
    if not re.search(r"^\s*(/\*.*?\*/\s*)*library\s*\(", text, re.S | re.M):
        raise TechError(f"{path} is not a Liberty file (no library group)")
    body = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    body = re.sub(r'"(\\.|[^"\\])*"', '""', body)
    if body.count("{") != body.count("}") or not body.rstrip().endswith("}"):
        raise TechError(f"{path} is truncated: its braces do not balance ({body.count('{')} open, "
                        f"{body.count('}')} closed)")
    groups = _split_cells(text)
    missing = sorted(set(cells) - set(groups))
    if missing:
        raise TechError(f"{path} lacks cell(s) the netlist uses: {', '.join(missing)}")
    return groups


def read_cells(path, names: "list | None" = None) -> dict:
    """cell -> liberty-parser Group of those cells of ``path`` (all when ``names`` is None)."""
    from liberty.parser import parse_liberty

    groups = check_liberty(path, names or ())
    out = {}
    for n in (names if names is not None else list(groups)):
        lib = parse_liberty('library (x) {\n' + groups[n] + "\n}\n")
        out[n] = lib.get_groups("cell")[0]
    return out


def tables(cell_group) -> dict:
    """(pin, related_pin, timing_type/sense or 'power', table name) -> (index_1, index_2, values) of a cell."""
    import numpy as np

    out = {}

    def arr(g, key):
        try:
            return np.array(g.get_array(key), dtype=float)
        except Exception:  # noqa: BLE001 - absent index
            return None

    for pin in cell_group.get_groups("pin"):
        pname = str(pin.args[0]).strip('"')
        for tg in pin.get_groups("timing"):
            rel = str(tg["related_pin"]).strip('"')
            ttype = str(tg["timing_type"] or "combinational").strip('"')
            sense = str(tg["timing_sense"] or "").strip('"')
            key = ttype if ttype != "combinational" else sense
            for sub in tg.groups:
                i1 = arr(sub, "index_1")
                i2 = arr(sub, "index_2")
                out[(pname, rel, key, sub.group_name)] = (i1 if i1 is None else i1.ravel(),
                                                          i2 if i2 is None else i2.ravel(), arr(sub, "values"))
        for pg in pin.get_groups("internal_power"):
            rel = str(pg["related_pin"] or "").strip('"')
            for sub in pg.groups:
                i1 = arr(sub, "index_1")
                i2 = arr(sub, "index_2")
                out[(pname, rel, "power", sub.group_name)] = (i1 if i1 is None else i1.ravel(),
                                                             i2 if i2 is None else i2.ravel(), arr(sub, "values"))
        for attr in ("capacitance", "rise_capacitance", "fall_capacitance"):
            v = pin[attr]
            if v is not None:
                out[(pname, "", "pin", attr)] = (None, None, np.array([[float(v)]]))
    v = cell_group["cell_leakage_power"]
    if v is not None:
        out[("", "", "cell", "cell_leakage_power")] = (None, None, np.array([[float(v)]]))
    return out
