"""Exact population loss (theory.md §2.3–2.4) against the D-dimensional formula and Monte Carlo."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from dmft.population import (
    centered_loss_decomposition,
    centered_test_loss,
    loss_decomposition,
    loss_decomposition_from_weights,
    test_loss as population_test_loss,
)


def _committee_mc(W, beta, x, *, epsilon, scale, W0=None):
    """Monte Carlo squared errors (f − y)² over the inputs ``x`` (rows), convention A."""
    n = W.shape[0]
    phi = lambda h: h + 0.5 * epsilon * h**2
    f = scale / n * phi(x @ W.T).sum(axis=1)
    if W0 is not None:
        f = f - scale / n * phi(x @ W0.T).sum(axis=1)
    y = 0.5 * (x @ beta) ** 2
    return (f - y) ** 2


@pytest.mark.parametrize("width", [1, 2, 5])
def test_order_parameter_form_equals_d_dimensional_form(rng, width):
    d = 30
    W = rng.normal(size=(width, d)) * rng.uniform(0.5, 2.0, size=(width, 1))
    beta = rng.normal(size=d)
    Q, m, rho = W @ W.T / d, W @ beta / d, beta @ beta / d
    ours = loss_decomposition(Q, m, epsilon=0.3, scale=1.7, rho=rho)
    reference = loss_decomposition_from_weights(W, beta, epsilon=0.3, scale=1.7)
    # Both are exact identities; agreement to rounding (values are O(1)).
    assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)


def test_centered_form_equals_d_dimensional_form(rng):
    d, n = 25, 3
    W0 = rng.normal(size=(n, d))
    W = W0 + 0.4 * rng.normal(size=(n, d))
    beta = rng.normal(size=d)
    kw = dict(epsilon=0.4, scale=2.0)
    ours = centered_loss_decomposition(
        W @ W.T / d, W @ W0.T / d, W @ beta / d, cov0=W0 @ W0.T / d, overlap0=W0 @ beta / d,
        rho=beta @ beta / d, **kw,
    )
    reference = loss_decomposition_from_weights(W, beta, init_weights=W0, **kw)
    assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("center", [False, True])
def test_population_loss_matches_monte_carlo(rng, center):
    d, n, samples = 20, 2, 400_000
    W0 = rng.normal(size=(n, d))
    W = W0 + 0.5 * rng.normal(size=(n, d)) if center else W0
    beta = rng.normal(size=d)
    x = rng.normal(size=(samples, d)) / np.sqrt(d)
    kw = dict(epsilon=0.25, scale=1.5)
    errors = _committee_mc(W, beta, x, W0=W0 if center else None, **kw)
    rho = beta @ beta / d
    if center:
        exact = centered_test_loss(W @ W.T / d, W @ W0.T / d, W @ beta / d, cov0=W0 @ W0.T / d,
                                   overlap0=W0 @ beta / d, rho=rho, **kw)
    else:
        exact = population_test_loss(W @ W.T / d, W @ beta / d, rho=rho, **kw)
    standard_error = errors.std() / np.sqrt(samples)
    # 5 standard errors: a false alarm has probability < 1e-6.
    assert abs(errors.mean() - exact) < 5 * standard_error


def test_zero_loss_at_generalising_fixed_point():
    # theory.md §4.3: w_i = a_i β with Σa_i = 0 and (1/N)Σa_i² = 1/(κε) has zero test loss.
    scale, epsilon, rho = 1.0, 0.25, 1.0
    a = np.array([2.0, -2.0])
    Q, m = np.outer(a, a) * rho, a * rho
    assert_allclose(population_test_loss(Q, m, epsilon=epsilon, scale=scale, rho=rho), 0.0, atol=1e-14)


def test_decomposition_terms_are_nonnegative_and_broadcast(rng):
    T, n, d = 7, 3, 10
    W = rng.normal(size=(T, n, d))
    beta = rng.normal(size=d) / np.sqrt(np.sum(rng.normal(size=d) ** 2) / d)
    Q, m = W @ np.swapaxes(W, -1, -2) / d, W @ beta / d
    rho = beta @ beta / d
    terms = loss_decomposition(Q, m, epsilon=0.2, scale=1.3, rho=rho)
    assert terms.shape == (T, 3)
    assert np.all(terms >= -1e-12)  # each term is a squared norm for realisable (Q, m, rho)
    for i in range(T):
        assert_allclose(terms[i], loss_decomposition(Q[i], m[i], epsilon=0.2, scale=1.3, rho=rho), rtol=1e-14)
