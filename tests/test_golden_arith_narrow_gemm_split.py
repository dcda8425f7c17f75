"""The split narrow-accumulator GEMM (one exact float64 product minus the flooring errors of the
inexact products) against the k-ordered sequential kernel and against Python integers.

Every row the split path proves must carry the sequential kernel's bits; the other rows must come
back from the clamped rows (k order, vectorised across n) with the same bits.  The counts of compared
and of split-proven outputs are asserted, so a path that silently stops running fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from oracles.fixed_acc import gemm_row as ref_gemm_row

from rf8sim import formats as F
from rf8sim.golden import AccSpec, encode, gemm
from rf8sim.golden import arith as ar


def _same(x, y):
    assert len(x) == len(y) == 3
    for u, v in zip(x, y):
        assert u.dtype == v.dtype and u.shape == v.shape and np.array_equal(u, v)


def _split_direct(a, w, fa, fw, spec, sa, sw):
    """The split path's own outputs (no fallback): ``(values of the proven rows, row mask)``."""
    M, N = a.shape[0], w.shape[0]
    sa = np.zeros((M, 1), np.int64) if sa is None else np.asarray(sa, np.int64).reshape(M, 1)
    sw = np.zeros((N, 1), np.int64) if sw is None else np.asarray(sw, np.int64).reshape(N, 1)
    K = a.shape[1]
    return ar._gemm_split(np.ascontiguousarray(a), np.ascontiguousarray(w), F.get(fa), F.get(fw), spec, sa, K, sw,
                          K)


def _tiny(rng, shape, fmt, scale):
    """Values spread over many binades down to the smallest codes: many products below the grid."""
    x = rng.standard_normal(shape) * np.exp2(rng.integers(-12, 4, shape)) * scale
    return encode(x.astype(np.float32), fmt)


SPECS = ("4:30", "16:32", "8:36", "2:18", "0:24", "12:26")
CASES = [("rf8", "rf8"), ("e4m3", "e4m3"), ("e4m3", "rf8"), ("rf8", "int8"), ("e5m2", "e4m3"), ("int8", "int8")]


def test_split_equals_sequential_random_adversarial_saturating():
    rng = np.random.default_rng(21)
    M, N, K = 20, 18, 200
    compared = proven = fellback = floored = 0
    for fa, fw in CASES:
        for dist in ("uniform", "gauss", "tiny", "hot"):
            if dist == "uniform":  # every code, NaN/Inf included
                a = rng.integers(0, 256, (M, K), dtype=np.uint8)
                w = rng.integers(0, 256, (N, K), dtype=np.uint8)
            elif dist == "gauss":
                a = encode((rng.standard_normal((M, K)) * 8).astype(np.float32), fa)
                w = encode((rng.standard_normal((N, K)) * 8).astype(np.float32), fw)
            elif dist == "tiny":
                a, w = _tiny(rng, (M, K), fa, 4), _tiny(rng, (N, K), fw, 4)
            else:  # a few rows scaled up: those outputs saturate at data-dependent k
                x = rng.standard_normal((M, K)) * 8
                x[:3] *= 64
                a = encode(x.astype(np.float32), fa)
                w = encode((rng.standard_normal((N, K)) * 8).astype(np.float32), fw)
            for spec_text in SPECS:
                spec = AccSpec.parse(spec_text, fa, fw)
                if ar.check_spec(spec, F.get(fa), F.get(fw), 1, 3) != 1:
                    continue
                for sa, sw in ((None, None), (rng.integers(-3, 4, M), None),
                               (rng.integers(-2, 2, M), rng.integers(-3, 3, N))):
                    ga = "tensor" if sa is None else "channel"
                    gw = "tensor" if sw is None else "channel"
                    ref = gemm(a, w, fa, fw, spec, sa, sw, ga, gw, method="sequential")
                    _same(gemm(a, w, fa, fw, spec, sa, sw, ga, gw, method="fast"), ref)
                    _same(gemm(a, w, fa, fw, spec, sa, sw, ga, gw), ref)  # auto
                    compared += 2 * M * N
                    r = _split_direct(a, w, fa, fw, spec, sa, sw)
                    if r is None:
                        continue
                    out, good = r
                    assert np.array_equal(out, ref.acc[good]) and not ref.overflow[good].any()
                    proven += int(good.sum()) * N
                    fellback += int((~good).sum()) * N
                    # outputs where flooring changed the sum: the error correction was exercised
                    Av = ar._apply_scale(ar._f64_values(F.get(fa))[a], np.asarray(sa if sa is not None else
                                                                                  np.zeros(M), np.int64)[:, None], K)
                    Wv = ar._apply_scale(ar._f64_values(F.get(fw), spec.frac_bits)[w],
                                         np.asarray(sw if sw is not None else np.zeros(N), np.int64)[:, None], K)
                    floored += int((out != (Av @ Wv.T)[good]).sum())
                # block scales on one side, channel on the other (clamped rows, group lengths differ)
                bsa, csw = rng.integers(-3, 2, (M, -(-K // 48))), rng.integers(-2, 3, N)
                _same(gemm(a, w, fa, fw, spec, bsa, csw, "ceil", "channel", 48, method="fast"),
                      gemm(a, w, fa, fw, spec, bsa, csw, "ceil", "channel", 48, method="sequential"))
                compared += M * N
    n_specs = sum(1 for fa, fw in CASES for s in SPECS
                  if ar.check_spec(AccSpec.parse(s, fa, fw), F.get(fa), F.get(fw), 1, 3) == 1)
    assert compared == (2 * M * N * 3 + M * N) * 4 * n_specs
    # both sides: outputs proven by the split path (with floored products) and outputs it left
    assert proven > 50_000 and fellback > 2_000 and floored > 20_000


def test_split_against_python_integers_many_floored_products():
    """Rows full of products below the grid, channel scales on both sides, NaN/Inf codes: the
    split path's proven outputs against floor-and-clamp in Python integers."""
    rng = np.random.default_rng(5)
    M, N, K = 6, 5, 150
    compared = 0
    for fa, fw, spec_text in (("e4m3", "rf8", "4:30"), ("rf8", "rf8", "2:24"), ("e4m3", "e5m2", "6:28")):
        spec = AccSpec.parse(spec_text, fa, fw)
        a, w = _tiny(rng, (M, K), fa, 2), _tiny(rng, (N, K), fw, 2)
        a[0, 7] = F.get(fa).nan_codes[0] if F.get(fa).nan_codes else a[0, 7]
        sa, sw = rng.integers(-3, 3, M), rng.integers(-2, 3, N)
        out, good = _split_direct(a, w, fa, fw, spec, sa, sw)
        r = gemm(a, w, fa, fw, spec, sa, sw, "channel", "channel")
        assert good.all()
        for m in range(M):
            for n in range(N):
                want = ref_gemm_row(a[m], w[n], fa, fw, spec, int(sa[m]) + int(sw[n]))
                assert want == (int(out[m, n]), False, want[2]) == (int(r.acc[m, n]), bool(r.overflow[m, n]),
                                                                     bool(r.invalid[m, n]))
                compared += 1
    assert compared == 3 * M * N


def test_split_leaves_outputs_whose_float64_sum_could_round():
    """Rows with large scales next to rows with tiny ones: 2**L (set by the tiny rows) times the
    large rows' sums passes 2**52, so those rows must go to the clamped rows, and all match."""
    rng = np.random.default_rng(9)
    M, N, K = 8, 6, 120
    spec = AccSpec.parse("0:56", "rf8", "rf8")
    a = encode((rng.standard_normal((M, K)) * 8).astype(np.float32), "rf8")
    w = encode((rng.standard_normal((N, K)) * 8).astype(np.float32), "rf8")
    sa = np.array([-8, 14, -8, 14, -8, 14, -8, 14])
    out, good = _split_direct(a, w, "rf8", "rf8", spec, sa, None)
    assert good[0::2].all() and not good[1::2].any()
    ref = gemm(a, w, "rf8", "rf8", spec, sa, None, "channel", "tensor", method="sequential")
    _same(gemm(a, w, "rf8", "rf8", spec, sa, None, "channel", "tensor"), ref)
    assert np.array_equal(out, ref.acc[good])


def test_split_guard_fires_on_a_wrong_error_table(monkeypatch):
    """A flooring-error table off by one unit leaves a fraction: the guard must refuse the result."""
    rng = np.random.default_rng(2)
    a = _tiny(rng, (8, 130), "e4m3", 4)
    w = _tiny(rng, (7, 130), "e4m3", 4)
    good = ar._odd_err_table

    def bad(*args):
        t = good(*args).copy()
        t[t != 0] += 1
        return t

    monkeypatch.setattr(ar, "_odd_err_table", bad)
    monkeypatch.setattr(ar, "_gemm_floor32", lambda *x: None)  # these rows would take the float32 floor GEMM
    with pytest.raises(ar._SplitGuardError, match="fraction"):
        gemm(a, w, "e4m3", "e4m3", "4:30")


def test_auto_dispatches_narrow_specs_to_the_split_path(monkeypatch):
    rng = np.random.default_rng(4)
    a = encode((rng.standard_normal((16, 256)) * 8).astype(np.float32), "rf8")
    before = dict(ar.PATH_COUNTS)
    for spec in ("16:32", "8:36", "4:30"):  # auto: the float32 floor GEMM, else split, else clamped rows
        _same(gemm(a, a, "rf8", "rf8", spec), gemm(a, a, "rf8", "rf8", spec, method="sequential"))
    assert sum(ar.PATH_COUNTS[k] - before[k] for k in before) == 3 * 16 * 16
    calls = []
    real = ar._gemm_split
    monkeypatch.setattr(ar, "_gemm_split", lambda *x: calls.append(1) or real(*x))
    monkeypatch.setattr(ar, "_gemm_floor32", lambda *x: None)
    for spec in ("16:32", "8:36", "4:30"):
        _same(gemm(a, a, "rf8", "rf8", spec), gemm(a, a, "rf8", "rf8", spec, method="sequential"))
    assert len(calls) == 3


def test_narrow_bench_rows_and_record_table():
    """The bench's narrow rows at a small size (labels match what saturated), and the docs table
    renders every row of the checked-in record with its goal."""
    import json
    from pathlib import Path

    from rf8sim.golden import bench

    with bench._one_thread():
        rows = bench._narrow_rows(np.random.default_rng(1), 64, 1)
    assert rows[0]["name"].startswith("numpy float32 matmul 64^3")
    for r in rows[1:]:
        if not r["data"].startswith("scaled"):
            assert (r["saturating"] > 0) == r["name"].split(", ", 1)[1].startswith("saturating")
        assert r["time_x"] > 0 and r["goal"] == ("<= 50x f32 time (ratio >= 0.02)" if r["saturating"]
                                                else "<= 10x f32 time (ratio >= 0.1)")
    assert {r["acc"] for r in rows[1:]} == {"exact", "16:32", "8:36", "4:30"}
    # the flow's operands with their scale exponents: every format x accumulator, per channel and per block
    scaled = {(r["fmt"], r["acc"], r["data"]) for r in rows[1:] if r["data"].startswith("scaled")}
    assert len(scaled) == 3 * 4 * 2
    rec = json.loads((Path(__file__).resolve().parents[1] / bench.NARROW_RECORD).read_text())
    assert len({(r["fmt"], r["acc"], r["data"]) for r in rec["rows"][1:] if r["data"].startswith("scaled")}) == 24
    table = bench.narrow_table()
    body = [ln for ln in table.splitlines() if ln.startswith("| ") and "×" in ln and "operands" not in ln]
    assert len(body) == len(rec["rows"]) - 1 and sum("Laplace" in ln for ln in body) == 24


def test_odd_error_table_every_code_pair_against_python_integers():
    """The flooring-error table the split path reads, at the index the kernel computes (odd part
    of each code, ``t = lam_a + lam_w + L``), for every code pair and every total shift that puts
    the product at or below the grid, against floor() on Python integers from the formats' own
    ``(sign, sig, exp)`` (no lsb or odd-part arithmetic)."""
    compared = 0
    for fa, fw, L in (("rf8", "rf8", 24), ("e4m3", "e5m2", 30), ("int8", "rf8", 12)):
        A, W = F.get(fa), F.get(fw)
        lsa, lsw = ar._lsb_exp(A), ar._lsb_exp(W)
        (ia, ua), (iw, uw) = ar._odd_parts(A), ar._odd_parts(W)
        fin_a = [c for c in range(256) if A.finite[c] and A.sig[c] > 0]
        fin_w = [c for c in range(256) if W.finite[c] and W.sig[c] > 0]
        lo_a, hi_a = int(lsa[fin_a].min()), int(lsa[fin_a].max())
        T = hi_a - lo_a + L + 1
        E = ar._odd_err_table(A, W, L, T)
        assert E.size == ua.size * uw.size * T and ua[0] == uw[0] == 0
        for ca in fin_a:
            na = -int(A.sig[ca]) if A.sign[ca] else int(A.sig[ca])
            for cw in fin_w:
                nw = -int(W.sig[cw]) if W.sign[cw] else int(W.sig[cw])
                e0 = int(A.exp[ca]) + int(W.exp[cw])
                lam = int(lsa[ca]) + int(lsw[cw])
                # shifts o with lam + o in [-L, 0]: every floored product and the first exact one
                for o in (-L - lam, -lam - 1, -lam, (-L - 2 * lam) // 2):
                    e = e0 + o  # the product is na * nw * 2**e
                    num = na * nw
                    if e >= 0:  # an integer product: no flooring error
                        want = 0
                    else:  # (p - floor(p)) * 2**L with p = num / 2**-e (Python // floors)
                        want = (num - (num // 2 ** -e) * 2 ** -e) * 2 ** (L + e)
                    t = lam + o + L
                    assert 0 <= t < T
                    got = int(E[(int(ia[ca]) * uw.size + int(iw[cw])) * T + t])
                    assert got == want, (fa, fw, ca, cw, o)
                    compared += 1
        # zero and NaN/Inf codes index the all-zero odd part 0
        assert not E[: uw.size * T].any() and not E[np.arange(ua.size)[:, None] * uw.size * T
                                                    + np.arange(T)].any()
    assert compared == 4 * sum(
        sum(1 for c in range(256) if F.get(x).finite[c] and F.get(x).sig[c] > 0)
        * sum(1 for c in range(256) if F.get(y).finite[c] and F.get(y).sig[c] > 0)
        for x, y in (("rf8", "rf8"), ("e4m3", "e5m2"), ("int8", "rf8")))


def test_split_block_scales_equals_sequential():
    """Block scales (a different group length on each side too): the split path folds each row's
    and k-group's scale into lam; its proven rows against the sequential kernel, and the whole
    fast / auto GEMM too.  Counts of compared, proven and floored outputs asserted."""
    rng = np.random.default_rng(31)
    M, N, K = 16, 14, 160
    compared = proven = floored = 0
    for fa, fw in CASES:
        for dist in ("gauss", "tiny", "uniform"):
            if dist == "gauss":
                a = encode((rng.standard_normal((M, K)) * 8).astype(np.float32), fa)
                w = encode((rng.standard_normal((N, K)) * 8).astype(np.float32), fw)
            elif dist == "tiny":
                a, w = _tiny(rng, (M, K), fa, 4), _tiny(rng, (N, K), fw, 4)
            else:
                a = rng.integers(0, 256, (M, K), dtype=np.uint8)
                w = rng.integers(0, 256, (N, K), dtype=np.uint8)
            for spec_text in ("4:30", "16:32", "2:18"):
                spec = AccSpec.parse(spec_text, fa, fw)
                if ar.check_spec(spec, F.get(fa), F.get(fw), 1, 3) != 1:
                    continue
                for ba, bw in ((32, 32), (48, 32)):
                    sa = rng.integers(-6, 3, (M, -(-K // ba)))
                    sw = rng.integers(-5, 2, (N, -(-K // bw)))
                    r = ar._gemm_split(a, w, F.get(fa), F.get(fw), spec, sa, ba, sw, bw)
                    ref = ar._gemm_clamped_rows(np.arange(M), a, w, F.get(fa), F.get(fw), spec, sa, ba, sw, bw)
                    if ba == bw:  # the public API: one block length for both operands
                        seq = gemm(a, w, fa, fw, spec, sa, sw, "ceil", "ceil", ba, method="sequential")
                        assert np.array_equal(seq.acc, ref[0]) and np.array_equal(seq.overflow, ref[1])
                        _same(gemm(a, w, fa, fw, spec, sa, sw, "ceil", "ceil", ba, method="fast"), seq)
                        compared += M * N
                    if r is None:
                        continue
                    out, good = r
                    assert np.array_equal(out, ref[0][good]) and not ref[1][good].any()
                    proven += out.size
                    Av = ar._apply_scale(ar._f64_values(F.get(fa))[a], sa, ba)
                    Wv = ar._apply_scale(ar._f64_values(F.get(fw), spec.frac_bits)[w], sw, bw)
                    floored += int((out != (Av @ Wv.T)[good]).sum())
    n_specs = sum(1 for fa, fw in CASES for s in ("4:30", "16:32", "2:18")
                  if ar.check_spec(AccSpec.parse(s, fa, fw), F.get(fa), F.get(fw), 1, 3) == 1)
    assert compared == 3 * n_specs * M * N
    assert proven > 15_000 and floored > 5_000, (proven, floored)


def test_scale_groups_must_cover_k():
    """The kernels walk k by scale group: groups that stop short of K are refused, not skipped."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 100, (4, 64), dtype=np.uint8)
    w = rng.integers(0, 100, (3, 64), dtype=np.uint8)
    spec = AccSpec.parse("4:30", "rf8", "rf8")
    rf8 = F.get("rf8")
    ok_a, ok_w = np.zeros((4, 2), np.int64), np.zeros((3, 2), np.int64)
    assert ar._gemm_split(a, w, rf8, rf8, spec, ok_a, 32, ok_w, 32) is not None
    with pytest.raises(ValueError, match="do not cover K = 64"):
        ar._gemm_split(a, w, rf8, rf8, spec, ok_a, 16, ok_w, 32)
    with pytest.raises(ValueError, match="do not cover K = 64"):
        ar._gemm_split(a, w, rf8, rf8, spec, ok_a, 32, ok_w[:, :1], 32)
    with pytest.raises(ValueError, match="do not cover K = 64"):
        ar._scaled(ar._f64_values(rf8), a, ok_a + 1, 16)
    one = ar._scaled(ar._f64_values(rf8), a, np.full((4, 1), 3), 16)  # one group: all of K
    assert np.array_equal(one, ar._f64_values(rf8)[a] * 8.0)
