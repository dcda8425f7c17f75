"""Atomic, non-clobbering output files.

Every file rf8sim writes for a user goes through :func:`write_text` / :func:`write_bytes`:
the data go to a temporary file in the destination folder, which then becomes the
destination in one step - ``os.link`` (exclusive: fails if the name exists, so two
concurrent writers cannot both "succeed") or, with ``overwrite=True``, ``os.replace``.
A reader never sees a half-written file and nothing the user saved is replaced
unless asked.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OutputError, OutputExistsError

__all__ = ["write_text", "write_bytes", "check_output_path", "check_output_dir", "safe_child"]


def check_output_path(path, overwrite: bool = False) -> Path:
    """Validate ``path`` as an output file before any long work starts; returns it as a Path."""
    p = Path(path)
    if p.is_symlink():
        raise OutputError(f"{p} is a symbolic link; give a plain file path (rf8sim does not write through links)")
    if p.is_dir():
        raise OutputError(f"{p} is a directory; give a file path")
    if p.exists() and not overwrite:
        raise OutputExistsError(f"{p} exists; pass --force to overwrite it or choose another path")
    parent = p.parent if str(p.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"{parent} is not a directory, so {p.name} cannot be written in it")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {p}: {probe} is not writable")
    return p


def check_output_dir(path, what: str = "--out") -> Path:
    """Validate ``path`` as an output folder (created if missing) before any long work starts."""
    p = Path(path)
    if p.is_symlink():
        raise OutputError(f"{what} {p} is a symbolic link; give a real folder (rf8sim does not write through links)")
    if p.exists() and not p.is_dir():
        raise OutputError(f"{what} {p} is a file; {what} takes a folder")
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{what} {p}: {probe} is a file, so the folder cannot be created")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {p}: {probe} is not writable")
    return p


def write_bytes(path, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; refuse an existing file unless ``overwrite``."""
    p = check_output_path(path, overwrite)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise OutputError(f"cannot write {p}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, p)
        else:
            try:
                os.link(tmp, p)  # exclusive: fails if p appeared meanwhile
            except FileExistsError:
                raise OutputExistsError(f"{p} exists (written by someone else meanwhile); "
                                        "pass --force to overwrite it") from None
            except OSError:  # file systems without hard links: fall back to O_EXCL create + replace
                with open(p, "xb"):
                    pass
                os.replace(tmp, p)
    except OutputError:  # already says what went wrong (it is an OSError too)
        raise
    except OSError as e:
        raise OutputError(f"cannot write {p}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def write_text(path, text: str, overwrite: bool = False) -> Path:
    return write_bytes(path, text.encode("utf-8"), overwrite)


def safe_child(root, name: str, what: str = "name") -> Path:
    """``root / name`` for a name taken from a config; refuse names that escape ``root``."""
    n = str(name)
    if not n or n in (".", "..") or "/" in n or "\\" in n or n.startswith(".") or "\x00" in n:
        raise OutputError(f"{what} {name!r} is not a plain file name (no '/', '..' or leading '.'); "
                          f"it becomes a folder under {root}")
    return Path(root) / n
