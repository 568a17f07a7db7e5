"""The torch device of a run: ``--device`` / ``device=`` of every trainer of the package.

One resolver for the committee, family, neural and Bayesian trainers, so that every command
accepts and refuses the same names (theory.md conventions do not depend on the device: it only
changes the round-off, and it is recorded in each run's settings).
"""

from __future__ import annotations

import torch

from dmft.parameters import InvalidParameterError

__all__ = ["resolve_device"]


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` → CUDA if available, else CPU; ``"cpu"``, ``"cuda"`` or ``"cuda:k"`` as given.

    Raises
    ------
    InvalidParameterError
        For any other name (naming ``device`` and its valid values), or CUDA requested where
        none is available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device) if isinstance(device, str) else None
    except RuntimeError:
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise InvalidParameterError(f"device must be 'auto', 'cpu' or 'cuda[:k]', got {device!r}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(f"device {device!r} requested but CUDA is not available (use 'cpu' or 'auto')")
    return resolved
