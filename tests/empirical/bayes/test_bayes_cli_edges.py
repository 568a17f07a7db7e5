"""``dmft train bayes``: diverged runs (exit 3), fits and curves too short for a plot, input refused
before training, the iteration of the parity lengthscale ratio. Tiny sizes throughout."""

import json
import pickle
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from empirical.bayes.concealment import ConcealmentConfig, can_fit, regression_table, train_concealment
from empirical.bayes.divergence import TrainingDiverged, stop_if_diverged
from empirical.bayes.linear import LinearGrokkingConfig, train_linear

torch.set_num_threads(1)


def _invoke(*args):
    from grokking_cli.main import main

    return CliRunner().invoke(main, ["train", "bayes", *args])


def _no_traceback(result):
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


# ------------------------------------------------------------------------------------- divergence


def test_check_finite_names_the_quantity_and_step():
    stop_if_diverged("run", 1, 5, loss=1.0, weights=[torch.ones(3), np.zeros(2)])
    with pytest.raises(TrainingDiverged, match="run diverged at iteration 4 of 5: non-finite weights") as info:
        stop_if_diverged("run", 4, 5, "iteration", loss=1.0, weights=[torch.ones(3), torch.tensor([np.nan])])
    assert info.value.step == 4 and isinstance(info.value, FloatingPointError)
    assert pickle.loads(pickle.dumps(info.value)).step == 4


def test_linear_divergence_raises_at_its_epoch_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(TrainingDiverged, match="linear regression seed 0 diverged at epoch") as info:
            train_linear(0, LinearGrokkingConfig(learning_rate=1e6, epochs=50))
    assert 1 <= info.value.step <= 50


def test_concealment_divergence_raises():
    with pytest.raises(TrainingDiverged, match="diverged at epoch 1 of 2"):
        train_concealment("add", 0, 0, ConcealmentConfig(learning_rate=1e30, hidden=4, epochs=2))


def test_cli_linear_divergence_exits_3_and_stores_nothing(tmp_path):
    out = tmp_path / "b.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = _invoke("linear", "--seed", "0", "--epochs", "50", "--lr", "1e6", "--json", "--out", str(out))
    assert result.exit_code == 3, result.output
    assert "did not converge" in result.stderr and "diverged at epoch" in result.stderr
    assert "null" not in result.stdout and "final_weights" not in result.stdout
    assert not out.exists() or "linear" not in _records(out)
    _no_traceback(result)


def _records(path):
    from comparisons.store import list_records

    return list_records(path)


@pytest.mark.parametrize("args", [
    ["gp-classification", "--seed", "42", "--iterations", "3", "--lr", "1e6"],
    ["gp-sine", "--case", "A", "--iterations", "3", "--lr", "1e6", "--grid", "2"],
    ["laplace", "--case", "A", "--iterations", "3", "--lr", "1e6", "--grid", "2"],
    ["bnn", "--seed", "0", "--epochs", "3", "--hidden", "4", "--q-mean-std", "1e20"],
])
def test_cli_divergence_of_every_trained_system_exits_3(args, tmp_path):
    plot = tmp_path / "p.png"
    result = _invoke(*args, "--plot", str(plot))
    assert result.exit_code == 3, result.output
    assert "did not converge" in result.stderr and "diverged at" in result.stderr
    assert not plot.exists()
    _no_traceback(result)


# -------------------------------------------------------------------------- concealment: one m


def test_regression_table_skips_what_cannot_be_fit():
    assert not can_fit([0, 0, 0], [1, 2, 3]) and not can_fit([0, 10], [1, 2]) and can_fit([0, 10, 10], [1, 2, 3])
    runs = [SimpleNamespace(dataset=d, m=m, gap=SimpleNamespace(gap=g, censored=False))
            for d, m, g in (("add", 0, 3), ("add", 10, 9), ("sub", 0, 2), ("sub", 10, 5))]
    assert list(regression_table(runs, skip_unfittable=True)) == ["combined"]
    assert regression_table(runs[:1], skip_unfittable=True) == {}
    with pytest.raises(ValueError):
        regression_table(runs)


def test_concealment_plot_without_a_fit_says_so():
    from comparisons.bayes_plots import plot_concealment

    runs = [SimpleNamespace(dataset="add", m=0, gap=SimpleNamespace(gap=4, censored=False))]
    fig = plot_concealment(runs)
    labels = [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]
    assert any(label.startswith("no pooled fit") for label in labels), labels


def test_cli_concealment_single_m_draws_the_gaps_without_the_fit(tmp_path):
    plot = tmp_path / "c.pdf"
    result = _invoke("concealment", "--dataset", "add", "--seed", "0", "--epochs", "2", "--hidden", "4", "--m", "0",
                     "--plot", str(plot), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert "regression" not in summary and "--m" in summary["regression_note"]
    assert plot.exists()
    _no_traceback(result)


# ------------------------------------------------------------------------------ bnn: short runs


def test_cli_bnn_plot_of_two_epochs_draws_what_it_can(tmp_path):
    plot = tmp_path / "b.png"
    result = _invoke("bnn", "--seed", "0", "--epochs", "2", "--hidden", "4", "--q-mean-std", "0.1",
                     "--q-mean-std", "0.2", "--plot", str(plot), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steepest_complexity_epoch"] is None and "--epochs" in summary["note"]
    assert plot.exists() and plot.with_suffix(".pdf").exists()
    _no_traceback(result)


def test_cli_bnn_refuses_q_mean_std_0_before_training():
    result = _invoke("bnn", "--seed", "0", "--epochs", "2", "--hidden", "4", "--q-mean-std", "0.1",
                     "--q-mean-std", "0")
    assert result.exit_code == 2, result.output
    assert "q_mean_std" in result.output and "(0, inf)" in result.output
    assert "BNN grid" not in result.output  # no progress bar: nothing started
    _no_traceback(result)


@pytest.mark.parametrize("command", ["gp-sine", "laplace"])
def test_cli_grid_refused_before_training(command, monkeypatch):
    import empirical.bayes.gp as gp
    import empirical.bayes.laplace as laplace

    def trained(*args, **kwargs):
        raise AssertionError("training started before --grid was checked")

    monkeypatch.setattr(gp, "train_exact_gp", trained)
    monkeypatch.setattr(laplace, "train_laplace_gp", trained)
    result = _invoke(command, "--grid", "1")
    assert result.exit_code == 2, result.output
    assert "grid" in result.output and ">= 2" in result.output
    _no_traceback(result)


# ------------------------------------------------------------------- gp-classification parity


def test_cli_parity_ratio_says_its_iteration(tmp_path):
    plot = tmp_path / "g.png"
    result = _invoke("gp-classification", "--task", "parity", "--seed", "42", "--iterations", "3", "--n-train", "50",
                     "--json", "--plot", str(plot))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert "inverse_lengthscale_ratio_at_150" not in summary
    assert summary["inverse_lengthscale_ratio_iteration"] == 3
    assert set(summary["inverse_lengthscale_ratio"]) == {"42"}
    assert plot.exists()  # the ARD panel shows iteration 3, not the 10, 50, 150 the run never reached
    _no_traceback(result)


def test_ard_iterations_never_beyond_the_run():
    from comparisons.bayes_plots import ard_iterations

    assert ard_iterations((10, 50, 150), 30) == [10, 30]
    assert ard_iterations((10, 50, 150), 1500) == [10, 50, 150]


@pytest.mark.parametrize("task, option, value", [("parity", "--x-dist", "normal"), ("one_zero", "--spurious", "gaussian")])
def test_gp_classification_refuses_an_option_its_task_would_ignore(task, option, value):
    """--x-dist shapes only the 1-0 data and --spurious only the parity data: given with the other
    task they would be dropped silently, so they are refused (exit 2, naming the option)."""
    result = _invoke("gp-classification", "--task", task, option, value, "--iterations", "2")
    assert result.exit_code == 2, result.output
    assert option in result.output
    _no_traceback(result)
