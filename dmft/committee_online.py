"""Online (α = ∞) theory of the committee machine for general activations and teachers.

Student f(x) = (κ/N) Σ_i φ(w_i·x), target y = (κ*/M) Σ_n φ*(β_n·x) (+ output noise of
variance σ², which enters the loss only), x ~ N(0, I/D), loss = MSE without ½, learning rate
η = η₀N/κ², time t = η₀·step/D (theory.md §0). The square target y = (β·x)²/2 of the package's
default model is the teacher φ*(h) = h²/2 with M = 1, κ* = 1, T = ρ.

Order parameters: Q = WWᵀ/D (N×N), R = WBᵀ/D (N×M, ``R = m`` of :mod:`dmft.online` when M = 1),
teacher overlaps T = BBᵀ/D (M×M, fixed). With the joint covariance Ω = [[Q, R], [Rᵀ, T]] of the
fields (λ_1..λ_{N+M}) = (h_1..h_N, ν_1..ν_M), the signed weights s = (−κ/N,…, +κ*/M,…) and the
activations ψ_k (φ for a student field, φ* for a teacher field), Δ = y − f = Σ_k s_k ψ_k(λ_k) and
(theory.md §10.1–§10.3)

    A_iv  = Σ_k s_k I3(φ, ψ_k; Ω_{(i, v, k)})        = E[φ′(h_i) λ_v Δ]
    dR/dt = c A[:, N:],   dQ/dt = c (A[:, :N] + A[:, :N]ᵀ) + c² η₀ E[Δ² φ′(h_i) φ′(h_j)],
    c = 2/κ,  E[Δ² φ′φ′] = Σ_kl s_k s_l I4(φ, φ, ψ_k, ψ_l) + σ² I2′(φ, φ).

The last term is the O(η₀) correction of online SGD at finite learning rate η₀ (one fresh sample
per step); ``lr=None`` is gradient flow (η₀ → 0). The population loss is
E = Σ_kl s_k s_l I2(ψ_k, ψ_l; Ω) + σ².

Centred predictor (``center=True``, theory.md §10.10): f̃ = f(·; W) − f(·; W(0)). The initial
fields h⁰_j = w_j(0)·x join the list with activation φ and sign +κ/N, and the cross overlaps
X = W W(0)ᵀ/D (N×N, X(0) = Q(0)) join the order parameters; every formula above holds with the
longer field list, and dX/dt = c A[:, N+M:].
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.integrate import solve_ivp

from .activations import (Activation, analytic_strip, closed_form_i4, eigen_factor, gauss_hermite_tensor,
                          get_activation, i2, i2_prime, i3_shared, i4, joint_trapezoid_rule, mean_slope, mean_value,
                          pair_expectation)
from .errors import OnlineODEError
from .parameters import InvalidParameterError, check_finite
from .result import LearningCurves

__all__ = [
    "CommitteeModel",
    "planted_committee_cov",
    "committee_rates",
    "committee_loss",
    "committee_loss_decomposition",
    "committee_mean_response",
    "committee_centering_response",
    "committee_initial_curvature",
    "committee_target_response",
    "solve_committee_online",
    "TARGETS",
]

TARGETS = ("square", "committee")


def planted_committee_cov(R, T) -> np.ndarray:
    """Planted C_w(0,0) = δ_ij + (1 − δ_ij)(R T⁻¹ Rᵀ)_ij.

    w_i = Σ_n (R T⁻¹)_in β_n + (1 − (R T⁻¹ Rᵀ)_ii)^{1/2} z_i has these overlaps; for M = 1 and
    T = ρ it is :func:`dmft.parameters.planted_init_cov`.
    """
    R = np.atleast_2d(np.asarray(R, dtype=float))
    cov = R @ np.linalg.solve(np.asarray(T, dtype=float), R.T)
    np.fill_diagonal(cov, 1.0)
    return cov


def _matrix(name, value, shape):
    arr = np.asarray(value, dtype=float)
    if arr.shape != shape:
        try:
            arr = arr.reshape(shape)
        except ValueError:
            raise InvalidParameterError(f"{name} must have shape {shape}, got {np.shape(value)}") from None
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{name} must be finite")
    return arr


@dataclass(frozen=True)
class CommitteeModel:
    """A student committee, its teacher and the initial order parameters.

    Parameters
    ----------
    activation : Activation or str
        Student φ; a name of :data:`dmft.activations.ACTIVATION_NAMES` (``quadratic`` uses
        ``epsilon``) or an :class:`~dmft.activations.Activation`.
    epsilon : float
        ε of the ``quadratic`` activation (student and teacher, where named).
    scale : float
        Output scale κ > 0.
    width : int
        Hidden units N.
    target : {"square", "committee"}
        ``square``: y = (β·x)²/2 (M = 1, κ* = 1, T = ρ, teacher φ* = h²/2);
        ``committee``: y = (κ*/M) Σ_n φ*(β_n·x).
    teacher_width, teacher_scale, teacher_activation
        M, κ*, φ* of the committee teacher (φ* defaults to the student's activation).
    teacher_cov : M×M array, optional
        T = BBᵀ/D; default the identity (``rho`` for the square target).
    rho : float
        ‖β‖²/D of the square target.
    noise : float
        Output-noise variance σ² ≥ 0 (adds σ² to the loss; enters the SGD term).
    init_overlap : N×M array (N-vector when M = 1), optional
        R(0); default ±0.1 alternating along the diagonal pattern R_in = ±0.1 δ_{i mod M, n}.
    init_cov : N×N array, optional
        Q(0); default planted, δ_ij + (1 − δ_ij)(R T⁻¹ Rᵀ)_ij.
    lr : float, optional
        η₀ of online SGD; None (default) is gradient flow. With ReLU only when its partner is of
        the ReLU family or erf (closed-form I4 by orthant moments, or by the Gaussian tilt of an
        erf student, theory.md §10.5); a ReLU paired with another family is refused (its
        quadrature I4 is too rough across the kink for the integrator) — user activations with
        kinks have the same problem.
    center : bool
        Centred predictor f(·; W) − f(·; W(0)) (theory.md §10.10): the initial fields enter Δ with
        sign +κ/N and the cross overlaps X = W W(0)ᵀ/D become order parameters.
    """

    activation: Activation | str = "quadratic"
    epsilon: float = 0.0
    scale: float = 1.0
    width: int = 2
    target: str = "square"
    teacher_width: int = 1
    teacher_scale: float = 1.0
    teacher_activation: Activation | str | None = None
    teacher_cov: np.ndarray | None = field(default=None, compare=False)
    rho: float = 1.0
    noise: float = 0.0
    init_overlap: np.ndarray | None = field(default=None, compare=False)
    init_cov: np.ndarray | None = field(default=None, compare=False)
    lr: float | None = None
    center: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not (math.isfinite(float(self.scale)) and self.scale > 0):
            raise InvalidParameterError(f"scale (output scale kappa) must lie in (0, inf), got {self.scale!r}")
        if isinstance(self.width, bool) or int(self.width) != self.width or self.width < 1:
            raise InvalidParameterError(f"width (hidden units N) must be an integer >= 1, got {self.width!r}")
        set_(self, "width", int(self.width))
        if not isinstance(self.center, (bool, np.bool_)):
            raise InvalidParameterError(f"center must be True or False, got {self.center!r}")
        set_(self, "center", bool(self.center))
        set_(self, "epsilon", check_finite("epsilon", self.epsilon))
        set_(self, "activation", get_activation(self.activation, epsilon=self.epsilon))
        if self.target not in TARGETS:
            raise InvalidParameterError(f"target must be one of {TARGETS}, got {self.target!r}")
        if self.noise < 0 or not math.isfinite(self.noise):
            raise InvalidParameterError(f"noise (output-noise variance) must be >= 0, got {self.noise!r}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise InvalidParameterError(f"lr (learning rate eta_0) must lie in (0, inf) or be None, got {self.lr!r}")
        if self.target == "square":
            if self.teacher_width != 1:
                raise InvalidParameterError("teacher_width must be 1 for target='square' (use target='committee')")
            if self.teacher_scale != 1.0 or self.teacher_activation is not None:
                raise InvalidParameterError("teacher_scale and teacher_activation need target='committee'")
            if not (self.rho > 0):
                raise InvalidParameterError(f"rho must be > 0, got {self.rho!r}")
            teacher = get_activation("square")
            T = np.array([[float(self.rho)]]) if self.teacher_cov is None else _matrix("teacher_cov", self.teacher_cov, (1, 1))
        else:
            if isinstance(self.teacher_width, bool) or int(self.teacher_width) != self.teacher_width or self.teacher_width < 1:
                raise InvalidParameterError(f"teacher_width (M) must be an integer >= 1, got {self.teacher_width!r}")
            set_(self, "teacher_width", int(self.teacher_width))
            if not (math.isfinite(float(self.teacher_scale)) and self.teacher_scale > 0):
                raise InvalidParameterError(f"teacher_scale must lie in (0, inf), got {self.teacher_scale!r}")
            if self.rho != 1.0:
                raise InvalidParameterError("rho applies to target='square' only; give a committee's overlaps as teacher_cov")
            spec = self.activation if self.teacher_activation is None else self.teacher_activation
            teacher = get_activation(spec, epsilon=self.epsilon)
            M = self.teacher_width
            T = np.eye(M) if self.teacher_cov is None else _matrix("teacher_cov", self.teacher_cov, (M, M))
        if not np.allclose(T, T.T) or np.linalg.eigvalsh(T).min() <= 0:
            raise InvalidParameterError("teacher_cov must be symmetric positive definite")
        set_(self, "teacher_activation", teacher)
        if self.lr is not None and "relu" in (self.activation.family, teacher.family) \
                and not closed_form_i4(self.activation, teacher):
            raise InvalidParameterError(
                "lr (online SGD at finite learning rate) with relu needs a relu-family (relu, smoothed_relu) or erf "
                f"partner: a {self.activation.name} student with a {teacher.name} teacher has no closed-form I4 here, "
                "and Gauss-Hermite across the kink makes the SGD term too rough for the adaptive ODE integrator "
                "(use lr=None for gradient flow)"
            )
        set_(self, "teacher_cov", T)
        N, M = self.width, T.shape[0]
        if self.init_overlap is None:
            R = np.zeros((N, M))
            for i in range(N):
                R[i, i % M] = 0.1 * (1.0 if i % 2 == 0 else -1.0)
        else:
            R = _matrix("init_overlap", self.init_overlap, (N, M))
        Q = planted_committee_cov(R, T) if self.init_cov is None else _matrix("init_cov", self.init_cov, (N, N))
        joint = np.block([[Q, R], [R.T, T]])
        # Positive semi-definite suffices: students inside the teachers' span (the unspecialised
        # plateau, w_i = Σ_n a_in β_n) give a singular joint covariance, and every Gaussian
        # expectation used here is finite there.
        if not np.allclose(Q, Q.T) or np.linalg.eigvalsh(joint).min() < -1e-10 * max(1.0, np.abs(joint).max()):
            raise InvalidParameterError(
                "init_cov and init_overlap must form, with teacher_cov, a positive semi-definite "
                "joint covariance [[Q, R], [R^T, T]] of the student and teacher weights"
            )
        set_(self, "init_overlap", R)
        set_(self, "init_cov", Q)

    @property
    def M(self) -> int:
        """Teacher width M."""
        return self.teacher_cov.shape[0]

    @property
    def fields(self) -> int:
        """Number K of Gaussian fields: N + M, plus the N initial fields when centred."""
        return self.width + self.M + (self.width if self.center else 0)

    @property
    def signs(self) -> np.ndarray:
        """s = (−κ/N, …, +κ*/M, …[, +κ/N, …]): Δ = Σ_k s_k ψ_k(λ_k) (centred: the last N are h⁰)."""
        N, M = self.width, self.M
        parts = [np.full(N, -self.scale / N), np.full(M, self.teacher_scale / M)]
        if self.center:
            parts.append(np.full(N, self.scale / N))
        return np.concatenate(parts)

    @property
    def groups(self) -> tuple:
        """(field indices, activation) of the students, the teachers and (centred) the initial students."""
        N, M = self.width, self.M
        out = [(np.arange(N), self.activation), (np.arange(N, N + M), self.teacher_activation)]
        if self.center:
            out.append((np.arange(N + M, 2 * N + M), self.activation))
        return tuple(out)

    def as_attrs(self) -> dict:
        """Flat dictionary for summaries."""
        return {
            "alpha": math.inf,
            "activation": self.activation.name,
            "epsilon": self.epsilon,
            "scale": self.scale,
            "width": self.width,
            "target": self.target,
            "teacher_width": self.M,
            "teacher_scale": self.teacher_scale,
            "teacher_activation": self.teacher_activation.name,
            "teacher_cov": self.teacher_cov.tolist(),
            "rho": self.rho,
            "noise": self.noise,
            "init_overlap": self.init_overlap.tolist(),
            "init_cov": self.init_cov.tolist(),
            "lr": self.lr,
            "center": self.center,
        }


def _sub(Omega, *idx):
    """Sub-covariances Ω[idx, idx] for broadcast index arrays, shape (..., k, k)."""
    ind = np.stack(np.broadcast_arrays(*idx), axis=-1)
    return Omega[..., ind[..., :, None], ind[..., None, :]]


def _joint_batch(Q, R, model: CommitteeModel, cross=None) -> np.ndarray:
    """Covariance Ω of the fields for stacks of order parameters, shape (..., K, K).

    Ω = [[Q, R], [Rᵀ, T]]; with the cross overlaps X = W W(0)ᵀ/D (centred model, theory.md
    §10.10) Ω = [[Q, R, X], [Rᵀ, T, R(0)ᵀ], [Xᵀ, R(0), Q(0)]]. Without ``cross`` only the first
    N + M fields are built (enough for quantities that do not involve f(·; W(0))).
    """
    Q = np.asarray(Q, dtype=float)
    R = np.asarray(R, dtype=float).reshape(Q.shape[:-1] + (model.M,))
    lead = Q.shape[:-2]
    T = np.broadcast_to(model.teacher_cov, lead + model.teacher_cov.shape)
    rows = [[Q, R], [np.swapaxes(R, -1, -2), T]]
    if cross is not None:
        X = np.asarray(cross, dtype=float).reshape(Q.shape)
        R0 = np.broadcast_to(model.init_overlap, lead + model.init_overlap.shape)
        Q0 = np.broadcast_to(model.init_cov, Q.shape)
        rows[0].append(X)
        rows[1].append(np.swapaxes(R0, -1, -2))
        rows.append([np.swapaxes(X, -1, -2), R0, Q0])
    return np.concatenate([np.concatenate(row, axis=-1) for row in rows], axis=-2)


def _fields_joint(Q, R, model: CommitteeModel, cross) -> np.ndarray:
    """Ω of all ``model.fields`` fields; ``cross`` is required exactly when the model is centred."""
    if model.center and cross is None:
        raise InvalidParameterError("cross (X = W W(0)^T/D, shape (..., N, N)) is required for a centred model")
    return _joint_batch(Q, R, model, cross if model.center else None)


def committee_rates(Q, R, model: CommitteeModel, cross=None):
    """(dQ/dt, dR/dt) of gradient flow, plus the online-SGD term c²η₀E[Δ²φ′φ′] when ``model.lr``.

    Parameters
    ----------
    Q : ndarray, shape (N, N)
    R : ndarray, shape (N, M)
    cross : ndarray, shape (N, N), optional
        X = W W(0)ᵀ/D; required for a centred model, which then also returns dX/dt
        (theory.md §10.10).

    Returns
    -------
    (dQ, dR), or (dQ, dR, dX) for a centred model.
    """
    N, M = model.width, model.M
    s = model.signs
    c = 2.0 / model.scale
    Omega = _fields_joint(Q, R, model, cross)
    phi = model.activation
    i = np.arange(N)[:, None]
    A = np.zeros((N, model.fields))
    for k, psi in model.groups:
        # I3[i, k, v] = E[φ′(h_i) λ_v ψ_k(λ_k)]: two 2-d integrals per (i, k) serve every v.
        I = i3_shared(phi, psi, _sub(Omega, i, k[None, :]), Omega[:N][:, None, :], Omega[k][None, :, :])
        A += np.einsum("ikv,k->iv", I, s[k])
    dR = c * A[:, N:N + M]
    half = A[:, :N]
    dQ = c * (half + half.T)
    if model.lr is not None:
        dQ = dQ + c**2 * model.lr * _sgd_second_moment(Omega, model)
    if model.center:
        return dQ, dR, c * A[:, N + M:]
    return dQ, dR


#: Largest number of fields K for which the SGD term is one joint K-dimensional rule (pairwise
#: 4-d rules beyond), with the Gauss–Hermite nodes per axis used when an activation has no known
#: analytic strip (:func:`dmft.activations.analytic_strip`).
JOINT_RULE_NODES = {1: 64, 2: 64, 3: 40, 4: 20, 5: 11}


def _sgd_second_moment_joint(Omega, model: CommitteeModel, nodes: int | None = None):
    """E[Δ² φ′(h_i) φ′(h_j)] as one K-dimensional tensor rule over the eigen-factor of Ω.

    Every I4 of the pairwise form is an expectation over the same K Gaussian fields, so one
    rule evaluates them all at once (cost: the rule's nodes instead of N²K² 4-d rules). With
    ``nodes``, Gauss–Hermite of that many nodes per axis; otherwise the pruned trapezoid rule of
    :func:`dmft.activations.joint_trapezoid_rule` when every activation has a known analytic strip, else
    Gauss–Hermite with :data:`JOINT_RULE_NODES`.
    """
    N, K = model.width, Omega.shape[0]
    F = eigen_factor(Omega)
    strips = np.empty(K)
    for idx, act in model.groups:
        width = analytic_strip(act)       # φ and φ′ share a strip
        strips[idx] = np.nan if width is None else width
    if nodes is None and not np.isnan(strips).any():
        z, weight = joint_trapezoid_rule(F, strips)
    else:
        z, weight = gauss_hermite_tensor(nodes or JOINT_RULE_NODES[K], K)
    fields = z @ F.T
    s = model.signs
    delta = sum(act.phi(fields[:, idx]) @ s[idx] for idx, act in model.groups)
    slopes = model.activation.dphi(fields[:, :N])
    return np.einsum("p,pi,pj->ij", weight * (delta**2 + model.noise), slopes, slopes)


def _sgd_second_moment(Omega, model: CommitteeModel):
    """E[Δ² φ′(h_i) φ′(h_j)] (N×N) with Δ = y + noise − f.

    Where :func:`dmft.activations.closed_form_i4` holds (four erf: Saad–Solla; an erf student
    and any teacher: the Gaussian tilt; a ReLU-family student and a ReLU-family or erf teacher:
    orthant moments), I4 for every distinct (i, j, k, l) (:func:`dmft.activations.i4`). Otherwise, for
    K ≤ 5 fields, one joint rule: Gauss–Hermite exact for polynomials, the pruned trapezoid rule
    (≤ 3e-7 of the largest entry measured at variances up to 40) for activations with a known
    analytic strip (tanh, erf, user functions that declare one), Gauss–Hermite with
    :data:`JOINT_RULE_NODES` for the rest; beyond K = 5, pairwise 4-d rules
    (:func:`dmft.activations.i4`, :func:`_pairwise_sgd_second_moment`).
    """
    N, K = model.width, model.fields
    phi, phis = model.activation, model.teacher_activation
    if not closed_form_i4(phi, phis) and K in JOINT_RULE_NODES:
        if phi.family == "polynomial" and phis.family == "polynomial":
            degree = 2 * max(phi.degree, phis.degree) + 2 * (phi.degree - 1)
            return _sgd_second_moment_joint(Omega, model, degree // 2 + 2)
        return _sgd_second_moment_joint(Omega, model)
    out = _pairwise_sgd_second_moment(Omega, model)
    if model.noise:
        out += model.noise * i2_prime(phi, phi, _sub(Omega, np.arange(N)[:, None], np.arange(N)[None, :]))
    return out


def _pairwise_sgd_second_moment(Omega, model: CommitteeModel) -> np.ndarray:
    """Σ_kl s_k s_l I4(φ′_i, φ′_j, ψ_k, ψ_l) (N×N) by 4-d rules, one per distinct index set.

    I4 is symmetric under i ↔ j and under k ↔ l (with their activations), so only i ≤ j and, per
    pair of field groups, the unordered (k, l) are evaluated (N = 2, K = 6: 63 integrals instead
    of 144), each counted with its multiplicity. The diagonal i = j forms its own batch: there two
    of the four fields coincide, Ω's sub-block has a zero eigenvalue in every member, and the rule
    drops that axis (:func:`dmft.activations.joint_trapezoid_rule`), a 3-d rule instead of 4-d.
    """
    N = model.width
    phi, s = model.activation, model.signs
    upper_i, upper_j = np.triu_indices(N)
    groups = model.groups
    out = np.zeros((N, N))
    for diagonal in (True, False):
        keep = (upper_i == upper_j) if diagonal else (upper_i < upper_j)
        ii, jj = upper_i[keep], upper_j[keep]
        if ii.size == 0:
            continue
        for a, (kidx, kact) in enumerate(groups):
            for b, (lidx, lact) in enumerate(groups[a:], start=a):
                if b == a:                                    # one group: unordered pairs k ≤ l
                    first, second = np.triu_indices(len(kidx))
                    kk, ll = kidx[first], kidx[second]
                    multiplicity = np.where(first == second, 1.0, 2.0)
                else:                                         # two groups: (k, l) and (l, k)
                    kk, ll = np.repeat(kidx, len(lidx)), np.tile(lidx, len(kidx))
                    multiplicity = np.full(kk.size, 2.0)
                C = _sub(Omega, ii[:, None], jj[:, None], kk[None, :], ll[None, :])
                out[ii, jj] += i4(phi, phi, kact, lact, C) @ (multiplicity * s[kk] * s[ll])
    return out + np.triu(out, 1).T


def _pair_terms(Omega, model: CommitteeModel):
    """E[ψ_k(λ_k) ψ_l(λ_l)] for all field pairs, shape (..., K, K)."""
    K = Omega.shape[-1]
    out = np.empty(Omega.shape[:-2] + (K, K))
    for ia, fa in model.groups:
        for ib, fb in model.groups:
            out[..., ia[:, None], ib[None, :]] = i2(fa, fb, _sub(Omega, ia[:, None], ib[None, :]))
    return out


def _per_field(Omega, model: CommitteeModel, moment) -> np.ndarray:
    """``moment(activation, variance)`` of every field (E ψ_k or E ψ_k′), shape (..., K)."""
    var = np.diagonal(Omega, axis1=-2, axis2=-1)
    out = np.empty(var.shape)
    for idx, act in model.groups:
        out[..., idx] = moment(act, var[..., idx])
    return out


def committee_loss_decomposition(Q, R, model: CommitteeModel, cross=None) -> np.ndarray:
    """Exact population loss split by Hermite degree, shape (..., 3).

    Returns ``(mean, higher, linear)`` in the slots (variance, alignment, linear) of
    :data:`dmft.result.DECOMPOSITION_TERMS`: ``mean`` = (E f − E y)² (degree 0), ``linear`` =
    ‖linear component of f − y‖² = Σ_kl s_k s_l μ_k μ_l Ω_kl with μ_k = E[ψ_k′] (degree 1),
    ``higher`` = the rest (degree ≥ 2) + σ². For the quadratic student and the square target
    these are exactly the variance, alignment and linear terms of theory.md §2.3. A centred
    model needs ``cross`` = X = W W(0)ᵀ/D and splits f(·; W) − f(·; W(0)) − y the same way
    (theory.md §10.10).
    """
    Omega = _fields_joint(Q, R, model, cross)
    s = model.signs
    mu0 = _per_field(Omega, model, mean_value)
    mu1 = _per_field(Omega, model, mean_slope)
    total = np.einsum("...kl,k,l->...", _pair_terms(Omega, model), s, s) + model.noise
    mean = (mu0 @ s) ** 2
    b = mu1 * s
    linear = np.einsum("...kl,...k,...l->...", Omega, b, b)
    return np.stack([mean, total - mean - linear, linear], axis=-1)


def committee_loss(Q, R, model: CommitteeModel, cross=None) -> np.ndarray:
    """Exact population loss E[(y + noise − f)²] from (Q, R, T) (and X when centred), shape (...)."""
    return committee_loss_decomposition(Q, R, model, cross).sum(axis=-1)


def committee_mean_response(Q, R, model: CommitteeModel, cross=None) -> np.ndarray:
    """Equal-time mean response E[∂g_i/∂h_j] at Gaussian fields, shape (..., N, N) (theory.md §10.7).

    g_i = Δ φ′(h_i) with Δ = y − (κ/N) Σ_k φ(h_k) (centred: + (κ/N) Σ_k φ(h⁰_k)), so
    ∂g_i/∂h_j = −(κ/N) φ′(h_i) φ′(h_j) + δ_ij Δ φ″(h_i); its mean under the fields' law
    Ω is R(t) of the online limit (the quadratic model's eq. 33) and the
    Gaussian mean of the data side's control variate. Output noise has mean zero and drops out.
    """
    Omega = _fields_joint(Q, R, model, cross)
    N = model.width
    phi = model.activation
    i = np.arange(N)
    slopes = pair_expectation(phi, 1, phi, 1, _sub(Omega, i[:, None], i[None, :]))      # (..., N, N)
    curvature = np.zeros(Omega.shape[:-2] + (N,))
    s = model.signs
    for idx, psi in model.groups:
        for k in idx:
            curvature += s[k] * pair_expectation(phi, 2, psi, 0, _sub(Omega, i, np.full(N, k)))
    out = -(model.scale / N) * slopes
    out[..., i, i] += curvature
    return out


def committee_centering_response(Q, R, cross, model: CommitteeModel) -> np.ndarray:
    """Mean response to the initial fields of a centred model, E[∂g_i/∂h⁰_j] = (κ/N) E[φ′(h_i) φ′(h⁰_j)],
    shape (..., N, N) (theory.md §10.10; (κ/N)(1 + ε²X) for the quadratic student, §4.2)."""
    Omega = _joint_batch(Q, R, model, cross)
    N, M = model.width, model.M
    i = np.arange(N)[:, None]
    j = N + M + np.arange(N)[None, :]
    return (model.scale / N) * pair_expectation(model.activation, 1, model.activation, 1, _sub(Omega, i, j))


def committee_initial_curvature(model: CommitteeModel) -> np.ndarray:
    """E[y φ″(h_i(0))] (N,): the exact mean of the centred local response at t = 0, where f̃ = 0,
    Δ = y and ∂g_i/∂h_j + ∂g_i/∂h⁰_j = δ_ij y φ″(h_i) sample by sample (theory.md §10.10)."""
    Omega = _joint_batch(model.init_cov, model.init_overlap, model)
    N, M = model.width, model.M
    i = np.arange(N)
    out = np.zeros(N)
    for m in range(M):
        out += (model.teacher_scale / M) * pair_expectation(model.activation, 2, model.teacher_activation, 0,
                                                             _sub(Omega, i, np.full(N, N + m)))
    return out


def committee_target_response(Q, R, model: CommitteeModel) -> np.ndarray:
    """Mean response to the teacher fields, r*_im = E[∂g_i/∂h*_m] = (κ*/M) E[φ′(h_i) φ*′(h*_m)], shape
    (..., N, M) (theory.md §10.7; ε m for the square target, eq. 34). The same with centring:
    ∂Δ/∂h* does not involve f(·; W(0))."""
    Omega = _joint_batch(Q, R, model)
    N, M = model.width, model.M
    i = np.arange(N)[:, None]
    v = N + np.arange(M)[None, :]
    pair = pair_expectation(model.activation, 1, model.teacher_activation, 1, _sub(Omega, i, v))
    return (model.teacher_scale / M) * pair


def solve_committee_online(model: CommitteeModel, t, *, rtol: float = 1e-11, atol: float = 1e-13) -> LearningCurves:
    """Integrate the committee ODE (DOP853) and return :class:`~dmft.result.LearningCurves`.

    Returns
    -------
    LearningCurves
        ``kind="online"``; ``train_loss`` = ``test_loss`` (the population loss); ``cov`` is Q;
        the full R(t) is ``extras["overlap_matrix"]``, shape (T, N, M), and T is
        ``extras["teacher_cov"]``. ``overlap`` has the shape (T, N) that ``LearningCurves``
        requires: R_{i, i mod M}(t), the overlap of student i with the teacher unit it is
        paired with in the default initialisation — for M = 1 exactly R = m of
        :mod:`dmft.online`. ``decomposition`` as in :func:`committee_loss_decomposition`.
        A centred model also integrates X = W W(0)ᵀ/D, returned as ``extras["cross"]`` (T, N, N).
    """
    start = time.perf_counter()
    t = np.asarray(t, dtype=float)
    N, M = model.width, model.M
    nq, nr = N * N, N * M

    def rhs(_t, y):
        Q = y[:nq].reshape(N, N)
        Q = 0.5 * (Q + Q.T)
        R = y[nq:nq + nr].reshape(N, M)
        if model.center:
            return np.concatenate([r.ravel() for r in committee_rates(Q, R, model, y[nq + nr:].reshape(N, N))])
        dQ, dR = committee_rates(Q, R, model)
        return np.concatenate([dQ.ravel(), dR.ravel()])

    parts = [model.init_cov.ravel(), model.init_overlap.ravel()] + ([model.init_cov.ravel()] if model.center else [])
    sol = solve_ivp(rhs, (0.0, float(t[-1])), np.concatenate(parts), method="DOP853", rtol=rtol, atol=atol,
                    dense_output=True)
    if not sol.success:
        raise OnlineODEError(f"committee online ODE integration failed: {sol.message}")
    y = sol.sol(t).T
    Q = y[:, :nq].reshape(-1, N, N)
    Q = 0.5 * (Q + np.swapaxes(Q, -1, -2))
    R = y[:, nq:nq + nr].reshape(-1, N, M)
    X = y[:, nq + nr:].reshape(-1, N, N) if model.center else None
    decomposition = committee_loss_decomposition(Q, R, model, X)
    loss = decomposition.sum(axis=-1)
    finite = bool(np.all(np.isfinite(loss)))
    extras = {"overlap_matrix": R, "teacher_cov": model.teacher_cov}
    if model.center:
        extras["cross"] = X
    return LearningCurves(
        kind="online",
        t=t,
        train_loss=loss,
        test_loss=loss,
        overlap=R[:, np.arange(N), np.arange(N) % M],
        cov=Q,
        decomposition=decomposition,
        parameters=model.as_attrs(),
        settings={"method": "DOP853", "rtol": rtol, "atol": atol, "nfev": int(sol.nfev)},
        converged=finite,
        iterations=1,
        residual=0.0,
        residual_history=np.zeros(1),
        seconds=time.perf_counter() - start,
        message="committee online ODE integrated" if finite else "committee online ODE produced non-finite values",
        extras=extras,
    )
