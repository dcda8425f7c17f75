"""Atomic, non-clobbering output files.

Every file rf8sim writes for a user goes through :func:`write_text` / :func:`write_bytes`:
the data go to a temporary file in the destination folder, which then becomes the
destination in one step - ``os.link`` (exclusive: fails if the name exists, so two
concurrent writers cannot both "succeed") or, with ``overwrite=True``, ``os.replace``.
A reader never sees a half-written file and nothing the user saved is replaced
unless asked.

An existing path that is not a regular file is never replaced: a character device
or a FIFO the user named (``-o /dev/null``, a pipe to another program) is written
through in place; any other kind (block device, socket) is refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from ..errors import OutputError, OutputExistsError

__all__ = ["write_text", "write_bytes", "check_output_path", "check_output_dir", "claim_dir", "safe_child"]


def _special_kind(p: Path) -> str | None:
    """'through' for an existing character device or FIFO (written in place), a name for any other
    existing non-regular file (refused), None for a regular file or a missing path."""
    try:
        mode = os.stat(p).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "through"
    return "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file"


def check_output_path(path, overwrite: bool = False) -> Path:
    """Validate ``path`` as an output file before any long work starts; returns it as a Path."""
    raw = os.fspath(path)
    if isinstance(raw, str) and raw.endswith(("/", os.sep)) and raw.rstrip("/" + os.sep):
        raise OutputError(f"{raw} ends with '/', so it names a folder; give a file path "
                          f"(e.g. {raw.rstrip('/' + os.sep)}/out.json)")
    if isinstance(raw, str) and not raw:
        raise OutputError("the output path is empty; give a file path")
    p = Path(path)
    if p.is_symlink():
        raise OutputError(f"{p} is a symbolic link; give a plain file path (rf8sim does not write through links)")
    if p.is_dir():
        raise OutputError(f"{p} is a directory; give a file path")
    kind = _special_kind(p)
    if kind == "through":
        return p  # a character device or FIFO: written through in place, never replaced
    if kind is not None:
        raise OutputError(f"{p} is {kind}, not a regular file; rf8sim writes only regular files, "
                          "character devices (e.g. /dev/null) and FIFOs")
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


@contextlib.contextmanager
def claim_dir(path, what: str = "--out"):
    """Hold ``path`` (created if missing) for one run: an exclusive ``flock`` on the folder itself, so a
    second run into the same folder stops at once with a one-line error instead of both "succeeding"
    with one's files overwriting the other's.  The lock goes with the process (no stale lock files);
    the holder must keep the folder itself (empty it, never remove and recreate it)."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as e:
        raise OutputError(f"{what} {p}: cannot create or open the folder ({e.strerror or e})") from None
    try:
        try:
            import fcntl
        except ImportError:  # no flock on this platform: no claim
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise OutputError(f"{what} {p}: cannot lock the folder ({e.strerror or e})") from None
                raise OutputError(f"{what} {p} is in use by another rf8sim run writing there; wait for it "
                                  f"to finish or choose another {what}") from None
        yield p
    finally:
        os.close(fd)


def write_bytes(path, data: bytes, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; refuse an existing file unless ``overwrite``."""
    p = check_output_path(path, overwrite)
    if _special_kind(p) == "through":
        return _write_through(p, data)
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


def _write_through(p: Path, data: bytes) -> Path:
    """Write into an existing character device or FIFO in place (no temporary file, no replace)."""
    try:
        fd = os.open(p, os.O_WRONLY | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise OutputError(f"cannot write {p}: {e.strerror or e}") from None
    try:
        if not (stat.S_ISCHR(os.fstat(fd).st_mode) or stat.S_ISFIFO(os.fstat(fd).st_mode)):
            raise OutputError(f"{p} changed into a regular file meanwhile; not writing through it")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OutputError:
        raise
    except OSError as e:
        raise OutputError(f"cannot write {p}: {e.strerror or e}") from None
    finally:
        os.close(fd)
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
