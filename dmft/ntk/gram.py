"""The NTK of the committee machine: gram matrices.

Part of :mod:`dmft.ntk` (the names are re-exported there).
"""

from __future__ import annotations

import numpy as np

from dmft.ntk._checks import _matrix, _symmetric
from dmft.parameters import InvalidParameterError, check_finite, check_int_at_least, check_positive

__all__ = ["committee_output", "expected_ntk_gram", "ntk_eigendecomposition", "ntk_gram"]


def committee_output(weights: np.ndarray, inputs: np.ndarray, *, epsilon: float, scale: float = 1.0) -> np.ndarray:
    """f(x) = (κ/N) Σ_i φ(w_i·x) at the rows of ``inputs`` (theory.md §1.1), shape ``(P,)``."""
    W = _matrix("weights", weights)
    X = _matrix("inputs", inputs, columns=W.shape[1])
    epsilon = check_finite("epsilon", epsilon)
    scale = check_positive("scale (output scale kappa)", scale)
    H = X @ W.T
    return scale / W.shape[0] * (H + 0.5 * epsilon * H**2).sum(axis=1)


def ntk_gram(
    weights: np.ndarray,
    inputs: np.ndarray,
    *,
    epsilon: float,
    scale: float = 1.0,
    inputs2: np.ndarray | None = None,
) -> np.ndarray:
    """Empirical NTK Gram matrix with respect to W, in closed form (theory.md §2.2 eq. 19).

    K(x,x') = Σ_i ∂f(x)/∂w_i · ∂f(x')/∂w_i = (κ²/N²) Σ_i φ'(w_i·x) φ'(w_i·x') (x·x'),
    φ'(h) = 1 + εh; equivalently (κ²/N)(x·x')[1 + ε w̄·(x+x') + ε² xᵀMx'].

    Parameters
    ----------
    weights : ndarray, shape (N, D)
        W (rows w_i).
    inputs : ndarray, shape (P, D)
        Rows x_μ.
    epsilon, scale : float
        ε and κ.
    inputs2 : ndarray, shape (Q, D), optional
        Second set of rows; default ``inputs`` (then the result is exactly symmetric).

    Returns
    -------
    ndarray, shape (P, Q)
        The cost is O(PQ(N + D)); the Jacobian (size P·N·D) is never formed.
    """
    W = _matrix("weights", weights)
    X = _matrix("inputs", inputs, columns=W.shape[1])
    X2 = X if inputs2 is None else _matrix("inputs2", inputs2, columns=W.shape[1])
    epsilon = check_finite("epsilon", epsilon)
    scale = check_positive("scale (output scale kappa)", scale)
    n = W.shape[0]
    dphi = 1.0 + epsilon * (X @ W.T)
    dphi2 = dphi if inputs2 is None else 1.0 + epsilon * (X2 @ W.T)
    K = (scale**2 / n**2) * (X @ X2.T) * (dphi @ dphi2.T)
    if inputs2 is None:
        K = 0.5 * (K + K.T)
    return K


def expected_ntk_gram(
    inputs: np.ndarray,
    *,
    epsilon: float,
    scale: float = 1.0,
    width: int = 1,
    inputs2: np.ndarray | None = None,
) -> np.ndarray:
    """Gram matrix of the expected initial NTK K̄ = (κ²/N)[(x·x') + ε²(x·x')²] (§2.2 eq. 11).

    This is E_W[K] over w_i ~ N(0, I_D) for every width N (w̄ averages to 0, M to I), the
    kernel whose Mercer spectrum :func:`mercer_spectrum` gives. Shape ``(P, Q)``.
    """
    X = _matrix("inputs", inputs)
    X2 = X if inputs2 is None else _matrix("inputs2", inputs2, columns=X.shape[1])
    epsilon = check_finite("epsilon", epsilon)
    scale = check_positive("scale (output scale kappa)", scale)
    width = check_int_at_least("width (hidden units N)", width, 1)
    G = X @ X2.T
    K = (scale**2 / width) * (G + epsilon**2 * G**2)
    if inputs2 is None:
        K = 0.5 * (K + K.T)
    return K


def ntk_eigendecomposition(K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and orthonormal eigenvectors (columns) of a symmetric Gram matrix.

    Parameters
    ----------
    K : ndarray, shape (P, P)
        Symmetric (to 1e-10 of its largest entry); it is symmetrised before ``numpy.linalg.eigh``.

    Returns
    -------
    eigenvalues : ndarray, shape (P,)
    eigenvectors : ndarray, shape (P, P)
        ``K = V diag(λ) Vᵀ``.
    """
    K = _symmetric("K", K)
    values, vectors = np.linalg.eigh(K)
    return values[::-1].copy(), vectors[:, ::-1].copy()


def _null_threshold(eigenvalues: np.ndarray, rcond: float | None) -> float:
    """Eigenvalues at or below this are treated as exact zeros (the Gram's null space)."""
    top = float(np.max(np.abs(eigenvalues))) if eigenvalues.size else 0.0
    if rcond is None:
        rcond = 10.0 * eigenvalues.size * np.finfo(float).eps
    else:
        rcond = check_finite("rcond", rcond)
        if rcond < 0:
            raise InvalidParameterError(f"rcond must lie in [0, inf), got {rcond!r}")
    return rcond * top
