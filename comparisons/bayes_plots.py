"""Figures of the "Grokking Beyond Neural Networks" systems, one per system (PNG and PDF).

* :func:`plot_linear` — Fig 1 (§A.3): mean ± std accuracies and complexity over seeds, log x.
* :func:`plot_gp_classification` — Figs 2, 3, 12 (§A.4/§A.5): accuracies, data fit / KL, ARD
  inverse lengthscales at iterations 10, 50, 150.
* :func:`plot_gp_sine` — Fig 5 (§A.7): LML, data-fit, complexity landscapes with trajectories A/B/C
  and the train/validation MSE curves.
* :func:`plot_concealment` — Fig 4 (§A.6): per-dataset mean ± std gap against m with the pooled fit.
* :func:`plot_bnn` — Fig 6 (§A.8): (error, complexity) trajectories coloured by gap; mean curves.
* :func:`plot_laplace` — Figs 14–15 (§A.9): Laplace landscapes, trajectories, learning curves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["plot_linear", "plot_gp_classification", "plot_gp_sine", "plot_concealment", "plot_bnn", "plot_laplace",
           "save_png_pdf", "ard_iterations"]

_CASE_COLOURS = {"A": "tab:blue", "B": "tab:red", "C": "tab:green", "custom": "tab:purple"}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_png_pdf(fig, path: str | Path) -> list[Path]:
    """Save ``fig`` as ``path`` (its suffix) and, for a .png, the .pdf beside it; close it."""
    plt = _plt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    targets = [path] + ([path.with_suffix(".pdf")] if path.suffix == ".png" else [])
    for target in targets:
        fig.savefig(target, dpi=130)
    plt.close(fig)
    return targets


def _band(ax, x, curves, colour, label):
    curves = np.asarray(curves, dtype=float)
    mean, std = curves.mean(0), curves.std(0)
    ax.plot(x, mean, color=colour, label=label)
    ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2, lw=0)


def plot_linear(runs):
    """Fig 1: train/validation accuracy (mean ± std over seeds) and the complexity, against epoch."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    epochs = np.arange(1, len(runs[0].train_accuracy) + 1)
    _band(axes[0], epochs, [r.train_accuracy for r in runs], "tab:blue", "train")
    _band(axes[0], epochs, [r.val_accuracy for r in runs], "tab:orange", "validation")
    axes[0].axhline(0.95, color="grey", ls=":", lw=0.8)
    axes[0].set(xscale="log", xlabel="epoch + 1", ylabel="accuracy", title=f"accuracy, mean ± std over {len(runs)} seeds")
    axes[0].legend()
    _band(axes[1], epochs, [r.complexity for r in runs], "tab:green", "complexity Σ(w−μ)²/(N s²)")
    _band(axes[1], epochs, [r.data_fit for r in runs], "tab:purple", "data fit Σ(y−ŷ)²/(N σ²)")
    axes[1].set(xscale="log", yscale="log", xlabel="epoch + 1", ylabel="loss term (eq 8)", title="train loss terms")
    axes[1].legend(fontsize=8)
    for r in runs:
        axes[2].plot(np.arange(len(r.weights)) + 1, r.weights[:, 0], lw=1, label=f"w₁ seed {r.seed}")
    axes[2].plot(np.arange(len(runs[0].weights)) + 1, runs[0].weights[:, 1:], color="grey", lw=0.8, ls="--")
    axes[2].set(xscale="log", xlabel="epoch + 1", ylabel="weight", title="w₁ per seed (seed 0: w₂₋₄ dashed)")
    axes[2].legend(fontsize=7)
    fig.suptitle("Linear regression with nuisance features (§A.3): train fits early, validation groks late", fontsize=10)
    return fig


def ard_iterations(wanted: Sequence[int], iterations: int) -> list[int]:
    """The iterations of ``wanted`` a run of ``iterations`` steps has, a longer one replaced by the last.

    ``ard_iterations((10, 50, 150), 30) == [10, 30]``: the bars are labelled with the iteration they
    show, never with one the run did not reach.
    """
    return sorted({min(int(t), int(iterations)) for t in wanted})


def plot_gp_classification(runs_by_task: Mapping[str, Sequence], iterations_for_ard: Sequence[int] = (10, 50, 150)):
    """Figs 2/3/12: accuracy, (negative) data fit and KL per task; inverse ARD lengthscales on parity.

    Iterations of ``iterations_for_ard`` beyond the runs' length are shown at their last iteration
    (:func:`ard_iterations`), and labelled so.
    """
    plt = _plt()
    tasks = list(runs_by_task)
    has_parity = "parity" in runs_by_task
    fig, axes = plt.subplots(len(tasks), 3 if has_parity else 2, figsize=(15, 3.8 * len(tasks)),
                             constrained_layout=True, squeeze=False)
    for row, task in enumerate(tasks):
        runs = runs_by_task[task]
        it = np.arange(1, len(runs[0].train_accuracy) + 1)
        ax = axes[row, 0]
        _band(ax, it, [r.train_accuracy for r in runs], "tab:blue", "train")
        _band(ax, it, [r.val_accuracy for r in runs], "tab:orange", "validation")
        ax.axhline(0.95, color="grey", ls=":", lw=0.8)
        gaps = [f"{r.gap.gap}{'*' if r.gap.censored else ''}" for r in runs]
        censored = sum(bool(r.gap.censored) for r in runs)
        ax.set(xscale="log", xlabel="iteration", ylabel="accuracy", title=f"{task}: accuracy, {len(runs)} seeds")
        ax.text(0.02, 0.03, f"gaps {', '.join(gaps)}" + (f"  (* censored: {censored} of {len(runs)} runs never pass "
                                                          "val acc > 0.95)" if censored else ""),
                transform=ax.transAxes, fontsize=7)
        ax.legend(fontsize=8)
        ax = axes[row, 1]
        _band(ax, it, [-r.data_fit for r in runs], "tab:purple", "negative data fit −E_q log p(y|f)/N")
        _band(ax, it, [r.complexity for r in runs], "tab:green", "complexity KL(q‖p)/N")
        ax.set(xscale="log", yscale="log", xlabel="iteration", title=f"{task}: ELBO terms")
        ax.legend(fontsize=8)
        if has_parity:
            ax = axes[row, 2]
            if task == "parity":
                shown = ard_iterations(iterations_for_ard, len(runs[0].lengthscales) - 1)
                width = 0.8 / len(shown)
                dims = np.arange(1, runs[0].lengthscales.shape[1] + 1)
                for j, t in enumerate(shown):
                    inv = np.mean([r.inverse_lengthscales(t) for r in runs], axis=0)
                    ax.bar(dims + (j - (len(shown) - 1) / 2) * width, inv, width=width, label=f"iteration {t}")
                ax.set(yscale="log", xlabel="input dimension", ylabel="1 / lengthscale (mean over seeds)",
                       title="parity: ARD 1/ℓ (dims 1–3 informative)")
                ax.legend(fontsize=8)
            else:
                for r in runs:
                    ax.plot(np.arange(len(r.lengthscales)), r.lengthscales[:, 0], lw=1)
                ax.set(xscale="symlog", yscale="log", xlabel="iteration", ylabel="lengthscale",
                       title=f"{task}: lengthscale per seed")
    fig.suptitle("Variational GP classification (§A.4, §A.5)", fontsize=10)
    return fig


def _landscape_row(axes, landscape, runs, titles):
    plt = _plt()
    L, S = np.meshgrid(landscape.log_lengthscale, landscape.log_outputscale)
    for ax, (key, title) in zip(axes, titles.items()):
        z = landscape.terms[key]
        lo = np.nanpercentile(z, 2)
        mesh = ax.contourf(L, S, np.clip(z, lo, None), levels=30, cmap="viridis")
        plt.colorbar(mesh, ax=ax, shrink=0.9)
        for r in runs:
            c = _CASE_COLOURS.get(r.case, "k")
            ax.plot(r.log_lengthscale, r.log_outputscale, color=c, lw=1.6)
            ax.plot(r.log_lengthscale[0], r.log_outputscale[0], "o", color=c, mec="w", label=f"{r.case} start")
            ax.plot(r.log_lengthscale[-1], r.log_outputscale[-1], "*", color=c, mec="w", ms=10)
        ax.set(xlabel="log lengthscale", ylabel="log outputscale", title=title,
               xlim=(landscape.log_lengthscale[0], landscape.log_lengthscale[-1]),
               ylim=(landscape.log_outputscale[0], landscape.log_outputscale[-1]))
    axes[0].legend(fontsize=7, loc="lower right")


def plot_gp_sine(runs, landscape):
    """Fig 5: landscapes (top) and train/validation MSE of the posterior mean (bottom)."""
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(14, 8), constrained_layout=True)
    _landscape_row(axes[0], landscape, runs, {"lml": "log marginal likelihood / N",
                                              "data_fit": "data fit −½ rᵀK⁻¹r / N",
                                              "complexity": "complexity term −½ log|K_y| / N"})
    for ax, r in zip(axes[1], runs):
        it = np.arange(1, len(r.train_mse) + 1)
        ax.plot(it, r.train_mse, label="train MSE", color="tab:blue")
        ax.plot(it, r.val_mse, label="validation MSE", color="tab:orange")
        for which, c in (("train", "tab:blue"), ("val", "tab:orange")):
            ax.axvline(r.settle_iteration(which) + 1, color=c, ls=":", lw=0.9)
        ax.set(xscale="log", yscale="log", xlabel="iteration", ylabel="MSE of posterior mean",
               title=f"case {r.case}: settle ratio {r.settle_ratio:.1f}")
        ax.legend(fontsize=8)
    fig.suptitle("Exact GP regression on the sine (§A.7): only case B groks", fontsize=10)
    return fig


def _pooled_fit(ax, runs) -> None:
    """The pooled exponential fit of ``runs`` on ``ax``, or a legend entry saying why there is none."""
    from empirical.bayes.concealment import FIT_REQUIREMENT, can_fit, gap_regression

    m, gaps = [r.m for r in runs], [r.gap.gap for r in runs]
    if not can_fit(m, gaps):
        ms = sorted(set(m))
        ax.plot([], [], " ", label=f"no pooled fit: it needs {FIT_REQUIREMENT}\n(here {len(runs)} run(s), m ∈ {ms})")
        return
    fit = gap_regression(m, gaps)
    mm = np.linspace(0, max(m), 100)
    ax.plot(mm, fit.prefactor * np.exp(fit.slope * mm), "k--",
            label=f"pooled fit {fit.prefactor:.2g}·exp({fit.slope:.3f} m), r={fit.r:.2f}")


def _gap_points(ax, runs) -> None:
    """Mean ± std gap per dataset against m (datasets side by side), censored runs as ×."""
    datasets = list(dict.fromkeys(r.dataset for r in runs))
    for i, name in enumerate(datasets):
        ms = sorted({r.m for r in runs if r.dataset == name})
        g = [[r.gap.gap for r in runs if r.dataset == name and r.m == m] for m in ms]
        ax.errorbar(np.array(ms) + 0.4 * (i - len(datasets) / 2), [np.mean(v) for v in g],
                    yerr=[np.std(v) for v in g], marker="o", capsize=3, label=name)
        cens = [(r.m, r.gap.gap) for r in runs if r.dataset == name and r.gap.censored]
        if cens:
            ax.plot(*zip(*cens), "x", color="k", ms=6)


def plot_concealment(runs, exclude_for_inset: Sequence[int] = (40,)):
    """Fig 4: mean ± std gap per dataset against m, pooled exponential fit with and without m = 40.

    Where the fit is impossible (fewer than 3 runs or a single m, e.g. one ``--m``), the gaps are
    drawn alone and the legend says why there is no fit.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4), constrained_layout=True)
    for ax, excl in zip(axes, ((), tuple(exclude_for_inset))):
        keep = [r for r in runs if r.m not in excl]
        _gap_points(ax, keep)
        _pooled_fit(ax, keep)
        ax.set(xlabel="additional dimensions m", ylabel="grokking gap (epochs)",
               title="all m" if not excl else f"without m ∈ {list(excl)}")
        ax.legend(fontsize=7)
    fig.suptitle("Concealment MLP (§A.6): gap grows ~exponentially with spurious bits (× = censored)", fontsize=10)
    return fig


def plot_bnn(runs):
    """Fig 6: (error, complexity) trajectories, log–log, coloured by normalised gap; mean curves.

    The steepest complexity fall is marked only for runs of at least 3 epochs (the legend says so).
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), constrained_layout=True)
    gaps = np.array([r.gap.gap for r in runs], dtype=float)
    span = np.ptp(gaps) if np.ptp(gaps) > 0 else 1.0
    norm = (gaps - gaps.min()) / span
    cmap = plt.get_cmap("plasma")
    for r, g in zip(runs, norm):
        axes[0].plot(r.error, r.complexity, color=cmap(g), lw=0.8, alpha=0.8)
        axes[0].plot(r.error[0], r.complexity[0], "o", color=cmap(g), ms=3)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(gaps.min(), gaps.max()))
    censored = sum(bool(r.gap.censored) for r in runs)
    label = "grokking gap (epochs)"
    if censored == len(runs):
        label += "\nCENSORED in every run: E - T_train (validation never crossed)"
    elif censored:
        label += f"\n{censored} of {len(runs)} censored (E - T_train)"
    plt.colorbar(sm, ax=axes[0], label=label)
    axes[0].set(xscale="log", yscale="log", xlabel="error (train CE)", ylabel="complexity KL/N",
                title="trajectories (dot = start)")
    ep = np.arange(1, len(runs[0].error) + 1)
    ax = axes[1]
    err = np.mean([r.error for r in runs], 0)
    comp = np.mean([r.complexity for r in runs], 0)
    ax.plot(ep, err, color="tab:red", label="mean error")
    ax.set(xscale="log", yscale="log", xlabel="epoch", ylabel="error", title="averaged over all runs")
    ax2 = ax.twinx()
    ax2.plot(ep, comp, color="tab:blue", label="mean complexity")
    ax2.set(ylabel="complexity KL/N")
    from empirical.bayes.bnn import MIN_EPOCHS_FOR_STEEPEST, steepest_fall_on_log_epochs

    ax.axvline(np.argmin(err) + 1, color="tab:red", ls=":", label="min error")
    if len(comp) >= MIN_EPOCHS_FOR_STEEPEST:
        ax2.axvline(steepest_fall_on_log_epochs(comp) + 1, color="tab:blue", ls=":",
                    label="steepest fall per log-epoch")
    else:
        ax2.plot([], [], " ", label=f"no steepest fall: needs >= {MIN_EPOCHS_FOR_STEEPEST} epochs, got {len(comp)}")
    ax.legend(loc="upper right", fontsize=8)
    ax2.legend(loc="lower left", fontsize=8)
    fig.suptitle("Mean-field BNN on concealed parity (§A.8)", fontsize=10)
    return fig


def plot_laplace(runs, landscape):
    """Figs 14–15: Laplace LML / data fit / complexity landscapes with trajectories; learning curves."""
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(14, 8), constrained_layout=True)
    _landscape_row(axes[0], landscape, runs, {"lml": "Laplace log q(y|X) / N", "data_fit": "log p(y|f̂) / N",
                                              "complexity": "complexity ½ log|B| / N"})
    for ax, r in zip(axes[1], runs):
        it = np.arange(1, len(r.train_accuracy) + 1)
        ax.plot(it, r.train_accuracy, label="train acc", color="tab:blue")
        ax.plot(it, r.val_accuracy, label="validation acc", color="tab:orange")
        ax.set(xscale="log", xlabel="iteration", ylabel="accuracy", ylim=(0.4, 1.02),
               title=f"case {r.case}: gap {r.gap.gap}{' (censored)' if r.gap.censored else ''}")
        ax2 = ax.twinx()
        ax2.plot(it, r.train_log_loss, color="tab:blue", ls="--", lw=0.9, label="train NLL")
        ax2.plot(it, r.val_log_loss, color="tab:orange", ls="--", lw=0.9, label="validation NLL")
        ax2.set(yscale="log", ylabel="mean negative log predictive prob.")
        ax.legend(loc="lower right", fontsize=7)
        ax2.legend(loc="upper right", fontsize=7)
    fig.suptitle("Laplace GP classification on Dataset 8 (§A.9, Decision D.7)", fontsize=10)
    return fig
