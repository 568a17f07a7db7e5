"""What the finite-α DMFT solver needs to know about a model (theory.md §4, §10.7).

The fixed-point iteration of :mod:`dmft.dmft_solver` is the same for every student and target;
what differs is collected here, in one frozen object per model family:

* the student activation compiled into the data-side kernel (:mod:`dmft._data_kernels`) and the
  target y with its gradient ∂y/∂h*_m along the M teacher fields;
* the exact Gaussian means of the data side's control variates (population loss, equal-time
  response R(t), teacher response r*), which are also the α = ∞ data side that starts the iteration;
* the initial overlaps m(0) (N, or N × M), C_w(0,0), the teacher covariance (ρ, or T), the test
  loss and its decomposition from (C_w, m), the symmetry group used to project the iterates.

:class:`SquareTargetProblem` is the package's model (φ = h + εh²/2, y = h*²/2, optional centring);
:class:`CommitteeProblem` is any smooth student of :class:`dmft.committee_online.CommitteeModel`
(quadratic, linear, erf, tanh) with a square or committee teacher.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _data_kernels as kernels
from .activations import parity
from .committee_online import (CommitteeModel, committee_centering_response, committee_initial_curvature,
                               committee_loss_decomposition, committee_mean_response, committee_target_response,
                               solve_committee_online)
from .online import OnlineTrajectory, centering_response, mean_response
from .parameters import InvalidParameterError, ModelParameters, check_positive
from .population import centered_loss_decomposition, centered_test_loss, loss_decomposition, test_loss
from .symmetry import SymmetryGroup, committee_invariance_group, invariance_group

__all__ = ["SquareTargetProblem", "CommitteeProblem", "as_problem"]


def _equal_time(cov_w: np.ndarray) -> np.ndarray:
    return np.einsum("nnij->nij", cov_w)


@dataclass(frozen=True)
class SquareTargetProblem:
    """The package's model: φ(h) = h + εh²/2, y = h*²/2, ⟨h*²⟩ = ρ (theory.md §0, §4.2).

    Overlaps are N-vectors (one teacher field), as in :class:`dmft.parameters.ModelParameters`.
    """

    params: ModelParameters

    @property
    def alpha(self) -> float:
        return self.params.alpha

    @property
    def width(self) -> int:
        return self.params.width

    @property
    def teachers(self) -> int:
        return 1

    @property
    def center(self) -> bool:
        return self.params.center

    @property
    def noise(self) -> float:
        """The package model has no output noise."""
        return 0.0

    @property
    def scale(self) -> float:
        return self.params.scale

    @property
    def m0(self) -> np.ndarray:
        return self.params.m0

    @property
    def cov0(self) -> np.ndarray:
        return self.params.cov0

    @property
    def teacher_cov(self) -> float:
        return self.params.rho

    compiled = True

    @property
    def kernel_activation(self) -> tuple[int, float]:
        return kernels.ACT_QUADRATIC, float(self.params.epsilon)

    def targets(self, hstar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """y = h*²/2 (S,) and ∂y/∂h* = h* (S, 1) for teacher fields of shape (S, 1)."""
        return 0.5 * hstar[:, 0] ** 2, hstar

    def control_means(self, cov_w: np.ndarray, overlap: np.ndarray):
        """Exact Gaussian means (test loss, R(t_n) of eq. 33, r* = εm of eq. 34) at every grid time."""
        p = self.params
        Q = _equal_time(cov_w)
        if p.center:
            test = centered_test_loss(Q, cov_w[:, 0], overlap, cov0=p.cov0, overlap0=p.m0,
                                      epsilon=p.epsilon, scale=p.scale, rho=p.rho)
            jac = mean_response(Q, epsilon=p.epsilon, scale=p.scale, rho=p.rho, cov0=p.cov0)
        else:
            test = test_loss(Q, overlap, epsilon=p.epsilon, scale=p.scale, rho=p.rho)
            jac = mean_response(Q, epsilon=p.epsilon, scale=p.scale, rho=p.rho)
        return test, jac, p.epsilon * overlap

    def online(self, t: np.ndarray):
        """α = ∞ data side (R_g, r*, m) on the grid ``t`` from the online ODE (theory.md §4.3).

        R_g is block diagonal, R_g[n, n] = R(t_n) of eq. 33 (centred: plus the column
        R_g[n, 0] = E[∂g_n/∂h(0)] = (κ/N)(1 + ε²X(t_n))), r* = ε m (eq. 34), and the noise vanishes.
        """
        p = self.params
        m, Q, X = OnlineTrajectory(p, t_max=float(t[-1]))(t)
        T, N = m.shape
        resp = np.zeros((T, T, N, N))
        idx = np.arange(T)
        if p.center:
            resp[idx, idx] = mean_response(Q, epsilon=p.epsilon, scale=p.scale, rho=p.rho, cov0=p.cov0)
            resp[1:, 0] += centering_response(X[1:], epsilon=p.epsilon, scale=p.scale)
            resp[0, 0] = self.initial_local_response()
        else:
            resp[idx, idx] = mean_response(Q, epsilon=p.epsilon, scale=p.scale, rho=p.rho)
        return resp, p.epsilon * m, m

    def initial_local_response(self) -> np.ndarray:
        """Centred, t = 0: the local response D_0 = J_0 + K_0 = ε y I sample by sample, mean ε ρ/2 I
        (the data side's control variate lacks K_0, so this exact mean replaces its estimate)."""
        p = self.params
        return p.epsilon * p.rho / 2 * np.eye(p.width)

    def decomposition(self, cov_w: np.ndarray, overlap: np.ndarray) -> np.ndarray:
        """Test-loss decomposition (theory.md §2.3; centred form of §4.2), shape (T, 3)."""
        p = self.params
        Q = _equal_time(cov_w)
        if p.center:
            return centered_loss_decomposition(Q, cov_w[:, 0], overlap, cov0=p.cov0, overlap0=p.m0,
                                               epsilon=p.epsilon, scale=p.scale, rho=p.rho)
        return loss_decomposition(Q, overlap, epsilon=p.epsilon, scale=p.scale, rho=p.rho)

    def symmetry(self, symmetrize: bool) -> SymmetryGroup:
        """Signed unit permutations that leave (m(0), C_w(0,0)) invariant (theory.md §9.2)."""
        return invariance_group(self.m0, self.cov0) if symmetrize else SymmetryGroup.identity(self.width)

    def curve_overlap(self, overlap: np.ndarray) -> np.ndarray:
        return overlap

    def attrs(self) -> dict:
        return self.params.as_attrs()


#: Student activations with a compiled data-side kernel (φ, φ′, φ″ in closed form in Numba).
COMPILED_ACTIVATIONS = ("quadratic", "linear", "erf", "tanh", "smoothed_relu")


@dataclass(frozen=True)
class CommitteeProblem:
    """A student committee of :class:`~dmft.committee_online.CommitteeModel` at finite α = P/D.

    The student must be smooth: the data side propagates pathwise tangents through J = ∂g/∂h,
    which holds φ″, and ReLU's φ″ = δ(h) is missed by every sample (its mean response would be
    biased), so ReLU is refused; its Gaussian smoothing ``smoothed_relu:<width>`` (theory.md §10.9)
    takes its place. ``quadratic``, ``linear``, ``erf``, ``tanh`` and the smoothed ReLU run in the compiled
    kernel; any other smooth student (a polynomial, or a user activation with its φ′ and φ″)
    runs in the NumPy kernel (``backend="numpy"``, 30–100× slower). The teacher may be any
    activation (only y and ∂y/∂h* enter, and both are evaluated pathwise). Gradient flow only
    (``lr`` = None); output noise σ² enters as a frozen σξ in each training target. Symmetry: student and teacher permutations
    (:meth:`symmetry`).
    """

    model: CommitteeModel
    alpha: float

    def __post_init__(self):
        model = self.model
        if not isinstance(model, CommitteeModel):
            raise InvalidParameterError(f"model must be a CommitteeModel, got {type(model).__name__}")
        alpha = check_positive("alpha", self.alpha)
        if math.isinf(alpha):
            raise InvalidParameterError("alpha must be finite for the DMFT (use solve_committee_online for alpha = inf)")
        object.__setattr__(self, "alpha", alpha)
        if model.activation.family == "relu" and not model.activation.smoothing:
            raise InvalidParameterError(
                "activation must be smooth for the finite-alpha DMFT, got 'relu' (its second derivative is a "
                "delta that per-sample tangents cannot carry; theory.md §10.7): solve the Gaussian-smoothed "
                "ReLU 'smoothed_relu:<width>' instead, whose curves tend to ReLU's as the width goes to 0 "
                "(theory.md §10.9, e.g. width 0.1)")
        if model.lr is not None:
            raise InvalidParameterError("lr must be None (gradient flow) for the finite-alpha DMFT")

    @property
    def width(self) -> int:
        return self.model.width

    @property
    def teachers(self) -> int:
        return self.model.M

    @property
    def center(self) -> bool:
        return self.model.center

    @property
    def noise(self) -> float:
        """Output-noise variance σ²: each training target carries a frozen σξ (theory.md §10.8)."""
        return float(self.model.noise)

    @property
    def scale(self) -> float:
        return self.model.scale

    @property
    def m0(self) -> np.ndarray:
        return self.model.init_overlap

    @property
    def cov0(self) -> np.ndarray:
        return self.model.init_cov

    @property
    def teacher_cov(self) -> np.ndarray:
        return self.model.teacher_cov

    @property
    def compiled(self) -> bool:
        """Whether the student has a compiled (Numba) kernel; otherwise ``backend="numpy"``."""
        return self.model.activation.base_name in COMPILED_ACTIVATIONS

    @property
    def kernel_activation(self):
        """(code, parameter) of the compiled kernel, or (the Activation, 0) for the NumPy kernel."""
        activation = self.model.activation
        if not self.compiled:
            return activation, 0.0
        return kernels.ACTIVATION_CODES[activation.base_name], activation.parameter

    def targets(self, hstar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """y = (κ*/M) Σ_m φ*(h*_m) and ∂y/∂h*_m = (κ*/M) φ*′(h*_m) for teacher fields (S, M)."""
        weight = self.model.teacher_scale / self.teachers
        teacher = self.model.teacher_activation
        return weight * teacher.phi(hstar).sum(axis=1), weight * teacher.dphi(hstar)

    def _cross(self, cov_w: np.ndarray):
        """X(t_n) = C_w(t_n, 0) (T, N, N) of a centred model, else None."""
        return np.asarray(cov_w)[:, 0] if self.center else None

    def control_means(self, cov_w: np.ndarray, overlap: np.ndarray):
        """Exact Gaussian means (test loss, E[∂g/∂h], E[∂g/∂h*]) at every grid time (§10.7, §10.10)."""
        Q, X = _equal_time(cov_w), self._cross(cov_w)
        test = committee_loss_decomposition(Q, overlap, self.model, X).sum(axis=-1)
        return (test, committee_mean_response(Q, overlap, self.model, X),
                committee_target_response(Q, overlap, self.model))

    def online(self, t: np.ndarray):
        """α = ∞ data side: R_g[n, n] = E[∂g/∂h] and r* = E[∂g/∂h*] along the online ODE (§10);
        centred, also the column R_g[n, 0] = E[∂g_n/∂h_0] (§10.10)."""
        curves = solve_committee_online(self.model, t)
        Q, R = curves.cov, curves.extras["overlap_matrix"]
        X = curves.extras.get("cross")
        T, N = Q.shape[:2]
        resp = np.zeros((T, T, N, N))
        idx = np.arange(T)
        resp[idx, idx] = committee_mean_response(Q, R, self.model, X)
        if self.center:
            resp[1:, 0] += committee_centering_response(Q[1:], R[1:], X[1:], self.model)
            resp[0, 0] = self.initial_local_response()
        return resp, committee_target_response(Q, R, self.model), R

    def initial_local_response(self) -> np.ndarray:
        """Centred, t = 0: D_0 = J_0 + K_0 = δ_ij y φ″(h_i) sample by sample; its exact mean
        (:func:`~dmft.committee_online.committee_initial_curvature`) replaces the estimate, whose
        control variate lacks K_0."""
        return np.diag(committee_initial_curvature(self.model))

    def decomposition(self, cov_w: np.ndarray, overlap: np.ndarray) -> np.ndarray:
        return committee_loss_decomposition(_equal_time(cov_w), overlap, self.model, self._cross(cov_w))

    def symmetry(self, symmetrize: bool) -> SymmetryGroup:
        """Student and teacher permutations (and β → −β for an even φ*) that leave (R(0), Q(0), T)
        invariant (:func:`dmft.symmetry.committee_invariance_group`, theory.md §9.2, §10.7)."""
        if not symmetrize:
            return SymmetryGroup.identity(self.width)
        teacher = self.model.teacher_activation
        even = parity(teacher) == 1
        return committee_invariance_group(self.m0, self.cov0, self.teacher_cov, teacher_even=even)

    def curve_overlap(self, overlap: np.ndarray) -> np.ndarray:
        """R_{i, i mod M}(t), the (T, N) overlap of :class:`~dmft.result.LearningCurves` (as online)."""
        N, M = self.width, self.teachers
        return overlap[:, np.arange(N), np.arange(N) % M]

    def attrs(self) -> dict:
        return {**self.model.as_attrs(), "alpha": self.alpha}


def as_problem(model) -> SquareTargetProblem | CommitteeProblem:
    """Wrap :class:`ModelParameters` into its problem; a problem passes through."""
    if isinstance(model, (SquareTargetProblem, CommitteeProblem)):
        return model
    if isinstance(model, ModelParameters):
        return SquareTargetProblem(model)
    raise InvalidParameterError(f"expected ModelParameters or a DMFT problem, got {type(model).__name__}")
