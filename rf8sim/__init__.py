"""rf8sim: RF8 residual floating point, from the format spec to Verilog and training.

The public array API (``encode``, ``decode``, ``quantize``, ``dequantize``) is
the Numba golden model of :mod:`rf8sim.golden`; it is imported on first use so
that ``import rf8sim`` stays cheap.
"""

import os as _os

from .infra import cache as _cache

# Numba's compiled kernels live in the one cache root unless NUMBA_CACHE_DIR says otherwise
# (set before anything imports numba; rf8sim.infra.cache.set_root moves it while numba is not loaded).
if not _os.environ.get("NUMBA_CACHE_DIR"):
    _os.environ["NUMBA_CACHE_DIR"] = str(_cache.root() / "numba")
    _os.environ["RF8SIM_NUMBA_CACHE_DEFAULT"] = "1"

from . import formats, scales  # noqa: E402
from .formats import Format, FormatError, float_format, get as get_format, values  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "formats",
    "scales",
    "Format",
    "float_format",
    "FormatError",
    "get_format",
    "values",
    "encode",
    "decode",
    "quantize",
    "dequantize",
    "AccSpec",
]

_LAZY = {
    "encode": "rf8sim.golden",
    "decode": "rf8sim.golden",
    "quantize": "rf8sim.golden",
    "dequantize": "rf8sim.golden",
    "AccSpec": "rf8sim.accspec",
}


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'rf8sim' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value
