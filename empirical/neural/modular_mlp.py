"""Two-layer quadratic MLP on modular arithmetic (theory.md §5, Fig. 2 / App. 8.3; §7.7).

Model (no biases, all weights N(0, 1) at initialisation)::

    x = [onehot_p(a), onehot_p(b)] ∈ R^D,  D = 2p
    h = W₁ x ∈ R^N,       W₁ ∈ R^{N×D}
    f(x) = s²/(D·N) · W₂ h²  ∈ R^p,   W₂ ∈ R^{p×N}

The output scale s multiplies the output twice (``layer2(h²)·s/(D·N)·s`` in the authors' code).
Training: plain full-batch gradient descent (no momentum, no weight decay) on
``L = MSE(f, onehot_p(c)) / s²`` (``nn.MSELoss``: mean over all n·p entries) with learning rate
``η = lr_base / s²`` (``lr_base`` = 100). Reported losses are the raw MSE (without the 1/s²).
Defaults: p = 23, N = 100, training fraction 0.9, seed 1 (theory.md §5).

The train/validation split reuses the fixed rule of seed_systems.md §B.2 (all p² equations
shuffled with RandomState(0)); the authors' own random split is not recoverable.

Larger s makes the early dynamics lazier (relative weight change ∝ 1/s² at fixed function
change), so the network first fits the training set with its initial features and generalises
later; the weight norm grows while it groks (theory.md §7.7).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from dmft.parameters import InvalidParameterError, check_int_at_least, check_positive
from empirical.neural.tasks import make_task, split_equations
from empirical.neural.history import TrainingHistory
from empirical.neural.training import ModelOptimizerState, descend, parameter_norm, resolve_device, train_to_history

__all__ = ["ModularMLPConfig", "ModularMLP", "one_hot_pairs", "mlp_loss_gradients_numpy", "train_modular_mlp"]


@dataclass(frozen=True)
class ModularMLPConfig:
    """Settings of theory.md §5 "Fig. 2 mod-arith MLP".

    Attributes
    ----------
    modulus : int
        p (23 in the paper's figure).
    operator : str
        A modular operator of seed_systems.md §B.3 (``+`` in the paper).
    width : int
        Hidden units N (100).
    scale : float
        Output scale s (1; Fig. 2c sweeps 0.5, 1, 1.5, 2).
    train_fraction : float
        Fraction of the p² equations used for training (0.9).
    lr_base : float
        Learning rate is ``lr_base / s²`` (100).
    """

    modulus: int = 23
    operator: str = "+"
    width: int = 100
    scale: float = 1.0
    train_fraction: float = 0.9
    lr_base: float = 100.0

    def __post_init__(self) -> None:
        check_int_at_least("modulus", self.modulus, 2)
        check_int_at_least("width", self.width, 1)
        check_positive("scale", self.scale)
        check_positive("lr_base", self.lr_base)
        if not 0 < self.train_fraction < 1:
            raise InvalidParameterError(f"train_fraction must lie in (0, 1), got {self.train_fraction!r}")
        task = make_task(self.operator, self.modulus)
        if task.modulus is None:
            raise InvalidParameterError(f"operator must be a modular operator for the MLP, got {self.operator!r}")

    @property
    def input_dim(self) -> int:
        return 2 * self.modulus

    @property
    def lr(self) -> float:
        return self.lr_base / self.scale ** 2

    def as_attrs(self) -> dict:
        return asdict(self)


def one_hot_pairs(equations: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs [onehot(a), onehot(b)] (n, 2p) and one-hot targets onehot(c) (n, p)."""
    eqs = np.asarray(equations, dtype=np.int64)
    n = eqs.shape[0]
    x = np.zeros((n, 2 * p))
    x[np.arange(n), eqs[:, 0]] = 1.0
    x[np.arange(n), p + eqs[:, 1]] = 1.0
    y = np.zeros((n, p))
    y[np.arange(n), eqs[:, 2]] = 1.0
    return x, y


class ModularMLP(torch.nn.Module):
    """f(x) = s²/(D·N) · W₂ (W₁x)² (theory.md §5, Fig. 2)."""

    def __init__(self, input_dim: int, width: int, outputs: int, scale: float, generator: torch.Generator):
        super().__init__()
        self.w1 = torch.nn.Parameter(torch.randn(width, input_dim, generator=generator, dtype=torch.float64))
        self.w2 = torch.nn.Parameter(torch.randn(outputs, width, generator=generator, dtype=torch.float64))
        self.prefactor = scale ** 2 / (input_dim * width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x @ self.w1.T
        return self.prefactor * (h * h) @ self.w2.T


def mlp_loss_gradients_numpy(w1: np.ndarray, w2: np.ndarray, x: np.ndarray, y: np.ndarray, scale: float):
    """Loss MSE/s² and its gradients, written out by hand (the independent check of autograd).

    With h = W₁xᵀ (N×n), a = h², f = c W₂ a (p×n), c = s²/(D N) and
    G = ∂L/∂f = 2(f − y)/(n p s²):  ∂L/∂W₂ = c G aᵀ,  ∂L/∂W₁ = (2h ⊙ c W₂ᵀG) x.

    Returns
    -------
    (loss, grad_w1, grad_w2)
    """
    n, d = x.shape
    width = w1.shape[0]
    p = w2.shape[0]
    c = scale ** 2 / (d * width)
    h = w1 @ x.T
    a = h * h
    f = c * (w2 @ a)
    resid = f - y.T
    loss = float(np.sum(resid ** 2) / (n * p) / scale ** 2)
    g = 2.0 * resid / (n * p * scale ** 2)
    grad_w2 = c * g @ a.T
    grad_w1 = (2.0 * h * (c * w2.T @ g)) @ x
    return loss, grad_w1, grad_w2


class _MLPRun(ModelOptimizerState):
    def __init__(self, config: ModularMLPConfig, seed: int, device: torch.device):
        self.config = config
        split = split_equations(make_task(config.operator, config.modulus), 100.0 * config.train_fraction)
        p = config.modulus
        xt, yt = one_hot_pairs(split.train, p)
        xv, yv = one_hot_pairs(split.val, p)
        self.x_train, self.y_train = torch.as_tensor(xt, device=device), torch.as_tensor(yt, device=device)
        self.x_val, self.y_val = torch.as_tensor(xv, device=device), torch.as_tensor(yv, device=device)
        generator = torch.Generator().manual_seed(int(seed))
        self.model = ModularMLP(config.input_dim, config.width, p, config.scale, generator).to(device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.lr, momentum=0.0, weight_decay=0.0)
        self.n_train, self.n_val = xt.shape[0], xv.shape[0]

    def train_step(self, update: int) -> float:
        out = self.model(self.x_train)
        mse = torch.mean((out - self.y_train) ** 2)
        descend(self.optimizer, mse / self.config.scale ** 2)
        return float(mse.detach())

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        metrics = {}
        for name, x, y in (("train", self.x_train, self.y_train), ("val", self.x_val, self.y_val)):
            out = self.model(x)
            metrics[f"{name}_loss"] = float(torch.mean((out - y) ** 2))
            metrics[f"{name}_accuracy"] = float((out.argmax(1) == y.argmax(1)).double().mean())
        metrics["param_norm"] = parameter_norm(self.model.parameters())
        metrics["norm_w1"] = float(self.model.w1.norm())
        metrics["norm_w2"] = float(self.model.w2.norm())
        return metrics


def train_modular_mlp(config: ModularMLPConfig = ModularMLPConfig(), *, seed: int = 1, device: str = "cpu",
                      steps: int = 50_000, log_every: int | None = None, checkpoint=None,
                      checkpoint_every: int | None = None, stop_after: int | None = None,
                      progress: bool = False) -> TrainingHistory:
    """Full-batch GD on the modular MLP (theory.md §5, Fig. 2); one step = one epoch.

    Logged on the geometric schedule of seed_systems.md §B.5 (ratio 1.02) and at least every
    ``log_every`` steps (default ``steps // 400``). Float64 throughout.
    """
    steps = check_int_at_least("steps", steps, 1)
    seed = check_int_at_least("seed", seed, 0)
    dev = resolve_device(device)
    run = _MLPRun(config, seed, dev)
    return train_to_history(
        run, system="modular_mlp", parameters=config.as_attrs(), seed=seed, device=dev, steps=steps,
        log_every=log_every, log_points=400, update_name="full-batch GD steps",
        description=f"modular MLP s={config.scale:g}",
        settings={"n_train": run.n_train, "n_val": run.n_val, "lr": config.lr},
        extra_keys=("step_loss", "norm_w1", "norm_w2"),
        checkpoint=checkpoint, checkpoint_every=checkpoint_every, stop_after=stop_after, progress=progress)
