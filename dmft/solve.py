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
    activation, target, teacher_width, teacher_scale, teacher_activation, teacher_cov, noise, lr
        The general model family (online limit only; see :class:`dmft.committee_online.CommitteeModel`):
        student φ (``"quadratic"``, ``"erf"``, ``"relu"``, ``"tanh"``, ``"linear"`` or an
        :class:`~dmft.activations.Activation`), target ``"square"`` or ``"committee"``, teacher
        width M, scale κ*, activation φ*, overlaps T, output-noise variance σ², and the online-SGD
        learning rate η₀ (None: gradient flow). With any of them off its default, ``alpha`` must
        be ``math.inf`` and ``init_overlap`` is the N×M matrix R(0).
    **solver_options
        Options of the finite-α DMFT solver (``samples``, ``response_samples``, ``damping``,
        ``tol``, ``max_iter``, ``seed``, ``backend``, ``progress``, ...); see
        :func:`dmft.dmft_solver.solve_dmft`.

    Returns
    -------
    LearningCurves
    """
    family = {"activation": (activation, "quadratic"), "target": (target, "square"),
              "teacher_width": (teacher_width, 1), "teacher_scale": (teacher_scale, 1.0),
              "teacher_activation": (teacher_activation, None), "teacher_cov": (teacher_cov, None),
              "noise": (noise, 0.0), "lr": (lr, None)}
    changed = [k for k, (v, d) in family.items() if not (v is d or (isinstance(v, (str, int, float)) and v == d))]
    if changed:
        if not math.isinf(alpha):
            raise ValueError(
                f"{changed[0]}={family[changed[0]][0]!r} needs alpha=math.inf: the finite-alpha solver "
                "supports only the quadratic model so far (activation='quadratic', target='square')"
            )
        if center:
            raise ValueError("center=True is not supported for the general model family yet")
        from .committee_online import CommitteeModel, solve_committee_online

        model = CommitteeModel(
            activation=activation, epsilon=epsilon, scale=scale, width=width, target=target,
            teacher_width=teacher_width, teacher_scale=teacher_scale,
            teacher_activation=teacher_activation, teacher_cov=teacher_cov, rho=rho, noise=noise,
            init_overlap=init_overlap, init_cov=init_cov, lr=lr,
        )
        return solve_committee_online(model, time_grid(t_max, dt))
    params = ModelParameters(
        alpha=alpha, epsilon=epsilon, scale=scale, width=width, rho=rho,
        init_overlap=init_overlap, init_cov=init_cov, center=center,
    )
    t = time_grid(t_max, dt)
    if params.is_online:
        return solve_online(params, t)
    from .dmft_solver import solve_dmft

    return solve_dmft(params, t, **solver_options)
