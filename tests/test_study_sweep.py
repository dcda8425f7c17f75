"""The study config schema, the sweep engine and the Pareto/report code, on synthetic inputs."""

import csv
import itertools
import json

import numpy as np
import pytest

from rf8sim.study.common import report
from rf8sim.study.mnist1d.area_accuracy import accuracy_key, area_key, expand_grid, run_sweep
from rf8sim.study.common.config import ConfigError, config_from_dict, config_hash, load_config


# ---------------------------------------------------------------- Pareto

def _dominated_bruteforce(c, v):
    """The definition, O(n^2): i is dominated if some j is no worse in both and better in one."""
    n = len(c)
    out = np.zeros(n, bool)
    for i in range(n):
        if not (np.isfinite(c[i]) and np.isfinite(v[i])):
            out[i] = True
            continue
        for j in range(n):
            if j != i and np.isfinite(c[j]) and np.isfinite(v[j]) and c[j] <= c[i] and v[j] >= v[i] \
                    and (c[j] < c[i] or v[j] > v[i]):
                out[i] = True
                break
    return out


def test_pareto_matches_definition_on_random_sets():
    rng = np.random.default_rng(1)
    checked = 0
    for trial in range(300):
        n = int(rng.integers(1, 25))
        # small integer grids force many ties in cost and in value
        c = rng.integers(0, 6, n).astype(float)
        v = rng.integers(0, 6, n).astype(float)
        if trial % 3 == 0:
            c[rng.integers(0, n)] = np.nan
        front = report.pareto_front(c, v)
        np.testing.assert_array_equal(front, ~_dominated_bruteforce(c, v))
        checked += n
    assert checked > 2000


def test_pareto_small_example_and_errors():
    # (area, acc): B dominates A; C and D trade off; E duplicates D
    c = [3, 2, 1, 4, 4]
    v = [0.5, 0.6, 0.4, 0.9, 0.9]
    assert report.pareto_front(c, v).tolist() == [False, True, True, True, True]
    with pytest.raises(ValueError, match="1-D"):
        report.pareto_front([1, 2], [1])


def test_md_table_and_fmt():
    t = report.md_table([{"a": 1.23456789, "b": None, "c": True}], ["a", "b", "c"], ["A", "B", "C"])
    assert t.splitlines() == ["| A | B | C |", "|---|---|---|", "| 1.235 | - | yes |"]
    assert report.fmt_value(float("nan")) == "-"


# ---------------------------------------------------------------- config

def test_config_defaults_and_hash():
    cfg = config_from_dict({})
    assert cfg.sweep.formats == ("rf8", "e4m3", "int8")
    assert config_hash(cfg) == config_hash(config_from_dict({"study": {"seed": 0}}))
    assert config_hash(cfg) != config_hash(config_from_dict({"study": {"seed": 1}}))


@pytest.mark.parametrize("raw, msg", [
    ({"sweep": {"formats": ["rf9"]}}, "unknown format 'rf9'"),
    ({"sweep": {"granularities": ["row"]}}, "granularity 'row'"),
    ({"sweep": {"roundings": ["up"]}}, "rounding 'up'"),
    ({"sweep": {"acc": ["16-32"]}}, "acc:"),
    ({"sweep": {"lanes": [0]}}, "lanes"),
    ({"sweep": {"formatz": ["rf8"]}}, r"unknown key\(s\) \['formatz'\]"),
    ({"swep": {}}, r"unknown section\(s\)"),
    ({"model": {"arch": "cnn1d"}}, "no bit-exact inference path"),
    ({"model": {"epochs": "3"}}, "must be an integer"),
    ({"model": {"hidden": [0]}}, "positive integers"),
    ({"study": {"workers": 0}}, "workers"),
    ({"area": {"mode": "maybe"}}, "mode"),
    ({"flow": {"macs": ["rf8"]}}, "'AxW'"),
    ({"flow": {"macs": ["rf8xfp9"]}}, "unknown format 'fp9'"),
    ({"study": {"tolerance": 2.0}}, "tolerance"),
    ({"model": {"n_samples": 55}}, "multiple of 10"),
])
def test_config_errors_are_specific(raw, msg):
    with pytest.raises(ConfigError, match=msg):
        config_from_dict(raw)


def test_load_config_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[sweep\nformats=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_shipped_configs_load():
    from importlib import resources

    names = [p.name for p in resources.files("rf8sim.study").joinpath("configs").iterdir()
             if p.name.endswith(".toml")]
    assert {"tiny.toml", "small.toml", "full.toml"} <= set(names)
    for n in names:
        load_config(resources.files("rf8sim.study").joinpath("configs", n))


# ---------------------------------------------------------------- grid

def test_expand_grid_counts_and_dedup():
    cfg = config_from_dict({"sweep": {
        "formats": ["rf8", "e4m3", "rf8m8"], "roundings": ["nearest", "paper", "truncate"],
        "granularities": ["tensor", "block"], "acc": ["exact", "16:32"], "lanes": [1, 4]}})
    pts = expand_grid(cfg)
    from rf8sim.study.mnist1d.variants import rounding_supported

    # rf8: 3 roundings; e4m3: nearest only; rf8m8: the roundings the golden model runs on its
    # residual set (paper needs every +-2^-d term, so at least that one is refused)
    n_m8 = sum(rounding_supported("rf8m8", r)[0] for r in ("nearest", "paper", "truncate"))
    assert 1 <= n_m8 <= 2
    n_rnd = 3 + 1 + n_m8
    assert len(pts) == n_rnd * 2 * 2 * 2
    assert len({accuracy_key(p) for p in pts}) == n_rnd * 2 * 2
    assert len({area_key(p) for p in pts}) == 3 * 2 * 2
    ex = [p for p in pts if p["w_format"] == "rf8" and p["acc"] == "exact"][0]
    from rf8sim.golden import AccSpec

    assert (ex["acc_frac"], ex["acc_width"]) == (AccSpec.exact("rf8", "rf8", 1024).frac_bits,
                                                 AccSpec.exact("rf8", "rf8", 1024).width)
    # two labels that resolve to the same spec give one point
    cfg2 = config_from_dict({"sweep": {"formats": ["int8"], "granularities": ["tensor"], "acc": [
        "exact", f"{ex['acc_frac'] if False else AccSpec.exact('int8', 'int8', 1024).frac_bits}:"
                 f"{AccSpec.exact('int8', 'int8', 1024).width}"]}})
    assert len(expand_grid(cfg2)) == 1


# ---------------------------------------------------------------- sweep engine (synthetic jobs)

FAKE_AREA = {"rf8": 100.0, "e4m3": 150.0, "int8": 120.0}


def fake_accuracy(job):
    # deterministic function of the job: finer granularity and wider accumulators help
    base = {"rf8": 0.80, "e4m3": 0.82, "int8": 0.78}[job["w_format"]]
    base += {"tensor": 0.0, "channel": 0.01, "block": 0.02}[job["granularity"]]
    base += 0.001 * job["acc_frac"] / 32
    if job["rounding"] == "truncate":
        raise RuntimeError("synthetic failure")
    return {"accuracy": base}


def fake_area(job):
    return {"area_um2": FAKE_AREA[job["w_format"]] * job["lanes"] * (1 + job["acc_width"] / 100),
            "nand2_eq": None, "cells": 1}


@pytest.mark.parametrize("workers", [1, 2])
def test_run_sweep_synthetic(tmp_path, workers):
    cfg = config_from_dict({"study": {"name": "synthetic", "workers": workers},
                            "sweep": {"formats": ["rf8", "e4m3", "int8"],
                                      "roundings": ["nearest", "truncate"],
                                      "granularities": ["tensor", "channel", "block"],
                                      "acc": ["exact", "8:24"], "lanes": [1, 2]}})
    res = run_sweep(cfg, tmp_path / "out", accuracy_fn=fake_accuracy, area_fn=fake_area, progress=False)
    pts = expand_grid(cfg)
    assert len(res.rows) == len(pts) == (2 + 1 + 1) * 3 * 2 * 2
    for r in res.rows:
        want = fake_area(r)["area_um2"]
        assert r["area_um2"] == pytest.approx(want)
        if r["rounding"] == "truncate":
            assert r["accuracy"] is None and "synthetic failure" in r["error"]
        else:
            assert r["accuracy"] == pytest.approx(fake_accuracy(r)["accuracy"]) and r["error"] == ""
    # the engine's front equals the definition, per lanes value
    for lanes in (1, 2):
        sub = [r for r in res.rows if r["lanes"] == lanes]
        c = np.array([r["area_um2"] for r in sub])
        v = np.array([np.nan if r["accuracy"] is None else r["accuracy"] for r in sub])
        assert [r["pareto"] for r in sub] == (~_dominated_bruteforce(c, v)).tolist()
        assert any(r["pareto"] for r in sub)
    assert any("failed" in s for s in res.skipped)
    out = tmp_path / "out"
    with open(out / "results.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(res.rows)
    data = json.loads((out / "results.json").read_text())
    assert len(data["rows"]) == len(res.rows) and data["config"]["study"]["name"] == "synthetic"
    assert (out / "pareto_lanes1.png").stat().st_size > 1000
    assert "Pareto front" in (out / "report.md").read_text()
    # never overwrite without asking
    with pytest.raises(FileExistsError, match="--force"):
        run_sweep(cfg, out, accuracy_fn=fake_accuracy, area_fn=fake_area, progress=False)
    run_sweep(cfg, out, accuracy_fn=fake_accuracy, area_fn=fake_area, progress=False, overwrite=True)


def test_run_sweep_area_off_is_reported(tmp_path):
    cfg = config_from_dict({"sweep": {"formats": ["rf8"], "roundings": ["nearest"],
                                      "granularities": ["tensor"], "acc": ["exact"]},
                            "area": {"mode": "off"}, "study": {"workers": 1}})
    res = run_sweep(cfg, tmp_path, accuracy_fn=fake_accuracy, progress=False)
    assert res.skipped and "area: skipped" in res.skipped[0]
    assert res.rows[0]["area_um2"] is None and not res.rows[0]["pareto"]
    assert "area: skipped" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "accuracy.png").exists()


def test_plots_write_files(tmp_path):
    rng = np.random.default_rng(0)
    p = report.plot_histograms({"a": rng.laplace(size=2000), "b": rng.normal(size=2000)}, tmp_path / "h.png")
    assert p.stat().st_size > 1000
    p = report.plot_bits([{"label": "fp32", "bits": 32}, {"label": "rf8", "bits": 8}], tmp_path / "b.png")
    assert p.stat().st_size > 1000
    rows = [dict(format=f, rounding="nearest", granularity="tensor", shape=s, sqnr_db=20 + s)
            for f, s in itertools.product(["rf8", "e4m3"], [0.5, 1, 2])]
    assert report.plot_error_vs_shape(rows, tmp_path / "e.png").stat().st_size > 1000


def test_iso_accuracy_picks_cheapest_within_tolerance():
    from rf8sim.study.mnist1d.area_accuracy import iso_accuracy

    rows = [dict(lanes=1, group="a", label="a1", accuracy=0.90, area_um2=10.0),
            dict(lanes=1, group="a", label="a2", accuracy=0.895, area_um2=5.0),
            dict(lanes=1, group="a", label="a3", accuracy=0.70, area_um2=1.0),
            dict(lanes=1, group="b", label="b1", accuracy=0.50, area_um2=1.0),
            dict(lanes=1, group="b", label="b2", accuracy=None, area_um2=0.5)]
    got = {r["format"]: r for r in iso_accuracy(rows, "area_um2", 0.9, 0.01)}
    assert got["a"]["label"] == "a2" and got["a"]["area_um2"] == 5.0
    assert got["b"]["accuracy"] is None and "none" in got["b"]["label"]
    # without a reference the best point of the sweep is the reference
    assert iso_accuracy(rows, "area_um2", None, 0.0)[0]["label"] == "a1"
    assert iso_accuracy([], "area_um2", 0.9, 0.01) == []


def test_cluster_setting_is_validated(tmp_path):
    """[study] cluster takes local/auto/ray://HOST:PORT; the old joblib backend key is refused by name."""
    with pytest.raises(ConfigError, match="backend is gone.*cluster"):
        config_from_dict({"study": {"backend": "dask"}})
    with pytest.raises(ConfigError, match="cluster.*not valid"):
        config_from_dict({"study": {"cluster": "ray://nohostport"}})
    cfg = config_from_dict({"study": {"workers": 2, "cluster": "local"},
                            "sweep": {"formats": ["rf8", "int8"], "roundings": ["nearest"],
                                      "granularities": ["tensor"], "acc": ["exact"]}})
    res = run_sweep(cfg, tmp_path / "t", accuracy_fn=fake_accuracy, area_fn=fake_area, progress=False)
    assert len(res.rows) == 2 and all(r["accuracy"] for r in res.rows)


def test_expand_grid_mixed_formats():
    from rf8sim.golden import AccSpec

    cfg = config_from_dict({"sweep": {"formats": ["rf8", "e4m3"], "act_formats": ["int8", "rf8"],
                                      "roundings": ["nearest"], "granularities": ["tensor"], "acc": ["exact"]}})
    pts = expand_grid(cfg)
    assert sorted((p["w_format"], p["a_format"]) for p in pts) == [
        ("e4m3", "int8"), ("e4m3", "rf8"), ("rf8", "int8"), ("rf8", "rf8")]
    p = next(p for p in pts if (p["w_format"], p["a_format"]) == ("rf8", "int8"))
    spec = AccSpec.exact("int8", "rf8", 1024)
    assert (p["acc_frac"], p["acc_width"]) == (spec.frac_bits, spec.width)
