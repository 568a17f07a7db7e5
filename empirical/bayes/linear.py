"""Linear regression that groks (seed_systems.md §A.3; paper §2.1.1, eqs 7–8, App. F.1).

Dataset 9 (y = 0.3·x, 2 training points) is expanded with three deterministic nuisance features,
``x' = [x, x², x³, sin(100x)]`` (eq 7), and a bias-free linear model ``ŷ = wᵀx'`` is trained by
full-batch gradient descent on the MDL-style loss (eq 8)

    L(w) = (1/N) [ Σ_n (y_n − wᵀx'_n)² / σ²  +  Σ_i (w_i − μ_i)² / s_i² ],

σ² = 0.002, μ = 0, s² = 0.5, from the "unusual" initialisation w₀ = [0.0005, 0.9, 0.9, 0.9].
The first term is the data fit, the second the complexity. A prediction is correct iff
sign(ŷ) = sign(y) (``> 0`` against ``≤ 0``).

Bookkeeping follows §0: the train accuracy of epoch e is measured before that epoch's step, the
validation accuracy after it. Everything is float64 NumPy; the gradient is the closed form
(tested against autograd).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from dmft.parameters import InvalidParameterError, check_int_at_least, check_positive

from empirical.bayes.datasets import Dataset, one_zero_slope
from empirical.bayes.divergence import stop_if_diverged
from empirical.metrics import GrokkingGap, grokking_gap

__all__ = [
    "LinearGrokkingConfig",
    "LinearGrokkingRun",
    "nuisance_features",
    "mdl_loss",
    "mdl_gradient",
    "sign_accuracy",
    "train_linear",
    "run_linear_seeds",
]


@dataclass(frozen=True)
class LinearGrokkingConfig:
    """Settings of §A.3 (defaults are the authors' values).

    Attributes
    ----------
    noise_variance : float
        σ² of the data-fit term (0.002).
    prior_mean, prior_variance : float
        μ_i and s_i² of the complexity term (0 and 0.5, equal for all i).
    init_weights : tuple of 4 floats
        w₀ = (0.0005, 0.9, 0.9, 0.9).
    learning_rate : float
        Full-batch SGD step (1e-3).
    epochs : int
        5000.
    n_points, n_train : int
        Dataset 9 size (100) and training points (2).
    threshold : float
        Grokking threshold τ (0.95).
    """

    noise_variance: float = 0.002
    prior_mean: float = 0.0
    prior_variance: float = 0.5
    init_weights: tuple[float, ...] = (0.0005, 0.9, 0.9, 0.9)
    learning_rate: float = 1e-3
    epochs: int = 5000
    n_points: int = 100
    n_train: int = 2
    threshold: float = 0.95

    def __post_init__(self) -> None:
        check_positive("noise_variance", self.noise_variance)
        check_positive("prior_variance", self.prior_variance)
        check_positive("learning_rate", self.learning_rate)
        check_int_at_least("epochs", self.epochs, 1)
        check_int_at_least("n_points", self.n_points, 3)
        if not (1 <= self.n_train < self.n_points):
            raise InvalidParameterError(f"n_train must lie in [1, n_points - 1] = [1, {self.n_points - 1}], got {self.n_train!r}")
        if len(self.init_weights) != 4:
            raise InvalidParameterError(f"init_weights must have 4 entries (one per feature of eq 7), got {len(self.init_weights)}")
        if not 0 < self.threshold < 1:
            raise InvalidParameterError(f"threshold must lie in (0, 1), got {self.threshold!r}")
        object.__setattr__(self, "init_weights", tuple(float(w) for w in self.init_weights))


@dataclass(frozen=True)
class LinearGrokkingRun:
    """One seed of §A.3.

    Attributes
    ----------
    seed : int
    train_accuracy, val_accuracy : ndarray, shape (E,)
        Per epoch (train before the step, validation after it).
    data_fit, complexity : ndarray, shape (E,)
        The two terms of eq 8 on the training set, before each step.
    val_mse : ndarray, shape (E,)
        Validation mean squared error after each step.
    weights : ndarray, shape (E + 1, 4)
        w before epoch 0, …, after the last epoch.
    x_train : ndarray, shape (N,)
    gap : GrokkingGap
        §0 gap from :func:`empirical.metrics.grokking_gap`.
    """

    seed: int
    train_accuracy: np.ndarray
    val_accuracy: np.ndarray
    data_fit: np.ndarray
    complexity: np.ndarray
    val_mse: np.ndarray
    weights: np.ndarray
    x_train: np.ndarray
    gap: GrokkingGap
    seconds: float = 0.0
    config: LinearGrokkingConfig = field(default_factory=LinearGrokkingConfig)


def nuisance_features(x: np.ndarray) -> np.ndarray:
    """Eq 7: ``[x, x², x³, sin(100x)]`` for scalar inputs, shape (N,) or (N, 1) → (N, 4)."""
    x = np.asarray(x, dtype=float).reshape(-1)
    return np.stack([x, x ** 2, x ** 3, np.sin(100.0 * x)], axis=1)


def mdl_loss(w: np.ndarray, features: np.ndarray, y: np.ndarray, config: LinearGrokkingConfig) -> tuple[float, float]:
    """Eq 8 split into (data fit, complexity), both already divided by N = len(y)."""
    n = len(y)
    residual = y - features @ w
    data_fit = float(residual @ residual) / config.noise_variance / n
    complexity = float(np.sum((w - config.prior_mean) ** 2)) / config.prior_variance / n
    return data_fit, complexity


def mdl_gradient(w: np.ndarray, features: np.ndarray, y: np.ndarray, config: LinearGrokkingConfig) -> np.ndarray:
    """∇_w L of eq 8: (1/N)[−(2/σ²) X'ᵀ(y − X'w) + (2/s²)(w − μ)]."""
    n = len(y)
    residual = y - features @ w
    return (-2.0 / config.noise_variance * features.T @ residual
            + 2.0 / config.prior_variance * (w - config.prior_mean)) / n


def sign_accuracy(prediction: np.ndarray, target: np.ndarray) -> float:
    """Fraction with ``(ŷ > 0) == (y > 0)`` (§A.3)."""
    return float(np.mean((np.asarray(prediction) > 0) == (np.asarray(target) > 0)))


def train_linear(seed: int = 0, config: LinearGrokkingConfig | None = None, data: Dataset | None = None) -> LinearGrokkingRun:
    """Train the §A.3 model for one seed (the seed draws Dataset 9).

    Raises
    ------
    empirical.bayes.divergence.TrainingDiverged
        At the first epoch whose loss terms, weights or validation MSE are not finite (gradient
        descent on eq 8 is unstable for ``learning_rate`` above about N σ² / λ_max(X'ᵀX')).
    """
    config = config or LinearGrokkingConfig()
    start = time.perf_counter()
    data = data or one_zero_slope(seed=seed, n_points=config.n_points, n_train=config.n_train)
    phi_train, phi_val = nuisance_features(data.x_train), nuisance_features(data.x_val)
    y_train, y_val = np.asarray(data.y_train), np.asarray(data.y_val)
    E = config.epochs
    w = np.array(config.init_weights, dtype=float)
    weights = np.empty((E + 1, 4))
    weights[0] = w
    train_acc, val_acc = np.empty(E), np.empty(E)
    data_fit, complexity, val_mse = np.empty(E), np.empty(E), np.empty(E)
    label = f"linear regression seed {seed}"
    with np.errstate(over="ignore", invalid="ignore"):  # a blow-up is reported once, by stop_if_diverged
        for epoch in range(E):
            train_acc[epoch] = sign_accuracy(phi_train @ w, y_train)
            data_fit[epoch], complexity[epoch] = mdl_loss(w, phi_train, y_train, config)
            w = w - config.learning_rate * mdl_gradient(w, phi_train, y_train, config)
            weights[epoch + 1] = w
            prediction = phi_val @ w
            val_acc[epoch] = sign_accuracy(prediction, y_val)
            val_mse[epoch] = float(np.mean((prediction - y_val) ** 2))
            stop_if_diverged(label, epoch + 1, E, data_fit=data_fit[epoch], complexity=complexity[epoch], weights=w,
                         validation_mse=val_mse[epoch])
    return LinearGrokkingRun(
        seed=seed, train_accuracy=train_acc, val_accuracy=val_acc, data_fit=data_fit, complexity=complexity,
        val_mse=val_mse, weights=weights, x_train=np.asarray(data.x_train).reshape(-1),
        gap=grokking_gap(train_acc, val_acc, config.threshold), seconds=time.perf_counter() - start, config=config,
    )


def run_linear_seeds(seeds: Sequence[int] = (0, 1, 2, 3, 4), config: LinearGrokkingConfig | None = None) -> list[LinearGrokkingRun]:
    """§A.3 over the spec's seeds 0..4."""
    return [train_linear(int(s), config) for s in seeds]


def linear_arrays(runs: Sequence[LinearGrokkingRun]) -> dict:
    """Arrays for :func:`comparisons.store.write_record` (one subgroup per seed)."""
    out = {}
    for run in runs:
        out[f"seed{run.seed}"] = dict(
            epoch=np.arange(len(run.train_accuracy)), train_accuracy=run.train_accuracy,
            val_accuracy=run.val_accuracy, data_fit=run.data_fit, complexity=run.complexity, val_mse=run.val_mse,
            weights=run.weights, x_train=run.x_train,
            gap=np.array([run.gap.t_train, run.gap.t_val, run.gap.gap]),
            gap_censored=np.array([run.gap.train_censored, run.gap.val_censored]),
        )
    return out
