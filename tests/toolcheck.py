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
    """Inside a test: skip (or, under RF8SIM_REQUIRE_TOOLS=1, fail) when ``available`` is falsy."""
    if available:
        return
    if REQUIRE_TOOLS:
        pytest.fail(_message(what, hint) + " and RF8SIM_REQUIRE_TOOLS=1: CI must run this leg", pytrace=False)
    pytest.skip(_message(what, hint))


def needs(available, what: str, hint: str):
    """A mark: the test runs when ``available``; otherwise it skips, or fails under CI."""
    if available:
        return pytest.mark.needs_tool.with_args(what, True, hint)
    return pytest.mark.needs_tool.with_args(what, False, hint)


def check_item(item) -> None:
    """Called from conftest's ``pytest_runtest_setup``."""
    for m in item.iter_markers("needs_tool"):
        what, ok, hint = m.args
        require(ok, what, hint)
