"""Online ODE (theory.md §4.3, §7.2, §7.4) against independent references."""

import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy.integrate import solve_ivp

import dmft
from dmft.online import solve_online
from dmft.parameters import ModelParameters
from dmft.population import loss_decomposition_from_weights


def _population_gradient_flow(W0, beta, *, epsilon, scale, t, center):
    """Exact gradient flow on the D-dimensional population loss (theory.md §2.3), autograd.

    dW/dt = −(D N/κ²) ∂E_test/∂W, which is dw_i/dt = c·D·E[x g_i] with c = 2/κ (§1.5).
    """
    n, d = W0.shape
    beta_t = torch.tensor(beta, dtype=torch.float64)
    W0_t = torch.tensor(W0, dtype=torch.float64)

    def loss(W):
        mean_w, M = W.mean(0), W.T @ W / n
        if center:
            mean_w, M = mean_w - W0_t.mean(0), M - W0_t.T @ W0_t / n
        variance = (scale * epsilon * torch.trace(M) / (2 * d) - beta_t @ beta_t / (2 * d)) ** 2
        alignment = ((scale * epsilon * M - torch.outer(beta_t, beta_t)) ** 2).sum() / (2 * d**2)
        return variance + alignment + scale**2 * mean_w @ mean_w / d

    def rhs(_t, y):
        W = torch.tensor(y.reshape(n, d), requires_grad=True)
        (grad,) = torch.autograd.grad(loss(W), W)
        return (-(d * n / scale**2) * grad).numpy().ravel()

    sol = solve_ivp(rhs, (0, t[-1]), W0.ravel(), method="DOP853", t_eval=t, rtol=1e-11, atol=1e-12)
    assert sol.success
    return sol.y.T.reshape(len(t), n, d)


@pytest.mark.parametrize("center", [False, True])
def test_online_ode_equals_population_gradient_flow_at_finite_d(rng, center):
    d, n, epsilon, scale = 40, 2, 0.25, 1.3
    W0 = rng.normal(size=(n, d))
    beta = rng.normal(size=d)
    rho = beta @ beta / d
    Q0, m0 = W0 @ W0.T / d, W0 @ beta / d
    params = ModelParameters(alpha=math.inf, epsilon=epsilon, scale=scale, width=n, rho=rho,
                             init_overlap=m0, init_cov=Q0, center=center)
    t = np.linspace(0, 6, 13)
    curves = solve_online(params, t)
    W = _population_gradient_flow(W0, beta, epsilon=epsilon, scale=scale, t=t, center=center)
    Q = np.einsum("tid,tjd->tij", W, W) / d
    m = W @ beta / d
    loss = np.array([loss_decomposition_from_weights(Wt, beta, epsilon=epsilon, scale=scale,
                                                     init_weights=W0 if center else None).sum() for Wt in W])
    # Both sides integrate exact equations at rtol ~1e-11; 1e-7 leaves room for the D·N = 80
    # dimensional integration's accumulated error while catching any wrong coefficient.
    assert_allclose(curves.overlap, m, rtol=1e-7, atol=1e-8)
    assert_allclose(curves.cov, Q, rtol=1e-7, atol=1e-8)
    assert_allclose(curves.test_loss, loss, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("center", [False, True])
def test_online_losses_match_independent_implicit_integration(center):
    # The issue asks for loss curves within 1e-6 relative of an independent high-accuracy
    # integration: here the implicit Radau IIA method at rtol 1e-12.
    params = ModelParameters(alpha=math.inf, epsilon=0.1, scale=1.0, center=center)
    t = np.linspace(0, 40, 81)
    curves = solve_online(params, t)
    n = params.width
    from dmft.online import online_rates

    def rhs(_t, y):
        m, Q = y[:n], y[n:n + n * n].reshape(n, n)
        X = y[n + n * n:].reshape(n, n) if center else None
        dm, dQ, dX = online_rates(m, Q, X, params)
        return np.concatenate([dm, dQ.ravel()] + ([dX.ravel()] if center else []))

    y0 = np.concatenate([params.m0, params.cov0.ravel()] + ([params.cov0.ravel()] if center else []))
    ref = solve_ivp(rhs, (0, 40), y0, method="Radau", t_eval=t, rtol=1e-12, atol=1e-14)
    m, Q = ref.y[:n].T, ref.y[n:n + n * n].T.reshape(-1, n, n)
    from dmft.population import centered_test_loss, test_loss
    if center:
        X = ref.y[n + n * n:].T.reshape(-1, n, n)
        loss = centered_test_loss(Q, X, m, cov0=params.cov0, overlap0=params.m0, epsilon=0.1, scale=1.0)
    else:
        loss = test_loss(Q, m, epsilon=0.1, scale=1.0)
    # Relative error only where the loss is not at its rounding floor (loss → 0 when uncentred).
    assert_allclose(curves.test_loss, loss, rtol=1e-6, atol=1e-12)


def test_explicit_component_form_of_overlap_rate():
    # theory.md §4.3, explicit form: dm_i/dt = −(2/N)Σ_j(1+ε²Q_ij)m_j + (2ε/κ) m_i (3ρ/2 − κε trQ/(2N)).
    from dmft.online import online_rates

    rng = np.random.default_rng(3)
    n, eps, kappa, rho = 3, 0.3, 1.7, 1.2
    W = rng.normal(size=(n, 50))
    beta = rng.normal(size=50)
    beta *= np.sqrt(rho * 50) / np.linalg.norm(beta)
    Q, m = W @ W.T / 50, W @ beta / 50
    p = ModelParameters(alpha=math.inf, epsilon=eps, scale=kappa, width=n, rho=rho,
                        init_overlap=0.1 * np.ones(n))
    dm, _, _ = online_rates(m, Q, None, p)
    explicit = -(2 / n) * (1 + eps**2 * Q) @ m + (2 * eps / kappa) * m * (1.5 * rho - kappa * eps * np.trace(Q) / (2 * n))
    assert_allclose(dm, explicit, rtol=1e-13)


@pytest.mark.parametrize("center", [False, True])
def test_zero_overlap_is_invariant(center):
    curves = dmft.solve(alpha=math.inf, epsilon=0.25, init_overlap=[0.0, 0.0], t_max=50, center=center)
    assert np.all(curves.overlap == 0.0)


def test_generalising_fixed_point_is_reached():
    # theory.md §7.4: N = 2, κ = 1, ε = ¼ from m(0) = (0.2, −0.2) reaches m = ±2 and E_test ≈ 0 by t ≈ 20.
    curves = dmft.solve(alpha=math.inf, epsilon=0.25, scale=1.0, init_overlap=[0.2, -0.2], t_max=30)
    at20 = np.searchsorted(curves.t, 20.0)
    assert curves.test_loss[at20] < 1e-3
    assert_allclose(curves.overlap[-1], [2.0, -2.0], atol=1e-4)
    assert_allclose(curves.cov[-1], [[4.0, -4.0], [-4.0, 4.0]], atol=1e-3)
    assert curves.test_loss[-1] < 1e-7
    # Online (alpha = inf) learning is gradient flow on the population loss itself, so the loss
    # can only fall; and a mean squared error is never negative, not even at round-off level.
    # The loss is a difference of O(10) terms in (Q, m) (|C| = 4, m² = 4 at the fixed point), each
    # integrated to rtol = 1e-13 (DOP853), so a rise below ~1e-11 at the 1e-11 loss level of t > 25
    # is the integrator's error (3.6e-12 seen on a fresh install with scipy 1.17, numpy 2.4; which
    # release moved it was not isolated), not dynamics.
    assert np.all(np.diff(curves.test_loss) <= 1e-11)
    assert np.all(curves.test_loss >= 0) and np.all(curves.decomposition >= 0)
