"""RTL: one unit specification, its Amaranth generator, Verilog export, cocotb verification and synthesis.

Public API::

    spec = MacSpec.make(a="rf8", w="rf8", acc=None, lanes=1, result=None)   # parsed once, frozen
    make_unit(spec)                       # MacUnit / Fp32MacUnit / AlignedMacUnit by spec.acc.kind
    product_stage(spec)                   # one lane's product stage alone (a PE's multiplier)
    verilog_of(spec) -> (text, latency)
    verify(spec, n_random=..., simulator="icarus") -> summary dict
    synthesize(spec, stage="mac", liberty="default") -> dict

The older field-by-field forms (``MacUnit(a_fmt, w_fmt, acc, lanes, out)``, ``generate_verilog(a_fmt, ...)``,
``MacConfig.make``) still work.  See docs/hdl.md.
"""

from .mac import LATENCY, MacConfig, MacUnit, ProductStage
from .spec import HdlError, MacSpec
from .units import make_unit, product_stage
from .verilog import generate_verilog, verilog_of

__all__ = ["LATENCY", "HdlError", "MacSpec", "make_unit", "product_stage", "MacConfig", "MacUnit", "ProductStage",
           "generate_verilog", "verilog_of", "verify", "synthesize"]


def verify(*args, **kwargs):
    """Simulate a generated MAC and compare every beat with the golden model (see :func:`rf8sim.hdl.sim.verify`)."""
    from .sim import verify as _verify

    return _verify(*args, **kwargs)


def synthesize(*args, timing: bool = False, power=None, clock_ns: float = 10.0, beats: int = 2000, **kwargs):
    """Synthesise one configuration with yosys (see :func:`rf8sim.hdl.synth.synthesize`).

    ``timing=True`` adds OpenSTA's critical path / slack / fmax at ``clock_ns`` (``"timing"``,
    ``"area_x_delay_um2_ns"``); ``power`` = a stream (``"minilm"``, ``"random"``, ``"gg:BETA"``), a
    list of them or True (minilm and random) adds gate-level energy per stream (``"power"``:
    pJ/MAC, TOPS/W, TOPS/mm2, internal/switching/leakage W at ``clock_ns``); see
    :func:`rf8sim.hdl.power.ppa`.
    """
    from .synth import synthesize as _synthesize

    r = _synthesize(*args, **kwargs)
    if timing or power:
        from .power import ppa

        streams = () if not power else (("minilm", "random") if power is True else power)
        p = ppa(synth=r, streams=streams, clock_ns=clock_ns, beats=beats,
                use_cache=kwargs.get("use_cache", True))
        r = {**r, "timing": p["timing"], "area_x_delay_um2_ns": p["area_x_delay_um2_ns"]}
        if power:
            r["power"] = p["streams"]
    return r
