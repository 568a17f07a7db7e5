"""Closed-form limits of the DMFT: the 1/α train–test gap (§4.4) and the escape time (§4.5).

* :func:`gap_estimate` — first order in 1/α,
      E_test(t) − E_train(t) ≈ (2cκ/(αN)) ∫₀ᵗ ds tr[R_w(t,s) C_g(t,s)ᵀ]     (theory.md §4.4, c = 2/κ)
  with R_w and C_g taken at α = ∞: R_w from the discrete online weight side, C_g(t,s) =
  E[g(t) g(s)ᵀ] over the Gaussian fields h = u, computed exactly by Gauss–Hermite quadrature
  (g g is a polynomial of degree 6 in the fields; 4 nodes per dimension are exact to degree 7).
  In the discrete scheme the integral is Σ_s χ_ns with the quadrature weights inside χ.
* :func:`escape_time` — §4.5: from a small planted overlap the deviation mode (orthogonal to the
  mean unit) grows at the plateau rate
      λ = (2/κ)[ε(3ρ/2 − κε tr Q₀/(2N)) − (κ/N) ε² q],   q = vᵀQ₀v on that mode,
  which is 3ερ/κ − ε² − 2ε²/N at Q₀ = I (the spec's 3ε/κ to leading order in ε), and the
  loss drops when the mode reaches the generalising magnitude ρ/√(κε):
      t* = (1/λ) ln( ρ / (|m_dev(0)| √(κε)) ).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .parameters import ModelParameters

__all__ = ["gaussian_gradient_covariance", "gap_estimate", "plateau_rate", "escape_time"]


def _hermite_nodes(dim: int, order: int = 4):
    """Tensor Gauss–Hermite nodes and weights for N(0, I_dim) (probabilists' normalisation)."""
    x, w = np.polynomial.hermite_e.hermegauss(order)
    w = w / w.sum()
    nodes = np.array(list(itertools.product(x, repeat=dim)))
    weights = np.prod(np.array(list(itertools.product(w, repeat=dim))), axis=1)
    return nodes, weights


def gaussian_gradient_covariance(cov_w: np.ndarray, overlap: np.ndarray, *, epsilon: float, scale: float,
                                 rho: float = 1.0, center: bool = False) -> np.ndarray:
    """C_g(t_n, t_s) = E[g_n g_sᵀ] for Gaussian fields h = u (α = ∞), exactly.

    Parameters
    ----------
    cov_w : ndarray, shape (T, T, N, N)
        Two-time C_w.
    overlap : ndarray, shape (T, N)

    Returns
    -------
    ndarray, shape (T, T, N, N)
    """
    T, N = overlap.shape
    # variables (u_n, u_s, h*[, u_0]) per pair (n, s)
    dim = 2 * N + 1 + (N if center else 0)
    nodes, weights = _hermite_nodes(dim)
    out = np.zeros((T, T, N, N))
    for n in range(T):
        s_idx = np.arange(n + 1)
        cov = np.zeros((s_idx.size, dim, dim))
        cov[:, :N, :N] = cov_w[n, n]
        cov[:, N:2 * N, N:2 * N] = cov_w[s_idx, s_idx]
        cov[:, :N, N:2 * N] = cov_w[n, s_idx]
        cov[:, N:2 * N, :N] = np.swapaxes(cov_w[n, s_idx], -1, -2)
        cov[:, :N, 2 * N] = cov[:, 2 * N, :N] = overlap[n]
        cov[:, N:2 * N, 2 * N] = overlap[s_idx]
        cov[:, 2 * N, N:2 * N] = overlap[s_idx]
        cov[:, 2 * N, 2 * N] = rho
        if center:
            c0 = slice(2 * N + 1, 3 * N + 1)
            cov[:, c0, c0] = cov_w[0, 0]
            cov[:, :N, c0] = cov_w[n, 0]
            cov[:, c0, :N] = cov_w[n, 0].T
            cov[:, N:2 * N, c0] = cov_w[s_idx, 0]
            cov[:, c0, N:2 * N] = np.swapaxes(cov_w[s_idx, 0], -1, -2)
            cov[:, c0, 2 * N] = cov[:, 2 * N, c0] = overlap[0]
        lam, vec = np.linalg.eigh(cov)
        root = vec * np.sqrt(np.clip(lam, 0.0, None))[:, None, :]      # cov = root rootᵀ
        z = np.einsum("pij,kj->pki", root, nodes)                       # (pairs, nodes, dim)
        un, us, hs = z[..., :N], z[..., N:2 * N], z[..., 2 * N]
        y = 0.5 * hs**2

        def grad(u, u0):
            f = np.sum(u + 0.5 * epsilon * u**2, axis=-1)
            if u0 is not None:
                f = f - np.sum(u0 + 0.5 * epsilon * u0**2, axis=-1)
            delta = y - scale / N * f
            return delta[..., None] * (1.0 + epsilon * u)

        u0 = z[..., 2 * N + 1:] if center else None
        gn, gs = grad(un, u0), grad(us, u0)
        block = np.einsum("k,pki,pkj->pij", weights, gn, gs)
        out[n, s_idx] = block
        out[s_idx, n] = np.swapaxes(block, -1, -2)
    return out


def gap_estimate(params: ModelParameters, t: np.ndarray) -> np.ndarray:
    """First-order train–test gap E_test − E_train on the grid ``t`` (theory.md §4.4).

    R_w and C_g at α = ∞ (the online solution on the same discrete grid); ``params.alpha``
    only enters through the 1/α prefactor.
    """
    from .dmft_solver import online_start

    if params.is_online:
        return np.zeros(np.asarray(t).size)
    state = online_start(params, np.asarray(t, dtype=float))
    cov_g = gaussian_gradient_covariance(state.cov, state.overlap, epsilon=params.epsilon, scale=params.scale,
                                         rho=params.rho, center=params.center)
    c = 2.0 / params.scale
    N = params.width
    # Σ_s tr[χ_ns C_g(n,s)ᵀ]
    integral = np.einsum("nsij,nsij->n", state.response, cov_g)
    return 2.0 * c * params.scale / (params.alpha * N) * integral


def plateau_rate(params: ModelParameters) -> float:
    """Growth rate λ of the overlap mode orthogonal to the mean unit at t = 0 (theory.md §4.5)."""
    N, eps, kappa, rho = params.width, params.epsilon, params.scale, params.rho
    if N < 2:
        raise ValueError("plateau_rate needs width >= 2 (a mode orthogonal to the mean unit)")
    Q0 = params.cov0
    m0 = params.m0
    dev = m0 - m0.mean()
    if np.linalg.norm(dev) == 0:
        raise ValueError("init_overlap has no component orthogonal to the mean unit: the escape never starts")
    v = dev / np.linalg.norm(dev)
    q = float(v @ Q0 @ v)
    return (2.0 / kappa) * (eps * (1.5 * rho - kappa * eps * np.trace(Q0) / (2 * N)) - (kappa / N) * eps**2 * q)


def escape_time(params: ModelParameters) -> float:
    """Early-time escape estimate t* of theory.md §4.5 (see module doc); ``inf`` if λ ≤ 0."""
    rate = plateau_rate(params)
    if rate <= 0:
        return math.inf
    m0 = params.m0
    amplitude = float(np.linalg.norm(m0 - m0.mean()) / math.sqrt(params.width))
    saturation = params.rho / math.sqrt(params.scale * params.epsilon)
    return math.log(saturation / amplitude) / rate
