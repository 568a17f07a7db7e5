"""The linear committee at finite α (theory.md §10.8): the Marchenko–Pastur closed form against its
own known moments and limits, against seed-averaged gradient descent, and the family DMFT (with
output noise) against the closed form."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from dmft.committee_online import CommitteeModel
from dmft.dmft_solver import solve_committee_dmft
from dmft.linear_flow import initial_error, linear_committee_curves, marchenko_pastur_quadrature
from dmft.parameters import InvalidParameterError
from dmft.simulate import simulate_committee_gd
from dmft.solve import time_grid


def _linear(noise=0.25, width=2, **kw):
    return CommitteeModel(activation="linear", width=width, target="committee", teacher_activation="linear",
                          noise=noise, init_overlap=np.array([[0.1], [-0.1]][:width]), **kw)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 10.0])
def test_marchenko_pastur_moments(alpha):
    """Mass 1, mean 1, second moment 1 + 1/α (Wishart moments), and E[1/λ] = α/(α − 1) for α > 1.
    Gauss–Legendre in θ integrates the smooth integrand to rounding (observed ≤ 3e-12; α = 1 has
    the √λ edge at 0, observed 3e-12)."""
    lam, weight, atom = marchenko_pastur_quadrature(alpha)
    assert_allclose(weight.sum() + atom, 1.0, rtol=0, atol=1e-10)
    assert_allclose(weight @ lam, 1.0, rtol=1e-10)
    assert_allclose(weight @ lam**2, 1.0 + 1.0 / alpha, rtol=1e-10)
    if alpha > 1:
        assert_allclose(weight @ (1.0 / lam), alpha / (alpha - 1.0), rtol=1e-10)


def test_closed_form_limits():
    """t = 0: both losses are L_v + σ². t → ∞ (α > 1): the least-squares values, train
    σ²(1 − 1/α), test σ²α/(α − 1). α < 1: the null space keeps (1 − α) L_v of the test loss."""
    model = _linear(noise=0.3, scale=1.5, teacher_scale=0.7)
    error0 = 1.5**2 * model.init_cov.mean() - 2 * 1.5 * 0.7 * model.init_overlap.mean() + 0.7**2
    assert_allclose(initial_error(model), error0, rtol=1e-14)
    c = linear_committee_curves(model, 3.0, [0.0, 1e4])
    assert_allclose(c.train_loss, [error0 + 0.3, 0.3 * (1 - 1 / 3)], rtol=1e-10)
    assert_allclose(c.test_loss, [error0 + 0.3, 0.3 * 3 / 2], rtol=1e-10)
    noiseless = linear_committee_curves(_linear(noise=0.0), 0.6, [1e4])
    assert_allclose(noiseless.test_loss, 0.4 * noiseless.initial_error, rtol=1e-10)
    assert_allclose(noiseless.train_loss, 0.0, atol=1e-12)


def test_closed_form_refuses_other_models():
    with pytest.raises(InvalidParameterError, match="linear"):
        linear_committee_curves(CommitteeModel(activation="erf", target="committee"), 2.0, [0.0])
    with pytest.raises(InvalidParameterError, match="alpha"):
        linear_committee_curves(_linear(), 0.0, [0.0])


@pytest.mark.parametrize("alpha", [0.7, 2.0])
def test_closed_form_against_gradient_descent(alpha):
    """Seed mean of gradient descent (D = 400, 8 seeds, step 0.01) on t ∈ [1, 16], noise σ² = 0.25:
    within 4 seed standard errors plus 1 % of the loss (room for the O(1/D) finite-size and
    O(step) terms; observed ≤ 1.4 s.e. here, ≤ 1.6 s.e. at D = 1000 with 6 seeds)."""
    model = _linear()
    t = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    runs = [simulate_committee_gd(model, alpha, 400, t, seed=s, time_step=0.01) for s in range(8)]
    exact = linear_committee_curves(model, alpha, t)
    for name in ("train_loss", "test_loss"):
        sims = np.array([getattr(r, name) for r in runs])
        se = sims.std(axis=0, ddof=1) / np.sqrt(len(runs))
        ref = getattr(exact, name)
        assert np.all(np.abs(sims.mean(axis=0) - ref) <= 4 * se + 0.01 * ref), name


def test_dmft_with_output_noise_converges_to_the_closed_form():
    """The family DMFT of the linear student with σ² = 0.25 at α = 2 (same draws at two steps):
    its time discretisation is second order, so the Richardson combination (4X_{dt/2} − X_dt)/3
    must meet the closed form within 4 Monte Carlo standard errors on t ≤ 2 (at dt = 0.25 alone
    the error at t = 0.25 is 0.024, 14 s.e.: the step, not the noise)."""
    model = _linear()
    options = dict(samples=8192, error_replicas=4)
    coarse = solve_committee_dmft(model, 2.0, time_grid(2.0, 0.125), **options)
    fine = solve_committee_dmft(model, 2.0, time_grid(2.0, 0.0625), **options)
    assert coarse.converged and fine.converged
    exact = linear_committee_curves(model, 2.0, coarse.t)
    for name in ("train_loss", "test_loss"):
        x_coarse, x_fine = getattr(coarse, name), getattr(fine, name)[::2]
        extrapolated = (4 * x_fine - x_coarse) / 3
        sem = (4 * getattr(fine, name + "_sem")[::2] + getattr(coarse, name + "_sem")) / 3
        assert np.all(np.abs(extrapolated - getattr(exact, name)) <= 4 * sem + 1e-12), name


def test_dmft_noise_overfitting_over_a_long_window():
    """α = 2, σ² = 0.25 to t = 16: the test loss falls, then rises as the noise is fitted (minimum
    near t = 3, limit σ²α/(α − 1) = 0.5). On t ∈ [2, 16], where the step error has decayed, the
    DMFT lies within 4 of its standard errors of the closed form."""
    model = _linear()
    result = solve_committee_dmft(model, 2.0, time_grid(16.0, 0.25), samples=8192, error_replicas=4)
    assert result.converged
    exact = linear_committee_curves(model, 2.0, result.t)
    late = result.t >= 2.0
    for name in ("train_loss", "test_loss"):
        deviation = np.abs(getattr(result, name) - getattr(exact, name))[late]
        assert np.all(deviation <= 4 * getattr(result, name + "_sem")[late]), name
    assert exact.test_loss[-1] > exact.test_loss[late].min() + 0.03        # the overfitting rise
