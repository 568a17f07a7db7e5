"""Weight-side process of the DMFT in closed form (theory.md §4.2, §4.6 step 3).

Per input coordinate the weight process is linear and Gaussian,

    dw/dt = c [ ξ(t) + ∫ R_g(t,s) w(s) ds + r*(t) β ] + j(t),   ⟨ξ(t)ξ(s)ᵀ⟩ = C_g(t,s)/α.

Discretised on an increasing grid 0 = t_0 < t_1 < … < t_{T−1} (uniform or not, theory.md §9.1) as a
Volterra equation with trapezoid weights, w_n = w_0 + Σ_k Q_nk F_k with Q_0k = 0 and, for n ≥ 1,
Q_nk = (t_{k+1} − t_{k−1})/2 for 0 < k < n, Q_n0 = (t_1 − t_0)/2, Q_nn = (t_n − t_{n−1})/2
(on a uniform grid: dt/2 at both ends, dt inside), and with the
memory operator being the *discrete* mean response R_g[n, s] = E[∂g_n/∂u_s] (theory.md §0.1
"One discrete system": the δ(t−s) part is the diagonal block). Stacking w = (w_0, …, w_{T−1}),

    (I − c Q R_g) w = 1⊗w_0 + c Q (ξ + r* β)
    M = (I − c Q R_g)⁻¹,   χ = M Q  (= R_w with quadrature weights built in)

so that, with a = M(1⊗I) and b = c M Q r*,

    m = a m_0 + ρ b
    C_w = a C_0 aᵀ + a m_0 bᵀ + b m_0ᵀ aᵀ + ρ b bᵀ + (c²/α) χ C_g χᵀ.

With M teacher fields (β ∈ R^M per coordinate, ⟨ββᵀ⟩ = T, theory.md §10.7) r* is N × M per time,
b = c M Q r* has M columns, m = a m_0 + b T and the ρ b bᵀ term becomes b T bᵀ.

Arrays use the grid-major layout (T, T, N, N); the flat (NT × NT) form orders index n·N + i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .parameters import InvalidParameterError

__all__ = ["check_grid", "trapezoid_weights", "column_steps", "WeightSide", "weight_side", "to_flat", "from_flat"]


def check_grid(t, name: str = "t") -> np.ndarray:
    """The time grid as a float array, refused unless 0 = t_0 < t_1 < … (theory.md §9.1)."""
    t = np.asarray(t, dtype=float)
    if t.ndim != 1 or t.size < 2 or t[0] != 0.0 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise InvalidParameterError(f"{name} must be a strictly increasing array 0 = t_0 < t_1 < ... "
                                    "with at least two points")
    return t


def trapezoid_weights(times: np.ndarray) -> np.ndarray:
    """Volterra trapezoid weights Q (T × T, lower triangular) for w_n = w_0 + Σ_k Q_nk F_k.

    Row n integrates over [0, t_n] with the trapezoid rule on the (possibly non-uniform) grid
    ``times`` (theory.md §9.1): Q_nk = (t_{k+1} − t_{k−1})/2 inside, half a step at both ends.
    """
    times = np.asarray(times, dtype=float)
    steps = times.size
    h = np.diff(times)
    Q = np.zeros((steps, steps))
    for n in range(1, steps):
        Q[n, :n] = 0.5 * h[:n]
        Q[n, 1: n + 1] += 0.5 * h[:n]
    return Q


def column_steps(times: np.ndarray) -> np.ndarray:
    """Step h_s = t_{s+1} − t_s that belongs to each grid point (the last repeats the one before).

    χ[n, s]/h_s is the weight response R_w(t_n, t_s) up to the trapezoid end factors; the solver
    uses it to put χ on the scale of C_w and m in its residual (uniform grid: h_s = dt).
    """
    h = np.diff(np.asarray(times, dtype=float))
    return np.append(h, h[-1])


def to_flat(blocks: np.ndarray) -> np.ndarray:
    """(T, T, N, N) → (NT, NT) with index n·N + i."""
    T, _, N, _ = blocks.shape
    return blocks.transpose(0, 2, 1, 3).reshape(T * N, T * N)


def from_flat(flat: np.ndarray, width: int) -> np.ndarray:
    """(NT, NT) → (T, T, N, N)."""
    T = flat.shape[0] // width
    return flat.reshape(T, width, T, width).transpose(0, 2, 1, 3)


@dataclass(frozen=True)
class WeightSide:
    """Order parameters produced by the weight-side process.

    Attributes
    ----------
    cov : ndarray, shape (T, T, N, N)
        C_w(t_n, t_s).
    overlap : ndarray, shape (T, N)
        m(t_n).
    response : ndarray, shape (T, T, N, N)
        χ = M Q: discrete weight response (R_w(t_n, t_s) times the quadrature weight of s).
    """

    cov: np.ndarray
    overlap: np.ndarray
    response: np.ndarray


def _solve_causal(system: np.ndarray, rhs: np.ndarray, width: int) -> np.ndarray:
    """Solve ``system @ X = rhs`` for the block lower-triangular (causal) I − cQR_g.

    R_g and the trapezoid weights are causal, so the system is block lower triangular with N × N
    diagonal blocks D_n = I − c Q_nn R_g[n, n]. Multiplying each block row by D_n⁻¹ leaves a unit
    lower-triangular matrix, solved by one triangular substitution: (NT)²·(NT + N) multiply-adds
    against ~(8/3)(NT)³ for a dense LU and its two substitutions. Measured
    (``benchmarks/bench_dmft.py``, best of 7, quiet machine): 1.5× faster at NT = 322 and 1.9× at
    NT = 1036; inside the default solve the weight side fell from 5.0 s to 1.3 s of the total
    (cProfile, 116 calls). An ill-conditioned system means the iterate has blown up: LAPACK's
    condition estimate (of the D_n and of the unit triangle) below machine precision raises
    ``LinAlgError`` (the solver then halves the window or reports it) instead of returning garbage.
    """
    size = system.shape[0]
    steps = size // width
    index = np.arange(steps)
    diagonal = system.reshape(steps, width, steps, width)[index, :, index, :]           # (T, N, N)
    if not np.all(np.isfinite(system)):
        raise np.linalg.LinAlgError("weight-side system I - cQR_g has non-finite entries")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        block_cond = np.linalg.cond(diagonal)            # inf for a singular block
    if not np.all(block_cond < 1.0 / np.finfo(float).eps):
        worst = int(np.argmax(np.where(np.isfinite(block_cond), block_cond, np.inf)))
        raise np.linalg.LinAlgError(f"weight-side system I - cQR_g is singular to working precision: diagonal "
                                    f"block {worst} has condition number {block_cond[worst]:.3g}")
    inverse = np.linalg.inv(diagonal)
    unit = np.einsum("nij,njm->nim", inverse, system.reshape(steps, width, size)).reshape(size, size)
    scaled_rhs = np.einsum("nij,njm->nim", inverse, rhs.reshape(steps, width, -1)).reshape(size, -1)
    rcond, info = scipy.linalg.lapack.dtrcon(unit, norm="1", uplo="L", diag="U")
    if info != 0 or not rcond >= np.finfo(float).eps:
        raise np.linalg.LinAlgError(f"weight-side system I - cQR_g is singular to working precision "
                                    f"(reciprocal condition number {rcond:.3g})")
    return scipy.linalg.solve_triangular(unit, scaled_rhs, lower=True, unit_diagonal=True, check_finite=False)


def weight_side(response_g: np.ndarray, r_star: np.ndarray, cov_g: np.ndarray | None, *,
                m0: np.ndarray, cov0: np.ndarray, rho: float, scale: float, alpha: float,
                times: np.ndarray) -> WeightSide:
    """Solve the weight-side process given the data-side order parameters.

    Parameters
    ----------
    response_g : ndarray, shape (T, T, N, N)
        Discrete mean response R_g[n, s] = E[∂g_n/∂u_s] (block lower triangular).
    r_star : ndarray, shape (T, N) or (T, N, M)
        r*(t_n) = E[dg_n/dh*] (one teacher field), or E[dg_n/dh*_m] for M teacher fields.
    cov_g : ndarray, shape (T, T, N, N) or None
        C_g(t_n, t_s); ``None`` (or α = ∞) drops the noise ξ.
    m0, cov0, rho :
        Initial overlaps (N, or N × M), C_w(0,0) and the teacher norm ρ (or the M × M teacher
        covariance T). The returned overlap has the shape of ``r_star``.
    scale, alpha : float
        κ (c = 2/κ) and α = P/D.
    times : ndarray, shape (T,)
        The increasing time grid, t_0 = 0.
    """
    T, _, N, _ = response_g.shape
    c = 2.0 / scale
    Qt = trapezoid_weights(times)
    Qflat = np.kron(Qt, np.eye(N))
    # (Q ⊗ I) R_g without the Kronecker product: row block n is Σ_k Q_nk R_g[k]
    system = -c * (Qt @ to_flat(response_g).reshape(T, N * T * N)).reshape(T * N, T * N)
    system[np.diag_indices(T * N)] += 1.0
    # M Q and M (1⊗I) by one causal solve
    ones = np.kron(np.ones((T, 1)), np.eye(N))
    rhs = np.concatenate([Qflat, ones], axis=1)
    sol = _solve_causal(system, rhs, N)
    chi_flat = sol[:, : T * N]
    a = sol[:, T * N:]                                   # (NT, N)
    r_star = np.asarray(r_star, dtype=float)
    teachers = r_star.size // (T * N)
    b = c * chi_flat @ r_star.reshape(T * N, teachers)                 # (NT, M)
    teacher_cov = np.asarray(rho, dtype=float).reshape(teachers, teachers)
    am0 = a @ np.asarray(m0, dtype=float).reshape(N, teachers)
    m = (am0 + b @ teacher_cov).reshape(r_star.shape)
    C = a @ cov0 @ a.T + am0 @ b.T + b @ am0.T + b @ teacher_cov @ b.T
    if cov_g is not None and np.isfinite(alpha):
        C = C + (c * c / alpha) * chi_flat @ to_flat(cov_g) @ chi_flat.T
    C = 0.5 * (C + C.T)
    return WeightSide(cov=from_flat(C, N), overlap=m, response=from_flat(chi_flat, N))
