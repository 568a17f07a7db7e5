"""Monte Carlo draws of the data-side Gaussian fields (u(·), h*) with common random numbers.

theory.md §0.1 "Sampling" and "Variance": the joint covariance of (u(t_0..t_{T−1}), h*) is
rank-deficient (rank N + 1 at α = ∞), so h* is drawn first and u | h* from a square root of
Cov(u | h*) = C_w − m mᵀ/ρ obtained by eigendecomposition. |h*| is stratified over the quantiles
of its half-normal law and samples come in antithetic quadruplets (±h*, ±z): the fields
u = (m/ρ)h* + L z change sign with (h*, z) → (−h*, −z) and, at m = 0, the set is symmetric
under h* → −h*, so odd statistics such as r* vanish exactly and m ≡ 0 stays an exact fixed
point of the iteration (theory.md §7.4). Every chunk's draws derive
from (seed, chunk index) only, so the same numbers are used in every fixed-point iteration
(common random numbers: without them the residual cannot be measured).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

__all__ = ["ConditionalSquareRoot", "conditional_square_root", "draw_chunk", "chunk_bounds"]

#: Eigenvalues below this fraction of the largest are treated as zero.
_RANK_TOL = 1e-12


@dataclass(frozen=True)
class ConditionalSquareRoot:
    """Factor of Cov(u | h*) = V diag(λ) Vᵀ restricted to λ > tol·λ_max.

    Attributes
    ----------
    basis : ndarray, shape (NT, r)
        Eigenvectors V_r.
    scales : ndarray, shape (r,)
        √λ_r.
    slope : ndarray, shape (NT,)
        E[u | h*] = slope · h*  (slope = m/ρ).
    """

    basis: np.ndarray
    scales: np.ndarray
    slope: np.ndarray

    @property
    def rank(self) -> int:
        return int(self.scales.size)


def conditional_square_root(cov_flat: np.ndarray, overlap_flat: np.ndarray, rho: float) -> ConditionalSquareRoot:
    """Principal square root of Cov(u | h*) (theory.md §0.1 'Sampling').

    The symmetric (principal) root V√Λ Vᵀ is a continuous function of the covariance, so the
    same standard normals z give nearby fields in successive iterations.
    """
    slope = overlap_flat / rho
    cond = cov_flat - np.outer(overlap_flat, overlap_flat) / rho
    cond = 0.5 * (cond + cond.T)
    lam, vec = np.linalg.eigh(cond)
    keep = lam > _RANK_TOL * max(lam[-1], 1e-300)
    return ConditionalSquareRoot(basis=vec[:, keep], scales=np.sqrt(lam[keep]), slope=slope)


def chunk_bounds(samples: int, chunk: int) -> list[tuple[int, int]]:
    """Sample ranges [start, stop) of each chunk (``samples`` and ``chunk`` multiples of 4)."""
    bounds = []
    start = 0
    while start < samples:
        stop = min(samples, start + chunk)
        bounds.append((start, stop))
        start = stop
    return bounds


def draw_chunk(root: ConditionalSquareRoot, *, seed: int, index: int, start: int, stop: int,
               samples: int, steps: int, width: int, rho: float):
    """Fields, teacher fields and probes of samples [start, stop) (antithetic quadruplets).

    Parameters
    ----------
    root : ConditionalSquareRoot
    seed, index : int
        The chunk's draws depend only on (seed, index): common random numbers.
    start, stop, samples : int
        Sample range of this chunk and the total (multiples of 4).
    steps, width : int
        T and N.
    rho : float

    Returns
    -------
    u : ndarray, shape (stop − start, T, N)
    hstar : ndarray, shape (stop − start,)
    probe : ndarray, shape (stop − start, T, N)
        Rademacher probe vectors for the response estimator.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    count = stop - start
    quarter = count // 4
    groups = samples // 4
    nt = steps * width
    first_group = start // 4
    # stratified |h*|: one stratum of the half-normal quantiles per quadruplet
    strata = (first_group + np.arange(quarter) + rng.random(quarter)) / groups
    hs = np.sqrt(rho) * ndtri(0.5 + 0.5 * strata)
    z = rng.standard_normal((quarter, nt))
    probe = rng.integers(0, 2, size=(count, steps, width)).astype(np.float64) * 2.0 - 1.0
    noise = ((z @ root.basis) * root.scales) @ root.basis.T          # (quarter, NT)
    mean = hs[:, None] * root.slope[None, :]
    u = np.empty((count, nt))
    u[0::4] = mean + noise
    u[1::4] = mean - noise
    u[2::4] = -mean + noise
    u[3::4] = -mean - noise
    hstar = np.empty(count)
    hstar[0::4] = hs
    hstar[1::4] = hs
    hstar[2::4] = -hs
    hstar[3::4] = -hs
    return u.reshape(count, steps, width), hstar, probe
