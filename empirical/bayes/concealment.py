"""The concealment MLP study and its grokking-gap regression (seed_systems.md §A.6, App. D).

A one-hidden-layer ReLU MLP, ``Linear(n → 1000, bias) → ReLU → Linear(1000 → p, no bias)`` with
Xavier-uniform weights, is trained by SGD (lr 0.1, coupled weight decay 0.01 on every parameter,
batch 32, shuffled, cross-entropy, 300 epochs) on datasets 2–7 with p = 7 (800 samples, 600/200
split) concealed by ``m`` spurious bits (§A.2). Accuracy bookkeeping is the authors' (§0): the
train accuracy of an epoch is the mean of the per-batch accuracies, each measured *before* that
batch's step; the validation accuracy is the mean of per-batch accuracies (batch 32) after the
epoch. A full-pass train accuracy after the epoch is recorded too (Decision D.15).

The gap per run is :func:`empirical.metrics.grokking_gap` (τ = 0.95, censored at 300 and
flagged, Decisions D.3). :func:`gap_regression` fits ``ln gap = a·m + c`` (gap ≤ 0 → ln gap = 0,
Decision D.4; optionally excluding those points) and gives Pearson's r and p in log space, pooled
and per dataset (App. D, eqs 23–25, Table 2).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import torch

from dmft.parameters import InvalidParameterError, check_int_at_least, check_positive

from empirical.bayes.datasets import CONCEALMENT_DATASETS, Dataset, modular
from empirical.bayes.divergence import stop_if_diverged
from empirical.metrics import GrokkingGap, grokking_gap

__all__ = [
    "ConcealmentConfig",
    "ConcealmentRun",
    "GapRegression",
    "train_concealment",
    "run_concealment_grid",
    "gap_regression",
    "regression_table",
    "can_fit",
    "FIT_REQUIREMENT",
    "log_gap",
]

#: Additional dimensionalities of the grid (Decision D.2).
DEFAULT_EXTRA_DIMS = (0, 10, 20, 30, 40)
#: Seeds of the grid (Decision D.2).
DEFAULT_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class ConcealmentConfig:
    """Settings of §A.6 (defaults are the authors' values).

    Attributes
    ----------
    p : int
        Modulus (7).
    n_samples, n_train : int
        800 samples, 600 for training.
    hidden : int
        Hidden width (1000).
    learning_rate, weight_decay : float
        SGD step (0.1) and coupled L2 coefficient (0.01, applied to all parameters).
    batch_size : int
        32.
    epochs : int
        300.
    threshold : float
        τ = 0.95.
    spurious : {"bits", "gaussian"}
        Concealment distribution (§A.2, Decision D.1).
    """

    p: int = 7
    n_samples: int = 800
    n_train: int = 600
    hidden: int = 1000
    learning_rate: float = 0.1
    weight_decay: float = 0.01
    batch_size: int = 32
    epochs: int = 300
    threshold: float = 0.95
    spurious: str = "bits"

    def __post_init__(self) -> None:
        check_int_at_least("p", self.p, 2)
        check_int_at_least("hidden", self.hidden, 1)
        check_positive("learning_rate", self.learning_rate)
        if not (self.weight_decay >= 0):
            raise InvalidParameterError(f"weight_decay must lie in [0, inf), got {self.weight_decay!r}")
        check_int_at_least("batch_size", self.batch_size, 1)
        check_int_at_least("epochs", self.epochs, 1)
        if not 0 < self.threshold < 1:
            raise InvalidParameterError(f"threshold must lie in (0, 1), got {self.threshold!r}")
        if self.spurious not in ("bits", "gaussian"):
            raise InvalidParameterError(f"spurious must be one of 'bits', 'gaussian', got {self.spurious!r}")


@dataclass(frozen=True)
class ConcealmentRun:
    """One (dataset, m, seed) run of §A.6.

    Attributes
    ----------
    train_accuracy : ndarray, shape (E,)
        Running pre-step minibatch mean (the authors' definition, used for the gap).
    train_accuracy_full : ndarray, shape (E,)
        Full-pass train accuracy after each epoch (Decision D.15).
    val_accuracy : ndarray, shape (E,)
        Mean of per-batch validation accuracies after each epoch.
    train_loss, val_loss : ndarray, shape (E,)
        Mean cross-entropy (train: running pre-step batch mean; validation: after the epoch).
    gap : GrokkingGap
    """

    dataset: str
    m: int
    seed: int
    train_accuracy: np.ndarray
    train_accuracy_full: np.ndarray
    val_accuracy: np.ndarray
    train_loss: np.ndarray
    val_loss: np.ndarray
    gap: GrokkingGap
    seconds: float = 0.0
    config: ConcealmentConfig = field(default_factory=ConcealmentConfig)


def build_mlp(n_in: int, n_out: int, hidden: int) -> torch.nn.Sequential:
    """``Linear(n_in, hidden) → ReLU → Linear(hidden, n_out, bias=False)``, Xavier-uniform weights."""
    model = torch.nn.Sequential(torch.nn.Linear(n_in, hidden), torch.nn.ReLU(),
                                torch.nn.Linear(hidden, n_out, bias=False))
    torch.nn.init.xavier_uniform_(model[0].weight)
    torch.nn.init.xavier_uniform_(model[2].weight)
    return model


def _batch_mean_accuracy(model, x: torch.Tensor, y_index: torch.Tensor, batch: int) -> tuple[float, float]:
    accs, losses = [], []
    for start in range(0, len(x), batch):
        logits = model(x[start:start + batch])
        target = y_index[start:start + batch]
        accs.append(float((logits.argmax(1) == target).double().mean()))
        losses.append(float(torch.nn.functional.cross_entropy(logits, target)))
    return float(np.mean(accs)), float(np.mean(losses))


def train_concealment(dataset: str, m: int, seed: int, config: ConcealmentConfig | None = None,
                      data: Dataset | None = None) -> ConcealmentRun:
    """Train the §A.6 MLP on ``dataset`` concealed by ``m`` bits; ``seed`` sets data, bits and init.

    Raises
    ------
    empirical.bayes.divergence.TrainingDiverged
        At the first epoch whose training loss or weights are not finite.
    """
    config = config or ConcealmentConfig()
    start = time.perf_counter()
    data = data or modular(dataset, p=config.p, m=m, n_samples=config.n_samples, n_train=config.n_train, seed=seed,
                           spurious=config.spurious)
    torch.manual_seed(int(seed))
    generator = torch.Generator().manual_seed(int(seed))
    x = torch.tensor(data.x_train, dtype=torch.float32)
    y = torch.tensor(np.argmax(data.y_train, 1))
    xv = torch.tensor(data.x_val, dtype=torch.float32)
    yv = torch.tensor(np.argmax(data.y_val, 1))
    model = build_mlp(x.shape[1], data.y_train.shape[1], config.hidden)
    optimiser = torch.optim.SGD(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    E, B = config.epochs, config.batch_size
    tr_acc, tr_full, va_acc, tr_loss, va_loss = (np.empty(E) for _ in range(5))
    label = f"concealment MLP {dataset} m={m} seed {seed}"
    for epoch in range(E):
        order = torch.randperm(len(x), generator=generator)
        accs, losses = [], []
        for s in range(0, len(x), B):
            idx = order[s:s + B]
            logits = model(x[idx])
            loss = torch.nn.functional.cross_entropy(logits, y[idx])
            accs.append(float((logits.detach().argmax(1) == y[idx]).double().mean()))
            losses.append(float(loss.detach()))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        tr_acc[epoch], tr_loss[epoch] = float(np.mean(accs)), float(np.mean(losses))
        stop_if_diverged(label, epoch + 1, E, train_loss=tr_loss[epoch], weights=list(model.parameters()))
        with torch.no_grad():
            va_acc[epoch], va_loss[epoch] = _batch_mean_accuracy(model, xv, yv, B)
            tr_full[epoch] = float((model(x).argmax(1) == y).double().mean())
    return ConcealmentRun(dataset=dataset, m=int(m), seed=int(seed), train_accuracy=tr_acc,
                          train_accuracy_full=tr_full, val_accuracy=va_acc, train_loss=tr_loss, val_loss=va_loss,
                          gap=grokking_gap(tr_acc, va_acc, config.threshold), seconds=time.perf_counter() - start,
                          config=config)


def run_concealment_grid(datasets: Sequence[str] = CONCEALMENT_DATASETS, extra_dims: Sequence[int] = DEFAULT_EXTRA_DIMS,
                         seeds: Sequence[int] = DEFAULT_SEEDS, config: ConcealmentConfig | None = None,
                         progress: bool = False, skip: Iterable[tuple[str, int, int]] = (),
                         callback=None) -> list[ConcealmentRun]:
    """All (dataset, m, seed) runs of the grid (Decision D.2), optionally skipping some."""
    from tqdm.auto import tqdm

    skip = set(skip)
    # seed-major order: an interrupted grid still covers every (dataset, m) cell with the first seeds
    jobs = [(d, int(m), int(s)) for s in seeds for d in datasets for m in extra_dims if (d, int(m), int(s)) not in skip]
    runs = []
    for d, m, s in tqdm(jobs, disable=not progress, desc="concealment grid"):
        run = train_concealment(d, m, s, config)
        if callback is not None:
            callback(run)
        runs.append(run)
    return runs


def log_gap(gap: np.ndarray) -> np.ndarray:
    """z = ln(gap), with z = 0 where gap ≤ 0 (App. D, Decision D.4)."""
    gap = np.asarray(gap, dtype=float)
    return np.where(gap > 0, np.log(np.where(gap > 0, gap, 1.0)), 0.0)


@dataclass(frozen=True)
class GapRegression:
    """Least-squares fit ln gap = a·m + c and Pearson statistics in log space (App. D).

    Attributes
    ----------
    slope : float
        a, per added dimension.
    intercept : float
        c; the fit reads gap ≈ b·e^{a m} with ``b = exp(c)``.
    r, p_value : float
        Pearson correlation of (m, ln gap) and its two-sided p-value (``scipy.stats.pearsonr``);
        NaN when every ln gap is equal (e.g. all runs censored at gap 0).
    n_points : int
    excluded_nonpositive : bool
        Whether runs with gap ≤ 0 were left out (else mapped to ln gap = 0).
    """

    slope: float
    intercept: float
    r: float
    p_value: float
    n_points: int
    excluded_nonpositive: bool = False

    @property
    def prefactor(self) -> float:
        """b = exp(c)."""
        return float(np.exp(self.intercept))


#: What :func:`gap_regression` needs, said where a fit is left out.
FIT_REQUIREMENT = "at least 3 runs over at least 2 distinct m values"


def _fit_points(extra_dims: Sequence[float], gaps: Sequence[float],
                exclude_nonpositive: bool) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(extra_dims, dtype=float)
    gap = np.asarray(gaps, dtype=float)
    if m.shape != gap.shape or m.ndim != 1:
        raise ValueError(f"extra_dims and gaps must be 1-D of equal length, got {m.shape} and {gap.shape}")
    if exclude_nonpositive:
        keep = gap > 0
        m, gap = m[keep], gap[keep]
    return m, gap


def can_fit(extra_dims: Sequence[float], gaps: Sequence[float], exclude_nonpositive: bool = False) -> bool:
    """Whether :func:`gap_regression` can fit these points (:data:`FIT_REQUIREMENT`)."""
    m, _ = _fit_points(extra_dims, gaps, exclude_nonpositive)
    return m.size >= 3 and np.ptp(m) > 0


def gap_regression(extra_dims: Sequence[float], gaps: Sequence[float], exclude_nonpositive: bool = False) -> GapRegression:
    """Fit ``ln gap = a·m + c`` by least squares (``np.polyfit(deg=1)``) with Pearson r, p (eqs 23–25).

    Raises ValueError unless :func:`can_fit` (:data:`FIT_REQUIREMENT`).
    """
    from scipy import stats

    m, gap = _fit_points(extra_dims, gaps, exclude_nonpositive)
    if not can_fit(m, gap):
        raise ValueError(f"need at least 3 points over 2 distinct m values to fit, got {m.size}")
    z = log_gap(gap)
    slope, intercept = np.polyfit(m, z, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)  # equal gaps: r and p are NaN, as documented
        r, p = stats.pearsonr(m, z)
    return GapRegression(float(slope), float(intercept), float(r), float(p), int(m.size), exclude_nonpositive)


def regression_table(runs: Sequence[ConcealmentRun], exclude_nonpositive: bool = False,
                     exclude_dims: Sequence[int] = (), skip_unfittable: bool = False) -> dict[str, GapRegression]:
    """Table 2: the fit per dataset and pooled (``"combined"``).

    Parameters
    ----------
    skip_unfittable : bool
        Leave out the rows that cannot be fit (:func:`can_fit`, e.g. a single m) instead of raising
        ValueError; the table may then be empty.
    """
    runs = [r for r in runs if r.m not in set(exclude_dims)]
    groups = {name: [r for r in runs if r.dataset == name] for name in dict.fromkeys(r.dataset for r in runs)}
    groups["combined"] = runs
    table = {}
    for name, sub in groups.items():
        m, gaps = [r.m for r in sub], [r.gap.gap for r in sub]
        if skip_unfittable and not can_fit(m, gaps, exclude_nonpositive):
            continue
        table[name] = gap_regression(m, gaps, exclude_nonpositive)
    return table


def concealment_arrays(runs: Sequence[ConcealmentRun]) -> dict:
    """Arrays for :func:`comparisons.store.write_record`: per-run curves and the gap table."""
    out = {f"{r.dataset}_m{r.m}_seed{r.seed}": dict(
        train_accuracy=r.train_accuracy, train_accuracy_full=r.train_accuracy_full, val_accuracy=r.val_accuracy,
        train_loss=r.train_loss, val_loss=r.val_loss, gap=np.array([r.gap.t_train, r.gap.t_val, r.gap.gap]),
        gap_censored=np.array([r.gap.train_censored, r.gap.val_censored])) for r in runs}
    return out


def runs_from_arrays(arrays: dict, config: ConcealmentConfig | None = None) -> list[ConcealmentRun]:
    """Rebuild :class:`ConcealmentRun` objects from :func:`concealment_arrays` output (e.g. read back)."""
    config = config or ConcealmentConfig()
    runs = []
    for key, a in arrays.items():
        name, m_part, seed_part = key.rsplit("_", 2)
        runs.append(ConcealmentRun(
            dataset=name, m=int(m_part[1:]), seed=int(seed_part[4:]), train_accuracy=a["train_accuracy"],
            train_accuracy_full=a["train_accuracy_full"], val_accuracy=a["val_accuracy"],
            train_loss=a["train_loss"], val_loss=a["val_loss"],
            gap=grokking_gap(a["train_accuracy"], a["val_accuracy"], config.threshold), config=config))
    return runs
