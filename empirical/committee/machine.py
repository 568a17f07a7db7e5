"""Finite-D gradient descent on the committee machine: the simulation side of the theory.

Everything follows theory.md §0–§1 (convention A unless ``target_scale`` says otherwise):

* data        x ~ N(0, I_D/D), P = round(alpha·D) training points (``alpha`` is ALWAYS P/D);
* teacher     β ~ N(0, I_D), then rescaled so that ρ = |β|²/D equals ``rho`` *exactly*
              (the population loss of §2.4 is then evaluated at the requested ρ, not at a
              random ρ ≈ 1 ± O(D^(-1/2)));
* target      y = s·(β·x)², s = ``target_scale`` (0.5: convention A, 1: convention B, §1.2);
* model       f(x) = (κ/N) Σ_i a_i φ(w_i·x), φ(h) = h + (ε/2)h², readouts a_i ≡ 1 unless
              ``readouts=True`` (spec §2.3 "with readouts", a_i(0) ~ N(0, 1), trained);
* loss        L = (1/P) Σ_μ (f̃(x_μ) − y_μ)² (mean squared error, no ½), f̃ = f or, with
              ``center=True``, f̃ = f(·; θ) − f(·; θ₀) (§1.4, App. 8.1);
* training    full batch, η = η₀·N/(κ²σ²) with η₀ = ``lr`` and σ = ``init_scale`` (§1.4; the
              σ² is the weight-norm rescaling of Fig. 6 and is 1 by default). Time is
              t = η₀·step/D (§0).

Initialisation (§0, §1.3): ``init_overlap=None`` draws W(0)_ij ~ N(0, 1); a list of overlaps
m_i plants w_i(0) = (m_i/ρ) β + (1 − m_i²/ρ)^(1/2) z_i with z_i ~ N(0, I_D) projected onto the
orthogonal complement of β and rescaled to |z_i|² = D (theory.md §0), so that m(0) = W(0)β/D
equals the requested overlaps and Q(0)_ii = 1 *exactly* (the off-diagonal Q(0)_ij keep their
O(D^(-1/2)) fluctuations z_i·z_j/D around m_i m_j/ρ).
``init_scale`` σ multiplies the whole W(0) afterwards (planted overlaps become σ·m_i).

Recorded on a log-spaced set of steps (plus step 0): t, train loss, the *exact* population
test loss from the order parameters (m, Q and, when centred, the cross overlap W(t)W(0)ᵀ/D)
via :mod:`dmft.population`, its three-term decomposition, and in ``extras`` the parameter norm,
the relative movement ‖θ − θ₀‖/‖θ₀‖, the recorded step numbers and, when ``n_test > 0``, the
loss on a finite test set.

Optimisers (spec §5 table): ``"gd"`` (plain full-batch GD, the default), ``"momentum"``
(heavy ball, v ← μv + g, θ ← θ − ηv, as ``jax.example_libraries.optimizers.momentum``
used in App. 15a), ``"adam"`` (L2 weight decay added to the gradient) and ``"adamw"``
(decoupled weight decay θ ← θ − η λ θ, as ``torch.optim.AdamW``). For Adam/AdamW the step size
is η = η₀/(κ²σ²): the per-coordinate normalisation removes the gradient's 1/N, and the
1/κ² is the papers' lazy rescaling of the AdamW learning rate (Transformer row of §5). For GD
and momentum ``weight_decay`` λ adds λθ to the gradient.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from dmft.ntk import cka, lazy_curves, ntk_gram
from dmft.parameters import InvalidParameterError, check_finite, check_int_at_least, check_positive, resolve_epsilon
from dmft.population import centered_loss_decomposition, loss_decomposition
from dmft.result import LearningCurves
from empirical.devices import resolve_device

__all__ = [
    "CommitteeData",
    "ACTIVATIONS",
    "FAMILY_ACTIVATIONS",
    "is_family_student",
    "OPTIMIZERS",
    "train_committee",
    "make_committee_data",
    "committee_loss_and_gradient",
    "readout_loss_decomposition",
    "record_schedule",
    "steps_for_time",
    "simulate_seeds",
    "average",
]

#: Optimisers of the trainer (spec §5 table).
OPTIMIZERS = ("gd", "momentum", "adam", "adamw")


# --------------------------------------------------------------------------------------------
# activations φ and φ'
# --------------------------------------------------------------------------------------------
def _poly(h, eps):
    return h + 0.5 * eps * h * h


def _poly_prime(h, eps):
    return 1.0 + eps * h


def _quad(h, eps):
    return 0.5 * eps * h * h


def _quad_prime(h, eps):
    return eps * h


def _cubic(h, eps):
    return 0.5 * eps * h**3


def _cubic_prime(h, eps):
    return 1.5 * eps * h * h


def _quartic(h, eps):
    return 0.5 * eps * h**4


def _quartic_prime(h, eps):
    return 2.0 * eps * h**3


def _poly3(h, eps):
    return h + 0.5 * eps * h**3


def _poly3_prime(h, eps):
    return 1.0 + 1.5 * eps * h * h


def _poly4(h, eps):
    return h + 0.5 * eps * h**4


def _poly4_prime(h, eps):
    return 1.0 + 2.0 * eps * h**3


def _relu_quartic(h, eps):
    return torch.clamp(h, min=0) + 0.5 * eps * h**4 if isinstance(h, torch.Tensor) else (
        np.maximum(h, 0) + 0.5 * eps * h**4)


def _relu_quartic_prime(h, eps):
    if isinstance(h, torch.Tensor):
        return (h > 0).to(h.dtype) + 2.0 * eps * h**3
    return (h > 0).astype(h.dtype) + 2.0 * eps * h**3


#: name → (φ, φ') with φ(h; ε). ``"poly"`` is the paper's φ(h) = h + (ε/2)h² (§1.1); the others
#: are the alternative activations of the eigenvector-label task (App. 8.4): (ε/2)h², (ε/2)h³,
#: relu(h) + (ε/2)h⁴, (ε/2)h⁴; ``"poly3"``/``"poly4"`` (h + (ε/2)h³, h + (ε/2)h⁴) serve the
#: higher-degree Hermite targets (App. 16). The exact population loss of §2.4 exists only for
#: ``"poly"``; the others report the finite test-set loss.
#: Students of the general family (theory.md §10) that :func:`train_committee` hands to
#: :func:`empirical.committee.family.train_committee_family`.
FAMILY_ACTIVATIONS = ("erf", "tanh", "relu", "linear")


def is_family_student(activation) -> bool:
    """Whether ``activation`` names a student of the general family (a name of
    :data:`FAMILY_ACTIVATIONS` or ``smoothed_relu:<width>``, theory.md §10.9)."""
    return isinstance(activation, str) and (activation in FAMILY_ACTIVATIONS or activation.startswith("smoothed_relu:"))

ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "poly": (_poly, _poly_prime),
    "quadratic": (_quad, _quad_prime),
    "cubic": (_cubic, _cubic_prime),
    "relu_quartic": (_relu_quartic, _relu_quartic_prime),
    "quartic": (_quartic, _quartic_prime),
    "poly3": (_poly3, _poly3_prime),
    "poly4": (_poly4, _poly4_prime),
}


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommitteeData:
    """Explicit draws for one run (lets tests and tasks share data with other implementations).

    Attributes
    ----------
    inputs : ndarray, shape (P, D)
        Training inputs (rows x_μ).
    targets : ndarray, shape (P,)
        Training labels y_μ.
    init_weights : ndarray, shape (N, D)
        W(0) (already multiplied by any init scale).
    teacher : ndarray, shape (D,) or None
        β. ``None`` for targets that are not s·(β·x)² (eigenvector labels, Hermite or
        multi-index targets): the population test loss, overlaps and decomposition are then NaN
        and the test loss comes from the finite test set.
    test_inputs, test_targets : ndarray, optional
        A finite test set, shapes (P_test, D) and (P_test,).
    init_readouts : ndarray, shape (N,), optional
        a(0) of the trained-readout variant (ignored unless ``readouts=True``).
    """

    inputs: np.ndarray
    targets: np.ndarray
    init_weights: np.ndarray
    teacher: np.ndarray | None = None
    test_inputs: np.ndarray | None = None
    test_targets: np.ndarray | None = None
    init_readouts: np.ndarray | None = None

    def __post_init__(self) -> None:
        X = np.asarray(self.inputs, dtype=float)
        y = np.asarray(self.targets, dtype=float)
        W = np.asarray(self.init_weights, dtype=float)
        if X.ndim != 2:
            raise InvalidParameterError(f"inputs must have shape (P, D), got {X.shape}")
        p, d = X.shape
        if y.shape != (p,):
            raise InvalidParameterError(f"targets must have shape ({p},), got {y.shape}")
        if W.ndim != 2 or W.shape[1] != d:
            raise InvalidParameterError(f"init_weights must have shape (N, {d}), got {W.shape}")
        for name, arr in (("inputs", X), ("targets", y), ("init_weights", W)):
            if not np.all(np.isfinite(arr)):
                raise InvalidParameterError(f"{name} must be finite")
        object.__setattr__(self, "inputs", X)
        object.__setattr__(self, "targets", y)
        object.__setattr__(self, "init_weights", W)
        if self.teacher is not None:
            beta = np.asarray(self.teacher, dtype=float)
            if beta.shape != (d,):
                raise InvalidParameterError(f"teacher must have shape ({d},), got {beta.shape}")
            object.__setattr__(self, "teacher", beta)
        if (self.test_inputs is None) != (self.test_targets is None):
            raise InvalidParameterError("test_inputs and test_targets must be given together")
        if self.test_inputs is not None:
            Xt = np.asarray(self.test_inputs, dtype=float)
            yt = np.asarray(self.test_targets, dtype=float)
            if Xt.ndim != 2 or Xt.shape[1] != d or yt.shape != (Xt.shape[0],):
                raise InvalidParameterError(f"test_inputs/test_targets must have shapes (P_test, {d}) and (P_test,)")
            object.__setattr__(self, "test_inputs", Xt)
            object.__setattr__(self, "test_targets", yt)
        if self.init_readouts is not None:
            a = np.asarray(self.init_readouts, dtype=float)
            if a.shape != (W.shape[0],):
                raise InvalidParameterError(f"init_readouts must have shape ({W.shape[0]},), got {a.shape}")
            object.__setattr__(self, "init_readouts", a)

    @property
    def n_train(self) -> int:
        return self.inputs.shape[0]

    @property
    def dim(self) -> int:
        return self.inputs.shape[1]

    @property
    def width(self) -> int:
        return self.init_weights.shape[0]


def _streams(seed: int) -> list[np.random.Generator]:
    """Independent generators: teacher, initial weights, training set, test set, readouts."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)]


def make_committee_data(
    alpha: float,
    dim: int,
    width: int,
    *,
    init_overlap: Sequence[float] | None = None,
    init_scale: float = 1.0,
    rho: float = 1.0,
    target_scale: float = 0.5,
    n_test: int = 0,
    readouts: bool = False,
    seed: int = 0,
) -> CommitteeData:
    """Draw the data, teacher and initial weights of one run (theory.md §0, §1.2–1.3).

    The five ingredients come from independent streams of ``numpy.random.SeedSequence(seed)``
    (teacher, W(0), training set, test set, readouts), always in float64 on the CPU, so a run is
    reproducible across devices and dtypes and the test set does not depend on P.

    Parameters
    ----------
    alpha : float
        Sample ratio P/D; P = round(alpha·dim) >= 1.
    dim, width : int
        D and N.
    init_overlap : sequence of float, optional
        Planted overlaps m_i(0) (|m_i| < √ρ), exact, with Q(0)_ii = 1 exactly (|z_i|² = D,
        theory.md §0); ``None`` for W(0) ~ N(0, 1).
    init_scale : float
        σ, multiplies W(0).
    rho : float
        |β|²/D, imposed exactly.
    target_scale : float
        s in y = s·(β·x)².
    n_test : int
        Size of the finite test set (0: none).
    readouts : bool
        Also draw a(0) ~ N(0, 1).
    seed : int

    Returns
    -------
    CommitteeData
    """
    alpha = check_positive("alpha (P/D)", alpha)
    dim = check_int_at_least("dim (input dimension D)", dim, 1)
    width = check_int_at_least("width (hidden units N)", width, 1)
    init_scale = check_positive("init_scale (sigma)", init_scale)
    rho = check_positive("rho (teacher norm |beta|^2/D)", rho)
    target_scale = check_positive("target_scale", target_scale)
    n_test = check_int_at_least("n_test", n_test, 0)
    seed = check_int_at_least("seed", seed, 0)
    n_train = int(round(alpha * dim))
    if n_train < 1:
        raise InvalidParameterError(f"alpha*dim must round to at least one training sample, got alpha={alpha!r}, dim={dim}")
    teacher_rng, init_rng, train_rng, test_rng, readout_rng = _streams(seed)

    beta = teacher_rng.standard_normal(dim)
    beta *= math.sqrt(rho * dim) / np.linalg.norm(beta)

    z = init_rng.standard_normal((width, dim))
    if init_overlap is None:
        W0 = z
    else:
        m0 = np.atleast_1d(np.asarray(init_overlap, dtype=float))
        if m0.shape != (width,):
            raise InvalidParameterError(f"init_overlap must have one entry per hidden unit (width={width}), got shape {m0.shape}")
        if not np.all(np.isfinite(m0)) or np.any(np.abs(m0) >= math.sqrt(rho)):
            raise InvalidParameterError(f"init_overlap entries must satisfy |m_i(0)| < sqrt(rho) = {math.sqrt(rho):g}, got {m0.tolist()}")
        if dim < 2:
            raise InvalidParameterError("a planted init_overlap needs dim >= 2")
        beta_hat = beta / np.linalg.norm(beta)
        z_perp = z - np.outer(z @ beta_hat, beta_hat)
        z_perp *= math.sqrt(dim) / np.linalg.norm(z_perp, axis=1, keepdims=True)  # |z_i|² = D (theory.md §0)
        W0 = (m0 / rho)[:, None] * beta[None, :] + np.sqrt(1.0 - m0**2 / rho)[:, None] * z_perp
    W0 = init_scale * W0

    X = train_rng.standard_normal((n_train, dim)) / math.sqrt(dim)
    y = target_scale * (X @ beta) ** 2
    Xt = yt = None
    if n_test > 0:
        Xt = test_rng.standard_normal((n_test, dim)) / math.sqrt(dim)
        yt = target_scale * (Xt @ beta) ** 2
    a0 = readout_rng.standard_normal(width) if readouts else None
    return CommitteeData(inputs=X, targets=y, init_weights=W0, teacher=beta, test_inputs=Xt,
                         test_targets=yt, init_readouts=a0)


# --------------------------------------------------------------------------------------------
# loss, gradient and exact population loss
# --------------------------------------------------------------------------------------------
def committee_loss_and_gradient(weights, readouts, inputs, targets, *, scale, epsilon,
                                offset=None, activation="poly"):
    """Training loss and its closed-form gradient (theory.md §1.4).

    With H = X Wᵀ (P×N), f = (κ/N) φ(H) a − f₀, r = f − y and L = mean(r²):

        ∂L/∂W = (2κ/(N P)) [(r ⊗ a) ⊙ φ'(H)]ᵀ X,     ∂L/∂a = (2κ/(N P)) φ(H)ᵀ r.

    Works on torch tensors or NumPy arrays alike.

    Parameters
    ----------
    weights : (N, D)
    readouts : (N,) or None
        ``None`` means a ≡ 1 (fixed readouts).
    inputs : (P, D)
    targets : (P,)
    offset : (P,), optional
        f(x_μ; θ₀) subtracted for the centred predictor.

    Returns
    -------
    loss, grad_weights, grad_readouts (None when ``readouts`` is None), residual r (P,)
    """
    phi, dphi = ACTIVATIONS[activation]
    n = weights.shape[0]
    p = inputs.shape[0]
    H = inputs @ weights.T
    act = phi(H, epsilon)
    f = (scale / n) * (act.sum(1) if readouts is None else act @ readouts)
    if offset is not None:
        f = f - offset
    r = f - targets
    loss = (r * r).mean()
    coef = 2.0 * scale / (n * p)
    weighted = dphi(H, epsilon) * r[:, None]
    if readouts is not None:
        weighted = weighted * readouts[None, :]
    grad_w = coef * (weighted.T @ inputs)
    grad_a = None if readouts is None else coef * (act.T @ r)
    return loss, grad_w, grad_a, r


def _predict(weights, readouts, inputs, *, scale, epsilon, activation):
    phi = ACTIVATIONS[activation][0]
    n = weights.shape[0]
    act = phi(inputs @ weights.T, epsilon)
    return (scale / n) * (act.sum(1) if readouts is None else act @ readouts)


def readout_loss_decomposition(gram, coef_linear, coef_quadratic):
    """Exact E_x[(Σ_k b_k h_k + Σ_k c_k h_k²)²] for Gaussian h ~ N(0, G), split in three.

    The general form behind theory.md §2.3/§4.2: with h = (w_1·x, …, β·x) (and the w_i(0)·x of
    the centred predictor), f − y is such a polynomial. Used for the trained-readout variant
    (§2.3 "with readouts": b = (κ/N)a, c = (κε/(2N))a, c_β = −s), where dmft.population (a ≡ 1)
    does not apply.

    Parameters
    ----------
    gram : (..., K, K)
    coef_linear, coef_quadratic : (..., K)

    Returns
    -------
    (..., 3): variance (Σ c_k G_kk)², alignment 2 Σ c_k c_l G_kl², linear bᵀGb.
    """
    G = np.asarray(gram, dtype=float)
    b = np.asarray(coef_linear, dtype=float)
    c = np.asarray(coef_quadratic, dtype=float)
    diag = np.diagonal(G, axis1=-2, axis2=-1)
    variance = np.sum(c * diag, axis=-1) ** 2
    alignment = 2.0 * np.einsum("...kl,...k,...l->...", G * G, c, c)
    linear = np.einsum("...kl,...k,...l->...", G, b, b)
    return np.stack([variance, alignment, linear], axis=-1)


# --------------------------------------------------------------------------------------------
# schedules
# --------------------------------------------------------------------------------------------
def record_schedule(steps: int, record_points: int) -> np.ndarray:
    """Step 0 plus about ``record_points − 1`` log-spaced integer steps in [1, steps] (unique;
    always ending at ``steps``)."""
    steps = check_int_at_least("steps", steps, 1)
    record_points = check_int_at_least("record_points", record_points, 2)
    if record_points == 2:
        return np.array([0, steps], dtype=np.int64)
    logs = np.round(np.geomspace(1, steps, record_points - 1)).astype(np.int64)
    return np.unique(np.concatenate([[0], logs, [steps]]))


def steps_for_time(t_max: float, dim: int, lr: float) -> int:
    """Number of GD steps that reach theory time t_max = η₀·step/D (rounded up)."""
    return max(1, int(math.ceil(t_max * dim / lr - 1e-9)))


_DTYPES = {"float64": torch.float64, "float32": torch.float32}


# --------------------------------------------------------------------------------------------
# the trainer
# --------------------------------------------------------------------------------------------
def train_committee(
    alpha: float,
    dim: int,
    width: int,
    scale: float = 1.0,
    epsilon: float | None = None,
    t_max: float | None = None,
    steps: int | None = None,
    lr: float = 1.0,
    init_overlap: Sequence[float] | None = None,
    init_scale: float = 1.0,
    center: bool = False,
    rho: float = 1.0,
    target_scale: float = 0.5,
    optimizer: str = "gd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    adam_eps: float = 1e-8,
    readouts: bool = False,
    activation: str = "poly",
    n_test: int = 0,
    record_points: int = 200,
    seed: int = 0,
    device: str = "auto",
    dtype: str = "float64",
    progress: bool = False,
    data: CommitteeData | None = None,
    record_hook: Callable[[int, Any], Mapping[str, float]] | None = None,
    cka_every: int = 0,
    baselines: bool = False,
    target: str = "square",
    teacher_width: int = 1,
    teacher_scale: float = 1.0,
    teacher_activation: str | None = None,
    noise: float = 0.0,
) -> LearningCurves:
    """Train the committee machine by full-batch gradient descent (theory.md §0, §1).

    With a student of the general family (``activation`` ``"erf"``, ``"tanh"``, ``"relu"`` or
    ``"linear"``), a committee teacher (``target="committee"``) or output noise, the run is
    :func:`empirical.committee.family.train_committee_family` (theory.md §10), the simulation that
    ``dmft.solve(..., activation=..., target=...)`` describes, recorded at the same steps.

    Parameters
    ----------
    alpha : float
        Sample ratio P/D (finite, > 0); P = round(alpha·dim).
    dim, width : int
        Input dimension D and hidden units N.
    scale : float, default 1
        Output scale κ > 0.
    epsilon : float, optional
        ε of φ(h) = h + (ε/2)h²; required by the polynomial students (``"poly"`` and the other
        keys of :data:`ACTIVATIONS`) and by a quadratic teacher; with a student of the family
        (erf, tanh, relu, linear, smoothed ReLU) it has no meaning: leave it out (0), a
        non-zero value is refused (:func:`dmft.parameters.resolve_epsilon`).
    t_max, steps :
        Length of the run: exactly one of them; t_max in theory time t = η₀·step/D.
    lr : float, default 1
        η₀; the step size is η = η₀N/(κ²σ²) (Adam/AdamW: η₀/(κ²σ²)).
    init_overlap : sequence of float, optional
        Planted m(0) (exact); ``None``: W(0) ~ N(0, 1).
    init_scale : float, default 1
        σ, W(0) ← σW(0) (Fig. 6).
    center : bool, default False
        Train f(x; θ) − f(x; θ₀).
    rho : float, default 1
        |β|²/D, imposed exactly.
    target_scale : float, default 0.5
        y = s·(β·x)²: 0.5 is convention A, 1 convention B (§1.2).
    optimizer : {"gd", "momentum", "adam", "adamw"}
    momentum : float in [0, 1)
        μ of the heavy-ball optimiser (0.95 in App. 15a).
    weight_decay : float >= 0
        λ (L2 for gd/momentum/adam, decoupled for adamw).
    betas, adam_eps :
        Adam moment decay rates and denominator constant.
    readouts : bool, default False
        Train readouts a_i too (spec §2.3, App. 12 Fig. 12), a(0) ~ N(0, 1).
    activation : str, default "poly"
        A key of :data:`ACTIVATIONS` (only ``"poly"`` has an exact population loss here), or a
        student of the general family, :data:`FAMILY_ACTIVATIONS` (erf(h/√2), tanh, relu, h). The
        theory's ``"quadratic"`` (h + (ε/2)h²) is ``"poly"`` here: this trainer's ``"quadratic"``
        is (ε/2)h², the eigenvector-label activation.
    n_test : int, default 0
        Size of a finite test set whose loss is recorded as ``extras["test_loss_finite"]``.
    record_points : int, default 200
        About this many recorded steps (step 0 and a log-spaced set).
    seed : int, default 0
    device : {"auto", "cpu", "cuda", "cuda:k"}
    dtype : {"float64", "float32"}
    progress : bool
        tqdm progress bar over steps.
    data : CommitteeData, optional
        Explicit X, y, W(0), β (and test set, a(0)); replaces the seeded draws. Must agree with
        ``alpha``, ``dim`` and ``width``. With ``teacher=None`` the test loss is the finite
        test-set loss and overlaps, covariance and decomposition are NaN.
    record_hook : callable, optional
        ``hook(step, state) -> {name: float}`` called at each record with a namespace holding
        the current tensors (``weights``, ``readouts``, ``init_weights``, ``test_inputs``);
        its values are stored as ``extras[name]``.
    cka_every : int, default 0
        k > 0: every k steps (and at the last step) the CKA (theory.md §2.5, one-sided
        centring, :func:`dmft.ntk.cka`) of the test-set NTK Gram w.r.t. W
        (:func:`dmft.ntk.ntk_gram`) with the test labels, stored as ``extras["cka"]`` with
        ``extras["cka_steps"]`` and ``extras["cka_t"]`` (the paper: every 100 steps). Needs a
        test set, ``activation="poly"`` and fixed readouts.
    baselines : bool, default False
        Add the spec §1.4 baselines from :mod:`dmft.ntk`: the linearised model trained by the
        same GD (:func:`dmft.ntk.lazy_curves` with ``lr``), ``extras["lazy_train_loss"]`` and
        ``extras["lazy_test_loss"]`` (exact population) on the recorded times; and K₀ kernel
        regression (no ridge) of the training labels (of y − f₀ when uncentred),
        ``extras["k0_regression_test_loss"]`` (population, the t → ∞ lazy limit) and
        ``extras["k0_regression_test_set_loss"]`` (finite test set, when there is one).
        Needs the quadratic teacher, ``activation="poly"``, fixed readouts and plain GD.
    target : {"square", "committee"}, default "square"
        ``committee``: y = (κ*/M) Σ_m φ*(β_m·x) + σξ (theory.md §10.1), trained as the family.
    teacher_width, teacher_scale, teacher_activation
        M, κ*, φ* of the committee teacher (φ*: a name of :data:`dmft.activations.ACTIVATION_NAMES`,
        where ``"quadratic"`` is h + (ε/2)h²; default the student's). T = I.
    noise : float, default 0
        Output-noise variance σ² of the targets (family runs).

    The family runs take plain gradient descent only, with fixed readouts, σ = 1, ρ = 1 and no
    test set: other settings of those options are refused, naming the option. ``center=True``
    trains the centred predictor f(·; W) − f(·; W(0)) as for the quadratic model (theory.md §10.10).
    ``init_overlap`` is then R(0), N·M numbers (row-major) or an N×M array.

    Returns
    -------
    LearningCurves
        kind ``"simulation"``; ``extras`` holds ``steps``, ``param_norm``,
        ``relative_movement``, ``cross_cov`` (centred), ``readouts`` (trained readouts),
        ``test_loss_finite`` (n_test > 0 or a given test set), ``population_test_loss``.
    """
    if is_family_student(activation) or target != "square" or noise != 0.0:
        return _train_family_member(
            alpha=alpha, dim=dim, width=width, scale=scale, epsilon=epsilon, t_max=t_max, steps=steps, lr=lr,
            init_overlap=init_overlap, activation=activation, target=target, teacher_width=teacher_width,
            teacher_scale=teacher_scale, teacher_activation=teacher_activation, noise=noise,
            record_points=record_points, seed=seed, device=device, dtype=dtype, progress=progress, center=center,
            fixed={"init_scale": (init_scale, 1.0), "rho": (rho, 1.0),
                   "target_scale": (target_scale, 0.5), "optimizer": (optimizer, "gd"), "momentum": (momentum, 0.0),
                   "weight_decay": (weight_decay, 0.0), "readouts": (readouts, False), "n_test": (n_test, 0),
                   "data": (data, None), "record_hook": (record_hook, None), "cka_every": (cka_every, 0),
                   "baselines": (baselines, False)})
    if epsilon is None:
        raise InvalidParameterError(f"epsilon is required with activation {activation!r} (the polynomial students "
                                    "use it; phi(h) = h + (epsilon/2) h^2 for 'poly')")
    start = time.perf_counter()
    alpha = check_positive("alpha (P/D)", alpha)
    dim = check_int_at_least("dim (input dimension D)", dim, 1)
    width = check_int_at_least("width (hidden units N)", width, 1)
    scale = check_positive("scale (output scale kappa)", scale)
    epsilon = check_finite("epsilon", epsilon)
    lr = check_positive("lr (eta_0)", lr)
    init_scale = check_positive("init_scale (sigma)", init_scale)
    rho = check_positive("rho (teacher norm |beta|^2/D)", rho)
    target_scale = check_positive("target_scale", target_scale)
    if optimizer not in OPTIMIZERS:
        raise InvalidParameterError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    momentum = check_finite("momentum", momentum)
    if not 0.0 <= momentum < 1.0:
        raise InvalidParameterError(f"momentum must lie in [0, 1), got {momentum!r}")
    if optimizer != "momentum" and momentum != 0.0:
        raise InvalidParameterError(f"momentum must be 0 unless optimizer='momentum', got {momentum!r} with {optimizer!r}")
    weight_decay = check_finite("weight_decay", weight_decay)
    if weight_decay < 0:
        raise InvalidParameterError(f"weight_decay must lie in [0, inf), got {weight_decay!r}")
    beta1, beta2 = (check_finite("betas", b) for b in betas)
    if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
        raise InvalidParameterError(f"betas must lie in [0, 1), got {tuple(betas)!r}")
    adam_eps = check_positive("adam_eps", adam_eps)
    if activation not in ACTIVATIONS:
        raise InvalidParameterError(f"activation must be one of {', '.join((*ACTIVATIONS, *FAMILY_ACTIVATIONS))}, "
                                    f"got {activation!r}")
    n_test = check_int_at_least("n_test", n_test, 0)
    record_points = check_int_at_least("record_points", record_points, 2)
    seed = check_int_at_least("seed", seed, 0)
    if dtype not in _DTYPES:
        raise InvalidParameterError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    if (t_max is None) == (steps is None):
        raise InvalidParameterError("give exactly one of t_max (theory time) and steps")
    if steps is None:
        t_max = check_positive("t_max", t_max)
        steps = steps_for_time(t_max, dim, lr)
    steps = check_int_at_least("steps", steps, 1)
    dev = resolve_device(device)
    tdtype = _DTYPES[dtype]

    explicit_data = data is not None
    if data is None:
        data = make_committee_data(alpha, dim, width, init_overlap=init_overlap, init_scale=init_scale,
                                   rho=rho, target_scale=target_scale, n_test=n_test, readouts=readouts,
                                   seed=seed)
    else:
        if not isinstance(data, CommitteeData):
            raise InvalidParameterError("data must be a CommitteeData instance")
        if data.dim != dim or data.width != width or data.n_train != int(round(alpha * dim)):
            raise InvalidParameterError(
                f"data (P={data.n_train}, D={data.dim}, N={data.width}) disagrees with alpha={alpha:g}, "
                f"dim={dim}, width={width} (P must equal round(alpha*dim))")
        if readouts and data.init_readouts is None:
            raise InvalidParameterError("readouts=True needs data.init_readouts")
    if data.teacher is not None:
        beta_np = data.teacher
        rho = float(beta_np @ beta_np / dim)
    exact_population = data.teacher is not None and activation == "poly"
    cka_every = check_int_at_least("cka_every", cka_every, 0)
    if cka_every and (data.test_inputs is None or activation != "poly" or readouts):
        raise InvalidParameterError("cka_every > 0 needs a test set (n_test > 0), activation='poly' and fixed readouts")
    if baselines and (data.teacher is None or activation != "poly" or readouts or optimizer != "gd"
                      or weight_decay or init_scale != 1.0):
        raise InvalidParameterError("baselines=True needs the quadratic teacher, activation='poly', fixed readouts, "
                         "optimizer='gd' without weight decay and init_scale=1")
    if not exact_population and data.test_inputs is None:
        raise InvalidParameterError("without a teacher or with a non-'poly' activation the test loss needs a test set "
                         "(n_test > 0 or data.test_inputs)")

    n_train = data.n_train
    with torch.no_grad():
        as_t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=tdtype, device=dev)  # noqa: E731
        X = as_t(data.inputs)
        y = as_t(data.targets)
        W = as_t(data.init_weights).clone()
        W0 = W.clone()
        a = as_t(data.init_readouts).clone() if readouts else None
        a0 = a.clone() if readouts else None
        beta = as_t(data.teacher) if data.teacher is not None else None
        Xt = as_t(data.test_inputs) if data.test_inputs is not None else None
        yt = as_t(data.test_targets) if data.test_inputs is not None else None
        model = dict(scale=scale, epsilon=epsilon, activation=activation)
        f0 = _predict(W0, a0, X, **model) if center else None
        f0_test = _predict(W0, a0, Xt, **model) if (center and Xt is not None) else None
        theta0_norm = math.sqrt(float((W0 * W0).sum()) + (float((a0 * a0).sum()) if readouts else 0.0))

        sigma2 = init_scale**2
        eta = lr * width / (scale**2 * sigma2) if optimizer in ("gd", "momentum") else lr / (scale**2 * sigma2)
        schedule = record_schedule(steps, record_points)
        record_at = set(schedule.tolist())
        n_rec = len(schedule)

        train_loss = np.empty(n_rec)
        overlap = np.full((n_rec, width), np.nan)
        cov = np.full((n_rec, width, width), np.nan)
        cross = np.full((n_rec, width, width), np.nan) if center else None
        readout_hist = np.empty((n_rec, width)) if readouts else None
        param_norm = np.empty(n_rec)
        movement = np.empty(n_rec)
        finite_test = np.empty(n_rec) if Xt is not None else None
        hook_values: dict[str, np.ndarray] = {}
        cka_steps: list[int] = []
        cka_values: list[float] = []

        state_w = torch.zeros_like(W) if optimizer != "gd" else None
        state_a = torch.zeros_like(a) if (optimizer != "gd" and readouts) else None
        second_w = torch.zeros_like(W) if optimizer in ("adam", "adamw") else None
        second_a = torch.zeros_like(a) if (optimizer in ("adam", "adamw") and readouts) else None

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, desc="committee GD", unit="step", leave=False)
        rec = 0
        last_reported = 0
        for step in range(steps + 1):
            loss, gW, ga, _ = committee_loss_and_gradient(W, a, X, y, offset=f0, **model)
            if cka_every and (step % cka_every == 0 or step == steps):
                gram = ntk_gram(W.cpu().numpy(), data.test_inputs, epsilon=epsilon, scale=scale)
                cka_steps.append(step)
                cka_values.append(cka(gram, data.test_targets))
            if step in record_at:
                train_loss[rec] = float(loss)
                if beta is not None:
                    overlap[rec] = (W @ beta / dim).cpu().numpy()
                cov[rec] = (W @ W.T / dim).cpu().numpy()
                if center:
                    cross[rec] = (W @ W0.T / dim).cpu().numpy()
                if readouts:
                    readout_hist[rec] = a.cpu().numpy()
                dW = W - W0
                norm2 = float((W * W).sum())
                move2 = float((dW * dW).sum())
                if readouts:
                    norm2 += float((a * a).sum())
                    move2 += float(((a - a0) ** 2).sum())
                param_norm[rec] = math.sqrt(norm2)
                movement[rec] = math.sqrt(move2) / theta0_norm
                if Xt is not None:
                    ft = _predict(W, a, Xt, **model)
                    if f0_test is not None:
                        ft = ft - f0_test
                    finite_test[rec] = float(((ft - yt) ** 2).mean())
                if record_hook is not None:
                    state = _HookState(weights=W, readouts=a, init_weights=W0, init_readouts=a0,
                                       test_inputs=Xt, step=step)
                    for key, value in dict(record_hook(step, state)).items():
                        hook_values.setdefault(key, np.full(n_rec, np.nan))[rec] = float(value)
                rec += 1
                if bar is not None:
                    bar.update(step - last_reported)
                    last_reported = step
                if not math.isfinite(float(loss)):
                    break
            if step == steps:
                break
            _apply_update(optimizer, step + 1, W, gW, state_w, second_w, eta, momentum, weight_decay,
                          beta1, beta2, adam_eps)
            if readouts:
                _apply_update(optimizer, step + 1, a, ga, state_a, second_a, eta, momentum, weight_decay,
                              beta1, beta2, adam_eps)
        if bar is not None:
            bar.close()

    # truncate if a divergence stopped the run early
    schedule = schedule[:rec]
    train_loss = train_loss[:rec]
    overlap, cov, param_norm, movement = overlap[:rec], cov[:rec], param_norm[:rec], movement[:rec]
    finished = bool(rec == n_rec and np.all(np.isfinite(train_loss)))

    population = np.full((rec, 3), np.nan)
    if exact_population:
        # y = s·(β·x)² = ½(√(2s) β·x)²: convention A with β_eff = √(2s)β, ρ_eff = 2sρ, m_eff = √(2s)m.
        root = math.sqrt(2.0 * target_scale)
        kw = dict(epsilon=epsilon, scale=scale, rho=2.0 * target_scale * rho)
        m0 = overlap[0]
        if readouts:
            population = _readout_population(cov, overlap, cross[:rec] if center else None,
                                             readout_hist[:rec], a0.cpu().numpy() if center else None,
                                             scale=scale, epsilon=epsilon, rho=rho, target_scale=target_scale)
        elif center:
            population = centered_loss_decomposition(cov, cross[:rec], root * overlap, cov0=cov[0],
                                                     overlap0=root * m0, **kw)
        else:
            population = loss_decomposition(cov, root * overlap, **kw)
    population_loss = population.sum(axis=-1)
    test_loss = population_loss if exact_population else finite_test[:rec]

    extras = {
        "steps": schedule.astype(np.int64),
        "param_norm": param_norm,
        "relative_movement": movement,
        "population_test_loss": population_loss,
    }
    if center:
        extras["cross_cov"] = cross[:rec]
    if readouts:
        extras["readouts"] = readout_hist[:rec]
    if finite_test is not None:
        extras["test_loss_finite"] = finite_test[:rec]
    for key, values in hook_values.items():
        extras[key] = values[:rec]
    if cka_every:
        extras["cka"] = np.asarray(cka_values)
        extras["cka_steps"] = np.asarray(cka_steps, dtype=np.int64)
        extras["cka_t"] = lr * np.asarray(cka_steps, dtype=float) / dim
    if baselines:
        extras.update(_kernel_baselines(data, epsilon=epsilon, scale=scale, center=center, lr=lr,
                                        target_scale=target_scale, t=lr * schedule / dim))

    parameters = {
        "alpha": n_train / dim, "epsilon": epsilon, "scale": scale, "width": width, "rho": rho,
        "init_overlap": None if init_overlap is None else [float(v) for v in np.atleast_1d(init_overlap)],
        "center": bool(center), "dim": dim, "n_train": n_train, "target_scale": target_scale,
        "init_scale": init_scale, "readouts": bool(readouts), "activation": activation,
    }
    settings = {
        "seed": seed, "steps": steps, "lr": lr, "eta": eta, "optimizer": optimizer, "momentum": momentum,
        "weight_decay": weight_decay, "betas": [beta1, beta2], "adam_eps": adam_eps, "n_test": n_test,
        "record_points": record_points, "device": str(dev), "dtype": dtype,
        "explicit_data": explicit_data,
        "test_loss_source": "population" if exact_population else "test_set",
    }
    message = (f"trained {steps} steps" if finished
               else f"stopped at step {int(schedule[-1])}: non-finite training loss (diverged)")
    return LearningCurves(
        kind="simulation",
        t=lr * schedule / dim,
        train_loss=train_loss,
        test_loss=test_loss,
        overlap=overlap,
        cov=cov,
        decomposition=population,
        parameters=parameters,
        settings=settings,
        converged=finished,
        iterations=int(schedule[-1]),
        residual=0.0,
        residual_history=np.zeros(0),
        seconds=time.perf_counter() - start,
        message=message,
        extras=extras,
    )


def _train_family_member(*, alpha, dim, width, scale, epsilon, t_max, steps, lr, init_overlap, activation, target,
                         teacher_width, teacher_scale, teacher_activation, noise, record_points, seed, device, dtype,
                         progress, center, fixed) -> LearningCurves:
    """The family branch of :func:`train_committee`: refuse what it does not take, build the
    :class:`~dmft.committee_online.CommitteeModel`, train it at the recorded steps."""
    from dmft.committee_online import CommitteeModel
    from empirical.committee.family import train_committee_family

    for name, (value, default) in fixed.items():
        if not (value is default or (isinstance(value, (bool, int, float, str)) and value == default)):
            raise InvalidParameterError(
                f"{name} must stay at its default {default!r} for a general-family run (activation "
                f"{activation!r}, target {target!r}, noise {noise!r}: plain gradient descent with fixed "
                f"readouts), got {value!r}")
    if not (is_family_student(activation) or activation == "poly"):
        raise InvalidParameterError(
            f"activation must be 'poly' (h + (eps/2) h^2), smoothed_relu:<width> or one of "
            f"{', '.join(FAMILY_ACTIVATIONS)} with "
            f"target={target!r} or noise > 0, got {activation!r}")
    dim = check_int_at_least("dim (input dimension D)", dim, 2)
    lr = check_positive("lr (eta_0)", lr)
    if (t_max is None) == (steps is None):
        raise InvalidParameterError("give exactly one of t_max (theory time) and steps")
    if steps is None:
        steps = steps_for_time(check_positive("t_max", t_max), dim, lr)
    steps = check_int_at_least("steps", steps, 1)
    record_points = check_int_at_least("record_points", record_points, 2)
    teachers = teacher_width if target == "committee" else 1
    overlap = None
    if init_overlap is not None:
        overlap = np.asarray(init_overlap, dtype=float)
        if overlap.ndim == 1:
            if overlap.size != width * teachers:
                raise InvalidParameterError(f"init_overlap must have N*M = {width * teachers} entries, "
                                            f"got {overlap.size}")
            overlap = overlap.reshape(width, teachers)
    name = "quadratic" if activation == "poly" else activation
    teacher = "quadratic" if teacher_activation == "poly" else teacher_activation
    epsilon = resolve_epsilon(epsilon, name, target, teacher)
    model = CommitteeModel(activation=name, epsilon=epsilon, scale=scale, width=width, target=target,
                           teacher_width=teacher_width, teacher_scale=teacher_scale, teacher_activation=teacher,
                           noise=noise, init_overlap=overlap, center=bool(center))
    schedule = record_schedule(steps, record_points)
    time_step = lr / dim
    result = train_committee_family(model, alpha, dim, schedule * time_step, seed=seed, time_step=time_step,
                                    device=device, dtype=dtype, progress=progress)
    n_train = int(round(alpha * dim))
    parameters = {**result.parameters, "activation": activation, "dim": dim, "n_train": n_train,
                  "center": bool(center), "init_scale": 1.0, "readouts": False}
    settings = {**result.settings, "steps": steps, "lr": lr, "eta": lr * width / scale**2, "optimizer": "gd",
                "record_points": record_points, "test_loss_source": "population", "trainer": "family"}
    return dataclasses.replace(result, parameters=parameters, settings=settings, iterations=steps,
                               message=f"trained {steps} steps (general family)")


def _kernel_baselines(data, *, epsilon, scale, center, lr, target_scale, t):
    """Linearised-model curves and K₀ kernel regression (spec §1.4) via :mod:`dmft.ntk`."""
    x_test, y_test = data.test_inputs, data.test_targets
    if x_test is None:  # lazy_curves wants a test set; the population losses do not depend on it
        x_test, y_test = data.inputs[:2], data.targets[:2]
    common = dict(epsilon=epsilon, scale=scale, teacher=data.teacher, center=center, target_scale=target_scale)
    lazy = lazy_curves(data.init_weights, data.inputs, data.targets, x_test, y_test, t=t, lr=lr, **common)
    limit = lazy_curves(data.init_weights, data.inputs, data.targets, x_test, y_test, t=[0.0, math.inf], **common)
    out = {
        "lazy_train_loss": lazy.train_loss,
        "lazy_test_loss": lazy.test_loss,
        "k0_regression_test_loss": np.array(limit.test_loss[-1]),
    }
    if data.test_inputs is not None:
        out["lazy_test_set_loss"] = lazy.extras["test_loss_test_set"]
        out["k0_regression_test_set_loss"] = np.array(limit.extras["test_loss_test_set"][-1])
    return out


@dataclass(frozen=True)
class _HookState:
    """Read-only view of the trainer's tensors handed to ``record_hook``."""

    weights: Any
    readouts: Any
    init_weights: Any
    init_readouts: Any
    test_inputs: Any
    step: int


def _apply_update(optimizer, k, param, grad, first, second, eta, momentum, weight_decay, beta1, beta2, adam_eps):
    """In-place parameter update of one optimiser step k = 1, 2, … (see module docstring)."""
    if optimizer == "gd":
        if weight_decay:
            grad = grad + weight_decay * param
        param.sub_(eta * grad)
    elif optimizer == "momentum":
        if weight_decay:
            grad = grad + weight_decay * param
        first.mul_(momentum).add_(grad)
        param.sub_(eta * first)
    else:
        if optimizer == "adam" and weight_decay:
            grad = grad + weight_decay * param
        if optimizer == "adamw" and weight_decay:
            param.mul_(1.0 - eta * weight_decay)
        first.mul_(beta1).add_((1.0 - beta1) * grad)
        second.mul_(beta2).add_((1.0 - beta2) * grad * grad)
        m_hat = first / (1.0 - beta1**k)
        v_hat = second / (1.0 - beta2**k)
        param.sub_(eta * m_hat / (v_hat.sqrt() + adam_eps))


def _readout_population(cov, overlap, cross, readout_hist, a0, *, scale, epsilon, rho, target_scale):
    """Exact test-loss decomposition with trained readouts (spec §2.3 "with readouts")."""
    T, n = overlap.shape
    if cross is None:
        G = np.empty((T, n + 1, n + 1))
        G[:, :n, :n] = cov
        G[:, :n, n] = G[:, n, :n] = overlap
        G[:, n, n] = rho
        b = np.concatenate([scale / n * readout_hist, np.zeros((T, 1))], axis=1)
        c = np.concatenate([scale * epsilon / (2 * n) * readout_hist, np.full((T, 1), -target_scale)], axis=1)
    else:
        G = np.empty((T, 2 * n + 1, 2 * n + 1))
        G[:, :n, :n] = cov
        G[:, :n, n:2 * n] = cross
        G[:, n:2 * n, :n] = np.swapaxes(cross, 1, 2)
        G[:, n:2 * n, n:2 * n] = cov[0]
        G[:, :n, 2 * n] = G[:, 2 * n, :n] = overlap
        G[:, n:2 * n, 2 * n] = G[:, 2 * n, n:2 * n] = overlap[0]
        G[:, 2 * n, 2 * n] = rho
        a0b = np.broadcast_to(a0, (T, n))
        b = np.concatenate([scale / n * readout_hist, -scale / n * a0b, np.zeros((T, 1))], axis=1)
        c = np.concatenate([scale * epsilon / (2 * n) * readout_hist, -scale * epsilon / (2 * n) * a0b,
                            np.full((T, 1), -target_scale)], axis=1)
    return readout_loss_decomposition(G, b, c)


# --------------------------------------------------------------------------------------------
# seeds
# --------------------------------------------------------------------------------------------
def average(runs: Sequence[LearningCurves]) -> LearningCurves:
    """Mean learning curves over runs that share a time grid, with their spread.

    Returns
    -------
    LearningCurves
        Means of train/test loss, overlap, cov and decomposition; ``extras`` adds, for
        ``train_loss`` and ``test_loss``: ``*_std`` (sample std, ddof=1; 0 for one run),
        ``*_sem`` (std/√S), ``*_q10``, ``*_q50``, ``*_q90`` (quantiles over runs) and ``*_all``
        (S, T); ``overlap_all`` (S, T, N); ``seeds``; and the mean of every extra array that all
        runs have with the same shape.
    """
    runs = list(runs)
    if not runs:
        raise ValueError("average needs at least one run")
    t = runs[0].t
    for r in runs[1:]:
        if r.t.shape != t.shape or not np.allclose(r.t, t, rtol=1e-12, atol=0):
            raise ValueError("average needs runs with identical time grids (same steps, lr, dim, record_points)")
    S = len(runs)
    stack = lambda name: np.stack([getattr(r, name) for r in runs])  # noqa: E731
    extras: dict[str, np.ndarray] = {}
    for name in ("train_loss", "test_loss"):
        arr = stack(name)
        extras[f"{name}_std"] = arr.std(axis=0, ddof=1) if S > 1 else np.zeros_like(arr[0])
        extras[f"{name}_sem"] = extras[f"{name}_std"] / math.sqrt(S)
        for q in (10, 50, 90):
            extras[f"{name}_q{q}"] = np.quantile(arr, q / 100, axis=0)
        extras[f"{name}_all"] = arr
    extras["overlap_all"] = stack("overlap")
    for key in runs[0].extras:
        values = [r.extras.get(key) for r in runs]
        if all(v is not None and np.shape(v) == np.shape(values[0]) for v in values) and key not in extras:
            arr = np.stack(values)
            extras[key] = arr.mean(axis=0) if arr.dtype.kind == "f" else arr[0]
    seeds = [r.settings.get("seed", -1) for r in runs]
    extras["seeds"] = np.asarray(seeds, dtype=np.int64)
    settings = dict(runs[0].settings)
    settings["seeds"] = seeds
    settings.pop("seed", None)
    settings["n_seeds"] = S
    return LearningCurves(
        kind=runs[0].kind,
        t=t,
        train_loss=stack("train_loss").mean(axis=0),
        test_loss=stack("test_loss").mean(axis=0),
        overlap=stack("overlap").mean(axis=0),
        cov=stack("cov").mean(axis=0),
        decomposition=stack("decomposition").mean(axis=0),
        parameters=runs[0].parameters,
        settings=settings,
        converged=all(r.converged for r in runs),
        iterations=max(r.iterations for r in runs),
        residual=0.0,
        residual_history=np.zeros(0),
        seconds=float(sum(r.seconds for r in runs)),
        message=f"mean over {S} seeds: " + "; ".join(sorted({r.message for r in runs})),
        extras=extras,
    )


def simulate_seeds(*args, seeds: Sequence[int] | int = 4, progress: bool = False, **kwargs) -> LearningCurves:
    """Run :func:`train_committee` for several seeds and :func:`average` the runs.

    Parameters
    ----------
    *args, **kwargs
        Passed to :func:`train_committee` (``seed`` and ``data`` are not allowed).
    seeds : int or sequence of int, default 4
        An int S means seeds 0, …, S−1.
    progress : bool
        Progress bar over seeds.
    """
    if "seed" in kwargs or "data" in kwargs:
        raise InvalidParameterError("simulate_seeds draws its own data: pass seeds=..., not seed or data")
    if isinstance(seeds, (int, np.integer)):
        seeds = list(range(check_int_at_least("seeds", int(seeds), 1)))
    seeds = [check_int_at_least("seeds", s, 0) for s in seeds]
    if not seeds:
        raise InvalidParameterError("seeds must not be empty")
    iterator = seeds
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(seeds, desc="seeds", leave=False)
    return average([train_committee(*args, seed=s, **kwargs) for s in iterator])
