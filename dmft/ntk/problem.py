"""The NTK of the committee machine: the seeded teacher–student problem and the time grid of ``dmft ntk``.

Part of :mod:`dmft.ntk` (the names are re-exported there).
"""

from __future__ import annotations

import math

import numpy as np

from dmft.ntk._checks import _check_target_scale
from dmft.parameters import InvalidParameterError, check_int_at_least, check_positive

__all__ = ["make_problem", "lazy_time_grid"]


def make_problem(dim: int, n_train: int, n_test: int, width: int, *, rho: float, target_scale: float, seed: int):
    """Seeded teacher–student problem of convention A (theory.md §0, §1.2–1.3).

    W₀_ij ~ N(0, 1); β ~ N(0, I_D) rescaled so that |β|²/D = ρ exactly; x ~ N(0, I_D/D);
    y = s(β·x)². Four independent streams are spawned from ``numpy.random.SeedSequence(seed)``
    (weights, teacher, training inputs, test inputs), so changing P leaves W₀ and β unchanged.

    Returns
    -------
    dict with ``weights0`` (N, D), ``teacher`` (D,), ``x_train`` (P, D), ``y_train`` (P,),
    ``x_test`` (Q, D), ``y_test`` (Q,).
    """
    dim = check_int_at_least("dim (input dimension D)", dim, 1)
    n_train = check_int_at_least("n_train (training samples P)", n_train, 1)
    n_test = check_int_at_least("n_test (test samples)", n_test, 1)
    width = check_int_at_least("width (hidden units N)", width, 1)
    rho = check_positive("rho (teacher norm |beta|^2/D)", rho)
    target_scale = _check_target_scale(target_scale)
    seed = check_int_at_least("seed", seed, 0)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    W0 = streams[0].normal(size=(width, dim))
    beta = streams[1].normal(size=dim)
    beta *= math.sqrt(rho * dim) / np.linalg.norm(beta)
    x_train = streams[2].normal(size=(n_train, dim)) / math.sqrt(dim)
    x_test = streams[3].normal(size=(n_test, dim)) / math.sqrt(dim)
    return {
        "weights0": W0,
        "teacher": beta,
        "x_train": x_train,
        "y_train": target_scale * (x_train @ beta) ** 2,
        "x_test": x_test,
        "y_test": target_scale * (x_test @ beta) ** 2,
    }


def lazy_time_grid(t_min: float, t_max: float, points: int, *, dim: int, lr: float | None) -> np.ndarray:
    """t = 0 followed by ``points − 1`` log-spaced times in [t_min, t_max].

    With a learning rate the times are rounded to whole gradient steps (multiples of lr/D)
    and duplicates dropped; ``t_max`` must then be at least one step.
    """
    t_min = check_positive("t_min", t_min)
    t_max = check_positive("t_max", t_max)
    if t_min >= t_max:
        raise InvalidParameterError(f"t_min must lie in (0, t_max={t_max:g}), got {t_min!r}")
    points = check_int_at_least("points", points, 2)
    dim = check_int_at_least("dim (input dimension D)", dim, 1)
    grid = np.concatenate([[0.0], np.geomspace(t_min, t_max, points - 1)])
    if lr is not None:
        lr = check_positive("lr (eta0)", lr)
        step = lr / dim
        if t_max < step:
            raise InvalidParameterError(f"t_max must be at least one gradient step lr/D = {step:g} when lr is given "
                                        f"(t = eta0*step/D), got {t_max:g}")
        grid = np.unique(np.round(grid / step)) * step
    return grid
