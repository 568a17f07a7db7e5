"""Theory-over-simulation overlays: theory lines, simulation seed mean ± spread.

Used by ``dmft compare`` and the figures. Time runs on a log axis (t > 0; theory time
t = η₀·step/D, theory.md §0), losses on a log axis (mean squared error, no ½).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from dmft.result import DECOMPOSITION_TERMS, LearningCurves

from comparisons.agreement import quantity_values, seed_statistics

__all__ = ["plot_overlay", "QUANTITY_LABELS", "pyplot"]

QUANTITY_LABELS = {
    "train_loss": "train loss",
    "test_loss": "test loss",
    "variance": "variance term",
    "alignment": "alignment term",
    "linear": "linear term",
}
_THEORY_STYLE = {"train_loss": "--", "test_loss": "-", "variance": ":", "alignment": "-.", "linear": (0, (5, 1, 1, 1))}


#: Half-width of the theory's Monte Carlo bands, in standard errors.
SEM_WIDTH = 2.0

#: Decades shown below the largest curve value: an ODE that converges to 0 otherwise drags the
#: axis down to its round-off floor (1e-30) and flattens everything else.
DYNAMIC_RANGE = 1e-8


def _limit_dynamic_range(ax, dynamic_range: float) -> None:
    top = 0.0
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        if np.any(np.isfinite(y)):
            top = max(top, float(np.nanmax(y)))
    if top > 0:
        bottom, upper = ax.get_ylim()
        ax.set_ylim(max(bottom, top * dynamic_range), upper)


def _plain_log_ticks(axis) -> None:
    """Plain numbers (0.3, 2, 40) on a log axis: on a window of one or two decades matplotlib also
    labels minor ticks, and its 3×10⁻¹-style labels then overlap. Minor ticks are labelled at 2 and
    5 × 10^k only, and only when the axis spans fewer than two decades."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    low, high = sorted(axis.get_view_interval())
    if low > 0 and math.log10(high / low) < 2:
        def minor(value, _):
            mantissa = value / 10 ** math.floor(math.log10(value))
            return f"{value:g}" if min(abs(mantissa - 2), abs(mantissa - 5)) < 1e-6 else ""

        axis.set_minor_formatter(FuncFormatter(minor))
    else:
        axis.set_minor_formatter(NullFormatter())


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _positive(values):
    values = np.asarray(values, dtype=float)
    return np.where(values > 0, values, np.nan)


def plot_overlay(
    theory: LearningCurves | None,
    simulations: Sequence[LearningCurves],
    *,
    quantities: Sequence[str] = ("train_loss", "test_loss"),
    decomposition: bool = False,
    ax=None,
    colour=None,
    label: str | None = None,
    theory_label: str | None = None,
    normalise: bool = False,
    legend: bool = True,
):
    """Draw theory lines and the simulations' seed mean ± one standard deviation.

    A theory that carries Monte Carlo standard errors (``train_loss_sem``/``test_loss_sem``, the
    DMFT's replica solves) gets a hatched band of ±``SEM_WIDTH`` standard errors.

    Parameters
    ----------
    theory : LearningCurves or None
        Deterministic curves (drawn as lines); ``None`` draws the simulations only.
    simulations : sequence of LearningCurves
        One run per seed (drawn as markers at the record times, with a shaded ±1 sd band).
    quantities : sequence of str
        Among ``"train_loss"``, ``"test_loss"`` and the decomposition terms.
    decomposition : bool
        Also draw the three test-loss terms (theory.md §2.3).
    ax : matplotlib Axes, optional
    colour : str, optional
        One colour for everything drawn (several calls share an axis in sweeps).
    label : str, optional
        Legend prefix of this set of curves.
    theory_label : str, optional
        What the theory is ("online ODE", "DMFT"); default from ``theory.kind``.
    normalise : bool
        Divide every curve by its value at t = 0 (Fig. 3 convention, theory.md §1.4).
    legend : bool

    Returns
    -------
    matplotlib Figure
    """
    plt = pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.6), constrained_layout=True)
    else:
        fig = ax.figure
    wanted = list(quantities) + ([t for t in DECOMPOSITION_TERMS if t not in quantities] if decomposition else [])
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    prefix = f"{label}: " if label else ""
    theory_name = theory_label or (theory.kind if theory is not None else "")
    for i, quantity in enumerate(wanted):
        c = colour or palette[i % len(palette)]
        if simulations:
            stats = seed_statistics(simulations, quantity)
            norm = stats.mean[0] if normalise and stats.mean[0] != 0 else 1.0
            keep = stats.t > 0
            t = stats.t[keep]
            mean, sd = stats.mean[keep] / norm, stats.std[keep] / norm
            ax.plot(t, _positive(mean), "o", ms=2.6, color=c, alpha=0.85,
                    label=f"{prefix}simulation {QUANTITY_LABELS[quantity]} (mean of {stats.n_seeds})")
            if stats.n_seeds > 1:
                ax.fill_between(t, _positive(mean - sd), _positive(mean + sd), color=c, alpha=0.18, lw=0,
                                label=f"{prefix}simulation {QUANTITY_LABELS[quantity]}: ±1 sd over seeds")
        if theory is not None and not (theory.kind == "online" and quantity == "train_loss" and "test_loss" in wanted):
            values = quantity_values(theory, quantity)
            norm = values[0] if normalise and values[0] != 0 else 1.0
            keep = theory.t > 0
            what = QUANTITY_LABELS[quantity]
            if theory.kind == "online" and quantity == "test_loss":
                what = "train = test loss"
            ax.plot(theory.t[keep], _positive(values[keep] / norm), color=c, lw=1.6,
                    ls=_THEORY_STYLE.get(quantity, "-"), label=f"{prefix}{theory_name} {what}")
            sem = getattr(theory, f"{quantity}_sem", None) if quantity in ("train_loss", "test_loss") else None
            if sem is not None:  # the theory's own Monte Carlo error (DMFT replica solves)
                lo = (values[keep] - SEM_WIDTH * sem[keep]) / norm
                hi = (values[keep] + SEM_WIDTH * sem[keep]) / norm
                ax.fill_between(theory.t[keep], _positive(lo), _positive(hi), color=c, alpha=0.3, lw=0, hatch="///",
                                label=f"{prefix}{theory_name} {what}: Monte Carlo ±{SEM_WIDTH:g} s.e.")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax.xaxis)
    _limit_dynamic_range(ax, DYNAMIC_RANGE)
    ax.set_xlabel(r"time $t = \eta_0\,\mathrm{step}/D$")
    ax.set_ylabel("loss / loss at t=0" if normalise else "mean squared error")
    if legend:
        ax.legend(fontsize=7, loc="best")
    return fig
