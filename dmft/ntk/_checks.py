"""The NTK of the committee machine: validation helpers.

Part of :mod:`dmft.ntk` (the names are re-exported there).
"""

from __future__ import annotations

import numpy as np

from dmft.parameters import InvalidParameterError, check_finite

__all__ = []


def _as_float_array(name: str, value) -> np.ndarray:
    """``value`` as a float64 array, or :class:`InvalidParameterError` naming ``name``."""
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{name} must be an array of real numbers") from exc


def _matrix(name: str, value, *, columns: int | None = None, rows: int | None = None) -> np.ndarray:
    """A finite float64 2-D array, with the stated number of rows/columns if given."""
    arr = _as_float_array(name, value)
    if arr.ndim != 2:
        raise InvalidParameterError(f"{name} must be a 2-D array, got shape {arr.shape}")
    if columns is not None and arr.shape[1] != columns:
        raise InvalidParameterError(
            f"{name} must have {columns} columns (the input dimension D), got shape {arr.shape}")
    if rows is not None and arr.shape[0] != rows:
        raise InvalidParameterError(f"{name} must have {rows} rows, got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InvalidParameterError(f"{name} must be non-empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{name} must contain only finite numbers")
    return arr


def _vector(name: str, value, *, length: int | None = None) -> np.ndarray:
    arr = _as_float_array(name, value)
    if arr.ndim != 1:
        raise InvalidParameterError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise InvalidParameterError(f"{name} must have length {length}, got {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{name} must contain only finite numbers")
    return arr


def _symmetric(name: str, value) -> np.ndarray:
    K = _as_float_array(name, value)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] < 1:
        raise InvalidParameterError(f"{name} must be a square matrix, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise InvalidParameterError(f"{name} must contain only finite numbers")
    scale = max(float(np.abs(K).max()), np.finfo(float).tiny)
    if np.abs(K - K.T).max() > 1e-10 * scale:
        raise InvalidParameterError(f"{name} must be symmetric (|K - K^T| <= 1e-10 max|K|)")
    return 0.5 * (K + K.T)


def _check_target_scale(target_scale: float) -> float:
    target_scale = check_finite("target_scale", target_scale)
    if target_scale <= 0:
        raise InvalidParameterError(
            f"target_scale must lie in (0, inf) (0.5: convention A, 1: B), got {target_scale!r}")
    return target_scale
