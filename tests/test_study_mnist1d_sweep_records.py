"""The checked-in MNIST-1D study records (`full` area-accuracy sweep, SQNR vs GG shape), the tables rendered
from them, and the `--record` options that write them."""

from __future__ import annotations

import re

import pytest

from rf8sim.infra import docgen
from rf8sim.cli import main
from rf8sim.study.mnist1d import sweep_records as S


def _table(md: str) -> list[list[str]]:
    """Body rows of the first markdown table in ``md``."""
    rows = [ln for ln in md.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in rows[2:]]


def _num(t: str) -> float:
    return float(t.replace(",", ""))


def test_checked_in_records_are_clean_and_complete():
    from rf8sim.study.mnist1d.area_accuracy import expand_grid
    from rf8sim.study.common.config import resolve_config

    rec = S.load_sweep_record()
    for r in (rec, S.load_variants_record()):
        pv = r["provenance"]
        assert pv["dirty"] is False and re.fullmatch(r"[0-9a-f]{40}", pv["commit"]), pv["command"]
    cfg = resolve_config("full")
    assert rec["config"]["sweep"] == cfg.to_dict()["sweep"] and rec["config"]["model"] == cfg.to_dict()["model"]
    assert len(rec["rows"]) == len(expand_grid(cfg)) == 162
    assert not any(r["error"] for r in rec["rows"]) and all(r["area_um2"] for r in rec["rows"])
    v = S.load_variants_record()
    assert len(v["rows"]) == len({(r["format"], r["rounding"], r["granularity"], r["shape"]) for r in v["rows"]}) == 135


def test_pareto_block_is_the_front_recomputed_by_brute_force():
    rec = S.load_sweep_record()
    pts = [r for r in rec["rows"] if r["lanes"] == 1]

    def dominated(p):
        return any(q["area_um2"] <= p["area_um2"] and q["accuracy"] >= p["accuracy"]
                   and (q["area_um2"] < p["area_um2"] or q["accuracy"] > p["accuracy"]) for q in pts)

    front = {(p["area_um2"], round(p["accuracy"], 3)) for p in pts if not dominated(p)}
    got = {(_num(r[2]), _num(r[1])) for r in _table(docgen.render("study:full-pareto"))}
    assert got == front and len(front) >= 1


def test_area_and_sqnr_blocks_cell_by_cell():
    rec = S.load_sweep_record()
    look = {(f"{r['a_format']}×{r['w_format']}", r["acc"], r["lanes"]): r["area_um2"] for r in rec["rows"]}
    cols = [("exact", 1), ("8:36", 1), ("4:30", 1), ("exact", 4), ("4:30", 4)]
    n = 0
    for row in _table(docgen.render("study:full-area")):
        for (acc, lanes), cell in zip(cols, row[2:]):
            assert _num(cell) == look[(row[0], acc, lanes)], (row[0], acc, lanes)
            n += 1
    assert n == 6 * 5
    v = S.load_variants_record()
    sq = {(r["format"], r["rounding"], r["granularity"], r["shape"]): r["sqnr_db"] for r in v["rows"]}
    text = docgen.render("study:gg-sqnr")
    head = [h for h in text.splitlines() if h.startswith("| GG β")][0]
    cfgs = [tuple(c.strip().split(" ")) for c in head.strip("|").split("|")[1:]]
    n = 0
    for row in _table(text[text.index("| GG β"):]):
        shape = float(row[0])
        for (fmt, rnd), cell in zip(cfgs, row[1:]):
            assert float(cell.split(" ")[0]) == round(sq[(fmt, rnd, "tensor", shape)], 2)
            n += 1
    assert n == 5 * 9


def test_record_options_refuse_to_overwrite_before_the_work(tmp_path, monkeypatch, capsys):
    rec = tmp_path / "v.json"
    args = ["study", "variants", "--shapes", "1", "--formats", "rf8", "--n", "1024", "--record", str(rec)]
    assert main(args) == 0 and S.load_variants_record(rec)["params"]["n"] == 1024
    first = rec.read_text()
    assert main(args) == 2 and "exists; pass --force" in capsys.readouterr().err
    assert rec.read_text() == first
    assert main(args + ["--force"]) == 0

    def boom(*a, **k):
        raise AssertionError("the sweep ran although its record could not be written")

    monkeypatch.setattr("rf8sim.study.mnist1d.area_accuracy.run_sweep", boom)
    assert main(["study", "area-accuracy", "--config", "tiny", "--out", str(tmp_path / "o"),
                 "--record", str(rec)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err


def test_missing_record_is_a_docgen_error(tmp_path):
    with pytest.raises(docgen.DocgenError, match="missing: run `rf8sim study area-accuracy --config full --record"):
        S.load_sweep_record(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text('{"kind": "other"}')
    with pytest.raises(docgen.DocgenError, match="not a rf8sim-variants-gg-shape record"):
        S.load_variants_record(tmp_path / "x.json")


def test_findings_block_recounted_from_the_rows():
    """The generalizing sentences of docs/study.md's `full` section (study:full-findings), recounted from the
    record's rows by a different route: the accuracy range and its verdict, the area order per accumulator."""
    rec = S.load_sweep_record()
    md = docgen.render("study:full-findings")
    ref, n = rec["model"]["float_acc_eval"], rec["config"]["model"]["eval_samples"]
    ok = [r["accuracy"] for r in rec["rows"]
          if (r["lanes"], r["rounding"]) == (1, "nearest") and r["overflow_frac"] == 0]
    assert len(ok) == 48
    assert f"{min(ok):.3f} to {max(ok):.3f} against float32's {ref:.3f}" in md
    verdict = "cannot rank" if max(ok) - min(ok) < 2 * (ref * (1 - ref) / n) ** 0.5 else "separates"
    assert f"this sweep {verdict} these formats" in md
    for acc in ("4:30", "exact"):
        area = {r["group"]: r["area_um2"] for r in rec["rows"] if (r["lanes"], r["rounding"], r["granularity"]) ==
                (1, "nearest", "tensor") and (r["acc"] == "exact" if acc == "exact" else r["acc"] == acc)}
        small, large = min(area, key=area.get), max(area, key=area.get)
        line = next(ln for ln in md.splitlines() if ln.startswith("- **MAC area**") and
                    (("4:30 accumulator" in ln) if acc == "4:30" else ("own exact" in ln)))
        assert f"smallest {small} ({area[small]:,.0f} µm²), largest {large} ({area[large]:,.0f} µm²)" in line
        assert f"rf8 is number {sorted(area.values()).index(area['rf8']) + 1} of {len(area)}" in line


def test_gg_wins_block_recounted_from_the_rows():
    """study:gg-wins: per format/rounding/granularity, the shapes where its SQNR is above / below RF8 nearest
    with tensor scales by more than 0.05 dB, recounted from the rows."""
    v = S.load_variants_record()
    sq = {(r["format"], r["rounding"], r["granularity"], r["shape"]): r["sqnr_db"] for r in v["rows"]}
    shapes = sorted({r["shape"] for r in v["rows"]})
    md = docgen.render("study:gg-wins")
    n = 0
    for ln in md.splitlines():
        m = re.match(r"- (\S+) (\S+), (\S+) scales: (.*) \(", ln)
        if not m:
            continue
        f, rnd, g, txt = m.groups()
        d = [sq[(f, rnd, g, s)] - sq[("rf8", "nearest", "tensor", s)] for s in shapes]
        hi = [s for s, x in zip(shapes, d) if x > 0.05]
        lo = [s for s, x in zip(shapes, d) if x < -0.05]
        for word, xs in (("higher", hi), ("lower", lo)):
            if not xs:
                assert f"{word} at" not in txt, ln
            elif len(xs) == len(shapes):
                assert f"{word} at every shape" in txt, ln
            else:
                assert f"{word} at β = " + ", ".join(f"{s:g}" for s in xs) in txt, ln
        n += 1
    assert n == 10  # 8 format/rounding rows + int8's channel and block rows
