"""Mean-field Bayesian neural network on concealed parity (seed_systems.md §A.8, eq 10, Fig 6).

Model: layers 30 → 200 → 2 with ReLU; each layer's input gets a constant-1 column (the bias), so
the weight matrices are (31, 200) and (201, 2). Prior p(w) = N(0, 1) on every weight; the
mean-field posterior q(w) = N(μ, σ²) starts from μ ~ N(0, ``q_mean_std``²) and σ = 0.01 (the
parameter is log σ). The forward pass uses the local reparameterisation trick: a layer's
pre-activation is Gaussian with mean x·μ and variance x²·σ², sampled once per forward pass (also
at evaluation, Decision D.10; the posterior-mean prediction is recorded as well).

Objective per (full) batch, eq 10: ``CE(ŷ, y) + KL(q ‖ p) / N_train``. The error is the CE term,
the complexity the description length ``KL / N_train`` with the closed form
``KL = Σ ½ (σ² + μ² − 1 − 2 log σ)``. SGD lr 0.1, batch 4096 (> 800, so full batch), 1500 epochs;
``q_mean_std ∈ {0.005, …, 1.0}`` × seeds {0, 1, 2}; the gap is :func:`empirical.metrics.grokking_gap`.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from dmft.parameters import InvalidParameterError, check_int_at_least, check_positive

from empirical.bayes.datasets import Dataset, parity
from empirical.bayes.divergence import stop_if_diverged
from empirical.metrics import GrokkingGap, grokking_gap

__all__ = [
    "BNNConfig",
    "BNNRun",
    "MeanFieldBNN",
    "gaussian_kl_standard_normal",
    "train_bnn",
    "run_bnn_grid",
    "Q_MEAN_STDS",
    "bnn_summary",
    "complexity_fall_rate",
    "steepest_fall_on_log_epochs",
    "MIN_EPOCHS_FOR_STEEPEST",
]

#: Initial posterior-mean scales of Fig 6 (§A.8).
Q_MEAN_STDS = (0.005, 0.01, 0.05, 0.1, 0.3, 0.5, 0.7, 1.0)
BNN_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class BNNConfig:
    """Settings of §A.8 (Fig 6 script).

    Attributes
    ----------
    q_mean_std : float
        Std of the initial posterior means.
    q_std_init : float
        Initial posterior std σ (0.01).
    prior_std : float
        Prior std (1).
    hidden : int
        200.
    k, n_total_dim : int
        Parity bits (3) and concealed input length (30).
    n_samples, n_train : int
        1000 and 800.
    learning_rate : float
        0.1 (SGD, no weight decay).
    batch_size : int
        4096 (full batch for 800 points).
    epochs : int
        1500.
    """

    q_mean_std: float = 0.1
    q_std_init: float = 0.01
    prior_std: float = 1.0
    hidden: int = 200
    k: int = 3
    n_total_dim: int = 30
    n_samples: int = 1000
    n_train: int = 800
    learning_rate: float = 0.1
    batch_size: int = 4096
    epochs: int = 1500
    threshold: float = 0.95

    def __post_init__(self) -> None:
        check_positive("q_mean_std", self.q_mean_std)
        check_positive("q_std_init", self.q_std_init)
        check_positive("prior_std", self.prior_std)
        check_int_at_least("hidden", self.hidden, 1)
        check_int_at_least("k", self.k, 1)
        check_int_at_least("n_total_dim", self.n_total_dim, self.k)
        check_positive("learning_rate", self.learning_rate)
        check_int_at_least("batch_size", self.batch_size, 1)
        check_int_at_least("epochs", self.epochs, 1)
        if not (1 <= self.n_train < self.n_samples):
            raise InvalidParameterError(f"n_train must lie in [1, n_samples - 1], got {self.n_train!r}")
        if not 0 < self.threshold < 1:
            raise InvalidParameterError(f"threshold must lie in (0, 1), got {self.threshold!r}")


def gaussian_kl_standard_normal(mean: torch.Tensor, log_std: torch.Tensor, prior_std: float = 1.0) -> torch.Tensor:
    """Σ KL(N(μ, σ²) ‖ N(0, s²)) = Σ [log(s/σ) + (σ² + μ²)/(2s²) − ½] (closed form)."""
    var = torch.exp(2.0 * log_std)
    return (math.log(prior_std) - log_std + (var + mean ** 2) / (2.0 * prior_std ** 2) - 0.5).sum()


class MeanFieldBNN(torch.nn.Module):
    """Mean-field Gaussian MLP with the local reparameterisation trick (§A.8)."""

    def __init__(self, sizes: Sequence[int], q_mean_std: float, q_std_init: float, generator: torch.Generator):
        super().__init__()
        self.means = torch.nn.ParameterList()
        self.log_stds = torch.nn.ParameterList()
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            self.means.append(torch.nn.Parameter(q_mean_std * torch.randn(n_in + 1, n_out, generator=generator)))
            self.log_stds.append(torch.nn.Parameter(torch.full((n_in + 1, n_out), math.log(q_std_init))))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, sample: bool = True) -> torch.Tensor:
        h = x
        last = len(self.means) - 1
        for i, (mu, log_std) in enumerate(zip(self.means, self.log_stds)):
            h = torch.cat([h, torch.ones(h.shape[0], 1, dtype=h.dtype)], dim=1)
            mean = h @ mu
            if sample:
                std = torch.sqrt((h * h) @ torch.exp(2.0 * log_std) + 1e-16)
                mean = mean + std * torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
            h = mean if i == last else torch.relu(mean)
        return h

    def kl(self, prior_std: float = 1.0) -> torch.Tensor:
        """KL(q ‖ p) over all weights (the bits-back description length, eq 3)."""
        return sum(gaussian_kl_standard_normal(m, s, prior_std) for m, s in zip(self.means, self.log_stds))


def complexity_fall_rate(model: MeanFieldBNN, learning_rate: float, n_train: int, prior_std: float = 1.0) -> float:
    """Fall of the complexity KL/N per SGD step caused by the KL term's own gradient (first order).

    ∂(KL/N)/∂μ = μ/(N s²) and ∂(KL/N)/∂log σ = (σ²/s² − 1)/N, so one step of size η lowers KL/N by
    ``η ‖∇(KL/N)‖² = η Σ [μ²/s⁴ + (σ²/s² − 1)²] / N²``. At σ = 0.01 and small μ this is ≈ η·W/N²
    for W weights: 1.03e-3 per epoch for the §A.8 network (W = 6602, N = 800, η = 0.1), so the
    1500 epochs of the Fig 6 script move log σ by only 1500·η/N = 0.19 and KL/N by ≈ 1.5 of 34.
    The cross-entropy gradient adds a term of either sign; it is small while the fit is poor.
    """
    with torch.no_grad():
        total = 0.0
        for mu, log_std in zip(model.means, model.log_stds):
            var_ratio = torch.exp(2.0 * log_std) / prior_std ** 2
            total += float((mu ** 2).sum()) / prior_std ** 4 + float(((var_ratio - 1.0) ** 2).sum())
    return learning_rate * total / n_train ** 2


@dataclass(frozen=True)
class BNNRun:
    """One (q_mean_std, seed) run of §A.8.

    Attributes
    ----------
    error : ndarray, shape (E,)
        Train cross-entropy of each epoch's batch (before the step).
    complexity : ndarray, shape (E,)
        KL/N_train before each step.
    train_accuracy, val_accuracy : ndarray, shape (E,)
        Train: pre-step batch accuracy (one sample); validation: one sample after the epoch.
    val_accuracy_mean : ndarray, shape (E,)
        Validation accuracy of the posterior-mean network (Decision D.10 option).
    gap : GrokkingGap
    """

    q_mean_std: float
    seed: int
    error: np.ndarray
    complexity: np.ndarray
    train_accuracy: np.ndarray
    val_accuracy: np.ndarray
    val_accuracy_mean: np.ndarray
    gap: GrokkingGap
    seconds: float = 0.0
    config: BNNConfig = field(default_factory=BNNConfig)


def bnn_data(config: BNNConfig, seed: int) -> Dataset:
    """Concealed parity of §A.8: k = 3, length 30, 1000 samples split 800/200."""
    return parity(k=config.k, n_total_dim=config.n_total_dim, n_samples=config.n_samples, n_train=config.n_train,
                  seed=seed)


def train_bnn(seed: int = 0, config: BNNConfig | None = None, data: Dataset | None = None) -> BNNRun:
    """Train the §A.8 BNN for one seed (the seed sets data, initial means and the noise).

    Raises
    ------
    empirical.bayes.divergence.TrainingDiverged
        At the first epoch whose error, complexity or posterior parameters are not finite.
    """
    config = config or BNNConfig()
    start = time.perf_counter()
    data = data or bnn_data(config, seed)
    generator = torch.Generator().manual_seed(int(seed))
    x = torch.tensor(data.x_train, dtype=torch.float32)
    y = torch.tensor(np.argmax(data.y_train, 1))
    xv = torch.tensor(data.x_val, dtype=torch.float32)
    yv = torch.tensor(np.argmax(data.y_val, 1))
    model = MeanFieldBNN([x.shape[1], config.hidden, data.y_train.shape[1]], config.q_mean_std, config.q_std_init,
                         generator)
    optimiser = torch.optim.SGD(model.parameters(), lr=config.learning_rate)
    n_train, E, B = len(x), config.epochs, config.batch_size
    error, complexity, tr_acc, va_acc, va_mean = (np.empty(E) for _ in range(5))
    shuffle = torch.Generator().manual_seed(int(seed) + 1)
    label = f"BNN q_mean_std={config.q_mean_std:g} seed {seed}"
    for epoch in range(E):
        order = torch.randperm(n_train, generator=shuffle)
        errs, comps, accs = [], [], []
        for s in range(0, n_train, B):
            idx = order[s:s + B]
            logits = model(x[idx], generator)
            ce = torch.nn.functional.cross_entropy(logits, y[idx])
            kl = model.kl(config.prior_std) / n_train
            accs.append(float((logits.detach().argmax(1) == y[idx]).float().mean()))
            errs.append(float(ce.detach()))
            comps.append(float(kl.detach()))
            optimiser.zero_grad(set_to_none=True)
            (ce + kl).backward()
            optimiser.step()
        error[epoch], complexity[epoch], tr_acc[epoch] = np.mean(errs), np.mean(comps), np.mean(accs)
        stop_if_diverged(label, epoch + 1, E, error=error[epoch], complexity=complexity[epoch],
                     weights=list(model.parameters()))
        with torch.no_grad():
            va_acc[epoch] = float((model(xv, generator).argmax(1) == yv).float().mean())
            va_mean[epoch] = float((model(xv, sample=False).argmax(1) == yv).float().mean())
    return BNNRun(q_mean_std=float(config.q_mean_std), seed=int(seed), error=error, complexity=complexity,
                  train_accuracy=tr_acc, val_accuracy=va_acc, val_accuracy_mean=va_mean,
                  gap=grokking_gap(tr_acc, va_acc, config.threshold), seconds=time.perf_counter() - start,
                  config=config)


def run_bnn_grid(q_mean_stds: Sequence[float] = Q_MEAN_STDS, seeds: Sequence[int] = BNN_SEEDS,
                 config: BNNConfig | None = None, progress: bool = False) -> list[BNNRun]:
    """Fig 6 grid: every ``q_mean_std`` × seed (every ``q_mean_std`` is validated before the first run)."""
    from dataclasses import replace

    from tqdm.auto import tqdm

    config = config or BNNConfig()
    configs = {q: replace(config, q_mean_std=float(q)) for q in q_mean_stds}  # every q checked before training
    jobs = [(q, s) for q in q_mean_stds for s in seeds]
    return [train_bnn(s, configs[q]) for q, s in tqdm(jobs, disable=not progress, desc="BNN grid")]


@dataclass(frozen=True)
class BNNSummary:
    """§C.5 statistics of a grid.

    Attributes
    ----------
    q_mean_stds : ndarray, shape (Q,)
    mean_gap : ndarray, shape (Q,)
        Gap averaged over seeds (censored gaps enter at their censored value).
    initial_complexity : ndarray, shape (Q,)
        KL/N at epoch 0, averaged over seeds.
    spearman_r, spearman_p : float
        Spearman correlation of ``q_mean_std`` with ``mean_gap``; NaN when every mean gap is equal.
    min_error_epoch : int
        Argmin of the error averaged over every run (0-based epoch).
    steepest_complexity_epoch : int or None
        Epoch of the steepest complexity fall per unit log-epoch on the averaged curve, the axis of
        Fig 6 (:func:`steepest_fall_on_log_epochs`); None for runs of fewer than 3 epochs.
    steepest_complexity_epoch_linear : int or None
        Argmin of the per-epoch difference of the averaged complexity. The KL pull on log σ makes
        this difference almost constant (:func:`complexity_fall_rate`), so this argmin is set by
        the μ terms at the start or by noise; reported for completeness. None for a single epoch.
    error_half_fall_epoch, complexity_half_fall_epoch : int
        First epoch at which the averaged error / complexity has made half of its fall from the
        start to its minimum: a threshold-free reading of "the error falls first, the complexity
        later".
    per_q_min_error_epoch, per_q_steepest_complexity_epoch : ndarray, shape (Q,)
        The first two statistics on the curves averaged per ``q_mean_std`` (the second is None for
        runs of fewer than 3 epochs).
    """

    q_mean_stds: np.ndarray
    mean_gap: np.ndarray
    initial_complexity: np.ndarray
    spearman_r: float
    spearman_p: float
    min_error_epoch: int
    steepest_complexity_epoch: int | None
    steepest_complexity_epoch_linear: int | None
    error_half_fall_epoch: int
    complexity_half_fall_epoch: int
    per_q_min_error_epoch: np.ndarray
    per_q_steepest_complexity_epoch: np.ndarray | None


def steepest_fall_on_log_epochs(curve: np.ndarray, points_per_decade: int = 20) -> int:
    """Epoch (0-based) at which ``curve`` falls fastest against log(epoch + 1).

    The curve is read on a grid of epochs spaced evenly in log(epoch + 1), ``points_per_decade`` per
    decade (duplicates removed); the slope Δcurve/Δlog between neighbours is assigned to the later
    point of each pair, and the most negative slope wins.
    """
    curve = np.asarray(curve, dtype=float)
    n = len(curve)
    if n < 3:
        raise InvalidParameterError(f"curve needs at least 3 epochs, got {n}")
    decades = np.log10(n)
    grid = np.unique(np.round(np.logspace(0, decades, max(3, int(points_per_decade * decades) + 1))).astype(int)) - 1
    slopes = np.diff(curve[grid]) / np.diff(np.log(grid + 1.0))
    return int(grid[1:][np.argmin(slopes)])


def _half_fall_epoch(curve: np.ndarray) -> int:
    low = float(np.min(curve))
    return int(np.argmax(curve <= 0.5 * (curve[0] + low)))


#: Fewest epochs :func:`steepest_fall_on_log_epochs` can read a slope from.
MIN_EPOCHS_FOR_STEEPEST = 3


def _order_epochs(error: np.ndarray, complexity: np.ndarray) -> tuple[int, int | None]:
    """Argmin of the error and the steepest complexity fall (None if the curve is too short)."""
    steepest = steepest_fall_on_log_epochs(complexity) if len(complexity) >= MIN_EPOCHS_FOR_STEEPEST else None
    return int(np.argmin(error)), steepest


def bnn_summary(runs: Sequence[BNNRun]) -> BNNSummary:
    """Spearman(q_mean_std, mean gap) and the error/complexity ordering of §C.5."""
    from scipy import stats

    qs = np.array(sorted({r.q_mean_std for r in runs}))
    mean_gap = np.array([np.mean([r.gap.gap for r in runs if r.q_mean_std == q]) for q in qs])
    init_c = np.array([np.mean([r.complexity[0] for r in runs if r.q_mean_std == q]) for q in qs])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)  # equal gaps: rho and p are NaN, as documented
        rho, p = stats.spearmanr(qs, mean_gap)
    err = np.mean([r.error for r in runs], axis=0)
    comp = np.mean([r.complexity for r in runs], axis=0)
    e_min, c_steep = _order_epochs(err, comp)
    per_q = [_order_epochs(np.mean([r.error for r in runs if r.q_mean_std == q], axis=0),
                           np.mean([r.complexity for r in runs if r.q_mean_std == q], axis=0)) for q in qs]
    steepest_linear = int(np.argmin(np.diff(comp))) + 1 if len(comp) >= 2 else None
    return BNNSummary(qs, mean_gap, init_c, float(rho), float(p), e_min, c_steep, steepest_linear,
                      _half_fall_epoch(err), _half_fall_epoch(comp), np.array([a for a, _ in per_q]),
                      None if c_steep is None else np.array([b for _, b in per_q]))


def bnn_arrays(runs: Sequence[BNNRun]) -> dict:
    return {f"q{r.q_mean_std:g}_seed{r.seed}": dict(
        error=r.error, complexity=r.complexity, train_accuracy=r.train_accuracy, val_accuracy=r.val_accuracy,
        val_accuracy_mean=r.val_accuracy_mean, q_mean_std=np.array(r.q_mean_std),
        gap=np.array([r.gap.t_train, r.gap.t_val, r.gap.gap]),
        gap_censored=np.array([r.gap.train_censored, r.gap.val_censored])) for r in runs}
