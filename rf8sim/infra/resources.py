"""Where rf8sim's runtime files are: a source checkout, or the installed package's data.

The testbenches (``hdl/tb``), synthesis scripts (``hdl/synth``), checked-in Verilog
(``hdl/verilog``) and golden vectors (``golden/``) live at the top of the repository.
A non-editable ``pip install .`` ships copies of them inside the package as
``rf8sim/_data/<folder>`` (copied at build time by ``setup.py``, nothing is moved).
Every module finds them through :func:`data_dir` instead of walking up from its own file.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import RF8SimError

__all__ = ["source_root", "data_dir", "data_file", "build_dir", "DATA_FOLDERS", "ResourceError"]

_PKG = Path(__file__).resolve().parents[1]

#: Repository folders shipped as package data (relative to the repository root).
DATA_FOLDERS = ("hdl/tb", "hdl/synth", "hdl/verilog", "hdl/tech", "golden")


class ResourceError(RF8SimError, FileNotFoundError):
    """A runtime file of rf8sim is missing from both the checkout and the installed package."""


def source_root() -> Path | None:
    """The repository root when rf8sim runs from a source checkout (or an editable install), else None."""
    root = _PKG.parent
    if (root / "pyproject.toml").is_file() and (root / "rf8sim" / "__init__.py").is_file():
        return root
    return None


def data_dir(folder: str) -> Path:
    """The directory ``folder`` (one of :data:`DATA_FOLDERS`): the checkout's, else the installed copy."""
    if folder not in DATA_FOLDERS:
        raise ResourceError(f"{folder!r} is not one of rf8sim's data folders ({', '.join(DATA_FOLDERS)})")
    root = source_root()
    if root is not None and (root / folder).is_dir():
        return root / folder
    installed = _PKG / "_data" / folder
    if installed.is_dir():
        return installed
    raise ResourceError(f"{folder}/ not found in the checkout ({root}) nor in the installed package ({installed}); "
                        "reinstall rf8sim (`pip install .` ships it as package data)")


def data_file(folder: str, name: str) -> Path:
    """``data_dir(folder) / name``, which must exist."""
    p = data_dir(folder) / name
    if not p.exists():
        raise ResourceError(f"{p} not found (rf8sim's {folder}/ is incomplete; reinstall rf8sim)")
    return p


def build_dir(*parts: str) -> Path:
    """Default scratch/cache folder: ``build/`` of the checkout, else ``./build`` (installed package)."""
    root = source_root()
    return (root / "build" if root is not None else Path.cwd() / "build").joinpath(*parts)
