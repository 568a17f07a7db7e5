"""Full-batch gradient descent of the general committee family in PyTorch (theory.md §10.1).

The simulation side of :mod:`dmft.committee_online` and of the family's finite-α DMFT
(theory.md §10.7): student f = (κ/N) Σ_i φ(w_i·x) with φ ∈ {quadratic, linear, erf, relu, tanh},
target y = (κ*/M) Σ_m φ*(β_m·x) + σξ (or the square target), x ~ N(0, I/D), loss
(1/P) Σ_μ (f − y)² (MSE without ½), step η = η₀N/κ², time t = η₀·step/D.

The draws (teacher, planted student, inputs, noise) are those of
:func:`dmft.simulate.committee_gd_data`, so a run here starts from the same numbers as the NumPy
reference :func:`dmft.simulate.simulate_committee_gd`; only the arithmetic runs in torch, on the
CPU or a GPU (``device``). The test loss is the exact population loss of (Q, R, T)
(:func:`dmft.committee_online.committee_loss_decomposition`). ``model.center`` trains the
centred predictor f(·; W) − f(·; W(0)) (theory.md §10.10).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from dmft.committee_online import CommitteeModel, committee_loss_decomposition
from dmft.parameters import InvalidParameterError, check_positive
from dmft.result import LearningCurves
from dmft.simulate import committee_gd_data
from empirical.devices import resolve_device

__all__ = ["train_committee_family", "record_spacing", "TORCH_ACTIVATIONS"]

_SQRT2 = math.sqrt(2.0)
_ERF_SLOPE = math.sqrt(2.0 / math.pi)


def _quadratic(epsilon):
    return (lambda h: h + 0.5 * epsilon * h * h), (lambda h: 1.0 + epsilon * h)


def _smoothed_relu(width):
    """Gaussian-smoothed ReLU of width s: h Φ(h/s) + s ϕ(h/s) and Φ(h/s) (dmft.activations.smoothed_relu)."""
    def cdf(h):
        return 0.5 * torch.erfc(-h / (width * _SQRT2))

    def phi(h):
        return h * cdf(h) + width / math.sqrt(2.0 * math.pi) * torch.exp(-0.5 * (h / width) ** 2)

    return phi, cdf


#: φ and φ′ in torch, keyed by :attr:`dmft.activations.Activation.base_name` and called with its
#: :attr:`~dmft.activations.Activation.parameter` (ε of the quadratic one, the smoothed ReLU's width).
TORCH_ACTIVATIONS = {
    "quadratic": _quadratic,
    "linear": lambda _eps: ((lambda h: h), (lambda h: torch.ones_like(h))),
    "square": lambda _eps: ((lambda h: 0.5 * h * h), (lambda h: h)),
    "erf": lambda _eps: ((lambda h: torch.erf(h / _SQRT2)), (lambda h: _ERF_SLOPE * torch.exp(-0.5 * h * h))),
    "relu": lambda _eps: ((lambda h: torch.clamp(h, min=0.0)), (lambda h: (h > 0).to(h.dtype))),
    "tanh": lambda _eps: ((lambda h: torch.tanh(h)), (lambda h: 1.0 - torch.tanh(h) ** 2)),
    "smoothed_relu": _smoothed_relu,
}


def record_spacing(t) -> float | None:
    """Smallest positive gap between the recorded times ``t`` (and t = 0), None if there is none:
    the longest step (theory time per gradient step) that keeps every record on its own step."""
    gaps = np.diff(np.concatenate([[0.0], np.asarray(t, dtype=float)]))
    gaps = gaps[gaps > 0]
    return float(gaps.min()) if gaps.size else None


def train_committee_family(model: CommitteeModel, alpha: float, dim: int, t, *, seed: int = 0,
                           time_step: float = 0.02, device: str = "auto", dtype: str = "float64",
                           progress: bool = False) -> LearningCurves:
    """Gradient descent of one member of the committee family on P = α·D samples.

    Parameters
    ----------
    model : CommitteeModel
        Student and teacher activations (named ones: see :data:`TORCH_ACTIVATIONS`), widths,
        scales, T, R(0), Q(0) (planted exactly) and output noise. ``model.lr`` must be None.
    alpha : float
        P/D.
    dim : int
        Input dimension D ≥ N + M.
    t : array_like
        Recording times (theory units); each is rounded to the nearest step.
    seed : int
        Seed of the draws (:func:`dmft.simulate.committee_gd_data`).
    time_step : float
        Theory time per step, η₀/D.
    device : {"auto", "cpu", "cuda", "cuda:k"}
    dtype : {"float64", "float32"}
        Arithmetic precision (the draws are float64 on the CPU in both cases).
    progress : bool
        tqdm bar over steps.

    Returns
    -------
    LearningCurves
        ``kind="simulation"``, as :func:`dmft.simulate.simulate_committee_gd`; the device and
        dtype are in ``settings``.
    """
    if not isinstance(model, CommitteeModel):
        raise InvalidParameterError(f"model must be a CommitteeModel, got {type(model).__name__}")
    if model.lr is not None:
        raise InvalidParameterError("model.lr must be None: the step is set by time_step (t = eta_0 step/D)")
    for role, act in (("activation", model.activation), ("teacher_activation", model.teacher_activation)):
        if act.base_name not in TORCH_ACTIVATIONS:
            raise InvalidParameterError(f"{role} must be one of {sorted(TORCH_ACTIVATIONS)} (smoothed_relu:<width>) "
                                        f"for the torch trainer, got {act.name!r}")
    time_step = check_positive("time_step", time_step)
    if dtype not in ("float64", "float32"):
        raise InvalidParameterError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    t = np.asarray(t, dtype=float)
    if t.ndim != 1 or t.size == 0 or np.any(t < 0) or np.any(np.diff(t) < 0):
        raise InvalidParameterError("t must be a non-empty, non-decreasing array of times >= 0")
    spacing = record_spacing(t)
    if spacing is not None and time_step > spacing * (1 + 1e-9):
        # the records are taken at whole steps, round(t / time_step): closer ones would coincide
        raise InvalidParameterError(f"time_step (t advanced per step, eta_0/D) must not exceed the spacing of the "
                                    f"recorded times, {spacing:g}, got {time_step:g}")
    start = time.perf_counter()
    B, W0, X, y = committee_gd_data(model, alpha, dim, seed)
    dev = resolve_device(device)
    real = torch.float64 if dtype == "float64" else torch.float32
    Xt = torch.as_tensor(X, dtype=real, device=dev)
    yt = torch.as_tensor(y, dtype=real, device=dev)
    W = torch.as_tensor(W0, dtype=real, device=dev)
    Bt = torch.as_tensor(B, dtype=real, device=dev)
    phi, dphi = TORCH_ACTIVATIONS[model.activation.base_name](model.activation.parameter)
    N, M, P = model.width, model.M, X.shape[0]
    kappa = model.scale
    W_init = W.clone()
    if model.center:
        # centred predictor f(·; W) − f(·; W(0)): the targets shifted by f(·; W(0))
        yt = yt + kappa / N * phi(Xt @ W_init.T).sum(dim=1)
    gain = time_step * dim * 2.0 / (kappa * P)           # η (2/P)(κ/N) with η = η₀N/κ², η₀ = time_step·D
    record_steps = np.rint(t / time_step).astype(int)
    train, overlaps, covs, crosses = [], [], [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(record_steps[-1]), desc=f"GD {model.activation.name} D={dim}", unit="step", leave=False)
    step = 0
    with torch.no_grad():
        for target in record_steps:
            while True:
                H = Xt @ W.T
                residual = yt - kappa / N * phi(H).sum(dim=1)
                if step == target:
                    break
                W = W + gain * (residual[:, None] * dphi(H)).T @ Xt
                step += 1
                if bar is not None:
                    bar.update(1)
            loss = float(torch.mean(residual * residual))
            if not math.isfinite(loss):
                raise FloatingPointError(f"gradient descent diverged at step {step} (train loss {loss})")
            train.append(loss)
            overlaps.append((W @ Bt.T / dim).double().cpu().numpy())
            covs.append((W @ W.T / dim).double().cpu().numpy())
            crosses.append((W @ W_init.T / dim).double().cpu().numpy())
    if bar is not None:
        bar.close()
    R, Q = np.array(overlaps), np.array(covs)
    cross = np.array(crosses) if model.center else None
    decomposition = committee_loss_decomposition(Q, R, model, cross)
    return LearningCurves(
        kind="simulation", t=record_steps * time_step, train_loss=np.array(train),
        test_loss=decomposition.sum(axis=-1), overlap=R[:, np.arange(N), np.arange(N) % M], cov=Q,
        decomposition=decomposition, parameters={**model.as_attrs(), "alpha": float(alpha)},
        settings={"dim": dim, "n_train": P, "seed": seed, "time_step": time_step, "device": str(dev),
                  "dtype": dtype},
        iterations=int(step), seconds=time.perf_counter() - start,
        extras={"overlap_matrix": R} | ({"cross": cross} if model.center else {}),
    )
