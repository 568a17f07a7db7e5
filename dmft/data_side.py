"""Data-side order parameters C_g, R_g, r* and the train loss by Monte Carlo (theory.md §4.2).

Given the weight-side order parameters (C_w, m, χ), draws S samples of the Gaussian fields
(:mod:`dmft.sampling`), integrates the data-side process with a kernel of
:mod:`dmft._data_kernels` and reduces the per-sample outputs to

* ``train_loss[n] = E[Δ_n²]``, with the control variate Δ(u)² whose mean is the exact test
  loss E_test(C_w(n,n), m(n)) (theory.md §2.4 / §4.2 centred form; with output noise σ² the
  target carries a frozen σξ per sample and both sides gain σ², theory.md §10.8);
* ``r_star[n] = E[dg_n/dh*]``, control variate (∂y/∂h*)φ'(u_n) with mean ε m(n) (eq. 34);
* ``response[n, n] = E[D_n]``, control variate J(u_n) with mean R(t_n) of eq. 33;
* ``response[n, s<n]``: either the *probe* estimator E[(Σ_{k<n}Ψ[n,k]v_k) v_sᵀ] (cost of one
  extra tangent per sample, unbiased because E[v vᵀ] = I) or the *exact* per-sample block
  recursion (cost T³N³/6 per sample) on a subset of samples; plus, centred, the local part
  E[E_n] of the s = 0 column;
* ``cov_g[n, s] = E[g_n g_sᵀ]``.

The means quoted are the package model's; every model supplies its own through its ``problem``
(:mod:`dmft.problems`, theory.md §10.7). Control-variate coefficients are the optimal ones,
Cov(X, X⁰)/Var(X⁰) per component (theory.md §0.1: coefficient 1 leaves a spurious train-loss
floor). Every average over samples is weighted by the sample's |h*| stratum weight
(:func:`dmft.sampling.stratum_edges`, mean 1; unit weights for M > 1 teacher fields).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np
import scipy.linalg.blas
from threadpoolctl import ThreadpoolController

from . import _data_kernels as kernels
from .sampling import chunk_bounds, conditional_square_root, draw_chunk, draw_label_noise, draw_teacher_chunk
from .weight_side import from_flat, to_flat

__all__ = ["DataSideEstimate", "SampleStreams", "estimate_data_side", "RESPONSE_METHODS", "BACKENDS"]


@dataclass(frozen=True)
class SampleStreams:
    """The union of several independent random streams of ``samples`` draws each, as the
    ``seed`` of :func:`estimate_data_side`: the estimate over all of them together (theory.md
    §9.3, the full solve as the union of its error replicas)."""

    seeds: tuple

RESPONSE_METHODS = ("probe", "exact")
BACKENDS = ("numba", "numpy")


@dataclass(frozen=True)
class DataSideEstimate:
    """Monte Carlo estimates of the data-side order parameters.

    Attributes
    ----------
    cov_g : ndarray, shape (T, T, N, N)
    response : ndarray, shape (T, T, N, N)
        Discrete mean response R_g[n, s] = E[∂g_n/∂u_s] (block lower triangular).
    r_star : ndarray, shape (T, N), or (T, N, M) for M teacher fields
    train_loss : ndarray, shape (T,)
    newton_failures : int
        Sample-steps whose implicit Newton solve did not reach its tolerance.
    """

    cov_g: np.ndarray
    response: np.ndarray
    r_star: np.ndarray
    train_loss: np.ndarray
    newton_failures: int


class _ControlVariateSum:
    """Running weighted sums for an estimate of E[X] with control variate X⁰ of known mean."""

    def __init__(self, shape):
        self.n = 0
        self.sx = np.zeros(shape)
        self.sc = np.zeros(shape)
        self.sxc = np.zeros(shape)
        self.scc = np.zeros(shape)

    def add_moments(self, weight_sum, moments):
        """Add block moments (blocks, 4, ...) = (Σw x, Σw c, Σw x c, Σw c²) of samples whose
        weights (stratum weights, mean 1) sum to ``weight_sum``."""
        self.n += weight_sum
        total = moments.sum(axis=0)
        self.sx += total[0]
        self.sc += total[1]
        self.sxc += total[2]
        self.scc += total[3]

    def estimate(self, control_mean):
        n = self.n
        mx, mc = self.sx / n, self.sc / n
        cov = self.sxc / n - mx * mc
        var = self.scc / n - mc * mc
        coef = np.divide(cov, var, out=np.zeros_like(cov), where=var > 1e-300)
        return mx - coef * (mc - control_mean)


#: precision="mixed": precision of the two sample products of a pass (the Gram E[g gᵀ] and the probe
#: cross product E[δg vᵀ]). Each chunk's product runs in single precision and is added to float64 sums: BLAS
#: ssyrk/sgemm do the O(S·(TN)²) multiply-adds twice as fast as their float64 twins (T = 161,
#: N = 2, 2048 samples: 2.5 against 4.8 ms and 4.9 against 9.7 ms, measured). The rounding is
#: ~1e-7 of each product, accumulated over at most 2048 terms: ≲ 1e-5 of an entry's scale,
#: against a Monte Carlo error of 1/√S ≳ 2e-3 of it at S ≤ 2^18 (theory.md §9.4).
PRODUCT_DTYPE = np.float32
#: ``precision`` settings: "double" (all float64, the default) or "mixed" (the single-precision parts
#: below).
PRECISIONS = ("double", "mixed")
#: precision="mixed": precision of the Numba kernel's memory sums Σ_{k<n} χ_nk (g_k, δg_k, dg*_k) and
#: of the histories they read (theory.md §9.4); everything else in the kernel is float64.
MEMORY_DTYPE = np.float32


def _add_gram(acc_upper: np.ndarray, x: np.ndarray, scratch: dict | None = None) -> None:
    """acc += xᵀx in the upper triangle of the Fortran-ordered float64 ``acc_upper`` (BLAS syrk:
    half the multiply-adds of ``x.T @ x``), the product in the dtype of ``x`` (float32 or
    float64; shape (S, d), C-ordered)."""
    d = acc_upper.shape[0]
    part = None if scratch is None else scratch.get("gram")
    if part is None or part.shape != (d, d) or part.dtype != x.dtype:
        part = np.zeros((d, d), dtype=x.dtype, order="F")
        if scratch is not None:
            scratch["gram"] = part
    syrk = scipy.linalg.blas.ssyrk if x.dtype == np.float32 else scipy.linalg.blas.dsyrk
    part = syrk(1.0, x.T, beta=0.0, c=part, overwrite_c=1, lower=0)
    acc_upper += part


def _symmetric_from_upper(upper: np.ndarray) -> np.ndarray:
    return np.triu(upper) + np.triu(upper, 1).T


def _add_causal_cross(acc: np.ndarray, memory: np.ndarray, probe: np.ndarray, width: int, bands: int = 8) -> None:
    """acc[nN+i, sN+j] += Σ_a memory[a, nN+i] probe[a, sN+j] for the blocks s < n that the
    response needs, in ``bands`` row bands (≈ (bands+1)/(2·bands) of the full product's work).
    The products run in the dtype of ``memory`` and ``probe``; ``acc`` is float64."""
    steps = memory.shape[1] // width
    edges = np.unique(np.linspace(0, steps, bands + 1).round().astype(int))
    for first, last in zip(edges[:-1], edges[1:]):
        cols = (last - 1) * width                      # sources s ≤ last − 2 < n
        if cols > 0:
            rows = slice(first * width, last * width)
            acc[rows, :cols] += memory[:, rows].T @ probe[:, :cols]


@numba.njit(parallel=True, cache=True)
def _weighted_products_numba(g, memory, weight, g_out, memory_out):
    """g·√w and memory·w, row by row, into the single-precision buffers of the two products (one
    parallel pass over both: the two NumPy multiplications with a cast cost 0.6 ms per 2048-sample
    chunk at T = 161, N = 2, on one core)."""
    for a in numba.prange(g.shape[0]):
        root = np.sqrt(weight[a])
        for k in range(g.shape[1]):
            g_out[a, k] = g[a, k] * root
            memory_out[a, k] = memory[a, k] * weight[a]


def _product_buffer(scratch: dict, name: str, rows: int, cols: int, dtype) -> np.ndarray:
    """A (rows, cols) buffer of ``dtype`` kept in ``scratch`` (grown to the largest chunk; a
    shorter last chunk uses its leading rows)."""
    out = scratch.get(name)
    if out is None or out.shape[1] != cols or out.shape[0] < rows or out.dtype != dtype:
        out = np.empty((rows, cols), dtype=dtype)
        scratch[name] = out
    return out[:rows]


def _probe_in_dtype(probe: np.ndarray, dtype, cache: dict | None, key) -> np.ndarray:
    """The chunk's probes (S, T, N) flattened to (S, T·N) in ``dtype``, a single-precision copy
    kept in the common-random-number ``cache`` (the probes are the same at every iteration)."""
    flat = probe.reshape(probe.shape[0], -1)
    if dtype == flat.dtype:
        return flat
    cast = cache.get(key) if cache is not None else None
    if cast is None:
        cast = flat.astype(dtype)
        if cache is not None:
            cache[key] = cast
    return cast


@functools.lru_cache(maxsize=1)
def _blas_controller() -> ThreadpoolController:
    """The BLAS thread pools of this process, found once (``threadpool_limits`` scans the loaded
    libraries at every call: 1.6 ms, 2.5 % of a data-side pass at S = 4096, T = 161)."""
    return ThreadpoolController()


def _kernel(backend: str):
    if backend == "numba":
        return kernels.data_side_numba, kernels.exact_response_numba
    if backend == "numpy":
        return kernels.data_side_numpy, kernels.exact_response_numpy
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def _one_blas_thread(function):
    """Run ``function`` with one BLAS thread: idle OpenBLAS threads spin-wait after each product
    (the Cholesky factor, the sample products) and took ~30 % of the cores from the parallel Numba
    kernel (measured on 2 cores; with a 2-thread LAPACK factor before it, the kernel of an S = 4096
    pass took 41 instead of 17 ms)."""
    @functools.wraps(function)
    def limited(*args, **kwargs):
        with _blas_controller().limit(limits=1, user_api="blas"):
            return function(*args, **kwargs)
    return limited


@_one_blas_thread
def estimate_data_side(cov_w: np.ndarray, overlap: np.ndarray, chi: np.ndarray, *, problem,
                       samples: int, seed: int, backend: str = "numba",
                       response: str = "probe", response_samples: int | None = None,
                       chunk: int = 2048, threads: int | None = None,
                       workspace: dict | None = None, sampler: str = "mc",
                       initial_probe_scale: float = 1.0, precision: str = "double") -> DataSideEstimate:
    """One Monte Carlo pass over the data-side process (theory.md §4.6 step 2).

    Parameters
    ----------
    cov_w : ndarray, shape (T, T, N, N)
    overlap : ndarray, shape (T, N), or (T, N, M) for M teacher fields
    chi : ndarray, shape (T, T, N, N)
        Current weight-side order parameters.
    problem : SquareTargetProblem or CommitteeProblem
        The model (:mod:`dmft.problems`): α, activation, targets, control-variate means.
    samples : int
        Number of Monte Carlo samples S (even).
    seed : int, tuple or SampleStreams
        Seed of the common random numbers; a :class:`SampleStreams` estimates over the union of
        its streams, ``samples`` draws each (probe response only).
    backend : {"numba", "numpy"}
    response : {"probe", "exact"}
        Estimator of the regular part of R_g (see module doc).
    response_samples : int, optional
        Samples used by the exact recursion (default: all).
    chunk : int
        Samples per kernel call (memory ~ 180·T·N² bytes per sample).
    sampler : {"mc", "rqmc"}
        Pseudo-random or randomised quasi-Monte Carlo field normals (:mod:`dmft.sampling`).
    workspace : dict, optional
        Holds the kernel's output buffers between calls (the fixed-point iteration passes the same
        dict every time). Fresh buffers cost a page fault per 4 kB on first touch: 20–30 ms of a
        ~0.2 s pass at S = 4096, T = 161 (measured).
    initial_probe_scale : float
        Centred model, probe response: the probe at t = 0 is drawn as σ₀·(±1) and its column
        R_g[:, 0] divided by σ₀² (unbiased for any σ₀ > 0). The tangent of a centred sample carries
        the O(κ/N) direct response K_n v_0 to h_0 at every later time; with σ₀ < 1 that term no
        longer adds its variance to the estimates of every other column (theory.md §0.1).
    precision : {"mixed", "double"}
        ``"mixed"``: the sample products (:data:`PRODUCT_DTYPE`) and the kernel's memory sums
        (:data:`MEMORY_DTYPE`) in single precision (theory.md §9.4); ``"double"``: all float64.
    """
    if response not in RESPONSE_METHODS:
        raise ValueError(f"response must be one of {RESPONSE_METHODS}, got {response!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    single = precision == "mixed"
    product_dtype = PRODUCT_DTYPE if single else np.float64
    memory_dtype = MEMORY_DTYPE if single else np.float64
    streams = seed.seeds if isinstance(seed, SampleStreams) else (seed,)
    if len(streams) > 1 and response != "probe":
        raise ValueError("a union of sample streams needs response='probe'")
    total = samples * len(streams)
    data_kernel, exact_kernel = _kernel(backend)
    if backend == "numba" and not problem.compiled:
        raise ValueError("backend must be 'numpy' for a student activation without a compiled kernel")
    T, N = overlap.shape[:2]
    M = problem.teachers
    scale, center = problem.scale, problem.center
    code, param = problem.kernel_activation
    coupling = (2.0 / scale) / problem.alpha
    noise_std = float(np.sqrt(problem.noise))
    chi = np.ascontiguousarray(chi)
    teacher_cov = problem.teacher_cov
    if M == 1:
        # one teacher field: stratified |h*| (draw_chunk) whatever the target
        rho = float(np.asarray(teacher_cov).reshape(()))
        root = conditional_square_root(to_flat(cov_w), overlap.reshape(T * N), rho, width=N)
    else:
        root = conditional_square_root(to_flat(cov_w), overlap.reshape(T * N, M), teacher_cov, width=N)
        teacher_factor = np.linalg.cholesky(teacher_cov)

    train = _ControlVariateSum((T,))
    rstar = _ControlVariateSum((T, N, M))
    local = _ControlVariateSum((T, N, N))
    local0_sum = np.zeros((T, N, N))
    cov_g_upper = np.zeros((T * N, T * N), order="F")
    probe_flat = np.zeros((T * N, T * N))
    n_exact = samples if response_samples is None else min(int(response_samples), samples)
    parts = max(1, threads or numba.get_num_threads())
    exact_sum = np.zeros((parts if backend == "numba" else 1, T, T, N, N)) if response == "exact" else None
    exact_weight = 0.0
    exact_stride = max(1, (samples // 4) // max(1, n_exact // 4))
    failures = 0
    # one set of output buffers for all chunks (the kernels overwrite every entry)
    # the per-sample local blocks only for the exact response; otherwise the kernel keeps its
    # control-variate sums as block moments
    store_samples = response == "exact"
    shape = (min(chunk, samples), T, N, M, store_samples)
    if workspace is not None and workspace.get("shape") == shape:
        buffers = workspace["buffers"]
    else:
        buffers = kernels.allocate_outputs(*shape[:3], teachers=M, store_samples=store_samples)
        if workspace is not None:
            workspace.update(shape=shape, buffers=buffers)
    scratch = workspace.setdefault("products", {}) if workspace is not None else {}
    draws = None
    if workspace is not None:
        # common random numbers: the same draws in every call; kept unless they exceed ~256 MB
        # (per sample and entry: a quarter of a float64 normal, a float64 and a float32 probe)
        draw_bytes = total * T * N * 8 * 1.75
        draws = workspace.setdefault("draws", {}) if draw_bytes < 2**28 else None
    single_probes = workspace.setdefault("single_probes", {}) if draws is not None else None
    chunks = [(stream, index, bounds) for stream in streams
              for index, bounds in enumerate(chunk_bounds(samples, chunk))]
    for stream, index, (start, stop) in chunks:
        stream_key = tuple(np.atleast_1d(stream).tolist())
        if M == 1:
            u, hstar, probe, weight = draw_chunk(root, seed=stream, index=index, start=start, stop=stop,
                                                 samples=samples, steps=T, width=N, rho=rho, cache=draws,
                                                 sampler=sampler)
        else:
            u, hstar, probe, weight = draw_teacher_chunk(root, teacher_factor, seed=stream, index=index,
                                                         start=start, stop=stop, samples=samples, steps=T,
                                                         width=N, cache=draws, sampler=sampler)
        if center and response == "probe" and initial_probe_scale != 1.0:
            probe = probe.copy()              # the cached common random numbers stay ±1
            probe[:, 0, :] *= initial_probe_scale
        y, dy = problem.targets(hstar.reshape(stop - start, M))
        if noise_std:
            # output noise: a frozen ξ per training sample (it is part of the data set), kept
            # with the chunk's other common random numbers
            key = ("label_noise", stream_key, index, start, stop)
            xi = draws.get(key) if draws is not None else None
            if xi is None:
                xi = draw_label_noise(seed=stream, index=index, start=start, stop=stop)
                if draws is not None:
                    draws[key] = xi
            y = y + noise_std * xi
        rows = stop - start
        failures += kernels.run_data_kernel(data_kernel, u, np.ascontiguousarray(y), np.ascontiguousarray(dy),
                                            probe, chi, scale, code, param, coupling, center, weight, buffers,
                                            store_samples=store_samples, memory_dtype=memory_dtype)
        blocks = -(-rows // kernels.block_size(N))
        weight_sum = weight.sum()
        train.add_moments(weight_sum, buffers["train_moments"][:blocks])
        rstar.add_moments(weight_sum, buffers["rstar_moments"][:blocks])
        local.add_moments(weight_sum, buffers["local_moments"][:blocks])
        local0_sum += buffers["local0_moments"][:blocks].sum(axis=0)
        out = {name: buffers[name][:rows] for name in ("g", "probe_memory", "local", "local0")}
        g_flat = out["g"].reshape(-1, T * N)
        g_weighted = _product_buffer(scratch, "g", rows, T * N, product_dtype)
        if response == "probe":
            memory_weighted = _product_buffer(scratch, "memory", rows, T * N, product_dtype)
            _weighted_products_numba(g_flat, out["probe_memory"].reshape(-1, T * N), weight, g_weighted,
                                     memory_weighted)
        else:
            np.multiply(g_flat, np.sqrt(weight)[:, None], out=g_weighted, casting="same_kind")
        _add_gram(cov_g_upper, g_weighted, scratch)
        if response == "probe":
            probe_cast = _probe_in_dtype(probe, product_dtype, single_probes,
                                         (stream_key, index, start, stop, samples, initial_probe_scale if center else 1.0))
            _add_causal_cross(probe_flat, memory_weighted, probe_cast, N)
        else:
            # every exact_stride-th quadruplet: a subsample spread over all |h*| strata
            groups = np.arange(start // 4, stop // 4)
            chosen = np.repeat(groups % exact_stride == 0, 4)
            if chosen.any():
                exact_kernel(np.ascontiguousarray(out["local"][chosen]), chi, float(coupling),
                             np.ascontiguousarray(out["local0"][chosen]), weight[chosen], exact_sum)
                exact_weight += weight[chosen].sum()

    # closed-form means of the control variates at the Gaussian field h = u
    exact_test, jac_mean, rstar_mean = problem.control_means(cov_w, overlap)
    train_loss = train.estimate(exact_test)
    r_star = rstar.estimate(np.reshape(rstar_mean, (T, N, M)))
    r_star = r_star.reshape(overlap.shape)
    diag = local.estimate(jac_mean)
    if center:
        # n = 0: D_0 = J_0 + K_0 exactly (ε y I for the package model); its exact mean replaces
        # the estimate, whose control variate lacks K_0
        diag[0] = problem.initial_local_response()

    if response == "probe":
        resp = from_flat(probe_flat / total, N).copy()
        if center:
            resp[:, 0] /= initial_probe_scale**2      # E[δg_n v_0ᵀ] = σ₀² R_g[n, 0]
        lower = np.tril(np.ones((T, T), dtype=bool), k=-1)
        resp[~lower] = 0.0
    else:
        resp = exact_sum.sum(axis=0) / exact_weight
    idx = np.arange(T)
    resp[idx, idx] = diag
    if center:
        resp[1:, 0] += local0_sum[1:] / total if response == "probe" else 0.0
    cov_g = from_flat(_symmetric_from_upper(cov_g_upper) / total, N)
    return DataSideEstimate(cov_g=cov_g, response=resp, r_star=r_star, train_loss=train_loss,
                            newton_failures=failures)
