"""Records, docs and code carry no absolute paths of the machine that wrote them (issue 22, item 5).

A record's command must be one a user can rerun from the repo root after a fresh clone; a file it
names is relative to the repo or to the cache root.  ``rf8sim.infra.records.write_record`` rewrites such
paths (:func:`rf8sim.infra.records.portable`); this test scans every checked-in text file.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from rf8sim.infra import records

ROOT = Path(__file__).resolve().parents[1]
# spelled without a literal so that this file does not match itself
_PREFIXES = ["/" + p + "/" for p in ("work", "home", "tmp", "root", "Users", "private/var", "var/folders")]


def _machine_prefixes() -> list[str]:
    out = set(_PREFIXES)
    for p in (ROOT, Path.home(), Path(tempfile.gettempdir())):
        s = str(p)
        if s not in ("/", ""):
            out.add(s.rstrip("/") + "/")
    return sorted(out)


def _pattern() -> re.Pattern:
    # a prefix used as a path: not in the middle of another path or word (".../a/tmp/b" is not one)
    return re.compile(r"(?<![\w.~$/-])(" + "|".join(re.escape(p) for p in _machine_prefixes()) + r")")


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.SubprocessError):
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and not {".git", ".venv", "build", "node_modules"} & set(p.relative_to(ROOT).parts)]
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def test_no_checked_in_file_names_a_path_of_this_machine():
    pat = _pattern()
    me = Path(__file__).resolve()
    hits, scanned = [], 0
    for f in _tracked_files():
        if f.resolve() == me:
            continue
        try:
            text = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary
        scanned += 1
        for ln, line in enumerate(text.splitlines(), 1):
            m = pat.search(line)
            if m:
                hits.append(f"{f.relative_to(ROOT)}:{ln}: ...{line[max(0, m.start() - 40): m.end() + 40]}...")
    assert scanned > 100, f"only {scanned} text files scanned; is this a checkout?"
    assert hits == [], "absolute paths of the writing machine (use repo- or cache-relative paths):\n" + "\n".join(hits)


def test_the_scan_catches_a_machine_path():
    pat = _pattern()
    assert pat.search('"command": "rf8sim verify-layer --json ' + "/tm" + 'p/vrec2/x.json"')
    assert pat.search('"cache_file": "' + "/wor" + 'k/fresh-demo/build/cache/model/t.npz"')
    assert not pat.search("see docs/a/tmp/b and build/cache")


def test_write_record_writes_portable_paths(tmp_path, monkeypatch):
    from rf8sim.infra import cache

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() follows TMPDIR again
    croot = tmp_path / "somecache"
    monkeypatch.setattr(cache, "_ROOT", croot)
    src = records.SOURCE_ROOT or Path.cwd()
    payload = {"provenance": {"command": f"rf8sim synth --synth-root {src}/build/synth --json {tmp_path}/o.json "
                                         f"--cache-dir={croot}"},
               "cache_file": f"{croot}/model/tinylm-abc.npz", "root": str(src), "value": 0.125,
               "other": f"{src}2/not-mine", "list": [f"{src}/docs/x.md"]}
    out = records.write_record(tmp_path / "rec.json", payload)
    rec = json.loads(out.read_text())
    assert rec["provenance"]["command"] == ("rf8sim synth --synth-root build/synth --json $TMPDIR/o.json "
                                            "--cache-dir=$RF8SIM_CACHE")
    assert rec["cache_file"] == "$RF8SIM_CACHE/model/tinylm-abc.npz"
    assert rec["root"] == "." and rec["list"] == ["docs/x.md"] and rec["value"] == 0.125
    assert rec["other"] == f"{src}2/not-mine"  # only whole path components are rewritten
    assert str(tmp_path) not in out.read_text()


def test_tinylm_cache_file_is_cache_relative():
    src = (ROOT / "rf8sim" / "study" / "tinylm" / "study.py").read_text()
    assert '"cache_file": str(f)' not in src


@pytest.mark.skipif(os.name != "posix", reason="POSIX paths")
def test_provenance_of_a_real_run_is_portable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prov = records.portable(records.provenance(["rf8sim", "gg-fit", str(tmp_path / "m.safetensors")]))
    assert prov["command"] == "rf8sim gg-fit m.safetensors"
