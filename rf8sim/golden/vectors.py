"""Golden vectors: the contract between the golden model, the RTL testbenches and the torch emulation.

``rf8sim golden --out golden`` (``make golden``) writes, deterministically, into ``golden/``:

``table_<fmt>.npz`` (fmt in rf8, e4m3, e5m2, int8) - the 256 codes, index = code:
    ``values`` float32 (NaN/Inf where special), ``bits`` uint32 (the float32 bit pattern
    of ``values``), ``sign`` uint8, ``sig`` int32, ``exp`` int16 (finite value =
    (-1)**sign * sig * 2**exp), ``special`` uint8 (0 finite, 1 NaN, 2 Inf),
    ``canonical`` uint8 (canonical code of each code's value).

``products_<a>_<w>.npz`` for (a, w) in rf8 x rf8, e4m3 x e4m3, e5m2 x e5m2, int8 x int8,
    rf8 x int8 - all 65,536 exact products, arrays of shape (256, 256) indexed
    ``[a_code, w_code]``: ``sign`` uint8, ``sig`` int32 (>= 0), ``exp`` int16,
    ``special`` uint8 (1 if an operand is NaN/Inf; then sign = sig = exp = 0).
    Product value = (-1)**sign * sig * 2**exp.

``mac_<case>.npz`` - seeded random MAC sequences and the golden trace, n beats:
    inputs ``a``, ``w`` uint8 (n, lanes), ``clear`` bool (n,); outputs after each beat
    ``acc_lo`` uint64 and ``acc_hi`` int64 (n,) - the accumulator is the two's complement
    128-bit integer ``acc_hi * 2**64 + acc_lo`` (for width <= 63, ``acc_hi`` is just the
    sign extension and ``acc_lo.view(int64)`` is the value), ``overflow`` and ``invalid``
    bool (n,) (sticky flags after the beat); metadata 0-d arrays ``a_fmt``, ``w_fmt`` (str),
    ``frac_bits``, ``width``, ``lanes``, ``seed`` (int64).  The accumulator's real value
    is ``acc * 2**-frac_bits``.

``mac16_<case>.npz`` - W8A16 MAC traces (``fp32`` and ``aligned:K:M`` accumulators, docs/formats.md
    "Accumulation: fp32" / "Accumulation: aligned:K:M"), n beats: inputs ``a`` (uint16 for
    bf16/fp16 activations), ``w`` (uint8, or uint16 for bf16 weights), both (n, lanes), ``clear``
    bool (n,); outputs after each beat ``acc_bits`` uint32 (n,) - the float32 bit pattern of the
    accumulator, every NaN the canonical 0x7FC00000 - and the sticky ``overflow`` / ``invalid``
    bool (n,); metadata ``a_fmt``, ``w_fmt``, ``acc`` (str, ``AccSpec.parse`` syntax), ``lanes``,
    ``seed``.  aligned cases put a clear only on block boundaries (K/lanes beats).

``encode_<fmt>.npz`` - float32 inputs ``x`` (boundary values and random) and the codes
    ``codes_<rounding>`` (uint8, saturate=True) for every rounding mode of the format;
    for e4m3/e5m2 also ``codes_nearest_nonsat`` (saturate=False).

``table_<fmt>.npz`` for the 16-bit formats bf16 and fp16 - the same arrays for all 65,536
    codes (``canonical`` uint16).

``encode_<fmt>.npz`` for bf16 and fp16 - ``x`` float32 (ties, neighbours of ties, the
    overflow threshold, subnormal edges, signed zeros, Inf, NaN, random) and ``codes_nearest``
    (uint16, the format's default: overflow to +-Inf) and ``codes_nearest_sat`` (saturate=True).

``mx_<fmt>.npz`` for fmt in rf8, e4m3, e5m2, int8 - OCP MX quantization (granularity "mx",
    blocks of 32 along the last axis): ``x`` float32 (rows, 64) with zero, subnormal, huge,
    power-of-two, NaN and Inf blocks; ``codes`` uint8, ``scale_exp`` int8 (rows, 2) (-128 is the
    NaN scale), ``scale_e8m0`` uint8 (the OCP E8M0 bytes), ``deq`` float32 (dequantized values).

``MANIFEST.json`` - the generating command, the layout version and, per file, its
    SHA-256, size and arrays (dtype, shape).

Files are zip archives (numpy ``.npz``) written with fixed timestamps, so the same
model gives the same bytes.  :func:`load_vectors` reads one by name.
"""

from __future__ import annotations

from rf8sim.errors import RF8SimError

import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from .. import formats as F
from .accspec import AccSpec

__all__ = ["GOLDEN_COMMAND", "LAYOUT_VERSION", "FORMATS", "FORMATS16", "MX_FORMATS", "PRODUCT_PAIRS", "MAC_CASES", "MacCase",
           "MAC16_CASES", "Mac16Case",
           "generate", "write_golden", "verify", "load_vectors", "list_vectors", "default_root",
           "GoldenMismatch"]

GOLDEN_COMMAND = "rf8sim golden --out golden"
LAYOUT_VERSION = 1
FORMATS = ("rf8", "e4m3", "e5m2", "int8")
#: 16-bit formats with table and encode vectors.
FORMATS16 = ("bf16", "fp16")
#: formats with OCP MX quantization vectors.
MX_FORMATS = ("rf8", "e4m3", "e5m2", "int8")
PRODUCT_PAIRS = (("rf8", "rf8"), ("e4m3", "e4m3"), ("e5m2", "e5m2"), ("int8", "int8"), ("rf8", "int8"))


class GoldenMismatch(RF8SimError, ValueError):
    """Files in the golden directory differ from what the model generates now."""


@dataclass(frozen=True)
class MacCase:
    name: str
    a_fmt: str
    w_fmt: str
    acc: str  # AccSpec.parse syntax: 'exact:TERMS' or 'FRAC:WIDTH'
    lanes: int
    n: int
    seed: int
    special_rate: float = 0.0015  # probability of a NaN/Inf operand code (formats that have them)
    clear_rate: float = 1 / 48
    big_rate: float = 0.15  # probability of one of the 24 largest-magnitude codes

    def spec(self) -> AccSpec:
        return AccSpec.parse(self.acc, self.a_fmt, self.w_fmt)


MAC_CASES = (
    MacCase("rf8_rf8_exact_l1", "rf8", "rf8", "exact:1024", 1, 3000, 101),
    MacCase("rf8_rf8_exact_l4", "rf8", "rf8", "exact:1024", 4, 1500, 102),
    MacCase("rf8_rf8_narrow_l1", "rf8", "rf8", "8:24", 1, 3000, 103, big_rate=0.03),
    MacCase("rf8_rf8_narrow_l4", "rf8", "rf8", "4:22", 4, 1500, 104, big_rate=0.02),
    MacCase("e4m3_e4m3_exact_l1", "e4m3", "e4m3", "exact:1024", 1, 3000, 201),
    MacCase("e4m3_e4m3_narrow_l4", "e4m3", "e4m3", "6:24", 4, 1500, 202, 0.004, big_rate=0.02),
    MacCase("e5m2_e5m2_exact_l1", "e5m2", "e5m2", "exact:1024", 1, 3000, 301),
    MacCase("e5m2_e5m2_exact_l4", "e5m2", "e5m2", "exact:1024", 4, 1500, 302),
    MacCase("e5m2_e5m2_narrow_l1", "e5m2", "e5m2", "10:36", 1, 3000, 303, 0.004, big_rate=0.03),
    MacCase("int8_int8_exact_l1", "int8", "int8", "exact:1024", 1, 3000, 401),
    MacCase("int8_int8_narrow_l4", "int8", "int8", "0:18", 4, 1500, 402, big_rate=0.05),
    MacCase("rf8_int8_exact_l1", "rf8", "int8", "exact:1024", 1, 3000, 501),
    MacCase("rf8_int8_narrow_l4", "rf8", "int8", "2:20", 4, 1500, 502, big_rate=0.03),
)


@dataclass(frozen=True)
class Mac16Case:
    """A W8A16 MAC trace: ``acc`` is ``fp32`` or ``aligned:K:M``."""

    name: str
    a_fmt: str
    w_fmt: str
    acc: str
    lanes: int
    n: int
    seed: int
    special_rate: float = 0.0005  # probability of a NaN/Inf operand code
    clear_rate: float = 1 / 40  # per beat (aligned: per block boundary, times K/lanes)
    big_rate: float = 0.004  # probability of one of the 40 largest-magnitude codes

    def spec(self) -> AccSpec:
        return AccSpec.parse(self.acc)


MAC16_CASES = (
    Mac16Case("bf16_rf8_fp32_l1", "bf16", "rf8", "fp32", 1, 3000, 601),
    Mac16Case("bf16_rf8_fp32_l4", "bf16", "rf8", "fp32", 4, 1500, 602),
    Mac16Case("bf16_rf8_aligned_32_16_l4", "bf16", "rf8", "aligned:32:16", 4, 1600, 603),
    Mac16Case("bf16_rf8_aligned_16_8_l1", "bf16", "rf8", "aligned:16:8", 1, 1600, 604),
    Mac16Case("fp16_rf8_fp32_l4", "fp16", "rf8", "fp32", 4, 1500, 605),
    Mac16Case("bf16_e4m3_fp32_l1", "bf16", "e4m3", "fp32", 1, 3000, 611),
    Mac16Case("bf16_e4m3_aligned_32_16_l4", "bf16", "e4m3", "aligned:32:16", 4, 1600, 612),
    Mac16Case("bf16_int8_fp32_l1", "bf16", "int8", "fp32", 1, 3000, 621),
    Mac16Case("bf16_int8_aligned_32_16_l4", "bf16", "int8", "aligned:32:16", 4, 1600, 622),
    Mac16Case("bf16_bf16_fp32_l1", "bf16", "bf16", "fp32", 1, 3000, 631),
    Mac16Case("bf16_bf16_fp32_l4", "bf16", "bf16", "fp32", 4, 1500, 632),
    Mac16Case("bf16_bf16_aligned_32_16_l4", "bf16", "bf16", "aligned:32:16", 4, 1600, 633),
)


def default_root() -> Path:
    """The repository's ``golden/`` directory (or its installed copy, see rf8sim.infra.resources)."""
    from ..infra.resources import data_dir

    return data_dir("golden")


# ---------------------------------------------------------------------------
# generation


def _edge_codes(fmt: F.Format) -> np.ndarray:
    """Zeros, extremes, smallest magnitudes, specials and (RF8) non-canonical duplicates."""
    fin = fmt.finite
    mags = np.where(fin, np.abs(np.nan_to_num(fmt.values)), np.nan)
    order = np.argsort(mags[:128], kind="stable")
    cs = {0, 0x80}
    top = int(np.nanargmax(np.where(fin, fmt.values, -np.inf)))
    bot = int(np.nanargmin(np.where(fin, fmt.values, np.inf)))
    cs |= {top, bot}
    cs |= {int(c) for c in order[1:4]} | {int(c) | 0x80 for c in order[1:4] if fmt.kind != "int"}
    cs |= {int(c) for c in np.flatnonzero(~fmt.is_canonical & fin)[:24]}
    return np.array(sorted(c for c in cs if fmt.special[c] == F.SPECIAL_FINITE), np.uint8)


def _draw_codes(rng, fmt: F.Format, size, special_rate: float, big_rate: float) -> np.ndarray:
    fin_codes = np.flatnonzero(fmt.finite).astype(np.uint8)
    spec_codes = np.flatnonzero(~fmt.finite).astype(np.uint8)
    edge = _edge_codes(fmt)
    big = fin_codes[np.argsort(np.abs(fmt.values[fin_codes]), kind="stable")[-24:]]  # large magnitudes: overflow
    kind = rng.random(size)
    out = rng.choice(fin_codes, size)
    out = np.where(kind < 0.15, rng.choice(edge, size), out)
    out = np.where((kind >= 0.15) & (kind < 0.15 + big_rate), rng.choice(big, size), out)
    if spec_codes.size:
        out = np.where(rng.random(size) < special_rate, rng.choice(spec_codes, size), out)
    return out.astype(np.uint8)


def _mac_vectors(case: MacCase) -> dict:
    from .arith import mac

    a_fmt, w_fmt = F.get(case.a_fmt), F.get(case.w_fmt)
    rng = np.random.default_rng(case.seed)
    shape = (case.n, case.lanes)
    a = _draw_codes(rng, a_fmt, shape, case.special_rate, case.big_rate)
    w = _draw_codes(rng, w_fmt, shape, case.special_rate, case.big_rate)
    clear = rng.random(case.n) < case.clear_rate
    clear[0] = True
    # long runs of same-signed large products push narrow accumulators into saturation
    for start in rng.integers(0, max(1, case.n - 64), 6):
        seg = slice(int(start), int(start) + 48)
        a[seg] = a[seg] & 0x7F if a_fmt.kind != "int" else np.where(a[seg] >= 128, 255 - a[seg], a[seg])
        w[seg] = w[seg] & 0x7F if w_fmt.kind != "int" else np.where(w[seg] >= 128, 255 - w[seg], w[seg])
        for arr, f in ((a, a_fmt), (w, w_fmt)):  # keep specials out of the runs (NaN | 0x80 etc.)
            bad = f.special[arr[seg]] != F.SPECIAL_FINITE
            arr[seg][bad] = 0
    spec = case.spec()
    tr = mac(a, w, clear, a_fmt, w_fmt, spec)
    acc = [int(v) for v in tr.acc]
    hi = np.array([v >> 64 for v in acc], np.int64)
    lo = np.array([v & ((1 << 64) - 1) for v in acc], np.uint64)
    return {
        "a": a, "w": w, "clear": clear, "acc_lo": lo, "acc_hi": hi,
        "overflow": tr.overflow, "invalid": tr.invalid,
        "a_fmt": np.array(case.a_fmt), "w_fmt": np.array(case.w_fmt),
        "frac_bits": np.array(spec.frac_bits, np.int64), "width": np.array(spec.width, np.int64),
        "lanes": np.array(case.lanes, np.int64), "seed": np.array(case.seed, np.int64),
    }


def _draw16(rng, fmt: F.Format, size, special_rate: float, big_rate: float) -> np.ndarray:
    """Codes of any width: zeros, subnormals/smallest, largest, values near 1, moderate, uniform."""
    fin = np.flatnonzero(fmt.special == F.SPECIAL_FINITE)
    mag = np.abs(fmt.values[fin])
    pools = [fin, fin[mag == 0], fin[np.argsort(mag, kind="stable")[1:40]], fin[np.argsort(mag, kind="stable")[-40:]],
             fin[(mag >= 0.5) & (mag <= 2)], fin[(mag >= 2.0 ** -6) & (mag <= 2.0 ** 6)]]
    probs = np.array([0.03, 0.06, 0.04, big_rate, 0.35, 0.52 - big_rate])
    which = rng.choice(len(pools), size=size, p=probs / probs.sum())
    out = np.empty(size, np.int64)
    for i, p in enumerate(pools):
        sel = which == i
        out[sel] = rng.choice(p, int(sel.sum()))
    spec = np.flatnonzero(fmt.special != F.SPECIAL_FINITE)
    if spec.size and special_rate:
        s = rng.random(size) < special_rate
        out[s] = rng.choice(spec, int(s.sum()))
    return out.astype(fmt.code_dtype)


def _mac16_vectors(case: Mac16Case) -> dict:
    from .arith import mac

    a_fmt, w_fmt = F.get(case.a_fmt), F.get(case.w_fmt)
    spec = case.spec()
    rng = np.random.default_rng(case.seed)
    shape = (case.n, case.lanes)
    a = _draw16(rng, a_fmt, shape, case.special_rate, case.big_rate)
    w = _draw16(rng, w_fmt, shape, case.special_rate, case.big_rate)
    # exact cancellations: a term that is the negation of the one before it
    fa, fw = a.reshape(-1), w.reshape(-1)
    idx = np.flatnonzero(rng.random(fa.size - 1) < 0.08) + 1
    fa[idx] = fa[idx - 1] ^ np.array(a_fmt.sign_bit, fa.dtype)
    fw[idx] = fw[idx - 1]
    bpb = spec.block // case.lanes if spec.kind == "aligned" else 1
    # runs of same-signed largest products: overflow to Inf where the formats can reach it
    big_a = np.flatnonzero(a_fmt.finite)[np.argsort(np.abs(a_fmt.values[a_fmt.finite]), kind="stable")[-8:]]
    big_w = np.flatnonzero(w_fmt.finite)[np.argsort(np.abs(w_fmt.values[w_fmt.finite]), kind="stable")[-8:]]
    for start in rng.integers(0, case.n // bpb - 4, 3) * bpb:
        run = slice(int(start), int(start) + 2 * bpb)
        a[run] = rng.choice(big_a[a_fmt.sign[big_a] == 0], a[run].shape)
        w[run] = rng.choice(big_w[w_fmt.sign[big_w] == 0], w[run].shape)
    clear = rng.random(case.n) < case.clear_rate * bpb
    clear &= np.arange(case.n) % bpb == 0
    clear[0] = True
    tr = mac(a, w, clear, a_fmt, w_fmt, spec)
    return {
        "a": a, "w": w, "clear": clear, "acc_bits": tr.acc, "overflow": tr.overflow, "invalid": tr.invalid,
        "a_fmt": np.array(case.a_fmt), "w_fmt": np.array(case.w_fmt), "acc": np.array(str(spec)),
        "lanes": np.array(case.lanes, np.int64), "seed": np.array(case.seed, np.int64),
    }


def _encode_inputs(fmt: F.Format, seed: int) -> np.ndarray:
    mags = [float(m) for m in fmt.magnitudes]
    pts = []
    for i, m in enumerate(mags):
        pts.append(m)
        if i + 1 < len(mags):
            mid = (m + mags[i + 1]) / 2
            c = np.float32(mid)
            pts += [c, np.nextafter(c, np.float32(np.inf)), np.nextafter(c, np.float32(0))]
    for k in range(-9, 11):
        c = np.float32(math.sqrt(2) * 2.0**k)
        pts += [c, np.nextafter(c, np.float32(np.inf)), np.nextafter(c, np.float32(0))]
    top = mags[-1]
    pts += [top * 1.01, top * 2, 3.0e38, 1e-30, 1e-45, np.inf]
    rng = np.random.default_rng(seed)
    rnd = (rng.standard_normal(2000) * fmt.max / 6).astype(np.float32)
    logu = (2.0 ** rng.uniform(math.log2(fmt.min_positive) - 2, math.log2(fmt.max) + 1, 2000)).astype(np.float32)
    x = np.concatenate([np.array(pts, np.float32), rnd, logu])
    x = np.concatenate([x, -x, np.array([0.0, -0.0], np.float32)])
    if fmt.nan_code is not None:
        x = np.concatenate([x, np.array([np.nan, -np.nan], np.float32)])
    return x.astype(np.float32)


def _encode_vectors(name: str, seed: int) -> dict:
    from .codec import encode

    fmt = F.get(name)
    x = _encode_inputs(fmt, seed)
    out = {"x": x}
    for r in fmt.roundings:
        out[f"codes_{r}"] = encode(x, fmt, r, saturate=True)
    if fmt.kind == "float":
        out["codes_nearest_nonsat"] = encode(x, fmt, "nearest", saturate=False)
    return out


def _table_vectors(name: str) -> dict:
    fmt = F.get(name)
    v = fmt.values.astype(np.float32)
    return {"values": v, "bits": v.view(np.uint32).copy(), "sign": fmt.sign.astype(np.uint8),
            "sig": fmt.sig.astype(np.int32), "exp": fmt.exp.astype(np.int16),
            "special": fmt.special.astype(np.uint8), "canonical": fmt.canonical.astype(fmt.code_dtype)}


def _encode16_inputs(fmt: F.Format, seed: int) -> np.ndarray:
    """Ties and their float32 neighbours (a seeded sample of all of them), every boundary, random."""
    rng = np.random.default_rng(seed)
    mags = fmt.magnitudes
    mids = ((mags[:-1] + mags[1:]) / 2).astype(np.float32)
    pick = np.concatenate([mids[:64], mids[-64:], rng.choice(mids, 1500, replace=False)])
    ulp = 2.0 ** int(fmt.exp[fmt.max_code])
    with np.errstate(over="ignore"):  # bf16: max + ulp is beyond float32 (becomes Inf, also wanted)
        edges = np.array([fmt.max, fmt.max + ulp / 2, fmt.max + ulp, fmt.min_positive, fmt.min_positive / 2,
                          fmt.min_positive * 1.5, 2.0 ** (1 - fmt.bias), 3.0e38, 1e-45, np.inf], np.float32)
    pts = np.concatenate([pick, edges, mags[rng.integers(0, len(mags), 500)].astype(np.float32)])
    b = pts.view(np.uint32).astype(np.int64)
    b = np.concatenate([b, b + 1, b - 1])
    pts = b[(b >= 0) & (b <= 0x7F800000)].astype(np.uint32).view(np.float32)
    rnd = rng.integers(0, 0x7F800000, 2000, dtype=np.int64).astype(np.uint32).view(np.float32)
    x = np.unique(np.concatenate([pts, rnd]))
    return np.concatenate([x, -x, np.array([np.nan, -np.nan], np.float32)]).astype(np.float32)


def _encode16_vectors(name: str, seed: int) -> dict:
    from .codec import encode

    fmt = F.get(name)
    x = _encode16_inputs(fmt, seed)
    return {"x": x, "codes_nearest": encode(x, fmt), "codes_nearest_sat": encode(x, fmt, saturate=True)}


def mx_inputs(seed: int) -> np.ndarray:
    """(40, 64) float32 blocks over 2**-140..2**120 plus zero, subnormal, huge, power-of-two, NaN, Inf blocks."""
    rng = np.random.default_rng(seed)
    rows = 40
    x = rng.standard_normal((rows, 64)) * np.exp2(rng.integers(-140, 120, (rows, 2))).repeat(32, axis=1)
    x[::3] *= rng.standard_t(2, size=(len(x[::3]), 64))
    x = x.astype(np.float32)
    x[0, :32] = 0.0
    x[0, 32:] = -0.0
    x[1, :32] = np.float32(2.0**-149) * rng.integers(-3, 4, 32)
    x[2, :32] = np.finfo(np.float32).max * np.float32(0.99)
    x[2, 32:] = np.exp2(np.arange(32) - 16.0)
    x[3, :] = np.float32(1.0)
    x[3, 33] = np.nextafter(np.float32(2.0), np.float32(0))
    x[4, 5] = np.nan
    x[5, 40] = np.inf
    x[6, 1] = -np.inf
    return x


def _mx_vectors(name: str, seed: int) -> dict:
    from .. import scales as S
    from .codec import dequantize, quantize

    x = mx_inputs(seed)
    codes, k = quantize(x, name, granularity="mx")
    return {"x": x, "codes": codes, "scale_exp": k, "scale_e8m0": S.to_e8m0(k),
            "deq": dequantize(codes, k, name, "mx")}


def _product_vectors(a: str, w: str) -> dict:
    from .arith import product_tables

    sign, sig, exp, special = product_tables(a, w)
    assert sig.max() < 2**31 and np.abs(exp).max() < 2**15
    return {"sign": sign, "sig": sig.astype(np.int32), "exp": exp.astype(np.int16), "special": special}


def generate() -> dict[str, dict[str, np.ndarray]]:
    """All golden vectors in memory: file name -> arrays."""
    files: dict[str, dict[str, np.ndarray]] = {}
    for name in FORMATS:
        files[f"table_{name}.npz"] = _table_vectors(name)
    for a, w in PRODUCT_PAIRS:
        files[f"products_{a}_{w}.npz"] = _product_vectors(a, w)
    for i, name in enumerate(FORMATS):
        files[f"encode_{name}.npz"] = _encode_vectors(name, 900 + i)
    for case in MAC_CASES:
        files[f"mac_{case.name}.npz"] = _mac_vectors(case)
    for i, name in enumerate(FORMATS16):
        files[f"table_{name}.npz"] = _table_vectors(name)
        files[f"encode_{name}.npz"] = _encode16_vectors(name, 1600 + i)
    for i, name in enumerate(MX_FORMATS):
        files[f"mx_{name}.npz"] = _mx_vectors(name, 3200 + i)
    for case in MAC16_CASES:
        files[f"mac16_{case.name}.npz"] = _mac16_vectors(case)
    return files


# ---------------------------------------------------------------------------
# files


def npz_bytes(arrays: dict) -> bytes:
    """A deterministic .npz (fixed timestamps, sorted members, deflate)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            zi = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            b = io.BytesIO()
            a = np.asarray(arrays[key])
            np.lib.format.write_array(b, a if a.flags.c_contiguous else a.copy(order="C"), allow_pickle=False)
            zf.writestr(zi, b.getvalue())
    return buf.getvalue()


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _same(a: dict, b: dict) -> list[str]:
    """Keys whose arrays differ (dtype, shape or content); missing/extra keys included."""
    diff = sorted(set(a) ^ set(b))
    for k in sorted(set(a) & set(b)):
        x, y = np.asarray(a[k]), np.asarray(b[k])
        if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
            diff.append(k)
    return diff


def _manifest(root: Path, names) -> dict:
    files = {}
    for name in sorted(names):
        data = (root / name).read_bytes()
        arrays = _read_npz(root / name)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                       "arrays": {k: [str(v.dtype), list(v.shape)] for k, v in sorted(arrays.items())}}
    return {"command": GOLDEN_COMMAND, "layout_version": LAYOUT_VERSION, "rf8sim_version": __version__,
            "layout": "docs/formats.md, section 'Golden vectors', and rf8sim/golden/vectors.py",
            "files": files}


def write_golden(out="golden", force: bool = False, progress=None) -> list[tuple[str, str]]:
    """Write the vectors into ``out``; returns ``[(file, status)]`` with status
    ``new``, ``unchanged``, ``updated`` (only with ``force``) or ``stale`` (a file of
    an older layout; removed only with ``force``).

    A file whose arrays equal the generated ones is left untouched.  If any file's
    arrays differ, nothing is written unless ``force``: :class:`GoldenMismatch` lists
    the files and arrays that would change.
    """
    root = Path(out)
    gen = generate()
    status, changed = [], []
    for name, arrays in gen.items():
        p = root / name
        if not p.exists():
            status.append((name, "new"))
            continue
        try:
            diff = _same(_read_npz(p), arrays)
        except Exception as e:  # unreadable: counts as changed
            diff = [f"<unreadable: {e}>"]
        if diff:
            changed.append((name, diff))
            status.append((name, "updated"))
        else:
            status.append((name, "unchanged"))
    stale = sorted(p.name for p in root.glob("*.npz") if p.name not in gen) if root.exists() else []
    if (changed or stale) and not force:
        lines = [f"  {n}: arrays {', '.join(d)}" for n, d in changed] + [f"  {n}: not generated any more"
                                                                          for n in stale]
        raise GoldenMismatch(f"{len(changed) + len(stale)} golden file(s) in {root} differ from the model:\n"
                             + "\n".join(lines) + "\nrerun with --force to overwrite them")
    root.mkdir(parents=True, exist_ok=True)
    for name, st in status:
        if st in ("new", "updated"):
            (root / name).write_bytes(npz_bytes(gen[name]))
    for name in stale:
        (root / name).unlink()
        status.append((name, "stale"))
    man = json.dumps(_manifest(root, gen), indent=1, sort_keys=True) + "\n"
    (root / "MANIFEST.json").write_text(man)
    return status


def verify(root=None) -> int:
    """Regenerate in memory and compare with ``root`` (default: the repo's golden/).

    Checks every file's arrays and the manifest's SHA-256 of the bytes on disk;
    returns the number of arrays compared; raises :class:`GoldenMismatch` on any difference.
    """
    root = Path(root) if root is not None else default_root()
    man_path = root / "MANIFEST.json"
    if not man_path.exists():
        raise GoldenMismatch(f"{man_path} is missing; run `{GOLDEN_COMMAND}`")
    man = json.loads(man_path.read_text())
    gen = generate()
    problems = []
    if set(man["files"]) != set(gen):
        problems.append(f"manifest lists {sorted(set(man['files']) ^ set(gen))} differently from the model")
    n = 0
    for name, arrays in gen.items():
        p = root / name
        if not p.exists():
            problems.append(f"{name}: missing")
            continue
        data = p.read_bytes()
        if name in man["files"] and hashlib.sha256(data).hexdigest() != man["files"][name]["sha256"]:
            problems.append(f"{name}: SHA-256 differs from MANIFEST.json")
        diff = _same(_read_npz(p), arrays)
        if diff:
            problems.append(f"{name}: arrays {', '.join(diff)} differ from the model")
        n += len(arrays)
    if problems:
        raise GoldenMismatch("golden vectors disagree with the model:\n  " + "\n  ".join(problems))
    return n


def list_vectors(root=None) -> list[str]:
    """Names of the vector files (without .npz) listed in the manifest."""
    root = Path(root) if root is not None else default_root()
    man = json.loads((root / "MANIFEST.json").read_text())
    return [n[:-4] for n in sorted(man["files"])]


def load_vectors(name: str, root=None) -> dict:
    """Load one golden file by name (``"mac_rf8_rf8_exact_l1"``, ``"products_rf8_rf8"``, ...).

    Returns a dict of numpy arrays; 0-d metadata arrays become Python scalars, and MAC
    files get an extra ``acc`` entry: the accumulator as an object array of Python ints.
    """
    root = Path(root) if root is not None else default_root()
    fname = name if name.endswith(".npz") else f"{name}.npz"
    p = root / fname
    if not p.exists():
        try:
            known = ", ".join(list_vectors(root))
        except FileNotFoundError:
            known = f"(no MANIFEST.json in {root}; run `{GOLDEN_COMMAND}`)"
        from ..errors import InputFileError

        raise InputFileError(f"no golden vector file {fname!r} in {root}; available: {known}")
    out = {}
    for k, v in _read_npz(p).items():
        out[k] = v.item() if v.ndim == 0 else v
    if "acc_lo" in out:
        out["acc"] = (out["acc_hi"].astype(object) << 64) + out["acc_lo"].astype(object)
    return out
