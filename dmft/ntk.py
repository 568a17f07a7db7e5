"""Neural tangent kernel of the committee machine and its lazy (linearised) dynamics.

Everything here is plain NumPy in float64, and the functions compose the way the kernels of
``neural_tangents`` do: a Gram matrix is an array, and spectra, alignments, regressions and
learning curves are functions of arrays.

Model and data (theory.md §0, §1, convention A): rows of ``inputs`` are samples
x ~ N(0, I_D/D), ``weights`` is W with rows w_i (shape ``(N, D)``),
f(x) = (κ/N) Σ_i φ(w_i·x), φ(h) = h + (ε/2)h², target y = s·(β·x)² with s = ``target_scale``
(½ in convention A).

Kernels
-------
* :func:`ntk_gram` — the empirical NTK with respect to W, theory.md §2.2 eq. (19):
  K(x,x') = (κ²/N²) Σ_i φ'(w_i·x) φ'(w_i·x') (x·x') = (κ²/N)(x·x')[1 + εw̄·(x+x') + ε²xᵀMx'].
* :func:`expected_ntk_gram` — its average over w_i ~ N(0, I_D), eq. (11):
  K̄(x,x') = (κ²/N)[(x·x') + ε²(x·x')²], for any width N.
* :func:`mercer_spectrum` — the exact eigenvalues of K̄ as an integral operator on
  L²(N(0, I_D/D)) (theory.md §3).

Time and learning rate (theory.md §0, §1.4): gradient descent with η = η₀N/κ² on the MSE
(no ½), theory time t = η₀·step/D.
"""

from __future__ import annotations

import dataclasses
import time as _time
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

import numpy as np

from .parameters import check_finite, check_int_at_least, check_positive
from .result import LearningCurves

__all__ = [
    "MercerEigenspace",
    "MercerSpectrum",
    "mercer_spectrum",
    "TargetDecomposition",
    "target_decomposition",
    "ntk_gram",
    "expected_ntk_gram",
    "ntk_eigendecomposition",
    "cka",
    "kernel_regression",
    "KernelRegressionResult",
    "initial_ntk_regression",
    "linearised_polynomial",
    "polynomial_loss_decomposition",
    "lazy_curves",
    "SectorSummary",
    "EmpiricalSpectrum",
    "empirical_ntk_spectrum",
    "group_by_sector",
    "committee_output",
    "SECTOR_LABELS",
]

#: Labels of the three non-null eigenspaces of K̄ (theory.md §3), in the table's order.
SECTOR_LABELS = ("linear", "traceless_quadratic", "radial")


# ------------------------------------------------------------------------------------------
# validation helpers
# ------------------------------------------------------------------------------------------
def _matrix(name: str, value, *, columns: int | None = None, rows: int | None = None) -> np.ndarray:
    """A finite float64 2-D array, with the stated number of rows/columns if given."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {arr.shape}")
    if columns is not None and arr.shape[1] != columns:
        raise ValueError(f"{name} must have {columns} columns (the input dimension D), got shape {arr.shape}")
    if rows is not None and arr.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be non-empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite numbers")
    return arr


def _vector(name: str, value, *, length: int | None = None) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise ValueError(f"{name} must have length {length}, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite numbers")
    return arr


def _symmetric(name: str, value) -> np.ndarray:
    K = np.asarray(value, dtype=float)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] < 1:
        raise ValueError(f"{name} must be a square matrix, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError(f"{name} must contain only finite numbers")
    scale = max(float(np.abs(K).max()), np.finfo(float).tiny)
    if np.abs(K - K.T).max() > 1e-10 * scale:
        raise ValueError(f"{name} must be symmetric (|K - K^T| <= 1e-10 max|K|)")
    return 0.5 * (K + K.T)


def _check_target_scale(target_scale: float) -> float:
    target_scale = check_finite("target_scale", target_scale)
    if target_scale <= 0:
        raise ValueError(f"target_scale must lie in (0, inf) (0.5: convention A, 1: B), got {target_scale!r}")
    return target_scale


# ------------------------------------------------------------------------------------------
# Mercer spectrum and target decomposition (theory.md §3)
# ------------------------------------------------------------------------------------------
class MercerEigenspace(NamedTuple):
    """One eigenspace of the expected initial NTK K̄ (theory.md §3).

    Attributes
    ----------
    eigenvalue : float
        Eigenvalue λ of the integral operator ψ ↦ E_{x'}[K̄(x,x')ψ(x')], x' ~ N(0, I_D/D),
        including the prefactor κ²/N.
    multiplicity : int
        Dimension of the eigenspace.
    label : str
        ``"linear"``, ``"traceless_quadratic"`` or ``"radial"``.
    """

    eigenvalue: float
    multiplicity: int
    label: str


@dataclass(frozen=True)
class MercerSpectrum:
    """The analytic Mercer spectrum of the expected initial NTK (theory.md §3).

    Iterating yields the :class:`MercerEigenspace` entries in the order linear,
    traceless quadratic, radial. Every other eigenvalue is zero.

    Attributes
    ----------
    entries : tuple of MercerEigenspace
    dim, epsilon, scale, width
        D, ε, κ, N.
    """

    entries: tuple[MercerEigenspace, ...]
    dim: int
    epsilon: float
    scale: float
    width: int

    def __iter__(self) -> Iterator[MercerEigenspace]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, key: int | str) -> MercerEigenspace:
        if isinstance(key, str):
            for entry in self.entries:
                if entry.label == key:
                    return entry
            raise KeyError(key)
        return self.entries[key]

    @property
    def prefactor(self) -> float:
        """κ²/N: the factor dropped in the table of theory.md §3."""
        return self.scale**2 / self.width

    @property
    def rank(self) -> int:
        """Number of non-zero eigenvalues (with multiplicity): D + D(D+1)/2 (D if ε = 0)."""
        return sum(e.multiplicity for e in self.entries if e.eigenvalue > 0)

    def rate(self, label: str) -> float:
        """Decay rate in theory time of the lazy residual in one eigenspace as P → ∞.

        With η = η₀N/κ² the residual component in an eigenspace of eigenvalue λ decays like
        exp(−2D(N/κ²)λ t) (derivation in :func:`lazy_curves`): rate 2 for the linear sector,
        4ε²/D for the traceless quadratics and 2ε²(D+2)/D for |x|².
        """
        return 2.0 * self.dim * self[label].eigenvalue / self.prefactor

    def trace(self) -> float:
        """Σ multiplicity·λ; equals E_x[K̄(x,x)] = (κ²/N)(1 + ε²(D+2)/D)."""
        return float(sum(e.multiplicity * e.eigenvalue for e in self.entries))

    def hilbert_schmidt(self) -> float:
        """Σ multiplicity·λ²; equals E_{x,x'}[K̄(x,x')²] = (κ²/N)²(1/D + 3ε⁴(D+2)/D³)."""
        return float(sum(e.multiplicity * e.eigenvalue**2 for e in self.entries))

    def sorted_eigenvalues(self, count: int | None = None) -> np.ndarray:
        """All eigenvalues with multiplicity, descending, padded with zeros to ``count``."""
        values = np.concatenate([np.full(e.multiplicity, e.eigenvalue) for e in self.entries])
        values = np.sort(values)[::-1]
        if count is None:
            return values
        out = np.zeros(count)
        k = min(count, values.size)
        out[:k] = values[:k]
        return out


def mercer_spectrum(epsilon: float, dim: int, scale: float = 1.0, width: int = 1) -> MercerSpectrum:
    """Analytic Mercer spectrum of the initial NTK for x ~ N(0, I_D/D) (theory.md §3).

    **Which kernel.** The expected initial NTK of eq. (11),
    K̄(x,x') = E_{w_i ~ N(0,I_D)} K(x,x') = (κ²/N)[(x·x') + ε²(x·x')²], i.e. the empirical NTK
    of :func:`ntk_gram` averaged over the initialisation (for any width N; at large N the
    empirical kernel concentrates on it). The operator is ψ ↦ E_{x'}[K̄(x,x')ψ(x')] under the
    probability measure N(0, I_D/D), so Gram eigenvalues divided by P estimate these values.
    The eigenvalues include the prefactor κ²/N; with the defaults ``scale=1, width=1`` they
    are exactly the table of theory.md §3 (where the prefactor is dropped):

    ========================  ===================  ===================
    eigenfunctions            multiplicity         eigenvalue / (κ²/N)
    ========================  ===================  ===================
    linear b·x                D                    1/D
    traceless xᵀAx, trA = 0   D(D+1)/2 − 1         2ε²/D²
    radial |x|²               1                    ε²(D+2)/D²
    ========================  ===================  ===================

    All other eigenvalues vanish (K̄ has rank D + D(D+1)/2; the constant function is mapped
    onto |x|² and 1 − D|x|²/(D+2) spans the null direction of the even sector). The
    quadratic constant 2ε²/D² follows from E[x'_i x'_j x'ᵀAx'] = δ_ij trA/D² + 2A_ij/D²; the
    paper's printed constant was not recovered (theory.md §3).

    Parameters
    ----------
    epsilon : float
        ε, any finite real.
    dim : int
        D >= 1.
    scale : float, default 1
        κ > 0.
    width : int, default 1
        N >= 1 (enters only through the prefactor κ²/N).

    Returns
    -------
    MercerSpectrum
    """
    epsilon = check_finite("epsilon", epsilon)
    dim = check_int_at_least("dim (input dimension D)", dim, 1)
    scale = check_positive("scale (output scale kappa)", scale)
    width = check_int_at_least("width (hidden units N)", width, 1)
    pre = scale**2 / width
    d = float(dim)
    entries = (
        MercerEigenspace(pre / d, dim, "linear"),
        MercerEigenspace(pre * 2.0 * epsilon**2 / d**2, dim * (dim + 1) // 2 - 1, "traceless_quadratic"),
        MercerEigenspace(pre * epsilon**2 * (d + 2.0) / d**2, 1, "radial"),
    )
    return MercerSpectrum(entries=entries, dim=dim, epsilon=epsilon, scale=scale, width=width)


@dataclass(frozen=True)
class TargetDecomposition:
    """The target y = s(β·x)² split over the eigenspaces of K̄ (theory.md §3, eq. 18).

    y(x) = xᵀ B x + c |x|²  with  B = s(ββᵀ − ρ I)  (traceless)  and  c = sρ,  ρ = |β|²/D.

    Attributes
    ----------
    dim : int
    rho : float
        ρ = |β|²/D.
    target_scale : float
        s (½ in convention A).
    radial_coefficient : float
        c = sρ.
    traceless_matrix : ndarray, shape (D, D) or None
        B when the teacher vector was given.
    power : dict
        E_x[y_sector(x)²] per eigenspace label: linear 0, traceless 2s²ρ²(D−1)/D,
        radial s²ρ²(D+2)/D; they sum to E[y²] = 3s²ρ² (the sectors are orthogonal in L²).
    mean : float
        E[y] = sρ (carried by the radial part, since E|x|² = 1).
    """

    dim: int
    rho: float
    target_scale: float
    radial_coefficient: float
    traceless_matrix: np.ndarray | None
    power: dict = field(default_factory=dict)
    mean: float = 0.0

    @property
    def total_power(self) -> float:
        """E[y²] = 3s²ρ²."""
        return float(sum(self.power.values()))

    def evaluate(self, inputs: np.ndarray) -> dict:
        """The sector components of y at ``inputs`` (rows), a dict label → ``(P,)`` array.

        Needs the traceless matrix (teacher given).
        """
        if self.traceless_matrix is None:
            raise ValueError("teacher must be given to evaluate the traceless component")
        X = _matrix("inputs", inputs, columns=self.dim)
        sq = np.einsum("pd,pd->p", X, X)
        return {
            "linear": np.zeros(X.shape[0]),
            "traceless_quadratic": np.einsum("pd,de,pe->p", X, self.traceless_matrix, X),
            "radial": self.radial_coefficient * sq,
        }


def target_decomposition(
    dim: int, *, rho: float = 1.0, teacher: np.ndarray | None = None, target_scale: float = 0.5
) -> TargetDecomposition:
    """Decompose y = s(β·x)² over the Mercer eigenspaces of K̄ (theory.md §3, eq. 18).

    Parameters
    ----------
    dim : int
        D >= 1.
    rho : float, default 1
        ρ = |β|²/D, used when ``teacher`` is None.
    teacher : ndarray, shape (D,), optional
        β; then ρ = |β|²/D exactly and the traceless matrix is returned.
    target_scale : float, default 0.5
        s: 0.5 in convention A, 1 in convention B (theory.md §1.2).

    Returns
    -------
    TargetDecomposition
        Powers under x ~ N(0, I_D/D), from E[(xᵀCx)²] = ((trC)² + 2trC²)/D²:
        traceless 2s²ρ²(D−1)/D, radial s²ρ²(D+2)/D, linear 0. The traceless part is what a
        kernel needs P = O(D²) samples to learn; the radial part is learned at P = O(D).
    """
    dim = check_int_at_least("dim (input dimension D)", dim, 1)
    s = _check_target_scale(target_scale)
    matrix = None
    if teacher is not None:
        beta = _vector("teacher", teacher, length=dim)
        rho = float(beta @ beta) / dim
        if rho <= 0:
            raise ValueError("teacher must be a non-zero vector")
        matrix = s * (np.outer(beta, beta) - rho * np.eye(dim))
    else:
        rho = check_positive("rho (teacher norm |beta|^2/D)", rho)
    d = float(dim)
    power = {
        "linear": 0.0,
        "traceless_quadratic": 2.0 * s**2 * rho**2 * (d - 1.0) / d,
        "radial": s**2 * rho**2 * (d + 2.0) / d,
    }
    return TargetDecomposition(
        dim=dim, rho=rho, target_scale=s, radial_coefficient=s * rho, traceless_matrix=matrix,
        power=power, mean=s * rho,
    )


# ------------------------------------------------------------------------------------------
# Gram matrices
# ------------------------------------------------------------------------------------------
def committee_output(weights: np.ndarray, inputs: np.ndarray, *, epsilon: float, scale: float = 1.0) -> np.ndarray:
    """f(x) = (κ/N) Σ_i φ(w_i·x) at the rows of ``inputs`` (theory.md §1.1), shape ``(P,)``."""
    W = _matrix("weights", weights)
    X = _matrix("inputs", inputs, columns=W.shape[1])
    epsilon = check_finite("epsilon", epsilon)
    scale = check_positive("scale (output scale kappa)", scale)
    H = X @ W.T
    return scale / W.shape[0] * (H + 0.5 * epsilon * H**2).sum(axis=1)


def ntk_gram(
    weights: np.ndarray,
    inputs: np.ndarray,
    *,
    epsilon: float,
    scale: float = 1.0,
    inputs2: np.ndarray | None = None,
) -> np.ndarray:
    """Empirical NTK Gram matrix with respect to W, in closed form (theory.md §2.2 eq. 19).

    K(x,x') = Σ_i ∂f(x)/∂w_i · ∂f(x')/∂w_i = (κ²/N²) Σ_i φ'(w_i·x) φ'(w_i·x') (x·x'),
    φ'(h) = 1 + εh; equivalently (κ²/N)(x·x')[1 + ε w̄·(x+x') + ε² xᵀMx'].

    Parameters
    ----------
    weights : ndarray, shape (N, D)
        W (rows w_i).
    inputs : ndarray, shape (P, D)
        Rows x_μ.
    epsilon, scale : float
        ε and κ.
    inputs2 : ndarray, shape (Q, D), optional
        Second set of rows; default ``inputs`` (then the result is exactly symmetric).

    Returns
    -------
    ndarray, shape (P, Q)
        The cost is O(PQ(N + D)); the Jacobian (size P·N·D) is never formed.
    """
    W = _matrix("weights", weights)
    X = _matrix("inputs", inputs, columns=W.shape[1])
    X2 = X if inputs2 is None else _matrix("inputs2", inputs2, columns=W.shape[1])
    epsilon = check_finite("epsilon", epsilon)
    scale = check_positive("scale (output scale kappa)", scale)
    n = W.shape[0]
    dphi = 1.0 + epsilon * (X @ W.T)
    dphi2 = dphi if inputs2 is None else 1.0 + epsilon * (X2 @ W.T)
    K = (scale**2 / n**2) * (X @ X2.T) * (dphi @ dphi2.T)
    if inputs2 is None:
        K = 0.5 * (K + K.T)
    return K


def expected_ntk_gram(
    inputs: np.ndarray,
    *,
    epsilon: float,
    scale: float = 1.0,
    width: int = 1,
    inputs2: np.ndarray | None = None,
) -> np.ndarray:
    """Gram matrix of the expected initial NTK K̄ = (κ²/N)[(x·x') + ε²(x·x')²] (§2.2 eq. 11).

    This is E_W[K] over w_i ~ N(0, I_D) for every width N (w̄ averages to 0, M to I), the
    kernel whose Mercer spectrum :func:`mercer_spectrum` gives. Shape ``(P, Q)``.
    """
    X = _matrix("inputs", inputs)
    X2 = X if inputs2 is None else _matrix("inputs2", inputs2, columns=X.shape[1])
    epsilon = check_finite("epsilon", epsilon)
    scale = check_positive("scale (output scale kappa)", scale)
    width = check_int_at_least("width (hidden units N)", width, 1)
    G = X @ X2.T
    K = (scale**2 / width) * (G + epsilon**2 * G**2)
    if inputs2 is None:
        K = 0.5 * (K + K.T)
    return K


def ntk_eigendecomposition(K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and orthonormal eigenvectors (columns) of a symmetric Gram matrix.

    Parameters
    ----------
    K : ndarray, shape (P, P)
        Symmetric (to 1e-10 of its largest entry); it is symmetrised before ``numpy.linalg.eigh``.

    Returns
    -------
    eigenvalues : ndarray, shape (P,)
    eigenvectors : ndarray, shape (P, P)
        ``K = V diag(λ) Vᵀ``.
    """
    K = _symmetric("K", K)
    values, vectors = np.linalg.eigh(K)
    return values[::-1].copy(), vectors[:, ::-1].copy()


def _null_threshold(eigenvalues: np.ndarray, rcond: float | None) -> float:
    """Eigenvalues at or below this are treated as exact zeros (the Gram's null space)."""
    top = float(np.max(np.abs(eigenvalues))) if eigenvalues.size else 0.0
    if rcond is None:
        rcond = 10.0 * eigenvalues.size * np.finfo(float).eps
    else:
        rcond = check_finite("rcond", rcond)
        if rcond < 0:
            raise ValueError(f"rcond must lie in [0, inf), got {rcond!r}")
    return rcond * top


# ------------------------------------------------------------------------------------------
# Alignment (theory.md §2.5)
# ------------------------------------------------------------------------------------------
def cka(K: np.ndarray, y: np.ndarray, *, centering: str = "one-sided") -> float:
    """Centred kernel–target alignment of a Gram matrix with labels (theory.md §2.5).

    CKA(K, y) = y_cᵀ K_c y_c / (‖K_c‖_F ‖y_c‖²), y_c = y − mean(y),

    with the spec's (and the paper code's) one-sided centring K_c = K − K.mean(axis=0)
    (every column centred). The numerator equals the doubly centred one, the Frobenius norm
    does not: for K = yyᵀ the one-sided value is ‖y_c‖/‖y‖ (1 only for centred y), while
    K = y_c y_cᵀ gives 1. ``centering="two-sided"`` uses K_c = HKH, H = I − 11ᵀ/P
    (the usual CKA; then K = yyᵀ gives 1).

    Invariant under K → cK (c > 0), y → cy (c ≠ 0), and, for the one-sided form,
    K → K + 1vᵀ. Returns a float in [−1, 1].
    """
    K = np.asarray(K, dtype=float)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] < 2:
        raise ValueError(f"K must be a square matrix of size >= 2, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError("K must contain only finite numbers")
    y = _vector("y", y, length=K.shape[0])
    if centering not in ("one-sided", "two-sided"):
        raise ValueError(f"centering must be 'one-sided' or 'two-sided', got {centering!r}")
    yc = y - y.mean()
    Kc = K - K.mean(axis=0, keepdims=True)
    if centering == "two-sided":
        Kc = Kc - Kc.mean(axis=1, keepdims=True)
    norm_k = float(np.linalg.norm(Kc))
    norm_y2 = float(yc @ yc)
    if norm_k == 0.0:
        raise ValueError("K must not be constant along its columns (the centred Gram matrix vanishes)")
    if norm_y2 == 0.0:
        raise ValueError("y must not be constant (the centred labels vanish)")
    return float(yc @ Kc @ yc) / (norm_k * norm_y2)


# ------------------------------------------------------------------------------------------
# Kernel regression
# ------------------------------------------------------------------------------------------
def _kernel_coefficients(K_train: np.ndarray, targets: np.ndarray, ridge: float, rcond: float | None) -> np.ndarray:
    """c = (K + ridge·I)⁻¹ targets; at ridge 0 the pseudo-inverse on the range of K."""
    if ridge > 0:
        P = K_train.shape[0]
        return np.linalg.solve(K_train + ridge * np.eye(P), targets)
    values, vectors = ntk_eigendecomposition(K_train)
    keep = values > _null_threshold(values, rcond)
    inv = np.zeros_like(values)
    inv[keep] = 1.0 / values[keep]
    return vectors @ (inv * (vectors.T @ targets))


def kernel_regression(
    K_train: np.ndarray,
    y_train: np.ndarray,
    K_test_train: np.ndarray,
    ridge: float = 0.0,
    *,
    rcond: float | None = None,
) -> np.ndarray:
    """Kernel (ridge) regression predictions K(x_test, X)(K + ridge·I)⁻¹ y.

    At ``ridge = 0`` the inverse is the Moore–Penrose pseudo-inverse (eigenvalues below
    ``rcond``·λ_max, default 10·P·machine-ε, count as zero): for an invertible K this is the
    interpolant, for a singular K the minimum-norm least-squares fit, which is also the
    t → ∞ limit of the lazy gradient flow started at zero (:func:`lazy_curves`).

    Parameters
    ----------
    K_train : ndarray, shape (P, P)
    y_train : ndarray, shape (P,)
    K_test_train : ndarray, shape (Q, P)
    ridge : float, default 0
        Added to the diagonal of K_train (same units as K, i.e. including κ²/N).

    Returns
    -------
    ndarray, shape (Q,)
    """
    K = _symmetric("K_train", K_train)
    y = _vector("y_train", y_train, length=K.shape[0])
    Kt = _matrix("K_test_train", K_test_train, columns=K.shape[0])
    ridge = check_finite("ridge", ridge)
    if ridge < 0:
        raise ValueError(f"ridge must lie in [0, inf), got {ridge!r}")
    return Kt @ _kernel_coefficients(K, y, ridge, rcond)


# ------------------------------------------------------------------------------------------
# Population loss of predictors in the span of the NTK features
# ------------------------------------------------------------------------------------------
def linearised_polynomial(
    weights0: np.ndarray,
    delta_weights: np.ndarray,
    *,
    epsilon: float,
    scale: float,
    center: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (b, A) of the linearised predictor f_lin(x) = bᵀx + xᵀAx.

    f_lin(x) = [f(x; W₀) unless centred] + Σ_i ∂f(x)/∂w_i|_{W₀} · Δw_i, and
    ∂f/∂w_i = (κ/N)(1 + ε w₀ᵢ·x) x, so (theory.md §1.4, §2.1)

        b = (κ/N) Σ_i (Δw_i [+ w₀ᵢ]),
        A = (κε/(2N)) Σ_i (w₀ᵢΔw_iᵀ + Δw_i w₀ᵢᵀ) [+ (κε/(2N)) W₀ᵀW₀].

    Every kernel-regression predictor with this NTK has this form too (ΔW = J_trainᵀc).

    Parameters
    ----------
    weights0 : ndarray, shape (N, D)
    delta_weights : ndarray, shape (..., N, D)
        ΔW = W − W₀ (leading axes broadcast, e.g. time).

    Returns
    -------
    b : ndarray, shape (..., D)
    A : ndarray, shape (..., D, D), symmetric.
    """
    W0 = np.asarray(weights0, dtype=float)
    dW = np.asarray(delta_weights, dtype=float)
    n = W0.shape[0]
    b = scale / n * dW.sum(axis=-2)
    S = np.einsum("nd,...ne->...de", W0, dW)
    A = scale * epsilon / (2 * n) * (S + np.swapaxes(S, -1, -2))
    if not center:
        b = b + scale / n * W0.sum(axis=0)
        A = A + scale * epsilon / (2 * n) * (W0.T @ W0)
    return b, A


def polynomial_loss_decomposition(
    linear: np.ndarray, quadratic: np.ndarray, teacher: np.ndarray, *, target_scale: float = 0.5
) -> np.ndarray:
    """Exact population MSE of f(x) = bᵀx + xᵀAx against y = s(β·x)², x ~ N(0, I_D/D).

    With C = A − sββᵀ, E(f − y)² = (trC)²/D² + 2‖C‖_F²/D² + |b|²/D, because
    E[(xᵀCx)²] = ((trC)² + 2trC²)/D² and the odd cross term vanishes. For the committee
    machine, b = κw̄ and A = (κε/2)M, these are exactly the (variance, alignment, linear)
    terms of theory.md §2.3; for a linearised predictor they are the same three terms of its
    effective (w̄, M).

    Parameters
    ----------
    linear : ndarray, shape (..., D)
        b.
    quadratic : ndarray, shape (..., D, D)
        A (symmetric).
    teacher : ndarray, shape (D,)
        β.

    Returns
    -------
    ndarray, shape (..., 3)
        (variance, alignment, linear) terms, summing to the test loss.
    """
    b = np.asarray(linear, dtype=float)
    A = np.asarray(quadratic, dtype=float)
    beta = np.asarray(teacher, dtype=float)
    d = beta.shape[0]
    s = float(target_scale)
    C = A - s * np.outer(beta, beta)
    variance = (np.trace(C, axis1=-2, axis2=-1) / d) ** 2
    alignment = 2.0 * np.sum(C * C, axis=(-2, -1)) / d**2
    linear_term = np.sum(b * b, axis=-1) / d
    return np.stack([variance, alignment, linear_term], axis=-1)


# ------------------------------------------------------------------------------------------
# The K₀-regression baseline (Fig. 1)
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KernelRegressionResult:
    """Kernel regression with the initial empirical NTK (theory.md §1.4, "K₀ regression").

    Attributes
    ----------
    test_mse : float
        Mean squared error on the given test set.
    train_mse : float
        Mean squared error on the training set (0 when K is invertible and ridge = 0).
    population_mse : float or None
        Exact E_x(f − y)² over x ~ N(0, I_D/D) (teacher given), else None.
    population_decomposition : ndarray, shape (3,) or None
        Its (variance, alignment, linear) terms (:func:`polynomial_loss_decomposition`).
    test_predictions : ndarray, shape (Q,)
    ridge : float
    center : bool
    """

    test_mse: float
    train_mse: float
    population_mse: float | None
    population_decomposition: np.ndarray | None
    test_predictions: np.ndarray
    ridge: float
    center: bool


def initial_ntk_regression(
    weights0: np.ndarray,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    epsilon: float,
    scale: float = 1.0,
    ridge: float = 0.0,
    center: bool = True,
    teacher: np.ndarray | None = None,
    target_scale: float = 0.5,
    rcond: float | None = None,
) -> KernelRegressionResult:
    """Test MSE of kernel regression with the NTK at initialisation (the Fig. 1 baseline).

    ``center=True`` (the paper's setting): f̂(x) = K₀(x, X)(K₀ + ridge·I)⁻¹ y, which at
    ridge 0 is the t → ∞ limit of the centred lazy model. ``center=False``: f̂ = f(x; W₀) +
    K₀(x, X)(K₀ + ridge·I)⁻¹(y − f(X; W₀)), the t → ∞ limit of the uncentred lazy model.
    The predictor lies in the NTK feature span, so it is a quadratic polynomial in x and its
    population MSE is exact (:func:`linearised_polynomial`).

    Parameters
    ----------
    weights0 : ndarray, shape (N, D)
    x_train : ndarray, shape (P, D); y_train : ndarray, shape (P,)
    x_test : ndarray, shape (Q, D); y_test : ndarray, shape (Q,)
    epsilon, scale : float
    ridge : float, default 0
    center : bool, default True
    teacher : ndarray, shape (D,), optional
        β, for the exact population MSE.
    target_scale : float, default 0.5
        s in y = s(β·x)².
    """
    W0 = _matrix("weights0", weights0)
    n, d = W0.shape
    X = _matrix("x_train", x_train, columns=d)
    y = _vector("y_train", y_train, length=X.shape[0])
    Xt = _matrix("x_test", x_test, columns=d)
    yt = _vector("y_test", y_test, length=Xt.shape[0])
    ridge = check_finite("ridge", ridge)
    if ridge < 0:
        raise ValueError(f"ridge must lie in [0, inf), got {ridge!r}")
    K = ntk_gram(W0, X, epsilon=epsilon, scale=scale)
    Kt = ntk_gram(W0, Xt, epsilon=epsilon, scale=scale, inputs2=X)
    f0 = np.zeros(X.shape[0]) if center else committee_output(W0, X, epsilon=epsilon, scale=scale)
    f0t = np.zeros(Xt.shape[0]) if center else committee_output(W0, Xt, epsilon=epsilon, scale=scale)
    coef = _kernel_coefficients(K, y - f0, ridge, rcond)
    pred_train = f0 + K @ coef
    pred_test = f0t + Kt @ coef
    population = decomposition = None
    if teacher is not None:
        beta = _vector("teacher", teacher, length=d)
        s = _check_target_scale(target_scale)
        dphi = 1.0 + epsilon * (X @ W0.T)  # (P, N)
        delta_w = (scale / n) * (dphi * coef[:, None]).T @ X  # ΔW = J_trainᵀ c
        b, A = linearised_polynomial(W0, delta_w, epsilon=epsilon, scale=scale, center=center)
        decomposition = polynomial_loss_decomposition(b, A, beta, target_scale=s)
        population = float(decomposition.sum())
    return KernelRegressionResult(
        test_mse=float(np.mean((pred_test - yt) ** 2)),
        train_mse=float(np.mean((pred_train - y) ** 2)),
        population_mse=population,
        population_decomposition=decomposition,
        test_predictions=pred_test,
        ridge=ridge,
        center=bool(center),
    )


# ------------------------------------------------------------------------------------------
# Lazy (linearised) learning curves
# ------------------------------------------------------------------------------------------
def _time_array(t) -> np.ndarray:
    t = np.atleast_1d(np.asarray(t, dtype=float))
    if t.ndim != 1 or t.size < 1:
        raise ValueError(f"t must be a non-empty 1-D array of times, got shape {t.shape}")
    if np.any(np.isnan(t)) or np.any(t < 0):
        raise ValueError("t must contain times in [0, inf] (theory units eta0*step/D)")
    if np.any(np.diff(t) < 0):
        raise ValueError("t must be non-decreasing")
    return t


def lazy_curves(
    weights0: np.ndarray,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    epsilon: float,
    scale: float,
    t,
    teacher: np.ndarray,
    center: bool = True,
    target_scale: float = 0.5,
    lr: float | None = None,
    rcond: float | None = None,
    progress: bool = False,
) -> LearningCurves:
    """Exact train/test curves of the linearised (lazy) committee machine under gradient descent.

    **Model.** f_lin(x; W) = [f(x; W₀)] + J(x)·(W − W₀), J(x) = ∂f(x)/∂W at W₀ (the bracket
    is dropped for ``center=True``). This is the κ → ∞ limit of the centred network
    (theory.md §1.4: φ' freezes) and the paper's ``nt.linearize`` baseline.

    **Time constant (derivation).** Gradient descent on L = (1/P)Σ_μ (f_lin(x_μ) − y_μ)² with
    η = η₀N/κ² (theory.md §1.4) moves W by ΔW = (2η/P) Σ_μ r_μ J(x_μ), r = y − f_lin(X), so the
    training residual obeys r ← (I − (2η/P)K) r with K the Gram matrix of :func:`ntk_gram`.
    Write K̂ = (N/κ²)K (κ-independent) with eigenpairs (λ̂_k, v_k). Per step mode k is
    multiplied by 1 − a_k, a_k = 2η₀λ̂_k/P; one step advances theory time by η₀/D, so in the
    limit η₀ → 0 at fixed t = η₀·step/D

        r_k(t) = exp(−(2/α) λ̂_k t) r_k(0),   α = P/D,

    i.e. c = 2/α in exp(−λ̂_k c t). For P → ∞, λ̂_k/P → D·(table of §3) and the rate is
    2D·λ/(κ²/N): 2 for linear functions, 2ε²(D+2)/D for |x|², 4ε²/D for traceless quadratics.
    The weights move by ΔW(t) = J_trainᵀ a(t), a(t) = Σ_k v_k (1 − e^{−(2/α)λ̂_k t})/λ_k
    (v_k·r(0)), λ_k = (κ²/N)λ̂_k, and test predictions change by K(x_test, X) a(t). At
    t = ∞, a = K⁺r(0): kernel regression (:func:`kernel_regression`). Modes with
    λ_k ≤ ``rcond``·λ_max (the null space of K, e.g. when P > N·D) are frozen exactly.
    With ``lr = η₀`` the discrete factors (1 − a_k)^step replace the exponentials (exact
    gradient descent; the number of steps t·D/η₀ must be a whole number); the flow differs
    from it by at most a_max/(2e(1 − a_max)) of |r(0)| per mode.

    **Fields of the result.**

    * ``train_loss`` — (1/P)|r(t)|².
    * ``test_loss`` — the exact population MSE over x ~ N(0, I_D/D) against y = s(β·x)²:
      f_lin is the quadratic polynomial of :func:`linearised_polynomial`
      (:func:`polynomial_loss_decomposition`). The finite-test-set MSE is
      ``extras["test_loss_test_set"]``.
    * ``decomposition`` — (variance, alignment, linear) terms of that population loss; they
      are the §2.3 terms of the linearised predictor's effective w̄ = b/κ and M = 2A/(κε),
      not ``loss_decomposition_from_weights`` of W(t) (which would add ΔWᵀΔW/N to M and so
      describe the full network evaluated at the linearised weights, not the predictor).
    * ``overlap``, ``cov`` — m(t) = W(t)β/D and Q(t) = W(t)W(t)ᵀ/D of the linearised
      model's weights W(t) = W₀ + ΔW(t).
    * ``extras`` — ``test_loss_test_set`` (T,), ``cross_cov`` C_w(t,0) = W(t)W₀ᵀ/D (T,N,N),
      ``relative_weight_change`` |W(t) − W₀|_F/|W₀|_F (T,), ``gram_eigenvalues`` of K
      (descending, (P,)).

    Parameters
    ----------
    weights0 : ndarray, shape (N, D)
        W₀.
    x_train : ndarray, shape (P, D); y_train : ndarray, shape (P,)
    x_test : ndarray, shape (Q, D); y_test : ndarray, shape (Q,)
    epsilon, scale : float
        ε and κ (κ enters only through f(x; W₀) when uncentred and the size of ΔW ∝ 1/κ).
    t : array_like, shape (T,)
        Non-decreasing theory times in [0, inf]; ``inf`` gives the kernel-regression limit
        (gradient flow only).
    teacher : ndarray, shape (D,)
        β (for the overlaps and the population loss; the labels are taken as given).
    center : bool, default True
        Linearise the centred predictor f − f(·; W₀) (theory.md §1.4).
    target_scale : float, default 0.5
        s in y = s(β·x)² (the population loss's target).
    lr : float, optional
        η₀ for exact discrete gradient descent; None (default) for gradient flow.
    rcond : float, optional
        Relative threshold of the Gram null space (default 10·P·machine-ε).
    progress : bool, default False
        tqdm bar over the time points.

    Returns
    -------
    LearningCurves
        ``kind="lazy"``.
    """
    start = _time.perf_counter()
    W0 = _matrix("weights0", weights0)
    n, d = W0.shape
    X = _matrix("x_train", x_train, columns=d)
    P = X.shape[0]
    y = _vector("y_train", y_train, length=P)
    Xt = _matrix("x_test", x_test, columns=d)
    yt = _vector("y_test", y_test, length=Xt.shape[0])
    epsilon = check_finite("epsilon", epsilon)
    scale = check_positive("scale (output scale kappa)", scale)
    beta = _vector("teacher", teacher, length=d)
    s = _check_target_scale(target_scale)
    times = _time_array(t)
    alpha = P / d
    if lr is not None:
        lr = check_positive("lr (eta0)", lr)
        if np.any(np.isinf(times)):
            raise ValueError("t must be finite when lr is given (discrete gradient descent)")
        steps = times * d / lr
        if np.any(np.abs(steps - np.round(steps)) > 1e-9 * np.maximum(1.0, steps)):
            raise ValueError("t must be whole numbers of steps (t*D/lr integer) when lr is given")
        steps = np.round(steps)

    K = ntk_gram(W0, X, epsilon=epsilon, scale=scale)
    Kt = ntk_gram(W0, Xt, epsilon=epsilon, scale=scale, inputs2=X)
    values, vectors = ntk_eigendecomposition(K)
    active = values > _null_threshold(values, rcond)
    lam = np.where(active, values, 0.0)  # λ_k of K
    lam_hat = lam * n / scale**2  # λ̂_k of K̂ = (N/κ²)K

    f0 = np.zeros(P) if center else committee_output(W0, X, epsilon=epsilon, scale=scale)
    f0t = np.zeros(Xt.shape[0]) if center else committee_output(W0, Xt, epsilon=epsilon, scale=scale)
    r0 = y - f0
    r0_modes = vectors.T @ r0

    # decay factors d_k(t) of every mode, shape (T, P); frozen (null) modes keep d = 1
    decay = np.ones((times.size, P))
    if lr is None:
        with np.errstate(invalid="ignore"):
            exponent = (2.0 / alpha) * np.outer(times, lam_hat[active])
        decay[:, active] = np.exp(-exponent)
    else:
        a = 2.0 * lr * lam_hat[active] / P
        decay[:, active] = np.power(1.0 - a[None, :], steps[:, None])
    integrated = np.zeros_like(decay)  # (1 − d_k)/λ_k
    integrated[:, active] = (1.0 - decay[:, active]) / lam[active]

    residual = (decay * r0_modes) @ vectors.T  # (T, P)
    train_loss = np.mean(residual**2, axis=1)
    coef = (integrated * r0_modes) @ vectors.T  # a(t), (T, P)
    test_pred = f0t[None, :] + coef @ Kt.T
    test_loss_set = np.mean((test_pred - yt[None, :]) ** 2, axis=1)

    dphi = 1.0 + epsilon * (X @ W0.T)  # (P, N)
    jac_scale = scale / n
    overlap = np.empty((times.size, n))
    cov = np.empty((times.size, n, n))
    cross = np.empty((times.size, n, n))
    decomposition = np.empty((times.size, 3))
    moved = np.empty(times.size)
    norm0 = float(np.linalg.norm(W0))
    iterator = range(times.size)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="lazy curves", unit="t")
    for j in iterator:
        delta_w = jac_scale * (dphi * coef[j][:, None]).T @ X  # J_trainᵀ a(t), (N, D)
        W = W0 + delta_w
        overlap[j] = W @ beta / d
        cov[j] = W @ W.T / d
        cross[j] = W @ W0.T / d
        moved[j] = np.linalg.norm(delta_w) / norm0 if norm0 > 0 else np.linalg.norm(delta_w)
        b, A = linearised_polynomial(W0, delta_w, epsilon=epsilon, scale=scale, center=center)
        decomposition[j] = polynomial_loss_decomposition(b, A, beta, target_scale=s)

    parameters = {
        "alpha": alpha,
        "epsilon": epsilon,
        "scale": scale,
        "width": n,
        "rho": float(beta @ beta) / d,
        "init_overlap": (W0 @ beta / d).tolist(),
        "init_cov": (W0 @ W0.T / d).tolist(),
        "center": bool(center),
    }
    settings = {
        "method": "linearised model, exact in the Gram eigenbasis",
        "dynamics": "gradient flow" if lr is None else "gradient descent",
        "lr": lr,
        "dim": d,
        "n_train": P,
        "n_test": int(Xt.shape[0]),
        "target_scale": s,
        "null_modes": int(np.count_nonzero(~active)),
        "rcond": rcond,
    }
    return LearningCurves(
        kind="lazy",
        t=times,
        train_loss=train_loss,
        test_loss=decomposition.sum(axis=1),
        overlap=overlap,
        cov=cov,
        decomposition=decomposition,
        parameters=parameters,
        settings=settings,
        converged=True,
        iterations=1 if lr is None else int(steps.max()),
        residual=0.0,
        seconds=_time.perf_counter() - start,
        message=(
            f"exact linearised {'gradient flow' if lr is None else 'gradient descent'}; "
            f"{int(np.count_nonzero(~active))} of {P} Gram modes in the null space (frozen)"
        ),
        extras={
            "test_loss_test_set": test_loss_set,
            "cross_cov": cross,
            "relative_weight_change": moved,
            "gram_eigenvalues": values,
        },
    )


# ------------------------------------------------------------------------------------------
# Empirical spectra grouped by sector
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SectorSummary:
    """Empirical Gram eigenvalues/P assigned to one analytic eigenspace by rank order.

    Attributes
    ----------
    label : str
        Sector label, or ``"null"`` for ranks beyond the kernel's analytic rank.
    analytic : float
        The Mercer eigenvalue of the sector (0 for ``"null"``).
    multiplicity : int
        Analytic multiplicity.
    count : int
        Number of empirical eigenvalues assigned (min(multiplicity, what is left of P)).
    mean, median, minimum, maximum : float
        Statistics of those eigenvalues/P (NaN-free: sectors with count 0 are omitted).
    """

    label: str
    analytic: float
    multiplicity: int
    count: int
    mean: float
    median: float
    minimum: float
    maximum: float


@dataclass(frozen=True)
class EmpiricalSpectrum:
    """Gram eigenvalues/P with their rank-order grouping into the analytic sectors.

    Attributes
    ----------
    eigenvalues : ndarray, shape (P,)
        Eigenvalues of the Gram matrix divided by P, descending.
    sectors : tuple of SectorSummary
        In descending order of the analytic eigenvalue.
    mercer : MercerSpectrum
        The analytic spectrum compared with.
    kernel : str
        ``"expected"`` (K̄ of eq. 11) or ``"empirical"`` (eq. 19 with given weights).
    """

    eigenvalues: np.ndarray
    sectors: tuple[SectorSummary, ...]
    mercer: MercerSpectrum
    kernel: str

    def as_dict(self) -> dict:
        """JSON-friendly form."""
        return {
            "kernel": self.kernel,
            "sectors": [dataclasses.asdict(s) for s in self.sectors],
            "eigenvalues_over_P": self.eigenvalues.tolist(),
        }


def group_by_sector(eigenvalues: np.ndarray, mercer: MercerSpectrum) -> tuple[SectorSummary, ...]:
    """Assign descending eigenvalues to the analytic sectors in order of decreasing eigenvalue.

    The sector with the largest analytic eigenvalue takes the first ``multiplicity`` values,
    and so on; values beyond the analytic rank form a ``"null"`` group. Ties keep the table
    order (linear, traceless, radial).
    """
    values = np.sort(np.asarray(eigenvalues, dtype=float))[::-1]
    order = sorted(range(len(mercer.entries)), key=lambda k: -mercer.entries[k].eigenvalue)
    groups = [mercer.entries[k] for k in order if mercer.entries[k].multiplicity > 0]
    groups.append(MercerEigenspace(0.0, max(values.size - mercer.rank, 0), "null"))
    out = []
    pos = 0
    for entry in groups:
        count = min(entry.multiplicity, values.size - pos)
        if count <= 0:
            continue
        block = values[pos : pos + count]
        pos += count
        out.append(
            SectorSummary(
                label=entry.label, analytic=float(entry.eigenvalue), multiplicity=int(entry.multiplicity),
                count=int(count), mean=float(block.mean()), median=float(np.median(block)),
                minimum=float(block.min()), maximum=float(block.max()),
            )
        )
    return tuple(out)


def empirical_ntk_spectrum(
    inputs: np.ndarray,
    *,
    epsilon: float,
    scale: float = 1.0,
    weights: np.ndarray | None = None,
    width: int = 1,
) -> EmpiricalSpectrum:
    """Gram eigenvalues/P of the initial NTK on ``inputs``, grouped like the Mercer spectrum.

    Without ``weights`` the Gram matrix is that of the expected kernel K̄ (eq. 11, width
    ``width``): as P → ∞ its eigenvalues/P converge to :func:`mercer_spectrum` (Nyström),
    with a Marchenko–Pastur spread of relative width ~2(multiplicity/P)^(1/2) inside each
    sector. With ``weights`` (shape (N, D)) it is the empirical NTK of that network (eq. 19);
    this approaches K̄ only for N ≫ D (M = WᵀW/N → I), so at small width the grouping is a
    rank-order comparison, not a convergence statement.

    Parameters
    ----------
    inputs : ndarray, shape (P, D)
    epsilon, scale : float
    weights : ndarray, shape (N, D), optional
    width : int, default 1
        N of K̄ when ``weights`` is None (otherwise N = weights.shape[0]).
    """
    X = _matrix("inputs", inputs)
    if weights is None:
        K = expected_ntk_gram(X, epsilon=epsilon, scale=scale, width=width)
        kernel = "expected"
    else:
        W = _matrix("weights", weights, columns=X.shape[1])
        width = W.shape[0]
        K = ntk_gram(W, X, epsilon=epsilon, scale=scale)
        kernel = "empirical"
    values = np.linalg.eigvalsh(K)[::-1] / X.shape[0]
    mercer = mercer_spectrum(epsilon, X.shape[1], scale=scale, width=width)
    return EmpiricalSpectrum(eigenvalues=values, sectors=group_by_sector(values, mercer), mercer=mercer, kernel=kernel)
