"""Grokking metrics shared by every system of the package.

One definition of each quantity, used by the committee machine, the neural systems and the
Bayesian/GP systems alike:

* :func:`first_crossing` — first index where a metric passes a threshold (strictly), with
  censoring at the end of the record (seed_systems.md §0, "Operational gap").
* :func:`grokking_gap` — T_val − T_train on accuracy with threshold τ = 0.95 by default; epochs
  counted from 0; a series that never passes is censored at E (the number of epochs) and flagged.
* :func:`time_to_loss` / :func:`amount_of_grokking` — the loss-threshold versions of theory.md §5
  (phase-diagram row: max(0, t_test(x) − t_train(x)), t(x) the first time with loss < x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Crossing", "GrokkingGap", "first_crossing", "grokking_gap", "time_to_loss", "amount_of_grokking"]


@dataclass(frozen=True)
class Crossing:
    """First index at which a series passes a threshold.

    Attributes
    ----------
    index : int
        First index i with ``values[i] > threshold`` (``above=True``) or ``< threshold``;
        ``len(values)`` when the series never passes (censored).
    censored : bool
        True when the series never passed the threshold within the record.
    """

    index: int
    censored: bool


@dataclass(frozen=True)
class GrokkingGap:
    """Operational grokking gap (seed_systems.md §0).

    Attributes
    ----------
    t_train, t_val : int
        First epoch (0-based) with train / validation accuracy strictly above the threshold, or
        the number of epochs E when never reached.
    gap : int
        ``t_val - t_train`` (may be negative).
    train_censored, val_censored : bool
        Whether ``t_train`` / ``t_val`` were censored at E.
    threshold : float
    """

    t_train: int
    t_val: int
    gap: int
    train_censored: bool
    val_censored: bool
    threshold: float

    @property
    def censored(self) -> bool:
        """True if either crossing was censored (the gap is then a bound, not a value)."""
        return self.train_censored or self.val_censored


def first_crossing(values, threshold: float, *, above: bool = True) -> Crossing:
    """First index where ``values`` passes ``threshold`` strictly.

    Parameters
    ----------
    values : array_like, shape (E,)
        A metric per epoch (or per logged step).
    threshold : float
    above : bool, default True
        ``True``: look for ``values > threshold`` (accuracies); ``False``: ``values < threshold``
        (losses).

    Returns
    -------
    Crossing
        ``index = E`` and ``censored = True`` when the series never passes. NaN never passes.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {values.shape}")
    passed = values > threshold if above else values < threshold
    hits = np.flatnonzero(passed)
    if hits.size == 0:
        return Crossing(index=int(values.size), censored=True)
    return Crossing(index=int(hits[0]), censored=False)


def grokking_gap(train_accuracy, val_accuracy, threshold: float = 0.95) -> GrokkingGap:
    """Grokking gap T_val − T_train of accuracy series (seed_systems.md §0).

    Parameters
    ----------
    train_accuracy, val_accuracy : array_like, shape (E,)
        Accuracy per epoch, epoch 0 first.
    threshold : float, default 0.95
        Strict threshold τ.
    """
    train = first_crossing(train_accuracy, threshold, above=True)
    val = first_crossing(val_accuracy, threshold, above=True)
    return GrokkingGap(
        t_train=train.index, t_val=val.index, gap=val.index - train.index,
        train_censored=train.censored, val_censored=val.censored, threshold=float(threshold),
    )


def time_to_loss(t, loss, threshold: float) -> float:
    """First time ``t[i]`` at which ``loss[i] < threshold``; ``inf`` if never (theory.md §5)."""
    t = np.asarray(t, dtype=float)
    crossing = first_crossing(loss, threshold, above=False)
    return float("inf") if crossing.censored else float(t[crossing.index])


def amount_of_grokking(t, train_loss, test_loss, threshold: float = 0.1) -> float:
    """Amount of grokking max(0, t_test(x) − t_train(x)) of theory.md §5 (Fig. 3e).

    A test loss that never crosses within the record is censored at the last time ``t[-1]``
    (the paper stops at a step limit); a train loss that never crosses gives 0 (no memorisation,
    no grokking).
    """
    t = np.asarray(t, dtype=float)
    t_train = time_to_loss(t, train_loss, threshold)
    if not np.isfinite(t_train):
        return 0.0
    t_test = time_to_loss(t, test_loss, threshold)
    if not np.isfinite(t_test):
        t_test = float(t[-1])
    return max(0.0, t_test - t_train)
