"""The one result type shared by theory (online ODE, DMFT) and simulation.

Modelled on ``scipy.integrate.solve_ivp``: failure is data (``success``/``converged``,
``message``, ``residual``), never a silent NaN curve. ``dmft.solve`` and
``empirical.train_committee`` both return :class:`LearningCurves`, so plotting, storing and
comparing never care which side produced a curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

__all__ = ["LearningCurves", "DECOMPOSITION_TERMS"]

#: Names of the three test-loss components (theory.md §2.3), in the order of ``decomposition``.
DECOMPOSITION_TERMS = ("variance", "alignment", "linear")


@dataclass(frozen=True)
class LearningCurves:
    """Train/test learning curves and order parameters against theory time t = η₀·step/D.

    Attributes
    ----------
    kind : str
        What produced the curves: ``"online"``, ``"dmft"``, ``"simulation"``, ``"lazy"``.
    t : ndarray, shape (T,)
        Theory time.
    train_loss, test_loss : ndarray, shape (T,)
        Mean squared errors (no ½). The test loss is the exact population value.
    overlap : ndarray, shape (T, N)
        m(t) = W(t)β/D.
    cov : ndarray, shape (T, N, N)
        Q(t) = C_w(t,t) = W(t)W(t)ᵀ/D.
    decomposition : ndarray, shape (T, 3)
        Test-loss components (variance, alignment, linear), theory.md §2.3; they sum to
        ``test_loss``.
    parameters : Mapping
        The model parameters (``ModelParameters.as_attrs()``).
    settings : Mapping
        Numerical settings (time step, samples, seed, backend, ...).
    converged : bool
        Whether the computation met its tolerance (always True for a finished simulation).
    iterations : int
        Fixed-point iterations (1 for the online ODE, the number of steps for a simulation).
    residual : float
        Final sup-norm residual of the fixed point (0 where not applicable).
    residual_history : ndarray, shape (iterations,)
        Residual after each iteration.
    seconds : float
        Wall time.
    message : str
        Human-readable termination reason.
    extras : Mapping
        Further named arrays (two-time order parameters, spreads over seeds, ...).
    train_loss_sem, test_loss_sem : ndarray, shape (T,), or None
        Monte Carlo standard error of each curve (DMFT: from independent replica solves,
        theory.md §9.3); ``None`` where the curve carries none.
    overlap_sem : ndarray, shape (T, N), or None
    cov_sem : ndarray, shape (T, N, N), or None
    """

    kind: str
    t: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    overlap: np.ndarray
    cov: np.ndarray
    decomposition: np.ndarray
    parameters: Mapping[str, Any]
    settings: Mapping[str, Any] = field(default_factory=dict)
    converged: bool = True
    iterations: int = 1
    residual: float = 0.0
    residual_history: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seconds: float = 0.0
    message: str = ""
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    train_loss_sem: np.ndarray | None = None
    test_loss_sem: np.ndarray | None = None
    overlap_sem: np.ndarray | None = None
    cov_sem: np.ndarray | None = None

    #: Names of the optional standard-error fields and the field each one belongs to.
    SEM_FIELDS = {"train_loss_sem": "train_loss", "test_loss_sem": "test_loss",
                  "overlap_sem": "overlap", "cov_sem": "cov"}

    def __post_init__(self) -> None:
        t = np.asarray(self.t, dtype=float)
        T = t.shape[0]
        for name in ("train_loss", "test_loss"):
            arr = np.asarray(getattr(self, name), dtype=float)
            if arr.shape != (T,):
                raise ValueError(f"{name} must have shape ({T},), got {arr.shape}")
            object.__setattr__(self, name, arr)
        overlap = np.asarray(self.overlap, dtype=float)
        if overlap.ndim != 2 or overlap.shape[0] != T:
            raise ValueError(f"overlap must have shape ({T}, N), got {overlap.shape}")
        n = overlap.shape[1]
        cov = np.asarray(self.cov, dtype=float)
        if cov.shape != (T, n, n):
            raise ValueError(f"cov must have shape ({T}, {n}, {n}), got {cov.shape}")
        decomposition = np.asarray(self.decomposition, dtype=float)
        if decomposition.shape != (T, 3):
            raise ValueError(f"decomposition must have shape ({T}, 3), got {decomposition.shape}")
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "overlap", overlap)
        object.__setattr__(self, "cov", cov)
        object.__setattr__(self, "decomposition", decomposition)
        object.__setattr__(self, "residual_history", np.asarray(self.residual_history, dtype=float))
        object.__setattr__(self, "parameters", dict(self.parameters))
        object.__setattr__(self, "settings", dict(self.settings))
        object.__setattr__(self, "extras", {k: np.asarray(v) for k, v in dict(self.extras).items()})
        for name, of in self.SEM_FIELDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            arr = np.asarray(value, dtype=float)
            expected = getattr(self, of).shape
            if arr.shape != expected:
                raise ValueError(f"{name} must have shape {expected}, got {arr.shape}")
            object.__setattr__(self, name, arr)

    @property
    def success(self) -> bool:
        """Alias of ``converged`` (``solve_ivp`` naming)."""
        return self.converged

    @property
    def gap(self) -> np.ndarray:
        """Generalisation gap E_test(t) − E_train(t)."""
        return self.test_loss - self.train_loss

    def summary(self) -> dict:
        """Machine-readable summary (the ``--json`` output of the CLI).

        Curves as lists; with a committee teacher also the full overlap matrix R(t), shape
        (T, N, M), as ``overlap_matrix`` (and its Monte Carlo error ``overlap_matrix_sem`` where the
        DMFT's replicas give one), since ``overlap`` keeps only R_{i, i mod M}.
        """

        def _clean(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        # A committee teacher (M units): the full R(t) (T, N, M) beside the (T, N) ``overlap``
        matrices = {name: np.asarray(self.extras[name]).tolist() for name in ("overlap_matrix", "overlap_matrix_sem")
                    if name in self.extras}
        return {
            "kind": self.kind,
            "converged": bool(self.converged),
            "iterations": int(self.iterations),
            "residual": _clean(self.residual),
            "seconds": float(self.seconds),
            "message": self.message,
            "parameters": self.parameters,
            "settings": self.settings,
            "t": self.t.tolist(),
            "train_loss": self.train_loss.tolist(),
            "test_loss": self.test_loss.tolist(),
            "overlap": self.overlap.tolist(),
            **{name: getattr(self, name).tolist() for name in ("train_loss_sem", "test_loss_sem", "overlap_sem")
               if getattr(self, name) is not None},
            **matrices,
            "final": {
                "t": float(self.t[-1]),
                "train_loss": float(self.train_loss[-1]),
                "test_loss": float(self.test_loss[-1]),
                "overlap": self.overlap[-1].tolist(),
                **{name: value[-1] for name, value in matrices.items() if name == "overlap_matrix"},
            },
        }
