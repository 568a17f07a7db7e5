"""Exact finite-α learning curves of the linear committee (theory.md §10.8).

For the linear student f = (κ/N) Σ_i w_i·x and a linear committee teacher
y = (κ*/M) Σ_n β_n·x + σξ, every unit receives the same gradient, so only the mean weight
w̄ = (1/N) Σ_i w_i moves the output. The error vector v = κw̄ − κ*β̄ obeys the linear ODE

    dv/dt = −2 Σ̂ v + 2σ b,     Σ̂ = (D/P) Σ_μ x_μ x_μᵀ,     b = (D/P) Σ_μ ξ_μ x_μ,

whose solution, averaged over the Marchenko–Pastur law μ_α of Σ̂ (aspect ratio D/P = 1/α) as
D → ∞, gives the train and test losses in closed form (eq. 10.8.3):

    E_test(t)  = ∫ dμ_α(λ) [ e^{−4λt} L_v + (σ²/α)(1 − e^{−2λt})²/λ ] + σ²,
    E_train(t) = ∫ dμ_α(λ) [ λ e^{−4λt} L_v + (σ²/α)(e^{−4λt} − 1) ] + σ²,

with L_v = |v(0)|²/D = κ² Q̄ − 2κκ* R̄ + κ*² T̄ (bars: means over all index pairs). The same
numbers come out of the finite-α DMFT of the linear student (:mod:`dmft.problems`), by Monte
Carlo: this module is its independent check, and a quick closed form for users.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .committee_online import CommitteeModel
from .parameters import InvalidParameterError, check_positive

__all__ = ["LinearFlowCurves", "marchenko_pastur_quadrature", "linear_committee_curves"]


@dataclass(frozen=True)
class LinearFlowCurves:
    """Closed-form curves of :func:`linear_committee_curves` (eq. 10.8.3).

    Attributes
    ----------
    t, train_loss, test_loss : ndarray, shape (T,)
    initial_error : float
        L_v = |κw̄(0) − κ*β̄|²/D, the noiseless part of the initial test loss.
    noise : float
        σ².
    alpha : float
        P/D.
    """

    t: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    initial_error: float
    noise: float
    alpha: float


def marchenko_pastur_quadrature(alpha: float, nodes: int = 400) -> tuple[np.ndarray, np.ndarray, float]:
    """Nodes and weights of ∫ dμ_α(λ) f(λ) over the continuous part, and the atom at λ = 0.

    μ_α is the limit spectrum of Σ̂ = (1/P) Σ_μ z_μ z_μᵀ, z ~ N(0, I_D), D/P = γ = 1/α: density
    √((λ₊ − λ)(λ − λ₋)) / (2πγλ) on [λ₋, λ₊] = [(1 − √γ)², (1 + √γ)²], plus mass 1 − α at 0
    when α < 1 (eq. 10.8.2). The substitution λ = 1 + γ + 2√γ cos θ removes the square-root
    edges, leaving a smooth integrand on θ ∈ (0, π) for Gauss–Legendre.

    Returns
    -------
    lam, weight : ndarray, shape (nodes,)
        Σ weight·f(lam) ≈ ∫ f dμ_α over the continuous part.
    atom : float
        Mass at λ = 0 (max(0, 1 − α)).
    """
    alpha = check_positive("alpha", alpha)
    if math.isinf(alpha):
        raise InvalidParameterError("alpha must be finite (the spectrum is a point mass at 1 when alpha = inf)")
    gamma = 1.0 / alpha
    x, w = np.polynomial.legendre.leggauss(int(nodes))
    theta = 0.5 * np.pi * (x + 1.0)
    lam = 1.0 + gamma + 2.0 * np.sqrt(gamma) * np.cos(theta)
    # ρ(λ) dλ = (2√γ sin θ)² / (2πγλ) dθ, dθ = (π/2) dx
    density = 4.0 * gamma * np.sin(theta) ** 2 / (2.0 * np.pi * gamma * lam)
    weight = density * 0.5 * np.pi * w
    # where λ₋ = 0 (α = 1) the node nearest θ = π has λ ≈ 0 and a finite density·dθ: harmless
    atom = max(0.0, 1.0 - alpha)
    return lam, weight, atom


def initial_error(model: CommitteeModel) -> float:
    """L_v = κ² Q̄ − 2κκ* R̄ + κ*² T̄ from (Q(0), R(0), T) (eq. 10.8.1)."""
    kappa, kappa_star = model.scale, model.teacher_scale
    Q, R, T = model.init_cov, model.init_overlap, model.teacher_cov
    return float(kappa**2 * Q.mean() - 2.0 * kappa * kappa_star * R.mean() + kappa_star**2 * T.mean())


def linear_committee_curves(model: CommitteeModel, alpha: float, t, *, nodes: int = 400) -> LinearFlowCurves:
    """Train and test losses of gradient flow of the linear committee at finite α (eq. 10.8.3).

    Parameters
    ----------
    model : CommitteeModel
        Linear student and a linear committee teacher (``activation="linear"``,
        ``target="committee"``, ``teacher_activation="linear"``), gradient flow (``lr=None``);
        any N, M, κ, κ*, T, R(0), Q(0), noise σ².
    alpha : float
        P/D ∈ (0, ∞).
    t : array_like
        Times (theory units, t = η₀·step/D), ≥ 0.
    nodes : int
        Gauss–Legendre nodes of the spectral integral (400: ≤ 1e-12 for t ≤ 10³ at α ≥ 1.1).

    Returns
    -------
    LinearFlowCurves
    """
    if not isinstance(model, CommitteeModel):
        raise InvalidParameterError(f"model must be a CommitteeModel, got {type(model).__name__}")
    if (model.activation.name != "linear" or model.target != "committee"
            or model.teacher_activation.name != "linear"):
        raise InvalidParameterError("the closed form needs activation='linear', target='committee' and "
                                    "teacher_activation='linear'")
    if model.lr is not None:
        raise InvalidParameterError("lr must be None (the closed form is gradient flow)")
    alpha = check_positive("alpha", alpha)
    t = np.asarray(t, dtype=float)
    if t.ndim != 1 or np.any(t < 0) or not np.all(np.isfinite(t)):
        raise InvalidParameterError("t must be a 1-d array of finite times >= 0")
    lam, weight, atom = marchenko_pastur_quadrature(alpha, nodes)
    error0, noise = initial_error(model), float(model.noise)
    decay = np.exp(-2.0 * np.outer(t, lam))                       # e^{−2λt}, (T, nodes)
    test = (decay**2 @ weight) * error0 + atom * error0 + noise / alpha * ((1.0 - decay) ** 2 / lam) @ weight
    train = (decay**2 * lam) @ weight * error0 + noise / alpha * ((decay**2 - 1.0) @ weight)
    return LinearFlowCurves(t=t, train_loss=train + noise, test_loss=test + noise, initial_error=error0,
                            noise=noise, alpha=alpha)
