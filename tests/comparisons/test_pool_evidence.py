"""scripts/pool_evidence.py: offsets of groups of seeds from the DMFT, at the simulations' recording
times, and the pooled mean and standard error, on synthetic reports with known answers."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pool_evidence():
    spec = importlib.util.spec_from_file_location("pool_evidence", REPO / "scripts" / "pool_evidence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STEP = 0.04
T = np.concatenate([[0.0], np.geomspace(0.25, 60.0, 80)])     # a log grid, off the whole steps


def loss(t):
    """A smooth decreasing curve standing in for both the DMFT and the seeds' limit."""
    return 0.5 + 0.5 * np.exp(-t / 7.0) + 0.1 * np.exp(-t)


def report(seed_offsets, dim, first_seed=0, dmft_shift=0.0):
    """An evidence report whose seeds are the exact curve at the recording times plus a constant
    offset each (seed_offsets), and whose DMFT is the exact curve on the grid T."""
    t_sim = np.rint(T / STEP) * STEP
    curves = {str(first_seed + k): (loss(t_sim) + off).tolist() for k, off in enumerate(seed_offsets)}
    return {"t": T.tolist(), "time_step": STEP, "first_seed": first_seed, "simulator": "synthetic",
            "dmft_train": (loss(T) + dmft_shift).tolist(), "dmft_test": (loss(T) + dmft_shift).tolist(),
            "dmft_train_sem": [0.001] * T.size, "dmft_test_sem": [0.001] * T.size,
            "dims": {str(dim): {"seed_curves": {"train": curves, "test": curves}}}}


def test_offsets_are_measured_at_the_recording_times(pool_evidence):
    """Seeds equal to the DMFT's own curve at t_sim have zero offset (to the spline's error, ~1e-6
    here); compared at the grid times t instead, the half-step gap alone would show ~1e-3."""
    out = pool_evidence.pool([report([0.0, 0.0], 1000)], time_step=None)
    scale = loss(0.0)
    offset = out["groups"][0]["offset"]
    assert np.max(np.abs(offset[1:])) < 2e-5 / scale
    naive = np.max(np.abs(loss(np.rint(T / STEP) * STEP) - loss(T)))
    assert naive > 1e-3                           # the gap the comparison at t_sim removes


def test_pooled_mean_and_standard_error(pool_evidence):
    """Group offsets are their seeds' mean offsets; the pooled offset is the mean over all seeds;
    its standard error is sqrt(sum_g n_g s_g^2) / sum_g n_g."""
    a, b = [0.01, 0.03], [-0.02, 0.0, 0.02, 0.04]
    out = pool_evidence.pool([report(a, 2000), report(b, 8000, first_seed=2)], time_step=None)
    scale = loss(0.0)
    offsets = {g["label"].split(",")[0]: g for g in out["groups"] if g["field"] == "test"}
    assert_allclose(offsets["D=2000"]["offset"][5], np.mean(a) / scale, atol=2e-5)
    assert_allclose(offsets["D=8000"]["offset"][5], np.mean(b) / scale, atol=2e-5)
    assert_allclose(offsets["D=8000"]["sem"][5], np.std(b, ddof=1) / 2 / scale, rtol=1e-9)
    pooled = out["pooled"]["test"]
    assert pooled["seeds"] == 6
    assert_allclose(pooled["offset"][5], np.mean(a + b) / scale, atol=2e-5)
    expected_sem = np.sqrt(2 * np.var(a, ddof=1) + 4 * np.var(b, ddof=1)) / 6
    assert_allclose(pooled["sem"][5], expected_sem / scale, rtol=1e-9)
    combined = np.hypot(expected_sem, 0.001)
    assert_allclose(pooled["z"][5], np.mean(a + b) / combined, rtol=1e-3)


def test_reports_with_different_dmft_curves_are_refused(pool_evidence):
    with pytest.raises(SystemExit, match="different DMFT"):
        pool_evidence.pool([report([0.0, 0.0], 1000), report([0.0, 0.0], 2000, dmft_shift=0.01)], time_step=None)


def test_split_cuts_a_group_into_runs_of_seeds(pool_evidence):
    """--split 2 on four seeds: two runs with their own means; the pooled offset is unchanged."""
    offsets = [0.01, 0.03, -0.02, 0.0]
    whole = pool_evidence.pool([report(offsets, 4000)], time_step=None)
    runs = pool_evidence.pool([report(offsets, 4000)], time_step=None, split=2)
    scale = loss(0.0)
    labels = [g["label"] for g in runs["groups"] if g["field"] == "train"]
    assert labels == ["D=4000, synthetic, seeds 0–1", "D=4000, synthetic, seeds 2–3"]
    means = [g["offset"][5] for g in runs["groups"] if g["field"] == "train"]
    assert_allclose(means, [0.02 / scale, -0.01 / scale], atol=2e-5)
    assert_allclose(runs["pooled"]["train"]["offset"], whole["pooled"]["train"]["offset"], rtol=0, atol=1e-15)


def test_dmft_replaced_by_the_inverse_variance_mean_of_independent_solves(pool_evidence):
    """Two solves on another grid, constant offsets +0.004 and -0.002 from the exact curve with
    standard errors 0.001 and 0.002: weights 4:1, so the mean is the curve + 0.0028 (to the spline's
    error on the coarser grid) and its standard error 1/sqrt(1e6 + 2.5e5) = 8.94e-4."""
    grid = np.linspace(0.0, 60.0, 241)
    solves = [{"t": grid, "train": loss(grid) + shift, "test": loss(grid) + shift,
               "train_sem": np.full(grid.size, sem), "test_sem": np.full(grid.size, sem)}
              for shift, sem in ((0.004, 0.001), (-0.002, 0.002))]
    reports = [report([0.0], 1000), report([0.0], 2000, first_seed=1)]
    pool_evidence.replace_dmft(reports, solves)
    for r in reports:
        for field in ("train", "test"):
            assert_allclose(np.array(r[f"dmft_{field}"]) - loss(T), 0.0028, rtol=0, atol=2e-5)
            assert_allclose(r[f"dmft_{field}_sem"], 1 / np.sqrt(1e6 + 2.5e5), rtol=1e-12)


def test_many_solves_with_zero_error_at_t0_give_their_common_value(pool_evidence):
    """At t = 0 every solve is exact (standard error 0). With five solves the old weights 1/tiny
    overflowed their sum (inf/inf = NaN at t = 0); the mean there must be the common value with
    error 0, and elsewhere the inverse-variance mean of equal errors (the plain mean, SE 0.001/√5)."""
    grid = np.linspace(0.0, 60.0, 241)
    sem = np.full(grid.size, 0.001)
    sem[0] = 0.0
    solves = [{"t": grid, "train": loss(grid) + s * np.minimum(grid, 1.0), "test": loss(grid) + s * np.minimum(grid, 1.0),
               "train_sem": sem, "test_sem": sem} for s in (0.003, -0.001, 0.002, 0.0, -0.004)]
    reports = [report([0.0], 1000)]
    pool_evidence.replace_dmft(reports, solves)
    for field in ("train", "test"):
        curve, error = np.array(reports[0][f"dmft_{field}"]), np.array(reports[0][f"dmft_{field}_sem"])
        assert np.all(np.isfinite(curve)) and np.all(np.isfinite(error))
        assert_allclose(curve[0], loss(0.0), rtol=0, atol=1e-15)
        assert error[0] == 0.0
        assert_allclose(error[T >= 1.0], 0.001 / np.sqrt(5), rtol=1e-12)
        assert_allclose(curve[T >= 1.0], loss(T[T >= 1.0]), rtol=0, atol=2e-5)


def test_merged_report_holds_every_seed_once_with_their_mean_and_spread(pool_evidence):
    """Single-seed reports merge into one report whose mean and spread are those of the union, and
    which pools to the same offsets as the reports it came from (and, unlike them, to a standard
    error); a repeated seed or another time step is refused."""
    parts = [report([off], 8000, first_seed=seed) for seed, off in ((12, 0.01), (13, -0.02), (14, 0.04))]
    merged = pool_evidence.merge_reports(parts)
    entry = merged["dims"]["8000"]
    assert list(entry["seed_curves"]["test"]) == ["12", "13", "14"]
    assert merged["seeds"] == 3 and merged["first_seed"] == 12
    t_sim = np.rint(T / STEP) * STEP
    assert_allclose(entry["test"]["mean"], loss(t_sim) + 0.01, rtol=0, atol=1e-15)
    assert_allclose(entry["test"]["spread"], np.full(T.size, np.std([0.01, -0.02, 0.04], ddof=1)), rtol=1e-9)
    direct = pool_evidence.pool(parts, time_step=None)["pooled"]["test"]
    again = pool_evidence.pool([merged], time_step=None)["pooled"]["test"]
    assert_allclose(again["offset"], direct["offset"], rtol=0, atol=1e-15)
    # one seed per report has no spread of its own (NaN); merged, the seeds give theirs
    assert np.all(np.isnan(direct["sem"]))
    assert_allclose(again["sem"], np.std([0.01, -0.02, 0.04], ddof=1) / math.sqrt(3) / loss(0.0), rtol=1e-9)
    with pytest.raises(SystemExit, match="appear in two reports"):
        pool_evidence.merge_reports([parts[0], parts[0]])
    other = dict(parts[1], time_step=0.02)
    with pytest.raises(SystemExit, match="time_step"):
        pool_evidence.merge_reports([parts[0], other])
