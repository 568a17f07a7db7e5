"""Finite-α DMFT: fixed-point iteration of theory.md §4.6 (paper App. 13.6).

    1. start from the online ODE (α = ∞) pushed through the weight side;
    2. data side: Monte Carlo estimate of (C_g, R_g, r*, train loss)   — :mod:`dmft.data_side`
    3. weight side: closed-form (C_w, m, χ)                             — :mod:`dmft.weight_side`
    4. update of X = (C_w, m, χ): Anderson mixing (default) or the damped
       X ← (1 − δ) X + δ X̂ of paper eq. 52                               — :mod:`dmft.mixing`

The residual after each iteration is the sup-norm change sup|X̂ − X| over C_w, m and χ[n,s]/h_s
(χ carries one quadrature weight, so χ/h_s is the response R_w itself; h_s = t_{s+1} − t_s, which
is dt on a uniform grid). The same random numbers are
used in every iteration, so the map is deterministic and the residual measures convergence,
not Monte Carlo noise.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from .data_side import BACKENDS, RESPONSE_METHODS, estimate_data_side
from .mixing import MIXING_METHODS, Mixer
from .online import OnlineTrajectory, centering_response, mean_response
from .parameters import ModelParameters, check_int_at_least, check_positive
from .population import centered_loss_decomposition, loss_decomposition
from .result import LearningCurves
from .weight_side import WeightSide, column_steps, trapezoid_weights, weight_side

__all__ = ["SolverSettings", "DMFTError", "solve_dmft", "online_start"]


class DMFTError(RuntimeError):
    """The fixed-point iteration produced non-finite values (carries iteration and residual)."""

    def __init__(self, message: str, iteration: int, residual: float):
        super().__init__(message)
        self.iteration = iteration
        self.residual = residual


@dataclass(frozen=True)
class SolverSettings:
    """Numerical settings of the finite-α solver (theory.md §0.1).

    Attributes
    ----------
    samples : int
        Monte Carlo samples S of the data side (a multiple of 4: antithetic quadruplets).
    response : {"probe", "exact"}
        Estimator of the regular part of R_g (see :mod:`dmft.data_side`).
    response_samples : int or None
        Samples of the exact per-sample recursion (``response="exact"`` only).
    damping : float
        δ in (0, 1] of X ← (1 − δ)X + δX̂ (also the step of Anderson mixing).
    mixing : {"anderson", "damped"}
        Fixed-point scheme (:mod:`dmft.mixing`): Anderson mixing (default) or plain damping.
    anderson_depth : int
        History length of Anderson mixing.
    tol : float
        Convergence threshold on the sup-norm residual.
    max_iter : int
        Iteration limit; reaching it returns ``converged=False``.
    seed : int
        Seed of the common random numbers.
    backend : {"numba", "numpy"}
    chunk : int
        Samples per kernel call.
    progress : bool
        tqdm progress bar over iterations.
    warmup_samples : int or None
        Samples of the first iterations (default samples/8, at least 2048): the iteration runs
        with them until the residual falls below ``warmup_tol``, then switches to ``samples``.
        Early iterations only need to move towards the fixed point, not to resolve it.
    warmup_tol : float
        Residual at which the warm-up ends. The warm-up fixed point differs from the full one
        by its Monte Carlo error (a residual jump of ~0.8 in C_w for the default problem at
        S/8), so iterating the warm-up map below ~1e-2 buys nothing: measured, switching at
        1e-2 instead of 1e-3 saved 3 warm-up iterations and no full ones.
    """

    samples: int = 32768
    response: str = "probe"
    response_samples: int | None = None
    damping: float = 0.5
    mixing: str = "anderson"
    anderson_depth: int = 5
    tol: float = 1e-4
    max_iter: int = 100
    seed: int = 0
    backend: str = "numba"
    chunk: int = 2048
    progress: bool = False
    warmup_samples: int | None = None
    warmup_tol: float = 1e-2

    def __post_init__(self):
        samples = check_int_at_least("samples", self.samples, 4)
        if samples % 4:
            raise ValueError(f"samples must be a multiple of 4 (antithetic quadruplets), got {samples}")
        object.__setattr__(self, "samples", samples)
        if self.response not in RESPONSE_METHODS:
            raise ValueError(f"response must be one of {RESPONSE_METHODS}, got {self.response!r}")
        if self.response_samples is not None:
            object.__setattr__(self, "response_samples",
                               check_int_at_least("response_samples", self.response_samples, 1))
        if not (0.0 < float(self.damping) <= 1.0) or math.isnan(float(self.damping)):
            raise ValueError(f"damping must lie in (0, 1], got {self.damping!r}")
        if self.mixing not in MIXING_METHODS:
            raise ValueError(f"mixing must be one of {MIXING_METHODS}, got {self.mixing!r}")
        check_int_at_least("anderson_depth", self.anderson_depth, 1)
        check_positive("tol", self.tol)
        check_positive("warmup_tol", self.warmup_tol)
        check_int_at_least("max_iter", self.max_iter, 1)
        check_int_at_least("seed", self.seed, 0)
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS} for the finite-alpha solver, got {self.backend!r}")
        chunk = check_int_at_least("chunk", self.chunk, 4)
        object.__setattr__(self, "chunk", chunk - chunk % 4)
        warm = self.warmup_samples
        if warm is None:
            warm = max(2048, samples // 8)
        warm = min(check_int_at_least("warmup_samples", warm, 4), samples)
        object.__setattr__(self, "warmup_samples", warm - warm % 4)


def check_grid(t) -> np.ndarray:
    """The time grid as a float array, refused unless 0 = t_0 < t_1 < … (theory.md §9.1)."""
    t = np.asarray(t, dtype=float)
    if t.ndim != 1 or t.size < 2 or t[0] != 0.0 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ValueError("t must be a strictly increasing grid 0 = t_0 < t_1 < ... with at least two points")
    return t


def online_start(params: ModelParameters, t: np.ndarray) -> WeightSide:
    """α = ∞ data-side order parameters from the online ODE, pushed through the weight side.

    R_g is block diagonal, R_g[n, n] = R(t_n) of eq. 33 (centred: plus the column
    R_g[n, 0] = E[∂g_n/∂h(0)] = (κ/N)(1 + ε²X(t_n))), r* = ε m (eq. 34), and the noise vanishes.
    """
    t = check_grid(t)
    traj = OnlineTrajectory(params, t_max=float(t[-1]))
    m, Q, X = traj(t)
    T, N = m.shape
    resp = np.zeros((T, T, N, N))
    idx = np.arange(T)
    if params.center:
        resp[idx, idx] = mean_response(Q, epsilon=params.epsilon, scale=params.scale, rho=params.rho,
                                       cov0=params.cov0)
        resp[1:, 0] += centering_response(X[1:], epsilon=params.epsilon, scale=params.scale)
        resp[0, 0] = params.epsilon * params.rho / 2 * np.eye(N)
    else:
        resp[idx, idx] = mean_response(Q, epsilon=params.epsilon, scale=params.scale, rho=params.rho)
    return weight_side(resp, params.epsilon * m, None, m0=params.m0, cov0=params.cov0, rho=params.rho,
                       scale=params.scale, alpha=math.inf, times=t)


def _response_density(chi: np.ndarray, t: np.ndarray) -> np.ndarray:
    """R_w(t_n, t_s) from χ = M Q by dividing out the trapezoid weight of column s (R_w(0,0) = I)."""
    T, _, N, _ = chi.shape
    weights = trapezoid_weights(t)
    weights[0, 0] = 1.0
    density = chi / np.where(weights > 0, weights, 1.0)[:, :, None, None]
    density[0, 0] = np.eye(N)
    return density


def _decomposition(params: ModelParameters, cov_w: np.ndarray, overlap: np.ndarray) -> np.ndarray:
    Q = np.einsum("nnij->nij", cov_w)
    if params.center:
        return centered_loss_decomposition(Q, cov_w[:, 0], overlap, cov0=params.cov0, overlap0=params.m0,
                                           epsilon=params.epsilon, scale=params.scale, rho=params.rho)
    return loss_decomposition(Q, overlap, epsilon=params.epsilon, scale=params.scale, rho=params.rho)


def solve_dmft(params: ModelParameters, t: np.ndarray, **options) -> LearningCurves:
    """Solve the finite-α DMFT on the uniform grid ``t`` (theory.md §4).

    Parameters
    ----------
    params : ModelParameters
        Finite ``alpha``.
    t : ndarray, shape (T,)
        Strictly increasing grid starting at 0 (theory time t = η₀·step/D); uniform or not
        (theory.md §9.1).
    **options
        Fields of :class:`SolverSettings`; ``device`` is accepted and ignored by the CPU
        backends.

    Returns
    -------
    LearningCurves
        kind ``"dmft"``; ``extras`` holds the two-time order parameters ``C_w`` (T,T,N,N),
        ``R_w`` (χ/quadrature weight, T,T,N,N), ``C_g``, ``R_g`` (discrete mean response,
        diagonal blocks = equal-time part), ``r_star`` (T,N).

    Raises
    ------
    DMFTError
        When an iteration produces non-finite values.
    """
    options = dict(options)
    options.pop("device", None)
    settings = SolverSettings(**options)
    if params.is_online:
        raise ValueError("solve_dmft needs a finite alpha; use dmft.solve for alpha = inf")
    t = check_grid(t)
    steps = column_steps(t)                 # h_s: puts χ on the scale of R_w in the residual
    start_time = time.perf_counter()
    state = online_start(params, t)
    cov_w, overlap, chi = state.cov, state.overlap, state.response
    history: list[float] = []
    estimate = None
    converged = False
    message = ""
    bar = None
    if settings.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=settings.max_iter, desc=f"DMFT alpha={params.alpha:g}", unit="it", leave=False)
    T, N = overlap.shape
    sizes = (cov_w.size, overlap.size, chi.size)
    chi_scale = np.broadcast_to(steps[None, :, None, None], chi.shape)
    weights = np.concatenate([np.ones(sizes[0] + sizes[1]), 1.0 / chi_scale.ravel()])
    mixer = Mixer(method=settings.mixing, damping=settings.damping, depth=settings.anderson_depth,
                  weights=weights)

    def pack(cov, m, resp):
        return np.concatenate([cov.ravel(), m.ravel(), resp.ravel()])

    def unpack(x):
        cov = x[: sizes[0]].reshape(cov_w.shape)
        m = x[sizes[0]: sizes[0] + sizes[1]].reshape(T, N)
        resp = x[sizes[0] + sizes[1]:].reshape(chi.shape)
        return 0.5 * (cov + cov.transpose(1, 0, 3, 2)), m, resp

    try:
        samples = settings.warmup_samples
        best = math.inf
        for iteration in range(1, settings.max_iter + 1):
            estimate = estimate_data_side(
                cov_w, overlap, chi, alpha=params.alpha, epsilon=params.epsilon, scale=params.scale,
                rho=params.rho, center=params.center, m0=params.m0, cov0=params.cov0,
                samples=samples, seed=settings.seed, backend=settings.backend,
                response=settings.response, response_samples=settings.response_samples,
                chunk=settings.chunk)
            new = weight_side(estimate.response, estimate.r_star, estimate.cov_g, m0=params.m0,
                              cov0=params.cov0, rho=params.rho, scale=params.scale, alpha=params.alpha,
                              times=t)
            residual = max(np.max(np.abs(new.cov - cov_w)), np.max(np.abs(new.overlap - overlap)),
                           np.max(np.abs(new.response - chi) / chi_scale))
            history.append(float(residual))
            if not math.isfinite(residual) or not np.all(np.isfinite(estimate.train_loss)):
                raise DMFTError(
                    f"DMFT iteration {iteration} produced non-finite order parameters "
                    f"(residual {residual}); try a smaller damping or time step", iteration, residual)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(residual=f"{residual:.2e}")
            if residual > best:
                mixer.reset()              # no progress: restart Anderson from a damped step
            best = min(best, residual)
            if samples < settings.samples:
                if residual < max(settings.warmup_tol, settings.tol):
                    samples = settings.samples
                    mixer.reset()          # a new sample size is a new map: forget its history
                    best = math.inf
            elif residual < settings.tol:
                converged = True
                break
            cov_w, overlap, chi = unpack(mixer.step(pack(cov_w, overlap, chi),
                                                    pack(new.cov, new.overlap, new.response)))
    finally:
        if bar is not None:
            bar.close()
    iterations = len(history)
    residual = history[-1]
    if converged:
        message = f"converged: residual {residual:.2e} < tol {settings.tol:g} after {iterations} iterations"
    else:
        message = (f"not converged: residual {residual:.2e} >= tol {settings.tol:g} after "
                   f"{iterations} iterations (max_iter)")
    decomposition = _decomposition(params, cov_w, overlap)
    extras = {
        "C_w": cov_w,
        "R_w": _response_density(chi, t),
        "C_g": estimate.cov_g,
        "R_g": estimate.response,
        "r_star": estimate.r_star,
    }
    idx = np.arange(t.size)
    return LearningCurves(
        kind="dmft", t=t, train_loss=estimate.train_loss, test_loss=decomposition.sum(axis=-1),
        overlap=overlap, cov=cov_w[idx, idx], decomposition=decomposition, parameters=params.as_attrs(),
        settings={**asdict(settings), "dt": float(t[1] - t[0]), "t_max": float(t[-1]), "grid_points": int(t.size), "newton_failures": estimate.newton_failures},
        converged=converged, iterations=iterations, residual=residual,
        residual_history=np.array(history), seconds=time.perf_counter() - start_time, message=message,
        extras=extras,
    )
