"""Exact population test loss of the committee machine and its decomposition.

Convention A (theory.md §1.2): x ~ N(0, I_D/D), y = (β·x)²/2, f(x) = (κ/N) Σ_i φ(w_i·x),
φ(h) = h + (ε/2)h². The test loss E_x (f − y)² is a polynomial in the order parameters
Q = WWᵀ/D, m = Wβ/D, ρ = |β|²/D (theory.md §2.4) and splits into three non-negative terms
(theory.md §2.3, paper App. 12 eq. 22):

* variance  = ( κε trQ/(2N) − ρ/2 )²
* alignment = κ²ε²‖Q‖_F²/(2N²) − κε‖m‖²/N + ρ²/2      (= ‖κεM − ββᵀ‖_F²/(2D²))
* linear    = κ² 1ᵀQ1/N²                               (= κ²‖w̄‖²/D)

For the centred predictor f(x; W) − f(x; W₀) the same three terms hold with the Gram matrix of
U = (w_1(t), …, w_N(t), w_1(0), …, w_N(0), β) (theory.md §4.2, "Centred variant").
All functions broadcast over leading time axes.

Non-negativity: each term is non-negative by definition (a square, a squared Frobenius norm, a
quadratic form of a positive semi-definite Gram matrix), but evaluated from the order parameters
the alignment and linear terms are differences of O(1) numbers: near a generalising fixed point,
where the loss is ~1e-16 of its start, round-off leaves them at ±1e-16 (the online test loss
dipped to −1.6e-11). :func:`_nonnegative` clips them at 0, which changes nothing beyond that
round-off and keeps every loss a loss; values within round-off of 0 carry no information.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "loss_decomposition",
    "test_loss",
    "centered_loss_decomposition",
    "centered_test_loss",
    "loss_decomposition_from_weights",
]


def _nonnegative(terms: np.ndarray) -> np.ndarray:
    """Clip terms that are non-negative by definition at 0 (round-off only; see the module notes)."""
    return np.maximum(terms, 0.0)


def loss_decomposition(
    cov: np.ndarray, overlap: np.ndarray, *, epsilon: float, scale: float, rho: float = 1.0
) -> np.ndarray:
    """Three-term decomposition of the uncentred test loss (theory.md §2.3–2.4).

    Parameters
    ----------
    cov : ndarray, shape (..., N, N)
        Q = C_w(t,t).
    overlap : ndarray, shape (..., N)
        m(t).
    epsilon, scale, rho : float
        ε, κ, ρ.

    Returns
    -------
    ndarray, shape (..., 3)
        (variance, alignment, linear) terms; their sum is E_test(Q, m) of §2.4.
    """
    Q = np.asarray(cov, dtype=float)
    m = np.asarray(overlap, dtype=float)
    n = Q.shape[-1]
    # numpy scalars: a loss too large for a double becomes inf (the run is then reported as
    # non-finite, exit 3), where Python floats would raise OverflowError
    k, e = np.float64(scale), np.float64(epsilon)
    trace = np.trace(Q, axis1=-2, axis2=-1)
    variance = (k * e * trace / (2 * n) - rho / 2) ** 2
    alignment = (
        k**2 * e**2 * np.sum(Q * Q, axis=(-2, -1)) / (2 * n**2)
        - k * e * np.sum(m * m, axis=-1) / n
        + rho**2 / 2
    )
    linear = k**2 * np.sum(Q, axis=(-2, -1)) / n**2
    return _nonnegative(np.stack([variance, alignment, linear], axis=-1))


def test_loss(
    cov: np.ndarray, overlap: np.ndarray, *, epsilon: float, scale: float, rho: float = 1.0
) -> np.ndarray:
    """Exact population test loss E_test(Q, m) (theory.md §2.4), shape ``(...)``."""
    return loss_decomposition(cov, overlap, epsilon=epsilon, scale=scale, rho=rho).sum(axis=-1)


def _centered_gram(cov, cross, cov0, overlap, overlap0, rho):
    """Gram matrix G of U = (w(t), w(0), β)/√D, shape (..., 2N+1, 2N+1)."""
    Q = np.asarray(cov, dtype=float)
    X = np.asarray(cross, dtype=float)
    m = np.asarray(overlap, dtype=float)
    lead = Q.shape[:-2]
    n = Q.shape[-1]
    Q0 = np.broadcast_to(np.asarray(cov0, dtype=float), lead + (n, n))
    m0 = np.broadcast_to(np.asarray(overlap0, dtype=float), lead + (n,))
    G = np.empty(lead + (2 * n + 1, 2 * n + 1))
    G[..., :n, :n] = Q
    G[..., :n, n : 2 * n] = X
    G[..., n : 2 * n, :n] = np.swapaxes(X, -1, -2)
    G[..., n : 2 * n, n : 2 * n] = Q0
    G[..., :n, 2 * n] = m
    G[..., 2 * n, :n] = m
    G[..., n : 2 * n, 2 * n] = m0
    G[..., 2 * n, n : 2 * n] = m0
    G[..., 2 * n, 2 * n] = rho
    return G


def centered_loss_decomposition(
    cov: np.ndarray,
    cross: np.ndarray,
    overlap: np.ndarray,
    *,
    cov0: np.ndarray,
    overlap0: np.ndarray,
    epsilon: float,
    scale: float,
    rho: float = 1.0,
) -> np.ndarray:
    """Decomposition of the centred test loss E_x (f(x;W) − f(x;W₀) − y)² (theory.md §4.2).

    Parameters
    ----------
    cov : ndarray, shape (..., N, N)
        Q(t) = C_w(t,t).
    cross : ndarray, shape (..., N, N)
        X(t) = C_w(t,0) = W(t)W(0)ᵀ/D.
    overlap : ndarray, shape (..., N)
        m(t).
    cov0, overlap0 : ndarray
        C_w(0,0) and m(0).

    Returns
    -------
    ndarray, shape (..., 3)
        (variance, alignment, linear): (Σ c_k G_kk)², 2 Σ c_k c_l G_kl², bᵀGb with
        b = (κ/N)(1…1, −1…−1, 0) and c = (κε/(2N))(1…1, −1…−1, −N/(κε)).
    """
    G = _centered_gram(cov, cross, cov0, overlap, overlap0, rho)
    n = np.asarray(cov).shape[-1]
    k, e = np.float64(scale), np.float64(epsilon)   # overflow gives inf, not OverflowError
    b = np.concatenate([np.full(n, k / n), np.full(n, -k / n), [0.0]])
    c = np.concatenate([np.full(n, k * e / (2 * n)), np.full(n, -k * e / (2 * n)), [-0.5]])
    diag = np.diagonal(G, axis1=-2, axis2=-1)
    variance = (diag @ c) ** 2
    alignment = 2 * np.einsum("...kl,k,l->...", G * G, c, c)
    linear = np.einsum("...kl,k,l->...", G, b, b)
    return _nonnegative(np.stack([variance, alignment, linear], axis=-1))


def centered_test_loss(cov, cross, overlap, *, cov0, overlap0, epsilon, scale, rho=1.0):
    """Exact population test loss of the centred predictor (theory.md §4.2), shape ``(...)``."""
    return centered_loss_decomposition(
        cov, cross, overlap, cov0=cov0, overlap0=overlap0, epsilon=epsilon, scale=scale, rho=rho
    ).sum(axis=-1)


def loss_decomposition_from_weights(
    weights: np.ndarray,
    teacher: np.ndarray,
    *,
    epsilon: float,
    scale: float,
    init_weights: np.ndarray | None = None,
) -> np.ndarray:
    """The D-dimensional form of the decomposition (theory.md §2.3), from W and β.

    Parameters
    ----------
    weights : ndarray, shape (N, D)
        W.
    teacher : ndarray, shape (D,)
        β.
    init_weights : ndarray, shape (N, D), optional
        W₀ for the centred predictor: w̄ and M are replaced by w̄ − w̄₀ and M − M₀.

    Returns
    -------
    ndarray, shape (3,)
        (variance, alignment, linear) = ((κε/2)trM/D − |β|²/(2D))², ‖κεM − ββᵀ‖²/(2D²), κ²|w̄|²/D.
    """
    W = np.asarray(weights, dtype=float)
    beta = np.asarray(teacher, dtype=float)
    n, d = W.shape
    mean_w = W.mean(axis=0)
    M = W.T @ W / n
    if init_weights is not None:
        W0 = np.asarray(init_weights, dtype=float)
        mean_w = mean_w - W0.mean(axis=0)
        M = M - W0.T @ W0 / n
    k, e = float(scale), float(epsilon)
    variance = (k * e * np.trace(M) / (2 * d) - beta @ beta / (2 * d)) ** 2
    alignment = np.sum((k * e * M - np.outer(beta, beta)) ** 2) / (2 * d**2)
    linear = k**2 * mean_w @ mean_w / d
    return np.array([variance, alignment, linear])  # sums of squares: non-negative as computed
