"""Verification of the W8A16 units on Icarus/Verilator (cocotb runner), bit for bit.

The stream testbench (hdl/tb/mac_tb.v with ``A_BITS = 16``) is the same as for the
8-bit MAC; every output beat (float32 bits and both sticky flags) is compared with the
golden model ``rf8sim.golden.mac(..., acc="fp32" | "aligned:K:M")`` and, with
``model="both"``, also with the independent Fraction reference
:mod:`rf8sim.hdl.reference16`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .mac import HdlError
from .sim import compare, run_stream
from .stimulus16 import edge_codes16, product_sweep16, random_stream16
from .w8a16 import A16Config

__all__ = ["expected16", "verify16", "sweep_codes", "vector_files16", "verify_vector_file16"]


def expected16(cfg: A16Config, stream, model: str = "golden") -> dict:
    """Expected float32 bits and flags after each beat from the golden model or the reference."""
    a = stream.a if cfg.lanes > 1 else stream.a[:, 0]
    w = stream.w if cfg.lanes > 1 else stream.w[:, 0]
    if model == "golden":
        from .. import golden

        tr = golden.mac(a, w, stream.clear, cfg.a.name, cfg.w.name, cfg.acc_text)
        acc = np.asarray(tr.acc).astype(np.uint32)
        ovf, inv = np.asarray(tr.overflow, bool), np.asarray(tr.invalid, bool)
    elif model == "reference":
        from .reference16 import mac_aligned_reference, mac_fp32_reference

        if cfg.kind == "fp32":
            acc, ovf, inv = mac_fp32_reference(stream.a, stream.w, stream.clear, cfg.a.name, cfg.w.name)
        else:
            acc, ovf, inv = mac_aligned_reference(stream.a, stream.w, stream.clear, cfg.a.name, cfg.w.name,
                                                  cfg.acc[1], cfg.acc[2])
    else:
        raise HdlError(f"unknown model {model!r}; use 'golden', 'reference' or 'both'")
    return {"model": model, "acc": acc, "overflow": ovf, "invalid": inv, "fp32": None}


def sweep_codes(cfg: A16Config, n_act: int | None = None, seed: int = 0) -> np.ndarray:
    """Activation codes of the product sweep: all 65,536 (n_act None) or the edge codes plus a seeded
    sample, n_act in all (at least the edge codes)."""
    if n_act is None:
        return np.arange(1 << 16, dtype=np.uint16)
    base = np.unique(edge_codes16(cfg.a))
    rng = np.random.default_rng(seed)
    rest = np.setdiff1d(np.arange(1 << 16, dtype=np.uint16), base)
    k = max(0, n_act - len(base))
    return np.sort(np.concatenate([base, rng.choice(rest, k, replace=False)]))[:max(n_act, len(base))]


def verify16(a_fmt="bf16", w_fmt="rf8", acc="fp32", lanes: int = 1, *, sweep: int | None | bool = False,
             n_random: int = 100, max_len: int = 256, seed: int = 0, simulator: str = "icarus",
             model: str = "golden", root: Path | None = None, quiet: bool = True) -> dict:
    """Simulate a W8A16 unit; compare every beat with the golden model (and/or the reference).

    ``sweep``: False (none), None (all 65,536 activation codes x every weight code, fp32 only) or
    an int (that many activation codes x every weight code).  ``n_random``: seeded sequences
    (random, realistic, edge, overflow, cancellation, tiny, long equal sums).
    """
    cfg = A16Config.make(a_fmt, w_fmt, acc, lanes)
    streams = []
    if sweep is not False:
        if cfg.kind != "fp32":
            raise HdlError("the product sweep runs on the fp32 accumulator (one product per beat)")
        streams.append(("sweep", product_sweep16(cfg, sweep_codes(cfg, sweep, seed))))
    if n_random:
        streams.append(("random", random_stream16(cfg, n_random, seed, max_len)))
    if not streams:
        raise HdlError("nothing to verify: no sweep and n_random=0")
    summary = {"config": cfg.describe(), "simulator": simulator, "runs": {}, "ok": True}
    models = ["golden", "reference"] if model == "both" else [model]
    for tag, stream in streams:
        got = run_stream(cfg, stream, simulator, root, tag, quiet)
        run = {"beats": len(stream), "products": len(stream) * cfg.lanes, "sequences": stream.sequences,
               "sim_s": got["sim_s"], "latency": got["latency"], "overflow_beats": int(got["overflow"].sum()),
               "invalid_beats": int(got["invalid"].sum()), "comparisons": []}
        for mdl in models:
            c = compare(cfg, got, expected16(cfg, stream, mdl))
            run["comparisons"].append(c)
            summary["ok"] &= c["mismatched_beats"] == 0 and c["compared_beats"] == len(stream)
        summary["runs"][tag] = run
    summary["compared_beats"] = sum(r["beats"] for r in summary["runs"].values())
    return summary


def vector_files16() -> list[str]:
    """Names of the checked-in W8A16 golden MAC traces (``golden/mac16_*.npz``)."""
    from ..golden import vectors

    return [n for n in vectors.list_vectors() if n.startswith("mac16_")]


def verify_vector_file16(name: str, simulator: str = "icarus", root: Path | None = None, quiet: bool = True) -> dict:
    """Replay one checked-in ``golden/mac16_*.npz`` trace on the simulator; compare every beat with the file."""
    from ..golden import vectors
    from .stimulus import Stream

    v = vectors.load_vectors(name)
    if "acc_bits" not in v:
        raise HdlError(f"{name} is not a W8A16 MAC trace (no acc_bits)")
    cfg = A16Config.make(str(v["a_fmt"]), str(v["w_fmt"]), str(v["acc"]), int(v["lanes"]))
    a, w = np.asarray(v["a"]), np.asarray(v["w"])
    if a.ndim == 1:
        a, w = a[:, None], w[:, None]
    n = len(v["clear"])
    stream = Stream(a.astype(np.uint16), w.astype(np.uint16 if cfg.w.bits == 16 else np.uint8),
                    np.asarray(v["clear"], bool), np.zeros(n, np.uint8))
    got = run_stream(cfg, stream, simulator, root, f"vec-{name}", quiet)
    exp = {"model": f"golden/{name}.npz", "acc": np.asarray(v["acc_bits"], np.uint32),
           "overflow": np.asarray(v["overflow"], bool), "invalid": np.asarray(v["invalid"], bool), "fp32": None}
    c = compare(cfg, got, exp)
    c.update(beats=n, sequences=int(stream.clear.sum()), overflow_beats=int(got["overflow"].sum()),
             invalid_beats=int(got["invalid"].sum()), config=cfg.describe())
    return c


def main(argv=None) -> int:
    """``python -m rf8sim.hdl.sim16 A W ACC LANES [--sweep N|all] [--random N] [--simulator S] [--record FILE]``."""
    import argparse
    import time

    p = argparse.ArgumentParser(prog="python -m rf8sim.hdl.sim16")
    p.add_argument("a_fmt")
    p.add_argument("w_fmt")
    p.add_argument("acc")
    p.add_argument("lanes", type=int)
    p.add_argument("--sweep", default="no", help="activation codes swept against every weight: N, all or no")
    p.add_argument("--random", type=int, default=100)
    p.add_argument("--max-len", type=int, default=1024)
    p.add_argument("--simulator", default="icarus")
    p.add_argument("--model", default="golden")
    p.add_argument("--record", help="write the summary as a record (rf8sim.records)")
    args = p.parse_args(argv)
    sweep = False if args.sweep == "no" else (None if args.sweep == "all" else int(args.sweep))
    t0 = time.perf_counter()
    s = verify16(args.a_fmt, args.w_fmt, args.acc, args.lanes, sweep=sweep, n_random=args.random,
                 max_len=args.max_len, simulator=args.simulator, model=args.model)
    s["wall_s"] = time.perf_counter() - t0
    if args.record:
        from ..records import write_record

        write_record(args.record, {"kind": "verify_w8a16", **s})
    print({k: (r["beats"], [(c["model"], c["compared_beats"], c["mismatched_beats"]) for c in r["comparisons"]])
           for k, r in s["runs"].items()}, "ok" if s["ok"] else "MISMATCH")
    return 0 if s["ok"] else 1



def render_verify_records() -> str:
    """Markdown table of the checked-in verification records ``hdl/results/verify_w8a16_*.json``."""
    from ..records import read_record

    root = Path(__file__).resolve().parents[2] / "hdl" / "results"
    out = ["| record | w × a | accumulator | lanes | simulator | run | beats | products | sequences | "
           "compared with | mismatched |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in sorted(root.glob("verify_w8a16_*.json")):
        r = read_record(p)
        c = r["config"]
        for tag, run in r["runs"].items():
            for cmp in run["comparisons"]:
                out.append(f"| `{p.name}` | {c['w_fmt']} × {c['a_fmt']} | {c['acc']} | {c['lanes']} | {r['simulator']} | "
                           f"{tag} | {run['beats']:,} | {run['products']:,} | {run['sequences']:,} | {cmp['model']} | "
                           f"{cmp['mismatched_beats']} of {cmp['compared_beats']:,} |")
    return "\n".join(out) + "\n"


def _register():
    try:
        from ..docgen import register
    except ImportError:
        return
    register("hdl:w8a16-verify")(render_verify_records)


if __name__ != "__main__":
    _register()


if __name__ == "__main__":
    raise SystemExit(main())
