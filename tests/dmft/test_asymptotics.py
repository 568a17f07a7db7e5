"""The 1/α gap formula (theory.md §4.4) and the escape estimate (§4.5), each against the solver."""

import math

import numpy as np
import pytest

from dmft.asymptotics import escape_time, gap_estimate, gaussian_gradient_covariance, plateau_rate
from dmft.dmft_solver import online_start, solve_dmft
from dmft.parameters import ModelParameters
from dmft.solve import solve, time_grid


@pytest.mark.parametrize("center", [False, True])
def test_gaussian_gradient_covariance_against_monte_carlo(center):
    """Gauss–Hermite C_g(t,s) against direct sampling of the Gaussian fields (5 standard errors)."""
    params = ModelParameters(alpha=math.inf, epsilon=0.25, center=center)
    t = time_grid(2.0, 0.25)
    state = online_start(params, t)
    exact = gaussian_gradient_covariance(state.cov, state.overlap, epsilon=0.25, scale=1.0, center=center)
    T, N = state.overlap.shape
    rng = np.random.default_rng(0)
    joint = np.zeros((T * N + 1, T * N + 1))
    joint[:-1, :-1] = state.cov.transpose(0, 2, 1, 3).reshape(T * N, T * N)
    joint[:-1, -1] = joint[-1, :-1] = state.overlap.reshape(-1)
    joint[-1, -1] = 1.0
    lam, vec = np.linalg.eigh(joint)
    z = rng.standard_normal((200_000, lam.size)) @ (vec * np.sqrt(np.clip(lam, 0, None))).T
    u, hs = z[:, :-1].reshape(-1, T, N), z[:, -1]
    f = np.sum(u + 0.125 * u**2, axis=-1)
    if center:
        f = f - f[:, :1]
    g = (0.5 * hs[:, None] ** 2 - 0.5 * f)[..., None] * (1 + 0.25 * u)
    for n, s in [(T - 1, T - 1), (T - 1, 3), (4, 0)]:
        prod = g[:, n, :, None] * g[:, s, None, :]
        mean, se = prod.mean(0), prod.std(0) / np.sqrt(prod.shape[0])
        assert np.all(np.abs(exact[n, s] - mean) < 5 * se + 1e-12), (n, s, exact[n, s], mean, se)


@pytest.mark.parametrize("alpha", [25.0, 100.0])
def test_gap_formula_matches_solver_at_large_alpha(alpha):
    """§4.4 against the full solver: relative agreement 5 % (observed < 1 %); the O(1/α²)
    remainder and the Monte Carlo error are both below that at α ≥ 25."""
    params = ModelParameters(alpha=alpha, epsilon=0.25)
    t = time_grid(4.0, 0.25)
    res = solve_dmft(params, t, samples=8192, tol=1e-6)
    predicted = gap_estimate(params, t)
    np.testing.assert_allclose(res.gap[4:], predicted[4:], rtol=0.05)
    assert predicted[-1] > 0


@pytest.mark.parametrize("epsilon, m0", [(0.05, 0.02), (0.05, 0.005), (0.1, 0.02), (0.1, 0.005)])
def test_escape_time_against_online_solver(epsilon, m0):
    """§4.5 in its regime (small ε, small m₀): the estimate against the time at which the
    solver's deviation mode reaches half its generalising magnitude, within 10 % (observed ≤ 8 %)."""
    params = ModelParameters(alpha=math.inf, epsilon=epsilon, init_overlap=(m0, -m0))
    estimate = escape_time(params)
    res = solve(math.inf, epsilon, t_max=2.5 * estimate, dt=0.05, init_overlap=(m0, -m0))
    deviation = np.abs(res.overlap[:, 0] - res.overlap[:, 1]) / 2
    reached = deviation > 0.5 / math.sqrt(epsilon)
    assert reached.any()
    measured = res.t[np.argmax(reached)]
    assert abs(estimate - measured) < 0.1 * measured, (estimate, measured)


def test_plateau_rate_reduces_to_leading_order():
    """λ → 3ερ/κ as ε → 0 (the spec's leading-order rate), and λ ∝ 1/κ at leading order."""
    for kappa in (1.0, 4.0):
        params = ModelParameters(alpha=math.inf, epsilon=1e-4, scale=kappa, init_overlap=(1e-3, -1e-3))
        assert plateau_rate(params) == pytest.approx(3e-4 / kappa, rel=1e-3)
    with pytest.raises(ValueError, match="orthogonal to the mean unit"):
        plateau_rate(ModelParameters(alpha=math.inf, epsilon=0.1, init_overlap=(0.1, 0.1)))
