"""``make_unit(spec)``: the Amaranth unit of a :class:`~rf8sim.hdl.spec.MacSpec`, picked by ``acc.kind``.

As :func:`rf8sim.golden.mac` dispatches on the accumulator, so does the generator:

========  ==========================================  =============================================
kind      unit                                        sub-blocks (each instantiable from the spec)
========  ==========================================  =============================================
fixed     :class:`~rf8sim.hdl.mac.MacUnit`            ``ProductStage`` per lane, ``Fp32Convert``
fp32      :class:`~rf8sim.hdl.w8a16.Fp32MacUnit`      ``FloatProductStage`` and ``Fp32Add`` per lane
aligned   :class:`~rf8sim.hdl.w8a16.AlignedMacUnit`   ``AlignUnit`` (per activation stream) +
                                                      ``AlignedColumn`` (per output column)
========  ==========================================  =============================================
"""

from __future__ import annotations

from .mac import MacUnit, ProductStage
from .spec import HdlError, MacSpec
from .w8a16 import AlignedMacUnit, FloatProductStage, Fp32MacUnit

__all__ = ["make_unit", "product_stage", "UNITS"]

#: acc.kind -> the unit class
UNITS = {"fixed": MacUnit, "fp32": Fp32MacUnit, "aligned": AlignedMacUnit}


def make_unit(spec: MacSpec):
    """The unit for ``spec``: :class:`MacUnit`, :class:`Fp32MacUnit` or :class:`AlignedMacUnit` by ``acc.kind``."""
    if not isinstance(spec, MacSpec):
        raise HdlError(f"make_unit takes a MacSpec (rf8sim.hdl.MacSpec.make(a, w, acc, lanes, result)), got {spec!r}")
    return UNITS[spec.kind](spec)


def product_stage(spec: MacSpec):
    """One lane's combinational product stage of ``spec`` (a PE's multiplier), standalone."""
    return ProductStage(spec) if spec.kind == "fixed" else FloatProductStage(spec)
