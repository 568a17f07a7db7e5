"""The NTK of the committee machine: empirical spectra grouped by sector.

Part of :mod:`dmft.ntk` (the names are re-exported there).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from dmft.ntk._checks import _as_float_array, _matrix
from dmft.ntk.gram import expected_ntk_gram, ntk_gram
from dmft.ntk.mercer import MercerSpectrum, mercer_spectrum
from dmft.parameters import check_int_at_least

__all__ = ["EmpiricalSpectrum", "SectorSummary", "empirical_ntk_spectrum", "group_by_sector"]


@dataclass(frozen=True)
class SectorSummary:
    """Empirical Gram eigenvalues/P assigned to one analytic eigenspace by rank order.

    Attributes
    ----------
    label : str
        Sector label, or ``"null"`` for ranks beyond the kernel's rank (the analytic rank, or
        N·D for a width-N network's NTK; sectors with analytic eigenvalue 0 belong here).
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


def group_by_sector(
    eigenvalues: np.ndarray, mercer: MercerSpectrum, *, rank: int | None = None
) -> tuple[SectorSummary, ...]:
    """Assign descending eigenvalues to the analytic sectors in order of decreasing eigenvalue.

    The sector with the largest analytic eigenvalue takes the first ``multiplicity`` values,
    and so on; values beyond the kernel's rank form a ``"null"`` group. Sectors whose
    analytic eigenvalue is 0 (the quadratic ones at ε = 0) are part of the null group, not
    labelled as sectors. Ties keep the table order (linear, traceless, radial).

    Parameters
    ----------
    eigenvalues : array_like, shape (P,)
    mercer : MercerSpectrum
    rank : int, optional
        Largest possible rank of the Gram matrix when it is below the analytic rank
        ``mercer.rank``: N·D for the NTK of a width-N network (its features φ'(w_i·x)x span at
        most N·D dimensions). Default: ``mercer.rank``.
    """
    values = np.sort(_as_float_array("eigenvalues", eigenvalues).ravel())[::-1]
    budget = mercer.rank if rank is None else min(mercer.rank, check_int_at_least("rank", rank, 0))
    order = sorted(range(len(mercer.entries)), key=lambda k: -mercer.entries[k].eigenvalue)
    groups = [mercer.entries[k] for k in order
              if mercer.entries[k].multiplicity > 0 and mercer.entries[k].eigenvalue > 0]
    out = []
    pos = 0
    for entry in groups:
        count = min(entry.multiplicity, values.size - pos, budget - pos)
        if count <= 0:
            continue
        out.append(_summary(entry.label, entry.eigenvalue, entry.multiplicity, values[pos : pos + count]))
        pos += count
    if values.size > pos:
        out.append(_summary("null", 0.0, values.size - pos, values[pos:]))
    return tuple(out)


def _summary(label: str, analytic: float, multiplicity: int, block: np.ndarray) -> SectorSummary:
    return SectorSummary(
        label=label, analytic=float(analytic), multiplicity=int(multiplicity), count=int(block.size),
        mean=float(block.mean()), median=float(np.median(block)), minimum=float(block.min()),
        maximum=float(block.max()),
    )


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
    rank = None if weights is None else width * X.shape[1]  # the network's features span <= N·D dimensions
    return EmpiricalSpectrum(eigenvalues=values, sectors=group_by_sector(values, mercer, rank=rank), mercer=mercer,
                             kernel=kernel)
