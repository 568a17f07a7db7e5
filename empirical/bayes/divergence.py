"""A training run that diverged: its loss or weights became NaN or ±inf, or its kernel broke down.

Every trainer of :mod:`empirical.bayes` checks its losses and weights once per epoch (or
iteration) with :func:`stop_if_diverged` and stops at the first non-finite value with
:class:`TrainingDiverged`, instead of returning curves full of NaN that look like a finished run.
The ``dmft train bayes`` commands turn it into exit code 3, with nothing stored or plotted.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

__all__ = ["TrainingDiverged", "stop_if_diverged", "breakdown_diverges"]


class TrainingDiverged(FloatingPointError):
    """A run whose loss or weights became non-finite at ``step`` (counted from 1) of ``total``.

    Parameters
    ----------
    run : str
        What diverged, e.g. ``"linear regression seed 0"``.
    step, total : int
        The epoch (or iteration) at which it was found, counted from 1, and the planned number.
    what : str
        Which quantity, e.g. ``"non-finite weights"``.
    unit : str
        ``"epoch"`` or ``"iteration"``.
    """

    def __init__(self, run: str, step: int, total: int, what: str, unit: str = "epoch"):
        self.run, self.step, self.total, self.what, self.unit = run, int(step), int(total), what, unit
        super().__init__(f"{run} diverged at {unit} {self.step} of {self.total}: {what}")

    def __reduce__(self):  # picklable (e.g. from a worker process) with its attributes
        return type(self), (self.run, self.step, self.total, self.what, self.unit)


def _finite(value) -> bool:
    """Whether every entry of a number, array, torch tensor or sequence of them is finite."""
    if isinstance(value, (list, tuple)):
        return all(_finite(item) for item in value)
    if hasattr(value, "isfinite"):  # a torch tensor (numpy arrays have no such method)
        return bool(value.detach().isfinite().all())
    return bool(np.all(np.isfinite(value)))


def stop_if_diverged(run: str, step: int, total: int, unit: str = "epoch", **values) -> None:
    """Raise :class:`TrainingDiverged` naming the first of ``values`` that is not finite.

    Parameters
    ----------
    run, step, total, unit
        As in :class:`TrainingDiverged` (``step`` counted from 1).
    **values
        Name → number, array, torch tensor or list of tensors (e.g. a model's parameters).
    """
    for name, value in values.items():
        if not _finite(value):
            raise TrainingDiverged(run, step, total, f"non-finite {name.replace('_', ' ')} (NaN or inf)", unit)


@contextmanager
def breakdown_diverges(run: str, step: int, total: int, errors: tuple, unit: str = "iteration"):
    """Turn a linear-algebra failure (``errors``, e.g. a Cholesky of a kernel matrix that lost
    positive definiteness as the hyperparameters ran away) into :class:`TrainingDiverged`."""
    try:
        yield
    except errors as exc:
        reason = " ".join(str(exc).split())[:160]
        raise TrainingDiverged(run, step, total, f"the kernel matrix broke down ({reason})", unit) from exc
