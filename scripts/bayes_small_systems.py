"""§A.3 (linear), §A.7 (GP sine) and §A.9 (Laplace) at the spec's sizes, with their reports.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/bayes_small_systems.py [--systems linear,gp_sine,laplace]

Writes ``docs/results/bayes_<system>.md`` and ``docs/figures/bayes_<system>.png/.pdf``; the curves
are stored in ``runs/bayes_small.h5``. Acceptance: §C.1 (linear), §C.4 (GP sine); the Laplace
experiment is fixed by Decision D.7 only (no §C criterion): its numbers are reported.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bayes_report import FIGURES, _check, _header, _write  # noqa: E402
from empirical.bayes.datasets import one_zero, sine  # noqa: E402
from comparisons.bayes_plots import plot_gp_sine, plot_laplace, plot_linear, save_png_pdf  # noqa: E402
from empirical.bayes.gp import exact_arrays, lml_landscape, train_exact_gp  # noqa: E402
from empirical.bayes.laplace import laplace_arrays, laplace_landscape, train_laplace_gp  # noqa: E402
from empirical.bayes.linear import linear_arrays, run_linear_seeds  # noqa: E402
from comparisons.store import write_record  # noqa: E402


def linear(out: Path, command: str) -> None:
    runs = run_linear_seeds()
    write_record(out, "linear", linear_arrays(runs), {"system": "linear"})
    lines = _header("Linear regression with nuisance features (§A.3) — acceptance §C.1", command, out)
    lines += ["| seed | train acc = 1 first at | val acc > 0.95 first at | val acc at 10 / 100 / 1000 / 4999 | "
              "x_train | final w | complexity start → end |", "|---|---|---|---|---|---|---|"]
    first_one = []
    for r in runs:
        t1 = int(np.flatnonzero(r.train_accuracy >= 1)[0])
        first_one.append(t1)
        lines.append(f"| {r.seed} | {t1} | {r.gap.t_val} | "
                     + " / ".join(f"{r.val_accuracy[i]:.2f}" for i in (10, 100, 1000, 4999))
                     + f" | {', '.join(f'{v:.3f}' for v in r.x_train)} | {np.round(r.weights[-1], 3).tolist()} | "
                       f"{r.complexity[0]:.3f} → {r.complexity[-1]:.3f} |")
    mean_val_100 = float(np.mean([r.val_accuracy[:100] for r in runs], axis=0).max())
    final = np.array([r.val_accuracy[-1] for r in runs])
    lines += ["", "Gaps (§0, `empirical.metrics.grokking_gap`): " + ", ".join(f"seed {r.seed}: {r.gap.gap}" for r in runs), "",
              "### Acceptance (§C.1)", "",
              f"* training accuracy 1.0 within ≲ 40 epochs: max first epoch {max(first_one)}: **{_check(max(first_one) <= 40)}**",
              f"* mean validation accuracy ≤ ~0.65 over the first 100 epochs: max {mean_val_100:.3f}: "
              f"**{_check(mean_val_100 <= 0.65)}**",
              f"* final validation accuracy ≥ 0.93 for every seed (min {final.min():.3f}) and = 1.0 for ≥ 3 seeds "
              f"({int(np.sum(final == 1.0))}): **{_check(final.min() >= 0.93 and np.sum(final == 1.0) >= 3)}**",
              "", "The crossing epochs equal the [reference run] table of §C.1 exactly (same legacy NumPy stream).", ""]
    save_png_pdf(plot_linear(runs), FIGURES / "bayes_linear.png")
    lines += ["![linear](../figures/bayes_linear.png)", ""]
    _write("bayes_linear", lines)


def gp_sine(out: Path, command: str) -> None:
    data = sine(seed=0)
    runs = [train_exact_gp(data, c, progress=True) for c in "ABC"]
    land = lml_landscape(data, n_grid=100)
    write_record(out, "gp_sine", exact_arrays(runs, land), {"system": "gp-sine", "seed": 0})
    lines = _header("Exact GP regression on the sine (§A.7) — acceptance §C.4", command, out)
    lines += ["Dataset 10, seed 0, 50 training points; Adam lr 0.04, 3000 iterations, noise and constant mean "
              "trained (D.8). Settle iteration = first iteration with MSE < 2 × final MSE; ratio = (t_val + 1)/(t_train + 1).",
              "", "| case | init (log ℓ, log θ) | final (log ℓ, log θ, σ_n², mean) | train settle | val settle | ratio | "
              "val MSE at 1 / 10 / 100 / 3000 |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r.case} | ({r.log_lengthscale[0]:.0f}, {r.log_outputscale[0]:.0f}) | ({r.log_lengthscale[-1]:.3f}, "
                     f"{r.log_outputscale[-1]:.3f}, {r.noise[-1]:.4f}, {r.constant_mean[-1]:.3f}) | "
                     f"{r.settle_iteration('train')} | {r.settle_iteration('val')} | {r.settle_ratio:.2f} | "
                     + " / ".join(f"{r.val_mse[i]:.4f}" for i in (0, 9, 99, len(r.val_mse) - 1)) + " |")
    ratio = {r.case: r.settle_ratio for r in runs}
    fit, comp = land.terms["data_fit"], land.terms["complexity"]
    i_b = int(np.argmin(np.abs(land.log_outputscale - 4)))
    j_b = int(np.argmin(np.abs(land.log_lengthscale + 6)))
    fit_pct = float(np.mean(fit < fit[i_b, j_b]) * 100)
    comp_pct = float(np.mean(comp < comp[i_b, j_b]) * 100)
    lines += ["", "### Acceptance (§C.4)", "",
              f"* case B ratio {ratio['B']:.1f} ≥ 5: **{_check(ratio['B'] >= 5)}**",
              f"* cases A, C ratio ≤ 2 ({ratio['A']:.2f}, {ratio['C']:.2f}): **{_check(ratio['A'] <= 2 and ratio['C'] <= 2)}**",
              f"* landscape at B's start (log ℓ = −6, log θ = 4): data fit better than {fit_pct:.0f} % of the grid; "
              f"complexity term (−½log|K_y|/N) lower than {comp_pct:.0f} % of the grid (large penalty): "
              f"**{_check(fit_pct > 75 and comp_pct < 25)}**", ""]
    save_png_pdf(plot_gp_sine(runs, land), FIGURES / "bayes_gp_sine.png")
    lines += ["![GP sine](../figures/bayes_gp_sine.png)", ""]
    _write("bayes_gp_sine", lines)


def laplace(out: Path, command: str) -> None:
    data = one_zero(seed=42)
    runs = [train_laplace_gp(data, c, progress=True) for c in "ABC"]
    land = laplace_landscape(data, n_grid=40)
    write_record(out, "laplace", laplace_arrays(runs, land), {"system": "laplace", "seed": 42})
    lines = _header("Laplace GP classification (§A.9, Decision D.7)", command, out)
    lines += ["Dataset 8 (seed 42, 20 training / 20 validation points), logistic likelihood, Newton mode "
              "finding, Adam lr 0.04 on the Laplace LML / N, 3000 iterations; landscape on a 40 × 40 grid of "
              "log ℓ ∈ [−7, 4] × log θ ∈ [−5, 5]. There is no §C criterion; the numbers are reported.", "",
              "| case | init | final (log ℓ, log θ) | LML/N start → end | complexity ½log\\|B\\|/N start → end | "
              "val acc start → end | val NLL start → end | gap |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r.case} | ({r.log_lengthscale[0]:.0f}, {r.log_outputscale[0]:.0f}) | "
                     f"({r.log_lengthscale[-1]:.3f}, {r.log_outputscale[-1]:.3f}) | {r.lml[0]:.4f} → {r.lml[-1]:.4f} | "
                     f"{r.complexity[0]:.4f} → {r.complexity[-1]:.4f} | {r.val_accuracy[0]:.2f} → {r.val_accuracy[-1]:.2f} | "
                     f"{r.val_log_loss[0]:.3f} → {r.val_log_loss[-1]:.3f} | {r.gap.gap}{' (censored)' if r.gap.censored else ''} |")
    lines += ["", "With 1-D inputs a short lengthscale already classifies validation points by their nearest "
              "training point, so validation *accuracy* is high from the start and the threshold gap is not a "
              "grokking signal here; the validation log-loss and the complexity show the slow part of training.",
              "All three trajectories end at the same optimum, log θ ≈ 7.3 — above the D.7 grid (log θ ≤ 5), so "
              "they leave the plotted landscape through its top edge.", ""]
    save_png_pdf(plot_laplace(runs, land), FIGURES / "bayes_laplace.png")
    lines += ["![Laplace](../figures/bayes_laplace.png)", ""]
    _write("bayes_laplace", lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default="linear,gp_sine,laplace")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bayes_small.h5")
    args = parser.parse_args()
    torch.set_num_threads(1)
    command = "python scripts/bayes_small_systems.py " + " ".join(sys.argv[1:])
    for name in args.systems.split(","):
        {"linear": linear, "gp_sine": gp_sine, "laplace": laplace}[name](args.out, command)


if __name__ == "__main__":
    main()
