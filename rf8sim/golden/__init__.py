"""Numba golden model: the bit-exact reference semantics of every rf8sim datapath.

Public API (all exact; see docs/formats.md for the normative semantics):

* :func:`encode`, :func:`decode`, :func:`quantize`, :func:`dequantize` - conversions.
* :func:`product_tables`, :func:`mac`, :func:`dot`, :func:`gemm`, :func:`to_float32`
  and :class:`AccSpec` - the fixed-point datapath the RTL implements.
* ``acc="fp32"`` / ``"aligned:K:M"`` (:meth:`AccSpec.fp32`, :meth:`AccSpec.aligned`) - the
  W8A16 floating-point accumulators; :func:`products` (exact products of any two formats),
  :func:`align_activations` and :func:`view_float32` (fp32 results are float32 bit patterns)
  from :mod:`.fpacc`.
* :func:`load_vectors` - the checked-in golden vectors in ``golden/``.

Every name is imported on first use, so ``from rf8sim.golden.accspec import AccSpec`` (a
re-export of :mod:`rf8sim.accspec`) does not import Numba.
"""

import importlib

__all__ = [
    "AccSpec", "AccSpecError", "MAX_WIDTH", "MAX_FRAC_BITS",
    "encode", "decode", "quantize", "dequantize", "scale_exponents", "scale_shape", "GRANULARITIES",
    "DTypeError", "EncodeError",
    "product_tables", "mac", "dot", "gemm", "to_float32", "MacTrace", "GemmResult", "DotResult",
    "load_vectors", "list_vectors", "products", "view_float32", "align_activations", "Fp32Trace", "Fp32Result",
    "ShapeError",
]

_LAZY = {
    **{n: "rf8sim.accspec" for n in ("AccSpec", "AccSpecError", "MAX_WIDTH", "MAX_FRAC_BITS")},
    **{n: "rf8sim.golden.codec" for n in ("encode", "decode", "quantize", "dequantize", "scale_exponents",
                                          "scale_shape", "GRANULARITIES", "DTypeError", "EncodeError")},
    **{n: "rf8sim.golden.arith" for n in ("product_tables", "mac", "dot", "gemm", "to_float32", "MacTrace",
                                          "GemmResult", "DotResult")},
    **{n: "rf8sim.golden.vectors" for n in ("load_vectors", "list_vectors")},
    **{n: "rf8sim.golden.fpacc" for n in ("products", "view_float32", "align_activations", "Fp32Trace",
                                          "Fp32Result", "ShapeError")},
}


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'rf8sim.golden' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
