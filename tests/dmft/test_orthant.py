"""Gaussian orthant probabilities and truncated moments (dmft.orthant), ReLU's closed-form I4
built on them, and the mixed ReLU/erf I4 (theory.md §10.5), against exact references and Monte
Carlo."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.stats import multivariate_normal

from dmft.activations import _erf_i4, erf, i4, relu, smoothed_relu
from dmft.orthant import orthant_probability, truncated_first_moment, truncated_second_moment


def _random_cov(rng, n):
    A = rng.standard_normal((n, n))
    return A @ A.T + 0.3 * np.eye(n)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_equicorrelated_orthant_probability_is_one_over_n_plus_one(n):
    # ρ = 1/2 for every pair: P(x > 0) = 1/(n + 1) exactly (x_i = z_0 + z_i, the largest of n + 1
    # exchangeable normals is z_0 with probability 1/(n + 1))
    C = 0.5 * np.ones((n, n)) + 0.5 * np.eye(n)
    assert_allclose(orthant_probability(3.0 * C), 1.0 / (n + 1), rtol=0, atol=1e-15)


def test_four_dimensional_orthant_probability_of_independent_blocks_factorises():
    C = np.array([[1.0, 0.7, 0, 0], [0.7, 1.0, 0, 0], [0, 0, 2.0, -0.6], [0, 0, -0.6, 0.5]])
    pair = lambda r: 0.25 + math.asin(r) / (2 * math.pi)  # noqa: E731
    assert_allclose(orthant_probability(C), pair(0.7) * pair(-0.6 / math.sqrt(2.0 * 0.5)), rtol=0, atol=1e-15)


def test_four_dimensional_orthant_probability_matches_genz_integration():
    # scipy's Genz–Bretz randomised quasi-Monte Carlo (10⁷ points): its error was up to 5e-9 in
    # repeated runs; the Plackett integral converges to 1e-15 in its nodes and is exact to 1e-15 on
    # the closed-form cases above, so the tolerance 1e-7 is the reference's
    rng = np.random.default_rng(3)
    covs = [_random_cov(rng, 4) for _ in range(3)]
    covs.append(np.array([[1, 0.99, 0.2, 0.1], [0.99, 1, 0.25, 0.1], [0.2, 0.25, 1, -0.3], [0.1, 0.1, -0.3, 1.0]]))
    for C in covs:
        ref = multivariate_normal.cdf(np.zeros(4), np.zeros(4), C, maxpts=10**7, abseps=1e-12, releps=1e-12)
        assert_allclose(orthant_probability(C), ref, rtol=0, atol=1e-7)


def test_truncated_moments_in_one_and_two_dimensions_are_the_known_closed_forms():
    c = 1.7
    assert_allclose(truncated_first_moment(np.array([[c]]), 0), math.sqrt(c / (2 * math.pi)), rtol=1e-15)
    assert_allclose(truncated_second_moment(np.array([[c]]), 0, 0), c / 2, rtol=1e-15)
    # E[relu(u) relu(w)]: the arc-cosine kernel (σ₁σ₂/2π)(sin θ + (π − θ) cos θ), θ = arccos ρ
    s1, s2, rho = 1.3, 0.7, -0.35
    C = np.array([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]])
    theta = math.acos(rho)
    arccos = s1 * s2 / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * math.cos(theta))
    assert_allclose(truncated_second_moment(C, 0, 1), arccos, rtol=1e-14)
    # and with an independent third and fourth variable the moment factorises
    C4 = np.zeros((4, 4))
    C4[:2, :2] = C
    C4[2:, 2:] = [[1.0, 0.4], [0.4, 2.0]]
    p34 = 0.25 + math.asin(0.4 / math.sqrt(2.0)) / (2 * math.pi)
    assert_allclose(truncated_second_moment(C4, 0, 1), arccos * p34, rtol=1e-13)


@pytest.mark.parametrize("n", [3, 4])
def test_truncated_moments_match_monte_carlo(n):
    rng = np.random.default_rng(11 + n)
    C = _random_cov(rng, n)
    x = rng.standard_normal((2_000_000, n)) @ np.linalg.cholesky(C).T
    inside = np.all(x > 0, axis=1)
    for value, samples in [(orthant_probability(C), inside * 1.0),
                           (truncated_first_moment(C, 1), x[:, 1] * inside),
                           (truncated_second_moment(C, 0, n - 1), x[:, 0] * x[:, n - 1] * inside),
                           (truncated_second_moment(C, 2, 2), x[:, 2] ** 2 * inside)]:
        se = samples.std() / math.sqrt(len(samples))
        assert abs(value - samples.mean()) < 5 * se


def test_relu_i4_merges_coinciding_fields_and_kills_opposite_ones():
    # (u, v, w, z) = (a, b, a, b): Θ(a)Θ(b) relu(a) relu(b) = relu(a) relu(b), the arc-cosine kernel
    s1, s2, rho = 1.1, 0.8, 0.3
    C2 = np.array([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]])
    idx = [0, 1, 0, 1]
    C = C2[np.ix_(idx, idx)]
    theta = math.acos(rho)
    arccos = s1 * s2 / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * math.cos(theta))
    assert_allclose(i4(relu(), relu(), relu(), relu(), C), arccos, rtol=1e-14)
    # w = −u: Θ(u) relu(−u) = 0
    C_opp = C.copy()
    C_opp[2, :] *= -1
    C_opp[:, 2] *= -1
    assert i4(relu(), relu(), relu(), relu(), C_opp) == 0.0
    # batched: both at once, and the same numbers
    assert_allclose(i4(relu(), relu(), relu(), relu(), np.stack([C, C_opp])), [arccos, 0.0], rtol=1e-14)


def test_smoothed_relu_i4_matches_monte_carlo_with_coinciding_fields():
    # the smoothed student on one field in two factors: independent smoothing noises, so the
    # fields are not merged (C + diag(s²) is regular)
    rng = np.random.default_rng(2)
    C2 = _random_cov(rng, 2)
    idx = [0, 1, 0, 0]
    C = C2[np.ix_(idx, idx)]
    act = smoothed_relu(0.3)
    value = i4(act, act, act, relu(), C)
    h = rng.standard_normal((2_000_000, 2)) @ np.linalg.cholesky(C2).T
    samples = act.dphi(h[:, 0]) * act.dphi(h[:, 1]) * act.phi(h[:, 0]) * np.maximum(h[:, 0], 0.0)
    assert abs(value - samples.mean()) < 5 * samples.std() / math.sqrt(len(samples))


def test_erf_student_i4_by_the_gaussian_tilt_is_saad_solla():
    # E[g′g′ erf erf] two ways: the tilt reduces it to the erf pair kernel at C̃ (theory.md §10.5);
    # Saad–Solla's formula is derived independently. Random C, and singular ones (u = v, w = z).
    from dmft.activations import _erf_student_i4

    rng = np.random.default_rng(21)
    covs = [_random_cov(rng, 4) for _ in range(5)]
    C3 = _random_cov(rng, 3)
    covs += [C3[np.ix_(idx, idx)] for idx in ([0, 0, 1, 2], [0, 1, 2, 2], [0, 1, 0, 1])]
    C = np.stack(covs)
    assert_allclose(_erf_student_i4(erf(), erf(), C), _erf_i4(C), rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("names, idx", [
    (("relu", "relu", "erf", "erf"), [0, 1, 2, 3]),
    (("relu", "relu", "relu", "erf"), [0, 1, 2, 3]),
    (("relu", "relu", "erf", "relu"), [0, 1, 2, 3]),
    (("relu", "relu", "relu", "erf"), [0, 1, 0, 2]),          # the student field inside Δ (i = k)
    (("relu", "relu", "erf", "erf"), [0, 0, 1, 1]),           # i = j and one teacher field twice
    (("smoothed_relu:0.3", "smoothed_relu:0.3", "erf", "smoothed_relu:0.3"), [0, 1, 2, 0]),
    (("erf", "erf", "relu", "relu"), [0, 1, 2, 3]),
    (("erf", "erf", "relu", "erf"), [0, 1, 0, 2]),
    (("erf", "erf", "relu", "relu"), [0, 0, 1, 1]),
    (("erf", "erf", "smoothed_relu:0.3", "tanh"), [0, 1, 2, 3]),
])
def test_mixed_relu_erf_i4_matches_monte_carlo(names, idx):
    # 2·10⁶ samples of the distinct fields; tolerance 5 standard errors
    from dmft.activations import get_activation

    acts = [get_activation(name) for name in names]
    rng = np.random.default_rng(sum(idx) + 7 * len(set(names)))
    n = max(idx) + 1
    base = _random_cov(rng, n)
    value = i4(*acts, base[np.ix_(idx, idx)])
    h = (rng.standard_normal((2_000_000, n)) @ np.linalg.cholesky(base).T)[:, idx]
    samples = acts[0].dphi(h[:, 0]) * acts[1].dphi(h[:, 1]) * acts[2].phi(h[:, 2]) * acts[3].phi(h[:, 3])
    assert abs(value - samples.mean()) < 5 * samples.std() / math.sqrt(len(samples))
