"""The picture of ``dmft solve --plot``: rich (DMFT) against lazy (kernel) learning, and the delay.

What the figure shows (README, "What the picture shows"):

* the DMFT train and test losses, each with its Monte Carlo band (±2 standard errors, from
  ``LearningCurves.train_loss_sem`` / ``test_loss_sem`` when the solver gives them);
* the lazy test loss of the same problem: the network linearised at initialisation
  (:func:`dmft.ntk.lazy_curves`, the kernel limit), at D = 100 (P = αD, capped) from the same
  planted overlaps m(0); it cannot follow the feature learning that makes the rich test loss fall;
* the two threshold-crossing times, the first t at which the train resp. test loss falls below
  0.1 of its value at t = 0, and the delay between them (the grokking delay), on a linear time
  axis so that the delay reads as a distance.

Values below 1e-12 of the initial loss are round-off of an exact zero and are not drawn.
"""

from __future__ import annotations

import math

import numpy as np

from dmft.result import LearningCurves

from comparisons.overlay import SEM_WIDTH, pyplot

__all__ = ["threshold_time", "lazy_reference", "plot_story", "THRESHOLD", "SEM_WIDTH"]

#: Fraction of the initial loss that defines a crossing time.
THRESHOLD = 0.1
#: Below this fraction of the initial loss a curve is round-off (not drawn).
ROUNDOFF = 1e-12


def threshold_time(t, loss, fraction: float = THRESHOLD) -> float | None:
    """First time at which ``loss`` falls below ``fraction`` × ``loss[0]`` (linear interpolation
    between grid points), or None when it never does on the grid."""
    t = np.asarray(t, dtype=float)
    loss = np.asarray(loss, dtype=float)
    if loss.size == 0 or not np.isfinite(loss[0]) or loss[0] <= 0:
        return None
    level = fraction * loss[0]
    below = np.flatnonzero(loss <= level)
    if below.size == 0:
        return None
    k = int(below[0])
    if k == 0:
        return float(t[0])
    t0, t1, y0, y1 = t[k - 1], t[k], loss[k - 1], loss[k]
    return float(t0 + (t1 - t0) * (y0 - level) / (y0 - y1)) if y0 != y1 else float(t1)


def _planted_weights(m0, teacher, rho: float, rng) -> np.ndarray:
    """W₀ with w_i·β/D = m_i exactly and |w_i|²/D = 1 (theory.md §0's planted initialisation)."""
    d = teacher.size
    unit = teacher / np.linalg.norm(teacher)
    rows = []
    for m in m0:
        z = rng.normal(size=d)
        z -= (z @ unit) * unit
        z *= math.sqrt(d) / np.linalg.norm(z)
        rows.append(m * teacher / rho + math.sqrt(max(1.0 - m * m / rho, 0.0)) * z)
    return np.array(rows)


def lazy_reference(curves: LearningCurves, *, dim: int = 100, max_train: int = 2000, n_test: int = 200,
                   seed: int = 0) -> LearningCurves | None:
    """Lazy (kernel-limit) learning curves of the problem of ``curves``, or None at alpha = inf.

    The network is linearised at a planted initialisation with the same m(0), ε, κ, N, ρ and
    centring, at dimension ``dim`` with P = round(α·dim) training samples (``dim`` is lowered so
    that P ≤ ``max_train``), and evolved by gradient flow on the grid of ``curves``
    (:func:`dmft.ntk.lazy_curves`); its ``test_loss`` is the exact population loss.
    """
    from dmft.ntk import lazy_curves, make_problem

    p = curves.parameters
    alpha = float(p["alpha"])
    if not math.isfinite(alpha):
        return None
    dim = int(min(dim, max(2, math.floor(max_train / alpha))))
    n_train = max(1, int(round(alpha * dim)))
    rho = float(p.get("rho", 1.0))
    data = make_problem(dim, n_train, n_test, int(p["width"]), rho=rho, target_scale=0.5, seed=seed)
    W0 = _planted_weights(np.asarray(p["init_overlap"], dtype=float), data["teacher"], rho,
                          np.random.default_rng(seed))
    return lazy_curves(W0, data["x_train"], data["y_train"], data["x_test"], data["y_test"],
                       epsilon=float(p["epsilon"]), scale=float(p["scale"]), t=curves.t, teacher=data["teacher"],
                       center=bool(p.get("center", False)), target_scale=0.5)


def _drawable(values, start: float):
    values = np.asarray(values, dtype=float)
    return np.where(values > ROUNDOFF * start, values, np.nan)


def plot_story(curves: LearningCurves, *, lazy: LearningCurves | None = None, title: str | None = None):
    """The figure of ``dmft solve --plot`` (see the module docstring); returns the figure."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 4.6), constrained_layout=True)
    t = curves.t
    online = curves.kind == "online"
    rich = "online ODE" if online else "DMFT (rich)"
    series = [("test_loss", "test", "C0", 2.0)] + ([] if online else [("train_loss", "train", "C1", 1.4)])
    crossings = {}
    for field, label, colour, lw in series:
        values = getattr(curves, field)
        start = float(values[0]) if values.size and values[0] > 0 else 1.0
        what = "train = test" if online else label
        ax.plot(t, _drawable(values, start), color=colour, lw=lw, label=f"{rich} {what} loss")
        sem = getattr(curves, f"{field}_sem", None)
        if sem is not None:
            lo, hi = values - SEM_WIDTH * sem, values + SEM_WIDTH * sem
            ax.fill_between(t, _drawable(lo, start), _drawable(hi, start), color=colour, alpha=0.25, lw=0,
                            label=f"{label}: Monte Carlo ±{SEM_WIDTH:g} s.e.")
        crossings[label] = threshold_time(t, values)
    if lazy is not None:
        start = float(lazy.test_loss[0]) if lazy.test_loss[0] > 0 else 1.0
        ax.plot(lazy.t, _drawable(lazy.test_loss, start), color="0.35", lw=1.4, ls="--",
                label="lazy test loss (kernel limit, linearised at init)")
    ax.set_yscale("log")
    positive = t[t > 0]
    if positive.size > 1 and positive[-1] / positive[0] > 1e3:  # a long (log-spaced) window: log time
        ax.set_xscale("log")
        ax.set_xlim(float(positive[0]), float(t[-1]))
        ax.set_xlabel(r"time $t = \eta_0\,\mathrm{step}/D$ (log axis)")
    else:  # a linear axis shows the delay as a distance
        ax.set_xlim(0, float(t[-1]))
        ax.set_xlabel(r"time $t = \eta_0\,\mathrm{step}/D$ (linear axis)")
    ax.set_ylabel("mean squared error")
    ymin, ymax = ax.get_ylim()
    for label, colour, height in (("train", "C1", 0.98), ("test", "C0", 0.86)):
        when = crossings.get(label)
        if when is not None:
            ax.axvline(when, color=colour, lw=0.9, ls=":")
            ax.text(when, height, f" {label} < {THRESHOLD:g}×start at t = {when:.3g}", fontsize=7, color=colour,
                    va="top", transform=ax.get_xaxis_transform())
    t_train, t_test = crossings.get("train"), crossings.get("test")
    if not online and t_train is not None and t_test is not None and t_test > t_train:
        y = math.sqrt(ymin * ymax) if ymin > 0 else ymax / 10
        ax.annotate("", xy=(t_test, y), xytext=(t_train, y),
                    arrowprops=dict(arrowstyle="<->", color="k", lw=1.0))
        ax.text(0.5 * (t_train + t_test), y * 1.15, f"delay {t_test - t_train:.3g}", ha="center", va="bottom",
                fontsize=8)
    elif not online and t_test is None:
        ax.text(0.98, 0.02, f"test loss never below {THRESHOLD:g}×start on this window", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7)
    if not online and curves.test_loss_sem is None:
        ax.text(0.98, 0.98, "Monte Carlo error not estimated: wiggles may be sampling noise\n"
                "(dmft solve --error-replicas B draws ±2 s.e. bands)", transform=ax.transAxes, ha="right",
                va="top", fontsize=6.5, color="0.3")
    ax.legend(fontsize=7, loc="lower left")
    if title:
        ax.set_title(title, fontsize=9)
    fig.crossing_times = crossings  # for tests and callers: {"train": t or None, "test": t or None}
    return fig
