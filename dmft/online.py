"""The online (α → ∞, Saad–Solla) limit: closed ODEs for the order parameters.

theory.md §4.3 (paper eqs. 30–35). With c = 2/κ and Gaussian fields (h, h*) of covariance
(Q, m, ρ), Stein's lemma closes the gradient flow dw_i/dt = c·D·E[x g_i] on

    dm/dt = c [ R m + ρ r* ]                                   (eq. 35)
    dQ/dt = c [ (R Q + r* mᵀ) + (R Q + r* mᵀ)ᵀ ]               (eq. 35)

with the equal-time mean responses (eqs. 33–34)

    R_ij = E[∂g_i/∂h_j] = −(κ/N)(1 + ε² Q_ij) + ε δ_ij E[Δ],   E[Δ] = ρ/2 − κε trQ/(2N)
    r*_i = E[∂g_i/∂h*]  = ε m_i.

Centred predictor (theory.md §4.2, centred variant): the state gains X(t) = C_w(t,0) and the
field h(0), with E[∂g_i/∂h_j(0)] = (κ/N)(1 + ε² X_ij) and E[Δ] = ρ/2 − κε(trQ − trQ₀)/(2N):

    dm/dt = c [ R m + R₀ m₀ + ρ r* ]
    dX/dt = c [ R X + R₀ Q₀ + r* m₀ᵀ ]
    dQ/dt = c [ (R Q + R₀ Xᵀ + r* mᵀ) + transpose ]

In this limit the train loss equals the test loss.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.integrate import solve_ivp

from .errors import OnlineODEError
from .parameters import ModelParameters
from .population import centered_loss_decomposition, loss_decomposition
from .result import LearningCurves

__all__ = [
    "mean_response",
    "centering_response",
    "online_rates",
    "solve_online",
    "OnlineTrajectory",
]


def mean_delta(cov, epsilon, scale, rho, cov0=None):
    """E[Δ] = ρ/2 − κε (trQ − trQ₀)/(2N) for Gaussian fields (trQ₀ term only when centred)."""
    n = cov.shape[-1]
    trace = np.trace(cov, axis1=-2, axis2=-1)
    if cov0 is not None:
        trace = trace - np.trace(cov0)
    return rho / 2 - scale * epsilon * trace / (2 * n)


def mean_response(cov, *, epsilon, scale, rho=1.0, cov0=None):
    """Equal-time mean response R = E[∂g/∂h] for Gaussian fields (theory.md §4.3 eq. 33).

    Parameters
    ----------
    cov : ndarray, shape (..., N, N)
        Q = C_w(t,t).
    cov0 : ndarray, shape (N, N), optional
        C_w(0,0) for the centred predictor (shifts E[Δ]).

    Returns
    -------
    ndarray, shape (..., N, N)
    """
    cov = np.asarray(cov, dtype=float)
    n = cov.shape[-1]
    delta = mean_delta(cov, epsilon, scale, rho, cov0)
    eye = np.eye(n)
    return -(scale / n) * (1.0 + epsilon**2 * cov) + epsilon * delta[..., None, None] * eye


def centering_response(cross, *, epsilon, scale):
    """E[∂g/∂h(0)] = (κ/N)(1 + ε² X) of the centred predictor (theory.md §4.2), X = C_w(t,0)."""
    cross = np.asarray(cross, dtype=float)
    n = cross.shape[-1]
    return (scale / n) * (1.0 + epsilon**2 * cross)


def online_rates(m, Q, X, params: ModelParameters):
    """Right-hand side of the online ODE (theory.md §4.3 eq. 35, centred variant §4.2).

    Parameters
    ----------
    m : ndarray, shape (N,)
    Q : ndarray, shape (N, N)
    X : ndarray, shape (N, N) or None
        C_w(t,0); only used (and its rate only returned) when ``params.center``.

    Returns
    -------
    (dm, dQ, dX) with dX None when uncentred.
    """
    eps, kappa, rho = params.epsilon, params.scale, params.rho
    c = 2.0 / kappa
    r_star = eps * m
    if params.center:
        Q0, m0 = params.cov0, params.m0
        R = mean_response(Q, epsilon=eps, scale=kappa, rho=rho, cov0=Q0)
        R0 = centering_response(X, epsilon=eps, scale=kappa)
        dm = c * (R @ m + R0 @ m0 + rho * r_star)
        dX = c * (R @ X + R0 @ Q0 + np.outer(r_star, m0))
        half = R @ Q + R0 @ X.T + np.outer(r_star, m)
        return dm, c * (half + half.T), dX
    R = mean_response(Q, epsilon=eps, scale=kappa, rho=rho)
    dm = c * (R @ m + rho * r_star)
    half = R @ Q + np.outer(r_star, m)
    return dm, c * (half + half.T), None


class OnlineTrajectory:
    """Dense solution of the online ODE; call it at times ``t`` to get (m, Q, X)."""

    def __init__(self, params: ModelParameters, t_max: float, rtol: float = 1e-13, atol: float = 1e-14):
        self.params = params
        n = params.width
        self._n = n
        y0 = [params.m0, params.cov0.ravel()]
        if params.center:
            y0.append(params.cov0.ravel())
        y0 = np.concatenate(y0)

        def rhs(_t, y):
            m = y[:n]
            Q = y[n : n + n * n].reshape(n, n)
            X = y[n + n * n :].reshape(n, n) if params.center else None
            dm, dQ, dX = online_rates(m, Q, X, params)
            parts = [dm, dQ.ravel()] + ([dX.ravel()] if dX is not None else [])
            return np.concatenate(parts)

        self.solution = solve_ivp(
            rhs, (0.0, float(t_max)), y0, method="DOP853", rtol=rtol, atol=atol, dense_output=True
        )
        if not self.solution.success:
            raise OnlineODEError(f"online ODE integration failed: {self.solution.message}")
        self.nfev = int(self.solution.nfev)

    def __call__(self, t):
        """Order parameters at times ``t``: m (T, N), Q (T, N, N), X (T, N, N) or None."""
        y = self.solution.sol(np.asarray(t, dtype=float)).T
        n = self._n
        m = y[:, :n]
        Q = y[:, n : n + n * n].reshape(-1, n, n)
        Q = 0.5 * (Q + np.swapaxes(Q, -1, -2))
        X = y[:, n + n * n :].reshape(-1, n, n) if self.params.center else None
        return m, Q, X


def solve_online(params: ModelParameters, t: np.ndarray, *, rtol: float = 1e-13, atol: float = 1e-14):
    """Integrate the online ODE and return :class:`LearningCurves` on the grid ``t``.

    Integrated with the 8th-order Dormand–Prince method (``scipy.integrate.solve_ivp``,
    ``DOP853``) at ``rtol``/``atol``; the dense output is evaluated on ``t``.
    """
    start = time.perf_counter()
    t = np.asarray(t, dtype=float)
    traj = OnlineTrajectory(params, t[-1], rtol=rtol, atol=atol)
    m, Q, X = traj(t)
    kw = dict(epsilon=params.epsilon, scale=params.scale, rho=params.rho)
    if params.center:
        decomposition = centered_loss_decomposition(Q, X, m, cov0=params.cov0, overlap0=params.m0, **kw)
    else:
        decomposition = loss_decomposition(Q, m, **kw)
    loss = decomposition.sum(axis=-1)
    finite = bool(np.all(np.isfinite(loss)))
    extras = {"cross_cov": X} if X is not None else {}
    return LearningCurves(
        kind="online",
        t=t,
        train_loss=loss,
        test_loss=loss,
        overlap=m,
        cov=Q,
        decomposition=decomposition,
        parameters=params.as_attrs(),
        settings={"method": "DOP853", "rtol": rtol, "atol": atol, "nfev": traj.nfev},
        converged=finite,
        iterations=1,
        residual=0.0,
        residual_history=np.zeros(1),
        seconds=time.perf_counter() - start,
        message="online ODE integrated" if finite else "online ODE produced non-finite values",
        extras=extras,
    )
