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
