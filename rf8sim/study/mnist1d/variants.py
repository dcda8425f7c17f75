"""RF8 variants: what RF8's 42 redundant codes could buy while keeping the two-term shift-and-add product.

RF8 spends 42 of its 256 codes on duplicates: 14 extra zeros (E = 0 with R = 1..7, both
signs) and 28 codes (E, R = 1) whose value 1.5·2^e equals (E + 1, R = 5).  Per binade
[2^e, 2^(e+1)) it has 7 distinct magnitudes: 1, 1+1/16, 1+1/8, 1+1/4, 1+1/2, 2-1/4, 2-1/8
(times 2^e).

Within the two-term structure a multiplier in [1, 2) is 1 + 2^-d (leading term in this
binade) or 2 - 2^-d (leading term in the next binade, negative residual); with the paper's
ratio limit d <= 4 these are exactly RF8's seven.  An eighth distinct multiplier per binade
therefore needs d = 5; the variants here:

* ``rf8m8``: R = 5 becomes 1 - 2^-5 (so 2^(e+1)·(1 - 2^-5) = 1.9375·2^e) instead of the
  duplicate 1 - 2^-2: eight distinct multipliers per binade, 28 codes recovered.
* ``rf8m8lo``: the same with 1 + 2^-5 (1.03125·2^e) as the eighth multiplier.

Both keep every product a sum of at most four shifted copies (two terms times two terms) and
cost the RTL one more shift distance (d = 5).  Finer residual sets (a 3-bit exponent with 16
residuals, d up to 9) were tried and dropped: the two-term structure cannot fill RF8's widest
gaps (1.25 -> 1.5 -> 1.75).  The residual sets are spec data (``rf8sim.formats.RF8_VARIANTS``).  ``paper`` and
``truncate`` rounding are RF8's greedy algorithms: the golden model runs ``truncate`` only on
residual sets with every +2^-d term up to the largest d and ``paper`` only with every -2^-d
too, and refuses the others with a clear error (:func:`rounding_supported`); so ``rf8m8``
has ``nearest`` only and ``rf8m8lo`` ``nearest`` and ``truncate``.

Reclaiming all 42 duplicates needs a third term (``rf8sim.formats.RF8_TERMS_VARIANTS``, built by
``terms_format`` and registered by default): ``rf8t1`` puts 1 + 2^-2 + 2^-3 = 1.375 on R = 5 (the
widest gap, 1.25 -> 1.5, halved) and ``rf8t2`` also replaces 1 + 2^-4 by 1 + 2^-1 + 2^-3 = 1.625,
which makes its eight multipliers per binade E4M3's 1, 1.125, ..., 1.875; both turn E = 0 (RF8's
fourteen extra zeros) into a sixteenth binade.  Their products are sums of at most three shifted
copies of the other operand; ``rf8sim study zoo`` measures what they buy (docs/study.md).

RF8 with MX-style block scales is not a new code table: it is ``rf8`` with
``granularity="block"`` (a power-of-two scale per 32 contiguous values, like OCP MX's E8M0
scale) and is swept as such.

Which wins where is measured, not asserted: :func:`error_vs_shape` gives the SQNR of each
(format, rounding, granularity) on generalized Gaussian samples of several shapes through
the golden model's quantize/dequantize; docs/study.md records the outcome.
"""

from __future__ import annotations

import numpy as np

from ... import formats as F

__all__ = [
    "VARIANT_SPECS",
    "ensure_registered",
    "variant_names",
    "error_vs_shape",
    "sqnr_db",
    "rounding_supported",
]

#: name -> keyword arguments of :func:`rf8sim.formats.residual_format` (defined in the spec).
VARIANT_SPECS: dict[str, dict] = F.RF8_VARIANTS


def ensure_registered() -> tuple[str, ...]:
    """Register every variant in :mod:`rf8sim.formats` (idempotent); return their names.

    Worker processes call this before looking a variant up by name (formats pickle by name).
    """
    return F.register_rf8_variants()


def rounding_supported(fmt_name: str, rounding: str) -> tuple[bool, str]:
    """Whether the golden model encodes ``fmt_name`` with ``rounding``; the reason when not.

    ``paper`` and ``truncate`` are RF8's greedy two-term algorithms; ``Format.roundings`` lists
    exactly the roundings the golden model implements (the encoder refuses the others).
    """
    ensure_registered()
    fmt = F.get(fmt_name)
    why = F.rounding_unsupported(fmt, rounding)
    return (not why), why


def variant_names() -> tuple[str, ...]:
    return tuple(VARIANT_SPECS)


def sqnr_db(x: np.ndarray, xq: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio 10·log10(Σx² / Σ(x-xq)²) in dB (inf when exact)."""
    x = np.asarray(x, np.float64)
    err = float(np.sum((x - np.asarray(xq, np.float64)) ** 2))
    sig = float(np.sum(x * x))
    if err == 0.0:
        return float("inf")
    return 10.0 * np.log10(sig / err)


def error_vs_shape(formats=("rf8", "rf8m8", "e4m3", "int8"), shapes=(0.5, 1.0, 1.5, 2.0),
                   roundings=("nearest",), granularities=("tensor", "channel", "block"),
                   n: int = 1 << 16, rows: int = 64, block: int = 32, seed: int = 0) -> list[dict]:
    """SQNR of each format x rounding x granularity on GG(shape) samples, via rf8sim.golden.

    Samples are a (rows, n // rows) float32 matrix of generalized Gaussian values (scipy's
    ``gennorm``, unit scale); "channel" scales each row, "block" each ``block`` values.
    Rounding modes a format does not have (paper/truncate on non-RF8 formats) are skipped.
    Returns one dict per combination: format, shape, rounding, granularity, sqnr_db,
    rel_rmse, zero_frac (nonzero inputs that became 0).
    """
    from scipy.stats import gennorm

    from ... import golden

    ensure_registered()
    if n % rows or (n // rows) % block:
        from ...errors import InputError

        raise InputError(f"n={n} must split into {rows} rows of a multiple of block={block}")
    rng = np.random.default_rng(seed)
    out = []
    for beta in shapes:
        x = gennorm.rvs(float(beta), size=(rows, n // rows), random_state=rng).astype(np.float32)
        for name in formats:
            fmt = F.get(name)
            for rnd in roundings:
                if not rounding_supported(fmt.name, rnd)[0]:
                    continue
                for g in granularities:
                    codes, k = golden.quantize(x, fmt, rounding=rnd, granularity=g, block=block)
                    xq = np.asarray(golden.dequantize(codes, k, fmt, granularity=g, block=block), np.float64)
                    out.append(dict(
                        format=fmt.name, shape=float(beta), rounding=rnd, granularity=g,
                        sqnr_db=sqnr_db(x, xq),
                        rel_rmse=float(np.sqrt(np.mean((x - xq) ** 2) / np.mean(np.asarray(x, np.float64) ** 2))),
                        zero_frac=float(np.mean((xq == 0) & (x != 0))),
                    ))
    return out
