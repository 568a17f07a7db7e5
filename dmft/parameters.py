"""Parameters of the committee-machine learning problem (theory.md §0).

One frozen dataclass, :class:`ModelParameters`, describes the learning problem that the
theory (online ODE, DMFT) and the simulation (``empirical``) share. Every field is validated
on construction; an invalid value raises :class:`InvalidParameterError` (a ``ValueError``)
naming the parameter and its valid range. The CLI turns exactly this type, and no other
``ValueError``, into a one-line error with exit code 2: a ``ValueError`` raised deep inside a
computation (numpy's ``LinAlgError``, say) is a failure of the run, not bad input.

Conventions (theory.md §0, binding): ``alpha`` is the sample ratio P/D (``math.inf`` for the
online limit), ``scale`` the output scale κ, ``epsilon`` the quadratic coefficient of
φ(h) = h + (ε/2)h², ``rho`` = ‖β‖²/D, time t = η₀·step/D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = [
    "InvalidParameterError",
    "ModelParameters",
    "default_init_overlap",
    "planted_init_cov",
    "check_finite",
    "check_positive",
    "check_int_at_least",
    "resolve_epsilon",
]

#: Magnitude of the default planted overlaps: the typical |m_i(0)| ~ D^(-1/2) of a random
#: initialisation at D = 100 (theory.md §0, §4.2 "Init").
DEFAULT_OVERLAP_MAGNITUDE = 0.1


class InvalidParameterError(ValueError):
    """An input parameter is outside its valid range (the message names the parameter).

    Raised by the parameter checks of every layer (:func:`check_finite`, :func:`check_positive`,
    :func:`check_int_at_least`, :class:`ModelParameters`, the solver settings, the CLI); the
    ``dmft`` command line maps this type, and only this type, to exit code 2. A subclass of
    ``ValueError``, so ``except ValueError`` keeps working.
    """


def _as_float(name: str, value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{name} must be a number, got {value!r}") from exc


def check_finite(name: str, value: float) -> float:
    """Return ``float(value)`` or raise :class:`InvalidParameterError` if it is NaN or infinite."""
    value = _as_float(name, value)
    if not math.isfinite(value):
        raise InvalidParameterError(f"{name} must be a finite number, got {value!r}")
    return value


def check_positive(name: str, value: float, *, allow_inf: bool = False) -> float:
    """Return ``float(value)`` or raise unless ``0 < value < inf`` (``<= inf`` if allowed)."""
    value = _as_float(name, value)
    upper = "inf]" if allow_inf else "inf)"
    if math.isnan(value) or value <= 0 or (math.isinf(value) and not allow_inf):
        raise InvalidParameterError(f"{name} must lie in (0, {upper}, got {value!r}")
    return value


def check_int_at_least(name: str, value: int, minimum: int) -> int:
    """Return ``int(value)`` or raise unless it is an integer ``>= minimum``."""
    try:
        ok = not isinstance(value, bool) and int(value) == value and value >= minimum
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise InvalidParameterError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def resolve_epsilon(epsilon, activation="quadratic", target: str = "square", teacher_activation=None) -> float:
    """The quadratic coefficient ε as the model uses it (theory.md §0, §10).

    ε enters only through the quadratic activation φ(h) = h + (ε/2)h², of the student or of
    the teacher of a committee target (``teacher_activation`` None: the student's). Where it is
    used it is required; elsewhere it has no meaning: None gives 0, and a non-zero value is
    refused rather than silently ignored. Raises :class:`InvalidParameterError` naming
    ``epsilon``.
    """
    teacher = activation if teacher_activation is None else teacher_activation
    student_name, teacher_name = (getattr(spec, "name", spec) for spec in (activation, teacher))  # a name or an Activation
    used = student_name == "quadratic" or (target == "committee" and teacher_name == "quadratic")
    if used:
        if epsilon is None:
            raise InvalidParameterError("epsilon is required: the quadratic activation phi(h) = h + (epsilon/2) h^2 "
                                        "needs its epsilon (e.g. epsilon=0.1)")
        return check_finite("epsilon", epsilon)
    if epsilon is not None and check_finite("epsilon", epsilon) != 0:
        raise InvalidParameterError(f"epsilon applies to the quadratic activation only; with activation {student_name!r}"
                                    + (f" and teacher activation {teacher_name!r}" if target == "committee" else "")
                                    + f" leave it out or give 0 (got {epsilon!r})")
    return 0.0


def default_init_overlap(width: int) -> tuple[float, ...]:
    """Default planted overlaps m_i(0) = ±0.1, alternating in sign (theory.md §0).

    A random initialisation at D = 100 has |m_i(0)| ≈ D^(-1/2) = 0.1; alternating signs give
    the committee a zero mean overlap, as the generalising fixed points require (§4.3).
    """
    return tuple(DEFAULT_OVERLAP_MAGNITUDE * (1.0 if i % 2 == 0 else -1.0) for i in range(width))


def planted_init_cov(init_overlap: Sequence[float], rho: float = 1.0) -> np.ndarray:
    """Covariance C_w(0,0) of the planted initialisation (theory.md §0).

    w_i(0) = m_i β/ρ + (1 − m_i²/ρ)^(1/2) z_i with z_i ~ N(0, I_D) independent gives
    C_w(0,0)_ij = δ_ij + (1 − δ_ij) m_i m_j / ρ (the spec's formula at ρ = 1).
    """
    m = np.asarray(init_overlap, dtype=float)
    cov = np.outer(m, m) / rho
    np.fill_diagonal(cov, 1.0)
    return cov


@dataclass(frozen=True)
class ModelParameters:
    """The learning problem shared by theory and simulation (theory.md §0, §1).

    Parameters
    ----------
    alpha : float
        Sample ratio P/D in (0, inf]; ``math.inf`` is the online (Saad–Solla) limit.
    epsilon : float
        Quadratic coefficient ε of φ(h) = h + (ε/2)h², any finite real.
    scale : float
        Output scale κ > 0 (the paper's laziness "α" of its main text).
    width : int
        Number of hidden units N >= 1.
    rho : float
        Teacher norm ρ = ‖β‖²/D > 0.
    init_overlap : tuple of float, optional
        Initial overlaps m(0) = W(0)β/D, length N; default ±0.1 alternating.
    init_cov : tuple of tuples, optional
        Initial covariance C_w(0,0) = W(0)W(0)ᵀ/D, N×N; default the planted covariance
        δ_ij + (1 − δ_ij) m_i m_j/ρ. Together with m(0) and ρ it must form a positive-definite
        joint covariance of (w(0), β).
    center : bool
        Train the centred predictor f(x; W) − f(x; W(0)) (theory.md §1.4, §4.2).
    """

    alpha: float
    epsilon: float
    scale: float = 1.0
    width: int = 2
    rho: float = 1.0
    init_overlap: tuple[float, ...] | None = None
    init_cov: tuple[tuple[float, ...], ...] | None = None
    center: bool = False
    _validated: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "alpha", check_positive("alpha (P/D)", self.alpha, allow_inf=True))
        set_(self, "epsilon", check_finite("epsilon", self.epsilon))
        set_(self, "scale", check_positive("scale (output scale kappa)", self.scale))
        set_(self, "width", check_int_at_least("width (hidden units N)", self.width, 1))
        set_(self, "rho", check_positive("rho (teacher norm |beta|^2/D)", self.rho))
        set_(self, "center", bool(self.center))
        n = self.width

        overlap = default_init_overlap(n) if self.init_overlap is None else self.init_overlap
        overlap_arr = np.atleast_1d(np.asarray(overlap, dtype=float))
        if overlap_arr.shape != (n,):
            raise InvalidParameterError(
                f"init_overlap must have one entry per hidden unit (width={n}), "
                f"got shape {overlap_arr.shape}"
            )
        if not np.all(np.isfinite(overlap_arr)):
            raise InvalidParameterError(f"init_overlap must be finite, got {overlap_arr.tolist()}")
        bound = math.sqrt(self.rho)
        if np.any(np.abs(overlap_arr) >= bound):
            raise InvalidParameterError(
                f"init_overlap entries must satisfy |m_i(0)| < sqrt(rho) = {bound:g}, "
                f"got {overlap_arr.tolist()}"
            )
        set_(self, "init_overlap", tuple(float(v) for v in overlap_arr))

        if self.init_cov is None:
            cov = planted_init_cov(overlap_arr, self.rho)
        else:
            cov = np.asarray(self.init_cov, dtype=float)
            if cov.shape != (n, n):
                raise InvalidParameterError(f"init_cov must be a {n}x{n} matrix, got shape {cov.shape}")
            if not np.all(np.isfinite(cov)) or not np.allclose(cov, cov.T, rtol=0, atol=1e-12):
                raise InvalidParameterError("init_cov must be a finite symmetric matrix")
        joint = np.block([[cov, overlap_arr[:, None]], [overlap_arr[None, :], np.array([[self.rho]])]])
        if np.linalg.eigvalsh(joint).min() <= 1e-12 * max(1.0, np.abs(joint).max()):
            raise InvalidParameterError(
                "init_cov must be positive definite and consistent with init_overlap: the joint "
                "covariance [[init_cov, m], [m^T, rho]] of (w(0), beta) must be positive definite"
            )
        set_(self, "init_cov", tuple(tuple(float(v) for v in row) for row in cov))
        set_(self, "_validated", True)

    # -- convenient array views -------------------------------------------------------------
    @property
    def m0(self) -> np.ndarray:
        """Initial overlaps m(0), shape ``(N,)``."""
        return np.array(self.init_overlap, dtype=float)

    @property
    def cov0(self) -> np.ndarray:
        """Initial covariance C_w(0,0), shape ``(N, N)``."""
        return np.array(self.init_cov, dtype=float)

    @property
    def is_online(self) -> bool:
        """True in the α → ∞ (online) limit."""
        return math.isinf(self.alpha)

    def as_attrs(self) -> dict:
        """Flat dictionary for HDF5 attributes and JSON summaries."""
        return {
            "alpha": self.alpha,
            "epsilon": self.epsilon,
            "scale": self.scale,
            "width": self.width,
            "rho": self.rho,
            "init_overlap": list(self.init_overlap),
            "init_cov": [list(r) for r in self.init_cov],
            "center": self.center,
        }
