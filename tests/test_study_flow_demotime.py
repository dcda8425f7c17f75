"""The demo-time record: GNU time's report parsed (checked against a real `/usr/bin/time -v` run and
against the run's own clock), written with provenance, rendered; bad reports give clear errors."""

import json
import subprocess
import sys
import time

import pytest

from rf8sim.errors import InputError, InputFileError, RF8SimError
from rf8sim.study.flow import demotime
from tests.toolcheck import require


def _timed(tmp_path, *cmd):
    require(demotime.Path("/usr/bin/time").is_file(), "/usr/bin/time", "apt-get install -y time")
    out = tmp_path / "time.txt"
    t = time.perf_counter()
    rc = subprocess.run(["/usr/bin/time", "-v", "-o", str(out), *cmd]).returncode
    return out, rc, time.perf_counter() - t


def test_parse_real_report(tmp_path):
    out, rc, wall = _timed(tmp_path, sys.executable, "-c", "import time; time.sleep(1.2); raise SystemExit(3)")
    assert rc == 3
    r = demotime.parse_time_v(out.read_text())
    assert r["exit_status"] == 3
    assert r["command"].startswith(sys.executable) and "time.sleep(1.2)" in r["command"]
    # GNU time's wall clock has 0.01 s resolution; our own clock brackets it
    assert 1.2 <= r["wall_s"] <= wall + 0.02
    assert r["max_rss_mb"] > 1 and r["user_s"] >= 0 and r["system_s"] >= 0


@pytest.mark.parametrize("clock,seconds", [("0:01.25", 1.25), ("5:47.01", 347.01), ("1:02:03", 3723.0)])
def test_clock_formats(clock, seconds):
    assert demotime._clock(clock) == pytest.approx(seconds)


def test_record_and_render(tmp_path, monkeypatch):
    out, rc, _ = _timed(tmp_path, "true")
    rec = tmp_path / "demo-time.json"
    demotime.write_time_record(out, rec, cache_empty=True)
    data = json.loads(rec.read_text())
    assert data["kind"] == "rf8sim-timed-run" and data["within_budget"] is True
    assert data["provenance"]["machine"]["cores"] >= 1 and "commit" in data["provenance"]
    with pytest.raises(RF8SimError, match="exists"):
        demotime.write_time_record(out, rec)  # never overwritten unless asked
    monkeypatch.setattr(demotime, "DEMO_TIME_RECORD", rec)  # absolute: load_record's root / rec == rec
    text = demotime.render_demo_time()
    assert "measured with `/usr/bin/time -v`" in text and "within the 10-minute budget" in text
    assert "an empty cache" in text
    with pytest.raises(InputError, match="positive number of seconds"):
        demotime.write_time_record(out, tmp_path / "b.json", budget_s=0)
    data.update(wall_s=700.0, within_budget=False)
    rec.write_text(json.dumps(data))
    assert "**over** the 10-minute budget" in demotime.render_demo_time()


def test_bad_reports(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        demotime.write_time_record(tmp_path / "nope.txt", tmp_path / "r.json")
    bad = tmp_path / "bad.txt"
    bad.write_text("real 0m1.0s\nuser 0m0.5s\n")  # bash's `time`, not GNU time -v
    with pytest.raises(InputError, match="not a GNU `/usr/bin/time -v` report"):
        demotime.write_time_record(bad, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_cli_record_time(tmp_path):
    out, _, _ = _timed(tmp_path, "true")
    rec = tmp_path / "t.json"
    p = subprocess.run([sys.executable, "-m", "rf8sim.cli", "study", "record-time", str(out), "--record", str(rec),
                        "--cache-empty", "no"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert json.loads(rec.read_text())["cache_empty_at_start"] is False
    p = subprocess.run([sys.executable, "-m", "rf8sim.cli", "study", "record-time", str(tmp_path / "x.txt"),
                        "--record", str(tmp_path / "u.json")], capture_output=True, text=True)
    assert p.returncode == 2 and "no such file" in p.stderr and "Traceback" not in p.stderr
