"""The NTK of the committee machine: alignment (theory.md §2.5).

Part of :mod:`dmft.ntk` (the names are re-exported there).
"""

from __future__ import annotations

import numpy as np

from dmft.ntk._checks import _as_float_array, _vector
from dmft.parameters import InvalidParameterError

__all__ = ["cka"]


def cka(K: np.ndarray, y: np.ndarray, *, centering: str = "one-sided") -> float:
    """Centred kernel–target alignment of a Gram matrix with labels (theory.md §2.5).

    CKA(K, y) = y_cᵀ K_c y_c / (‖K_c‖_F ‖y_c‖²), y_c = y − mean(y),

    with the spec's (and the paper code's) one-sided centring K_c = K − K.mean(axis=0)
    (every column centred). The numerator equals the doubly centred one, the Frobenius norm
    does not: for K = yyᵀ the one-sided value is ‖y_c‖/‖y‖ (1 only for centred y), while
    K = y_c y_cᵀ gives 1. ``centering="two-sided"`` uses K_c = HKH, H = I − 11ᵀ/P
    (the usual CKA; then K = yyᵀ gives 1).

    Invariant under K → cK (c > 0), y → cy (c ≠ 0), and, for the one-sided form,
    K → K + 1vᵀ. Returns a float in [−1, 1]; in [0, 1] for a positive semi-definite K (an NTK
    Gram matrix), the one-sided value never exceeding the two-sided one.
    """
    K = _as_float_array("K", K)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] < 2:
        raise InvalidParameterError(f"K must be a square matrix of size >= 2, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise InvalidParameterError("K must contain only finite numbers")
    y = _vector("y", y, length=K.shape[0])
    if centering not in ("one-sided", "two-sided"):
        raise InvalidParameterError(f"centering must be 'one-sided' or 'two-sided', got {centering!r}")
    yc = y - y.mean()
    Kc = K - K.mean(axis=0, keepdims=True)
    if centering == "two-sided":
        Kc = Kc - Kc.mean(axis=1, keepdims=True)
    norm_k = float(np.linalg.norm(Kc))
    norm_y2 = float(yc @ yc)
    if norm_k == 0.0:
        raise InvalidParameterError("K must not be constant along its columns (the centred Gram matrix vanishes)")
    if norm_y2 == 0.0:
        raise InvalidParameterError("y must not be constant (the centred labels vanish)")
    return float(yc @ Kc @ yc) / (norm_k * norm_y2)
