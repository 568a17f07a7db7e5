"""Sweeps through concurrent.futures-style executors, resume, the Dask and submitit paths, the
``dmft sweep`` / ``dmft merge`` commands and a cheap figure path.

Theory points are online-ODE solves (milliseconds), so these tests exercise the machinery; the
stored curves are checked against a direct ``dmft.solve`` call (bit-identical: same code, same
inputs, deterministic integrator)."""

from __future__ import annotations

import concurrent.futures as cf
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from numpy.testing import assert_allclose, assert_array_equal

import dmft
from comparisons import list_runs, load, read_run, sweep
from comparisons.sweeps import expand_grid, make_executor, run_name, run_point
from grokking_cli.main import main

GRID = {"alpha": [math.inf], "epsilon": [0.1, 0.25], "scale": [1.0, 2.0]}
FIXED = {"t_max": 3.0, "dt": 0.5}


def test_grid_expansion_and_names_are_deterministic():
    points = expand_grid(GRID, FIXED)
    assert len(points) == 4 and points[1] == {"t_max": 3.0, "dt": 0.5, "alpha": math.inf, "epsilon": 0.1, "scale": 2.0}
    names = [run_name("theory", p) for p in points]
    assert names[0] == "theory__alpha=inf__dt=0.5__epsilon=0.1__scale=1__t_max=3"
    assert len(set(names)) == 4
    with pytest.raises(ValueError, match="epsilon"):
        expand_grid({"epsilon": []})
    with pytest.raises(ValueError, match="kind"):
        sweep(GRID, "experiment", "unused.h5")


def test_thread_pool_sweep_stores_each_point_and_resumes(tmp_path):
    out = tmp_path / "sweep.h5"
    with cf.ThreadPoolExecutor(2) as pool:
        first = sweep(GRID, "theory", out, pool, fixed=FIXED, progress=False)
    assert len(first.computed) == 4 and not first.skipped and not first.failed
    for point, name in zip(expand_grid(GRID, FIXED), first.names):
        assert_array_equal(read_run(out, name).test_loss, dmft.solve(**point).test_loss)
    # resume: nothing is recomputed; a runner that fails would show up in `failed`
    def must_not_run(kind, params):
        raise AssertionError("recomputed a complete point")

    with cf.ThreadPoolExecutor(1) as pool:
        again = sweep(GRID, "theory", out, pool, fixed=FIXED, progress=False, runner=must_not_run)
    assert again.skipped == first.names and not again.computed and not again.failed
    # an extended grid computes only the new points; a failing point loses nothing else
    bigger = dict(GRID, epsilon=[0.1, 0.25, -0.5])
    with cf.ThreadPoolExecutor(2) as pool:
        third = sweep([*expand_grid(bigger, FIXED), {"alpha": 0.0, "epsilon": 0.1}], "theory", out, pool,
                      progress=False)
    assert set(third.skipped) == set(first.names)
    assert len(third.computed) == 2 and len(third.failed) == 1
    assert "alpha" in next(iter(third.failed.values()))
    assert len(list_runs(out)) == 6


def test_default_process_pool(tmp_path):
    out = tmp_path / "pool.h5"
    result = sweep({"alpha": [math.inf], "epsilon": [0.1, 0.2]}, "theory", out, fixed=FIXED, workers=2,
                   progress=False)
    assert sorted(result.computed) == sorted(result.names) and len(list_runs(out)) == 2


def test_dask_local_cluster_executor(tmp_path):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "dask.h5"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        # through the CLI path: --scheduler ADDRESS
        executor, close = make_executor(scheduler=cluster.scheduler_address)
        try:
            result = sweep(GRID, "theory", out, executor, fixed=FIXED, progress=False)
        finally:
            close()
    assert sorted(result.computed) == sorted(result.names)
    runs = load(out)
    point = expand_grid(GRID, FIXED)[3]
    assert_array_equal(runs[run_name("theory", point)].overlap, dmft.solve(**point).overlap)


def test_submitit_debug_executor_and_clear_slurm_error(tmp_path):
    submitit = pytest.importorskip("submitit")
    out = tmp_path / "submitit.h5"
    executor = submitit.AutoExecutor(folder=str(tmp_path / "logs"), cluster="debug")
    result = sweep({"alpha": [math.inf], "epsilon": [0.1]}, "theory", out, executor, fixed=FIXED, progress=False)
    assert result.computed == result.names
    with pytest.raises(RuntimeError, match="no Slurm cluster"):
        make_executor(slurm=True, slurm_folder=tmp_path / "logs")
    res = CliRunner().invoke(main, ["sweep", "--kind", "theory", "-p", "epsilon=0.1", "--set", "alpha=inf",
                                    "--out", str(tmp_path / "s.h5"), "--slurm"])
    assert res.exit_code == 1 and "Slurm" in res.output, res.output  # one line, no traceback


def test_sweep_and_merge_commands(tmp_path):
    runner = CliRunner()
    a, b, merged = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "all.h5"
    common = ["sweep", "--kind", "theory", "--set", "alpha=inf", "--set", "t_max=2", "--set", "init_overlap=0.2,-0.2",
              "--workers", "1", "--no-progress", "--json"]
    res = runner.invoke(main, common + ["-p", "epsilon=0.1,0.2", "--out", str(a)])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.output)["computed"]) == 2
    res = runner.invoke(main, common + ["-p", "epsilon=0.3", "--out", str(b)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, common + ["-p", "epsilon=0.1,0.2", "--out", str(a)])
    assert json.loads(res.output)["skipped"] and not json.loads(res.output)["computed"]
    res = runner.invoke(main, ["merge", str(merged), str(a), str(b)])
    assert res.exit_code == 0, res.output
    assert len(list_runs(merged)) == 3
    run = read_run(merged, "theory__alpha=inf__epsilon=0.3__init_overlap=0.2,-0.2__t_max=2")
    assert_array_equal(run.overlap[0], [0.2, -0.2])
    (tmp_path / "junk.h5").write_bytes(b"junk")
    res = runner.invoke(main, ["merge", str(merged), str(tmp_path / "junk.h5")])
    assert res.exit_code == 1 and "junk.h5" in res.output and "Traceback" not in res.output  # I/O: exit 1
    res = runner.invoke(main, ["sweep", "--kind", "theory", "-p", "epsilon", "--out", str(a)])
    assert res.exit_code == 2 and "--param" in res.output and "NAME=VALUE" in res.output


def test_run_point_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        run_point("lazy", {})


def test_figure_command_rejects_unknown_name_and_figures_are_registered():
    from comparisons.figures import FIGURES

    assert set(FIGURES) == {"fig1", "fig3a", "fig3b", "fig3e", "fig4", "fig11"}
    res = CliRunner().invoke(main, ["figure", "fig99"])
    assert res.exit_code == 2 and "fig3e" in res.output


def test_mean_curves_averages_theory_solutions_pointwise():
    """fig4/fig11 average DMFT Monte Carlo seeds: the mean of two known curves, field by field."""
    from comparisons.figures import mean_curves
    from dmft.result import LearningCurves

    t = np.array([0.0, 1.0, 2.0])

    def solution(v, seed, converged=True):
        return LearningCurves(kind="dmft", t=t, train_loss=v * np.ones(3), test_loss=v * np.arange(1.0, 4.0),
                              overlap=v * np.ones((3, 2)), cov=v * np.ones((3, 2, 2)),
                              decomposition=v * np.ones((3, 3)), parameters={}, settings={"seed": seed},
                              converged=converged, residual=v * 1e-5)

    mean = mean_curves([solution(1.0, 0), solution(3.0, 1, converged=False)])
    assert mean.kind == "dmft" and not mean.converged and mean.residual == pytest.approx(3e-5, rel=1e-15)
    assert_array_equal(mean.test_loss, [2.0, 4.0, 6.0])
    for field in ("train_loss", "overlap", "cov", "decomposition"):
        assert np.all(getattr(mean, field) == 2.0), field
    assert mean.settings["mc_seeds"] == [0, 1]
    with pytest.raises(ValueError, match="one time grid"):
        mean_curves([solution(1.0, 0), dmft.solve(math.inf, 0.1, t_max=2, dt=1.0, init_overlap=[0.1, -0.1])])
    with pytest.raises(ValueError, match="at least one"):
        mean_curves([])


def test_overlay_draws_mean_and_band_from_the_data(tmp_path):
    """The plotted mean markers are the seed mean (checked on the Line2D data)."""
    from comparisons.overlay import plot_overlay
    from dmft.result import LearningCurves

    t = np.array([0.0, 0.5, 1.0, 2.0])
    def run(v):
        return LearningCurves(kind="simulation", t=t, train_loss=v * np.ones(4), test_loss=2 * v * np.ones(4),
                              overlap=np.zeros((4, 1)), cov=np.ones((4, 1, 1)), decomposition=np.ones((4, 3)),
                              parameters={})
    fig = plot_overlay(dmft.solve(math.inf, 0.1, t_max=2, width=1, init_overlap=[0.1]), [run(1.0), run(3.0)])
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    mean_test = lines["simulation test loss (mean of 2)"]
    assert_array_equal(mean_test.get_xdata(), t[1:])
    assert_array_equal(mean_test.get_ydata(), np.full(3, 4.0))
    # the ±1 sd band over the seeds (sd of 2 and 6 is 2·√2) is in the legend with its meaning
    bands = {c.get_label(): c for c in fig.axes[0].collections}
    band = bands["simulation test loss: ±1 sd over seeds"].get_paths()[0].vertices[:, 1]
    assert_allclose([band.min(), band.max()], [4 - 2 * math.sqrt(2), 4 + 2 * math.sqrt(2)], rtol=1e-12)
    # a window of two decades or less: plain tick labels (0.5, 1, 2), no overlapping 5×10⁻¹ forms
    fig.canvas.draw()
    labels = [tick.get_text() for tick in fig.axes[0].get_xticklabels(minor=True) + fig.axes[0].get_xticklabels()]
    assert "0.5" in labels and "1" in labels and not any("10^" in text or "times" in text for text in labels)


def test_sweep_kind_simulation_through_the_cli(tmp_path):
    """A simulation grid: every point stored under its parameters, equal to a direct run, resumable."""
    from empirical import train_committee

    out = tmp_path / "sim.h5"
    args = ["sweep", "--kind", "simulation", "-p", "epsilon=0.1,0.3", "--set", "alpha=2", "--set", "dim=10",
            "--set", "width=2", "--set", "scale=1", "--set", "steps=4", "--set", "record-points=3",
            "--set", "device=cpu", "--workers", "1", "--out", str(out), "--no-progress", "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert len(summary["computed"]) == 2 and not summary["failed"] and not summary["unconverged"]
    for name in summary["computed"]:
        stored = read_run(out, name)
        assert stored.kind == "simulation" and stored.converged
        eps = stored.parameters["epsilon"]
        direct = train_committee(alpha=2, dim=10, width=2, scale=1, epsilon=eps, steps=4, record_points=3,
                                 device="cpu")
        assert_array_equal(stored.test_loss, direct.test_loss)
    again = json.loads(CliRunner().invoke(main, args).output)
    assert sorted(again["skipped"]) == sorted(summary["computed"]) and not again["computed"]


def test_sweep_over_the_family_needs_no_epsilon_and_refused_points_exit_2(tmp_path):
    """Students of the general family take no epsilon in a sweep, as in `dmft solve` (each point
    equals a direct solve); points whose parameters are all refused exit with code 2, name the
    parameter, and leave no plot behind (nothing was stored)."""
    out = tmp_path / "family.h5"
    fixed = ["--set", "alpha=inf", "--set", "activation=erf", "--set", "target=committee", "--set", "teacher_width=2",
             "--set", "t_max=2"]
    res = CliRunner().invoke(main, ["sweep", "--kind", "theory", "-p", "teacher_scale=1,2", *fixed, "--workers", "1",
                                    "--out", str(out), "--no-progress", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert len(summary["computed"]) == 2 and not summary["failed"] and not summary["invalid"]
    for name in summary["computed"]:
        stored = read_run(out, name)
        direct = dmft.solve(math.inf, activation="erf", target="committee", teacher_width=2,
                            teacher_scale=stored.parameters["teacher_scale"], t_max=2.0)
        assert_array_equal(stored.test_loss, direct.test_loss)
    refused = CliRunner().invoke(main, ["sweep", "--kind", "theory", "-p", "epsilon=0.1,0.2", *fixed, "--workers", "1",
                                        "--out", str(tmp_path / "refused.h5"), "--no-progress",
                                        "--plot", str(tmp_path / "refused.png")])
    assert refused.exit_code == 2, refused.output
    assert "epsilon applies to the quadratic activation only" in refused.output and "Traceback" not in refused.output
    assert "no plot" in refused.output and not (tmp_path / "refused.png").exists()


def test_sweep_refuses_repeated_and_missing_parameters_before_any_point():
    """An axis given twice (-p alpha=... -p alpha=...), a name both swept and fixed, or a required
    argument of the point's function left out (alpha of dmft.solve; width of train_committee)
    exits 2 naming it; nothing runs."""
    cases = (
        (["--kind", "theory", "-p", "alpha=inf", "-p", "alpha=3", "--set", "epsilon=0.1"], "alpha is given twice"),
        (["--kind", "theory", "-p", "alpha=inf", "--set", "alpha=3", "--set", "epsilon=0.1"], "alpha is given twice"),
        (["--kind", "theory", "-p", "epsilon=0.1"], "'alpha' missing"),
        (["--kind", "simulation", "-p", "alpha=2", "--set", "dim=20", "--set", "epsilon=0.1", "--set", "t_max=1"],
         "'width' missing"),
    )
    for args, message in cases:
        result = CliRunner().invoke(main, ["sweep", *args, "--out", "never_written.h5", "--no-progress"])
        assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize("address", ["nonsense", "foo://127.0.0.1:1"])
def test_malformed_scheduler_address_is_invalid_input_naming_the_option(tmp_path, address):
    pytest.importorskip("distributed")
    from dmft.parameters import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="scheduler"):
        make_executor(scheduler=address)
    res = CliRunner().invoke(main, ["sweep", "--kind", "theory", "-p", "epsilon=0.1", "--set", "alpha=inf",
                                    "--out", str(tmp_path / "s.h5"), "--scheduler", address, "--no-progress"])
    assert res.exit_code == 2 and "scheduler" in res.output and "malformed" in res.output, res.output
    assert not (tmp_path / "s.h5").exists()


def test_sweep_slurm_without_a_cluster_is_one_line_exit_1(tmp_path):
    pytest.importorskip("submitit")
    import shutil

    if shutil.which("srun"):
        pytest.skip("a Slurm cluster is available here")
    res = CliRunner().invoke(main, ["sweep", "--kind", "theory", "-p", "epsilon=0.1", "--set", "alpha=inf",
                                    "--out", str(tmp_path / "s.h5"), "--slurm", "--no-progress"])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), repr(res.exception)
    assert "no Slurm cluster" in res.output and "Traceback" not in res.output


def test_executor_options_that_would_be_ignored_are_refused(tmp_path):
    """An empty --scheduler used to fall back to the local pool, and --workers beside --scheduler,
    --slurm or a caller's executor was dropped: each is refused naming the option, before any point."""
    from comparisons.phase import phase_diagram
    from dmft.parameters import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="scheduler"):
        make_executor(scheduler="")
    with pytest.raises(InvalidParameterError, match="workers"):
        make_executor(workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(InvalidParameterError, match="workers"):
        make_executor(workers=2, slurm=True)
    with cf.ThreadPoolExecutor(1) as pool:
        with pytest.raises(InvalidParameterError, match="workers"):
            sweep({"epsilon": [0.1]}, "theory", tmp_path / "a.h5", pool, fixed={"alpha": math.inf}, workers=2)
        with pytest.raises(InvalidParameterError, match="scheduler"):
            phase_diagram({"alpha": [math.inf], "epsilon": [0.1, 0.2]}, {"scale": 1.0}, out=tmp_path / "p.h5",
                          executor=pool, scheduler="tcp://127.0.0.1:1", progress=False)
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "p.h5").exists()
    for extra in (["--scheduler", ""], ["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]):
        res = CliRunner().invoke(main, ["sweep", "--kind", "theory", "-p", "epsilon=0.1", "--set", "alpha=inf",
                                        "--out", str(tmp_path / "s.h5"), "--no-progress", *extra])
        assert res.exit_code == 2 and ("scheduler" in res.output or "workers" in res.output), res.output
    assert not (tmp_path / "s.h5").exists()


def test_a_point_that_does_not_converge_is_reported_so_even_if_the_store_keeps_an_older_run(tmp_path):
    """The store keeps a converged run from other numerics (another identity) rather than replace
    it by a non-converged one; the sweep must still report the point as not converged."""
    import dataclasses

    from comparisons.store import stored_run_info, store_run

    out = tmp_path / "s.h5"
    old = dmft.solve(math.inf, 0.1, t_max=2.0)
    name = run_name("theory", {"alpha": math.inf, "epsilon": 0.1, "t_max": 2.0})
    store_run(out, name, old, identity="older-numerics")

    def unconverged(kind, params):
        return dataclasses.replace(run_point(kind, params), converged=False, message="not converged: test")

    with cf.ThreadPoolExecutor(1) as pool:
        result = sweep({"epsilon": [0.1]}, "theory", out, pool, fixed={"alpha": math.inf, "t_max": 2.0},
                       runner=unconverged, progress=False)
    assert result.names == (name,) and result.computed == (name,)
    assert result.converged[name] is False
    assert stored_run_info(out, name)["identity"] == "older-numerics"      # the converged run is kept
