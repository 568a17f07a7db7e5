"""The NTK of the committee machine: Mercer spectrum and target decomposition (theory.md §3).

Part of :mod:`dmft.ntk` (the names are re-exported there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

import numpy as np

from dmft.ntk._checks import _check_target_scale, _matrix, _vector
from dmft.parameters import InvalidParameterError, check_finite, check_int_at_least, check_positive

__all__ = ["MercerEigenspace", "MercerSpectrum", "SECTOR_LABELS", "TargetDecomposition", "mercer_spectrum",
           "target_decomposition"]


#: Labels of the three non-null eigenspaces of K̄ (theory.md §3), in the table's order.
SECTOR_LABELS = ("linear", "traceless_quadratic", "radial")


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
        count = check_int_at_least("count", count, 0)
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
    d = float(dim)
    with np.errstate(over="ignore"):
        pre = np.float64(scale) ** 2 / width
        eps2 = np.float64(epsilon) ** 2
        values = (pre / d, pre * 2.0 * eps2 / d**2, pre * eps2 * (d + 2.0) / d**2)
        # the spectrum's own sums (trace, Hilbert–Schmidt norm) must be representable too
        finite = all(np.isfinite(v) and np.isfinite(v * v * (d * d)) for v in values)
    if not finite:
        raise InvalidParameterError(
            f"epsilon and scale (output scale kappa) are too large: the Mercer eigenvalues (kappa^2/N) epsilon^2 "
            f"(D+2)/D^2 and their squares overflow float64 (epsilon={epsilon!r}, scale={scale!r})")
    entries = (
        MercerEigenspace(float(values[0]), dim, "linear"),
        MercerEigenspace(float(values[1]), dim * (dim + 1) // 2 - 1, "traceless_quadratic"),
        MercerEigenspace(float(values[2]), 1, "radial"),
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
            raise InvalidParameterError("teacher must be given to evaluate the traceless component")
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
            raise InvalidParameterError("teacher must be a non-zero vector")
        matrix = s * (np.outer(beta, beta) - rho * np.eye(dim))
    else:
        rho = check_positive("rho (teacher norm |beta|^2/D)", rho)
    d = float(dim)
    with np.errstate(over="ignore"):
        sr2 = np.float64(s * rho) ** 2
    if not np.isfinite(3.0 * sr2):
        raise InvalidParameterError(f"rho (teacher norm |beta|^2/D) times target_scale is too large: E[y^2] = 3 (s rho)^2 "
                                    f"overflows float64 (rho={rho!r}, target_scale={s!r})")
    power = {
        "linear": 0.0,
        "traceless_quadratic": float(2.0 * sr2 * (d - 1.0) / d),
        "radial": float(sr2 * (d + 2.0) / d),
    }
    return TargetDecomposition(
        dim=dim, rho=rho, target_scale=s, radial_coefficient=s * rho, traceless_matrix=matrix,
        power=power, mean=s * rho,
    )
