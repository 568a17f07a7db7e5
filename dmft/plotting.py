"""Plots of learning curves (train/test against t on log axes, with the decomposition)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .result import DECOMPOSITION_TERMS, LearningCurves

__all__ = ["plot_curves", "save_figure"]

_TERM_STYLE = {"variance": ":", "alignment": "--", "linear": "-."}


def _positive(t, y):
    """Mask non-positive values for log axes."""
    y = np.asarray(y, dtype=float)
    return np.where(y > 0, y, np.nan)


def plot_curves(curves: LearningCurves | Sequence[LearningCurves], *, decomposition: bool = True, ax=None, title=None):
    """Train and test loss against t on log–log axes (t > 0), with the test-loss decomposition.

    Returns the matplotlib figure.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    runs = [curves] if isinstance(curves, LearningCurves) else list(curves)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
    else:
        fig = ax.figure
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        colour = colours[i % len(colours)]
        p = run.parameters
        label = f"{run.kind}: alpha={p.get('alpha')}, scale={p.get('scale')}, eps={p.get('epsilon')}"
        keep = run.t > 0
        t = run.t[keep]
        ax.plot(t, _positive(t, run.test_loss[keep]), color=colour, lw=2, label=f"test ({label})")
        if run.kind != "online":
            ax.plot(t, _positive(t, run.train_loss[keep]), color=colour, lw=1.2, alpha=0.7, label="train")
        if decomposition:
            for j, term in enumerate(DECOMPOSITION_TERMS):
                ax.plot(t, _positive(t, run.decomposition[keep, j]), color=colour, lw=0.9,
                        ls=_TERM_STYLE[term], label=f"test: {term} term")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"time $t = \eta_0\,\mathrm{step}/D$")
    ax.set_ylabel("mean squared error")
    ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def save_figure(fig, path: str | Path) -> Path:
    """Save ``fig`` (format from the suffix: .png, .pdf, .svg) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
