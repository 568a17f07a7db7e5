"""Grokking summaries and plots of the neural systems.

* :func:`grokking_summary` — accuracy- and loss-based grokking times of a
  :class:`~empirical.neural.history.TrainingHistory`, computed with the shared
  :mod:`empirical.metrics` functions (``grokking_gap``, ``first_crossing``, ``time_to_loss``)
  on the logged series and reported in optimiser steps.
* :func:`plot_history` — train/validation loss (log–log axes), accuracy and parameter norm
  against step, for one or several runs.
* :func:`plot_fraction_phase` — the train-fraction phase picture of seed_systems.md §B.6.2:
  steps to 99 % train and validation accuracy against the training percentage, each run marked
  by its phase (comprehension, grokking, memorisation, confusion).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from dmft.plotting import save_figure as _save
from empirical.metrics import first_crossing, grokking_gap, time_to_loss
from empirical.neural.history import TrainingHistory

__all__ = ["grokking_summary", "plot_history", "plot_fraction_phase", "save_figure", "summary_table"]


def _step_or_inf(history: TrainingHistory, index: int, censored: bool) -> float:
    return float("inf") if censored else float(history.step[index])


def grokking_summary(history: TrainingHistory, *, thresholds: Sequence[float] = (0.95, 0.99),
                     loss_threshold: float | None = None) -> dict:
    """Grokking times of one run, in optimiser steps (``inf`` where never reached).

    For each accuracy threshold τ: ``t_train``/``t_val`` (first logged step with accuracy > τ,
    from :func:`empirical.metrics.grokking_gap`), ``gap`` = t_val − t_train and ``ratio`` =
    t_val / t_train (the §C.6 criterion T_val/T_train ≥ 10). Loss-based: the first steps at
    which the train / validation loss falls below ``loss_threshold`` (default: 1 % of the
    initial training loss), from :func:`empirical.metrics.time_to_loss`.
    """
    out: dict = {"system": history.system, "accuracy": {}, "final": {
        "step": int(history.step[-1]), "train_accuracy": float(history.train_accuracy[-1]),
        "val_accuracy": float(history.val_accuracy[-1]), "train_loss": float(history.train_loss[-1]),
        "val_loss": float(history.val_loss[-1]), "param_norm": float(history.param_norm[-1])}}
    for tau in thresholds:
        gap = grokking_gap(history.train_accuracy, history.val_accuracy, threshold=tau)
        t_train = _step_or_inf(history, gap.t_train, gap.train_censored)
        t_val = _step_or_inf(history, gap.t_val, gap.val_censored)
        ratio = t_val / max(t_train, 1.0) if math.isfinite(t_val) and math.isfinite(t_train) else float("inf")
        out["accuracy"][f"{tau:g}"] = {"t_train": t_train, "t_val": t_val, "gap": t_val - t_train,
                                       "ratio": ratio, "censored": gap.censored}
    threshold = loss_threshold if loss_threshold is not None else 0.01 * float(history.train_loss[0])
    out["loss"] = {"threshold": threshold,
                   "t_train": time_to_loss(history.step, history.train_loss, threshold),
                   "t_val": time_to_loss(history.step, history.val_loss, threshold)}
    peak = first_crossing(history.val_accuracy, float(np.nanmax(history.val_accuracy)) - 1e-12, above=True)
    out["best_val_accuracy"] = {"value": float(np.nanmax(history.val_accuracy)),
                                "step": float(history.step[peak.index]) if not peak.censored else float("nan")}
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _label(history: TrainingHistory) -> str:
    p = history.parameters
    bits = [history.system]
    for key in ("operator", "modulus", "train_pct", "train_fraction", "scale", "init_scale", "weight_decay"):
        if key in p and p[key] is not None:
            bits.append(f"{key}={p[key]:g}" if isinstance(p[key], (int, float)) else f"{key}={p[key]}")
    return ", ".join(bits)


def plot_history(histories: TrainingHistory | Sequence[TrainingHistory], *, title: str | None = None,
                 labels: Sequence[str] | None = None, step_loss: bool = False):
    """Three panels against step: loss (log–log), accuracy (log x), parameter norm (log x).

    Step 0 is drawn at step 1 on the log axes. ``step_loss=True`` also draws every step's
    mini-batch training loss (thin line), where the training-loss spikes show.
    """
    plt = _pyplot()
    runs = [histories] if isinstance(histories, TrainingHistory) else list(histories)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), constrained_layout=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        c = colours[i % len(colours)]
        label = labels[i] if labels is not None else _label(run)
        x = np.maximum(run.step, 1)
        if step_loss and "step_loss" in run.extras and run.extras["step_loss"].size:
            sl = run.extras["step_loss"]
            axes[0].plot(np.arange(1, sl.size + 1), np.where(sl > 0, sl, np.nan), color=c, lw=0.4, alpha=0.35)
        axes[0].plot(x, np.where(run.train_loss > 0, run.train_loss, np.nan), color=c, lw=1.2, ls="--",
                     label=f"train ({label})" if len(runs) > 1 else "train")
        axes[0].plot(x, np.where(run.val_loss > 0, run.val_loss, np.nan), color=c, lw=1.8, label="validation")
        axes[1].plot(x, 100 * run.train_accuracy, color=c, lw=1.2, ls="--")
        axes[1].plot(x, 100 * run.val_accuracy, color=c, lw=1.8, label=label)
        axes[2].plot(x, run.param_norm, color=c, lw=1.5, label=label)
    axes[0].set(xscale="log", yscale="log", xlabel="optimiser step", ylabel="loss", title="loss (dashed: train)")
    axes[1].set(xscale="log", xlabel="optimiser step", ylabel="accuracy (%)", ylim=(-2, 102),
                title="accuracy (dashed: train, solid: validation)")
    axes[2].set(xscale="log", xlabel="optimiser step", ylabel=r"$\|\theta\|_2$", title="parameter norm")
    axes[0].legend(fontsize=7, loc="lower left")
    if len(runs) > 1:
        axes[1].legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


_PHASE_STYLE = {"comprehension": ("o", "tab:green"), "grokking": ("*", "tab:orange"),
                "memorisation": ("x", "tab:red"), "confusion": ("s", "tab:gray")}


def plot_fraction_phase(sweep, *, title: str | None = None, budget: float | None = None):
    """Steps to 99 % train/validation accuracy against the training percentage (§B.6.2).

    Runs that never reach 99 % validation accuracy are drawn at the step budget (top edge).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.6, 4.4), constrained_layout=True)
    budget = budget or max(float(h.settings.get("steps", h.step[-1])) for h in sweep.histories)
    seen = set()
    for i, pct in enumerate(sweep.train_pct):
        for j in range(sweep.seeds.size):
            tt, tv, ph = sweep.t_train[i, j], sweep.t_val[i, j], sweep.phase[i, j]
            marker, colour = _PHASE_STYLE[ph]
            ax.scatter([pct], [tv if math.isfinite(tv) else budget], marker=marker, color=colour, s=60,
                       label=None if ph in seen else ph, zorder=3)
            seen.add(ph)
            if math.isfinite(tt):
                ax.scatter([pct], [tt], marker="_", color="k", s=80, zorder=2,
                           label=None if "train" in seen else "steps to 99% train")
                seen.add("train")
    med = sweep.median_t_val()
    ax.plot(sweep.train_pct, np.where(np.isfinite(med), med, budget), color="tab:blue", lw=1, alpha=0.6,
            label="median steps to 99% validation")
    ax.axhline(budget, color="gray", lw=0.8, ls=":")
    ax.set(yscale="log", xlabel="training data (%)", ylabel="optimiser steps",
           title=title or "train-fraction phases")
    ax.legend(fontsize=7)
    return fig


def save_figure(fig, path: str | Path) -> Path:
    """Save and close (format from the suffix)."""
    return _save(fig, path)


def summary_table(histories: Sequence[TrainingHistory], labels: Sequence[str], *, threshold: float = 0.99) -> str:
    """Markdown table of grokking times (steps to > ``threshold`` accuracy) for several runs."""
    key = f"{threshold:g}"
    rows = ["| run | steps to train acc > {0:g} % | steps to val acc > {0:g} % | ratio | final train / val acc | "
            "loss-based t_train / t_val (1 % of initial train loss) | norm start → end |".format(100 * threshold),
            "|---|---|---|---|---|---|---|"]
    for label, h in zip(labels, histories):
        s = grokking_summary(h, thresholds=(threshold,))
        a = s["accuracy"][key]
        rows.append(f"| {label} | {a['t_train']:g} | {a['t_val']:g} | {a['ratio']:.3g} | "
                    f"{100 * s['final']['train_accuracy']:.1f} % / {100 * s['final']['val_accuracy']:.1f} % | "
                    f"{s['loss']['t_train']:g} / {s['loss']['t_val']:g} | "
                    f"{h.param_norm[0]:.3g} → {h.param_norm[-1]:.3g} |")
    return "\n".join(rows)
