"""PyTorch side of rf8sim: bit-exact format emulation, QAT, GG statistics, BackSlash, DeepShape, export.

Pure torch (CPU and CUDA); no Numba anywhere in this package.
"""

from .quant import (GRANULARITIES, QuantError, decode, dequantize, encode, fake_quant, quantize,
                    scale_exponent, scale_shape)

__all__ = [
    "GRANULARITIES", "QuantError", "decode", "dequantize", "encode", "fake_quant", "quantize",
    "scale_exponent", "scale_shape",
]
