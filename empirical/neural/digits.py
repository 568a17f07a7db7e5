"""Digit-classification MLP with an initial weight scale and an output scale (theory.md §5, Fig. 5a).

Paper setting: MNIST, 1000 training and 2000 test images, ReLU MLP 784-200-200-200-10; the
forward pass divides each layer's pre-activation by √fan_in and the readout by the width N;
weights Kaiming-normal (std √(2/fan_in)) times the initial scale (150); the output is
multiplied by κ ∈ {1e-3, 0.01, 0.05, 0.5}; MSE on one-hot labels; AdamW lr 1e-3, wd 0.01;
batches of 200 cycled in a fixed order; 2.5·10⁵ steps. No biases.

**Data.** These machines cannot download data sets, so the default is scikit-learn's bundled
8×8 digits (1797 images of 64 pixels with values 0..16, scaled to [0, 1]; 1000 training images,
the remaining 797 for testing) — a smaller and easier problem than MNIST, with a 64-dimensional
input instead of 784. A local MNIST copy can be used with ``mnist_path``: an ``.npz`` file with
arrays ``x_train`` (n, 28, 28) or (n, 784), ``y_train``, ``x_test``, ``y_test`` (pixels 0..255),
as written by ``keras.datasets.mnist``; the first ``n_train`` / ``n_test`` images are used.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dmft.parameters import InvalidParameterError, check_int_at_least, check_positive
from empirical.neural.history import TrainingHistory
from empirical.neural.training import (
    train_to_history,
    DecoupledAdamW, ModelOptimizerState, descend, parameter_norm, resolve_device,
)

__all__ = ["DigitsConfig", "ScaledReLUMLP", "load_digit_data", "train_digits"]


@dataclass(frozen=True)
class DigitsConfig:
    """Settings of theory.md §5 "MNIST (Fig. 5a)", adapted to the bundled digits by default."""

    n_train: int = 1000
    n_test: int = 2000
    width: int = 200
    depth: int = 3
    init_scale: float = 150.0
    scale: float = 0.05
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 200
    mnist_path: str | None = None

    def __post_init__(self) -> None:
        for name, minimum in (("n_train", 1), ("n_test", 1), ("width", 1), ("depth", 1), ("batch_size", 1)):
            check_int_at_least(name, getattr(self, name), minimum)
        for name in ("init_scale", "scale", "lr"):
            check_positive(name, getattr(self, name))
        if not self.weight_decay >= 0:
            raise InvalidParameterError(f"weight_decay must lie in [0, inf), got {self.weight_decay!r}")
        if self.mnist_path is not None and not Path(self.mnist_path).exists():
            raise InvalidParameterError(f"mnist_path {self.mnist_path!r} does not exist")

    def as_attrs(self) -> dict:
        return asdict(self)


def load_digit_data(config: DigitsConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Inputs in [0, 1] (n, d) and integer labels for train and test, plus the data set's name.

    The bundled digits are split by a fixed permutation (``RandomState(0)``); if fewer than
    ``n_train + n_test`` images exist the test set is the remainder.
    """
    if config.mnist_path:
        return (*_read_mnist(config.mnist_path, config.n_train, config.n_test), "mnist")
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - sklearn is an optional dependency
        raise InvalidParameterError("the bundled digits need scikit-learn (pip install grokking-theory[sklearn]) "
                         "or pass mnist_path") from exc
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    if config.n_train >= len(x):
        raise InvalidParameterError(f"n_train must be < {len(x)} for the bundled digits, got {config.n_train}")
    order = np.random.RandomState(0).permutation(len(x))
    tr, te = order[: config.n_train], order[config.n_train: config.n_train + config.n_test]
    return x[tr], y[tr], x[te], y[te], "sklearn-digits-8x8"


def _read_mnist(path: str, n_train: int, n_test: int):
    """The first ``n_train`` / ``n_test`` images of a local MNIST ``.npz`` (see the module docstring).

    Raises
    ------
    InvalidParameterError
        ``path`` is not an ``.npz`` archive of numeric arrays (a text or HDF5 file, a single
        ``.npy`` array, a truncated archive), lacks one of the four arrays, or holds arrays of
        the wrong shape or labels outside 0..9.
    OSError
        The file cannot be read.
    """
    def refuse(why: str):
        return InvalidParameterError(f"mnist_path {path!r} must be an .npz archive with numeric arrays x_train, "
                                     f"y_train, x_test, y_test (as keras.datasets.mnist gives): {why}")

    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile):  # numpy reads other files as pickles, refused
        raise refuse("it is not an .npz archive") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise refuse("a single .npy array, not an .npz archive")
    with data:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(data.files)
        if missing:
            raise refuse(f"missing {sorted(missing)}")
        try:
            arrays = [data[key] for key in ("x_train", "y_train", "x_test", "y_test")]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise refuse(f"an array cannot be read ({' '.join(str(exc).split())[:120]})") from None
    xtr, ytr, xte, yte = arrays
    if not all(np.issubdtype(a.dtype, np.number) and a.size for a in arrays):
        raise refuse("every array must be numeric and non-empty")
    xtr, xte = xtr.reshape(len(xtr), -1), xte.reshape(len(xte), -1)
    if xtr.shape[1] != xte.shape[1] or ytr.shape != (len(xtr),) or yte.shape != (len(xte),):
        raise refuse(f"shapes {xtr.shape}, {ytr.shape}, {xte.shape}, {yte.shape} do not match (n, 784) and (n,)")
    labels = np.concatenate([ytr, yte])
    if np.any(labels != np.round(labels)) or labels.min() < 0 or labels.max() > 9:
        raise refuse("labels must be integers 0..9")
    return ((xtr[:n_train] / 255.0).astype(np.float32), ytr[:n_train].astype(np.int64),
            (xte[:n_test] / 255.0).astype(np.float32), yte[:n_test].astype(np.int64))


class ScaledReLUMLP(nn.Module):
    """h_{l+1} = ReLU(W_l h_l/√fan_in); f = κ · W_L h_L / N (NTK-style hidden layers, readout 1/N).

    Weights are Kaiming-normal (std √(2/fan_in)) times ``init_scale``; no biases.
    """

    def __init__(self, sizes: list[int], init_scale: float, scale: float, generator: torch.Generator):
        super().__init__()
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(fan_out, fan_in, generator=generator) * math.sqrt(2.0 / fan_in) * init_scale)
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for w in self.weights[:-1]:
            h = torch.relu(h @ w.T / math.sqrt(w.shape[1]))
        w = self.weights[-1]
        return self.scale * (h @ w.T) / w.shape[1]


class _DigitsRun(ModelOptimizerState):
    def __init__(self, config: DigitsConfig, seed: int, device: torch.device):
        self.config = config
        xtr, ytr, xte, yte, self.dataset = load_digit_data(config)
        self.x_train, self.y_train = torch.as_tensor(xtr, device=device), torch.as_tensor(ytr, device=device)
        self.x_test, self.y_test = torch.as_tensor(xte, device=device), torch.as_tensor(yte, device=device)
        self.n_classes = 10
        sizes = [xtr.shape[1]] + [config.width] * config.depth + [self.n_classes]
        generator = torch.Generator().manual_seed(int(seed))
        self.model = ScaledReLUMLP(sizes, config.init_scale, config.scale, generator).to(device)
        self.order = torch.randperm(len(xtr), generator=generator).to(device)
        self.optimizer = DecoupledAdamW(self.model.parameters(), lr=config.lr, betas=(0.9, 0.999),
                                        weight_decay=config.weight_decay)
        self.batch_size = min(config.batch_size, len(xtr))
        self.batches = math.ceil(len(xtr) / self.batch_size)

    def _mse(self, x, y):
        out = self.model(x)
        return torch.mean((out - nn.functional.one_hot(y, self.n_classes).to(out.dtype)) ** 2), out

    def train_step(self, update: int) -> float:
        b = update % self.batches
        idx = self.order[b * self.batch_size:(b + 1) * self.batch_size]
        loss, _ = self._mse(self.x_train[idx], self.y_train[idx])
        return descend(self.optimizer, loss)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        out = {}
        for name, x, y in (("train", self.x_train, self.y_train), ("val", self.x_test, self.y_test)):
            loss, pred = self._mse(x, y)
            out[f"{name}_loss"] = float(loss)
            out[f"{name}_accuracy"] = float((pred.argmax(1) == y).float().mean())
        out["param_norm"] = parameter_norm(self.model.parameters())
        return out


def train_digits(config: DigitsConfig = DigitsConfig(), *, seed: int = 0, device: str = "cpu", steps: int = 250_000,
                 log_every: int | None = None, checkpoint=None, checkpoint_every: int | None = None,
                 stop_after: int | None = None, progress: bool = False) -> TrainingHistory:
    """Train the digit MLP (``system="digits"``); ``settings["dataset"]`` names the data used."""
    steps = check_int_at_least("steps", steps, 1)
    seed = check_int_at_least("seed", seed, 0)
    dev = resolve_device(device)
    run = _DigitsRun(config, seed, dev)
    return train_to_history(
        run, system="digits", parameters=config.as_attrs(), seed=seed, device=dev, steps=steps,
        log_every=log_every, log_points=300, update_name=f"AdamW steps on {run.dataset}",
        description=f"digits init={config.init_scale:g} scale={config.scale:g}",
        settings={"dataset": run.dataset, "n_train": len(run.x_train), "n_test": len(run.x_test)},
        checkpoint=checkpoint, checkpoint_every=checkpoint_every, stop_after=stop_after, progress=progress)
