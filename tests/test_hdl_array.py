"""The PE array: the golden model's grouped order, the scheduler, and whole GEMMs on Icarus vs golden.

References written differently from the code under test: the grouped fixed-point order with
Python Fractions over the format tables (tests/oracles/formats.py), the aligned:K:M float32 chain with
Fractions (tests/oracles/binary32.py), and the schedule's cycle count from a clock-by-clock replay.
"""

from __future__ import annotations

import shutil
from fractions import Fraction

import numpy as np
import pytest

from rf8sim import formats as F
from rf8sim.accspec import AccSpec, AccSpecError

from oracles.formats import table
from toolcheck import icarus, needs, verilator

iverilog = needs(lambda: shutil.which("iverilog") and shutil.which("vvp"), "Icarus Verilog", "apt-get install iverilog")


def grouped_ref(a_row, w_row, a_fmt, w_fmt, frac: int, width: int, G: int):
    """(acc, overflow, invalid) of one output: groups of G products floored to frac bits, summed exactly,
    then one clamped add per group (docs/formats.md, group order)."""
    ta, tw = table(F.get(a_fmt)), table(F.get(w_fmt))
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    acc, ovf, inv = 0, False, False
    for g in range(0, len(a_row), G):
        s = 0
        for ca, cw in zip(a_row[g:g + G], w_row[g:g + G]):
            va, vw = ta[int(ca)], tw[int(cw)]
            if not isinstance(va, Fraction) or not isinstance(vw, Fraction):
                inv = True
                continue
            x = va * vw * (1 << frac)
            s += x.numerator // x.denominator          # floor
        acc += s
        if acc > hi or acc < lo:
            acc, ovf = max(lo, min(hi, acc)), True
    return acc, ovf, inv


@pytest.mark.parametrize("a_fmt,w_fmt,acc,G", [("rf8", "rf8", "8:14", 4), ("e5m2", "e4m3", "10:18", 8),
                                               ("int8", "rf8", "3:16", 3)])
def test_grouped_order_golden_and_torch_match_fraction_reference(a_fmt, w_fmt, acc, G):
    import rf8sim.golden as Gm

    rng = np.random.default_rng(G)
    M, K, N = 6, 24, 5
    a = rng.integers(0, 256, (M, K), dtype=np.uint8)
    w = rng.integers(0, 256, (N, K), dtype=np.uint8)
    spec = AccSpec.parse(f"{acc}:g{G}")
    assert spec.group == G and str(spec) == f"{acc}:g{G}"
    got = Gm.gemm(a, w, a_fmt, w_fmt, spec)
    k_order = Gm.gemm(a, w, a_fmt, w_fmt, acc)
    import torch

    from rf8sim.training.gemm import gemm as torch_gemm

    tg = torch_gemm(torch.from_numpy(a), torch.from_numpy(w), a_fmt, w_fmt, spec, chunk=5)  # groups span chunks
    frac, width = (int(x) for x in acc.split(":"))
    n = 0
    for m in range(M):
        for j in range(N):
            ref = grouped_ref(a[m], w[j], a_fmt, w_fmt, frac, width, G)
            assert (int(got.acc[m, j]), bool(got.overflow[m, j]), bool(got.invalid[m, j])) == ref, (m, j)
            assert (int(tg.acc[m, j]), bool(tg.overflow[m, j]), bool(tg.invalid[m, j])) == ref, (m, j)
            n += 1
    assert n == M * N
    assert got.overflow.sum() > 0                      # the narrow accumulators saturate ...
    assert (np.asarray(got.acc) != np.asarray(k_order.acc)).sum() > 0  # ... where the orders differ


def test_grouped_order_with_channel_scales():
    import rf8sim.golden as Gm

    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (4, 16), dtype=np.uint8)
    w = rng.integers(0, 256, (3, 16), dtype=np.uint8)
    sa = np.array([0, 1, -1, 2], np.int8)
    sw = np.array([1, 0, -2], np.int8)
    got = Gm.gemm(a, w, "rf8", "rf8", AccSpec(12, 16, group=4), sa, sw, "channel", "channel")
    for m in range(4):
        for j in range(3):
            ref = grouped_ref(a[m], w[j], "rf8", "rf8", 12 + int(sa[m]) + int(sw[j]), 16, 4)
            assert (int(got.acc[m, j]), bool(got.overflow[m, j])) == ref[:2]


def test_group_bad_input():
    with pytest.raises(AccSpecError, match="group"):
        AccSpec(8, 16, group=0)
    with pytest.raises(AccSpecError, match="fixed-point option"):
        AccSpec(None, None, "fp32", group=4)
    import rf8sim.golden as Gm

    with pytest.raises(AccSpecError, match="lanes of a beat are the group"):
        Gm.mac(np.zeros(4, np.uint8), np.zeros(4, np.uint8), None, "rf8", "rf8", AccSpec(8, 16, group=2))


# ---------------------------------------------------------------------------------------- scheduler


def _replay(M, K, N, R, C, D):
    """Clock by clock: a tile starts at the first clock where the stream port is free and its weights
    (loaded once the previous tile's swap has passed PE(R-1, C-1)) are complete."""
    tiles = [(nt, mc, kt) for nt in range(N // C) for mc in range(-(-M // D)) for kt in range(K // R)]
    swaps, busy_until, load_done, clock = [], 0, R - 1, 0
    for _, mc, _ in tiles:
        while clock < busy_until or clock < load_done:
            clock += 1
        swaps.append(clock)
        busy_until = clock + min(D, M - mc * D)
        load_done = clock + (R + C - 1) + (R - 1)    # next tile's R loads start after the swap wave
    return swaps, busy_until


@pytest.mark.parametrize("shape", [(20, 16, 8, 4, 4, 16), (5, 32, 16, 8, 8, 32), (130, 64, 32, 16, 16, 64),
                                   (3, 8, 4, 4, 4, 4)])
def test_schedule_matches_replay(shape):
    from rf8sim.hdl.schedule import plan

    M, K, N, R, C, D = shape
    s = plan(M, K, N, R, C, D, latency=R + 2)
    swaps, end = _replay(M, K, N, R, C, D)
    assert list(s.tile_start) == swaps
    assert s.cycles == end + (R + 2) + C - 2
    assert s.tiles == (N // C) * (K // R) * -(-M // D)
    assert 0 < s.utilization <= 1
    assert s.busy_cycles * R * C == M * K * N


def test_schedule_bad_shapes():
    from rf8sim.hdl.schedule import ScheduleError, plan

    with pytest.raises(ScheduleError, match="K must be a multiple of R = 8"):
        plan(4, 20, 8, 8, 8, 32)
    with pytest.raises(ScheduleError, match="N must be a multiple of C = 4"):
        plan(4, 16, 6, 4, 4, 16)
    with pytest.raises(ScheduleError, match="alignment block 32"):
        plan(4, 48, 8, 4, 4, 16, block=32)
    with pytest.raises(ScheduleError, match="M must be a positive integer"):
        plan(0, 16, 8, 4, 4, 16)


# ------------------------------------------------------------------------------------- generator


def test_array_config_bad_input():
    from rf8sim.hdl.array import MAX_DIM, ArrayConfig
    from rf8sim.hdl.mac import HdlError

    for bad in (0, MAX_DIM + 1, 2.5, True):
        with pytest.raises(HdlError, match=f"rows \\(R\\) must be an integer in 1..{MAX_DIM}"):
            ArrayConfig.make("rf8", "rf8", "16:32", bad, 4)
    with pytest.raises(HdlError, match="cols"):
        ArrayConfig.make("rf8", "rf8", "16:32", 4, 0)
    with pytest.raises(HdlError, match="the fp32 array takes bf16/fp16 activations, got rf8"):
        ArrayConfig.make("rf8", "rf8", "fp32", 4, 4)
    with pytest.raises(HdlError, match="no edge adder to register; it takes edge_stages 0"):
        ArrayConfig.make("bf16", "rf8", "fp32", 4, 4, edge_stages=1)
    with pytest.raises(HdlError, match="needs R \\+ C >= 3"):
        ArrayConfig.make("bf16", "bf16", "fp32", 1, 1)
    assert ArrayConfig.make("bf16", "bf16", "fp32", 2, 1).golden_acc() == AccSpec.fp32()
    with pytest.raises(HdlError, match="must divide the block K = 32.*valid R: 1, 2, 4, 8, 16, 32"):
        ArrayConfig.make("bf16", "rf8", "aligned:32:16", 12, 4)
    with pytest.raises(HdlError, match="takes bf16/fp16 activations"):
        ArrayConfig.make("rf8", "rf8", "aligned:32:16", 4, 4)
    with pytest.raises(HdlError, match="takes 8-bit activations"):
        ArrayConfig.make("bf16", "rf8", "16:32", 4, 4)
    with pytest.raises(HdlError, match="pe_stages"):
        ArrayConfig.make("rf8", "rf8", "16:32", 4, 4, pe_stages=3)
    for bad in (2, -1, True):
        with pytest.raises(HdlError, match=r"edge_stages must be one of \(0, 1\)"):
            ArrayConfig.make("bf16", "rf8", "aligned:32:16", 4, 4, edge_stages=bad)
    with pytest.raises(HdlError, match="only the aligned .* edge_stages 0"):
        ArrayConfig.make("rf8", "rf8", "16:32", 4, 4, edge_stages=1)
    with pytest.raises(HdlError, match="not one of"):
        ArrayConfig.make("rf8", "rf8", "sixteen", 4, 4)


def test_array_verilog_ports_and_header():
    from rf8sim.hdl.array import generate_array_verilog

    text, cfg = generate_array_verilog("bf16", "rf8", "aligned:8:12", 4, 2, depth=16)
    assert cfg.latency == 4 + 2 and cfg.golden_acc() == AccSpec.aligned(8, 12)
    head = text.splitlines()[:4]
    assert "module " not in "".join(head) and "rows=4 cols=2" in head[1]
    for port, bits in (("in_a", 64), ("in_w", 16), ("in_emax", 8), ("out_acc", 64), ("in_addr", 4)):
        assert f"input [{bits - 1}:0] {port};" in text or f"output [{bits - 1}:0] {port};" in text, port


@pytest.mark.parametrize("edge", [0, 1])
def test_array_header_regenerate_command_reproduces_the_file(tmp_path, capsys, edge):
    """The generated array's `// regenerate:` line, run as printed, writes the same file byte for byte
    (it names --rows/--cols; the CLI once took only --size, so the printed command failed)."""
    import shlex

    from rf8sim.cli import main
    from rf8sim.hdl.array import generate_array_verilog

    text, _ = generate_array_verilog("bf16", "rf8", "aligned:8:12", 4, 2, depth=16, edge_stages=edge)
    line = next(x for x in text.splitlines() if x.startswith("// regenerate: "))
    argv = shlex.split(line.removeprefix("// regenerate: "))
    assert argv[:3] == ["rf8sim", "array", "generate"] and argv[-2] == "-o" and "--rows" in argv
    out = tmp_path / argv[-1]
    assert main([*argv[1:-1], str(out)]) == 0, capsys.readouterr().err
    assert out.read_text() == text
    assert main(["array", "generate", "--rows", "4", "-o", str(tmp_path / "x.v")]) == 2
    assert "--rows and --cols go together" in capsys.readouterr().err


# ------------------------------------------------------------------- whole GEMMs on Icarus vs golden

CASES = [
    # (a, w, acc, M, K, N, operands): every accumulator kind the array builds, on a 4x4 array
    ("rf8", "rf8", "16:24", 21, 16, 8, "edge"),          # saturating fixed point
    ("e5m2", "e4m3", "exact", 9, 8, 4, "edge"),          # NaN / Inf operands, exact accumulator
    ("bf16", "rf8", "aligned:8:12", 11, 16, 8, "edge"),  # W8A16: subnormals, NaN/Inf, fp32 overflow, zero blocks
    # the BF16 x BF16 baseline with the registered edge adder (edge_stages 1: block sum held, fp32 add a clock later)
    ("bf16", "bf16", "aligned:8:12", 3, 16, 8, "edge", 1),
    # the float32 baseline arrays (a float32 partial sum down each column, k order): NaN/Inf, subnormals, overflow
    ("bf16", "bf16", "fp32", 11, 16, 8, "edge"),
    ("bf16", "rf8", "fp32", 11, 16, 8, "edge"),
]


@iverilog
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}@{c[2]}" + (f"-e{c[7]}" if len(c) > 7 else ""))
def test_array_gemm_bit_exact_on_icarus(case, tmp_path):
    from rf8sim.hdl.array import ArrayConfig
    from rf8sim.hdl.arraysim import operands, verify_gemm

    a_fmt, w_fmt, acc, M, K, N, kind = case[:7]
    edge_stages = case[7] if len(case) > 7 else 0
    cfg = ArrayConfig.make(a_fmt, w_fmt, acc, 4, 4, depth=8, edge_stages=edge_stages)
    assert cfg.latency == 4 + 1 + 1 + edge_stages
    a, w = operands(cfg, M, K, N, kind, seed=1)
    rep = verify_gemm(cfg, a, w, "icarus", root=tmp_path)
    assert rep["outputs"] == M * N and rep["compared"] == 3 * M * N
    assert rep["mismatches"] == 0, rep
    s = rep["schedule"]
    assert rep["sim_cycles"] == s["cycles"] and s["tiles"] == (N // 4) * (K // 4) * -(-M // 8)
    if cfg.kind != "fixed":
        assert rep["invalid"] > 0 and rep["overflowed"] > 0
    elif acc != "exact":
        assert rep["overflowed"] > 0
    else:
        assert rep["invalid"] > 0


@iverilog
def test_aligned_array_against_fraction_reference(tmp_path):
    """The W8A16 array against the Fraction float32 reference (not the golden model)."""
    from rf8sim.hdl.array import ArrayConfig
    from rf8sim.hdl.arraysim import operands, run_gemm

    from oracles.binary32 import aligned_dot

    cfg = ArrayConfig.make("fp16", "rf8", "aligned:8:10", 4, 4, depth=8, pe_stages=2)
    a, w = operands(cfg, 6, 16, 4, "edge", seed=5)
    got = run_gemm(cfg, a, w, "icarus", root=tmp_path)
    n = 0
    for m in range(6):
        for j in range(4):
            ref = aligned_dot([int(x) for x in a[m]], [int(x) for x in w[j]], "fp16", "rf8", 8, 10)
            assert (int(got["acc"][m, j]), bool(got["overflow"][m, j]), bool(got["invalid"][m, j])) == ref, (m, j)
            n += 1
    assert n == 24


@iverilog
@pytest.mark.parametrize("w_fmt", ["bf16", "rf8"])
def test_fp32_array_against_torch_and_fraction_reference(w_fmt, tmp_path):
    """The float32 baseline array (PE: exact product + one RNE float32 add; the running sum re-enters the top of
    the column for the next K tile) on random and edge operands, pipelined PEs (pe_stages 2), against three
    references: the golden model, the torch emulation, and the Fraction float32 chain in k order."""
    from rf8sim.hdl.array import ArrayConfig
    from rf8sim.hdl.arraysim import compare, expected, operands, run_gemm
    from rf8sim.verify_array import _torch_check

    from oracles.binary32 import fp32_dot

    cfg = ArrayConfig.make("bf16", w_fmt, "fp32", 4, 4, depth=8, pe_stages=2)
    assert cfg.latency == 4 + 2 + 1 and cfg.describe()["pe_fp32_adders"] == 16
    n = flagged = 0
    for kind, M, K, N in (("random", 10, 16, 4), ("edge", 7, 24, 8)):
        a, w = operands(cfg, M, K, N, kind, seed=3)
        got = run_gemm(cfg, a, w, "icarus", root=tmp_path, tag=kind)
        for ref in (expected(cfg, a, w), _torch_check(cfg, a, w)):
            rep = compare(got, ref)
            assert rep["outputs"] == M * N and rep["mismatches"] == 0, (kind, rep)
        for m in range(M):
            for j in range(N):
                ref = fp32_dot([int(x) for x in a[m]], [int(x) for x in w[j]], "bf16", w_fmt)
                assert (int(got["acc"][m, j]), bool(got["overflow"][m, j]), bool(got["invalid"][m, j])) == ref, (m, j)
                flagged += ref[1] or ref[2]
                n += 1
    assert n == 10 * 4 + 7 * 8 and flagged > 0


@iverilog
@pytest.mark.parametrize("R,C", [(2, 1), (1, 2)])
def test_fp32_array_at_the_tile_spacing_bound(R, C, tmp_path):
    """R + C = 3: the schedule spaces K tiles 2R + C - 2 = R + 1 clocks apart, exactly the clocks a running sum
    takes from the top of the column back to its edge entry; one vector per tile (M = 1) and short chunks."""
    from rf8sim.hdl.array import ArrayConfig
    from rf8sim.hdl.arraysim import operands, verify_gemm

    cfg = ArrayConfig.make("fp16", "e4m3", "fp32", R, C, depth=2, pe_stages=2)
    n = 0
    for M in (1, 3):
        a, w = operands(cfg, M, 8, 2, "random", seed=M)
        rep = verify_gemm(cfg, a, w, "icarus", root=tmp_path, tag=f"m{M}")
        assert rep["mismatches"] == 0 and rep["schedule"]["tiles"] == (2 // C) * (8 // R) * -(-M // 2), rep
        n += rep["outputs"]
    assert n == 2 + 6


@icarus
def test_double_buffer_protocol_with_cocotb(tmp_path):
    """cocotb drives the ports clock by clock: two tiles, the next tile's weights loaded while the first
    computes; exact output timing (latency + c) and values.  One clock too early a load corrupts PE(R-1, C-1)."""
    from rf8sim.hdl.array import ArrayConfig
    from rf8sim.hdl.arraysim import run_protocol

    cfg = ArrayConfig.make("rf8", "rf8", "exact", 4, 4, depth=8)
    ok = run_protocol(cfg, early=False, vectors=6, root=tmp_path)
    assert ok["outputs"] == [12] * 4 and ok["expected_per_column"] == 12
    assert ok["timing_mismatches"] == 0 and ok["value_mismatches"] == 0, ok
    assert ok["load_start_b"] == 3 + cfg.load_gap
    early = run_protocol(cfg, early=True, vectors=6, root=tmp_path)
    assert early["outputs"] == [12] * 4 and early["timing_mismatches"] == 0
    assert early["value_mismatches"] >= 1, early


SLOW = [  # (a, w, acc, R, C, pe_stages, M, K, N)
    ("bf16", "rf8", "aligned:32:16", 8, 8, 1, 40, 64, 32),
    ("rf8", "rf8", "16:32", 16, 16, 2, 70, 64, 32),
    ("e4m3", "e4m3", "exact", 8, 8, 2, 33, 32, 16),
    ("fp16", "e5m2", "aligned:16:12", 16, 16, 1, 20, 32, 32),
    ("bf16", "bf16", "fp32", 8, 8, 2, 40, 64, 16),
]


@pytest.mark.slow
@verilator
@pytest.mark.parametrize("case", SLOW, ids=lambda c: f"{c[3]}x{c[4]}-{c[0]}x{c[1]}@{c[2]}-s{c[5]}")
def test_larger_arrays_on_verilator(case):
    from rf8sim.hdl.array import ArrayConfig
    from rf8sim.hdl.arraysim import operands, verify_gemm

    a_fmt, w_fmt, acc, R, C, S, M, K, N = case
    cfg = ArrayConfig.make(a_fmt, w_fmt, acc, R, C, pe_stages=S)
    n = 0
    for kind in ("random", "edge"):
        a, w = operands(cfg, M, K, N, kind, seed=R)
        rep = verify_gemm(cfg, a, w, "verilator", tag=f"slow-{kind}")
        assert rep["mismatches"] == 0, rep
        n += rep["outputs"]
    assert n == 2 * M * N


@pytest.mark.parametrize("argv,msg", [
    (["array", "schedule", "--size", "0x8"], "rows (R) must be an integer in 1..32"),
    (["array", "schedule", "--size", "64x8"], "the synthesizable bound"),
    (["array", "schedule", "--size", "8by8"], "is not RxC"),
    (["array", "schedule", "--size", "8x8", "--k", "100"], "K must be a multiple of R = 8"),
    (["array", "schedule", "--size", "4x4", "--n", "6"], "N must be a multiple of C = 4"),
    (["array", "schedule", "--a-fmt", "bf16", "--acc", "aligned:32:16", "--k", "48"], "alignment block 32"),
    (["array", "schedule", "--a-fmt", "rf8", "--acc", "fp32"], "the fp32 array takes bf16/fp16 activations"),
    (["array", "schedule", "--a-fmt", "bf16", "--acc", "aligned:8:16", "--size", "16x16"], "must divide the block"),
    (["array", "schedule", "--depth", "0"], "depth"),
    (["array", "verify-minilm", "--layer", "encoder.layer.9.output.dense"], "MiniLM has no Linear layer"),
])
def test_cli_bad_input_one_line(argv, msg, capsys):
    from rf8sim.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rf8sim array: error:") and msg in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_cli_schedule_prints_cycles(capsys):
    from rf8sim.cli import main

    assert main(["array", "schedule", "--size", "8x8", "--m", "128", "--k", "384", "--n", "1536"]) == 0
    out = capsys.readouterr().out
    assert "1,179,671 cycles" in out and "utilization 100.0%" in out and "36,864 weight tiles" in out


@iverilog
def test_verify_layer_array_leg():
    """verify-layer --array: the whole layer's GEMM of codes on the array, vs golden and torch (grouped order;
    this random layer's codes saturate the accumulator chosen for its scales)."""
    from rf8sim.verify import verify_layer

    rep = verify_layer(in_features=32, out_features=8, batch=8, rtl_slice=0, array="4x4", array_simulator="icarus")
    assert rep["ok"] and rep["legs"]["array"] == "ran"
    rows = [c for c in rep["checks"] if c["check"].startswith("PE array")]
    assert len(rows) == 2 and all(c["mismatches"] == 0 for c in rows)
    assert [c["compared"] for c in rows] == [3 * 8 * 8, 3 * 8 * 8]
    assert "saturated" in rows[0]["note"] and not rows[0]["note"].startswith("0 saturated")


@iverilog
def test_verify_layer_array_leg_fp32():
    """verify-layer --acc fp32 --array: the bf16 layer's GEMM of codes on the float32 array, every output vs golden
    (fp32 k order) and torch."""
    from rf8sim.verify import verify_layer

    rep = verify_layer(in_features=32, out_features=8, batch=8, a_fmt="bf16", w_fmt="rf8", acc="fp32", rtl_slice=0,
                       array="4x4", array_simulator="icarus")
    assert rep["ok"] and rep["legs"]["array"] == "ran"
    rows = [c for c in rep["checks"] if c["check"].startswith("PE array")]
    assert len(rows) == 2 and "fp32" in rows[0]["check"] and all(c["mismatches"] == 0 for c in rows)
    assert [c["compared"] for c in rows] == [3 * 8 * 8, 3 * 8 * 8]


@iverilog
def test_verify_minilm_cli_builds_the_asked_design(tmp_path, monkeypatch):
    """`rf8sim array verify-minilm --edge-stages 1 --pe-stages 2` runs that design (the options reach the
    array: its record's configuration and cycle count say so), here on a small stand-in layer."""
    import json

    import rf8sim.verify_array as VA
    from rf8sim.cli import main
    from rf8sim.hdl.array import ArrayConfig
    from rf8sim.hdl.arraysim import operands

    cfg = ArrayConfig.make("bf16", "rf8", "aligned:32:16", 2, 2, 4, 2, 1)
    a, w = operands(cfg, 5, 32, 2, "random", seed=2)
    monkeypatch.setattr(VA, "minilm_layers", lambda *args, **kw: ([("stand.in", a, w)], 1, 5))
    rec = tmp_path / "r.json"
    assert main(["array", "verify-minilm", "--size", "2x2", "--depth", "4", "--pe-stages", "2", "--edge-stages", "1",
                 "--simulator", "icarus", "--record", str(rec)]) == 0
    r = json.loads(rec.read_text())
    assert (r["config"]["edge_stages"], r["config"]["pe_stages"], r["config"]["latency"]) == (1, 2, 2 + 2 + 1 + 1)
    assert r["totals"]["outputs"] == 10 and r["totals"]["golden_mismatches"] == 0
    from rf8sim.hdl.schedule import plan

    assert r["totals"]["cycles"] == plan(5, 32, 2, 2, 2, 4, 32, cfg.latency).cycles
