"""Evidence for Power et al.'s transformer at a CPU size (seed_systems.md §C.6, §B.6).

Trains the 2-layer post-LN transformer (§B.1) with the §B.4 optimiser (AdamW β=(0.9,0.98),
decoupled weight decay 1, 10-step warm-up, lr 1e-3) on ``+`` mod a small prime, then reports
with the shared metrics: steps to 99 % train / validation accuracy and their ratio, the
training-loss spikes (detect_spikes, ratio 10³ over the preceding 1 % window), whether every
sharp validation-accuracy jump follows a spike, and the "no un-grokking" check.

No GPU was available to this task: the run is CPU-sized (p = 23 instead of 97, d_model = 64
instead of 128, one thread). Reproduce with

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/neural_transformer.py \
        --modulus 23 --train-pct 80 --d-model 64 --steps 8000

Writes docs/results/neural_transformer.md, docs/figures/neural_transformer.png and the run to
runs/neural_transformer.h5 (not committed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from comparisons.neural_plots import grokking_summary, plot_history, save_figure
from comparisons.store import write_history
from empirical.neural.transformer import (
    TransformerConfig, check_no_ungrokking, detect_spikes, jumps_preceded_by_spikes, sharp_jumps, train_transformer,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operator", default="+")
    parser.add_argument("--modulus", type=int, default=23)
    parser.add_argument("--train-pct", type=float, default=80.0)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--weight-decay", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tag", default="neural_transformer")
    parser.add_argument("--checkpoint", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = TransformerConfig(operator=args.operator, modulus=args.modulus, train_pct=args.train_pct,
                               d_model=args.d_model, weight_decay=args.weight_decay, max_lr=args.lr)
    history = train_transformer(config, seed=args.seed, device=args.device, steps=args.steps,
                                checkpoint=args.checkpoint, checkpoint_every=1000 if args.checkpoint else None,
                                progress=True)
    Path("runs").mkdir(exist_ok=True)
    write_history(f"runs/{args.tag}.h5", "run", history)
    summary = grokking_summary(history)
    step_loss = history.extras["step_loss"]
    spikes = detect_spikes(np.arange(1, step_loss.size + 1), step_loss)
    jumps = sharp_jumps(history.step, history.val_accuracy)
    preceded = jumps_preceded_by_spikes(jumps, spikes)
    check = check_no_ungrokking(history.step, history.val_accuracy)
    fig = plot_history(history, step_loss=True,
                       title=f"Power transformer, {args.operator} mod {args.modulus}, {args.train_pct:g}% train, "
                             f"d_model={args.d_model}, wd={args.weight_decay:g}, seed {args.seed} (CPU)")
    save_figure(fig, f"docs/figures/{args.tag}.png")
    acc = summary["accuracy"]["0.99"]
    lines = [
        f"# {args.tag}: Power et al. transformer at CPU size",
        "",
        "Command: `OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/neural_transformer.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None) + "`",
        "",
        f"No GPU was available; CPU, one thread, {history.seconds:.0f} s. Settings: {json.dumps(config.as_attrs())}; "
        f"{history.settings['n_train']} training / {history.settings['n_val']} validation equations, "
        f"batch {history.settings['batch_size']}.",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| steps to > 99 % train accuracy | {acc['t_train']:g} |",
        f"| steps to > 99 % validation accuracy | {acc['t_val']:g} |",
        f"| ratio T_val / T_train | {acc['ratio']:.3g} |",
        f"| final train / validation accuracy | {100 * summary['final']['train_accuracy']:.1f} % / "
        f"{100 * summary['final']['val_accuracy']:.1f} % |",
        f"| parameter norm start → end | {history.param_norm[0]:.1f} → {history.param_norm[-1]:.1f} |",
        f"| training-loss spikes (> 10³ × preceding 1 % window min) | {len(spikes)} |",
        f"| sharp validation jumps (> 30 points within 5 % of steps) | {jumps} |",
        f"| jumps preceded by a spike (within 10 % of steps) | {preceded} |",
        f"| no un-grokking (worst rolling-median val. acc. after 99 %) | {check.worst_plateau:.3f} "
        f"(ungrokked = {check.ungrokked}) |",
        "",
        "Spikes (step, loss, baseline, ratio): "
        + (", ".join(f"({s.step}, {s.value:.3g}, {s.baseline:.3g}, {s.ratio:.3g})" for s in spikes[:12]) or "none"),
        "",
        f"![curves](../figures/{args.tag}.png)",
    ]
    Path(f"docs/results/{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
