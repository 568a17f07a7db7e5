"""Concealment MLP (§A.6, C.3 statistics), mean-field BNN (§A.8) and the ``dmft train bayes`` CLI."""

import json
import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from click.testing import CliRunner

from empirical.bayes.bnn import (BNNConfig, MeanFieldBNN, complexity_fall_rate, gaussian_kl_standard_normal,
                          steepest_fall_on_log_epochs, train_bnn)
from empirical.bayes.concealment import ConcealmentConfig, gap_regression, log_gap, train_concealment

torch.set_num_threads(1)


def test_log_gap_maps_nonpositive_to_zero():
    assert log_gap([-2, 0, 1, math.e ** 2]).tolist() == pytest.approx([0, 0, 0, 2])


def test_gap_regression_recovers_an_exact_exponential_and_matches_scipy():
    from scipy import stats

    m = np.repeat([0, 10, 20, 30, 40], 2).astype(float)
    fit = gap_regression(m, 4.3 * np.exp(0.092 * m))
    assert fit.slope == pytest.approx(0.092, rel=1e-10) and fit.prefactor == pytest.approx(4.3, rel=1e-10)
    assert fit.r == pytest.approx(1.0, abs=1e-12)
    rng = np.random.default_rng(0)
    gaps = np.round(5 * np.exp(0.08 * m + rng.normal(0, 0.4, m.size))) - 3  # includes gaps <= 0
    ours = gap_regression(m, gaps)
    z = np.where(gaps > 0, np.log(np.clip(gaps, 1, None)), 0.0)
    ref = stats.linregress(m, z)
    assert ours.slope == pytest.approx(ref.slope, rel=1e-10) and ours.r == pytest.approx(ref.rvalue, rel=1e-10)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    excluded = gap_regression(m, gaps, exclude_nonpositive=True)
    assert excluded.n_points == int(np.sum(gaps > 0))
    with pytest.raises(ValueError):
        gap_regression([1, 1, 1], [2, 3, 4])


def test_concealment_run_bookkeeping_and_early_generalisation_at_m0():
    """m = 0 on modular addition (120 of 300 epochs): the pre-step running train accuracy lags
    the full-pass accuracy, both reach τ, the gap is small (reference run: 18 and 7 epochs)."""
    run = train_concealment("add", 0, 0, ConcealmentConfig(epochs=120))
    assert not run.gap.censored and abs(run.gap.gap) <= 30
    lag = run.train_accuracy_full - run.train_accuracy
    assert np.mean(lag[:40]) > 0
    assert run.val_accuracy[-1] > 0.95


def test_concealment_validation():
    with pytest.raises(ValueError):
        ConcealmentConfig(spurious="uniform")
    with pytest.raises(ValueError):
        ConcealmentConfig(batch_size=0)


def test_bnn_kl_closed_form_against_monte_carlo():
    rng = torch.Generator().manual_seed(0)
    mean = torch.randn(50, generator=rng)
    log_std = torch.log(torch.rand(50, generator=rng) + 0.2)
    kl = float(gaussian_kl_standard_normal(mean, log_std))
    w = mean + torch.exp(log_std) * torch.randn(100_000, 50, generator=rng)
    q = torch.distributions.Normal(mean, torch.exp(log_std))
    per_sample = (q.log_prob(w) - torch.distributions.Normal(0.0, 1.0).log_prob(w)).sum(1).double()
    # tolerance: 5 Monte-Carlo standard errors
    assert abs(kl - float(per_sample.mean())) < 5 * float(per_sample.std()) / math.sqrt(len(per_sample))


def test_local_reparameterisation_moments_match_weight_sampling():
    """Pre-activations sampled by the local trick have the mean/variance of sampling the weights."""
    g = torch.Generator().manual_seed(1)
    model = MeanFieldBNN([4, 3], q_mean_std=0.5, q_std_init=0.3, generator=g)
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    xs = x.repeat(200_000, 1)
    local = model(xs, torch.Generator().manual_seed(2))
    mu, std = model.means[0].detach(), torch.exp(model.log_stds[0].detach())
    w = mu + std * torch.randn(20_000, *mu.shape, generator=torch.Generator().manual_seed(3))
    xb = torch.cat([x, torch.ones(1, 1)], 1)
    direct = torch.einsum("i,sij->sj", xb[0], w)
    exact_mean = (xb @ mu)[0]
    exact_var = ((xb * xb) @ std ** 2)[0]
    se = torch.sqrt(exact_var / len(local))
    assert torch.all((local.mean(0) - exact_mean).abs() < 5 * se)
    assert torch.all((local.var(0) / exact_var - 1).abs() < 5 * math.sqrt(2 / len(local)))
    assert torch.all((direct.var(0) / exact_var - 1).abs() < 5 * math.sqrt(2 / len(direct)))


def test_bnn_complexity_depends_on_initial_mean_scale_and_falls():
    """Initial KL/N grows with q_mean_std (§C.5); within a run the complexity decreases."""
    cfg = dict(epochs=60, hidden=50)
    small = train_bnn(0, BNNConfig(q_mean_std=0.01, **cfg))
    large = train_bnn(0, BNNConfig(q_mean_std=1.0, **cfg))
    assert large.complexity[0] > small.complexity[0]
    # exact: at σ = 0.01 the KL per weight is −log 0.01 + (1e-4 + μ²)/2 − ½; μ² ≈ q²
    n_weights = 31 * 50 + 51 * 2
    expected_small = n_weights * (-math.log(0.01) + (1e-4 + 0.01 ** 2) / 2 - 0.5) / 800
    assert small.complexity[0] == pytest.approx(expected_small, rel=1e-3)
    assert large.complexity[-1] < large.complexity[0] and large.error[-1] < large.error[0]


@pytest.mark.parametrize("q_mean_std", [0.01, 0.1])
def test_bnn_complexity_falls_at_the_closed_form_rate(q_mean_std):
    """The §A.8 complexity KL/N falls by η‖∇(KL/N)‖² per full-batch step while the fit is poor.

    At σ = 0.01 this is ≈ η W/N² = 1.03e-3 per epoch (W = 6602 weights, N = 800), the reason the
    Fig 6 budget of 1500 epochs lowers KL/N by only ~1.5 of ~34. Tolerance 1 %: the KL/N
    differences carry float32 rounding of ~2e-6 per epoch (0.2 %), and the cross-entropy's share of
    the fall is ≤ 0.3 % at q_mean_std ≤ 0.1 (measured); at q_mean_std = 1 the cross-entropy gradient
    more than doubles the fall, so that case is not a check of this formula.
    """
    config = BNNConfig(q_mean_std=q_mean_std, epochs=30)
    run = train_bnn(0, config)
    initial = MeanFieldBNN([30, 200, 2], q_mean_std, 0.01, torch.Generator().manual_seed(0))
    predicted = complexity_fall_rate(initial, config.learning_rate, config.n_train)
    assert predicted == pytest.approx(0.1 * (6602 + 6602 * q_mean_std ** 2) / 800 ** 2, rel=1e-3)
    observed = -np.mean(np.diff(run.complexity))
    assert_allclose(observed, predicted, rtol=1e-2)


def test_bnn_groks_at_reduced_size_with_a_gap_that_grows_with_the_initial_mean_scale():
    """§C.5 at CI size: concealed parity k = 3 in 12 dims, 100 hidden units, 300 train / 200
    validation, the spec's SGD lr 0.1 full batch. Both seeds memorise first and generalise later
    (validation crosses 0.95 within 1600 epochs, uncensored), and the larger initial posterior-mean
    scale gives the longer gap (measured: 411 and 398 epochs at q = 0.5 against 83 and 27 at
    q = 0.05; the assertion asks for 2× and ≥ 150 epochs)."""
    small = dict(n_total_dim=12, hidden=100, n_samples=500, n_train=300, epochs=1600)
    for seed in (0, 1):
        wide = train_bnn(seed, BNNConfig(q_mean_std=0.5, **small))
        narrow = train_bnn(seed, BNNConfig(q_mean_std=0.05, **small))
        assert not wide.gap.censored and not narrow.gap.censored
        assert wide.gap.gap >= 150
        assert wide.gap.gap > 2 * max(narrow.gap.gap, 0)


def test_steepest_fall_on_log_epochs_finds_a_known_drop():
    """A logistic drop centred at epoch 300 on a log axis (plus a constant linear drift) is found to
    within the grid spacing (20 points per decade: a factor 10^(1/20) = 1.12)."""
    epochs = np.arange(5000)
    curve = 10.0 - 3.0 / (1.0 + np.exp(-4.0 * (np.log(epochs + 1.0) - np.log(301.0)))) - 1e-5 * epochs
    found = steepest_fall_on_log_epochs(curve)
    assert 300 / 1.13 <= found <= 300 * 1.13
    # a pure linear fall is steepest per log-epoch at the end
    assert steepest_fall_on_log_epochs(-1e-3 * epochs) >= 5000 / 1.13
    with pytest.raises(ValueError, match="at least 3"):
        steepest_fall_on_log_epochs(np.ones(2))


# ---------------------------------------------------------------------------------------------- CLI


def _train():
    from grokking_cli.main import main

    return main


def test_cli_linear_json_and_store(tmp_path):
    from comparisons.store import read_record

    out = tmp_path / "b.h5"
    result = CliRunner().invoke(_train(), ["train", "bayes", "linear", "--seed", "0", "--epochs", "400", "--json",
                                           "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["gaps"]["0"]["t_val"] == 260
    arrays, attrs = read_record(out, "linear")
    assert arrays["seed0"]["val_accuracy"].shape == (400,) and attrs["system"] == "linear"


@pytest.mark.parametrize("args", [
    ["linear", "--epochs", "0"], ["linear", "--lr", "-1"], ["gp-sine", "--iterations", "0"],
    ["concealment", "--epochs", "-5"], ["bnn", "--q-mean-std", "-1"], ["laplace", "--lr", "0"],
    ["gp-classification", "--iterations", "0"], ["linear", "--seed", "-1"],
])
def test_cli_invalid_input_exits_2(args):
    result = CliRunner().invoke(_train(), ["train", "bayes", *args])
    assert result.exit_code == 2, result.output
    name = {"lr": "learning_rate"}.get(args[1].lstrip("-"), args[1].lstrip("-"))  # the API's name of --lr
    assert name in result.output or name.replace("-", "_") in result.output, result.output  # names the parameter
    assert "Traceback" not in result.output
