"""Output-scale sweeps of the Kumar et al. §5 systems at CPU size (theory.md §5, §7.7).

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/neural_scale_sweep.py --system nanda --scales 0.5,1,2 --steps 4000
    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/neural_scale_sweep.py --system student_teacher --scales 0.1,1,3
    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/neural_scale_sweep.py --system digits --scales 0.001,0.05,0.5

One run per output scale (larger scale = lazier start, theory.md §1.4); the table reports, with
the shared metrics, the steps to 99 % (``--threshold``) train and validation accuracy, their
ratio, the loss-based times and the parameter norm. Sizes are reduced for a CPU (no GPU was
available): the one-layer transformer uses p = 31, d_model = 32, d_mlp = 128 (paper: p = 113,
128, 512); the digit MLP uses scikit-learn's 8×8 digits (paper: MNIST). Writes
docs/results/neural_<system>.md and docs/figures/neural_<system>.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from comparisons.neural_plots import plot_history, save_figure, summary_table
from comparisons.store import read_history, write_history

#: What a reader must know about each system's reduced or substituted setting.
NOTES = {
    "digits": (
        "Data: scikit-learn's bundled 8×8 digits (1797 images of 64 pixels with 17 grey levels) stand in for "
        "MNIST (70000 images of 784 pixels), which cannot be downloaded here; "
        "`dmft train algorithmic digits --mnist PATH` (`DigitsConfig.mnist_path`) takes a local `mnist.npz` "
        "when a user has one. 1000 images train (a fixed permutation of the bundled set; with MNIST the first "
        "1000 training images) and the remaining 797 test, instead of 2000. The network, initialisation "
        "(Kaiming × 150), optimiser (AdamW lr 1e-3, weight decay 0.01, batch 200) and step budget (2.5·10⁵) "
        "are the paper's. With 64 instead of 784 inputs the first layer's pre-activations (W x/√fan_in, "
        "W ~ Kaiming × 150) are larger by (784/64)·|x_digits|/|x_MNIST| ≈ 12.25 × 3.9/9.4 ≈ 5 (rms image norms; MNIST's from "
        "its pixel mean 0.131 and std 0.308), so a given output scale κ sits "
        "at a different point of the lazy–rich axis than in the paper's Fig 5a: compare trends in κ, "
        "not the κ values."),
}


def run(system: str, scale: float, args):
    if system == "nanda":
        from empirical.neural.nanda import NandaConfig, train_nanda

        config = NandaConfig(modulus=args.modulus, train_fraction=args.train_fraction, d_model=32, d_mlp=128,
                             n_heads=4, scale=scale, lr_base=args.lr_base, weight_decay=args.weight_decay)
        return train_nanda(config, seed=args.seed, steps=args.steps, log_every=20, progress=True)
    if system == "student_teacher":
        from empirical.neural.student_teacher import StudentTeacherConfig, train_student_teacher

        config = StudentTeacherConfig(scale=scale, accuracy_threshold=args.accuracy_threshold)
        return train_student_teacher(config, seed=args.seed, steps=args.steps, log_every=25, progress=True)
    if system == "digits":
        from empirical.neural.digits import DigitsConfig, train_digits

        config = DigitsConfig(scale=scale, init_scale=args.init_scale)
        return train_digits(config, seed=args.seed, steps=args.steps, log_every=50, progress=True)
    raise ValueError(f"system must be nanda, student_teacher or digits, got {system!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--system", required=True)
    parser.add_argument("--scales", required=True)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modulus", type=int, default=31)
    parser.add_argument("--train-fraction", type=float, default=0.5)
    parser.add_argument("--lr-base", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=2.0)
    parser.add_argument("--accuracy-threshold", type=float, default=1e-3)
    parser.add_argument("--init-scale", type=float, default=150.0)
    parser.add_argument("--threshold", type=float, default=0.99)
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild the report and figure from runs/neural_<system>.h5 without training")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scales = [float(s) for s in args.scales.split(",")]
    store = f"runs/neural_{args.system}.h5"
    if args.report_only:
        histories = [read_history(store, f"scale{s:g}") for s in scales]
    else:
        histories = [run(args.system, s, args) for s in scales]
        for s, h in zip(scales, histories):
            write_history(store, f"scale{s:g}", h)
    labels = [f"scale {s:g}" for s in scales]
    params = {k: v for k, v in histories[0].parameters.items() if k != "scale"}
    save_figure(plot_history(histories, labels=labels, title=f"{args.system}: output-scale sweep (CPU)"),
                f"docs/figures/neural_{args.system}.png")
    text = "\n".join([
        f"# {args.system}: output-scale sweep", "",
        "Command: `OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/neural_scale_sweep.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "report_only") + "`"
        + (" (report rebuilt from the stored runs with `--report-only`)" if args.report_only else ""), "",
        f"CPU, one thread (no GPU in this task); {sum(h.seconds for h in histories):.0f} s. "
        f"Data: {histories[0].settings.get('dataset', 'see module docstring')}. Configuration (except the scale): "
        f"`{json.dumps(params)}`; seed {args.seed}.", "",
        summary_table(histories, labels, threshold=args.threshold), "",
        *([NOTES[args.system], ""] if args.system in NOTES else []),
        f"![curves](../figures/neural_{args.system}.png)",
    ])
    Path(f"docs/results/neural_{args.system}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
