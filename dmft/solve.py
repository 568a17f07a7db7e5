"""``dmft.solve``: one call, one :class:`~dmft.result.LearningCurves`.

Dispatches on the sample ratio: ``alpha = math.inf`` integrates the online ODE
(theory.md §4.3); a finite ``alpha`` runs the DMFT fixed-point solver (theory.md §4).
"""

from __future__ import annotations

import math

import numpy as np

from .online import solve_online
from .parameters import ModelParameters, check_positive

__all__ = ["solve", "time_grid", "DEFAULT_T_MAX", "DEFAULT_DT"]

#: Default final time (theory units t = η₀·step/D): long enough for the default problem
#: (α = 10, ε = 0.1, κ = 1, |m(0)| = 0.1) to grok; the escape estimate of §4.5 gives t* ≈ 11.
DEFAULT_T_MAX = 40.0
#: Default time step of the DMFT grid (theory.md §0.1: dt = 0.25 moved curves by ≤ 0.6 %).
DEFAULT_DT = 0.25


def time_grid(t_max: float, dt: float) -> np.ndarray:
    """Uniform grid 0, dt, …, t_max (t_max rounded up to a whole number of steps)."""
    t_max = check_positive("t_max", t_max)
    dt = check_positive("dt", dt)
    if dt > t_max:
        raise ValueError(f"dt must lie in (0, t_max={t_max:g}], got {dt!r}")
    steps = int(math.ceil(t_max / dt - 1e-9))
    return dt * np.arange(steps + 1)


def solve(
    alpha: float,
    epsilon: float,
    scale: float = 1.0,
    width: int = 2,
    t_max: float = DEFAULT_T_MAX,
    init_overlap=None,
    init_cov=None,
    center: bool = False,
    rho: float = 1.0,
    dt: float = DEFAULT_DT,
    **solver_options,
):
    """Learning curves of the committee machine from theory.

    Parameters
    ----------
    alpha : float
        Sample ratio P/D in (0, inf]; ``math.inf`` gives the online (Saad–Solla) ODE.
    epsilon : float
        Quadratic coefficient ε of φ(h) = h + (ε/2)h².
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
        Time step of the output grid (and of the DMFT discretisation).
    **solver_options
        Options of the finite-α DMFT solver (``samples``, ``response_samples``, ``damping``,
        ``tol``, ``max_iter``, ``seed``, ``backend``, ``progress``, ...); see
        :func:`dmft.dmft_solver.solve_dmft`.

    Returns
    -------
    LearningCurves
    """
    params = ModelParameters(
        alpha=alpha, epsilon=epsilon, scale=scale, width=width, rho=rho,
        init_overlap=init_overlap, init_cov=init_cov, center=center,
    )
    t = time_grid(t_max, dt)
    if params.is_online:
        return solve_online(params, t)
    from .dmft_solver import solve_dmft

    return solve_dmft(params, t, **solver_options)
