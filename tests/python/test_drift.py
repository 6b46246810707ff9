"""Kiln's default drift monitor against an independent computation with numpy and SciPy.

The same reference and window histograms go through the real monitor component (`kiln monitor
analyze`, which runs plugins/monitors/default in wasmtime) and through numpy/SciPy. Statistics
over the binned data agree within 1e-6; against the raw (unbinned) samples, the binned KS
statistic can only be smaller, which is the binning error Kiln documents.
"""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

REPO = pathlib.Path(__file__).resolve().parents[2]
KILN = os.environ.get("KILN_BIN", str(REPO / "target" / "debug" / "kiln"))
EPS = 1e-4  # PSI's floor on proportions


def analyze(features, config=""):
    out = subprocess.run(
        [KILN, "monitor", "analyze", "-", "--output", "json", "--config", config],
        input=json.dumps({"features": features}), capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    return {r["name"]: r for r in json.loads(out.stdout)}


def quantile_edges(reference, bins):
    """Kiln's baseline bins: linear-interpolated quantiles, duplicates dropped."""
    return list(dict.fromkeys(np.quantile(reference, [i / bins for i in range(1, bins)])))


def histogram(values, edges):
    """Counts per bin; a value equal to an edge goes right, as in Kiln."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def psi(r, c):
    q, p = np.maximum(r / r.sum(), EPS), np.maximum(c / c.sum(), EPS)
    return float(np.sum((p - q) * np.log(p / q)))


def midpoints(edges, lo, hi):
    e = np.asarray(edges)
    return np.concatenate([[(min(lo, e[0]) + e[0]) / 2], (e[1:] + e[:-1]) / 2, [(e[-1] + max(hi, e[-1])) / 2]])


def numeric_case(reference, current, bins=10):
    edges = quantile_edges(reference, bins)
    r, c = histogram(reference, edges), histogram(current, edges)
    feature = {
        "name": "x", "kind": "numeric", "edges": edges,
        "reference_min": float(reference.min()), "reference_max": float(reference.max()),
        "reference": r.tolist(), "current": c.tolist(),
    }
    return feature, edges, r, c


def check_numeric(report, reference, current, edges, r, c):
    s = report["statistics"]
    assert s["count"] == c.sum()
    assert s["psi"] == pytest.approx(psi(r, c), abs=1e-6)
    assert s["js_distance"] == pytest.approx(jensenshannon(c / c.sum(), r / r.sum()), abs=1e-6)
    # KS over bins is the two-sample KS of the bin indices (ties and all).
    idx_r = np.repeat(np.arange(len(r)), r)
    idx_c = np.repeat(np.arange(len(c)), c)
    ks = stats.ks_2samp(idx_r, idx_c)
    assert s["ks_statistic"] == pytest.approx(ks.statistic, abs=1e-6)
    en = r.sum() * c.sum() / (r.sum() + c.sum())
    assert s["ks_pvalue"] == pytest.approx(stats.kstwobign.sf(np.sqrt(en) * ks.statistic), abs=1e-6)
    # The binning error: binned KS never exceeds KS on the raw values.
    assert s["ks_statistic"] <= stats.ks_2samp(reference, current).statistic + 1e-12
    x = midpoints(edges, reference.min(), reference.max())
    w = stats.wasserstein_distance(x, x, c, r)
    mean = np.average(x, weights=r)
    sd = np.sqrt(np.average((x - mean) ** 2, weights=r))
    assert s["wasserstein"] == pytest.approx(w / sd, abs=1e-6)


def test_numeric_statistics_match_scipy_for_a_shift_and_no_shift():
    rng = np.random.default_rng(7)
    reference = rng.normal(10.0, 2.0, 5000)
    for shift, expected in [(1.5, "alert"), (0.0, "ok")]:
        current = rng.normal(10.0 + shift, 2.0, 800)
        feature, edges, r, c = numeric_case(reference, current)
        report = analyze([feature])["x"]
        check_numeric(report, reference, current, edges, r, c)
        assert report["severity"] == expected, report


def test_empty_bins_use_the_documented_floor():
    rng = np.random.default_rng(11)
    reference = rng.uniform(0, 1, 1000)
    current = rng.uniform(0.95, 3.0, 300)  # every value in the last bins, most above the max
    feature, edges, r, c = numeric_case(reference, current, bins=20)
    assert (c == 0).sum() > 10
    report = analyze([feature])["x"]
    check_numeric(report, reference, current, edges, r, c)
    assert report["severity"] == "alert"


def test_categorical_chi_squared_matches_scipy():
    categories = ["red", "green", "blue", "__other__"]
    r = np.array([500, 300, 200, 0])
    for c, expected in [(np.array([90, 200, 60, 50]), "alert"), (np.array([251, 149, 100, 0]), "ok")]:
        feature = {"name": "colour", "kind": "categorical", "categories": categories,
                   "reference": r.tolist(), "current": c.tolist()}
        s = analyze([feature])["colour"]["statistics"]
        # Add-1/2 smoothing of the reference, so an unseen category has a finite expectation.
        expected_counts = c.sum() * (r + 0.5) / (r.sum() + 0.5 * len(r))
        chi = stats.chisquare(c, expected_counts)
        assert s["chi2_statistic"] == pytest.approx(chi.statistic, rel=1e-9, abs=1e-6)
        assert s["chi2_pvalue"] == pytest.approx(chi.pvalue, abs=1e-6)
        assert s["psi"] == pytest.approx(psi(r, c), abs=1e-6)
        assert s["js_distance"] == pytest.approx(jensenshannon(c / c.sum(), r / r.sum()), abs=1e-6)
        assert "ks_statistic" not in s
        assert analyze([feature])["colour"]["severity"] == expected


def test_few_values_are_insufficient_data_and_thresholds_come_from_config():
    rng = np.random.default_rng(3)
    reference = rng.normal(0, 1, 1000)
    feature, *_ = numeric_case(reference, rng.normal(3, 1, 20))
    assert analyze([feature])["x"]["severity"] == "insufficient_data"
    assert analyze([feature], "min_count=10")["x"]["severity"] == "alert"
    out = subprocess.run([KILN, "monitor", "analyze", "-", "--config", "colour=red"],
                         input=json.dumps({"features": [feature]}), capture_output=True, text=True)
    assert out.returncode != 0 and "unknown config 'colour'" in out.stderr
