"""``dmft.solve``: one call, one :class:`~dmft.result.LearningCurves`.

Dispatches on the sample ratio: ``alpha = math.inf`` integrates the online ODE
(theory.md §4.3); a finite ``alpha`` runs the DMFT fixed-point solver (theory.md §4).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

from .online import solve_online
from .weight_side import check_grid
from .parameters import InvalidParameterError, ModelParameters, check_int_at_least, check_positive, resolve_epsilon

__all__ = ["solve", "time_grid", "log_time_grid", "default_grid_points", "default_grid", "make_grid", "GRIDS",
           "DEFAULT_T_MAX", "DEFAULT_DT", "LOG_GRID_GROWTH"]

#: Default final time (theory units t = η₀·step/D): long enough for the default problem
#: (α = 10, ε = 0.1, κ = 1, |m(0)| = 0.1) to grok; the escape estimate of §4.5 gives t* ≈ 11.
DEFAULT_T_MAX = 40.0
#: Default time step of the DMFT grid (theory.md §0.1: dt = 0.25 moved curves by ≤ 0.6 %).
DEFAULT_DT = 0.25


#: Grid kinds of :func:`solve` (theory.md §9.1).
GRIDS = ("uniform", "log")
#: Relative step λ of the default log grid: the step at time t is ≈ dt + λ·t (theory.md §9.1).
LOG_GRID_GROWTH = 0.01


def time_grid(t_max: float, dt: float) -> np.ndarray:
    """Uniform grid 0, dt, 2dt, … ending exactly at t_max.

    When dt does not divide t_max the last step is the remainder (the trapezoid weights of
    the solver take any increasing grid); a remainder below 1e-9·dt is absorbed instead.
    """
    t_max = check_positive("t_max", t_max)
    dt = check_positive("dt", dt)
    if dt > t_max:
        raise InvalidParameterError(f"dt must lie in (0, t_max={t_max:g}], got {dt!r}")
    if t_max / dt > MAX_GRID_POINTS:
        raise InvalidParameterError(f"t_max/dt must be at most {MAX_GRID_POINTS:g} (grid points), got "
                                    f"{t_max:g}/{dt:g} = {t_max / dt:.3g}: raise dt or use the log grid")
    whole = int(math.floor(t_max / dt + 1e-9))
    t = dt * np.arange(whole + 1)
    if t_max - t[-1] > 1e-9 * dt:
        t = np.append(t, t_max)
    else:
        t[-1] = t_max
    return t


#: Most points of a uniform grid (an output grid of 10^6 times is ~8 MB per curve).
MAX_GRID_POINTS = 1e6


def default_grid_points(t_max: float, dt: float = DEFAULT_DT, growth: float = LOG_GRID_GROWTH) -> int:
    """Points of the default log grid: steps dt near t = 0 growing like dt + growth·t.

    The grid t_k = τ(e^{λk} − 1) with τ = dt/λ has step ≈ dt + λ t_k; it reaches t_max after
    1 + ln(1 + t_max/τ)/λ steps (theory.md §9.1; λ = 0.01 was chosen by the accuracy check in
    docs/results/long_horizon.md).
    """
    t_max = check_positive("t_max", t_max)
    dt = check_positive("dt", dt)
    tau = dt / growth
    return max(2, int(math.ceil(1 + math.log1p(t_max / tau) / growth)) + 1)


def log_time_grid(t_max: float, points: int, dt: float = DEFAULT_DT) -> np.ndarray:
    """Geometric grid of ``points`` points from 0 to t_max whose first step is dt.

    The steps are dt·r^k with r ≥ 1 chosen so that they add up to t_max exactly. When
    ``points`` uniform steps of at most dt already reach t_max, the grid is uniform.
    """
    t_max = check_positive("t_max", t_max)
    dt = check_positive("dt", dt)
    points = check_int_at_least("grid_points", points, 2)
    if points > MAX_GRID_POINTS:
        raise InvalidParameterError(f"grid_points must be at most {MAX_GRID_POINTS:g}, got {points}")
    if dt > t_max:
        raise InvalidParameterError(f"dt must lie in (0, t_max={t_max:g}], got {dt!r}")
    intervals = points - 1
    if dt * intervals >= t_max:
        return np.linspace(0.0, t_max, points)
    if intervals < 2:
        raise InvalidParameterError(f"grid_points must be at least 3 for a log grid whose first step dt = {dt:g} "
                                    f"is shorter than t_max = {t_max:g}, got {points}")

    def excess(log_r):
        return dt * math.expm1(intervals * log_r) / math.expm1(log_r) - t_max

    upper = 50.0 / intervals                  # step ratio r = e^50 per interval: beyond any sensible grid
    if excess(upper) < 0:
        raise InvalidParameterError(f"grid_points = {points} cannot span t_max/dt = {t_max / dt:.3g} with a "
                                    f"geometric grid (its last step would exceed e^50 times the first): raise "
                                    f"grid_points or dt")
    log_r = brentq(excess, 1e-12, upper, xtol=1e-15, rtol=1e-15)
    steps = dt * np.exp(log_r * np.arange(intervals))
    t = np.concatenate([[0.0], np.cumsum(steps)])
    t *= t_max / t[-1]                       # end point (a relative change ~1e-15) ...
    t[-1] = t_max                            # ... exactly: the product alone missed it by an ulp (53.6, 682.51)
    return t


def default_grid(alpha: float) -> str:
    """The solver's default grid: ``"log"`` at finite α, ``"uniform"`` at α = ∞ (theory.md §9.1).

    At finite α the cost of an iteration grows like the number of points squared, and the log grid
    is as accurate as the uniform one of the same first step (measured, theory.md §9.1); at α = ∞
    the grid only sets the output times of the online ODE, so the uniform one draws smoother curves.
    """
    return "uniform" if math.isinf(check_positive("alpha", alpha, allow_inf=True)) else "log"


def make_grid(t_max: float = DEFAULT_T_MAX, dt: float = DEFAULT_DT, grid: str = "uniform",
              grid_points: int | None = None, times=None) -> np.ndarray:
    """The time grid of a solve: uniform, log (geometric steps) or explicit (theory.md §9.1).

    Parameters
    ----------
    t_max : float
        Final time (ignored when ``times`` is given).
    dt : float
        Uniform step, or the first step of the log grid.
    grid : {"uniform", "log"}
    grid_points : int, optional
        Points of the log grid (default :func:`default_grid_points`); refused with a uniform grid.
    times : array_like, optional
        Explicit grid 0 = t_0 < t_1 < …; overrides the other arguments.
    """
    if times is not None:
        return check_grid(times, name="times")
    if grid not in GRIDS:
        raise InvalidParameterError(f"grid must be one of {GRIDS}, got {grid!r}")
    if grid == "uniform":
        if grid_points is not None:
            raise InvalidParameterError("grid_points applies to grid='log' only; a uniform grid is set by dt and t_max")
        return time_grid(t_max, dt)
    points = default_grid_points(t_max, dt) if grid_points is None else grid_points
    return log_time_grid(t_max, points, dt)


def solve(
    alpha: float,
    epsilon: float | None = None,
    scale: float = 1.0,
    width: int = 2,
    t_max: float = DEFAULT_T_MAX,
    init_overlap=None,
    init_cov=None,
    center: bool = False,
    rho: float = 1.0,
    dt: float = DEFAULT_DT,
    grid: str | None = None,
    grid_points: int | None = None,
    times=None,
    activation="quadratic",
    target: str = "square",
    teacher_width: int = 1,
    teacher_scale: float = 1.0,
    teacher_activation=None,
    teacher_cov=None,
    noise: float = 0.0,
    lr=None,
    **solver_options,
):
    """Learning curves of the committee machine from theory.

    Parameters
    ----------
    alpha : float
        Sample ratio P/D in (0, inf]; ``math.inf`` gives the online (Saad–Solla) ODE.
    epsilon : float, optional
        Quadratic coefficient ε of φ(h) = h + (ε/2)h². Required with the quadratic activation
        (the default student, or a quadratic teacher); with other activations it has no meaning:
        leave it out (0), a non-zero value is refused (:func:`dmft.parameters.resolve_epsilon`).
    scale : float, default 1
        Output scale κ (the paper's laziness "α").
    width : int, default 2
        Hidden units N.
    t_max : float, default 40
        Final time, in units t = η₀·step/D.
    init_overlap : sequence of float, optional
        m(0); default ±0.1 alternating (planted, typical of D = 100).
    init_cov : N×N array, optional
        C_w(0,0); default planted, δ_ij + (1 − δ_ij) m_i m_j/ρ.
    center : bool, default False
        Train f(x; W) − f(x; W(0)).
    rho : float, default 1
        Teacher norm |β|²/D.
    dt : float, default 0.25
        Time step of the uniform grid, or the first step of the log grid.
    grid : {"uniform", "log"}, optional
        Time grid of the output and of the DMFT discretisation (theory.md §9.1). ``"log"``
        keeps the step dt near t = 0 and lets it grow like dt + 0.01·t: long horizons
        (t_max = 300–1000) at the cost of a few hundred points. Default: ``"log"`` at finite α,
        ``"uniform"`` at α = ∞ (where the grid only sets the output times of the ODE). The
        finite-α default is the log grid because it is as accurate as the uniform grid at the
        cost of fewer points (theory.md §9.1, "The default grid"): against a uniform dt = 0.125
        solve, both lie within 1.7 combined Monte Carlo standard errors for t ≥ 2, and both
        carry the same error of the first step dt at t < 2; the default problem takes 98 points
        instead of 161 and ~2.3× less time.
    grid_points : int, optional
        Points of the log grid (default :func:`default_grid_points`, e.g. 98 for t_max = 40,
        259 for t_max = 300); given without ``grid``, it selects the log grid also at α = ∞.
    times : array_like, optional
        Explicit increasing grid starting at 0; overrides ``t_max``, ``dt`` and ``grid``.
    activation, target, teacher_width, teacher_scale, teacher_activation, teacher_cov, noise, lr
        The general model family (see :class:`dmft.committee_online.CommitteeModel`):
        student φ (``"quadratic"``, ``"erf"``, ``"relu"`` (α = ∞ only), ``"smoothed_relu:<width>"``
        (the Gaussian-smoothed ReLU, any α; theory.md §10.9), ``"tanh"``, ``"linear"`` or an
        :class:`~dmft.activations.Activation`), target ``"square"`` or ``"committee"``, teacher
        width M, scale κ*, activation φ*, overlaps T, output-noise variance σ², and the online-SGD
        learning rate η₀ (None: gradient flow). With any of them off its default,
        ``init_overlap`` is the N×M matrix R(0); ``alpha = math.inf`` integrates the committee ODE
        (theory.md §10), a finite ``alpha`` runs the DMFT with the general data side (§10.7:
        smooth students ``quadratic``, ``linear``, ``erf``, ``tanh``, ``smoothed_relu:<width>``; gradient flow; output
        noise as a frozen σξ per training target, §10.8).
    **solver_options
        Options of the finite-α DMFT solver (``samples``, ``response_samples``, ``damping``,
        ``tol``, ``max_iter``, ``seed``, ``backend``, ``progress``, ...); see
        :func:`dmft.dmft_solver.solve_dmft`.

    Returns
    -------
    LearningCurves
    """
    epsilon = resolve_epsilon(epsilon, activation, target, teacher_activation)
    family = {"activation": (activation, "quadratic"), "target": (target, "square"),
              "teacher_width": (teacher_width, 1), "teacher_scale": (teacher_scale, 1.0),
              "teacher_activation": (teacher_activation, None), "teacher_cov": (teacher_cov, None),
              "noise": (noise, 0.0), "lr": (lr, None)}
    changed = [k for k, (v, d) in family.items() if not (v is d or (isinstance(v, (str, int, float)) and v == d))]
    if grid is None:                    # grid_points alone asks for a log grid, at any α
        grid = "log" if grid_points is not None else default_grid(alpha)
    if changed:
        from .committee_online import CommitteeModel, solve_committee_online

        model = CommitteeModel(
            activation=activation, epsilon=epsilon, scale=scale, width=width, target=target,
            teacher_width=teacher_width, teacher_scale=teacher_scale,
            teacher_activation=teacher_activation, teacher_cov=teacher_cov, rho=rho, noise=noise,
            init_overlap=init_overlap, init_cov=init_cov, lr=lr, center=center,
        )
        t = make_grid(t_max, dt, grid, grid_points, times)
        if math.isinf(check_positive("alpha", alpha, allow_inf=True)):
            if solver_options:
                raise InvalidParameterError(
                    f"{', '.join(sorted(solver_options))}: option(s) of the finite-alpha DMFT solver; "
                    "alpha=inf integrates the online ODE, which takes only the model parameters and the grid")
            return solve_committee_online(model, t)
        from .dmft_solver import solve_committee_dmft

        return solve_committee_dmft(model, alpha, t, **solver_options)
    params = ModelParameters(
        alpha=alpha, epsilon=epsilon, scale=scale, width=width, rho=rho,
        init_overlap=init_overlap, init_cov=init_cov, center=center,
    )
    t = make_grid(t_max, dt, grid, grid_points, times)
    if params.is_online:
        if solver_options:
            raise InvalidParameterError(
                f"{', '.join(sorted(solver_options))}: option(s) of the finite-alpha DMFT solver; "
                "alpha=inf integrates the online ODE, which takes only the model parameters and the grid")
        return solve_online(params, t)
    from .dmft_solver import solve_dmft

    return solve_dmft(params, t, **solver_options)
