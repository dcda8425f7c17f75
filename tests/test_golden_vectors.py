"""The checked-in golden vectors agree with the model, the manifest and an independent reference."""

import hashlib
import json
from fractions import Fraction

import numpy as np
import pytest

from oracles import formats as ref
from rf8sim import formats as F
from rf8sim.golden import vectors as V

ROOT = V.default_root()


def test_vectors_agree_with_the_model():
    """Regenerates everything in memory; fails when model and checked-in vectors disagree."""
    n = V.verify(ROOT)
    assert n == 229 + 2 * 7 + 2 * 3 + 4 * 5 + 11 * len(V.MAC16_CASES)  # 11 arrays per W8A16 trace


def test_manifest_hashes_and_size():
    man = json.loads((ROOT / "MANIFEST.json").read_text())
    assert man["command"] == V.GOLDEN_COMMAND and man["layout_version"] == V.LAYOUT_VERSION
    total = 0
    for name, info in man["files"].items():
        data = (ROOT / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"], name
        total += len(data)
    assert len(man["files"]) == 4 + 5 + 4 + len(V.MAC_CASES) + 2 * 2 + 4 + len(V.MAC16_CASES)
    assert total < 2_000_000  # compact


def test_mac_traces_against_python_reference():
    """Every MAC trace recomputed with Fractions and Python integers (no golden kernels)."""
    beats = 0
    for case in V.MAC_CASES:
        v = V.load_vectors(f"mac_{case.name}")
        fa, fw = F.get(v["a_fmt"]), F.get(v["w_fmt"])
        ta, tw = ref.table(fa), ref.table(fw)
        frac, width = v["frac_bits"], v["width"]
        lo_, hi_ = -(1 << (width - 1)), (1 << (width - 1)) - 1
        acc, ovf, inv = 0, False, False
        scale = 1 << frac
        for i in range(v["a"].shape[0]):
            if v["clear"][i]:
                acc, ovf, inv = 0, False, False
            s = 0
            for j in range(v["lanes"]):
                x, y = ta[v["a"][i, j]], tw[v["w"][i, j]]
                if not isinstance(x, Fraction) or not isinstance(y, Fraction):
                    inv = True
                    continue
                p = x * y * scale
                s += p.numerator // p.denominator
            acc += s
            if not lo_ <= acc <= hi_:
                acc, ovf = min(max(acc, lo_), hi_), True
            assert (int(v["acc"][i]), bool(v["overflow"][i]), bool(v["invalid"][i])) == (acc, ovf, inv), \
                (case.name, i)
            beats += 1
        # the limbs are the documented two's complement split
        assert all(int(h) * 2**64 + int(lo) == int(a) for h, lo, a in zip(v["acc_hi"], v["acc_lo"], v["acc"]))
    assert beats == sum(c.n for c in V.MAC_CASES)
    # coverage the RTL needs: overflow, NaN/Inf operands, clears, wide accumulators, both lane counts
    loaded = [V.load_vectors(f"mac_{c.name}") for c in V.MAC_CASES]
    assert any(x["overflow"].any() for x in loaded) and any(x["invalid"].any() for x in loaded)
    assert any(x["width"] > 64 for x in loaded) and {x["lanes"] for x in loaded} == {1, 4}


def test_products_and_tables_match_fractions():
    n = 0
    for a, w in V.PRODUCT_PAIRS:
        v = V.load_vectors(f"products_{a}_{w}")
        ta, tw = ref.table(F.get(a)), ref.table(F.get(w))
        for ca in range(0, 256, 3):
            for cw in range(256):
                want = ta[ca] * tw[cw] if isinstance(ta[ca], Fraction) and isinstance(tw[cw], Fraction) else None
                if want is None:
                    assert v["special"][ca, cw] == 1
                else:
                    got = Fraction(int(v["sig"][ca, cw])) * Fraction(2) ** int(v["exp"][ca, cw])
                    assert (-got if v["sign"][ca, cw] else got) == want
                n += 1
    for name in V.FORMATS:
        t = V.load_vectors(f"table_{name}")
        assert np.array_equal(t["values"], F.get(name).values.astype(np.float32), equal_nan=True)
        assert np.array_equal(t["bits"], t["values"].view(np.uint32))
    assert n == 5 * 86 * 256


def test_encode_vectors_against_reference():
    n = 0
    for name in V.FORMATS:
        v = V.load_vectors(f"encode_{name}")
        for key in [k for k in v if k.startswith("codes_")]:
            rounding = key[len("codes_"):].replace("_nonsat", "")
            sat = not key.endswith("_nonsat")
            want, err = ref.encode_vec(v["x"], name, rounding, sat)
            assert not err.any()
            assert np.array_equal(v[key].astype(np.int64), want), key
            n += v["x"].size
    assert n > 40_000


def test_load_vectors_errors():
    with pytest.raises(FileNotFoundError, match="available: .*mac_rf8_rf8_exact_l1"):
        V.load_vectors("mac_nope")
    assert "products_rf8_rf8" in V.list_vectors()


def test_write_refuses_to_overwrite_changed_files(tmp_path):
    out = tmp_path / "g"
    st = V.write_golden(out)
    assert {s for _, s in st} == {"new"}
    assert {s for _, s in V.write_golden(out)} == {"unchanged"}
    p = out / "table_rf8.npz"
    arrays = dict(np.load(p))
    arrays["values"] = arrays["values"] * 2
    p.write_bytes(V.npz_bytes(arrays))
    with pytest.raises(V.GoldenMismatch, match=r"table_rf8.npz: arrays values"):
        V.write_golden(out)
    assert dict(V.write_golden(out, force=True))["table_rf8.npz"] == "updated"
    assert V.verify(out) == 229 + 2 * 7 + 2 * 3 + 4 * 5 + 11 * len(V.MAC16_CASES)


def test_16bit_tables_and_encode_vectors_against_ml_dtypes():
    import ml_dtypes

    ref16 = {"bf16": ml_dtypes.bfloat16, "fp16": np.float16}
    n = 0
    for name in V.FORMATS16:
        t = V.load_vectors(f"table_{name}")
        codes = np.arange(65536, dtype=np.uint16)
        want = codes.view(ref16[name]).astype(np.float32)
        assert np.array_equal(t["values"], want, equal_nan=True)
        assert np.array_equal(t["bits"][~np.isnan(want)], want.view(np.uint32)[~np.isnan(want)])
        assert t["canonical"].dtype == np.uint16 and t["values"].size == 65536
        fin = t["special"] == 0
        vals = np.ldexp(t["sig"][fin].astype(np.float64), t["exp"][fin].astype(np.int32))
        assert np.array_equal(np.where(t["sign"][fin] == 1, -vals, vals), want[fin].astype(np.float64))
        e = V.load_vectors(f"encode_{name}")
        x = e["x"]
        with np.errstate(over="ignore", invalid="ignore"):
            c = x.astype(ref16[name]).view(np.uint16)
        nan = np.isnan(x)
        assert np.array_equal(e["codes_nearest"][~nan], c[~nan])
        inf = ((c & 0x7FFF) == F.get(name).inf_code) & ~np.isinf(x) | np.isinf(x)
        sat = np.where(inf & ~nan, (c & 0x8000) | F.get(name).max_code, c)
        assert np.array_equal(e["codes_nearest_sat"][~nan], sat[~nan])
        assert np.all(e["codes_nearest"][nan] == F.get(name).nan_code)
        n += x.size
    assert n > 20_000


def test_mx_vectors_against_gfloat_and_fractions():
    from test_scales_mx import _gfloat_blocks, _gfloat, _ref_mx_rf8

    from rf8sim import scales as S

    gf = _gfloat()
    blocks = 0
    for name in V.MX_FORMATS:
        v = V.load_vectors(f"mx_{name}")
        assert np.array_equal(v["scale_e8m0"], S.to_e8m0(v["scale_exp"]))
        x = v["x"]
        fin = np.isfinite(x.reshape(-1, 32)).all(axis=1)
        kb = v["scale_exp"].reshape(-1)
        assert np.all(kb[~fin] == S.SCALE_NAN) and np.isnan(v["deq"].reshape(-1, 32)[~fin]).all()
        if name == "rf8":
            xf = np.where(np.isfinite(x), x, 0).astype(np.float32)
            want_c, want_k = _ref_mx_rf8(xf, "nearest")
            assert np.array_equal(v["codes"].reshape(-1, 32)[fin], want_c.reshape(-1, 32)[fin])
            assert np.array_equal(kb[fin], want_k[fin])
            blocks += int(fin.sum())
            continue
        gname, offset = {"e4m3": ("format_info_mxfp8_e4m3", 0), "e5m2": ("format_info_mxfp8_e5m2", 0),
                         "int8": ("format_info_mxint8", 6)}[name]
        bfi = getattr(gf.formats, gname)
        for b, (sbyte, ecodes, dec) in enumerate(_gfloat_blocks(gf, bfi, x)):
            if not fin[b] or int(sbyte) - 127 - offset < S.SCALE_MIN:
                continue  # non-finite blocks checked above; int8 clamp difference documented in test_scales_mx
            assert int(kb[b]) + offset == int(sbyte) - 127
            assert v["codes"].reshape(-1, 32)[b].tolist() == [int(c) for c in ecodes]
            assert np.array_equal(v["deq"].reshape(-1, 32)[b].astype(np.float64), dec)
            blocks += 1
    assert blocks >= 4 * 70
