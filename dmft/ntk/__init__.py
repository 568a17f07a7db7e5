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

Modules (one per chapter; every public name is re-exported here)
----------------------------------------------------------------
mercer      : Mercer spectrum of K̄ and the target's decomposition on it (theory.md §3).
gram        : empirical and expected Gram matrices, the committee output, eigendecomposition.
alignment   : centred kernel alignment (theory.md §2.5).
regression  : kernel (ridge) regression.
polynomial  : population loss of predictors in the span of the NTK features.
baseline    : the K₀-regression baseline of Fig. 1.
lazy        : lazy (linearised) learning curves.
spectra     : empirical spectra grouped by sector.
problem     : the seeded teacher–student problem and time grid of ``dmft ntk``.
_checks     : input validation shared by the modules above.
"""

from __future__ import annotations

from dmft.ntk.mercer import (MercerEigenspace, MercerSpectrum, SECTOR_LABELS, TargetDecomposition, mercer_spectrum,
                             target_decomposition)
from dmft.ntk.gram import committee_output, expected_ntk_gram, ntk_eigendecomposition, ntk_gram
from dmft.ntk.alignment import cka
from dmft.ntk.regression import kernel_regression
from dmft.ntk.polynomial import linearised_polynomial, polynomial_loss_decomposition
from dmft.ntk.baseline import KernelRegressionResult, initial_ntk_regression
from dmft.ntk.lazy import lazy_curves, lazy_weights
from dmft.ntk.problem import lazy_time_grid, make_problem
from dmft.ntk.spectra import EmpiricalSpectrum, SectorSummary, empirical_ntk_spectrum, group_by_sector

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
    "lazy_weights",
    "SectorSummary",
    "EmpiricalSpectrum",
    "empirical_ntk_spectrum",
    "group_by_sector",
    "committee_output",
    "SECTOR_LABELS",
    "make_problem",
    "lazy_time_grid",
]
