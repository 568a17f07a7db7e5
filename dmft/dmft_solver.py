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

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields, replace

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from .data_side import BACKENDS, PRECISIONS, RESPONSE_METHODS, SampleStreams, estimate_data_side
from .errors import SolverError
from .mixing import MIXING_METHODS, Mixer
from .parameters import InvalidParameterError, ModelParameters, check_int_at_least, check_positive
from .problems import COMPILED_ACTIVATIONS, CommitteeProblem, SquareTargetProblem, as_problem
from .result import LearningCurves
from .sampling import SAMPLERS
from .symmetry import SymmetryGroup
from .weight_side import WeightSide, check_grid, column_steps, trapezoid_weights, weight_side

__all__ = ["SolverSettings", "DMFTError", "solve_dmft", "solve_committee_dmft", "online_start",
           "online_data_side", "check_grid", "NUMERICS_REVISION", "numerics_fingerprint"]


class DMFTError(SolverError):
    """The fixed-point iteration produced non-finite values (carries iteration and residual)."""

    def __init__(self, message: str, iteration: int, residual: float):
        super().__init__(message)
        self.iteration = iteration
        self.residual = residual


#: Two-time matrices of size (T·N)² that a solve surely holds at once (C_w, R_w, C_g, R_g, the
#: probe response, the weight side's system): a lower bound on its memory, used to refuse a
#: problem the machine cannot hold before anything is allocated.
TWO_TIME_MATRICES = 6


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine, None where the system does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(steps: int, width: int, available: int | None = None) -> None:
    """Refuse a solve whose two-time matrices alone exceed the machine's memory.

    The solver holds :data:`TWO_TIME_MATRICES` matrices of (T·N)² doubles (T grid times, N
    hidden units); where that lower bound exceeds ``available`` (default: the physical memory),
    the solve would be killed for memory, so it is refused with an
    :class:`~dmft.parameters.InvalidParameterError` naming width and grid_points.
    """
    available = physical_memory() if available is None else available
    need = TWO_TIME_MATRICES * 8.0 * float(steps * width) ** 2
    if available is not None and need > available:
        raise InvalidParameterError(
            f"width and grid_points: a solve with N={width} units on T={steps} grid times holds two-time matrices "
            f"of (T*N)^2 numbers, at least {need / 2**30:.1f} GiB, more than this machine's {available / 2**30:.1f} "
            "GiB; lower width, grid_points or t_max")


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
        Samples of the shorter marching windows and of the first iterations of the last one
        (default samples/8, at least 2048): on the last window the iteration runs with them
        until the residual falls below ``warmup_tol``, then switches to ``samples``. Early
        iterations only need to move towards the fixed point, not to resolve it (measured on the default problem: 41.5 s instead of 57.7 s without error
        bars, warm-up in every window against the first only; the test loss at t = 20 and t = 40
        moved by ≤ 1e-5, the other times were not compared).
    warmup_tol : float
        Residual at which the warm-up ends. The warm-up fixed point differs from the full one
        by its Monte Carlo error (a residual jump of ~0.8 in C_w for the default problem at
        S/8), so iterating the warm-up map below ~1e-2 buys nothing: measured, switching at
        1e-2 instead of 1e-3 saved 3 warm-up iterations and no full ones.
    march : bool
        Solve on growing windows [0, t_w] of the grid (theory.md §9.1, "marching"): the DMFT map
        is causal, so the fixed point of a window is the restriction of the fixed point of the
        whole grid. Each window starts from the converged shorter one and only its new part
        must settle, which bounds the transient growth of the iteration error that breaks a
        single fixed-point iteration over a long horizon. The shorter windows run at
        ``warmup_samples`` to 10·tol; only the last one uses ``samples``. A window that does not
        converge is halved (backtracking). ``False`` iterates on the whole grid at once.
    first_window : float
        End time of the first window (theory time).
    window_growth : float
        Each window ends at ``window_growth`` times the end of the previous one (> 1).
    symmetrize : bool
        Project every data-side estimate and every iterate onto the subspace invariant under
        the unit permutations and teacher reflection that leave (m(0), C_w(0,0)) invariant
        (theory.md §9.2, :mod:`dmft.symmetry`); equivalent to averaging each sample over its
        orbit. The size of the removed asymmetric part is reported in ``settings``.
    error_replicas : int
        B independent replica solves with S/B samples each (disjoint random streams), warm
        started at the converged fixed point; their spread gives the Monte Carlo standard error
        of every curve, std/√B (theory.md §9.3). A replica that blows up or does not converge in
        ``max_iter`` iterations is replaced by one on a fresh stream (at most B/2 times, reported). 0
        switches the error bars off; otherwise ≥ 2.
    replica_tol : float or None
        Residual at which a replica stops (default 10·tol: the replicas' spread is ~√B times the
        solve's error, far above this).
    initial_probe_scale : float
        σ₀ in (0, 1]: a centred model's response probe at t = 0 is drawn as σ₀·(±1) (its column
        of R_g rescaled by 1/σ₀², so the estimate stays unbiased). The direct response of every
        later g_n to h_0 rides on that probe and, at σ₀ = 1, adds its variance to every other
        column of R_g: at σ₀ = 0.15 the test loss's standard error fell 4–10× on centred problems
        (theory.md §0.1, "The centred model's probe at t = 0"). Ignored for an uncentred model.
    sampler : {"mc", "rqmc"}
        Field normals pseudo-random (``"mc"``, the default) or from randomised Sobol' points
        (``"rqmc"``, :func:`dmft.sampling.sobol_normals`). With ``"rqmc"`` and error replicas, the curves are the mean
        of B independent randomisations of S/B samples each (the main solve is the first), and
        the error bars their spread/√B: the standard RQMC estimate, honest because an RQMC
        error falls faster than S^(−1/2) (the spread of S/B-point replicas would overstate the
        error of one S-point solve; measured 2.8× at S = 4096, theory.md §9.3). With ``"mc"``
        the main solve uses all S samples and the replicas only give the error bars. RQMC is
        1.5–2.5× more accurate on the default problem, but a solve of S/B samples can go astray
        on long horizons, and the pooled mean with it (centred κ = 4 to t = 150: from t ≈ 40 on;
        theory.md §9.3), which is why it is not the default.
    union_of_replicas : bool
        With ``sampler="mc"``, error replicas and the probe response: solve the B replicas first
        (the first marches from the online start, the others start at its fixed point), then the
        full solve on the *union* of their samples (S in all), started at the mean of their
        fixed points (theory.md §9.3). The union's fixed point differs from that mean only by the
        map's nonlinearity, O(1/S), so it converges in a few full-S iterations instead of the
        ~12 a separate stream needs after the S/8 warm-up; the standard error is the batch-means
        one, std/√B. The union takes every stream drawn, those of replaced replicas too (no
        selection of samples by how their small solve behaved; the standard error is then the
        spread over √(streams)). If the replicas or the union solve fail, the solve falls back to a
        separate full-S stream. ``False`` (default): the separate stream first, then the replicas.
        Measured (2-core machine, session 18, log grid): the default problem 6.4–10.0 s against
        7.8–8.8 s, α = 3, N = 4, t ≤ 60 183 s against 172 s; and at the same S the union's estimate
        is less accurate than the separate solve's (its strata of |h*| are B times coarser:
        variance ~1.3–1.5× larger, theory.md §9.3) — hence not the default.
    precision : {"double", "mixed"}
        ``"double"`` (default): float64 throughout. ``"mixed"``: while the full-sample residual is
        above 3·tol, the data side's two sample products (Gram, probe cross product) and the Numba
        kernel's memory sums run in single precision, everything else in double; the last
        iterations run in float64, so a converged solve is the fixed point of the double-precision
        map (theory.md §9.4). Measured: the default problem 1.33× faster (12.6 against 16.8 s), but
        α = 3, N = 2 to t = 300 did not converge in ~1000 iterations with it (twice), where double
        converged in 427 — hence not the default.
    two_level : bool
        After the warm-up, converge the full-sample map by defect correction with the warm-up
        map (theory.md §9.3, "Two-level iteration"): a full evaluation at X_o fixes the constant
        E_S(X_o) − E_s(X_o) that turns the warm-up map into a model of the full one; the model is
        iterated at the warm-up's cost to near its fixed point, and again until the full map's
        own residual is below ``tol`` (the criterion of the plain iteration). Tried only where the
        first full residual after the warm-up is below 0.5, and abandoned for the plain iteration
        as soon as an outer step fails to halve the residual. Measured (2-core machine, no
        replicas): the default problem 4.5 → 3.0 s, the centred κ = 4 problem to t = 60
        5.1 → 3.6 s; α = 3 keeps the plain iteration. ``False``: the plain iteration only.
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
    march: bool = True
    first_window: float = 10.0
    window_growth: float = 2.0
    symmetrize: bool = True
    error_replicas: int = 8
    replica_tol: float | None = None
    sampler: str = "mc"
    initial_probe_scale: float = 0.15
    union_of_replicas: bool = False
    precision: str = "double"
    two_level: bool = True

    def __post_init__(self):
        samples = check_int_at_least("samples", self.samples, 4)
        if samples % 4:
            raise InvalidParameterError(f"samples must be a multiple of 4 (antithetic quadruplets), got {samples}")
        object.__setattr__(self, "samples", samples)
        if self.response not in RESPONSE_METHODS:
            raise InvalidParameterError(f"response must be one of {RESPONSE_METHODS}, got {self.response!r}")
        if self.response_samples is not None:
            if self.response != "exact":
                raise InvalidParameterError(f"response_samples applies to response='exact' only (the probe "
                                            f"response uses every sample), got response={self.response!r}")
            object.__setattr__(self, "response_samples",
                               check_int_at_least("response_samples", self.response_samples, 1))
        if not (0.0 < float(self.damping) <= 1.0) or math.isnan(float(self.damping)):
            raise InvalidParameterError(f"damping must lie in (0, 1], got {self.damping!r}")
        if self.mixing not in MIXING_METHODS:
            raise InvalidParameterError(f"mixing must be one of {MIXING_METHODS}, got {self.mixing!r}")
        check_int_at_least("anderson_depth", self.anderson_depth, 1)
        check_positive("tol", self.tol)
        check_positive("warmup_tol", self.warmup_tol)
        check_int_at_least("max_iter", self.max_iter, 1)
        check_int_at_least("seed", self.seed, 0)
        if self.backend not in BACKENDS:
            raise InvalidParameterError(f"backend must be one of {BACKENDS} for the finite-alpha solver, got {self.backend!r}")
        chunk = check_int_at_least("chunk", self.chunk, 4)
        object.__setattr__(self, "chunk", chunk - chunk % 4)
        warm = self.warmup_samples
        if warm is None:
            warm = max(2048, samples // 8)
        warm = min(check_int_at_least("warmup_samples", warm, 4), samples)
        object.__setattr__(self, "warmup_samples", warm - warm % 4)
        object.__setattr__(self, "march", bool(self.march))
        object.__setattr__(self, "symmetrize", bool(self.symmetrize))
        check_positive("first_window", self.first_window)
        if not float(self.window_growth) > 1.0 or not math.isfinite(float(self.window_growth)):
            raise InvalidParameterError(f"window_growth must be a finite number > 1, got {self.window_growth!r}")
        replicas = check_int_at_least("error_replicas", self.error_replicas, 0)
        if replicas == 1:
            raise InvalidParameterError("error_replicas must be 0 (no error bars) or at least 2, got 1")
        if replicas and samples // replicas < 4:
            raise InvalidParameterError(f"error_replicas must leave at least 4 samples per replica "
                             f"(samples={samples}), got {replicas}")
        if self.replica_tol is not None:
            check_positive("replica_tol", self.replica_tol)
        if self.sampler not in SAMPLERS:
            raise InvalidParameterError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.precision not in PRECISIONS:
            raise InvalidParameterError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        scale = float(self.initial_probe_scale)
        if not 0.0 < scale <= 1.0:
            raise InvalidParameterError(f"initial_probe_scale must lie in (0, 1], got {self.initial_probe_scale!r}")
        object.__setattr__(self, "initial_probe_scale", scale)
        object.__setattr__(self, "union_of_replicas", bool(self.union_of_replicas))


#: Raised when a change of the solver's numerics moves its results at unchanged settings (12: the
#: centred model's rescaled probe at t = 0; 13: the default grid of ``dmft.solve`` is the log grid
#: at finite α; 14: the two-level iteration stops at another point within the tolerance). Stores key DMFT runs on :func:`numerics_fingerprint`,
#: so that rerunning a stored request after such a change recomputes instead of resuming a stale run.
NUMERICS_REVISION = 14


def numerics_fingerprint() -> str:
    """Short digest of :data:`NUMERICS_REVISION` and every default of :class:`SolverSettings`.

    A stored DMFT run is identified by the options its request gave; the defaults it ran with
    are part of what shaped it, so the stores (``dmft solve --out``, comparisons, phase points,
    sweeps) add this digest to the identity of every finite-α run.
    """
    payload = {"revision": NUMERICS_REVISION, **asdict(SolverSettings())}
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:8]


def online_data_side(model: ModelParameters | SquareTargetProblem | CommitteeProblem,
                     t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """α = ∞ data-side order parameters (R_g, r*, m) on the grid ``t`` from the online ODE.

    R_g is block diagonal, R_g[n, n] = R(t_n) of eq. 33 (centred: plus the column
    R_g[n, 0] = E[∂g_n/∂h(0)] = (κ/N)(1 + ε²X(t_n))), r* = ε m (eq. 34), and the noise vanishes;
    for a committee the same means from :mod:`dmft.committee_online` (theory.md §10.7).
    """
    return as_problem(model).online(check_grid(t))


def _weight_side(problem, resp, r_star, cov_g, t, alpha=None) -> WeightSide:
    return weight_side(resp, r_star, cov_g, m0=problem.m0, cov0=problem.cov0, rho=problem.teacher_cov,
                       scale=problem.scale, alpha=problem.alpha if alpha is None else alpha, times=t)


def online_start(model: ModelParameters | SquareTargetProblem | CommitteeProblem, t: np.ndarray) -> WeightSide:
    """α = ∞ data-side order parameters from the online ODE, pushed through the weight side."""
    problem = as_problem(model)
    t = check_grid(t)
    resp, r_star, _ = problem.online(t)
    return _weight_side(problem, resp, r_star, None, t, alpha=math.inf)


def _response_density(chi: np.ndarray, t: np.ndarray) -> np.ndarray:
    """R_w(t_n, t_s) from χ = M Q by dividing out the trapezoid weight of column s (R_w(0,0) = I)."""
    T, _, N, _ = chi.shape
    weights = trapezoid_weights(t)
    weights[0, 0] = 1.0
    density = chi / np.where(weights > 0, weights, 1.0)[:, :, None, None]
    density[0, 0] = np.eye(N)
    return density


@dataclass
class _State:
    """An iterate X = (C_w, m, χ) on a window of the grid."""

    cov: np.ndarray
    overlap: np.ndarray
    chi: np.ndarray

    @classmethod
    def of(cls, weight_side) -> "_State":
        """The iterate that a weight-side solve (C_w, m, χ as ``cov``, ``overlap``, ``response``) gives."""
        return cls(weight_side.cov, weight_side.overlap, weight_side.response)

    def restrict(self, points: int) -> "_State":
        return _State(self.cov[:points, :points].copy(), self.overlap[:points].copy(),
                      self.chi[:points, :points].copy())

    def pack(self) -> np.ndarray:
        return np.concatenate([self.cov.ravel(), self.overlap.ravel(), self.chi.ravel()])

    def unpack(self, x: np.ndarray) -> "_State":
        a, b = self.cov.size, self.cov.size + self.overlap.size
        cov = x[:a].reshape(self.cov.shape)
        return _State(0.5 * (cov + cov.transpose(1, 0, 3, 2)), x[a:b].reshape(self.overlap.shape),
                      x[b:].reshape(self.chi.shape))


@dataclass
class _WindowOutcome:
    state: _State
    estimate: object
    history: list
    converged: bool
    reason: str
    symmetry_removed: float
    two_level: bool = False      # converged by the two-level iteration


class _Blowup(Exception):
    """A window iteration produced non-finite or exploding values.

    ``fallback``: the iterate of smallest residual before the blow-up with its (finite) data-side
    estimate, as an unconverged :class:`_WindowOutcome` (None where there was none), so that a
    first window that blows up is reported as not converged with finite curves, not raised.
    """

    def __init__(self, message: str, fallback: "_WindowOutcome | None" = None, history: list | None = None):
        super().__init__(message)
        self.fallback = fallback
        self.history = list(history or [])


def _project_estimate(estimate, group: SymmetryGroup):
    """Orbit average of the data-side estimate and the size of the removed asymmetric part."""
    cov_g = group.project_pairs(estimate.cov_g)
    response = group.project_pairs(estimate.response)
    r_star = group.project_units(estimate.r_star, odd=True)
    removed = max(float(np.max(np.abs(cov_g - estimate.cov_g))),
                  float(np.max(np.abs(response - estimate.response))),
                  float(np.max(np.abs(r_star - estimate.r_star))))
    return replace(estimate, cov_g=cov_g, response=response, r_star=r_star), removed


def _project_state(state: _State, group: SymmetryGroup) -> _State:
    return _State(group.project_pairs(state.cov), group.project_units(state.overlap, odd=True),
                  group.project_pairs(state.chi))


#: A residual above this (order parameters are O(1)–O(100)) counts as a blow-up.
_BLOWUP = 1e8
#: precision="mixed" iterates in float64 once the full-sample residual is below this multiple of
#: the window's tolerance (theory.md §9.4).
_DOUBLE_BELOW = 3.0


def _evaluate(problem, t, state: _State, settings: SolverSettings, group: SymmetryGroup, *, samples, seed,
              workspace, precision="double", correction=None):
    """One application of the DMFT map: the data-side estimate at ``state`` (projected onto the
    symmetric subspace), the size of the removed asymmetric part, and the weight side's new
    iterate. ``correction`` (response, r_star, cov_g): added to the estimate before the weight
    side (the two-level iteration)."""
    estimate = estimate_data_side(
        state.cov, state.overlap, state.chi, problem=problem, samples=samples, seed=seed,
        backend=settings.backend, response=settings.response, response_samples=settings.response_samples,
        chunk=settings.chunk, workspace=workspace, sampler=settings.sampler, precision=precision,
        initial_probe_scale=settings.initial_probe_scale)
    removed = 0.0
    if settings.symmetrize:
        estimate, removed = _project_estimate(estimate, group)
    response, r_star, cov_g = estimate.response, estimate.r_star, estimate.cov_g
    if correction is not None:
        response, r_star, cov_g = response + correction[0], r_star + correction[1], cov_g + correction[2]
    return estimate, removed, _weight_side(problem, response, r_star, cov_g, t)


def _residual(new, state: _State, chi_scale) -> float:
    """Sup-norm distance of the map's image from the iterate (χ in units of the column step)."""
    return max(float(np.max(np.abs(new.cov - state.cov))),
               float(np.max(np.abs(new.overlap - state.overlap))),
               float(np.max(np.abs(new.response - state.chi) / chi_scale)))


#: two_level: tried only where the first full-sample residual after the warm-up is below this. The
#: warm-up map is then a good model of the full one (measured at α = 10: 0.08–0.24, and the outer
#: residual falls ~10× a step); at α = 3 it is 1.6–1.8 and the corrected map's fixed point lies
#: farther from the full one than the start (theory.md §9.3, "Two-level iteration").
_TWO_LEVEL_BELOW = 0.5
#: two_level: most outer (full-sample) evaluations.
_TWO_LEVEL_OUTER = 12
#: two_level: an outer step must cut the outer residual by this factor, else plain iteration goes on.
_OUTER_CONTRACTION = 0.5
#: two_level: the inner iteration stops at this fraction of the outer residual (or at tol/4): an
#: outer step contracts the residual ~10× (measured), so a tighter inner solve buys nothing.
_INNER_FRACTION = 0.02
#: two_level: most inner iterations per outer step.
_INNER_MAX = 40


def _two_level(problem, t, state: _State, first, settings: SolverSettings, group: SymmetryGroup, *, samples, small,
               seed, tol, note, weights, chi_scale, workspace):
    """Converge the full map F_S from ``state`` by defect correction with the warm-up map F_s
    (theory.md §9.3, "Two-level iteration").

    Outer step at X_o: the data-side estimates E_S(X_o) (given for the first step as ``first`` =
    (estimate, removed, image, residual)) and E_s(X_o); then Anderson iteration of the corrected
    map F̃(X) = W(E_s(X) + E_S(X_o) − E_s(X_o)) (W the weight side) at the cost of s samples a
    step, to a fraction of the outer residual. F̃ equals F_S at X_o and their Jacobians differ by
    Monte Carlo noise, so each outer step cuts ‖F_S(X) − X‖ by about that difference. Converged
    when ‖F_S(X_o) − X_o‖ < tol: the same criterion as the plain iteration, at a full evaluation.

    Returns ``(outcome, resume)``: the converged :class:`_WindowOutcome` and None; or, when an
    outer step does not cut the residual by :data:`_OUTER_CONTRACTION` or a step blows up, None and
    the outer point with the smallest full-sample residual, ``(state, estimate, removed, image,
    residual)``, from which the caller goes on with the plain iteration (the first point when no
    outer step helped). ``workspace``: the data side's buffers and draws of both sample counts
    (their chunks have the same shape; the draws are keyed by the sample count).
    """
    mixer = Mixer(method=settings.mixing, damping=settings.damping, depth=settings.anderson_depth, weights=weights)
    full, removed, new, outer = first
    best = (state, full, removed, new, outer)
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            for step in range(_TWO_LEVEL_OUTER):
                if step:
                    full, removed, new = _evaluate(problem, t, state, settings, group, samples=samples, seed=seed,
                                                   workspace=workspace)
                    previous, outer = outer, _residual(new, state, chi_scale)
                    note(outer, f"S={samples}")
                    if not np.all(np.isfinite(full.train_loss)):
                        return None, best
                    if outer < best[-1]:
                        best = (state, full, removed, new, outer)
                    if not outer < _OUTER_CONTRACTION * previous:
                        return None, best
                    if outer < tol:
                        return _WindowOutcome(state, full, [], True, "", removed, two_level=True), None
                coarse, _, _ = _evaluate(problem, t, state, settings, group, samples=small, seed=seed,
                                         workspace=workspace)
                correction = (full.response - coarse.response, full.r_star - coarse.r_star,
                              full.cov_g - coarse.cov_g)
                mixer.new_map()          # F̃ changed by a constant: its Jacobian, and the pairs, stay
                x, image = state, new
                inner_best = math.inf
                for inner in range(_INNER_MAX):
                    if inner:
                        _, _, image = _evaluate(problem, t, x, settings, group, samples=small, seed=seed,
                                                workspace=workspace, correction=correction)
                        value = _residual(image, x, chi_scale)
                        note(value, f"S={small}+correction")
                        if not value < _BLOWUP:
                            return None, best
                        if value < max(0.25 * tol, _INNER_FRACTION * outer):
                            break
                        if value > inner_best:
                            mixer.reset()        # no progress: restart Anderson from a damped step
                        inner_best = min(inner_best, value)
                    mixed = x.unpack(mixer.step(x.pack(), _State.of(image).pack()))
                    x = _project_state(mixed, group) if settings.symmetrize else mixed
                state = x
    except (FloatingPointError, np.linalg.LinAlgError, ValueError):
        return None, best
    return None, best


def _iterate_window(problem, t, state: _State, settings: SolverSettings, group: SymmetryGroup, *,
                    samples: int, warmup: int | None, seed, tol: float, bar=None, phase="") -> _WindowOutcome:
    """Fixed-point iteration of the DMFT map on the grid ``t`` from ``state`` (theory.md §4.6)."""
    steps = column_steps(t)
    chi_scale = np.broadcast_to(steps[None, :, None, None], state.chi.shape)
    weights = np.concatenate([np.ones(state.cov.size + state.overlap.size), 1.0 / chi_scale.ravel()])
    mixer = Mixer(method=settings.mixing, damping=settings.damping, depth=settings.anderson_depth,
                  weights=weights)
    current = warmup if warmup is not None and warmup < samples else samples
    history: list[float] = []
    best = math.inf
    estimate = None
    removed = 0.0
    workspace: dict = {}
    # "mixed": single-precision parts while far from the fixed point, float64 for the last
    # iterations, so that a converged result is the fixed point of the double-precision map
    precision = settings.precision
    best_pair = None                # (residual, state, estimate, removed) of the smallest residual
    two_level_from = None           # warm-up sample count, until the first full evaluation (two_level)

    def note(value: float, label: str) -> None:
        history.append(value)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{phase} t<={t[-1]:.4g} {label} residual={value:.2e}")

    def blowup(message: str) -> _Blowup:
        if best_pair is None:
            return _Blowup(message, history=history)
        _, best_state, best_estimate, best_removed = best_pair
        return _Blowup(message, _WindowOutcome(best_state, best_estimate, list(history), False,
                                               f"blew up ({message})", best_removed), history)

    for iteration in range(1, settings.max_iter + 1):
        try:
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                estimate, removed, new = _evaluate(problem, t, state, settings, group, samples=current, seed=seed,
                                                   workspace=workspace, precision=precision)
        except (FloatingPointError, np.linalg.LinAlgError, ValueError) as exc:
            raise blowup(f"{type(exc).__name__} at iteration {iteration}: {exc}") from exc
        residual = _residual(new, state, chi_scale)
        note(residual, f"S={current}")
        if not math.isfinite(residual) or residual > _BLOWUP or not np.all(np.isfinite(estimate.train_loss)):
            raise blowup(f"residual {residual:.3g} at iteration {iteration}")
        if best_pair is None or residual < best_pair[0]:
            best_pair = (residual, state, estimate, removed)
        if residual > best:
            mixer.reset()              # no progress: restart Anderson from a damped step
        best = min(best, residual)
        switch = current < samples and residual < max(settings.warmup_tol, tol)
        if current == samples and residual < tol and precision == "double":
            return _WindowOutcome(state, estimate, history, True, "", removed)
        if two_level_from is not None and current == samples:
            # the first full-sample evaluation after the warm-up (theory.md §9.3)
            small, two_level_from = two_level_from, None
            if residual < _TWO_LEVEL_BELOW and precision == "double":
                outcome, resume = _two_level(problem, t, state, (estimate, removed, new, residual), settings, group,
                                             samples=samples, small=small, seed=seed, tol=tol, note=note,
                                             weights=weights, chi_scale=chi_scale, workspace=workspace)
                if outcome is not None:
                    return replace(outcome, history=history)
                if resume[-1] < residual:
                    # go on with the plain iteration from the best outer point, not from the start
                    state, estimate, removed, new, residual = resume
                    best_pair = (residual, state, estimate, removed)
                    mixer.reset()
                    best = residual
        if precision != "double" and current == samples and residual < _DOUBLE_BELOW * tol:
            # The rounding of the single-precision parts (~1e-6 of C_w, theory.md §9.4) is a
            # non-smooth perturbation of the map: near the tolerance it misleads Anderson's secant
            # steps (α = 3 to t = 300 did not converge in 1035 iterations). Finish in float64.
            precision = "double"
            mixer.reset()
            best = math.inf
        mixed = state.unpack(mixer.step(state.pack(), _State.of(new).pack()))
        if switch:
            # A new sample size is a new map: forget the history, including the step just taken.
            # Resetting before that step left it as the last iterate, so the first Anderson step
            # of the full map took a secant across the two maps (their Monte Carlo difference, not
            # the Jacobian) and stalled: 3 iterations at residual ~1.06 on the default problem.
            if settings.two_level:
                two_level_from = current
            current = samples
            mixer.reset()
            best = math.inf
        state = _project_state(mixed, group) if settings.symmetrize else mixed
    return _WindowOutcome(state, estimate, history, False,
                          f"residual {history[-1]:.2e} >= tol {tol:g} after {len(history)} iterations (max_iter)",
                          removed)


def _window_ends(t: np.ndarray, settings: SolverSettings) -> list[int]:
    """Last grid index of each marching window: t_w = first_window·growth^w, then t_max."""
    if not settings.march:
        return [t.size - 1]
    ends = []
    target = settings.first_window
    while target < t[-1]:
        index = int(np.searchsorted(t, target - 1e-12))
        if index >= 2 and (not ends or index > ends[-1]):
            ends.append(index)
        target *= settings.window_growth
    ends.append(t.size - 1)
    return ends


def _extension(problem, t, points: int, done: "_WindowOutcome", online) -> _State:
    """Starting iterate on the window [0, t_{points−1}] that extends a converged shorter one.

    The converged data-side estimates (R_g, r*, C_g) are kept on the old window and continued
    by their α = ∞ values (local response, r* = εm, no noise) on the new times; the weight side
    then gives a consistent (C_w, m, χ) on the whole window, equal to the converged iterate on
    the old part (causality) and positive semi-definite by construction.
    """
    resp_online, rstar_online, _ = online
    est = done.estimate
    old = est.train_loss.size
    resp = resp_online[:points, :points].copy()
    resp[:old, :old] = est.response
    r_star = rstar_online[:points].copy()
    r_star[:old] = est.r_star
    N = r_star.shape[1]
    cov_g = np.zeros((points, points, N, N))
    cov_g[:old, :old] = est.cov_g
    guess = _weight_side(problem, resp, r_star, cov_g, t[:points])
    return _State.of(guess)


def _march(problem, t, start: _State, settings, group, *, samples, seed, tol, warmup, bar, initial=None,
           label="S", online=None):
    """Solve window after window (theory.md §9.1); halve a window that fails.

    Returns the outcome on the longest window reached, its last index, the total iteration count
    and the list of backtracking events, (kind, description) with kind "halved" or "remarched".
    """
    ends = _window_ends(t, settings)
    done = None                   # outcome on the last converged window
    done_end = 0
    fallback = None               # (finite unconverged outcome, its last index) of a blown-up first window
    total = []
    events = []
    target_pos = 0
    end = ends[0]
    while True:
        points = end + 1
        if done is not None and initial is None:
            guess = _extension(problem, t, points, done, online)
        else:
            guess = (initial if initial is not None else start).restrict(points)
            if done is not None:
                prev = done_end + 1
                guess.cov[:prev, :prev] = done.state.cov
                guess.overlap[:prev] = done.state.overlap
                guess.chi[:prev, :prev] = done.state.chi
        try:
            # Shorter windows stop at 10·tol and run at the warm-up sample size: the last window
            # iterates the whole grid at S to tol (by causality its restriction is their fixed
            # point), so what they must deliver is a stable start, not precision.
            final = end == t.size - 1
            window_tol = tol if final else 10 * tol
            window_samples = samples if final or warmup is None else warmup
            outcome = _iterate_window(problem, t[:points], guess, settings, group, samples=window_samples,
                                      warmup=warmup, seed=seed, tol=window_tol, bar=bar,
                                      phase=label)
            total.extend(outcome.history)
            failure = None if outcome.converged else outcome.reason
        except _Blowup as exc:
            outcome, failure = None, f"blew up ({exc})"
            total.extend(exc.history)
            if done is None and exc.fallback is not None:
                fallback = (exc.fallback, end)  # reported as not converged if nothing better comes
        if failure is None:
            done, done_end = outcome, end
            if end == t.size - 1:
                return done, done_end, total, events, ""
            while ends[target_pos] <= end:
                target_pos += 1
            end = ends[target_pos]
            continue
        last_good = done_end if done is not None else 0
        if end == t.size - 1 and warmup is not None and warmup < samples and settings.march:
            # The last window failed after warm-up windows at S/8: its switch to S moves the fixed
            # point by the Monte Carlo difference over the whole grid, which at small α and long
            # horizons is too far for the iteration. March again from the first window at S, so
            # that every window only adds new times.
            events.append(("remarched", f"window to t={t[end]:.4g} at S={samples} after S/8 windows {failure}"))
            warmup = None
            done, done_end, target_pos, end = None, 0, 0, ends[0]
            continue
        if settings.march and end - last_good > 4:
            events.append(("halved", f"window to t={t[end]:.4g} {failure}"))
            end = last_good + (end - last_good) // 2
            continue
        if outcome is not None and done is None:
            done, done_end = outcome, end          # the first window itself did not converge
        elif done is None and fallback is not None:
            done, done_end = fallback              # it blew up: its best finite iterate
        if done is not None and done.converged:
            tail = f"; converged up to t = {t[done_end]:.4g}"
        elif done is not None:
            # say so: the curves returned are then those of an unconverged (or blown-up) first window
            tail = f"; no window converged: the curves on [0, {t[done_end]:.4g}] are an unconverged iterate"
        else:
            tail = ""
        reason = f"window [0, {t[end]:.4g}] {failure}{tail}"
        return done, done_end, total, events, reason


def _replica_curves(problem, state: _State, estimate, t) -> dict:
    idx = np.arange(t.size)
    return {"train_loss": estimate.train_loss, "decomposition": problem.decomposition(state.cov, state.overlap),
            "overlap": state.overlap, "cov": state.cov[idx, idx]}


def _solve_replicas(problem, t, fixed: _State, settings, group, *, seed, tol, bar, have: int = 0, first_stream: int = 1):
    """Replica solves of S/B samples each, on streams (seed, first_stream), (seed, first_stream + 1), …
    (theory.md §9.3), until B − ``have`` have converged.

    Each replica iterates on the whole grid from ``fixed`` for at most ``max_iter`` iterations
    (9–16 at the default problem; a cap of 40 lost 8 of 12 replicas at α = 3, N = 4,
    t_max = 60). A replica that blows up or does not converge is replaced by one on a fresh
    stream, at most B/2 times in all; the number replaced is reported.

    Returns
    -------
    replicas : list of (stream, _WindowOutcome)
    failed : int
    iterations : list of int
    reason : str
        Why the last failed replica failed ("" when none failed).
    """
    B = settings.error_replicas
    samples = (settings.samples // B) // 4 * 4
    whole = replace(settings, march=False)
    replicas, failed, iterations, why = [], 0, [], ""
    stream = first_stream - 1
    while have + len(replicas) < B and stream - first_stream + 1 < B - have + max(1, B // 2):
        stream += 1
        outcome, end, history, _, reason = _march(problem, t, fixed, whole, group, samples=samples,
                                                  seed=(seed, stream), tol=tol, warmup=None, bar=bar,
                                                  initial=fixed, label=f"replica {stream}/{B}")
        iterations.append(len(history))
        if reason or outcome is None or end != t.size - 1:
            failed += 1
            why = reason or f"stopped at t = {t[end]:.4g}"
            continue
        replicas.append((stream, outcome))
    return replicas, failed, iterations, why


def _replica_statistics(problem, t, outcomes):
    """Standard errors std/√B and means over the replica ``outcomes`` of ``train_loss``,
    ``test_loss``, ``decomposition``, ``overlap`` and ``cov`` (None, None with fewer than 2)."""
    if len(outcomes) < 2:
        return None, None
    curves = {"train_loss": [], "decomposition": [], "overlap": [], "cov": []}
    for outcome in outcomes:
        for name, value in _replica_curves(problem, outcome.state, outcome.estimate, t).items():
            curves[name].append(value)
    curves["test_loss"] = [d.sum(axis=-1) for d in curves["decomposition"]]
    sem = {name: np.std(np.array(v), axis=0, ddof=1) / math.sqrt(len(v)) for name, v in curves.items()}
    mean = {name: np.mean(np.array(v), axis=0) for name, v in curves.items()}
    return sem, mean


def _replica_errors(problem, t, fixed: _State, settings, group, *, seed, tol, bar, first=None):
    """Standard errors (and means) of the curves from B independent replicas started at the fixed
    point X* (theory.md §9.3). ``first``: the main solve's outcome, counted as replica 0 (the
    pooled RQMC estimate, where the main solve ran at S/B).

    Returns
    -------
    sem, mean : dict or None
        See :func:`_replica_statistics`.
    failed : int
    iterations : list of int
    reason : str
        Why the last failed replica failed ("" when none failed).
    """
    have = [] if first is None else [first]
    replicas, failed, iterations, reason = _solve_replicas(problem, t, fixed, settings, group, seed=seed, tol=tol,
                                                           bar=bar, have=len(have))
    sem, mean = _replica_statistics(problem, t, have + [outcome for _, outcome in replicas])
    return sem, mean, failed, iterations, reason


@dataclass(frozen=True)
class _UnionSolve:
    """The full solve on the union of the replicas' samples, with what the result reports of it."""

    outcome: "_WindowOutcome"     # the converged iterate on the whole grid
    history: list                 # residuals: replica 1's march, then the union's iterations
    events: list                  # backtracking events of replica 1's march
    sem: dict                     # Monte Carlo standard errors from the replicas' spread
    failed: int                   # replicas replaced
    replica_iterations: list      # iterations of each replica
    samples: int                  # samples in the union
    union_iterations: int         # iterations on the union


def _solve_on_union(problem, t, start: _State, settings, group, *, bar, online) -> "_UnionSolve | None":
    """The full solve as the union of its error replicas (``union_of_replicas``, theory.md §9.3).

    Replica 1 marches from the online start at S/B samples to the replica tolerance; replicas
    2…B start at its fixed point; the full solve then iterates on the union of their samples
    from the mean of their fixed points. Returns None where a step fails (the caller falls back
    to a separate full-S stream), else a :class:`_UnionSolve`.
    """
    B = settings.error_replicas
    per_replica = (settings.samples // B) // 4 * 4
    replica_tol = settings.replica_tol or 10 * settings.tol
    seed = settings.seed
    first, end, history, events, reason = _march(
        problem, t, start, settings, group, samples=per_replica, seed=(seed, 1), tol=replica_tol, warmup=None,
        bar=bar, label="replica 1", online=online)
    if reason or first is None or end != t.size - 1:
        return None
    others, failed, iterations, _ = _solve_replicas(problem, t, first.state, settings, group, seed=seed,
                                                    tol=replica_tol, bar=bar, have=1, first_stream=2)
    replicas = [(1, first)] + others
    if len(replicas) < 2:
        return None
    sem, _ = _replica_statistics(problem, t, [outcome for _, outcome in replicas])
    # The union takes every stream drawn, also those whose replica was replaced (blew up or did not
    # converge alone at S/B): keeping only the converged ones would select samples by how their
    # small solve behaved. The standard error is then the replicas' spread over √(streams).
    attempted = [1] + list(range(2, 2 + len(iterations)))
    if len(attempted) > len(replicas):
        sem = {name: value * math.sqrt(len(replicas) / len(attempted)) for name, value in sem.items()}
    streams = SampleStreams(tuple((seed, stream) for stream in attempted))
    estimates = [outcome.estimate for _, outcome in replicas]
    guess = _weight_side(problem, np.mean([e.response for e in estimates], axis=0),
                         np.mean([e.r_star for e in estimates], axis=0),
                         np.mean([e.cov_g for e in estimates], axis=0), t)
    guess = _State.of(guess)
    if settings.symmetrize:
        guess = _project_state(guess, group)
    try:
        union = _iterate_window(problem, t, guess, settings, group, samples=per_replica, warmup=None, seed=streams,
                                tol=settings.tol, bar=bar, phase="union of replicas")
    except _Blowup:
        return None
    if not union.converged:
        return None
    return _UnionSolve(outcome=union, history=history + union.history, events=events, sem=sem, failed=failed,
                       replica_iterations=[len(history)] + iterations, samples=per_replica * len(attempted),
                       union_iterations=len(union.history))


def solve_dmft(params: ModelParameters | SquareTargetProblem | CommitteeProblem, t: np.ndarray,
               **options) -> LearningCurves:
    """Solve the finite-α DMFT on the grid ``t`` (theory.md §4, §9).

    Parameters
    ----------
    params : ModelParameters or a problem of :mod:`dmft.problems`
        Finite ``alpha``. A :class:`~dmft.problems.CommitteeProblem` solves a general student and
        teacher (theory.md §10.7; :func:`solve_committee_dmft`).
    t : ndarray, shape (T,)
        Strictly increasing grid starting at 0 (theory time t = η₀·step/D); uniform or not
        (theory.md §9.1).
    **options
        Fields of :class:`SolverSettings`. ``device`` is refused unless it is ``"cpu"`` or
        ``None``: the solver runs on the CPU (Numba or NumPy). ``error_bars_if`` (not a setting:
        it changes only what is computed, never a number): a callable ``(t, train_loss,
        test_loss) -> bool`` asked once the main solve has converged; ``False`` skips the error
        replicas (the result has no standard errors, ``settings["error_bars_skipped"]`` is True and
        the message says so). The adaptive horizon of :mod:`comparisons.phase` uses it on the
        horizons it will discard. Not applied with pooled RQMC replicas (they are the curves) or
        ``union_of_replicas`` (they are the solve). With it returning ``True`` the result is the
        same, number for number, as without it.

    Returns
    -------
    LearningCurves
        kind ``"dmft"``; ``train_loss_sem``/``test_loss_sem``/``overlap_sem``/``cov_sem`` hold the
        Monte Carlo standard errors (``error_replicas`` > 0); ``extras`` holds the two-time order
        parameters ``C_w`` (T,T,N,N), ``R_w`` (χ/quadrature weight, T,T,N,N), ``C_g``, ``R_g``
        (discrete mean response, diagonal blocks = equal-time part), ``r_star`` (T,N) (committee:
        (T,N,M), and the full overlap matrix R(t) in ``overlap_matrix``, its standard error in
        ``overlap_matrix_sem``). A solve
        that does not converge on the whole grid returns ``converged=False`` with the reason in
        ``message``, and curves on the longest window that did converge (never NaN).
    """
    options = dict(options)
    device = options.pop("device", None)
    error_bars_if = options.pop("error_bars_if", None)
    if error_bars_if is not None and not callable(error_bars_if):
        raise InvalidParameterError(f"error_bars_if must be a callable (t, train_loss, test_loss) -> bool or None, "
                                    f"got {error_bars_if!r}")
    if device not in (None, "cpu", "auto"):
        raise InvalidParameterError(f"device must be 'cpu' for the finite-alpha DMFT solver (Numba/NumPy), got {device!r}")
    known = {f.name for f in fields(SolverSettings)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InvalidParameterError(f"unknown DMFT solver option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
    settings = SolverSettings(**options)
    problem = as_problem(params)
    if math.isinf(problem.alpha):
        raise InvalidParameterError("solve_dmft needs a finite alpha; use dmft.solve for alpha = inf")
    if settings.backend == "numba" and not problem.compiled:
        raise InvalidParameterError(
            f"backend must be 'numpy' for this student activation: only {', '.join(COMPILED_ACTIVATIONS)} have a "
            "compiled (Numba) data-side kernel")
    t = check_grid(t)
    check_memory(t.size, problem.width)
    start_time = time.perf_counter()
    online = problem.online(t)
    start = _weight_side(problem, online[0], online[1], None, t, alpha=math.inf)
    start = _State.of(start)
    group = problem.symmetry(settings.symmetrize)
    bar = None
    if settings.progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc=f"DMFT alpha={problem.alpha:g}", unit="it", leave=False, total=None)
    # RQMC with error bars: the estimate is the mean of B independent randomisations of S/B points
    # (the main solve is the first), whose spread is its honest error (theory.md §9.3)
    pooled = settings.sampler == "rqmc" and settings.error_replicas >= 2
    main_samples = (settings.samples // settings.error_replicas) // 4 * 4 if pooled else settings.samples
    # One BLAS thread for the whole solve, not only inside the data side: OpenBLAS threads
    # spin-wait after each product of the weight side and took a core from the next parallel
    # Numba kernel. Measured on the default problem (2 cores): every data-side pass ~55 ms
    # faster, weight side 1.27 -> 0.88 s, the solve 33.7 -> 26.7 s.
    blas_limit = threadpool_limits(limits=1, user_api="blas")
    union = None
    skipped = False                               # error replicas declined by error_bars_if
    try:
        if (settings.union_of_replicas and not pooled and settings.error_replicas >= 2
                and settings.response == "probe"):
            union = _solve_on_union(problem, t, start, settings, group, bar=bar, online=online)
        if union is not None:
            outcome, history, events, sem = union.outcome, union.history, union.events, union.sem
            failed, replica_iterations, main_samples = union.failed, union.replica_iterations, union.samples
            end, reason, mean, converged, replica_reason = t.size - 1, "", None, True, ""
        else:
            outcome, end, history, events, reason = _march(
                problem, t, start, settings, group, samples=main_samples, seed=(settings.seed, 0),
                tol=settings.tol, warmup=min(settings.warmup_samples, main_samples), bar=bar, label="fixed point",
                online=online)
            if outcome is None:
                raise DMFTError(f"DMFT failed on its first window: {reason}", len(history),
                                history[-1] if history else math.inf)
            converged = not reason
            sem, mean, failed, replica_iterations, replica_reason = None, None, 0, [], ""
            if converged and settings.error_replicas and error_bars_if is not None and not pooled:
                tw = t[: end + 1]
                decomposition = problem.decomposition(outcome.state.cov, outcome.state.overlap)
                skipped = not error_bars_if(tw, outcome.estimate.train_loss, decomposition.sum(axis=-1))
            if converged and settings.error_replicas and not skipped:
                replica_tol = settings.replica_tol or 10 * settings.tol
                sem, mean, failed, replica_iterations, replica_reason = _replica_errors(
                    problem, t, outcome.state, settings, group, seed=settings.seed, tol=replica_tol, bar=bar,
                    first=outcome if pooled else None)
    finally:
        blas_limit.restore_original_limits()
        if bar is not None:
            bar.close()
    tw = t[: end + 1]
    state, estimate = outcome.state, outcome.estimate
    iterations = len(history)
    residual = history[-1]
    if converged and union is not None:
        message = (f"converged: residual {residual:.2e} < tol {settings.tol:g} after {iterations} iterations "
                   f"({union.union_iterations} on the union of {len(replica_iterations)} replica streams, "
                   f"{main_samples} samples)")
    elif converged:
        message = f"converged: residual {residual:.2e} < tol {settings.tol:g} after {iterations} iterations"
    else:
        message = f"not converged: {reason}"
    halved = sum(kind == "halved" for kind, _ in events)
    remarched = any(kind == "remarched" for kind, _ in events)
    if halved:
        message += f" ({halved} window(s) halved)"
    if remarched:
        message += "; the last window failed after the S/8 warm-up windows and was re-marched at full S"
    if skipped:
        message += "; no error replicas: error_bars_if declined them"
    if converged and settings.error_replicas and failed:
        usable = len(replica_iterations) - failed
        # the reason of the last failure, so that the message says why (replicas iterate the whole grid at
        # S/B samples from the fixed point: on long horizons they can stall at max_iter or blow up)
        why = f"; last failure: {replica_reason}" if replica_reason else ""
        message += (f"; Monte Carlo error bars from {usable} replicas ({failed} replaced: blew up or did not "
                    f"converge{why})" if sem is not None else
                    f"; no Monte Carlo error bars: {failed} of {len(replica_iterations)} replicas did not converge "
                    f"at S/{settings.error_replicas} = {(settings.samples // settings.error_replicas) // 4 * 4} "
                    f"samples each{why}")
    idx = np.arange(tw.size)
    if pooled and mean is not None:
        train_loss, decomposition, cov = mean["train_loss"], mean["decomposition"], mean["cov"]
        overlap = problem.curve_overlap(mean["overlap"])
        message += f"; curves: mean of {len(replica_iterations) - failed + 1} RQMC randomisations of {main_samples} samples"
    else:
        train_loss, decomposition = estimate.train_loss, problem.decomposition(state.cov, state.overlap)
        overlap, cov = problem.curve_overlap(state.overlap), state.cov[idx, idx]
        if pooled:
            message += f"; curves: one RQMC randomisation of {main_samples} samples (no usable replicas)"
    extras = {
        "C_w": state.cov,
        "R_w": _response_density(state.chi, tw),
        "C_g": estimate.cov_g,
        "R_g": estimate.response,
        "r_star": estimate.r_star,
    }
    if state.overlap.ndim == 3:
        extras["overlap_matrix"] = mean["overlap"] if pooled and mean is not None else state.overlap
        if sem is not None:
            extras["overlap_matrix_sem"] = sem["overlap"]
    group_size = group.order
    return LearningCurves(
        kind="dmft", t=tw, train_loss=train_loss, test_loss=decomposition.sum(axis=-1),
        overlap=overlap, cov=cov, decomposition=decomposition,
        parameters=problem.attrs(),
        settings={**asdict(settings), "dt": float(t[1] - t[0]), "t_max": float(t[-1]), "grid_points": int(t.size),
                  "newton_failures": estimate.newton_failures, "symmetry_group_order": group_size,
                  "symmetry_removed": outcome.symmetry_removed, "windows_halved": halved,
                  "remarched_at_full_samples": remarched,
                  "replicas_failed": failed, "replica_iterations": replica_iterations,
                  "samples_per_solve": main_samples, "pooled_replicas": bool(pooled and mean is not None),
                  "union_of_replicas_used": union is not None, "error_bars_skipped": skipped,
                  "two_level_used": outcome.two_level,
                  # the partial sums over samples are split by thread: another thread count changes
                  # the curves at rounding level (~1e-15), the same count reproduces them bit for bit
                  "numba_threads": numba.get_num_threads() if settings.backend == "numba" else None},
        converged=converged, iterations=iterations, residual=residual,
        residual_history=np.array(history), seconds=time.perf_counter() - start_time, message=message,
        extras=extras,
        train_loss_sem=None if sem is None else sem["train_loss"],
        test_loss_sem=None if sem is None else sem["test_loss"],
        overlap_sem=None if sem is None else problem.curve_overlap(sem["overlap"]),
        cov_sem=None if sem is None else sem["cov"],
    )


def solve_committee_dmft(model, alpha: float, t: np.ndarray, **options) -> LearningCurves:
    """Finite-α DMFT of a general committee (theory.md §10.7): ``solve_dmft(CommitteeProblem(model, alpha), t)``.

    Parameters
    ----------
    model : dmft.committee_online.CommitteeModel
        Student (``quadratic``, ``linear``, ``erf`` or ``tanh``), teacher and initial overlaps.
    alpha : float
        P/D, finite.
    t : ndarray
        Time grid (theory time).
    **options
        Fields of :class:`SolverSettings`.
    """
    return solve_dmft(CommitteeProblem(model, alpha), t, **options)
