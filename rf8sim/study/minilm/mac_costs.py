"""Per-MAC costs (area, energy) of the transformer study's datapath configurations, and where each comes from.

The MiniLM mixed-format search minimises a MAC-count-weighted cost per layer group.  A configuration's
cost is the cost of the MAC that runs it, keyed by (activation format, weight format, accumulator):

* **area** (µm² per MAC, 1 lane): the flow's own synthesis of this run when it synthesized that MAC
  (8-bit MACs with the exact accumulator, ``[flow] macs``); otherwise the checked-in records:
  ``hdl/results/ppa.json`` (8-bit MACs, via :func:`rf8sim.hdl.power.ppa_rows`) and
  ``hdl/results/synth_w8a16.json`` (the W8A16 units: bf16/fp16 activations, fp32 / aligned accumulators);
* **energy** (pJ per MAC on the MiniLM operand stream, gate-level toggles x OpenSTA cell energies):
  always from the checked-in records ``hdl/results/ppa.json`` and ``hdl/results/ppa_w8a16.json``
  (both read with :func:`rf8sim.hdl.power.ppa_rows`; 1 lane when recorded, else the fewest lanes).

Every cost carries its ``source`` so the report can say which numbers this run measured and which it
took from a record.  A configuration the search needs a cost for and that has none is an error
(:class:`CostError`, naming the configuration and the objective) raised before any long work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...errors import RF8SimError
from ..common.config import OBJECTIVES  # the objectives the mixed search can minimise (besides weight bits)

__all__ = ["CostError", "MacCost", "OBJECTIVES", "mac_key", "recorded_costs", "cost_table", "RECORDS"]

_HDL = Path(__file__).resolve().parents[3] / "hdl" / "results"
#: checked-in records the costs come from (repo paths; a source checkout has them)
RECORDS = {"ppa": _HDL / "ppa.json", "ppa_w8a16": _HDL / "ppa_w8a16.json", "synth_w8a16": _HDL / "synth_w8a16.json"}


class CostError(RF8SimError, ValueError):
    """A configuration the mixed search needs a MAC cost for has none (no synthesis, no record)."""


@dataclass(frozen=True)
class MacCost:
    """Cost of one MAC per multiply-accumulate; ``None`` where nothing is recorded."""

    mac: str                      # "bf16xrf8@fp32"
    area_um2: float | None = None
    area_source: str = ""
    pj_per_mac: float | None = None
    energy_source: str = ""

    def get(self, objective: str) -> float | None:
        return {"area": self.area_um2, "energy": self.pj_per_mac}[objective]

    def source(self, objective: str) -> str:
        return {"area": self.area_source, "energy": self.energy_source}[objective]


def mac_key(dp) -> str:
    """``A x W @ ACC`` of a :class:`~rf8sim.study.minilm.transformer.DatapathConfig` (rounding and scales do not
    change the MAC)."""
    return f"{dp.act_format}x{dp.w_format}@{dp.acc.strip().lower()}"


def _rel(p: Path) -> str:
    try:
        return str(p.relative_to(_HDL.parents[1]))
    except ValueError:
        return str(p)


def recorded_costs(records: dict | None = None) -> dict[str, MacCost]:
    """Every MAC (stage ``mac``) in the checked-in records, keyed by :func:`mac_key`."""
    from ...hdl.power import ppa_rows

    paths = {**RECORDS, **(records or {})}
    area: dict[str, tuple[int, float, str]] = {}
    energy: dict[str, tuple[int, float, str]] = {}

    def keep(d, key, lanes, value, src):
        if value is None:
            return
        if key not in d or lanes < d[key][0]:  # 1 lane when recorded, else the fewest lanes
            d[key] = (lanes, float(value), src + ("" if lanes == 1 else f", {lanes} lanes"))

    for name in ("ppa", "ppa_w8a16"):
        p = Path(paths[name])
        if not p.is_file():
            continue
        for r in ppa_rows(p):
            if r["stage"] != "mac":
                continue
            acc = r["acc_label"] if r.get("acc_label") == "exact" else r["acc"]
            key = f"{r['a_fmt']}x{r['w_fmt']}@{str(acc).lower()}"
            keep(area, key, int(r["lanes"]), r["area_um2"], f"record {_rel(p)}")
            keep(energy, key, int(r["lanes"]), r.get("pj_per_mac_minilm"), f"record {_rel(p)}")
    p = Path(paths["synth_w8a16"])
    if p.is_file():
        for r in json.loads(p.read_text())["rows"]:
            if r["stage"] == "mac":
                keep(area, f"{r['a_fmt']}x{r['w_fmt']}@{str(r['acc']).lower()}", int(r["lanes"]), r["area_um2"],
                     f"record {_rel(p)}")
    out = {}
    for key in sorted(set(area) | set(energy)):
        a, e = area.get(key), energy.get(key)
        out[key] = MacCost(key, None if a is None else a[1], "" if a is None else a[2],
                           None if e is None else e[1], "" if e is None else e[2])
    return out


def cost_table(dps, synthesized: dict | None = None, objectives=OBJECTIVES, records: dict | None = None,
               recorded: dict | None = None) -> dict[str, MacCost]:
    """Cost per datapath label for ``objectives``; CostError naming every configuration without one.

    ``synthesized``: MAC area from this run's synthesis, per ``"AxW"`` (8-bit MACs with the exact
    accumulator) or per :func:`mac_key` (W8A16 units), preferred over the records for the area.  ``recorded``: a precomputed
    :func:`recorded_costs` (tests pass their own)."""
    bad_obj = [o for o in objectives if o not in OBJECTIVES]
    if bad_obj:
        raise CostError(f"unknown mixed-search objective(s) {bad_obj}; valid: {list(OBJECTIVES)}")
    rec = recorded_costs(records) if recorded is None else recorded
    synthesized = synthesized or {}
    out: dict[str, MacCost] = {}
    missing = []
    for dp in dps:
        key = mac_key(dp)
        r = rec.get(key, MacCost(key))
        # this run's synthesis: "AxW" for the 8-bit exact-accumulator MACs, the full key for W8A16 units
        a = synthesized.get(f"{dp.act_format}x{dp.w_format}" if dp.acc.strip().lower() == "exact" else key)
        c = MacCost(key, float(a), "synthesized in this run", r.pj_per_mac, r.energy_source) if a else r
        for o in objectives:
            if c.get(o) is None:
                missing.append(f"{dp.label} ({key}): no {o}")
        out[dp.label] = c
    if missing:
        where = ", ".join(_rel(Path(p)) for p in {**RECORDS, **(records or {})}.values())
        raise CostError("the mixed-format search has no MAC cost for " + "; ".join(missing) +
                        f". Costs come from this run's synthesis ([flow] macs) and the "
                        f"records {where}; drop the configuration, synthesize and record its MAC, or leave the "
                        f"objective out ([transformer] objectives, valid: {list(OBJECTIVES)})")
    return out


def _default_configs() -> list:
    from importlib import resources

    from ..common.config import load_config
    from .transformer import parse_configs

    with resources.as_file(resources.files("rf8sim.study").joinpath("configs", "flow.toml")) as f:
        t = load_config(f).transformer
    return [d for c in t.configs for d in parse_configs(c, t.granularity, 32, t.acc)]


def render_default_costs() -> str:
    """Cost per MAC of the default flow's configurations, from the checked-in records."""
    rec = recorded_costs()
    lines = ["| configuration | MAC | µm² per MAC | area from | pJ/MAC (MiniLM stream) | energy from |",
             "|---|---|---|---|---|---|"]
    for dp in _default_configs():
        c = rec.get(mac_key(dp), MacCost(mac_key(dp)))
        lines.append(f"| {dp.label} | {c.mac} | {'-' if c.area_um2 is None else f'{c.area_um2:,.0f}'} | "
                     f"{c.area_source or '-'} | {'-' if c.pj_per_mac is None else f'{c.pj_per_mac:,.1f}'} | "
                     f"{c.energy_source or '-'} |")
    lines += ["", "In a flow run the 8-bit MACs' areas come from that run's synthesis instead (same generator; the "
              "records are one earlier synthesis of the same Verilog flow)."]
    return "\n".join(lines)




def sweep_costs(rows, recorded: dict | None = None) -> tuple[list[dict], list[str]]:
    """The MNIST-1D sweep's points (1 lane) with ``area_um2`` and ``pj_per_mac`` for the flow's plot.

    Area: the point's own (this run's synthesis) when it has one, else the record's; energy: the record's
    (:func:`recorded_costs`, 8-bit MACs in ``hdl/results/ppa.json``).  Returns the copied rows and the
    sources used."""
    rec = recorded_costs() if recorded is None else recorded
    out, sources = [], set()
    for r in rows:
        if r.get("lanes", 1) != 1:
            continue
        acc = "exact" if str(r.get("acc", "")).lower() == "exact" else f"{r['acc_frac']}:{r['acc_width']}"
        c = rec.get(f"{r['a_format']}x{r['w_format']}@{acc}", MacCost(""))
        d = dict(r)
        if d.get("area_um2") is not None:
            sources.add("area: synthesized in this run")
        elif c.area_um2 is not None:
            d["area_um2"] = c.area_um2
            sources.add(f"area: {c.area_source}")
        d["pj_per_mac"] = c.pj_per_mac
        if c.pj_per_mac is not None:
            sources.add(f"energy: {c.energy_source}")
        out.append(d)
    return out, sorted(sources)
