"""The NTK of the committee machine: population loss of predictors in the span of the NTK features.

Part of :mod:`dmft.ntk` (the names are re-exported there).
"""

from __future__ import annotations

import numpy as np

__all__ = ["linearised_polynomial", "polynomial_loss_decomposition"]


def linearised_polynomial(
    weights0: np.ndarray,
    delta_weights: np.ndarray,
    *,
    epsilon: float,
    scale: float,
    center: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (b, A) of the linearised predictor f_lin(x) = bᵀx + xᵀAx.

    f_lin(x) = [f(x; W₀) unless centred] + Σ_i ∂f(x)/∂w_i|_{W₀} · Δw_i, and
    ∂f/∂w_i = (κ/N)(1 + ε w₀ᵢ·x) x, so (theory.md §1.4, §2.1)

        b = (κ/N) Σ_i (Δw_i [+ w₀ᵢ]),
        A = (κε/(2N)) Σ_i (w₀ᵢΔw_iᵀ + Δw_i w₀ᵢᵀ) [+ (κε/(2N)) W₀ᵀW₀].

    Every kernel-regression predictor with this NTK has this form too (ΔW = J_trainᵀc).

    Parameters
    ----------
    weights0 : ndarray, shape (N, D)
    delta_weights : ndarray, shape (..., N, D)
        ΔW = W − W₀ (leading axes broadcast, e.g. time).

    Returns
    -------
    b : ndarray, shape (..., D)
    A : ndarray, shape (..., D, D), symmetric.
    """
    W0 = np.asarray(weights0, dtype=float)
    dW = np.asarray(delta_weights, dtype=float)
    n = W0.shape[0]
    b = scale / n * dW.sum(axis=-2)
    S = np.einsum("nd,...ne->...de", W0, dW)
    A = scale * epsilon / (2 * n) * (S + np.swapaxes(S, -1, -2))
    if not center:
        b = b + scale / n * W0.sum(axis=0)
        A = A + scale * epsilon / (2 * n) * (W0.T @ W0)
    return b, A


def polynomial_loss_decomposition(
    linear: np.ndarray, quadratic: np.ndarray, teacher: np.ndarray, *, target_scale: float = 0.5
) -> np.ndarray:
    """Exact population MSE of f(x) = bᵀx + xᵀAx against y = s(β·x)², x ~ N(0, I_D/D).

    With C = A − sββᵀ, E(f − y)² = (trC)²/D² + 2‖C‖_F²/D² + |b|²/D, because
    E[(xᵀCx)²] = ((trC)² + 2trC²)/D² and the odd cross term vanishes. For the committee
    machine, b = κw̄ and A = (κε/2)M, these are exactly the (variance, alignment, linear)
    terms of theory.md §2.3; for a linearised predictor they are the same three terms of its
    effective (w̄, M).

    Parameters
    ----------
    linear : ndarray, shape (..., D)
        b.
    quadratic : ndarray, shape (..., D, D)
        A (symmetric).
    teacher : ndarray, shape (D,)
        β.

    Returns
    -------
    ndarray, shape (..., 3)
        (variance, alignment, linear) terms, summing to the test loss.
    """
    b = np.asarray(linear, dtype=float)
    A = np.asarray(quadratic, dtype=float)
    beta = np.asarray(teacher, dtype=float)
    d = beta.shape[0]
    s = float(target_scale)
    C = A - s * np.outer(beta, beta)
    variance = (np.trace(C, axis1=-2, axis2=-1) / d) ** 2
    alignment = 2.0 * np.sum(C * C, axis=(-2, -1)) / d**2
    linear_term = np.sum(b * b, axis=-1) / d
    return np.stack([variance, alignment, linear_term], axis=-1)
