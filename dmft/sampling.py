"""Monte Carlo draws of the data-side Gaussian fields (u(·), h*) with common random numbers.

theory.md §0.1 "Sampling" and "Variance", §9.1. The joint covariance of (u(t_0..t_{T−1}), h*) is
rank-deficient (rank N + 1 at α = ∞), so h* is drawn first and u | h* from a *causal* square root
of Cov(u | h*) = C_w − m mᵀ/ρ: the lower-triangular (time-major) Cholesky factor L of the
covariance plus a tiny diagonal jitter (see :func:`conditional_square_root`), with pivots
below ``_RANK_TOL`` clamped to zero. Causality makes the fields at times ≤ t_n depend only on the normals drawn
for times ≤ t_n, and the normals are drawn time-major, so the draws of a window [0, t_n] are the
restriction of the draws of any longer grid: the fixed point found on a window stays a fixed
point when the window is extended (the marching iteration of :mod:`dmft.dmft_solver`). L is a
continuous function of a positive-definite covariance, so the same normals give nearby fields in
successive iterations.

|h*| is stratified over the quantiles of its half-normal law, with the top strata refined
geometrically and the samples weighted by their stratum's probability (:func:`stratum_edges`),
and samples come in antithetic
quadruplets (±h*, ±z): the fields u = (m/ρ)h* + L z change sign with (h*, z) → (−h*, −z) and, at
m = 0, the set is symmetric under h* → −h*, so odd statistics such as r* vanish exactly and
m ≡ 0 stays an exact fixed point of the iteration (theory.md §7.4). Every chunk's draws derive
from (seed, chunk index) only, so the same numbers are used in every fixed-point iteration
(common random numbers: without them the residual cannot be measured).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg.blas
import scipy.linalg.lapack
from numba import njit
from scipy.special import ndtri

__all__ = ["CausalSquareRoot", "conditional_square_root", "draw_chunk", "draw_teacher_chunk",
           "draw_label_noise", "SAMPLERS",
           "stratum_edges", "chunk_bounds", "TAIL_STRATA"]

#: Diagonal jitter, as a fraction of the t = 0 conditional variance (see conditional_square_root
#: for why 1e-4 and what it costs).
_JITTER = 1e-4
#: Pivots below this fraction of the t = 0 conditional variance are treated as zero. With the
#: jitter every pivot of a positive semi-definite input is ≥ _JITTER·s, so a smaller one can only
#: come from an indefinite input, whose column would otherwise blow up the fields.
_RANK_TOL = 0.5 * _JITTER


@njit(cache=True)
def _cholesky_rows(A, tol):
    """Lower Cholesky factor of a symmetric positive semi-definite A, row by row (Crout form).

    L[i, j] = (A[i, j] − L[i, :j]·L[j, :j]) / L[j, j]; a pivot d_j = A[j, j] − |L[j, :j]|² ≤ tol
    gives L[j, j] = 0 and a zero column j. Rows are contiguous, so every dot product streams.

    Guard against an indefinite A (an Anderson-extrapolated iterate can be one): a row whose
    squared norm |L[i, :i]|² exceeds A[i, i] is scaled back to norm √A[i, i] (its pivot becomes 0),
    so every field keeps its variance A[i, i] instead of exploding through a tiny pivot. The
    guard only reads rows ≤ i: the factor stays causal (a window's factor is a prefix).
    """
    n = A.shape[0]
    L = np.zeros_like(A)
    for i in range(n):
        norm2 = 0.0
        for j in range(i):
            if L[j, j] > 0.0:
                acc = A[i, j]
                for k in range(j):
                    acc -= L[i, k] * L[j, k]
                L[i, j] = acc / L[j, j]
                norm2 += L[i, j] * L[i, j]
        pivot = A[i, i] - norm2
        if norm2 > A[i, i]:
            shrink = np.sqrt(max(A[i, i], 0.0) / norm2)
            for j in range(i):
                L[i, j] *= shrink
            pivot = 0.0
        L[i, i] = np.sqrt(pivot) if pivot > tol else 0.0
    return L


@dataclass(frozen=True)
class CausalSquareRoot:
    """Causal factor of Cov(u | h*) and the regression slope E[u | h*] = slope·h*.

    Attributes
    ----------
    factor : ndarray, shape (NT, NT)
        Lower-triangular L (time-major index n·N + i) with L Lᵀ = Cov(u | h*).
    slope : ndarray, shape (NT,) or (NT, M)
        m/ρ, or m T⁻¹ for M teacher fields of covariance T.
    """

    factor: np.ndarray
    slope: np.ndarray

    @property
    def rank(self) -> int:
        return int(np.count_nonzero(np.diag(self.factor)))


def conditional_square_root(cov_flat: np.ndarray, overlap_flat: np.ndarray, teacher_cov,
                            width: int | None = None) -> CausalSquareRoot:
    """Causal square root of Cov(u | h*) = C_w − m mᵀ/ρ (theory.md §0.1 'Sampling', §9.1).

    ``teacher_cov`` is ρ = ⟨h*²⟩ for one teacher field (``overlap_flat`` of shape (NT,)), or the
    M×M covariance T of M teacher fields (``overlap_flat`` of shape (NT, M)); then
    Cov(u | h*) = C_w − m T⁻¹ mᵀ and E[u | h*] = m T⁻¹ h* (theory.md §10.7).

    A jitter ``_JITTER``·s (s = the largest conditional variance at t = 0, so that the factor of
    a window is the restriction of the factor of a longer grid) is added to the diagonal before
    the factorisation. Without it the Cholesky factor of the smooth, highly correlated field
    covariance is a rough function of the covariance, and the fixed-point iteration stalls
    (measured: 114 instead of 9 iterations at α = 10, t_max = 12, S = 2048). A jitter of 1e-6·s still
    left the Anderson iteration stalling at residuals 1e-2–5e-2 on the default problem (replicas
    took 9–23 iterations, 99 for six of them); 1e-4·s took 56 for the same six (1e-5: 78; 1e-3:
    57). The fields gain independent noise of variance 1e-4·s: the exact population loss moves
    by ≤ 5e-5 of its initial value along the online trajectories of α = 10 and α = 3, and the
    default solve moved by ≤ 0.13 (test) and 0.23 (train) combined standard errors against 1e-6.
    """
    if np.ndim(teacher_cov) == 0:
        slope = overlap_flat / teacher_cov
        cond = cov_flat - np.outer(overlap_flat, overlap_flat) / teacher_cov
    else:
        overlap = np.asarray(overlap_flat, dtype=float)
        slope = np.linalg.solve(np.asarray(teacher_cov, dtype=float), overlap.T).T
        cond = cov_flat - slope @ overlap.T
    cond = 0.5 * (cond + cond.T)
    n0 = cond.shape[0] if width is None else int(width)
    scale = max(float(np.max(np.diag(cond)[:n0])), 1e-300)
    cond[np.diag_indices_from(cond)] += _JITTER * scale
    return CausalSquareRoot(factor=_causal_cholesky(cond, _RANK_TOL * scale), slope=slope)


def _causal_cholesky(A: np.ndarray, tol: float) -> np.ndarray:
    """:func:`_cholesky_rows` of A, by LAPACK where it gives the same factor.

    For a positive definite A whose pivots all exceed ``tol`` the guarded row-by-row factor is
    the plain Cholesky factor, which LAPACK ``dpotrf`` computes ~10× faster (blocked, NT = 322:
    0.3 against 3.5 ms per data-side pass; the cost grows as (NT)³). Where ``dpotrf`` fails (an
    indefinite iterate) or a pivot is ≤ ``tol``, the guarded factor is used.
    """
    factor, info = scipy.linalg.lapack.dpotrf(A, lower=1, clean=1, overwrite_a=0)
    if info == 0 and np.all(np.diag(factor) ** 2 > tol):
        return factor
    return _cholesky_rows(A, tol)


def chunk_bounds(samples: int, chunk: int) -> list[tuple[int, int]]:
    """Sample ranges [start, stop) of each chunk (``samples`` and ``chunk`` multiples of 4)."""
    bounds = []
    start = 0
    while start < samples:
        stop = min(samples, start + chunk)
        bounds.append((start, stop))
        start = stop
    return bounds


#: Number of strata that refine the top of the |h*| distribution (see :func:`stratum_edges`).
TAIL_STRATA = 16


def stratum_edges(groups: int) -> np.ndarray:
    """Upper-tail probabilities c_k = P(|h*| > q_k) of the edges of the ``groups`` |h*| strata.

    Returned decreasing from c_0 = 1 to c_G = 0 (stratum k is c_{k+1} < P(|h*| > ·) ≤ c_k). The
    first G − K strata share the probability 1 − 2/G equally; the last K = min(TAIL_STRATA, G/64)
    split the top 2/G geometrically (1/G, 1/(2G), …, the last two equal), so the last stratum
    starts at a tail probability 2^{2−K}/G instead of 1/G. One quadruplet is drawn per stratum
    with weight G·(stratum probability): the heavy tail of y = h*²/2 (train loss ~ h*⁴) is then
    resolved by narrow strata instead of by one wide stratum whose within-stratum variance
    dominated the estimate (theory.md §0.1 "Sampling").
    """
    tail = min(TAIL_STRATA, groups // 64)          # bulk weights (G − 2)/(G − K) stay ≤ 1.03
    if tail < 2:
        return np.linspace(1.0, 0.0, groups + 1)
    top = 2.0 / groups
    bulk = 1.0 - np.linspace(0.0, 1.0 - top, groups - tail + 1)
    refined = top * 0.5 ** np.arange(1, tail)
    return np.concatenate([bulk, refined, [0.0]])


#: Generators of the field normals z: ``"rqmc"`` — randomised quasi-Monte Carlo, a Sobol'
#: sequence with a random digital shift per dimension (:func:`sobol_normals`); ``"mc"`` —
#: pseudo-random normals.
SAMPLERS = ("rqmc", "mc")
#: Largest dimension T·N of scipy's Sobol' direction numbers; beyond it ``"rqmc"`` falls back to ``"mc"``.
MAX_SOBOL_DIMENSION = 21201
_SOBOL_BITS = 30
#: Stream tag of the digital shifts (SeedSequence pads keys with zeros, so tags must not be 0).
_SHIFT_STREAM = [0x52514D43, 7]


def sobol_normals(key, first_point: int, count: int, dimension: int) -> np.ndarray:
    """Standard normals from points [first_point, first_point + count) of a scrambled Sobol' sequence.

    Randomised quasi-Monte Carlo (theory.md §0.1 "Variance"): the unscrambled Sobol' points in
    ``dimension`` dimensions, each coordinate scrambled by Matoušek's random linear matrix
    scrambling (a random lower-triangular bit matrix with unit diagonal: output digit k is its
    own input digit plus a random selection of the more significant ones, mod 2) and a random
    digital shift, mapped to the cell centre and through the normal quantile. Every point is
    then uniform on the cube (the estimates stay unbiased) and the set keeps the Sobol' net
    structure. The scrambling of coordinate j depends only on ``key`` and j, so a shorter time
    grid sees the leading coordinates of the same normals, as the causal sampler needs (scipy's
    own scrambling redraws every coordinate when the dimension changes).

    Returns
    -------
    ndarray, shape (dimension, count)
        Time-major normals (row = coordinate).
    """
    bits = _SOBOL_BITS
    from scipy.stats import qmc      # here, not at import: scipy.stats costs ~0.35 s of every CLI start

    engine = qmc.Sobol(d=dimension, scramble=False, bits=bits)
    if first_point:
        engine.fast_forward(first_point)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)           # balance warning: chunks are segments
        points = engine.random(count)
    digits = np.rint(points * 2.0**bits).astype(np.int64)      # (count, dimension), digit k = bit bits−k
    # one row of random numbers per coordinate, drawn in C order: coordinate j's matrix and shift
    # are the same whatever the dimension
    draws = np.random.default_rng(key).random((dimension, bits * bits + 1))
    lower = draws[:, :-1].reshape(dimension, bits, bits) < 0.5
    weights = 2 ** np.arange(bits - 1, -1, -1, dtype=np.int64)  # digit l ↦ bit value
    rows = np.tril(lower, k=-1) | np.eye(bits, dtype=bool)[None]
    masks = (rows * weights[None, None, :]).sum(axis=2)          # (dimension, bits): row k's mask
    shift = np.floor(draws[:, -1] * 2.0**bits).astype(np.int64)
    scrambled = np.zeros_like(digits)
    for k in range(bits):
        parity = np.bitwise_count(digits & masks[None, :, k]) & 1
        scrambled |= parity.astype(np.int64) << (bits - 1 - k)
    uniform = ((scrambled ^ shift[None, :]) + 0.5) / 2.0**bits
    return np.ascontiguousarray(ndtri(uniform).T)


def _normals(key: list, sampler: str, first_point: int, count: int, dimension: int) -> np.ndarray:
    """(dimension, count) time-major field normals of one chunk from the stream ``key``."""
    if sampler == "rqmc" and dimension <= MAX_SOBOL_DIMENSION:
        return sobol_normals(key, first_point, count, dimension)
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    return np.random.default_rng(key).standard_normal((dimension, count))


def draw_chunk(root: CausalSquareRoot, *, seed: int, index: int, start: int, stop: int,
               samples: int, steps: int, width: int, rho: float, cache: dict | None = None,
               sampler: str = "mc"):
    """Fields, teacher fields, probes and weights of samples [start, stop) (antithetic quadruplets).

    Parameters
    ----------
    root : CausalSquareRoot
    seed : int or tuple of int
        Seed, or (seed, stream) for independent replicas.
    index : int
        The chunk's draws depend only on (seed, index): common random numbers. Normals and
        probes come from separate streams, drawn time-major, so a shorter grid sees a prefix of
        the same numbers.
    start, stop, samples : int
        Sample range of this chunk and the total (multiples of 4).
    steps, width : int
        T and N.
    rho : float
    cache : dict, optional
        Keeps the chunk's random numbers (normals, probes, |h*|, weights) between calls with the
        same arguments: they do not depend on ``root``, so a fixed-point iteration draws them once
        (generating them took ~2/3 of this function's time).
    sampler : {"mc", "rqmc"}
        Normals z pseudo-random, or randomised Sobol' points (:func:`sobol_normals`; point
        start/4 onwards of the sequence of the seed, one point per quadruplet).

    Returns
    -------
    u : ndarray, shape (stop − start, T, N)
    hstar : ndarray, shape (stop − start,)
    probe : ndarray, shape (stop − start, T, N)
        Rademacher probe vectors for the response estimator.
    weight : ndarray, shape (stop − start,)
        Sample weights G·P(stratum) (mean 1 over all samples; :func:`stratum_edges`): every
        average over samples is Σ_a weight_a X_a / S.
    """
    count = stop - start
    nt = steps * width
    key = (tuple(int(v) for v in np.atleast_1d(seed)), int(index), int(start), int(stop), int(samples),
           int(steps), int(width), float(rho), sampler)
    if cache is not None and key in cache:
        hs, group_weight, z, probe = cache[key]
    else:
        hs, group_weight, z, probe = _random_numbers(key[0], index, start, count, samples, nt, rho, sampler)
        if cache is not None:
            cache[key] = (hs, group_weight, z, probe)
    # noise = (L z)ᵀ by a triangular BLAS product (half the work of a dense one)
    noise = scipy.linalg.blas.dtrmm(1.0, root.factor, z, lower=1).T     # (quarter, NT)
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
    weight = np.repeat(group_weight, 4)
    return u.reshape(count, steps, width), hstar, probe.reshape(count, steps, width), weight


def _random_numbers(seed: tuple, index: int, start: int, count: int, samples: int, nt: int, rho: float,
                    sampler: str = "mc"):
    """|h*| per quadruplet, its weight, the time-major normals z (NT, count/4) and the probes."""
    quarter = count // 4
    groups = samples // 4
    first_group = start // 4
    key = list(seed) + [int(index)]
    strata_rng = np.random.default_rng(key + [0])
    probe_rng = np.random.default_rng(key + [2])
    # stratified |h*|: one stratum of the half-normal law per quadruplet, drawn in the tail form
    # P(|h*| > q) = c so that the refined top strata keep their precision
    edges = stratum_edges(groups)[first_group: first_group + quarter + 1]
    upper, lower = edges[:-1], edges[1:]
    tail = lower + (1.0 - strata_rng.random(quarter)) * (upper - lower)
    hs = -np.sqrt(rho) * ndtri(0.5 * tail)
    group_weight = groups * (upper - lower)
    # time-major; RQMC: one Sobol' sequence per seed (not per chunk), this chunk its segment
    z = _normals(key + [1] if sampler == "mc" else list(seed) + _SHIFT_STREAM, sampler, first_group, quarter, nt)
    probe = probe_rng.integers(0, 2, size=(nt, count)).astype(np.float64) * 2.0 - 1.0
    return hs, group_weight, z, np.ascontiguousarray(probe.T)          # (count, NT)


def draw_teacher_chunk(root: CausalSquareRoot, teacher_factor: np.ndarray, *, seed, index: int, start: int,
                       stop: int, samples: int, steps: int, width: int, cache: dict | None = None,
                       sampler: str = "mc"):
    """Fields, M teacher fields, probes and weights of samples [start, stop) (antithetic quadruplets).

    The M > 1 counterpart of :func:`draw_chunk`: h* = L_T z* with T = L_T L_Tᵀ and z* standard
    normal (no stratification), u = m T⁻¹ h* + L z, in quadruplets (±h*, ±z). Same common random
    numbers, same causality (normals drawn time-major), unit weights.

    Returns
    -------
    u : ndarray, shape (stop − start, T, N)
    hstar : ndarray, shape (stop − start, M)
    probe : ndarray, shape (stop − start, T, N)
    weight : ndarray, shape (stop − start,)
    """
    count = stop - start
    quarter = count // 4
    nt = steps * width
    teachers = teacher_factor.shape[0]
    key = (tuple(int(v) for v in np.atleast_1d(seed)), int(index), int(start), int(stop), int(samples),
           int(steps), int(width), "teachers", int(teachers), sampler)
    if cache is not None and key in cache:
        zstar, z, probe = cache[key]
    else:
        rng_key = list(key[0]) + [int(index)]
        zstar = np.random.default_rng(rng_key + [0]).standard_normal((quarter, teachers))
        z = _normals(rng_key + [1] if sampler == "mc" else list(key[0]) + _SHIFT_STREAM, sampler, start // 4,
                     quarter, nt)
        probe = np.random.default_rng(rng_key + [2]).integers(0, 2, size=(nt, count)).astype(np.float64) * 2.0 - 1.0
        probe = np.ascontiguousarray(probe.T)
        if cache is not None:
            cache[key] = (zstar, z, probe)
    hs = zstar @ teacher_factor.T                                          # (quarter, M)
    noise = scipy.linalg.blas.dtrmm(1.0, root.factor, z, lower=1).T      # (quarter, NT)
    mean = hs @ root.slope.T
    u = np.empty((count, nt))
    u[0::4] = mean + noise
    u[1::4] = mean - noise
    u[2::4] = -mean + noise
    u[3::4] = -mean - noise
    hstar = np.empty((count, teachers))
    hstar[0::4] = hs
    hstar[1::4] = hs
    hstar[2::4] = -hs
    hstar[3::4] = -hs
    return u.reshape(count, steps, width), hstar, probe.reshape(count, steps, width), np.ones(count)


def draw_label_noise(*, seed, index: int, start: int, stop: int) -> np.ndarray:
    """Output noise ξ ~ N(0, 1) of samples [start, stop), one per sample, fixed by (seed, index).

    Drawn per antithetic quadruplet and signed like its teacher field (+ξ, +ξ, −ξ, −ξ), so
    (h*, ξ) → (−h*, −ξ) within a quadruplet: the quadruplet of an odd teacher stays odd, and
    each sample's ξ is still standard normal and independent of its fields. Its own stream of
    the chunk key: the fields, probes and strata do not change when noise is switched on.
    """
    count = stop - start
    key = [int(v) for v in np.atleast_1d(seed)] + [int(index), 3]
    xi = np.random.default_rng(key).standard_normal(count // 4)
    out = np.empty(count)
    out[0::4] = xi
    out[1::4] = xi
    out[2::4] = -xi
    out[3::4] = -xi
    return out
