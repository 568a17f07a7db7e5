"""The NTK of the committee machine: the K₀-regression baseline (Fig. 1).

Part of :mod:`dmft.ntk` (the names are re-exported there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dmft.ntk._checks import _check_target_scale, _matrix, _vector
from dmft.ntk.gram import committee_output, ntk_gram
from dmft.ntk.polynomial import linearised_polynomial, polynomial_loss_decomposition
from dmft.ntk.regression import _kernel_coefficients
from dmft.parameters import InvalidParameterError, check_finite

__all__ = ["KernelRegressionResult", "initial_ntk_regression"]


@dataclass(frozen=True)
class KernelRegressionResult:
    """Kernel regression with the initial empirical NTK (theory.md §1.4, "K₀ regression").

    Attributes
    ----------
    test_mse : float
        Mean squared error on the given test set.
    train_mse : float
        Mean squared error on the training set (0 when K is invertible and ridge = 0).
    population_mse : float or None
        Exact E_x(f − y)² over x ~ N(0, I_D/D) (teacher given), else None.
    population_decomposition : ndarray, shape (3,) or None
        Its (variance, alignment, linear) terms (:func:`polynomial_loss_decomposition`).
    test_predictions : ndarray, shape (Q,)
    ridge : float
    center : bool
    """

    test_mse: float
    train_mse: float
    population_mse: float | None
    population_decomposition: np.ndarray | None
    test_predictions: np.ndarray
    ridge: float
    center: bool


def initial_ntk_regression(
    weights0: np.ndarray,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    epsilon: float,
    scale: float = 1.0,
    ridge: float = 0.0,
    center: bool = True,
    teacher: np.ndarray | None = None,
    target_scale: float = 0.5,
    rcond: float | None = None,
) -> KernelRegressionResult:
    """Test MSE of kernel regression with the NTK at initialisation (the Fig. 1 baseline).

    ``center=True`` (the paper's setting): f̂(x) = K₀(x, X)(K₀ + ridge·I)⁻¹ y, which at
    ridge 0 is the t → ∞ limit of the centred lazy model. ``center=False``: f̂ = f(x; W₀) +
    K₀(x, X)(K₀ + ridge·I)⁻¹(y − f(X; W₀)), the t → ∞ limit of the uncentred lazy model.
    The predictor lies in the NTK feature span, so it is a quadratic polynomial in x and its
    population MSE is exact (:func:`linearised_polynomial`).

    Parameters
    ----------
    weights0 : ndarray, shape (N, D)
    x_train : ndarray, shape (P, D); y_train : ndarray, shape (P,)
    x_test : ndarray, shape (Q, D); y_test : ndarray, shape (Q,)
    epsilon, scale : float
    ridge : float, default 0
    center : bool, default True
    teacher : ndarray, shape (D,), optional
        β, for the exact population MSE.
    target_scale : float, default 0.5
        s in y = s(β·x)².
    """
    W0 = _matrix("weights0", weights0)
    n, d = W0.shape
    X = _matrix("x_train", x_train, columns=d)
    y = _vector("y_train", y_train, length=X.shape[0])
    Xt = _matrix("x_test", x_test, columns=d)
    yt = _vector("y_test", y_test, length=Xt.shape[0])
    ridge = check_finite("ridge", ridge)
    if ridge < 0:
        raise InvalidParameterError(f"ridge must lie in [0, inf), got {ridge!r}")
    K = ntk_gram(W0, X, epsilon=epsilon, scale=scale)
    Kt = ntk_gram(W0, Xt, epsilon=epsilon, scale=scale, inputs2=X)
    f0 = np.zeros(X.shape[0]) if center else committee_output(W0, X, epsilon=epsilon, scale=scale)
    f0t = np.zeros(Xt.shape[0]) if center else committee_output(W0, Xt, epsilon=epsilon, scale=scale)
    coef = _kernel_coefficients(K, y - f0, ridge, rcond)
    pred_train = f0 + K @ coef
    pred_test = f0t + Kt @ coef
    population = decomposition = None
    if teacher is not None:
        beta = _vector("teacher", teacher, length=d)
        s = _check_target_scale(target_scale)
        dphi = 1.0 + epsilon * (X @ W0.T)  # (P, N)
        delta_w = (scale / n) * (dphi * coef[:, None]).T @ X  # ΔW = J_trainᵀ c
        b, A = linearised_polynomial(W0, delta_w, epsilon=epsilon, scale=scale, center=center)
        decomposition = polynomial_loss_decomposition(b, A, beta, target_scale=s)
        population = float(decomposition.sum())
    return KernelRegressionResult(
        test_mse=float(np.mean((pred_test - yt) ** 2)),
        train_mse=float(np.mean((pred_train - y) ** 2)),
        population_mse=population,
        population_decomposition=decomposition,
        test_predictions=pred_test,
        ridge=ridge,
        center=bool(center),
    )
