"""RTL: the Amaranth MAC generator, Verilog export, cocotb verification and synthesis."""

from .mac import LATENCY, HdlError, MacConfig, MacUnit, ProductStage

__all__ = ["LATENCY", "HdlError", "MacConfig", "MacUnit", "ProductStage"]
