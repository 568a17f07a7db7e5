"""The phase diagram of grokking (comparisons.phase): the metric on closed-form curves, the grid
runner (resume after a kill, identity of a solve, labelled result) and a small real DMFT grid."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from comparisons.phase import (PhaseDiagram, crossing_time, slowest_first, grokking_point, phase_diagram, phase_points, plot_phase,
                               point_identity, point_name)
from comparisons.store import list_runs, read_run
from dmft.parameters import InvalidParameterError
from dmft.result import LearningCurves

REPO = Path(__file__).resolve().parents[2]


def curves(t, train, test, *, train_sem=None, test_sem=None, converged=True, params=None):
    """LearningCurves with the given losses (other order parameters zero)."""
    t = np.asarray(t, dtype=float)
    T = t.size
    test = np.asarray(test, dtype=float)
    return LearningCurves(kind="dmft", t=t, train_loss=train, test_loss=test, overlap=np.zeros((T, 1)),
                          cov=np.ones((T, 1, 1)), decomposition=np.stack([test, 0 * test, 0 * test], axis=1),
                          parameters=dict(params or {}), converged=converged, message="closed form",
                          train_loss_sem=train_sem, test_loss_sem=test_sem)


def closed_form(params):
    """Exponential decays with t_train = κ/ε · 0.5 ln 10, t_test = t_train (1 + κ/(αε)) (for tests)."""
    kappa, eps, alpha = params.get("scale", 1.0), params["epsilon"], params["alpha"]
    t = np.linspace(0.0, params.get("t_max", 100.0), 2001)
    tau_train = 0.5 * kappa / eps
    tau_test = tau_train * (1.0 + kappa / (alpha * eps))
    return curves(t, 2.0 * np.exp(-t / tau_train), 3.0 * np.exp(-t / tau_test),
                  train_sem=0.01 * np.exp(-t / tau_train), test_sem=0.01 * np.exp(-t / tau_test), params=params)


# --------------------------------------------------------------------------------------------
# metric
# --------------------------------------------------------------------------------------------
def test_crossing_interpolates_linearly_and_applies_the_delta_method():
    t = [0.0, 1.0, 2.0, 3.0, 4.0]
    loss = [1.0, 0.8, 0.3, 0.05, 0.01]
    c = crossing_time(t, loss, 0.1)
    assert c.time == pytest.approx(2.8) and not c.censored and c.sem is None
    c = crossing_time(t, loss, 0.1, sem=[0.0, 0.0, 0.02, 0.04, 0.0])
    # SEM at t* = 0.2*0.02 + 0.8*0.04 = 0.036; slope 0.25 per unit time
    assert c.sem == pytest.approx(0.036 / 0.25)
    # exactly at a grid value: the first strictly-below point is index 3, t* interpolates to 2.0
    assert crossing_time(t, loss, 0.3).time == pytest.approx(2.0)
    assert crossing_time(t, loss, 1e-3).censored and crossing_time(t, loss, 1e-3).time is None
    assert crossing_time(t, [np.nan] * 5, 0.5).censored


def test_known_crossing_times_on_exponential_curves():
    t = np.linspace(0.0, 50.0, 5001)
    c = curves(t, 2.0 * np.exp(-t / 2.0), 3.0 * np.exp(-t / 5.0))
    p = grokking_point(c, 0.1)
    assert p.t_train == pytest.approx(2.0 * math.log(10), rel=1e-4)
    assert p.t_test == pytest.approx(5.0 * math.log(10), rel=1e-4)
    assert p.amount == pytest.approx(3.0 * math.log(10), rel=1e-4)
    assert not p.censored and p.converged and p.amount_sem is None
    # relative threshold: the level scales with each curve's own initial value
    assert grokking_point(curves(t, 7.0 * np.exp(-t / 2.0), np.exp(-t / 5.0)), 0.1).amount == pytest.approx(
        p.amount, rel=1e-4)
    # test before train: amount 0 (never negative)
    assert grokking_point(curves(t, np.exp(-t / 5.0), np.exp(-t / 2.0)), 0.1).amount == 0.0
    assert grokking_point(c, 0.5).amount == pytest.approx(3.0 * math.log(2), rel=1e-4)
    with pytest.raises(ValueError, match="threshold"):
        grokking_point(c, 1.5)


def test_sem_by_the_delta_method():
    t = np.linspace(0.0, 50.0, 5001)
    train, test = 2.0 * np.exp(-t / 2.0), 3.0 * np.exp(-t / 5.0)
    c = curves(t, train, test, train_sem=np.full_like(t, 0.01), test_sem=np.full_like(t, 0.02))
    p = grokking_point(c, 0.1)
    # |dL/dt| at the crossing = level/τ
    d_train = 0.01 / (0.2 / 2.0)
    d_test = 0.02 / (0.3 / 5.0)
    assert p.amount_sem == pytest.approx(math.hypot(d_train, d_test), rel=1e-3)
    # SEM of only one curve: no error bar for the amount
    assert grokking_point(curves(t, train, test, train_sem=np.full_like(t, 0.01)), 0.1).amount_sem is None


def test_censoring_is_never_a_number():
    t = np.linspace(0.0, 10.0, 101)
    test_late = grokking_point(curves(t, np.exp(-t), np.exp(-t / 100.0)), 0.1)
    assert test_late.censored and test_late.test_censored and not test_late.train_censored
    assert test_late.t_test is None and test_late.amount is None and test_late.amount_sem is None
    assert test_late.t_train == pytest.approx(math.log(10), rel=1e-2) and test_late.t_end == 10.0
    never = grokking_point(curves(t, np.ones_like(t), np.ones_like(t), converged=False), 0.1)
    assert never.censored and never.train_censored and never.t_train is None and not never.converged
    assert set(never.as_dict()) == {"t_train", "t_test", "amount", "amount_sem", "censored", "unresolved",
                                    "converged"}
    assert not never.unresolved and not test_late.unresolved           # no standard error: no claim


def test_unresolved_when_the_missing_threshold_is_within_the_monte_carlo_error():
    """A test loss that ends at 0.15 (level 0.1) is "censored" when its standard error there is
    0.02 (2.5 s.e. above the level), "unresolved" when it is 0.03 (1.7 s.e.: the curves cannot say
    whether it crossed); a crossed threshold is never unresolved, whatever its error."""
    t = np.linspace(0.0, 10.0, 101)
    train = np.exp(-t)
    test = 1.0 - 0.085 * t                                       # 0.15 at t = 10
    for sem_end, unresolved in ((0.02, False), (0.03, True)):
        point = grokking_point(curves(t, train, test, train_sem=0 * t, test_sem=sem_end * t / 10), 0.1)
        assert point.censored and point.test_censored and point.amount is None
        assert point.unresolved is unresolved, sem_end
    crossed = grokking_point(curves(t, train, 1.0 - 0.095 * t, train_sem=0 * t, test_sem=0.5 + 0 * t), 0.1)
    assert not crossed.censored and not crossed.unresolved and crossed.amount_sem > 1


def test_unresolved_points_are_solved_to_t_max_and_the_map_says_so(tmp_path):
    """A point whose test loss stays within its error of the level is solved on every horizon up to
    t_max (it might still cross: stopping early at "unresolved" lost κ = 1.6, ε = 0.16 of Fig. 3e,
    which crosses at t = 54.5); the map, the JSON points and the picture call it unresolved, not a
    number and not a lower bound."""
    calls = []

    def noisy(params):
        calls.append(params["t_max"])
        t = np.linspace(0.0, params["t_max"], 401)
        test = 0.2 + 0.8 * np.exp(-t / 5.0)                      # levels off at 2 × the level ...
        sem = 0.08 * (1 - np.exp(-t / 5.0))                      # ... with 0.08 of error: 1.25 s.e.
        return curves(t, np.exp(-t), test, train_sem=0 * t, test_sem=sem, params=params)

    result = phase_diagram({"scale": [1.0], "epsilon": [0.1]}, {"alpha": 3.0, "t_max": 300.0},
                           out=tmp_path / "u.h5", workers=0, runner=noisy, horizon="adaptive", as_xarray=False)
    assert calls == [40.0, 80.0, 160.0, 300.0]
    assert result.censored[0, 0] and result.unresolved[0, 0] and np.isnan(result.amount[0, 0])
    (point,) = phase_points(result)
    assert point["unresolved"] is True and point["amount"] is None
    fig = plot_phase(result)
    assert any("unresolved" in text.get_text() for text in fig.axes[0].texts)


# --------------------------------------------------------------------------------------------
# grid runner
# --------------------------------------------------------------------------------------------
AXES = {"scale": [1.0, 2.0], "epsilon": [0.1, 0.25, 0.5]}
FIXED = {"alpha": 10.0, "t_max": 200.0}


def test_grid_result_is_labelled_and_ordered(tmp_path):
    ds = phase_diagram(AXES, FIXED, out=tmp_path / "p.h5", workers=0, runner=closed_form)
    assert tuple(ds.dims) == ("scale", "epsilon") or set(ds.dims) == {"scale", "epsilon"}
    assert list(ds["amount"].dims) == ["scale", "epsilon"]
    amount = ds["amount"].values
    assert amount.shape == (2, 3)
    expected = np.array([[k / e * 0.5 * k / (10 * e) * math.log(10) for e in AXES["epsilon"]] for k in AXES["scale"]])
    # t_test - t_train = ln(10 L0/L0 ...): amount = τ_test ln10 - τ_train ln10 with τ as in closed_form
    np.testing.assert_allclose(amount, expected, rtol=5e-3)
    assert np.all(np.isfinite(ds["amount_sem"].values)) and not ds["censored"].values.any()
    assert ds["converged"].values.all() and ds.attrs["computed"] == 6 and ds.attrs["reused"] == 0
    points = phase_points(ds)
    assert len(points) == 6 and points[1]["scale"] == 1.0 and points[1]["epsilon"] == 0.25
    assert points[1]["alpha"] == 10.0
    # the same without xarray's help
    plain = phase_diagram(AXES, FIXED, out=tmp_path / "p.h5", workers=0, runner=closed_form, as_xarray=False)
    assert isinstance(plain, PhaseDiagram) and plain.attrs["reused"] == 6
    np.testing.assert_array_equal(plain.amount, amount)
    assert phase_points(plain) == points
    fig = plot_phase(plain)
    fig.savefig(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0


def test_points_are_submitted_slowest_first_and_the_map_is_the_same(tmp_path):
    # larger κ, then smaller ε, then smaller α first (longer grokking delays, longer horizons);
    # the submission order changes nothing in the result
    order = slowest_first([(str(i), p) for i, p in enumerate([
        dict(scale=0.4, epsilon=0.04, alpha=5.5), dict(scale=2.4, epsilon=0.28, alpha=5.5),
        dict(scale=2.4, epsilon=0.04, alpha=5.5), dict(scale=2.4, epsilon=0.04, alpha=math.inf),
        dict(scale=2.4, epsilon=0.04, alpha=3.0)])])
    assert [name for name, _ in order] == ["4", "2", "3", "1", "0"]

    class Recorder:
        def __init__(self):
            self.submitted = []

        def submit(self, fn, params):
            from concurrent.futures import Future

            self.submitted.append((params["scale"], params["epsilon"]))
            future = Future()
            future.set_result(fn(params))
            return future

    recorder = Recorder()
    ds = phase_diagram(AXES, FIXED, out=tmp_path / "p.h5", executor=recorder, runner=closed_form)
    assert recorder.submitted == sorted(recorder.submitted, key=lambda kp: (-kp[0], kp[1]))
    inline = phase_diagram(AXES, FIXED, out=tmp_path / "q.h5", workers=0, runner=closed_form)
    np.testing.assert_array_equal(ds["amount"].values, inline["amount"].values)


def test_identity_covers_every_setting_and_sem_survives_the_store(tmp_path):
    base = {"alpha": 10.0, "epsilon": 0.1, "scale": 1.0}
    assert point_name(base) == point_name({**base, "samples": 32768})  # the default, spelled out
    assert point_name(base) != point_name({**base, "samples": 4096})
    assert point_name(base) != point_name({**base, "t_max": 41.0})
    assert point_name(base) == point_name({**base, "progress": True})
    assert "t_max" in point_identity(base) and "samples" in point_identity(base)
    out = tmp_path / "p.h5"
    first = phase_diagram(AXES, FIXED, out=out, workers=0, runner=closed_form)
    name = str(first["run"].values[0, 0])
    assert read_run(out, name).train_loss_sem.shape == read_run(out, name).t.shape
    # a new threshold reuses every solve; a new solver option recomputes every point
    calls = []

    def counting(params):
        calls.append(params)
        return closed_form(params)

    again = phase_diagram(AXES, FIXED, out=out, workers=0, runner=counting, threshold=0.2)
    assert not calls and again.attrs["reused"] == 6
    assert np.all(np.isfinite(again["amount_sem"].values)) and np.all(again["amount"].values < first["amount"].values)
    phase_diagram(AXES, FIXED, out=out, workers=0, runner=counting, samples=4096)
    assert len(calls) == 6 and all(c["samples"] == 4096 for c in calls)


def test_invalid_axes_name_the_parameter(tmp_path):
    out = tmp_path / "p.h5"
    with pytest.raises(ValueError, match="axes"):
        phase_diagram({"scale": [1.0]}, FIXED, out=out)
    with pytest.raises(ValueError, match="width"):
        phase_diagram({"scale": [1.0], "width": [2, 4]}, FIXED, out=out)
    with pytest.raises(ValueError, match="epsilon"):
        phase_diagram({"scale": [1.0], "epsilon": [0.1, -0.2]}, FIXED, out=out)
    with pytest.raises(ValueError, match="alpha"):
        phase_diagram({"scale": [1.0], "epsilon": [0.1]}, {"t_max": 5.0}, out=out)
    with pytest.raises(ValueError, match="scale"):
        phase_diagram({"scale": [1.0, 1.0], "epsilon": [0.1]}, FIXED, out=out)
    with pytest.raises(ValueError, match="threshold"):
        phase_diagram(AXES, FIXED, out=out, threshold=0.0)
    assert not out.exists()


def test_failed_point_loses_nothing_else(tmp_path):
    def flaky(params):
        if params["epsilon"] == 0.25 and params["scale"] == 2.0:
            raise RuntimeError("boom")
        return closed_form(params)

    ds = phase_diagram(AXES, FIXED, out=tmp_path / "p.h5", workers=0, runner=flaky)
    assert ds.attrs["computed"] == 5 and "boom" in ds.attrs["failed"]
    assert not ds["converged"].values[1, 1] and ds["censored"].values[1, 1] and ds["failed"].values[1, 1]
    assert ds["failed"].values.sum() == 1
    plot_phase(ds)
    assert len(list_runs(tmp_path / "p.h5")) == 5


_KILLED_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from comparisons.phase import phase_diagram
    from test_phase import closed_form

    def slow(params):
        with open({log!r}, "a") as f:
            f.write("call\\n")
        time.sleep(0.4)
        return closed_form(params)

    phase_diagram({axes!r}, {fixed!r}, out={out!r}, workers=0, runner=slow)
""")


def test_resume_after_a_kill_does_not_recompute_stored_points(tmp_path):
    out, log = tmp_path / "killed.h5", tmp_path / "calls.log"
    script = _KILLED_SCRIPT.format(tests=str(Path(__file__).parent), log=str(log), axes=AXES, fixed=FIXED,
                                   out=str(out))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=tmp_path)
    deadline = time.time() + 120
    stored = []
    try:
        while time.time() < deadline and proc.poll() is None:
            if out.exists():
                try:
                    stored = list_runs(out)
                except Exception:  # the file is being replaced this instant
                    stored = []
                if len(stored) >= 2:
                    break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the grid finished before it could be killed"
    stored = list_runs(out)
    assert 2 <= len(stored) < 6
    calls = []

    def counting(params):
        calls.append(params)
        return closed_form(params)

    ds = phase_diagram(AXES, FIXED, out=out, workers=0, runner=counting)
    assert len(calls) == 6 - len(stored) and ds.attrs["reused"] == len(stored)
    assert len(list_runs(out)) == 6 and not ds["censored"].values.any()
    fresh = phase_diagram(AXES, FIXED, out=tmp_path / "fresh.h5", workers=0, runner=closed_form)
    np.testing.assert_allclose(ds["amount"].values, fresh["amount"].values)


# --------------------------------------------------------------------------------------------
# a real DMFT grid
# --------------------------------------------------------------------------------------------
@pytest.fixture
def one_numba_thread():
    """One Numba thread (the shared 2-core machines are oversubscribed otherwise); restored after."""
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


def test_small_dmft_grid_groks_more_at_larger_scale_and_smaller_epsilon(tmp_path, one_numba_thread):
    """α = 10, N = 2, centred, m(0) = ±0.5, κ ∈ {1, 2}, ε ∈ {0.1, 0.25}, t ≤ 32 on a uniform grid.

    Measured (S = 4096, about 10 s): amounts ≈ [[3.8, 1.4], [7.2, 3.7]]; the escape time of theory.md §4.5
    grows with κ/ε, and so does the lag of the test loss behind the train loss. A solver with Monte
    Carlo error replicas runs without them here (they multiply the cost; the error bar's delta
    method is tested on closed-form curves above)."""
    from comparisons.phase import solver_accepts

    cheap = {"error_replicas": 0} if "error_replicas" in solver_accepts() else {}
    ds = phase_diagram({"scale": [1.0, 2.0], "epsilon": [0.1, 0.25]},
                       {"alpha": 10.0, "width": 2, "center": True, "init_overlap": [0.5, -0.5], "t_max": 32.0,
                        "dt": 0.5},
                       out=tmp_path / "dmft.h5", workers=0, samples=4096, tol=1e-3, max_iter=30, seed=0, **cheap)
    amount = ds["amount"].values
    assert not ds["censored"].values.any() and ds["converged"].values.all()
    assert amount[1, 0] > amount[0, 0] and amount[1, 1] > amount[0, 1]   # larger κ: more grokking
    assert amount[0, 0] > amount[0, 1] and amount[1, 0] > amount[1, 1]   # smaller ε: more grokking
    assert np.all(ds["t_test"].values >= ds["t_train"].values)


# --------------------------------------------------------------------------------------------
# simulated maps, agreement, fig3e
# --------------------------------------------------------------------------------------------
def test_seed_maps_and_their_agreement_with_a_theory_map(tmp_path):
    from comparisons.phase import map_agreement, phase_from_seeds

    axes = {"scale": [1.0, 2.0], "epsilon": [0.1, 0.25]}
    t = np.linspace(0.0, 100.0, 10001)

    def seed_curves(lag, jitter):
        return curves(t, np.exp(-t), np.exp(-t / (1.0 + lag + jitter)))

    lags = [[4.0, 1.0], [9.0, 3.0]]
    runs = [[[seed_curves(lags[i][j], d) for d in (-0.5, 0.5)] for j in range(2)] for i in range(2)]
    sim = phase_from_seeds(axes, runs, 0.1, as_xarray=False)
    assert sim["seeds"].tolist() == [[2, 2], [2, 2]]
    expected = np.array(lags) * math.log(10)
    np.testing.assert_allclose(sim.amount, expected, rtol=1e-3)
    np.testing.assert_allclose(sim["amount_sd"], math.sqrt(0.5) * math.log(10), rtol=1e-3)
    np.testing.assert_allclose(sim.amount_sem, 0.5 * math.log(10), rtol=1e-3)
    theory = phase_from_seeds(axes, [[[seed_curves(lags[i][j] + (1.0 if (i, j) == (1, 0) else 0.0), 0.0)]
                                      for j in range(2)] for i in range(2)], 0.1, as_xarray=False)
    agreement = map_agreement(theory, sim)
    assert agreement["cells"] == 4 and agreement["spearman"] == pytest.approx(1.0)
    assert agreement["max_diff_in_sd"] == pytest.approx(1.0 / math.sqrt(0.5), rel=1e-3)
    assert agreement["at"] == {"scale": 2.0, "epsilon": 0.1}
    # a censored seed censors its cell (its mean would be biased)
    runs[0][0][1] = curves(t, np.exp(-t), np.ones_like(t))
    assert phase_from_seeds(axes, runs, 0.1, as_xarray=True)["censored"].values[0, 0]


def test_fig3e_from_theory_at_reduced_settings(tmp_path, one_numba_thread):
    import json as _json

    from click.testing import CliRunner

    from grokking_cli.main import main

    args = ["figure", "fig3e", "--out-dir", str(tmp_path), "--json", "--set", "scales=1,2", "--set", "epsilons=0.1,0.25",
            "--set", "t_max=20", "--set", "seeds=2", "--set", "dim=20", "--set", "alpha=10", "--set", "width=2",
            "--set", "lr=1", "--set", "workers=0", "--solver", "samples=512", "--solver", "max_iter=5"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = _json.loads(result.output)[0]
    numbers = report["numbers"]
    assert {"simulation", "dmft", "agreement", "online_t_test", "escape_time_estimate"} <= set(numbers)
    assert len(numbers["dmft"]) == 4 and len(numbers["simulation"]) == 4
    assert {"spearman", "max_diff_in_sd", "cells"} <= set(numbers["agreement"])
    assert all(v is not None and v > 0 for row in numbers["escape_time_estimate"] for v in row)
    assert (tmp_path / "fig3e.png").stat().st_size > 0
    runs_before = list_runs(tmp_path / "fig3e.h5")
    assert CliRunner().invoke(main, args).exit_code == 0          # resumes: nothing new is stored
    assert list_runs(tmp_path / "fig3e.h5") == runs_before
    bad = CliRunner().invoke(main, ["figure", "fig3e", "--out-dir", str(tmp_path), "--set", "colour=red"])
    assert bad.exit_code == 2 and "colour" in bad.output


def _phase_maps_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("phase_maps", REPO / "scripts" / "phase_maps.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_phase_maps_script_theory_stages_and_report_only(tmp_path, one_numba_thread):
    """scripts/phase_maps.py at --tiny: the two theory maps, the α·gap law, and --report-only
    rebuilding the same report from the stores without computing anything."""
    script = _phase_maps_script()
    common = ["--tiny", "--workers", "0", "--out-dir", str(tmp_path)]
    for stage in ("theory8x8", "alpha_kappa"):
        assert script.main([stage, *common]) == 0
    first = (tmp_path / "phase.md").read_text()
    assert "α·gap law" in first and first.count("Not run yet") == 3
    rows = [line for line in first.splitlines() if line.startswith("| 0.5 | 10 |") or line.startswith("| 0.5 | 20 |")]
    assert len(rows) == 2        # the gap-law table has a row per large alpha
    before = {p.name: list_runs(p) for p in tmp_path.glob("*.h5")}
    (tmp_path / "phase.md").unlink()
    assert script.main(["report", *common]) == 0
    assert (tmp_path / "phase.md").read_text() == first
    assert {p.name: list_runs(p) for p in tmp_path.glob("*.h5")} == before


@pytest.mark.slow
def test_phase_maps_script_runs_every_stage_at_the_tiny_size(tmp_path, one_numba_thread):
    """scripts/phase_maps.py: each stage at --tiny writes its store, its picture and the report;
    --report-only rebuilds the report from the stores without computing."""
    script = _phase_maps_script()
    common = ["--tiny", "--workers", "0", "--out-dir", str(tmp_path)]
    for stage in script.STAGES:
        assert script.main([stage, *common]) == 0
        if stage == "fig3e":
            fig3e_runs = list_runs(tmp_path / "fig3e.h5")
    assert list_runs(tmp_path / "fig3e.h5") == fig3e_runs     # dim400 reuses the fig3e DMFT solves
    for name in ("fig3e.png", "phase_theory8x8.png", "phase_alpha_kappa.png", "phase_dim400.png", "phase.md"):
        assert (tmp_path / name).stat().st_size > 0, name
    first = (tmp_path / "phase.md").read_text()
    assert "Not run yet" not in first and "α·gap law" in first and "DMFT vs D=40" in first
    before = {p.name: list_runs(p) for p in tmp_path.glob("*.h5")}
    (tmp_path / "phase.md").unlink()
    assert script.main(["report", *common]) == 0
    assert (tmp_path / "phase.md").read_text() == first
    assert {p.name: list_runs(p) for p in tmp_path.glob("*.h5")} == before


@pytest.mark.parametrize("how", ["pool", "dask", "submitit"])
def test_executors_of_dmft_sweep_give_the_same_diagram(tmp_path, how):
    """Online points (milliseconds) through the local process pool, a Dask LocalCluster and a
    submitit executor (its in-process "debug" cluster): the same diagram as in this process."""
    axes, fixed = {"scale": [1.0, 2.0], "epsilon": [0.1, 0.25]}, {"alpha": math.inf, "t_max": 30.0, "center": True,
                                                                  "init_overlap": [0.5, -0.5]}
    reference = phase_diagram(axes, fixed, out=tmp_path / "ref.h5", workers=0)
    out = tmp_path / f"{how}.h5"
    if how == "pool":
        result = phase_diagram(axes, fixed, out=out, workers=2)
    elif how == "dask":
        distributed = pytest.importorskip("distributed")
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster:
            result = phase_diagram(axes, fixed, out=out, scheduler=cluster.scheduler_address)
    else:
        submitit = pytest.importorskip("submitit")
        executor = submitit.AutoExecutor(folder=str(tmp_path / "logs"), cluster="debug")
        result = phase_diagram(axes, fixed, out=out, executor=executor)
    assert result.attrs["computed"] == 4 and result.attrs["failed"] == "{}"
    np.testing.assert_array_equal(result["t_test"].values, reference["t_test"].values)
    assert np.all(result["amount"].values == 0.0)   # online: train = test (theory.md §4.4)


def test_adaptive_horizon_solves_each_point_only_as_far_as_its_crossings(tmp_path):
    """horizon="adaptive": horizons 40, 80, 160, 200 until both thresholds are crossed. The amounts
    equal those of full-horizon solves (same closed-form curves, only the grid spacing differs:
    rtol 5e-3 as above), each stored curve ends at the first horizon past its later crossing, and
    the threshold joins the identity (a new threshold recomputes)."""
    calls = []

    def counting(params):
        calls.append(params["t_max"])
        return closed_form(params)

    full = phase_diagram(AXES, FIXED, out=tmp_path / "full.h5", workers=0, runner=closed_form, as_xarray=False)
    adaptive = phase_diagram(AXES, FIXED, out=tmp_path / "a.h5", workers=0, runner=counting, horizon="adaptive",
                             as_xarray=False)
    np.testing.assert_allclose(adaptive.amount, full.amount, rtol=5e-3)
    assert adaptive.attrs["horizon"] == "adaptive"
    for i, kappa in enumerate(AXES["scale"]):
        for j, eps in enumerate(AXES["epsilon"]):
            later = full.t_test[i, j]
            expected = next(h for h in (40.0, 80.0, 160.0, 200.0) if h > later)
            assert adaptive.t_end[i, j] == expected, (kappa, eps, later)
    assert max(calls) <= 200.0 and len(calls) > 6
    calls.clear()
    phase_diagram(AXES, FIXED, out=tmp_path / "a.h5", workers=0, runner=counting, horizon="adaptive")
    assert not calls                                             # resumed
    phase_diagram(AXES, FIXED, out=tmp_path / "a.h5", workers=0, runner=counting, horizon="adaptive", threshold=0.2)
    assert calls                                                 # another threshold: other solves
    with pytest.raises(ValueError, match="horizon"):
        phase_diagram(AXES, FIXED, out=tmp_path / "a.h5", workers=0, runner=counting, horizon="sometimes")


def _solve_without_telling(params):
    """The package's solver behind a custom runner: the ladder does not pass error_bars_if."""
    import dmft

    return dmft.solve(**params)


def test_adaptive_horizon_runs_error_replicas_only_on_the_kept_horizon(monkeypatch):
    """With the package's solver, the horizons the ladder discards are solved without their error
    replicas (about half their cost) and the kept one with them; the kept curves and error bars are
    those of the plain ladder, number for number. α = 10, ε = 0.1, threshold 0.68: the test loss
    crosses between t = 0.5 and 0.75, so horizons 0.25 and 0.5 are discarded and 1.0 is kept."""
    import dmft
    from comparisons.phase import AdaptiveHorizon

    params = dict(alpha=10.0, epsilon=0.1, t_max=4.0, dt=0.05, samples=2048, error_replicas=2)
    real_solve, calls = dmft.solve, []

    def recording(**options):
        curves = real_solve(**options)
        calls.append((options["t_max"], "error_bars_if" in options, curves.test_loss_sem is not None))
        return curves

    monkeypatch.setattr(dmft, "solve", recording)
    kept = AdaptiveHorizon(threshold=0.68, first=0.25)(params)
    assert calls == [(0.25, True, False), (0.5, True, False), (1.0, True, True)]
    calls.clear()
    plain = AdaptiveHorizon(threshold=0.68, first=0.25, runner=_solve_without_telling)(params)
    assert calls == [(0.25, False, True), (0.5, False, True), (1.0, False, True)]
    for field in ("train_loss", "test_loss", "train_loss_sem", "test_loss_sem"):
        np.testing.assert_array_equal(getattr(kept, field), getattr(plain, field))
    assert not grokking_point(kept, 0.68).censored


def test_phase_diagram_refuses_an_unknown_grid_or_option_before_any_point(tmp_path):
    """grid='foo' or an option dmft.solve does not have is refused (InvalidParameterError naming
    it) before any point is solved, instead of every point failing one by one."""
    axes = {"alpha": [math.inf], "epsilon": [0.1, 0.2]}
    for extra, name in ((dict(grid="foo"), "grid must be one of"), (dict(bogus=1), "unknown option")):
        with pytest.raises(InvalidParameterError, match=name):
            phase_diagram(axes, {"t_max": 2.0}, workers=0, out=tmp_path / "p.h5", **extra)
    assert not (tmp_path / "p.h5").exists()


def test_points_report_the_unswept_scale_the_solves_used(tmp_path):
    """κ not given: every solve ran at dmft.solve's κ = 1, and the points say so (not None)."""
    result = phase_diagram({"epsilon": [0.1, 0.25], "alpha": [3.0, 10.0]}, {}, out=tmp_path / "p.h5",
                           runner=closed_form, workers=0, as_xarray=False)
    points = phase_points(result)
    assert [p["scale"] for p in points] == [1.0] * 4
    assert {read_run(tmp_path / "p.h5", p["run"]).parameters.get("scale", 1.0) for p in points} == {1.0}
    given = phase_diagram({"epsilon": [0.1, 0.25], "alpha": [3.0, 10.0]}, {}, out=tmp_path / "q.h5",
                          runner=closed_form, workers=0, as_xarray=False, scale=2.0)
    assert [p["scale"] for p in phase_points(given)] == [2.0] * 4
