"""RTL: the Amaranth MAC generator, Verilog export, cocotb verification and synthesis.

Public API::

    MacUnit(a_fmt, w_fmt, acc=None, lanes=1, out="fixed")         # amaranth.lib.wiring.Component
    generate_verilog(a_fmt, w_fmt, acc, lanes, out) -> (text, latency)
    verify(a_fmt, w_fmt, acc, lanes, out, n_random=..., simulator="icarus") -> summary dict
    synthesize(a_fmt, w_fmt, acc, lanes, out, stage="mac", liberty="default") -> dict

See docs/hdl.md.
"""

from .mac import LATENCY, HdlError, MacConfig, MacUnit, ProductStage
from .verilog import generate_verilog

__all__ = ["LATENCY", "HdlError", "MacConfig", "MacUnit", "ProductStage", "generate_verilog", "verify",
           "synthesize"]


def verify(*args, **kwargs):
    """Simulate a generated MAC and compare every beat with the golden model (see :func:`rf8sim.hdl.sim.verify`)."""
    from .sim import verify as _verify

    return _verify(*args, **kwargs)


def synthesize(*args, **kwargs):
    """Synthesise one configuration with yosys (see :func:`rf8sim.hdl.synth.synthesize`)."""
    from .synth import synthesize as _synthesize

    return _synthesize(*args, **kwargs)
