"""The NTK of the committee machine (theory.md §2.2, §2.5, §3) and its lazy dynamics (§1.4).

Every claim is checked against something independent: Monte Carlo with a tolerance from its
standard error, torch autograd, exact linear algebra of another route (explicit gradient
descent, least squares on the explicit Jacobian), or an exact identity.
"""

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from numpy.testing import assert_allclose

from comparisons.store import read_run
from grokking_cli.main import main
from grokking_cli.ntk import max_epsilon
from dmft.ntk import (
    cka,
    committee_output,
    empirical_ntk_spectrum,
    expected_ntk_gram,
    initial_ntk_regression,
    group_by_sector,
    kernel_regression,
    lazy_curves,
    lazy_time_grid,
    lazy_weights,
    make_problem,
    mercer_spectrum,
    ntk_eigendecomposition,
    ntk_gram,
    polynomial_loss_decomposition,
    target_decomposition,
)
from dmft.parameters import InvalidParameterError
from dmft.population import loss_decomposition_from_weights

torch.set_num_threads(1)

#: Monte Carlo checks pass when |estimate − exact| <= Z_MC standard errors (two-sided
#: probability of a false alarm 6e-7 per comparison for Gaussian errors; the draws are seeded).
Z_MC = 5.0


def gaussian_inputs(rng, count, dim):
    """x ~ N(0, I_D/D), rows (convention A)."""
    return rng.normal(size=(count, dim)) / math.sqrt(dim)


def problem(rng, *, dim, width, n_train, n_test, target_scale=0.5):
    W0 = rng.normal(size=(width, dim))
    beta = rng.normal(size=dim)
    X, Xt = gaussian_inputs(rng, n_train, dim), gaussian_inputs(rng, n_test, dim)
    return W0, beta, X, target_scale * (X @ beta) ** 2, Xt, target_scale * (Xt @ beta) ** 2


# ------------------------------------------------------------------------------------------
# Mercer spectrum (theory.md §3)
# ------------------------------------------------------------------------------------------
def test_mercer_eigen_equation_against_monte_carlo_of_the_kernel_operator():
    """(Tψ)(x) = E_{x'}[K̄(x,x')ψ(x')] estimated by Monte Carlo equals λψ(x) per sector.

    Tolerance Z_MC standard errors of the sample mean. The test also shows it can fail: the
    alternative constants (ε²/D² for the traceless sector, the paper's paraphrase; ε²/D for
    the radial one) are rejected by more than 2·Z_MC standard errors.
    """
    rng = np.random.default_rng(1)
    dim, epsilon, scale, width = 5, 1.2, 1.3, 2
    spectrum = mercer_spectrum(epsilon, dim, scale=scale, width=width)
    samples = gaussian_inputs(rng, 400_000, dim)
    points = gaussian_inputs(rng, 3, dim)
    b = rng.normal(size=dim)
    A = rng.normal(size=(dim, dim))
    A = A + A.T
    A -= np.trace(A) / dim * np.eye(dim)
    functions = {
        "linear": lambda x: x @ b,
        "traceless_quadratic": lambda x: np.einsum("pd,de,pe->p", x, A, x),
        "radial": lambda x: np.einsum("pd,pd->p", x, x),
    }
    pre = scale**2 / width
    alternatives = {"traceless_quadratic": pre * epsilon**2 / dim**2, "radial": pre * epsilon**2 / dim}
    K = expected_ntk_gram(points, epsilon=epsilon, scale=scale, width=width, inputs2=samples)  # (3, S)
    for label, psi in functions.items():
        terms = K * psi(samples)[None, :]
        estimate = terms.mean(axis=1)
        se = terms.std(axis=1, ddof=1) / math.sqrt(samples.shape[0])
        exact = spectrum[label].eigenvalue * psi(points)
        assert np.all(np.abs(estimate - exact) <= Z_MC * se), (label, estimate, exact, se)
        if label in alternatives:
            wrong = alternatives[label] * psi(points)
            assert np.all(np.abs(wrong - exact) > 2 * Z_MC * se), label
    # the direction 1 − D|x|²/(D+2) of the even sector is annihilated
    null = 1.0 - dim / (dim + 2.0) * functions["radial"](samples)
    terms = K * null[None, :]
    se = terms.std(axis=1, ddof=1) / math.sqrt(samples.shape[0])
    assert np.all(np.abs(terms.mean(axis=1)) <= Z_MC * se)


def test_expected_kernel_is_the_average_of_the_empirical_ntk_over_initialisations():
    """E_W[K_W] = K̄ (eq. 19 averaged = eq. 11): mean of 60 independent width-200 networks.

    Tolerance Z_MC standard errors of that mean (entrywise, from the spread over networks).
    """
    rng = np.random.default_rng(2)
    dim, epsilon, scale, width = 7, 0.9, 1.5, 200
    X = gaussian_inputs(rng, 5, dim)
    grams = np.stack([ntk_gram(rng.normal(size=(width, dim)), X, epsilon=epsilon, scale=scale) for _ in range(60)])
    se = grams.std(axis=0, ddof=1) / math.sqrt(grams.shape[0])
    exact = expected_ntk_gram(X, epsilon=epsilon, scale=scale, width=width)
    assert np.all(np.abs(grams.mean(axis=0) - exact) <= Z_MC * se + 1e-15)


@pytest.mark.parametrize("dim, epsilon", [(1, 0.3), (4, 1.7), (37, 0.25), (100, 0.02)])
def test_mercer_trace_and_hilbert_schmidt_identities(dim, epsilon):
    """Σ mult·λ = E[K̄(x,x)] and Σ mult·λ² = E[K̄(x,x')²] in closed Gaussian form.

    E|x|⁴ = (D+2)/D, E(x·x')² = 1/D, E(x·x')⁴ = 3(D+2)/D³, E(x·x')³ = 0: two equations that
    a wrong multiplicity or eigenvalue would break. Exact, so rtol 1e-12.
    """
    scale, width = 1.7, 3
    s = mercer_spectrum(epsilon, dim, scale=scale, width=width)
    pre = scale**2 / width
    assert_allclose(s.trace(), pre * (1 + epsilon**2 * (dim + 2) / dim), rtol=1e-12)
    assert_allclose(s.hilbert_schmidt(), pre**2 * (1 / dim + 3 * epsilon**4 * (dim + 2) / dim**3), rtol=1e-12)
    assert s.rank == dim + dim * (dim + 1) // 2
    assert s["linear"].multiplicity == dim
    # with scale=1, width=1 the values are the table of theory.md §3
    t = mercer_spectrum(epsilon, dim)
    assert_allclose([e.eigenvalue for e in t], [1 / dim, 2 * epsilon**2 / dim**2, epsilon**2 * (dim + 2) / dim**2])
    # lazy rates in theory time: 2, 4ε²/D, 2ε²(D+2)/D, independent of κ and N
    assert_allclose([s.rate(k) for k in ("linear", "traceless_quadratic", "radial")],
                    [2.0, 4 * epsilon**2 / dim, 2 * epsilon**2 * (dim + 2) / dim], rtol=1e-12)


def _check_gram_spectrum(dim, n_train, seed):
    epsilon = 0.5
    rng = np.random.default_rng(seed)
    X = gaussian_inputs(rng, n_train, dim)
    spectrum = empirical_ntk_spectrum(X, epsilon=epsilon)
    mercer = mercer_spectrum(epsilon, dim)
    # exact rank D + D(D+1)/2 (P exceeds it): the multiplicities, independently of any tolerance
    positive = spectrum.eigenvalues > 1e-10 * spectrum.eigenvalues[0]
    assert positive.sum() == mercer.rank
    tolerance = dim**-0.5
    by_label = {s.label: s for s in spectrum.sectors}
    for label in ("linear", "traceless_quadratic", "radial"):
        sector = by_label[label]
        assert sector.count == mercer[label].multiplicity
        assert abs(sector.mean / sector.analytic - 1) <= tolerance, (label, sector)
    # the alternative traceless constant ε²/D² is a factor 2 off and must be rejected
    assert abs(by_label["traceless_quadratic"].mean / (epsilon**2 / dim**2) - 1) > tolerance


def test_gram_spectrum_clusters_around_mercer_values():
    """Gram eigenvalues/P of K̄ on P = 1200 points at D = 24 (P > D(D+1)/2 + D = 324).

    Rank-ordered sector means must lie within a relative D^(-1/2) (= 0.20) of the analytic
    values: the finite-size corrections (fluctuations of |x|² = 1 + O(D^(-1/2)), mixing of the
    sectors at finite P) are of that order or smaller; observed 0.2–6 % over seeds 0–2
    (2 % at D = 60, see the slow test). ε = 0.5 keeps the radial eigenvalue ε²(D+2)/D² well
    below the linear bulk, so rank order separates the sectors.
    """
    _check_gram_spectrum(24, 1200, seed=0)


@pytest.mark.slow
def test_gram_spectrum_clusters_around_mercer_values_at_d60():
    """The same at D = 60, P = 4000 (about 20 s on one core)."""
    _check_gram_spectrum(60, 4000, seed=1)


def test_sector_grouping_puts_structural_zeros_in_the_null_group():
    """Zero eigenvalues are never labelled as a sector.

    * ε = 0: the quadratic sectors have analytic eigenvalue 0; the old grouping called the
      P − D zero modes "traceless_quadratic" (analytic 0).
    * network NTK of width N: its features φ'(w_i·x)x span at most N·D dimensions, so P − N·D
      eigenvalues vanish exactly; the old grouping put them into the traceless sector (at
      D = 12, N = 2, P = 60: 24 of its 35 values were rounding zeros, median ~1e-18).
    Eigenvalues count as zero below 1e-10 of the largest (rounding is ~1e-16 of it).
    """
    rng = np.random.default_rng(14)
    dim, width, P = 12, 2, 60
    X = gaussian_inputs(rng, P, dim)
    flat = empirical_ntk_spectrum(X, epsilon=0.0)
    assert [s.label for s in flat.sectors] == ["linear", "null"]
    assert [s.count for s in flat.sectors] == [dim, P - dim]
    network = empirical_ntk_spectrum(X, epsilon=0.4, weights=rng.normal(size=(width, dim)))
    by_label = {s.label: s for s in network.sectors}
    assert by_label["null"].count == P - width * dim
    top = network.eigenvalues[0]
    assert by_label["null"].maximum < 1e-10 * top
    nonzero = sum(s.count for s in network.sectors if s.label != "null")
    assert nonzero == width * dim == np.count_nonzero(network.eigenvalues > 1e-10 * top)
    assert by_label["traceless_quadratic"].minimum > 1e-10 * top


def test_cli_refuses_epsilon_beyond_float64_resolution_of_the_linear_sector():
    """K = XXᵀ + ε²(XXᵀ)²: once ε² exceeds ~1/(P·machine-ε) the linear eigenvalues (~1/D
    against ~ε²) are lost to rounding and the lazy curves silently freeze the linear modes.

    Library evidence at D = 20, P = 60, N = 2 (centred): at the CLI's bound (8.3e4) the Gram
    still has its structural N·D = 40 non-null modes and the train loss at t = 3 agrees with
    that at a tenth of the bound to rtol 1e-4 (the loss approaches its ε → ∞ limit like 1/ε:
    measured 1e-5), while at 100 × the bound a linear mode is frozen and the loss is off by
    2e-3. The CLI used to accept |ε| <= 1e50; it now refuses, naming epsilon, with exit code 2.
    """
    dim, P = 20, 60
    data = make_problem(dim, P, 20, 2, rho=1.0, target_scale=0.5, seed=0)
    args = (data["weights0"], data["x_train"], data["y_train"], data["x_test"], data["y_test"])

    def curves(eps):
        return lazy_curves(*args, epsilon=eps, scale=1.0, t=[0.0, 3.0], teacher=data["teacher"])

    bound = max_epsilon(dim, P)
    reference, at_bound, beyond = curves(0.1 * bound), curves(bound), curves(100 * bound)
    assert reference.settings["null_modes"] == at_bound.settings["null_modes"] == P - 2 * dim
    assert_allclose(at_bound.train_loss, reference.train_loss, rtol=1e-4)  # 1/ε approach to the limit: 1e-5
    assert beyond.settings["null_modes"] > P - 2 * dim
    assert abs(beyond.train_loss[-1] / reference.train_loss[-1] - 1) > 1e-3
    common = ["--dim", str(dim), "--n-train", str(P), "--n-test", "20", "--points", "3"]
    refused = CliRunner().invoke(main, ["ntk", "--epsilon", f"{100 * bound:g}", *common])
    assert refused.exit_code == 2, refused.output
    assert "epsilon" in refused.output and "Traceback" not in refused.output
    accepted = CliRunner().invoke(main, ["ntk", "--epsilon", f"{-0.99 * bound:g}", *common])
    assert accepted.exit_code == 0, accepted.output


def test_target_decomposition_powers_against_monte_carlo():
    """Sector powers of y = ½(β·x)² and the split y = xᵀBx + c|x|² itself (theory.md §3 eq. 18).

    The split is exact (rtol 1e-12); the powers E[y_s²] are compared with a Monte Carlo mean
    within Z_MC standard errors, and their sum with E[y²] = 3s²ρ² exactly.
    """
    rng = np.random.default_rng(3)
    dim = 6
    beta = rng.normal(size=dim)
    dec = target_decomposition(dim, teacher=beta)
    X = gaussian_inputs(rng, 400_000, dim)
    parts = dec.evaluate(X)
    y = 0.5 * (X @ beta) ** 2
    assert_allclose(parts["traceless_quadratic"] + parts["radial"], y, rtol=1e-12, atol=1e-14)
    assert abs(np.trace(dec.traceless_matrix)) < 1e-12
    for label in ("traceless_quadratic", "radial"):
        sq = parts[label] ** 2
        se = sq.std(ddof=1) / math.sqrt(sq.size)
        assert abs(sq.mean() - dec.power[label]) <= Z_MC * se, label
    cross = parts["traceless_quadratic"] * parts["radial"]  # orthogonal sectors
    assert abs(cross.mean()) <= Z_MC * cross.std(ddof=1) / math.sqrt(cross.size)
    assert_allclose(dec.total_power, 3 * 0.25 * dec.rho**2, rtol=1e-12)
    assert_allclose(target_decomposition(dim, rho=2.0, target_scale=1.0).total_power, 12.0, rtol=1e-12)


# ------------------------------------------------------------------------------------------
# Gram matrix (theory.md §2.2)
# ------------------------------------------------------------------------------------------
def test_ntk_gram_equals_autograd_jacobian_product():
    """Closed form (eq. 19) against J Jᵀ from torch autograd in float64, rtol 1e-12."""
    rng = np.random.default_rng(4)
    width, dim, epsilon, scale = 3, 5, 0.7, 2.3
    W = rng.normal(size=(width, dim))
    X, X2 = gaussian_inputs(rng, 4, dim), gaussian_inputs(rng, 6, dim)

    def model(weights, inputs):
        h = inputs @ weights.T
        return scale / width * (h + 0.5 * epsilon * h**2).sum(dim=1)

    Wt = torch.tensor(W, dtype=torch.float64)
    J1 = torch.func.jacrev(model)(Wt, torch.tensor(X)).reshape(4, -1)
    J2 = torch.func.jacrev(model)(Wt, torch.tensor(X2)).reshape(6, -1)
    assert_allclose(ntk_gram(W, X, epsilon=epsilon, scale=scale, inputs2=X2), (J1 @ J2.T).numpy(), rtol=1e-12)
    assert_allclose(ntk_gram(W, X, epsilon=epsilon, scale=scale), (J1 @ J1.T).numpy(), rtol=1e-12)
    # the summary-statistic form (κ²/N)(x·x')[1 + εw̄·(x+x') + ε²xᵀMx'] of eq. (19)
    wbar, M = W.mean(axis=0), W.T @ W / width
    form = scale**2 / width * (X @ X2.T) * (
        1 + epsilon * ((X @ wbar)[:, None] + (X2 @ wbar)[None, :]) + epsilon**2 * X @ M @ X2.T
    )
    assert_allclose(ntk_gram(W, X, epsilon=epsilon, scale=scale, inputs2=X2), form, rtol=1e-12)
    assert_allclose(committee_output(W, X, epsilon=epsilon, scale=scale), model(Wt, torch.tensor(X)).numpy(),
                    rtol=1e-13)


def test_eigendecomposition_descending_and_reconstructs():
    rng = np.random.default_rng(5)
    W, X = rng.normal(size=(2, 6)), gaussian_inputs(rng, 9, 6)
    K = ntk_gram(W, X, epsilon=0.4)
    values, vectors = ntk_eigendecomposition(K)
    assert np.all(np.diff(values) <= 0)
    assert_allclose(vectors @ np.diag(values) @ vectors.T, K, atol=1e-13 * np.abs(K).max())
    assert_allclose(vectors.T @ vectors, np.eye(9), atol=1e-12)


# ------------------------------------------------------------------------------------------
# CKA (theory.md §2.5)
# ------------------------------------------------------------------------------------------
def test_cka_known_values_and_invariances():
    rng = np.random.default_rng(6)
    y = rng.normal(size=12) + 2.0
    yc = y - y.mean()
    # K = y_c y_cᵀ is perfectly aligned
    assert_allclose(cka(np.outer(yc, yc), y), 1.0, rtol=1e-12)
    # one-sided centring of the spec: K = yyᵀ gives |y_c|/|y| (derived: K_c = y_c yᵀ)
    assert_allclose(cka(np.outer(y, y), y), np.linalg.norm(yc) / np.linalg.norm(y), rtol=1e-12)
    assert_allclose(cka(np.outer(y, y), y, centering="two-sided"), 1.0, rtol=1e-12)
    W, X = rng.normal(size=(3, 8)), gaussian_inputs(rng, 12, 8)
    K = ntk_gram(W, X, epsilon=0.5)
    base = cka(K, y)
    assert_allclose(cka(3.7 * K, -2.5 * y), base, rtol=1e-12)
    assert_allclose(cka(K + np.outer(np.ones(12), rng.normal(size=12)), y), base, rtol=1e-10)
    perm = rng.permutation(12)
    assert_allclose(cka(K[np.ix_(perm, perm)], y[perm]), base, rtol=1e-12)
    # against the doubly centred numerator with the one-sided norm, written with H = I − 11ᵀ/P
    H = np.eye(12) - 1 / 12
    assert_allclose(base, (y @ H @ K @ H @ y) / (np.linalg.norm(H @ K) * (y @ H @ y)), rtol=1e-12)
    assert -1.0 <= base <= 1.0


def test_cka_of_a_psd_gram_lies_in_unit_interval_one_sided_below_two_sided():
    """For PSD K: 0 <= one-sided <= two-sided <= 1 (the numerators agree, ‖HK‖_F >= ‖HKH‖_F,
    and y_cᵀHKHy_c <= λ_max‖y_c‖² <= ‖HKH‖_F‖y_c‖²); 1e-12 slack for rounding."""
    rng = np.random.default_rng(15)
    for _ in range(200):
        W, X = rng.normal(size=(2, 5)), gaussian_inputs(rng, 9, 5)
        K, y = ntk_gram(W, X, epsilon=rng.normal()), rng.normal(size=9) + rng.normal()
        one, two = cka(K, y), cka(K, y, centering="two-sided")
        assert -1e-12 <= one <= two + 1e-12 and two <= 1 + 1e-12


# ------------------------------------------------------------------------------------------
# Kernel regression
# ------------------------------------------------------------------------------------------
def test_kernel_regression_matches_direct_solve_and_interpolates():
    rng = np.random.default_rng(7)
    W0, beta, X, y, Xt, yt = problem(rng, dim=8, width=4, n_train=20, n_test=15)  # N·D = 32 > P
    K = ntk_gram(W0, X, epsilon=0.6)
    Kt = ntk_gram(W0, Xt, epsilon=0.6, inputs2=X)
    scale_rel = np.linalg.cond(K) * 1e-15
    assert_allclose(kernel_regression(K, y, Kt), Kt @ np.linalg.solve(K, y), rtol=max(1e-9, scale_rel))
    assert_allclose(kernel_regression(K, y, K), y, rtol=1e-8, atol=1e-10)
    assert_allclose(kernel_regression(K, y, Kt, ridge=0.3), Kt @ np.linalg.solve(K + 0.3 * np.eye(20), y),
                    rtol=1e-12)


def _jacobian(W0, X, epsilon, scale):
    """Explicit Jacobian ∂f(x_μ)/∂W at W₀, shape (P, N, D)."""
    n = W0.shape[0]
    return scale / n * (1 + epsilon * X @ W0.T)[:, :, None] * X[:, None, :]


def test_kernel_regression_singular_gram_is_min_norm_least_squares():
    """P > N·D: the ridge-0 fit equals the minimum-norm least-squares fit in the Jacobian features."""
    rng = np.random.default_rng(8)
    W0, beta, X, y, Xt, yt = problem(rng, dim=5, width=2, n_train=30, n_test=10)  # rank <= 10 < 30
    eps, kappa = 0.8, 1.4
    K, Kt = ntk_gram(W0, X, epsilon=eps, scale=kappa), ntk_gram(W0, Xt, epsilon=eps, scale=kappa, inputs2=X)
    J, Jt = _jacobian(W0, X, eps, kappa).reshape(30, -1), _jacobian(W0, Xt, eps, kappa).reshape(10, -1)
    theta = np.linalg.lstsq(J, y, rcond=None)[0]
    assert_allclose(kernel_regression(K, y, Kt), Jt @ theta, rtol=1e-8, atol=1e-10)


# ------------------------------------------------------------------------------------------
# Lazy curves (theory.md §1.4)
# ------------------------------------------------------------------------------------------
def explicit_linearised_gd(W0, X, y, Xt, *, epsilon, scale, lr, steps, center):
    """Plain gradient descent on the linearised model with η = lr·N/κ², recorded at ``steps``."""
    n = W0.shape[0]
    P = X.shape[0]
    eta = lr * n / scale**2
    J, Jt = _jacobian(W0, X, epsilon, scale), _jacobian(W0, Xt, epsilon, scale)
    f0 = 0.0 if center else committee_output(W0, X, epsilon=epsilon, scale=scale)
    f0t = 0.0 if center else committee_output(W0, Xt, epsilon=epsilon, scale=scale)
    W = W0.copy()
    record = {}
    for step in range(int(max(steps)) + 1):
        if step in steps:
            dW = W - W0
            record[step] = (W.copy(), f0 + np.einsum("pnd,nd->p", J, dW), f0t + np.einsum("pnd,nd->p", Jt, dW))
        r = y - (f0 + np.einsum("pnd,nd->p", J, W - W0))
        W = W + eta * (2.0 / P) * np.einsum("p,pnd->nd", r, J)
    return record


@pytest.mark.parametrize("center", [True, False])
def test_lazy_curves_against_explicit_gradient_descent(center):
    """Eigenbasis solution against explicit GD on the linearised model.

    * ``lr`` given: the same discrete dynamics, so agreement to rounding (rtol 1e-9).
    * gradient flow: differs from GD by the O(η) discretisation error; per mode
      |e^{−as} − (1−a)^s| <= a/(2e(1−a)), a = 2η₀λ̂/P, so |ΔL_train| <= a_max/(e(1−a_max))·L(0)
      and |ΔW|_F <= sqrt(λ_max(K))·η₀N/(κ²P e(1−a_max))·|r(0)|. Asserted, and the flow must
      actually differ from GD (the bound is not vacuous).
    """
    rng = np.random.default_rng(9)
    dim, width, P, Q = 8, 3, 20, 30
    eps, kappa, lr = 0.6, 1.3, 0.05
    W0, beta, X, y, Xt, yt = problem(rng, dim=dim, width=width, n_train=P, n_test=Q)
    steps = [0, 16, 160, 800]
    t = np.array(steps) * lr / dim
    gd = explicit_linearised_gd(W0, X, y, Xt, epsilon=eps, scale=kappa, lr=lr, steps=steps, center=center)
    common = dict(epsilon=eps, scale=kappa, t=t, teacher=beta, center=center)
    exact = lazy_curves(W0, X, y, Xt, yt, lr=lr, **common)
    flow = lazy_curves(W0, X, y, Xt, yt, **common)
    W_gd = np.stack([gd[s][0] for s in steps])
    train_gd = np.array([np.mean((y - gd[s][1]) ** 2) for s in steps])
    test_gd = np.array([np.mean((yt - gd[s][2]) ** 2) for s in steps])
    assert_allclose(exact.train_loss, train_gd, rtol=1e-9)
    assert_allclose(exact.extras["test_loss_test_set"], test_gd, rtol=1e-9)
    assert_allclose(exact.overlap, W_gd @ beta / dim, rtol=1e-9, atol=1e-12)
    assert_allclose(exact.cov, W_gd @ W_gd.transpose(0, 2, 1) / dim, rtol=1e-9)

    K = ntk_gram(W0, X, epsilon=eps, scale=kappa)
    lam_max = np.linalg.eigvalsh(K)[-1]
    a_max = 2 * lr * (width / kappa**2) * lam_max / P
    assert a_max < 0.5
    f0 = 0.0 if center else committee_output(W0, X, epsilon=eps, scale=kappa)
    r0 = y - f0
    train_bound = a_max / (math.e * (1 - a_max)) * np.mean(r0**2)
    diff = np.abs(flow.train_loss - train_gd)
    assert np.all(diff <= train_bound)
    assert diff.max() > 1e-3 * train_bound
    w_bound = math.sqrt(lam_max) * lr * width / (kappa**2 * P * math.e * (1 - a_max)) * np.linalg.norm(r0)
    W_flow = lazy_weights(W0, X, y, epsilon=eps, scale=kappa, t=t, center=center)
    assert_allclose(lazy_weights(W0, X, y, epsilon=eps, scale=kappa, t=t, center=center, lr=lr), W_gd, rtol=1e-9,
                    atol=1e-12)
    w_diff = np.linalg.norm(W_flow - W_gd, axis=(1, 2))
    assert np.all(w_diff <= w_bound)
    assert w_diff.max() > 1e-3 * w_bound


@pytest.mark.parametrize("center", [True, False])
def test_lazy_population_loss_against_monte_carlo(center):
    """The exact population MSE of the linearised predictor (a quadratic polynomial in x)
    against a Monte Carlo mean of (f_lin(x) − y)² over 300 000 fresh inputs, where f_lin is
    evaluated directly from the linearised weights; tolerance Z_MC standard errors, per term
    of the decomposition too (each term is the mean of its own random variable)."""
    rng = np.random.default_rng(10)
    dim, width = 6, 3
    eps, kappa = 0.7, 1.2
    W0, beta, X, y, Xt, yt = problem(rng, dim=dim, width=width, n_train=15, n_test=5)
    t = np.array([0.0, 0.7, 5.0])
    curves = lazy_curves(W0, X, y, Xt, yt, epsilon=eps, scale=kappa, t=t, teacher=beta, center=center)
    W = lazy_weights(W0, X, y, epsilon=eps, scale=kappa, t=t, center=center)
    fresh = gaussian_inputs(rng, 300_000, dim)
    J = _jacobian(W0, fresh, eps, kappa)
    f0 = 0.0 if center else committee_output(W0, fresh, epsilon=eps, scale=kappa)
    target = 0.5 * (fresh @ beta) ** 2
    for j in range(t.size):
        err2 = (f0 + np.einsum("pnd,nd->p", J, W[j] - W0) - target) ** 2
        se = err2.std(ddof=1) / math.sqrt(err2.size)
        assert abs(err2.mean() - curves.test_loss[j]) <= Z_MC * se, (j, err2.mean(), curves.test_loss[j], se)
    assert_allclose(curves.decomposition.sum(axis=1), curves.test_loss, rtol=1e-12)
    # at t = 0 the linearised model is the network itself (or zero when centred)
    reference = loss_decomposition_from_weights(W0, beta, epsilon=eps, scale=kappa,
                                                init_weights=W0 if center else None)
    assert_allclose(curves.decomposition[0], reference, rtol=1e-12, atol=1e-14)
    assert_allclose(curves.overlap[0], W0 @ beta / dim, rtol=1e-12)
    assert_allclose(curves.cov[0], W0 @ W0.T / dim, rtol=1e-12)


def test_polynomial_loss_decomposition_is_the_committee_decomposition():
    """For b = κw̄, A = (κε/2)M the three terms are those of theory.md §2.3 (rtol 1e-12)."""
    rng = np.random.default_rng(11)
    W, beta = rng.normal(size=(4, 9)), rng.normal(size=9)
    eps, kappa = 0.35, 2.1
    ours = polynomial_loss_decomposition(kappa * W.mean(axis=0), kappa * eps / 2 * W.T @ W / 4, beta)
    assert_allclose(ours, loss_decomposition_from_weights(W, beta, epsilon=eps, scale=kappa), rtol=1e-12)


@pytest.mark.parametrize("center", [True, False])
def test_lazy_limit_is_kernel_regression(center):
    """t → ∞ of the flow = kernel interpolation: train loss 0 (P < N·D, K invertible), test-set
    MSE and population MSE equal to the K₀-regression helper, and test predictions to the
    plain :func:`kernel_regression` of the residual (rtol 1e-8: conditioning of K)."""
    rng = np.random.default_rng(12)
    W0, beta, X, y, Xt, yt = problem(rng, dim=8, width=4, n_train=20, n_test=25)
    eps, kappa = 0.5, 1.7
    curves = lazy_curves(W0, X, y, Xt, yt, epsilon=eps, scale=kappa, t=[0.0, 10.0, np.inf], teacher=beta,
                         center=center)
    reg = initial_ntk_regression(W0, X, y, Xt, yt, epsilon=eps, scale=kappa, center=center, teacher=beta)
    f0 = 0.0 if center else committee_output(W0, X, epsilon=eps, scale=kappa)
    f0t = 0.0 if center else committee_output(W0, Xt, epsilon=eps, scale=kappa)
    K, Kt = ntk_gram(W0, X, epsilon=eps, scale=kappa), ntk_gram(W0, Xt, epsilon=eps, scale=kappa, inputs2=X)
    direct = f0t + Kt @ np.linalg.solve(K, y - f0)
    assert curves.settings["null_modes"] == 0
    assert curves.train_loss[-1] < 1e-16 * max(1.0, curves.train_loss[0])
    assert_allclose(curves.extras["test_loss_test_set"][-1], np.mean((direct - yt) ** 2), rtol=1e-8)
    assert_allclose(reg.test_predictions, direct, rtol=1e-8, atol=1e-10)
    assert_allclose(curves.extras["test_loss_test_set"][-1], reg.test_mse, rtol=1e-8)
    assert_allclose(curves.test_loss[-1], reg.population_mse, rtol=1e-8)
    assert reg.train_mse < 1e-16
    # the loss decreases monotonically along gradient flow
    assert np.all(np.diff(curves.train_loss) <= 0)


def test_lazy_limit_with_singular_gram_is_least_squares():
    """P > N·D: null modes stay frozen and t = ∞ leaves the least-squares residual of the
    explicit Jacobian features (numpy lstsq; rtol 1e-8)."""
    rng = np.random.default_rng(13)
    W0, beta, X, y, Xt, yt = problem(rng, dim=5, width=2, n_train=30, n_test=10)
    eps, kappa = 0.8, 1.0
    curves = lazy_curves(W0, X, y, Xt, yt, epsilon=eps, scale=kappa, t=[0.0, np.inf], teacher=beta)
    J = _jacobian(W0, X, eps, kappa).reshape(30, -1)
    theta = np.linalg.lstsq(J, y, rcond=None)[0]
    assert curves.settings["null_modes"] == 30 - 10
    assert_allclose(curves.train_loss[-1], np.mean((y - J @ theta) ** 2), rtol=1e-8)
    W_inf = lazy_weights(W0, X, y, epsilon=eps, scale=kappa, t=[np.inf])[0]
    assert_allclose((W_inf - W0).ravel(), theta, rtol=1e-8, atol=1e-10)  # the minimum-norm solution


# ------------------------------------------------------------------------------------------
# invalid input
# ------------------------------------------------------------------------------------------
def _bad_calls():
    rng = np.random.default_rng(0)
    W, beta, X, y, Xt, yt = problem(rng, dim=4, width=2, n_train=6, n_test=5)
    ok = dict(epsilon=0.3, scale=1.0, t=[0.0, 1.0], teacher=beta)
    lazy = lambda **kw: lazy_curves(W, X, y, Xt, yt, **(ok | kw))  # noqa: E731
    return [
        (lambda: mercer_spectrum(float("nan"), 5), "epsilon"),
        (lambda: mercer_spectrum(0.1, 0), "dim"),
        (lambda: mercer_spectrum(0.1, 2.5), "dim"),
        (lambda: mercer_spectrum(0.1, 5, scale=0.0), "scale"),
        (lambda: mercer_spectrum(0.1, 5, width=0), "width"),
        (lambda: target_decomposition(5, rho=-1.0), "rho"),
        (lambda: target_decomposition(5, teacher=np.ones(4)), "teacher"),
        (lambda: target_decomposition(5, target_scale=0.0), "target_scale"),
        (lambda: ntk_gram(W, X[:, :3], epsilon=0.1), "inputs"),
        (lambda: ntk_gram(W, X, epsilon=np.inf), "epsilon"),
        (lambda: ntk_gram(W, X, epsilon=0.1, scale=-1.0), "scale"),
        (lambda: ntk_gram(W[0], X, epsilon=0.1), "weights"),
        (lambda: ntk_eigendecomposition(np.array([[1.0, 2.0], [0.0, 1.0]])), "symmetric"),
        (lambda: cka(np.eye(3), np.ones(4)), "y"),
        (lambda: cka(np.eye(3), np.ones(3)), "y"),
        (lambda: cka(np.eye(3), np.arange(3.0), centering="both"), "centering"),
        (lambda: kernel_regression(np.eye(3), np.ones(3), np.ones((2, 3)), ridge=-1.0), "ridge"),
        (lambda: kernel_regression(np.eye(3), np.ones(3), np.ones((2, 4))), "K_test_train"),
        (lambda: lazy(t=[1.0, 0.5]), "t"),
        (lambda: lazy(t=[-1.0]), "t"),
        (lambda: lazy(t=[np.nan]), "t"),
        (lambda: lazy(lr=0.0), "lr"),
        (lambda: lazy(lr=0.3, t=[0.1]), "t"),
        (lambda: lazy(teacher=np.ones(3)), "teacher"),
        (lambda: lazy(epsilon=np.nan), "epsilon"),
        (lambda: lazy_curves(W, X, y[:-1], Xt, yt, **ok), "y_train"),
        (lambda: lazy_curves(W, X, y, Xt[:, :2], yt, **ok), "x_test"),
        (lambda: empirical_ntk_spectrum(X, epsilon=0.1, weights=np.ones((2, 3))), "weights"),
        # these returned NaN / negative times, or raised OverflowError, ZeroDivisionError, plain ValueError
        (lambda: mercer_spectrum(1e200, 5), "epsilon"),
        (lambda: target_decomposition(5, rho=1e200), "rho"),
        (lambda: target_decomposition(5, teacher=np.zeros(5)), "teacher"),
        (lambda: lazy_time_grid(0.1, 1.0, 5, dim=3, lr=0.0), "lr"),
        (lambda: lazy_time_grid(0.1, 1.0, 5, dim=3, lr=-1.0), "lr"),
        (lambda: lazy_time_grid(0.1, 1.0, 5, dim=3, lr=np.nan), "lr"),
        (lambda: lazy_time_grid(0.1, 1.0, 5, dim=0, lr=1.0), "dim"),
        (lambda: lazy_time_grid(1e-3, 2e-3, 5, dim=3, lr=1.0), "t_max"),
        (lambda: make_problem(3, 2, 2, 1, rho=0.0, target_scale=0.5, seed=0), "rho"),
        (lambda: make_problem(3, 2, 2, 1, rho=-1.0, target_scale=0.5, seed=0), "rho"),
        (lambda: make_problem(0, 2, 2, 1, rho=1.0, target_scale=0.5, seed=0), "dim"),
        (lambda: make_problem(3, 0, 2, 1, rho=1.0, target_scale=0.5, seed=0), "n_train"),
        (lambda: make_problem(3, 2, 2, 0, rho=1.0, target_scale=0.5, seed=0), "width"),
        (lambda: make_problem(3, 2, 2, 1, rho=1.0, target_scale=0.5, seed=-1), "seed"),
        (lambda: cka(np.eye(3), np.ones(3)), "y"),
        (lambda: cka(np.zeros((3, 3)), np.arange(3.0)), "K"),
        (lambda: cka(np.eye(1), np.ones(1)), "K"),
        (lambda: cka([["a", "b"], ["c", "d"]], np.arange(2.0)), "K"),
        (lambda: lazy(t=["soon"]), "t"),
        (lambda: lazy(t=[0.0, np.inf], lr=0.1), "t"),
        (lambda: lazy(target_scale=0.0), "target_scale"),
        (lambda: lazy(rcond=-1.0), "rcond"),
        (lambda: kernel_regression(np.eye(3), np.ones(3), np.eye(3), rcond=-1.0), "rcond"),
        (lambda: initial_ntk_regression(W, X, y, Xt, yt, epsilon=0.1, ridge=-1.0), "ridge"),
        (lambda: group_by_sector(np.ones(3), mercer_spectrum(0.1, 3), rank=-1), "rank"),
        (lambda: mercer_spectrum(0.1, 3).sorted_eigenvalues(-1), "count"),
    ]


@pytest.mark.parametrize("index", range(len(_bad_calls())))
def test_invalid_input_raises_invalid_parameter_error_naming_the_parameter(index):
    """Every refusal is an InvalidParameterError (the type the CLI maps to exit 2), not a
    plain ValueError, OverflowError or ZeroDivisionError, and never a NaN result."""
    call, name = _bad_calls()[index]
    with pytest.raises(InvalidParameterError, match=name):
        call()


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------
SMALL = ["--dim", "12", "--n-train", "40", "--n-test", "50", "--width", "3", "--points", "7", "--t-max", "100"]


@pytest.mark.parametrize(
    "args, name",
    [
        (["--epsilon", "nan"], "epsilon"),
        (["--epsilon", "0.2", "--dim", "0"], "dim"),
        (["--epsilon", "0.2", "--n-train", "0"], "n_train"),
        (["--epsilon", "0.2", "--width", "0"], "width"),
        (["--epsilon", "0.2", "--scale", "-1"], "scale"),
        (["--epsilon", "0.2", "--ridge", "-1"], "ridge"),
        (["--epsilon", "0.2", "--t-max", "0"], "t_max"),
        (["--epsilon", "0.2", "--lr", "0"], "lr"),
        (["--epsilon", "0.2", "--rho", "0"], "rho"),
        (["--epsilon", "0.2", "--dim", "2.5"], "dim"),
    ],
)
def test_cli_rejects_bad_input_with_exit_code_2(args, name):
    result = CliRunner().invoke(main, ["ntk", *args])
    assert result.exit_code == 2, result.output
    assert name.replace("_", "-") in result.output or name in result.output
    assert "Traceback" not in result.output


def test_cli_json_matches_library_and_stores_run(tmp_path):
    out, plot = tmp_path / "ntk.h5", tmp_path / "ntk.png"
    result = CliRunner().invoke(
        main, ["ntk", "--epsilon", "0.3", *SMALL, "--seed", "4", "--json", "--out", str(out), "--plot", str(plot)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    mercer = mercer_spectrum(0.3, 12, width=3)
    assert [m["eigenvalue"] for m in summary["mercer"]] == [e.eigenvalue for e in mercer]
    assert summary["parameters"]["alpha"] == pytest.approx(40 / 12)
    lazy = summary["lazy"]
    assert lazy["kind"] == "lazy" and len(lazy["t"]) == 7
    # the last lazy time approaches the t = inf limit from above (train loss decreases)
    assert np.all(np.diff(lazy["train_loss"]) <= 0)
    assert -1 <= summary["cka"]["test"] <= 1
    name = summary["stored"]["run_name"]
    assert name.startswith("lazy_alpha3.33333_scale1_eps0.3_N3_centered_seed4_")  # readable, then the digest
    stored = read_run(out, name)
    assert_allclose(stored.test_loss, lazy["test_loss"], rtol=1e-12)
    assert_allclose(stored.extras["mercer_eigenvalues"], [e.eigenvalue for e in mercer], rtol=1e-15)
    assert plot.stat().st_size > 10_000


def test_cli_text_output():
    result = CliRunner().invoke(main, ["ntk", "--epsilon", "0.3", *SMALL, "--lr", "0.5"])
    assert result.exit_code == 0, result.output
    for key in ("Analytic Mercer spectrum", "traceless quad", "CKA", "K0 regression", "gradient descent"):
        assert key in result.output


def test_lazy_gradient_descent_beyond_its_stability_bound_is_refused():
    """Discrete GD on the linearised model multiplies mode k by 1 − a_k, a_k = 2η₀λ̂_k/P: it
    converges iff η₀ < P/λ̂_max. Just below the bound the explicit GD's residual still shrinks
    (checked against the independent explicit iteration); at and beyond it the call is refused,
    naming lr and the bound, instead of returning growing curves."""
    rng = np.random.default_rng(4)
    dim, width, P, Q = 6, 2, 12, 10
    eps, kappa = 0.5, 1.0
    W0, beta, X, y, Xt, yt = problem(rng, dim=dim, width=width, n_train=P, n_test=Q)
    lam_hat_max = np.linalg.eigvalsh(ntk_gram(W0, X, epsilon=eps, scale=kappa))[-1] * width / kappa**2
    bound = P / lam_hat_max
    common = dict(epsilon=eps, scale=kappa, teacher=beta, center=True)
    below = 0.97 * bound
    steps = [0, 400]
    gd = explicit_linearised_gd(W0, X, y, Xt, epsilon=eps, scale=kappa, lr=below, steps=steps, center=True)
    curves = lazy_curves(W0, X, y, Xt, yt, lr=below, t=np.array(steps) * below / dim, **common)
    assert_allclose(curves.train_loss[-1], np.mean((y - gd[400][1]) ** 2), rtol=1e-7, atol=1e-14)
    assert curves.train_loss[-1] < curves.train_loss[0]
    for lr in (bound * 1.0001, 10 * bound):
        with pytest.raises(InvalidParameterError, match=r"lr \(eta0\) must be < P/max\(lambda_hat\)"):
            lazy_curves(W0, X, y, Xt, yt, lr=lr, t=np.array([0.0, 10 * lr / dim]), **common)
