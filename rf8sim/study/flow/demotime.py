"""The measured wall time of ``make demo``: ``/usr/bin/time -v`` output turned into a record.

``make demo-record`` runs the demo (``rf8sim demo --record study/results/minilm-flow.json``) under
``/usr/bin/time -v -o build/demo-time.txt`` and then ``rf8sim study record-time build/demo-time.txt
--record study/results/demo-time.json``, which parses GNU time's report (wall clock, user and
system CPU, maximum resident set, exit status, the command timed) and writes it with the usual
provenance (machine, load, versions, commit, dirty flag).  Whether the cache root was empty when
the run started is part of the record: only a run from an empty cache measures a fresh clone.
The ``readme:demo-time`` block in README.md and docs/study.md is rendered from that record.
"""

from __future__ import annotations

from pathlib import Path

from ...infra.docgen import load_record
from ...errors import InputError, InputFileError

__all__ = ["DEMO_TIME_RECORD", "BUDGET_S", "parse_time_v", "write_time_record"]

#: the checked-in record of the last measured demo run (repo-relative)
DEMO_TIME_RECORD = Path("study") / "results" / "demo-time.json"
#: the demo's budget (issue 11): 10 minutes wall on 2 cores after the install step
BUDGET_S = 600.0


def _clock(text: str) -> float:
    """GNU time's ``[h:]mm:ss[.ss]`` as seconds."""
    parts = [float(p) for p in text.strip().split(":")]
    s = 0.0
    for p in parts:
        s = 60.0 * s + p
    return s


def parse_time_v(text: str, source: str = "the time report") -> dict:
    """The fields of a GNU ``/usr/bin/time -v`` report that the record keeps."""
    fields = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, _, val = line.strip().rpartition(": ")
        if key:
            fields[key.strip()] = val.strip()
    want = {"Command being timed": "command", "User time (seconds)": "user_s",
            "System time (seconds)": "system_s", "Elapsed (wall clock) time (h:mm:ss or m:ss)": "wall",
            "Maximum resident set size (kbytes)": "max_rss_kb", "Exit status": "exit_status"}
    missing = [k for k in want if k not in fields]
    if missing:
        raise InputError(f"{source} is not a GNU `/usr/bin/time -v` report: no {missing[0]!r} line "
                             f"(expected the output of `/usr/bin/time -v -o FILE COMMAND`)")
    try:
        return {"command": fields["Command being timed"].strip('"'),
                "wall_s": round(_clock(fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"]), 2),
                "user_s": float(fields["User time (seconds)"]),
                "system_s": float(fields["System time (seconds)"]),
                "max_rss_mb": round(int(fields["Maximum resident set size (kbytes)"]) / 1024, 1),
                "exit_status": int(fields["Exit status"])}
    except ValueError as e:
        raise InputError(f"{source}: a field of the GNU time report does not parse ({e})") from None


def write_time_record(time_file, record, *, what: str = "make demo", cache_empty: bool | None = None,
                      overwrite: bool = False, budget_s: float = BUDGET_S) -> Path:
    """Parse ``time_file`` and write the record (atomic; no overwrite unless asked)."""
    from ...infra.fileio import check_output_path
    from ...infra.records import write_record

    p = Path(time_file)
    if not p.is_file():
        raise InputFileError(f"{p}: no such file (the `/usr/bin/time -v -o {p} ...` report of the run)")
    check_output_path(record, overwrite)
    run = parse_time_v(p.read_text(errors="replace"), str(p))
    if not budget_s > 0:
        raise InputError(f"the time budget must be a positive number of seconds, got {budget_s!r}")
    payload = {"kind": "rf8sim-timed-run", "what": what, **run, "budget_s": float(budget_s),
               "cache_empty_at_start": cache_empty,
               "within_budget": run["exit_status"] == 0 and run["wall_s"] <= budget_s}
    return write_record(record, payload, overwrite=overwrite)


#: the checked-in record of a fresh-clone `.ci/run` (repo-relative)
CI_TIME_RECORD = Path("results") / "ci-time.json"


def load_time_record(rel=None) -> dict:
    rel = DEMO_TIME_RECORD if rel is None else rel
    how = "make demo-record" if rel == DEMO_TIME_RECORD else f"rf8sim study record-time TIME.txt --record {rel}"
    return load_record(rel, "rf8sim-timed-run", how)


def _mmss(s: float) -> str:
    return f"{int(s // 60)} min {s - 60 * int(s // 60):.0f} s"


def render_time(rel) -> str:
    rec = load_time_record(rel)
    pv, m = rec["provenance"], rec["provenance"]["machine"]
    cache = {True: "an empty cache (as in a fresh clone)", False: "a warm cache",
             None: "an unknown cache state"}[rec.get("cache_empty_at_start")]
    verdict = ("within" if rec["within_budget"] else "**over**") + f" the {rec['budget_s'] / 60:.0f}-minute budget"
    if rec["exit_status"] != 0:
        verdict = f"**failed** (exit status {rec['exit_status']})"
    return (f"`{rec['what']}` (`{rec['command']}`) measured with `/usr/bin/time -v`: **{_mmss(rec['wall_s'])} wall** "
            f"({rec['user_s'] + rec['system_s']:,.0f} CPU-s, {rec['max_rss_mb']:,.0f} MB max RSS, exit status "
            f"{rec['exit_status']}), {verdict}; {m['cpu']}, {m['cores']} cores, load average {m.get('load_1min')} "
            f"when the record was written, starting from {cache}; commit {str(pv['commit'])[:10]}"
            f"{' (dirty tree)' if pv.get('dirty') else ''}, record `{rel}`.\n")


def render_demo_time() -> str:
    return render_time(DEMO_TIME_RECORD)


def render_ci_time() -> str:
    return render_time(CI_TIME_RECORD)
