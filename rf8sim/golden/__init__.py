"""Numba golden model: the bit-exact reference semantics of every rf8sim datapath.

Public API (all exact; see docs/formats.md for the normative semantics):

* :func:`encode`, :func:`decode`, :func:`quantize`, :func:`dequantize` - conversions.
* :func:`product_tables`, :func:`mac`, :func:`dot`, :func:`gemm`, :func:`to_float32`
  and :class:`AccSpec` - the fixed-point datapath the RTL implements.
* ``acc="fp32"`` / ``"aligned:K:M"`` (:meth:`AccSpec.fp32`, :meth:`AccSpec.aligned`) - the
  W8A16 floating-point accumulators; :func:`products` (exact products of any two formats)
  and :func:`view_float32` (fp32 results are float32 bit patterns) from :mod:`.fpacc`.
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
    "load_vectors", "list_vectors", "products", "view_float32", "align_activations",
]


def __getattr__(name):  # arithmetic and vectors are imported on first use
    if name in ("product_tables", "mac", "dot", "gemm", "to_float32", "MacTrace", "GemmResult",
                "DotResult"):
        from . import arith

        return getattr(arith, name)
    if name in ("products", "view_float32", "align_activations"):
        from . import fpacc

        return getattr(fpacc, name)
    if name in ("load_vectors", "list_vectors"):
        from . import vectors

        return getattr(vectors, name)
    raise AttributeError(f"module 'rf8sim.golden' has no attribute {name!r}")
