"""Numba golden model: the bit-exact reference semantics of every rf8sim datapath.

Public API (all exact; see docs/formats.md for the normative semantics):

* :func:`encode`, :func:`decode`, :func:`quantize`, :func:`dequantize` - conversions.
* :func:`product_tables`, :func:`mac`, :func:`dot`, :func:`gemm`, :func:`to_float32`
  and :class:`AccSpec` - the fixed-point datapath the RTL implements.
* :func:`load_vectors` - the checked-in golden vectors in ``golden/``.
"""

from .accspec import MAX_FRAC_BITS, MAX_WIDTH, AccSpec, AccSpecError
from .codec import (GRANULARITIES, DTypeError, EncodeError, decode, dequantize, encode, quantize,
                    scale_exponents, scale_shape)

__all__ = [
    "AccSpec", "AccSpecError", "MAX_WIDTH", "MAX_FRAC_BITS",
    "encode", "decode", "quantize", "dequantize", "scale_exponents", "scale_shape", "GRANULARITIES",
    "DTypeError", "EncodeError",
    "product_tables", "mac", "dot", "gemm", "to_float32", "MacTrace", "GemmResult", "DotResult",
    "load_vectors", "list_vectors",
]


def __getattr__(name):  # arithmetic and vectors are imported on first use
    if name in ("product_tables", "mac", "dot", "gemm", "to_float32", "MacTrace", "GemmResult",
                "DotResult"):
        from . import arith

        return getattr(arith, name)
    if name in ("load_vectors", "list_vectors"):
        from . import vectors

        return getattr(vectors, name)
    raise AttributeError(f"module 'rf8sim.golden' has no attribute {name!r}")
