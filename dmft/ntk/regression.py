"""The NTK of the committee machine: kernel regression.

Part of :mod:`dmft.ntk` (the names are re-exported there).
"""

from __future__ import annotations

import numpy as np

from dmft.ntk._checks import _matrix, _symmetric, _vector
from dmft.ntk.gram import _null_threshold, ntk_eigendecomposition
from dmft.parameters import InvalidParameterError, check_finite

__all__ = ["kernel_regression"]


def _kernel_coefficients(K_train: np.ndarray, targets: np.ndarray, ridge: float, rcond: float | None) -> np.ndarray:
    """c = (K + ridge·I)⁻¹ targets; at ridge 0 the pseudo-inverse on the range of K."""
    if ridge > 0:
        P = K_train.shape[0]
        return np.linalg.solve(K_train + ridge * np.eye(P), targets)
    values, vectors = ntk_eigendecomposition(K_train)
    keep = values > _null_threshold(values, rcond)
    inv = np.zeros_like(values)
    inv[keep] = 1.0 / values[keep]
    return vectors @ (inv * (vectors.T @ targets))


def kernel_regression(
    K_train: np.ndarray,
    y_train: np.ndarray,
    K_test_train: np.ndarray,
    ridge: float = 0.0,
    *,
    rcond: float | None = None,
) -> np.ndarray:
    """Kernel (ridge) regression predictions K(x_test, X)(K + ridge·I)⁻¹ y.

    At ``ridge = 0`` the inverse is the Moore–Penrose pseudo-inverse (eigenvalues below
    ``rcond``·λ_max, default 10·P·machine-ε, count as zero): for an invertible K this is the
    interpolant, for a singular K the minimum-norm least-squares fit, which is also the
    t → ∞ limit of the lazy gradient flow started at zero (:func:`lazy_curves`).

    Parameters
    ----------
    K_train : ndarray, shape (P, P)
    y_train : ndarray, shape (P,)
    K_test_train : ndarray, shape (Q, P)
    ridge : float, default 0
        Added to the diagonal of K_train (same units as K, i.e. including κ²/N).

    Returns
    -------
    ndarray, shape (Q,)
    """
    K = _symmetric("K_train", K_train)
    y = _vector("y_train", y_train, length=K.shape[0])
    Kt = _matrix("K_test_train", K_test_train, columns=K.shape[0])
    ridge = check_finite("ridge", ridge)
    if ridge < 0:
        raise InvalidParameterError(f"ridge must lie in [0, inf), got {ridge!r}")
    return Kt @ _kernel_coefficients(K, y, ridge, rcond)
