"""PyTorch side of rf8sim: bit-exact format emulation, QAT, GG statistics, BackSlash, DeepShape, export.

Pure torch (CPU and CUDA); no Numba anywhere in this package.
"""

from .backslash import BackSlash, BackSlashError, estimate_shape
from .deepshape import DeepShapeError, DeepShapeResult, deepshape_, reshape_values
from .export import RF8FileError, load_rf8, read_rf8, save_rf8
from .gemm import GemmError, TorchGemmResult, gemm, to_float32
from .gg import GGError, GGFit, fit_gg, gg_init_, goodness_of_fit, sample_gg
from .params import select_params
from .rate import RateError, entropy_bits, exp_golomb_bits, rate_report
from .qat import QATConfig, QuantizedTensor, convert, quantize_model_
from .ptq import QuantConfig, RF8Linear, quantize_
from .quant import (GRANULARITIES, QuantError, decode, dequantize, encode, fake_quant, quantize,
                    scale_exponent, scale_shape, set_compile)

__all__ = [
    "GRANULARITIES", "QuantError", "decode", "dequantize", "encode", "fake_quant", "quantize",
    "scale_exponent", "scale_shape", "set_compile",
    "BackSlash", "BackSlashError", "estimate_shape",
    "DeepShapeError", "DeepShapeResult", "deepshape_", "reshape_values",
    "RF8FileError", "load_rf8", "read_rf8", "save_rf8",
    "QATConfig", "QuantizedTensor", "convert", "quantize_model_",
    "QuantConfig", "RF8Linear", "quantize_",
    "GemmError", "TorchGemmResult", "gemm", "to_float32",
    "select_params", "RateError", "entropy_bits", "exp_golomb_bits", "rate_report",
    "GGError", "GGFit", "fit_gg", "gg_init_", "goodness_of_fit", "sample_gg",
]

#: deprecated names (one release): encode / decode / fake_quant / gemm take every format width
_DEPRECATED = {"encode16": "encode", "decode16": "decode", "fake_quant16": "fake_quant", "gemm16": "gemm"}


def __getattr__(name):
    if name in _DEPRECATED:
        from . import w8a16

        return getattr(w8a16, name)  # warns when called
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
