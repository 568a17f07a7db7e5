"""Every ``dmft figure``, at a tiny size, with value checks on the data it draws.

The numbers a figure reports are recomputed from the runs it stored (the data behind its lines);
the theory side uses the online ODE here (the DMFT is tested elsewhere) so that the whole set
runs in seconds.
"""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import comparisons.figures as figures
from comparisons.agreement import agreement
from comparisons.store import list_runs, read_run
from empirical.metrics import time_to_loss
from grokking_cli.main import main


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(figures.FIG1_SIZES, False, dict(dim=8, alpha=3.0, width=4, epsilon=0.2, t_max=6.0,
                                                        cka_every=5, n_test=20))
    monkeypatch.setitem(figures.SWEEP_VALUES["fig3a"], False, [0.5, 2.0])
    monkeypatch.setitem(figures.SWEEP_VALUES["fig3b"], False, [0.5, 2.0])
    monkeypatch.setitem(figures.SWEEP_SIZES, False, dict(dim=8, alpha=3.0, width=2, t_max=6.0))
    monkeypatch.setitem(figures.FIG3E_SIZES, False, dict(scales=[0.5, 1.0], epsilons=[0.1, 0.3], dim=8, alpha=3.0,
                                                         width=2, lr=2.0, t_max=8.0))
    monkeypatch.setitem(figures.FIG4_SIZES, False, dict(dims=(8, 12), seeds=2, t_max=4.0, samples=64, mc_seeds=1))
    monkeypatch.setattr(figures, "dmft_available", lambda: False)


def _make(name, tmp_path):
    report = figures.make_figure(name, out_dir=tmp_path, device="cpu")
    for path in report.files:
        assert open(path, "rb").read(4) in (b"\x89PNG", b"%PDF")
    return report, report.store


def test_fig1_numbers_are_those_of_the_stored_run(tiny, tmp_path):
    report, store = _make("fig1", tmp_path)
    (name,) = list_runs(store)
    run = read_run(store, name)
    n = report.numbers
    assert n["final_test_loss"] == run.test_loss[-1] and n["final_train_loss"] == run.train_loss[-1]
    assert n["max_test_loss"] == run.test_loss.max()
    assert n["t_test(0.1)"] == time_to_loss(run.t, run.test_loss, 0.1)
    assert n["t_train(0.1)"] == time_to_loss(run.t, run.train_loss, 0.1)
    if "cka_initial" in n:
        assert n["cka_initial"] == run.extras["cka"][0] and -1 <= n["cka_final"] <= 1
        assert n["k0_regression_test_loss"] == float(run.extras["k0_regression_test_loss"]) > 0
    np.testing.assert_allclose(run.decomposition.sum(axis=1), run.test_loss, rtol=1e-6)


def test_a_figure_rerun_with_other_settings_recomputes_its_runs(tiny, tmp_path, monkeypatch):
    """The figure's store caches runs by name, but a run is reused only when it was made from the
    same settings: a longer t_max (not part of the run's name) must recompute, an identical rerun
    must reuse the stored curves (same numbers, same creation stamp)."""
    _, store = _make("fig1", tmp_path)
    (name,) = list_runs(store)
    first = read_run(store, name)
    assert first.t[-1] == pytest.approx(6.0, rel=1e-3)
    _make("fig1", tmp_path)
    again = read_run(store, name)
    np.testing.assert_array_equal(again.test_loss, first.test_loss)
    assert again.seconds == first.seconds                # not recomputed
    monkeypatch.setitem(figures.FIG1_SIZES, False, dict(figures.FIG1_SIZES[False], t_max=9.0))
    _make("fig1", tmp_path)
    assert list_runs(store) == [name]
    assert read_run(store, name).t[-1] == pytest.approx(9.0, rel=1e-3)


@pytest.mark.parametrize("which, swept", [("fig3a", "scale"), ("fig3b", "epsilon")])
def test_fig3_sweeps_normalise_by_the_initial_loss(tiny, tmp_path, which, swept):
    report, store = _make(which, tmp_path)
    runs = [read_run(store, name) for name in list_runs(store)]
    assert sorted(r.parameters[swept] for r in runs) == [0.5, 2.0]
    for run in runs:
        label = figures.SCALE_LABEL if swept == "scale" else "ε"
        entry = report.numbers[f"{label} = {run.parameters[swept]:g}"]
        assert entry["final_test/L0"] == pytest.approx(run.test_loss[-1] / run.test_loss[0], rel=1e-12)
        expected = time_to_loss(run.t, run.test_loss / run.test_loss[0], 0.1)
        got = entry["t_test(0.1·L0)"]
        assert (math.isinf(got) and math.isinf(expected)) or got == pytest.approx(expected)


def test_fig3e_maps_are_the_amounts_of_grokking_of_the_stored_runs(tiny, tmp_path):
    from comparisons.phase import grokking_point

    report, store = _make("fig3e", tmp_path)
    n = report.numbers
    size = figures.fig3e_settings(False)
    assert n["settings"]["scales"] == size["scales"] and n["settings"]["epsilons"] == size["epsilons"]
    m0 = figures.planted_overlap(size["width"], size["dim"])
    tag = f"D{size['dim']}_N{size['width']}_a{size['alpha']:g}_lr{size['lr']:g}_tmax{size['t_max']:g}"
    points = iter(n["simulation"])
    for kappa in size["scales"]:
        for eps in size["epsilons"]:
            seeds = [read_run(store, f"fig3e_sim_{tag}_scale{kappa:g}_eps{eps:g}_seed{k}")
                     for k in range(size["seeds"])]
            assert all(s.overlap[0] == pytest.approx(m0, abs=1e-12) for s in seeds)
            metrics = [grokking_point(s, 0.1) for s in seeds]
            point = next(points)
            assert (point["scale"], point["epsilon"]) == (kappa, eps)
            if any(m.censored for m in metrics):
                assert point["censored"] and point["amount"] is None
            else:
                assert point["amount"] == pytest.approx(np.mean([m.amount for m in metrics]))
    # the online panel: the time the α = ∞ test loss falls below 0.1 × its start
    online = [read_run(store, name) for name in list_runs(store) if "alpha=inf" in name]
    assert len(online) == len(size["scales"]) * len(size["epsilons"])
    assert "escape_time_estimate" in n and "dmft" not in n
    assert any("DMFT solver absent" in note for note in report.notes)  # the omission is said, never silent


@pytest.mark.parametrize("name", ["fig4", "fig11"])
def test_fig4_and_fig11_agreements_are_recomputable(tiny, tmp_path, name):
    report, store = _make(name, tmp_path)
    n = report.numbers
    theory = read_run(store, "fig4_theory_tmax4_S64_mc0_online")
    quantities = ("variance", "alignment", "linear", "test_loss") if name == "fig11" else ("train_loss", "test_loss")
    for dim in (8, 12):
        sims = [read_run(store, f"fig4_sim_D{dim}_tmax4_seed{k}") for k in range(2)]
        for q in quantities:
            a = agreement(theory, sims, q)
            assert n[f"D={dim}"][q]["sup_relative_error"] == pytest.approx(a.sup_relative_error)
            assert n[f"D={dim}"][q]["within_spread"] == a.within_spread
        assert n[f"D={dim}"]["final_simulation_test_loss"] == pytest.approx(np.mean([s.test_loss[-1] for s in sims]))
    assert n["final_dmft_test_loss"] == theory.test_loss[-1]
    assert n["dmft_converged"] == [True]


def test_figure_command_reports_json_and_rejects_a_bad_name(tiny, tmp_path):
    result = CliRunner().invoke(main, ["figure", "fig3b", "--out-dir", str(tmp_path), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.output)
    assert summary["name"] == "fig3b" and len(summary["files"]) == 2
    bad = CliRunner().invoke(main, ["figure", "fig99"])
    assert bad.exit_code == 2 and "fig99" in bad.output and "NAME" in bad.output


def test_figure_out_dir_that_is_a_file_is_refused_first(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["figure", "fig1", "--out-dir", str(blocker)])
    assert result.exit_code == 2 and "--out-dir" in result.output and "Traceback" not in result.output


def test_fig3e_settings_are_checked_before_anything_runs(tmp_path):
    """Every --set of fig3e is checked for its type and range (naming it), and --device before any
    simulation: nothing is computed or written for a refused command (exit 2, no traceback)."""
    good = figures.fig3e_settings(False, {"seeds": 2, "theory": False, "threshold": 0.2, "scales": [1, 2]})
    assert good["seeds"] == 2 and good["theory"] is False and good["scales"] == [1.0, 2.0]
    for key, value, message in (("seeds", 0, "integer >= 1"), ("seeds", 1.5, "integer >= 1"), ("seeds", "abc", "integer"),
                                ("dim", 0, "integer >= 2"), ("theory", "maybe", "true or false"),
                                ("threshold", 2.0, r"\(0, 1\)"), ("scales", [1, -2], "scales"), ("workers", -1, "workers")):
        with pytest.raises(figures.InvalidParameterError, match=message):
            figures.fig3e_settings(False, {key: value})
    base = ["figure", "fig3e", "--out-dir", str(tmp_path / "figs"), "--set", "seeds=1", "--set", "dim=10",
            "--set", "width=2", "--set", "scales=1", "--set", "epsilons=0.1", "--set", "t_max=2", "--set", "theory=false"]
    for extra, name in ((["--set", "seeds=1.5"], "seeds"), (["--set", "theory=maybe"], "theory"),
                        (["--device", "foo"], "device")):
        result = CliRunner().invoke(main, base + extra)
        assert result.exit_code == 2 and name in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "figs").exists()
