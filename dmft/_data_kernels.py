"""Data-side kernels of the DMFT: one Monte Carlo trajectory per training point.

theory.md §4.2 discretised as one system (§0.1 "One discrete system"). For each sample
(u(·), h*) and each grid time n:

    h_n = u_n + a Σ_{k<n} χ_nk g_k + a χ_nn g(h_n),    a = c/α           (data-side process)
    g_n = Δ_n φ'(h_n),   Δ_n = y − (κ/N) Σ_i [φ(h_n,i) − φ(h_0,i)·center]

The target y of each sample and its gradient ∂y/∂h*_m along the M teacher fields are inputs
(y = h*²/2, ∂y/∂h* = h* for the package's default model; y = (κ*/M) Σ_m φ*(h*_m) for a committee
teacher, theory.md §10.7). The student activation is one of the compiled codes ``ACT_*``
(φ, φ′, φ″ in closed form).

The last term is implicit (a small Newton solve per step). Along the same pass the kernel
propagates two tangent vectors through the *exact discrete response* of the scheme (theory.md
eq. 41 discretised):

* a random probe v (Rademacher, one per sample): δg = Ψ v, of which it stores the indirect part
  ``ind`` = Σ_{k<n} Ψ[n,k] v_k (all memory terms), whose product with v_sᵀ estimates the regular
  part of R_g(n, s) without bias (E[v vᵀ] = I);
* the M teacher fields: dg_n/dh*_m (for r*).

It also stores the exact local (same-time) response blocks D_n = ∂g_n/∂u_n = J_n A_n⁻¹ with
A_n = I − a χ_nn J_n, the local part E_n of ∂g_n/∂u_0 of the centred predictor, and the control
variates evaluated at the Gaussian field h = u, whose means are known in closed form.

Two implementations compute the same numbers: :func:`data_side_numba` (compiled; blocks of
``block_size(N)`` samples in parallel, every per-sample operation vectorised over the block) and
:func:`data_side_numpy` (vectorised over all samples, loop over time).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special
from numba import njit, prange

from dmft._fast_math import erf_and_gaussian, normal_cdf_and_gaussian
from dmft._fast_math import tanh as simd_tanh

__all__ = ["DataSideSamples", "data_side_numba", "data_side_numpy", "exact_response_numba",
           "exact_response_numpy", "allocate_outputs", "run_data_kernel", "MOMENT_NAMES", "ACT_QUADRATIC", "ACT_ERF", "ACT_TANH", "ACT_SMOOTHED_RELU",
           "ACTIVATION_CODES"]

#: Compiled student activations: φ(h) = h + (p/2)h² (p = ε; p = 0 is the linear student),
#: erf(h/√2) and tanh(h). The parameter p is used by the quadratic code only.
ACT_QUADRATIC = 0
ACT_ERF = 1
ACT_TANH = 2
#: Gaussian-smoothed ReLU of width p (theory.md §10.9): φ = s(zΦ(z) + ϕ(z)), φ′ = Φ(z), φ″ = ϕ(z)/s.
ACT_SMOOTHED_RELU = 3
ACTIVATION_CODES = {"quadratic": ACT_QUADRATIC, "linear": ACT_QUADRATIC, "erf": ACT_ERF, "tanh": ACT_TANH,
                    "smoothed_relu": ACT_SMOOTHED_RELU}
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_ERF_SLOPE = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

_NEWTON_TOL = 1e-13
_NEWTON_MAX = 30


@njit(cache=True)
def block_size(width: int) -> int:
    """Samples advanced together by one thread of the Numba kernel (and per row of the block
    moments), by the width N.

    Larger blocks amortise the loop overhead of the per-step work (Newton solve, tangents), which
    at T = 161 is half of the kernel; smaller ones keep the three histories (3·T·N·B doubles) in
    L2 for the memory sums. Measured (kernel alone, S = 8192, 2-core AMD EPYC, best of 7): N = 2,
    B = 64 against 32: T = 41 12 against 21 ms, T = 161 72 against 91 ms, T = 321 231 against
    267 ms, T = 1201 2.73 against 3.38 s; N = 1, 3 equal within noise; N = 4, T = 161: 696–740
    against 583–646 ms (B = 32 better); B = 96 or 128 no better than 64.
    """
    return 64 if width <= 3 else 32
#: LLVM may fuse a multiply and an add into one FMA instruction (no reassociation, no other
#: fast-math assumption): without it the memory sums compile to separate vmulpd/vaddpd.
_CONTRACT = {"contract"}

#: Names and per-sample shapes of the kernel outputs ("T", "N", "M" substituted).
_OUTPUTS = (
    ("g", ("T", "N")),            # g_n = Δ_n φ'(h_n)
    ("delta", ("T",)),            # Δ_n
    ("local", ("T", "N", "N")),   # D_n = ∂g_n/∂u_n (exact, per sample)
    ("local0", ("T", "N", "N")),  # E_n: local part of ∂g_n/∂u_0 (centred only; 0 otherwise)
    ("dg_dstar", ("T", "N", "M")),  # dg_n/dh*_m (total, along the trajectory)
    ("probe_memory", ("T", "N")), # Σ_{k<n} Ψ[n,k] v_k
    ("delta_gauss", ("T",)),      # Δ at h = u (control variate)
    ("jac_gauss", ("T", "N", "N")),   # ∂g/∂h at h = u (control variate)
    ("dstar_gauss", ("T", "N", "M")),  # ∂y/∂h*_m φ'(u_n) (control variate)
)


#: Per-sample outputs the estimator always needs (the BLAS products of C_g and the probe
#: response); the others are stored only on request (``store_samples``).
_ALWAYS_STORED = ("g", "probe_memory")

#: Weighted moments per block of ``block_size(N)`` samples, accumulated inside the kernels so that the
#: per-sample arrays behind them never travel through memory (theory.md §4.2 control variates):
#: for (X, X⁰) each block holds Σw X, Σw X⁰, Σw X X⁰, Σw X⁰X⁰ (axis 1), for ``local0`` Σw E.
#: Names, per-block shapes, and the pair (X, X⁰) they summarise.
MOMENT_NAMES = ("train_moments", "local_moments", "rstar_moments", "local0_moments")
_MOMENTS = (
    ("train_moments", (4, "T")),            # X = Δ², X⁰ = Δ(u)²
    ("local_moments", (4, "T", "N", "N")),  # X = D_n, X⁰ = J(u_n)
    ("rstar_moments", (4, "T", "N", "M")),  # X = dg_n/dh*, X⁰ = (∂y/∂h*) φ'(u_n)
    ("local0_moments", ("T", "N", "N")),    # Σw E_n
)


def allocate_outputs(samples: int, steps: int, width: int, teachers: int = 1, store_samples: bool = True) -> dict:
    """Zero-filled output arrays of the data-side kernels (``teachers`` = M teacher fields).

    With ``store_samples=False`` the per-sample arrays other than ``g`` and ``probe_memory`` have
    no rows (the kernels then only write their block moments, ``MOMENT_NAMES``).
    """
    sizes = {"T": steps, "N": width, "M": teachers}
    out = {name: np.zeros(((samples if store_samples or name in _ALWAYS_STORED else 0),)
                          + tuple(sizes[d] for d in dims)) for name, dims in _OUTPUTS}
    block = block_size(width)
    blocks = (samples + block - 1) // block
    for name, dims in _MOMENTS:
        out[name] = np.zeros((blocks,) + tuple(sizes.get(d, d) for d in dims))
    return out


def run_data_kernel(kernel, u, y, dy, probe, chi, scale, act_code, act_param, coupling, centered, weight, out,
                    store_samples=True, memory_dtype=np.float64) -> int:
    """Call a data-side kernel with the arrays of ``out`` (from :func:`allocate_outputs`, first
    ``len(u)`` rows; ``weight`` = per-sample weights of the block moments; ``memory_dtype`` = the
    precision of the Numba kernel's memory sums, float64 or float32). Returns the Newton failure
    count."""
    chi_memory = np.ascontiguousarray(chi, dtype=memory_dtype)
    S = u.shape[0]
    block = block_size(u.shape[2])
    blocks = (S + block - 1) // block
    rows = {name: (array[:S] if array.shape[0] else array) for name, array in out.items()
            if name not in MOMENT_NAMES}
    moments = [out[name][:blocks] for name in MOMENT_NAMES]
    return int(kernel(u, y, dy, probe, chi, chi_memory, float(scale), act_code, float(act_param), float(coupling),
                      bool(centered), np.ascontiguousarray(weight, dtype=np.float64), bool(store_samples),
                      *(rows[name] for name, _ in _OUTPUTS), *moments))


class DataSideSamples(dict):
    """Per-sample outputs of a data-side kernel (a dict of arrays named as in ``_OUTPUTS``)."""


# ----------------------------------------------------------------------------------------------
# Numba implementation
# ----------------------------------------------------------------------------------------------
# Inlining at Numba's IR level (``inline="always"``) only where it pays: the memory sums (one call
# per step; their loops are the hot loop) and ``_field_terms_block``. With every helper below
# inlined (until session 26) the kernel's body grew to many copies of the block inverse and of
# every activation's branch, and compiling ``data_side_numba`` took 388 s on a fresh install: the
# first solve of a new user, and twice in CI (float64 and float32 memory sums). Now 78 s (a fresh
# cache, the first `dmft.solve`). Kernel time in the same runs against the fully inlined kernel:
# N = 4, T = 125 8–9 % faster; N = 2, T = 161 5–6 % slower. Inlining also the block inverse, the
# two matvecs and the implicit matrix (session 27, `benchmarks/kernel_ab.py`): 0.3–3.5 % faster on
# the default problem's grid (N = 2, T = 98), 1.6 % slower for N = 4, at 161 s of compilation
# instead of 82 s; not adopted.
@njit(cache=True, fastmath=_CONTRACT)
def _small_inverse(A, out, M):
    """Inverse of a small dense matrix: closed form for n ≤ 2, else Gauss–Jordan with partial
    pivoting in the workspace M (n × 2n). The closed 2 × 2 form made the kernel 1.35× faster."""
    n = A.shape[0]
    if n == 1:
        out[0, 0] = 1.0 / A[0, 0]
        return
    if n == 2:
        inv_det = 1.0 / (A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0])
        out[0, 0] = A[1, 1] * inv_det
        out[0, 1] = -A[0, 1] * inv_det
        out[1, 0] = -A[1, 0] * inv_det
        out[1, 1] = A[0, 0] * inv_det
        return
    for i in range(n):
        for j in range(n):
            M[i, j] = A[i, j]
            M[i, n + j] = 1.0 if i == j else 0.0
    for col in range(n):
        piv = col
        best = abs(M[col, col])
        for r in range(col + 1, n):
            if abs(M[r, col]) > best:
                best = abs(M[r, col])
                piv = r
        if piv != col:
            for j in range(2 * n):
                tmp = M[col, j]
                M[col, j] = M[piv, j]
                M[piv, j] = tmp
        inv_p = 1.0 / M[col, col]
        for j in range(2 * n):
            M[col, j] *= inv_p
        for r in range(n):
            if r != col:
                f = M[r, col]
                if f != 0.0:
                    for j in range(2 * n):
                        M[r, j] -= f * M[col, j]
    for i in range(n):
        for j in range(n):
            out[i, j] = M[i, n + j]


@njit(cache=True, fastmath=_CONTRACT)
def _activation_block(code, param, h, phi, dphi, ddphi):
    """φ, φ′, φ″ of the compiled activation ``code`` at the fields h (N, B)."""
    N, B = h.shape
    for i in range(N):
        if code == ACT_QUADRATIC:
            for b in range(B):
                x = h[i, b]
                phi[i, b] = x + 0.5 * param * x * x
                dphi[i, b] = 1.0 + param * x
                ddphi[i, b] = param
        elif code == ACT_ERF:
            # erf and exp in SIMD arithmetic (dmft._fast_math; libm's scalar calls made this
            # kernel 2× the quadratic one, theory.md §9.5)
            for b in range(B):
                x = h[i, b]
                value, gaussian = erf_and_gaussian(x)
                slope = _ERF_SLOPE * gaussian
                phi[i, b] = value
                dphi[i, b] = slope
                ddphi[i, b] = -x * slope
        elif code == ACT_SMOOTHED_RELU:
            for b in range(B):
                x = h[i, b]
                cdf, gaussian = normal_cdf_and_gaussian(x / param)   # dmft._fast_math (SIMD)
                density = _INV_SQRT_2PI * gaussian
                phi[i, b] = x * cdf + param * density
                dphi[i, b] = cdf
                ddphi[i, b] = density / param
        else:
            for b in range(B):
                th = simd_tanh(h[i, b])   # dmft._fast_math: libm's math.tanh kept the loop scalar
                d1 = 1.0 - th * th
                phi[i, b] = th
                dphi[i, b] = d1
                ddphi[i, b] = -2.0 * th * d1


@njit(cache=True, inline="always", fastmath=_CONTRACT)
def _field_terms_block(h, phi0, y, kappa, code, param, centered, delta, phi, dphi, ddphi, g, jac):
    """Δ, φ', g = Δφ'(h) and J = ∂g/∂h for a block of samples (arrays (N, B), last axis = sample;
    theory.md §4.2 'Derivatives': J_ij = −(κ/N) φ′_i φ′_j + δ_ij Δ φ″_i). ``phi0`` = φ(h_0) of the
    centred predictor. Loops over the sample axis innermost, so they vectorise."""
    N, B = h.shape
    quadratic = code == ACT_QUADRATIC
    for b in range(B):
        delta[b] = 0.0
    if quadratic:
        # the package model inline (φ″ = ε): no φ/φ″ arrays in the loop that runs at every Newton
        # step (measured: the generic path made the quadratic kernel ~10 % slower at T = 161)
        for i in range(N):
            for b in range(B):
                x = h[i, b]
                delta[b] += x + 0.5 * param * x * x
                dphi[i, b] = 1.0 + param * x
    else:
        _activation_block(code, param, h, phi, dphi, ddphi)
        for i in range(N):
            for b in range(B):
                delta[b] += phi[i, b]
    if centered:
        for i in range(N):
            for b in range(B):
                delta[b] -= phi0[i, b]
    for b in range(B):
        delta[b] = y[b] - kappa / N * delta[b]
    for i in range(N):
        for b in range(B):
            g[i, b] = delta[b] * dphi[i, b]
    for i in range(N):
        for j in range(N):
            for b in range(B):
                jac[i, j, b] = -kappa / N * dphi[i, b] * dphi[j, b]
        if quadratic:
            for b in range(B):
                jac[i, i, b] += param * delta[b]
        else:
            for b in range(B):
                jac[i, i, b] += ddphi[i, b] * delta[b]


@njit(cache=True, fastmath=_CONTRACT)
def _implicit_matrix_block(chi_nn, coupling, jac, A):
    """A = I − a χ_nn J per sample (theory.md §0.1: the implicit diagonal of the data side)."""
    N, _, B = jac.shape
    for i in range(N):
        for j in range(N):
            for b in range(B):
                A[i, j, b] = 1.0 if i == j else 0.0
            for l in range(N):
                c_il = coupling * chi_nn[i, l]
                for b in range(B):
                    A[i, j, b] -= c_il * jac[l, j, b]


@njit(cache=True, fastmath=_CONTRACT)
def _inverse_block(A, Ainv, one, inv_one, work, elim, column, unstable):
    """Per-sample inverses of A (N, N, B): closed form for N ≤ 2; for N ≥ 3 Gauss–Jordan without
    row exchanges vectorised over the samples (workspaces elim (N, N, B), column (2, B),
    unstable (B)), A left unchanged. A = I − a χ_nn J is close to the identity, so a pivot is
    normally the largest entry of its column; a sample where it is below a quarter of the largest
    entry under it is redone with partial pivoting, sample by sample (workspaces one/inv_one
    (N, N), work). Without exchanges the operations are those of the pivoting routine, so the
    inverses are the same to the bit (checked on the α = 3, N = 4 problem); vectorised, that N = 4
    kernel is 1.3–1.5× faster (T = 125, 2048 samples: 58–69 against 89–92 ms)."""
    N, _, B = A.shape
    if N == 1:
        for b in range(B):
            Ainv[0, 0, b] = 1.0 / A[0, 0, b]
    elif N == 2:
        for b in range(B):
            inv_det = 1.0 / (A[0, 0, b] * A[1, 1, b] - A[0, 1, b] * A[1, 0, b])
            Ainv[0, 0, b] = A[1, 1, b] * inv_det
            Ainv[0, 1, b] = -A[0, 1, b] * inv_det
            Ainv[1, 0, b] = -A[1, 0, b] * inv_det
            Ainv[1, 1, b] = A[0, 0, b] * inv_det
    else:
        for i in range(N):
            for j in range(N):
                for b in range(B):
                    elim[i, j, b] = A[i, j, b]
                    Ainv[i, j, b] = 1.0 if i == j else 0.0
        for b in range(B):
            unstable[b] = False
        for k in range(N):
            # the pivot against the largest entry below it (what partial pivoting would pick)
            for b in range(B):
                column[1, b] = 0.0
            for r in range(k + 1, N):
                for b in range(B):
                    column[1, b] = max(column[1, b], abs(elim[r, k, b]))
            for b in range(B):
                pivot = elim[k, k, b]
                unstable[b] = unstable[b] or not (abs(pivot) >= 0.25 * column[1, b] and pivot != 0.0)
                column[0, b] = 1.0 / pivot if pivot != 0.0 else 0.0
            for j in range(N):
                for b in range(B):
                    elim[k, j, b] *= column[0, b]
                    Ainv[k, j, b] *= column[0, b]
            for r in range(N):
                if r != k:
                    for b in range(B):
                        column[1, b] = elim[r, k, b]
                    for j in range(N):
                        for b in range(B):
                            elim[r, j, b] -= column[1, b] * elim[k, j, b]
                            Ainv[r, j, b] -= column[1, b] * Ainv[k, j, b]
        for b in range(B):
            if unstable[b]:
                for i in range(N):
                    for j in range(N):
                        one[i, j] = A[i, j, b]
                _small_inverse(one, inv_one, work)
                for i in range(N):
                    for j in range(N):
                        Ainv[i, j, b] = inv_one[i, j]


@njit(cache=True, fastmath=_CONTRACT)
def _matvec_block(M, x, out):
    """out[:, b] = M[:, :, b] x[:, b] for every sample b."""
    N, B = x.shape
    for i in range(N):
        for b in range(B):
            out[i, b] = 0.0
        for j in range(N):
            for b in range(B):
                out[i, b] += M[i, j, b] * x[j, b]


@njit(cache=True, fastmath=_CONTRACT)
def _shared_matvec_block(M, x, out):
    """out[:, b] = M x[:, b] with one matrix M (N, N) for all samples."""
    N, B = x.shape
    for i in range(N):
        for b in range(B):
            out[i, b] = 0.0
        for j in range(N):
            m_ij = M[i, j]
            for b in range(B):
                out[i, b] += m_ij * x[j, b]


# Memory sums Σ_{k<n} χ_nk (g_k, δg_k, dg*_k) over the past times k < head (a multiple of 4), four
# at a time. They are ~60 % of the kernel at T = 161 (measured). Each multiply-add needs one
# history value (a load) and the sums are loaded and stored once per pass, so the loads, not the
# multiply-adds, set the speed: a unit's history value feeds the sums of two units i, i + 1 in the
# same pass (loads per multiply-add 1.25 -> 0.75; N = 4 kernel 1.2× faster, measured), and for
# N = 2 the fixed indices also let one pass cover j = 0, 1 (0.63 loads per
# multiply-add; N = 2 kernel 1.35× faster than one pass per unit i).
@njit(cache=True, inline="always")
def _four_past_times(chi, n, k):
    """χ[n, k..k+3] for N = 2 as 16 scalars: row 0 (j = 0 then 1), then row 1, each over the four times."""
    return (chi[n, k, 0, 0], chi[n, k + 1, 0, 0], chi[n, k + 2, 0, 0], chi[n, k + 3, 0, 0],
            chi[n, k, 0, 1], chi[n, k + 1, 0, 1], chi[n, k + 2, 0, 1], chi[n, k + 3, 0, 1],
            chi[n, k, 1, 0], chi[n, k + 1, 1, 0], chi[n, k + 2, 1, 0], chi[n, k + 3, 1, 0],
            chi[n, k, 1, 1], chi[n, k + 1, 1, 1], chi[n, k + 2, 1, 1], chi[n, k + 3, 1, 1])


@njit(cache=True, inline="always", fastmath=_CONTRACT)
def _two_unit_memory(chi, n, head, g_hist, p_hist, s_hist, mem_g, mem_p, mem_s):
    """Memory sums over k < head for N = 2 (indices fixed at compile time)."""
    B = g_hist.shape[2]
    for k in range(0, head, 4):
        (a00, a01, a02, a03, a10, a11, a12, a13,
         c00, c01, c02, c03, c10, c11, c12, c13) = _four_past_times(chi, n, k)
        # one pass per history (a single pass over all three spilled registers: 1.4× slower)
        for b in range(B):
            x0, x1, x2, x3 = g_hist[k, 0, b], g_hist[k + 1, 0, b], g_hist[k + 2, 0, b], g_hist[k + 3, 0, b]
            y0, y1, y2, y3 = g_hist[k, 1, b], g_hist[k + 1, 1, b], g_hist[k + 2, 1, b], g_hist[k + 3, 1, b]
            mem_g[0, b] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3 + a10 * y0 + a11 * y1 + a12 * y2 + a13 * y3
            mem_g[1, b] += c00 * x0 + c01 * x1 + c02 * x2 + c03 * x3 + c10 * y0 + c11 * y1 + c12 * y2 + c13 * y3
        for b in range(B):
            x0, x1, x2, x3 = p_hist[k, 0, b], p_hist[k + 1, 0, b], p_hist[k + 2, 0, b], p_hist[k + 3, 0, b]
            y0, y1, y2, y3 = p_hist[k, 1, b], p_hist[k + 1, 1, b], p_hist[k + 2, 1, b], p_hist[k + 3, 1, b]
            mem_p[0, b] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3 + a10 * y0 + a11 * y1 + a12 * y2 + a13 * y3
            mem_p[1, b] += c00 * x0 + c01 * x1 + c02 * x2 + c03 * x3 + c10 * y0 + c11 * y1 + c12 * y2 + c13 * y3
        for b in range(B):
            x0, x1, x2, x3 = s_hist[k, 0, 0, b], s_hist[k + 1, 0, 0, b], s_hist[k + 2, 0, 0, b], s_hist[k + 3, 0, 0, b]
            y0, y1, y2, y3 = s_hist[k, 0, 1, b], s_hist[k + 1, 0, 1, b], s_hist[k + 2, 0, 1, b], s_hist[k + 3, 0, 1, b]
            mem_s[0, 0, b] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3 + a10 * y0 + a11 * y1 + a12 * y2 + a13 * y3
            mem_s[0, 1, b] += c00 * x0 + c01 * x1 + c02 * x2 + c03 * x3 + c10 * y0 + c11 * y1 + c12 * y2 + c13 * y3


@njit(cache=True, inline="always", fastmath=_CONTRACT)
def _unit_pair_memory(chi, n, head, g_hist, p_hist, s_hist, mem_g, mem_p, mem_s):
    """Memory sums over k < head for any N: units in pairs (i, i + 1), a last odd unit alone."""
    N, B = g_hist.shape[1], g_hist.shape[2]
    pairs = N - N % 2
    for k in range(0, head, 4):
        for i in range(0, pairs, 2):
            for j in range(N):
                a0, a1, a2, a3 = chi[n, k, i, j], chi[n, k + 1, i, j], chi[n, k + 2, i, j], chi[n, k + 3, i, j]
                c0, c1, c2, c3 = (chi[n, k, i + 1, j], chi[n, k + 1, i + 1, j], chi[n, k + 2, i + 1, j],
                                  chi[n, k + 3, i + 1, j])
                for b in range(B):
                    x0, x1, x2, x3 = g_hist[k, j, b], g_hist[k + 1, j, b], g_hist[k + 2, j, b], g_hist[k + 3, j, b]
                    mem_g[i, b] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
                    mem_g[i + 1, b] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3
                for b in range(B):
                    x0, x1, x2, x3 = p_hist[k, j, b], p_hist[k + 1, j, b], p_hist[k + 2, j, b], p_hist[k + 3, j, b]
                    mem_p[i, b] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
                    mem_p[i + 1, b] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3
                for b in range(B):
                    x0, x1, x2, x3 = (s_hist[k, 0, j, b], s_hist[k + 1, 0, j, b], s_hist[k + 2, 0, j, b],
                                      s_hist[k + 3, 0, j, b])
                    mem_s[0, i, b] += a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3
                    mem_s[0, i + 1, b] += c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3
        for i in range(pairs, N):
            for j in range(N):
                c0, c1, c2, c3 = chi[n, k, i, j], chi[n, k + 1, i, j], chi[n, k + 2, i, j], chi[n, k + 3, i, j]
                for b in range(B):
                    mem_g[i, b] += (c0 * g_hist[k, j, b] + c1 * g_hist[k + 1, j, b]
                                    + c2 * g_hist[k + 2, j, b] + c3 * g_hist[k + 3, j, b])
                    mem_p[i, b] += (c0 * p_hist[k, j, b] + c1 * p_hist[k + 1, j, b]
                                    + c2 * p_hist[k + 2, j, b] + c3 * p_hist[k + 3, j, b])
                    mem_s[0, i, b] += (c0 * s_hist[k, 0, j, b] + c1 * s_hist[k + 1, 0, j, b]
                                       + c2 * s_hist[k + 2, 0, j, b] + c3 * s_hist[k + 3, 0, j, b])


@njit(cache=True, inline="always", fastmath=_CONTRACT)
def _teacher_memory(chi, n, s_hist, m, mem_s):
    """Memory sum Σ_{k<n} χ_nk dg*_k of teacher tangent m ≥ 1 (M > 1 teachers), four past times
    per pass as in the sums above. With a plain loop over (k, i, j) instead, one data-side pass of
    the erf committee with N = M = 2 took 1.71× the quadratic model's; with this one 1.30–1.56×,
    by the machine's state (T = 161, S = 4096, ``benchmarks/bench_dmft.py``)."""
    N, B = s_hist.shape[2], s_hist.shape[3]
    head = n - n % 4
    if N == 2:
        for k in range(0, head, 4):
            (a00, a01, a02, a03, a10, a11, a12, a13,
             c00, c01, c02, c03, c10, c11, c12, c13) = _four_past_times(chi, n, k)
            for b in range(B):
                x0, x1, x2, x3 = s_hist[k, m, 0, b], s_hist[k + 1, m, 0, b], s_hist[k + 2, m, 0, b], s_hist[k + 3, m, 0, b]
                y0, y1, y2, y3 = s_hist[k, m, 1, b], s_hist[k + 1, m, 1, b], s_hist[k + 2, m, 1, b], s_hist[k + 3, m, 1, b]
                mem_s[m, 0, b] += a00 * x0 + a01 * x1 + a02 * x2 + a03 * x3 + a10 * y0 + a11 * y1 + a12 * y2 + a13 * y3
                mem_s[m, 1, b] += c00 * x0 + c01 * x1 + c02 * x2 + c03 * x3 + c10 * y0 + c11 * y1 + c12 * y2 + c13 * y3
    else:
        for k in range(0, head, 4):
            for i in range(N):
                for j in range(N):
                    c0, c1, c2, c3 = chi[n, k, i, j], chi[n, k + 1, i, j], chi[n, k + 2, i, j], chi[n, k + 3, i, j]
                    for b in range(B):
                        mem_s[m, i, b] += (c0 * s_hist[k, m, j, b] + c1 * s_hist[k + 1, m, j, b]
                                           + c2 * s_hist[k + 2, m, j, b] + c3 * s_hist[k + 3, m, j, b])
    for k in range(head, n):
        for i in range(N):
            for j in range(N):
                c_ij = chi[n, k, i, j]
                for b in range(B):
                    mem_s[m, i, b] += c_ij * s_hist[k, m, j, b]


@njit(cache=True, fastmath={"reassoc", "contract"})
def _weighted_moments(x, c, w, out):
    """out[:] = Σw x, Σw c, Σw x c, Σw c² over one block (reassociation lets the sums vectorise)."""
    sx = 0.0
    sc = 0.0
    sxc = 0.0
    scc = 0.0
    for b in range(w.size):
        wx = w[b] * x[b]
        wc = w[b] * c[b]
        sx += wx
        sc += wc
        sxc += wx * c[b]
        scc += wc * c[b]
    out[0] = sx
    out[1] = sc
    out[2] = sxc
    out[3] = scc


@njit(parallel=True, cache=True, fastmath=_CONTRACT)
def data_side_numba(u, y_in, dy_in, probe, chi, chi_memory, scale, act_code, act_param, coupling, centered, weight,
                    store_samples, g_out, delta_out, local_out, local0_out, dstar_out, pmem_out,
                    delta_g_out, jac_g_out, dstar_g_out, train_m, local_m, rstar_m, local0_m):
    """Integrate the data-side process and its tangents for every sample (see module doc).

    Samples advance through time in blocks of ``block_size(N)``; every per-sample operation loops over
    the block innermost (structure of arrays), so the memory sums, the Newton solve and the
    tangents vectorise over samples. The Newton iteration runs until every sample of the block
    has converged; converged samples are no longer moved.

    Parameters
    ----------
    u : ndarray, shape (S, T, N)
        Gaussian fields u_n.
    y_in : ndarray, shape (S,)
        Targets y (noise included).
    dy_in : ndarray, shape (S, M)
        Gradients ∂y/∂h*_m of the targets along the M teacher fields.
    probe : ndarray, shape (S, T, N)
        Probe vectors v (±1).
    chi : ndarray, shape (T, T, N, N)
        Discrete weight response χ = M Q (quadrature weights included).
    chi_memory : ndarray, shape (T, T, N, N)
        χ in the precision of the memory sums Σ_{k<n} χ_nk (g_k, δg_k, dg*_k) and of the three
        histories they read (float64, or float32: twice the SIMD width and half the bytes; the
        rest of the kernel stays in float64, theory.md §9.4).
    scale : float
        κ.
    act_code, act_param : int, float
        Student activation (``ACT_*``) and its parameter (ε of the quadratic one).
    coupling : float
        a = c/α.
    centered : bool
    weight : ndarray, shape (S,)
        Sample weights of the block moments (stratum weights).
    store_samples : bool
        Write every per-sample output; otherwise only ``g_out`` and ``pmem_out`` (the others
        may then have no rows).
    *_out : ndarray
        Per-sample outputs, shapes as in ``allocate_outputs``.
    train_m, local_m, rstar_m, local0_m : ndarray
        Block moments (``MOMENT_NAMES``), one row per block of ``block_size(N)`` samples.

    Returns
    -------
    int
        Number of samples whose Newton iteration did not converge (0 on success).
    """
    S, T, N = u.shape
    failures = np.zeros(S, dtype=np.int64)
    block = block_size(N)
    nblocks = (S + block - 1) // block
    for blk in prange(nblocks):
        _integrate_block(blk, u, y_in, dy_in, probe, chi, chi_memory, scale,
                         act_code, act_param, coupling, centered, weight, store_samples, g_out, delta_out, local_out,
                         local0_out, dstar_out, pmem_out, delta_g_out, jac_g_out, dstar_g_out, train_m, local_m,
                         rstar_m, local0_m, failures)
    return failures.sum()


# The body of one block is its own (serial) function: Numba's parallel passes then see only the
# loop over blocks above, and compiling the kernel takes a fraction of the time it took with the
# whole body inside the prange loop (the cost a fresh install pays on its first solve).
@njit(cache=True, fastmath=_CONTRACT)
def _integrate_block(blk, u, y_in, dy_in, probe, chi, chi_memory, scale, act_code, act_param, coupling,
                     centered, weight, store_samples, g_out, delta_out, local_out, local0_out, dstar_out, pmem_out,
                     delta_g_out, jac_g_out, dstar_g_out, train_m, local_m, rstar_m, local0_m, failures):
    """Block ``blk`` of :func:`data_side_numba`: samples first … first + B − 1 with first = blk·block_size(N)
    and B the block size (or the samples left), through all times."""
    S, T, N = u.shape
    first = blk * block_size(N)
    B = min(S, first + block_size(N)) - first
    M = dy_in.shape[1]
    # block copies, sample axis last
    ub = np.empty((T, N, B))
    vb = np.empty((T, N, B))
    for b in range(B):
        for n in range(T):
            for i in range(N):
                ub[n, i, b] = u[first + b, n, i]
                vb[n, i, b] = probe[first + b, n, i]
    y = np.empty(B)
    dy = np.empty((M, B))
    for b in range(B):
        y[b] = y_in[first + b]
        for m in range(M):
            dy[m, b] = dy_in[first + b, m]
    # φ(h_0), φ′(h_0) of the centred predictor (h_0 = u_0)
    phi0 = np.empty((N, B))
    dphi0 = np.empty((N, B))
    phi = np.empty((N, B))
    ddphi = np.empty((N, B))
    _activation_block(act_code, act_param, ub[0], phi0, dphi0, ddphi)
    # histories of g, the probe tangent and dg/dh* (time-major, sample-minor)
    # (in the precision of chi_memory, as the memory sums that read them)
    g_hist = np.zeros((T, N, B), dtype=chi_memory.dtype)
    p_hist = np.zeros((T, N, B), dtype=chi_memory.dtype)
    s_hist = np.zeros((T, M, N, B), dtype=chi_memory.dtype)
    # per-block outputs in the same time-major, sample-minor layout (copied out at the end)
    delta_b = np.empty((T, B))
    dg_b = np.empty((T, B))
    pm_b = np.empty((T, N, B))
    dsg_b = np.empty((T, M, N, B))
    loc_b = np.empty((T, N, N, B))
    l0_b = np.empty((T, N, N, B))
    jg_b = np.empty((T, N, N, B))
    mem_g = np.empty((N, B), dtype=chi_memory.dtype)
    mem_p = np.empty((N, B), dtype=chi_memory.dtype)
    mem_s = np.empty((M, N, B), dtype=chi_memory.dtype)
    h = np.empty((N, B))
    rhs = np.empty((N, B))
    F = np.empty((N, B))
    step = np.empty((N, B))
    tmp = np.empty((N, B))
    kv = np.zeros((N, B))
    delta = np.empty(B)
    dphi = np.empty((N, B))
    gvec = np.empty((N, B))
    jac = np.empty((N, N, B))
    A = np.empty((N, N, B))
    Ainv = np.empty((N, N, B))
    local = np.empty((N, N, B))
    kmat = np.zeros((N, N, B))
    active = np.empty(B, dtype=np.bool_)
    one = np.empty((N, N))
    inv_one = np.empty((N, N))
    work = np.empty((N, 2 * N))
    elim = np.empty((N, N, B))
    column = np.empty((2, B))
    unstable = np.empty(B, dtype=np.bool_)
    for n in range(T):
        chi_nn = chi[n, n]
        # memory sums Σ_{k<n} χ_nk (g_k, δg_k, dg*_k)
        # (four past times per pass: one load/store of the sums per four multiply-adds)
        mem_g[:, :] = 0.0
        mem_p[:, :] = 0.0
        mem_s[:, :, :] = 0.0
        head = n - n % 4
        if N == 2:
            _two_unit_memory(chi_memory, n, head, g_hist, p_hist, s_hist, mem_g, mem_p, mem_s)
        else:
            _unit_pair_memory(chi_memory, n, head, g_hist, p_hist, s_hist, mem_g, mem_p, mem_s)
        for k in range(head, n):
            for i in range(N):
                for j in range(N):
                    c_ij = chi_memory[n, k, i, j]
                    for b in range(B):
                        mem_g[i, b] += c_ij * g_hist[k, j, b]
                        mem_p[i, b] += c_ij * p_hist[k, j, b]
                        mem_s[0, i, b] += c_ij * s_hist[k, 0, j, b]
        # teacher tangents 1..M−1 in their own pass (a loop inside the one above cost the
        # M = 1 kernel ~5 % at T = 161, measured)
        for m in range(1, M):
            _teacher_memory(chi_memory, n, s_hist, m, mem_s)
        # implicit step h = b + a χ_nn g(h): Newton on F(h) = h − b − a χ_nn g(h)
        for i in range(N):
            for b in range(B):
                rhs[i, b] = ub[n, i, b] + coupling * mem_g[i, b]
                h[i, b] = rhs[i, b]
        evaluated = False
        if n > 0:
            _shared_matvec_block(chi_nn, g_hist[n - 1], tmp)
            for i in range(N):
                for b in range(B):
                    h[i, b] += coupling * tmp[i, b]
            for b in range(B):
                active[b] = True
            for it in range(_NEWTON_MAX):
                # (a break below leaves Δ, φ', g, J evaluated at the final h)
                _field_terms_block(h, phi0, y, scale, act_code, act_param, centered, delta, phi, dphi, ddphi,
                                   gvec, jac)
                _shared_matvec_block(chi_nn, gvec, tmp)
                remaining = 0
                for b in range(B):
                    err = 0.0
                    for i in range(N):
                        F[i, b] = h[i, b] - rhs[i, b] - coupling * tmp[i, b]
                        err = max(err, abs(F[i, b]))
                    active[b] = active[b] and err > _NEWTON_TOL * (1.0 + abs(h[0, b]))
                    remaining += active[b]
                if remaining == 0:
                    evaluated = True
                    break
                _implicit_matrix_block(chi_nn, coupling, jac, A)
                _inverse_block(A, Ainv, one, inv_one, work, elim, column, unstable)
                _matvec_block(Ainv, F, step)
                for i in range(N):
                    for b in range(B):
                        if active[b]:
                            h[i, b] -= step[i, b]
            for b in range(B):
                if active[b]:
                    failures[first + b] = 1
        if not evaluated:
            _field_terms_block(h, phi0, y, scale, act_code, act_param, centered, delta, phi, dphi, ddphi,
                               gvec, jac)
        _implicit_matrix_block(chi_nn, coupling, jac, A)
        _inverse_block(A, Ainv, one, inv_one, work, elim, column, unstable)
        # centring: K = ∂g/∂h(0) = (κ/N) φ'(h_n) φ'(h_0)ᵀ (direct), n ≥ 1 only
        has_k = centered and n > 0
        if centered:
            for i in range(N):
                for j in range(N):
                    for b in range(B):
                        kmat[i, j, b] = scale / N * dphi[i, b] * dphi0[j, b]
            if n == 0:
                # h_0 = u_0: the direct K adds to the local block, D_0 = J + K = ε y I
                for i in range(N):
                    for j in range(N):
                        for b in range(B):
                            jac[i, j, b] += kmat[i, j, b]
        # D = J A⁻¹
        for i in range(N):
            for j in range(N):
                for b in range(B):
                    local[i, j, b] = 0.0
                for l in range(N):
                    for b in range(B):
                        local[i, j, b] += jac[i, l, b] * Ainv[l, j, b]
        # probe: δh = A⁻¹[v_n + a(Σ_{k<n} χ_nk δg_k + χ_nn K v_0)], δg = J δh + K v_0
        for i in range(N):
            for b in range(B):
                rhs[i, b] = vb[n, i, b] + coupling * mem_p[i, b]
        if has_k:
            _matvec_block(kmat, vb[0], kv)
            _shared_matvec_block(chi_nn, kv, tmp)
            for i in range(N):
                for b in range(B):
                    rhs[i, b] += coupling * tmp[i, b]
        _matvec_block(Ainv, rhs, step)
        _matvec_block(jac, step, tmp)
        for i in range(N):
            for b in range(B):
                p_hist[n, i, b] = tmp[i, b] + (kv[i, b] if has_k else 0.0)
        # indirect part of the probe response: D a Σ_{k<n} χ_nk δg_k
        _matvec_block(local, mem_p, tmp)
        for i in range(N):
            for b in range(B):
                pm_b[n, i, b] = coupling * tmp[i, b]
        # local part of ∂g_n/∂u_0 (centred, n ≥ 1): E = D a χ_nn K + K
        for i in range(N):
            for j in range(N):
                for b in range(B):
                    l0_b[n, i, j, b] = 0.0
        if has_k:
            for j in range(N):
                for q in range(N):
                    for b in range(B):
                        F[q, b] = kmat[q, j, b]
                _shared_matvec_block(chi_nn, F, tmp)      # χ_nn K[:, j]
                _matvec_block(local, tmp, step)          # D χ_nn K[:, j]
                for i in range(N):
                    for b in range(B):
                        l0_b[n, i, j, b] = coupling * step[i, b] + kmat[i, j, b]
        # teacher tangents: δh* = A⁻¹ a (Σ_{k<n} χ_nk dg*_k + χ_nn p), dg* = J δh* + p,
        # p = (∂y/∂h*_m) φ'(h)
        for m in range(M):
            for i in range(N):
                for b in range(B):
                    F[i, b] = dy[m, b] * dphi[i, b]
            _shared_matvec_block(chi_nn, F, tmp)
            for i in range(N):
                for b in range(B):
                    rhs[i, b] = coupling * (mem_s[m, i, b] + tmp[i, b])
            _matvec_block(Ainv, rhs, step)
            _matvec_block(jac, step, tmp)
            for i in range(N):
                for b in range(B):
                    s_hist[n, m, i, b] = F[i, b] + tmp[i, b]
        for i in range(N):
            for b in range(B):
                g_hist[n, i, b] = gvec[i, b]
        for b in range(B):
            delta_b[n, b] = delta[b]
        for i in range(N):
            for j in range(N):
                for b in range(B):
                    loc_b[n, i, j, b] = local[i, j, b]
        # control variates at the Gaussian field h = u
        _field_terms_block(ub[n], phi0, y, scale, act_code, act_param, centered, delta, phi, dphi, ddphi,
                           gvec, jac)
        for b in range(B):
            dg_b[n, b] = delta[b]
        for i in range(N):
            for m in range(M):
                for b in range(B):
                    dsg_b[n, m, i, b] = dy[m, b] * dphi[i, b]
            for j in range(N):
                for b in range(B):
                    jg_b[n, i, j, b] = jac[i, j, b]
    # copy the block's outputs out, one contiguous row per sample (writing them in the time
    # loop scattered 8-byte stores across the sample-major arrays; measured: the kernel at
    # T = 161 took 15 % longer that way, at T = 41 30 %)
    for b in range(B):
        a = first + b
        for n in range(T):
            for i in range(N):
                g_out[a, n, i] = g_hist[n, i, b]
                pmem_out[a, n, i] = pm_b[n, i, b]
    if store_samples:
        for b in range(B):
            a = first + b
            for n in range(T):
                delta_out[a, n] = delta_b[n, b]
                delta_g_out[a, n] = dg_b[n, b]
                for i in range(N):
                    for m in range(M):
                        dstar_out[a, n, i, m] = s_hist[n, m, i, b]
                        dstar_g_out[a, n, i, m] = dsg_b[n, m, i, b]
                    for j in range(N):
                        local_out[a, n, i, j] = loc_b[n, i, j, b]
                        local0_out[a, n, i, j] = l0_b[n, i, j, b]
                        jac_g_out[a, n, i, j] = jg_b[n, i, j, b]
    # block moments of the control-variate pairs (the estimator's sums, formed while the
    # block is in cache: writing the per-sample arrays and reducing them afterwards cost
    # ~20 % of a data-side pass at T = 161)
    wb = weight[first:first + B]
    sq = np.empty(B)
    sq_gauss = np.empty(B)
    for n in range(T):
        for b in range(B):
            sq[b] = delta_b[n, b] * delta_b[n, b]
            sq_gauss[b] = dg_b[n, b] * dg_b[n, b]
        _weighted_moments(sq, sq_gauss, wb, train_m[blk, :, n])
        for i in range(N):
            for j in range(N):
                _weighted_moments(loc_b[n, i, j], jg_b[n, i, j], wb, local_m[blk, :, n, i, j])
                e0 = 0.0
                for b in range(B):
                    e0 += wb[b] * l0_b[n, i, j, b]
                local0_m[blk, n, i, j] = e0
            for m in range(M):
                _weighted_moments(s_hist[n, m, i], dsg_b[n, m, i], wb, rstar_m[blk, :, n, i, m])


@njit(parallel=True, cache=True, fastmath=_CONTRACT)
def exact_response_numba(local, chi, coupling, local0, weight, out_sum):
    """Exact mean response R_g(n, s) by per-sample block forward substitution (reference).

    For each sample and each source time s, Ψ[n, s] = ∂g_n/∂u_s solves (theory.md eq. 41,
    discrete)

        Ψ[s, s] = D_s,   Ψ[n, s] = D_n a Σ_{s≤k<n} χ_nk Ψ[k, s] + [s = 0] E_n    (n > s)

    with D_n = J_n A_n⁻¹ the local block. Cost (1/6) T³ N³ multiply-adds per sample.

    Parameters
    ----------
    local, local0 : ndarray, shape (S, T, N, N)
        D_n and E_n from :func:`data_side_numba`.
    weight : ndarray, shape (S,)
        Sample weights (stratum probability × number of strata, :mod:`dmft.sampling`); the sums
        accumulate weight·Ψ.
    out_sum : ndarray, shape (P, T, T, N, N)
        Per-block partial sums (P parallel blocks), accumulated in place.
    """
    S, T, N, _ = local.shape
    P = out_sum.shape[0]
    for b in prange(P):
        psi = np.zeros((T, N, N))
        acc = np.zeros((N, N))
        start = (S * b) // P
        stop = (S * (b + 1)) // P
        for a in range(start, stop):
            w = weight[a]
            for s in range(T):
                for i in range(N):
                    for j in range(N):
                        psi[s, i, j] = w * local[a, s, i, j]
                        out_sum[b, s, s, i, j] += psi[s, i, j]
                for n in range(s + 1, T):
                    for i in range(N):
                        for j in range(N):
                            acc[i, j] = 0.0
                    for k in range(s, n):
                        for i in range(N):
                            for l in range(N):
                                c_il = chi[n, k, i, l]
                                for j in range(N):
                                    acc[i, j] += c_il * psi[k, l, j]
                    for i in range(N):
                        for j in range(N):
                            v = 0.0
                            for l in range(N):
                                v += local[a, n, i, l] * acc[l, j]
                            v *= coupling
                            if s == 0:
                                v += w * local0[a, n, i, j]
                            psi[n, i, j] = v
                            out_sum[b, n, s, i, j] += v
    return 0


# ----------------------------------------------------------------------------------------------
# NumPy implementation (vectorised over samples)
# ----------------------------------------------------------------------------------------------
def _activation_numpy(code, param, h):
    """φ, φ′, φ″ of the compiled activation ``code`` (NumPy twin of ``_activation_block``), or of
    an :class:`~dmft.activations.Activation` passed as ``code`` (NumPy kernel only)."""
    if hasattr(code, "ddphi"):
        return code.phi(h), code.dphi(h), code.ddphi(h)
    if code == ACT_QUADRATIC:
        return h + 0.5 * param * h * h, 1.0 + param * h, np.full_like(h, param)
    if code == ACT_ERF:
        slope = _ERF_SLOPE * np.exp(-0.5 * h * h)
        return scipy.special.erf(h * _INV_SQRT2), slope, -h * slope
    if code == ACT_SMOOTHED_RELU:
        density = _INV_SQRT_2PI * np.exp(-0.5 * (h / param) ** 2)
        cdf = 0.5 * scipy.special.erfc(-h * _INV_SQRT2 / param)
        return h * cdf + param * density, cdf, density / param
    th = np.tanh(h)
    d1 = 1.0 - th * th
    return th, d1, -2.0 * th * d1


def _gaussian_field_terms(h, phi0, y, kappa, code, param, centered):
    """Vectorised Δ, φ', g, J at fields h (S, N)."""
    n = h.shape[-1]
    phi, dphi, ddphi = _activation_numpy(code, param, h)
    f = np.sum(phi, axis=-1)
    if centered:
        f = f - np.sum(phi0, axis=-1)
    delta = y - kappa / n * f
    g = delta[:, None] * dphi
    jac = -kappa / n * dphi[:, :, None] * dphi[:, None, :] + np.einsum("s,si,ij->sij", delta, ddphi, np.eye(n))
    return delta, dphi, g, jac


def _block_moments_numpy(weight, x, block, c=None):
    """NumPy twin of the kernel's block moments: per block of ``block`` samples, (Σw x, Σw c,
    Σw x c, Σw c²) stacked on axis 1, or Σw x alone when ``c`` is None."""
    S = x.shape[0]
    rows = []
    for first in range(0, S, block):
        w = weight[first:first + block]
        xb = x[first:first + block].reshape(w.size, -1)
        if c is None:
            rows.append((w @ xb).reshape(x.shape[1:]))
            continue
        cb = c[first:first + block].reshape(w.size, -1)
        rows.append(np.stack([w @ xb, w @ cb, w @ (xb * cb), w @ (cb * cb)]).reshape((4,) + x.shape[1:]))
    return np.array(rows)


def data_side_numpy(u, y, dy, probe, chi, chi_memory, scale, act_code, act_param, coupling, centered, weight,
                    store_samples, g_out, delta_out, local_out, local0_out, dstar_out, pmem_out,
                    delta_g_out, jac_g_out, dstar_g_out, train_m, local_m, rstar_m, local0_m):
    """NumPy twin of :func:`data_side_numba` (same arguments, same outputs). Always in float64:
    ``chi_memory`` is accepted for the common signature and not used."""
    S, T, N = u.shape
    M = dy.shape[1]
    if not store_samples:
        # the per-sample arrays are the twin's working storage: full-size ones when none are passed
        delta_out, delta_g_out = np.empty((S, T)), np.empty((S, T))
        local_out, local0_out, jac_g_out = (np.empty((S, T, N, N)) for _ in range(3))
        dstar_out, dstar_g_out = np.empty((S, T, N, M)), np.empty((S, T, N, M))
    phi0, dphi0, _ = _activation_numpy(act_code, act_param, u[:, 0, :])
    eye = np.eye(N)
    dg_probe = np.zeros((S, T, N))
    failures = 0
    terms = (y, scale, act_code, act_param, centered)
    for n in range(T):
        if n > 0:
            chi_n = chi[n, :n]                                   # (n, N, N)
            hist = np.einsum("kij,skj->si", chi_n, g_out[:, :n])
            phist = np.einsum("kij,skj->si", chi_n, dg_probe[:, :n])
            shist = np.einsum("kij,skjm->sim", chi_n, dstar_out[:, :n])
        else:
            hist = np.zeros((S, N))
            phist = np.zeros((S, N))
            shist = np.zeros(dstar_out.shape[:1] + dstar_out.shape[2:])
        chi_nn = chi[n, n]
        b = u[:, n] + coupling * hist
        h = b.copy()
        if n > 0:
            h = b + coupling * g_out[:, n - 1] @ chi_nn.T
            active = np.ones(S, dtype=bool)
            for _ in range(_NEWTON_MAX):
                _, _, g, jac = _gaussian_field_terms(h, phi0, *terms)
                F = h - b - coupling * g @ chi_nn.T
                err = np.max(np.abs(F), axis=1)
                active = err > _NEWTON_TOL * (1.0 + np.abs(h[:, 0]))
                if not active.any():
                    break
                A = eye - coupling * np.einsum("il,slj->sij", chi_nn, jac)
                step = np.linalg.solve(A, F[..., None])[..., 0]
                h = np.where(active[:, None], h - step, h)
            failures += int(active.sum())
        delta, dphi, g, jac = _gaussian_field_terms(h, phi0, *terms)
        delta_out[:, n] = delta
        g_out[:, n] = g
        A = eye - coupling * np.einsum("il,slj->sij", chi_nn, jac)
        Ainv = np.linalg.inv(A)
        if centered:
            kmat = scale / N * dphi[:, :, None] * dphi0[:, None, :]
            if n == 0:
                jac = jac + kmat
        local = jac @ Ainv
        local_out[:, n] = local
        rhs = probe[:, n] + coupling * phist
        has_k = centered and n > 0
        if has_k:
            kv = np.einsum("sij,sj->si", kmat, probe[:, 0])
            rhs = rhs + coupling * kv @ chi_nn.T
        dh = np.einsum("sij,sj->si", Ainv, rhs)
        dgp = np.einsum("sij,sj->si", jac, dh)
        if has_k:
            dgp = dgp + kv
            local0_out[:, n] = coupling * local @ (chi_nn @ kmat) + kmat
        else:
            local0_out[:, n] = 0.0
        dg_probe[:, n] = dgp
        pmem_out[:, n] = coupling * np.einsum("sij,sj->si", local, phist)
        p = dphi[:, :, None] * dy[:, None, :]                           # (S, N, M)
        rhs = coupling * (shist + np.einsum("ij,sjm->sim", chi_nn, p))
        dh = np.einsum("sij,sjm->sim", Ainv, rhs)
        dstar_out[:, n] = p + np.einsum("sij,sjm->sim", jac, dh)
        dgau, dphig, _, jacg = _gaussian_field_terms(u[:, n], phi0, *terms)
        delta_g_out[:, n] = dgau
        jac_g_out[:, n] = jacg
        dstar_g_out[:, n] = dphig[:, :, None] * dy[:, None, :]
    block = block_size(N)
    train_m[:] = _block_moments_numpy(weight, delta_out ** 2, block, delta_g_out ** 2)
    local_m[:] = _block_moments_numpy(weight, local_out, block, jac_g_out)
    rstar_m[:] = _block_moments_numpy(weight, dstar_out, block, dstar_g_out)
    local0_m[:] = _block_moments_numpy(weight, local0_out, block)
    return failures


def exact_response_numpy(local, chi, coupling, local0, weight, out_sum):
    """NumPy twin of :func:`exact_response_numba` (vectorised over samples and source times)."""
    S, T, N, _ = local.shape
    # weight·Ψ[·, s_src] for all sources at once: shape (S, T_src, T, N, N), causal (n ≥ s)
    psi = np.zeros((S, T, T, N, N))
    idx = np.arange(T)
    psi[:, idx, idx] = weight[:, None, None, None] * local
    for n in range(1, T):
        # acc[src] = Σ_{k<n} χ_nk Ψ[k, src]  (Ψ[k, src] = 0 for k < src)
        sub = psi[:, :n, :n]                          # (S, src, k, N, N)
        acc = np.einsum("kil,sxklj->sxij", chi[n, :n], sub)
        val = coupling * np.einsum("sil,sxlj->sxij", local[:, n], acc)
        val[:, 0] += weight[:, None, None] * local0[:, n]
        psi[:, :n, n] = val
    out_sum[0] += psi.sum(axis=0).transpose(1, 0, 2, 3)
    return 0
