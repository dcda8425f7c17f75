"""rf8sim.infra.fileio never replaces a device node or FIFO, and refuses output paths that name a folder.

Probe findings 1 and 8 of issue 22: ``-o /dev/full --force`` used to replace the system's device
with a regular file (a temporary file ``os.replace``d over any non-directory), and ``-o newdir/``
wrote a file named ``newdir``.  These tests use a FIFO in a temporary folder and a mocked stat for a
character device, never the real /dev nodes.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from rf8sim.infra import fileio
from rf8sim.errors import OutputError

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


def _drain(path: Path, sink: list) -> threading.Thread:
    def run():
        with open(path, "rb") as fh:
            sink.append(fh.read())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@needs_fifo
@pytest.mark.parametrize("force", [False, True])
def test_fifo_is_written_through_never_replaced(tmp_path, force):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list = []
    reader = _drain(fifo, got)
    fileio.write_text(fifo, "payload\n", overwrite=force)
    reader.join(10)
    assert got == [b"payload\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a regular file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary file left


def test_character_device_is_written_through(tmp_path, monkeypatch):
    """A character device (stat mocked over a regular stand-in file) is opened and
    written in place; the temporary-file-and-replace path is never taken."""
    target = tmp_path / "dev"
    target.write_bytes(b"")
    real_stat = os.stat

    def fake_stat(p, *a, **k):
        st = real_stat(p, *a, **k)
        if Path(p) == target:
            return os.stat_result((stat.S_IFCHR | 0o666,) + tuple(st)[1:])
        return st

    monkeypatch.setattr(fileio.os, "stat", fake_stat)
    monkeypatch.setattr(fileio.os, "fstat", lambda fd: fake_stat(target))

    def no_replace(*a, **k):
        raise AssertionError("os.replace called on a character device")

    monkeypatch.setattr(fileio.os, "replace", no_replace)
    monkeypatch.setattr(fileio.tempfile, "mkstemp", no_replace)
    fileio.write_bytes(target, b"abc", overwrite=True)
    assert target.read_bytes() == b"abc"


def test_other_special_files_refused(tmp_path, monkeypatch):
    target = tmp_path / "blk"
    target.write_bytes(b"keep")
    real_stat = os.stat

    def fake_stat(p, *a, **k):
        st = real_stat(p, *a, **k)
        return os.stat_result((stat.S_IFBLK | 0o660,) + tuple(st)[1:]) if Path(p) == target else st

    monkeypatch.setattr(fileio.os, "stat", fake_stat)
    with pytest.raises(OutputError, match="block device"):
        fileio.write_bytes(target, b"x", overwrite=True)
    assert target.read_bytes() == b"keep"


@pytest.mark.parametrize("name", ["newdir/", "a/b/"])
def test_trailing_slash_names_a_folder(tmp_path, name):
    with pytest.raises(OutputError, match="ends with '/'"):
        fileio.write_text(str(tmp_path) + "/" + name, "{}")
    assert not (tmp_path / name.rstrip("/")).exists()


def test_empty_path_refused():
    with pytest.raises(OutputError, match="empty"):
        fileio.check_output_path("")


def test_regular_file_still_replaced_with_force(tmp_path):
    f = tmp_path / "out.json"
    f.write_text("old")
    fileio.write_text(f, "new", overwrite=True)
    assert f.read_text() == "new"
