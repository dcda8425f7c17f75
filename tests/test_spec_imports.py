"""The spec objects live beside Format, and the hdl/training packages import without Numba."""

import subprocess
import sys

import numpy as np

from rf8sim import formats as F
from rf8sim import scales as S

CHECK = r"""
import importlib, pkgutil, sys
import rf8sim.hdl, rf8sim.training, rf8sim.formats, rf8sim.scales, rf8sim.accspec
from rf8sim.golden.accspec import AccSpec  # the old path is a re-export
from rf8sim.golden import AccSpec as A2
assert A2 is AccSpec
names = []
for pkg in (rf8sim.hdl, rf8sim.training):
    for m in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(pkg.__name__ + "." + m.name)
        names.append(m.name)
print(len(names), "numba" in sys.modules)
"""


def test_hdl_and_training_import_without_numba():
    r = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    n, numba = r.stdout.split()
    assert int(n) >= 20 and numba == "False", r.stdout


def test_spec_objects_are_one_object_everywhere():
    import rf8sim
    from rf8sim import accspec, golden
    from rf8sim.golden import codec
    from rf8sim.study.mnist1d import variants

    assert golden.AccSpec is accspec.AccSpec is rf8sim.AccSpec
    assert codec.GRANULARITIES is S.GRANULARITIES == ("tensor", "channel", "ceil", "mx")
    assert golden.scale_shape is S.scale_shape and golden.scale_exponents is S.scale_exponents
    assert variants.VARIANT_SPECS is F.RF8_VARIANTS


def test_roundings_are_truthful():
    """Format.roundings lists exactly the roundings encode implements: each listed one encodes,
    each other one is refused with the reason."""
    from rf8sim.golden import encode

    F.register_rf8_variants()
    x = np.linspace(-3, 3, 101, dtype=np.float32)
    n = 0
    for name in F.names():
        fmt = F.get(name)
        for r in F.ROUNDINGS:
            if r in fmt.roundings:
                assert encode(x, fmt, r).shape == x.shape
                assert F.rounding_unsupported(fmt, r) == ""
            else:
                why = F.rounding_unsupported(fmt, r)
                assert why
                try:
                    encode(x, fmt, r)
                except F.FormatError as e:
                    assert why in str(e)
                else:
                    raise AssertionError(f"{name} encoded with {r} although roundings={fmt.roundings}")
            n += 1
    assert n == 3 * len(F.names()) >= 24
    assert F.get("rf8").roundings == ("nearest", "paper", "truncate")
    assert F.get("rf8m8").roundings == ("nearest",) and F.get("rf8m8lo").roundings == ("nearest", "truncate")
    assert F.get("e4m3").roundings == F.get("bf16").roundings == ("nearest",)
