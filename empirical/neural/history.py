"""Training histories of the neural grokking systems.

Every neural system (Power et al.'s transformer, the modular MLP, Nanda's one-layer transformer,
the student–teacher MLP, the digit MLP) returns a :class:`TrainingHistory`: logged steps, train
and validation loss and accuracy, and the parameter norm. ``comparisons.store.write_history``
stores it with these fields as they are (docs/hdf5_schema.md, record type "history").

:meth:`TrainingHistory.to_curves` views it as the package's curve type
:class:`dmft.result.LearningCurves`, for code that overlays any kind of run (and the way files of
schema version 1 stored it):

==============================  =============================================================
``LearningCurves`` field        meaning for a neural run
==============================  =============================================================
``kind``                        ``"neural:<system>"`` (e.g. ``"neural:transformer"``)
``t``                           optimiser step (the logged steps; NOT theory time η₀·step/D)
``train_loss`` / ``test_loss``  the system's own training objective on the full training set
                                / on the validation set (cross-entropy or MSE, see the system)
``overlap`` (T, 1)              the total parameter norm ‖θ‖₂ (width 1; there is no teacher
                                overlap for these systems)
``cov`` (T, 1, 1)               ‖θ‖₂², the squared norm
``decomposition`` (T, 3)        NaN (the committee-machine decomposition does not apply)
``extras``                      ``train_accuracy``, ``val_accuracy`` (fractions in [0, 1]),
                                ``param_norm`` and system-specific series (``step_loss``: the
                                mini-batch training loss of every step, ``paramnorm_<tensor>``)
==============================  =============================================================

Accuracies are stored as fractions (Power et al. log percent; multiply by 100 to compare).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from dmft.result import LearningCurves

__all__ = ["TrainingHistory", "history_from_curves"]

_CORE = ("train_accuracy", "val_accuracy", "param_norm")


@dataclass(frozen=True)
class TrainingHistory:
    """Logged metrics of one training run of a neural system.

    Attributes
    ----------
    system : str
        ``"transformer"``, ``"modular_mlp"``, ``"nanda"``, ``"student_teacher"``, ``"digits"``.
    step : ndarray, shape (T,)
        Optimiser steps at which the metrics were logged (0 = before the first update).
    train_loss, val_loss : ndarray, shape (T,)
        Training objective on the whole training / validation set.
    train_accuracy, val_accuracy : ndarray, shape (T,)
        Fractions in [0, 1] (for the student–teacher regression: fraction of test points with
        squared error below the accuracy threshold).
    param_norm : ndarray, shape (T,)
        ‖θ‖₂ over all trained parameters.
    parameters : Mapping
        The system's configuration (``Config.as_attrs()``).
    settings : Mapping
        Seed, device, steps, checkpoint path, ...
    seconds : float
        Wall time of the (last) training call.
    message : str
    extras : Mapping[str, ndarray]
        Further series; series on another time axis carry their own axis (``step_loss`` is per
        step 1..S; ``epoch_*`` series go with ``epoch_step``).
    """

    system: str
    step: np.ndarray
    train_loss: np.ndarray
    val_loss: np.ndarray
    train_accuracy: np.ndarray
    val_accuracy: np.ndarray
    param_norm: np.ndarray
    parameters: Mapping[str, Any]
    settings: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    message: str = ""
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        step = np.asarray(self.step, dtype=np.int64)
        if step.ndim != 1:
            raise ValueError(f"step must be one-dimensional, got shape {step.shape}")
        object.__setattr__(self, "step", step)
        for name in ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "param_norm"):
            arr = np.asarray(getattr(self, name), dtype=float)
            if arr.shape != step.shape:
                raise ValueError(f"{name} must have shape {step.shape}, got {arr.shape}")
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "parameters", dict(self.parameters))
        object.__setattr__(self, "settings", dict(self.settings))
        object.__setattr__(self, "extras", {k: np.asarray(v) for k, v in dict(self.extras).items()})

    def diverged_at(self) -> int | None:
        """First step at which the run's losses or parameter norm are non-finite (NaN or inf).

        Looks at the logged series and at the mini-batch loss of every step (``extras["step_loss"]``,
        steps 1..S). Returns None for a run that stayed finite.
        """
        steps = []
        logged = ~(np.isfinite(self.train_loss) & np.isfinite(self.val_loss) & np.isfinite(self.param_norm))
        if logged.any():
            steps.append(int(self.step[np.argmax(logged)]))
        step_loss = np.asarray(self.extras.get("step_loss", ()), dtype=float).ravel()
        if step_loss.size and not np.all(np.isfinite(step_loss)):
            steps.append(int(np.argmin(np.isfinite(step_loss))) + 1)
        return min(steps) if steps else None

    def to_curves(self) -> LearningCurves:
        """The run as :class:`LearningCurves` (see the module docstring for the field mapping)."""
        T = self.step.size
        extras = {"train_accuracy": self.train_accuracy, "val_accuracy": self.val_accuracy,
                  "param_norm": self.param_norm, **self.extras}
        return LearningCurves(
            kind=f"neural:{self.system}",
            t=self.step.astype(float),
            train_loss=self.train_loss,
            test_loss=self.val_loss,
            overlap=self.param_norm[:, None],
            cov=(self.param_norm ** 2)[:, None, None],
            decomposition=np.full((T, 3), np.nan),
            parameters=self.parameters,
            settings={**self.settings, "time_axis": "optimiser step", "overlap_meaning": "parameter norm"},
            converged=True,
            iterations=int(self.step[-1]) if T else 0,
            seconds=self.seconds,
            message=self.message,
            extras=extras,
        )

    def summary(self) -> dict:
        """JSON-ready summary: configuration, final metrics and the logged series."""
        def clean(values):
            return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=float)]

        return {
            "system": self.system,
            "parameters": self.parameters,
            "settings": self.settings,
            "seconds": self.seconds,
            "message": self.message,
            "step": self.step.tolist(),
            "train_loss": clean(self.train_loss),
            "val_loss": clean(self.val_loss),
            "train_accuracy": clean(self.train_accuracy),
            "val_accuracy": clean(self.val_accuracy),
            "param_norm": clean(self.param_norm),
            "final": {
                "step": int(self.step[-1]),
                "train_loss": float(self.train_loss[-1]),
                "val_loss": float(self.val_loss[-1]),
                "train_accuracy": float(self.train_accuracy[-1]),
                "val_accuracy": float(self.val_accuracy[-1]),
                "param_norm": float(self.param_norm[-1]),
            },
        }


def history_from_curves(curves: LearningCurves) -> TrainingHistory:
    """Inverse of :meth:`TrainingHistory.to_curves` (for runs read back from a store)."""
    if not curves.kind.startswith("neural:"):
        raise ValueError(f"curves.kind must start with 'neural:', got {curves.kind!r}")
    extras = dict(curves.extras)
    core = {k: extras.pop(k) for k in _CORE}
    settings = {k: v for k, v in curves.settings.items() if k not in ("time_axis", "overlap_meaning")}
    return TrainingHistory(
        system=curves.kind.split(":", 1)[1], step=np.rint(curves.t).astype(np.int64),
        train_loss=curves.train_loss, val_loss=curves.test_loss, parameters=curves.parameters,
        settings=settings, seconds=curves.seconds, message=curves.message, extras=extras, **core,
    )
