"""The NTK of the committee machine: empirical spectra grouped by sector.

Part of :mod:`dmft.ntk` (the names are re-exported there).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from dmft.ntk._checks import _matrix
from dmft.ntk.gram import expected_ntk_gram, ntk_gram
from dmft.ntk.mercer import MercerEigenspace, MercerSpectrum, mercer_spectrum

__all__ = ["EmpiricalSpectrum", "SectorSummary", "empirical_ntk_spectrum", "group_by_sector"]


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
