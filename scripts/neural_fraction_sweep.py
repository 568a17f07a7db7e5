"""Train-fraction phase picture of seed_systems.md §B.6.2 / §C.6 at CPU size.

Runs the sweep (or, with ``--from-store``, rebuilds it from the runs already stored in
``runs/neural_fraction_sweep.h5`` by ``dmft train algorithmic sweep-fraction --out …``) and writes
docs/results/neural_fraction_sweep.md and docs/figures/neural_fraction_sweep.png. The recorded
runs came from

    OMP_NUM_THREADS=1 PYTHONPATH=. python -m grokking_cli train algorithmic sweep-fraction --modulus 23 \
        --train-pcts 50,65,80 --d-model 32 --steps 6000 --weight-decay 1 \
        --plot docs/figures/neural_fraction_sweep.png --out runs/neural_fraction_sweep.h5 --no-progress

(CPU, one thread; no GPU was available; each run stops once validation accuracy exceeds 99 %).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from comparisons.store import list_runs
from comparisons.neural_plots import plot_fraction_phase, save_figure
from comparisons.store import read_history, write_history
from empirical.neural.transformer import FractionSweep, TransformerConfig, sweep_train_fraction


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--from-store", action="store_true")
    parser.add_argument("--store", default="runs/neural_fraction_sweep.h5")
    parser.add_argument("--modulus", type=int, default=23)
    parser.add_argument("--train-pcts", default="50,65,80")
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--weight-decay", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=6000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.from_store:
        sweep = FractionSweep.from_histories([read_history(args.store, n) for n in list_runs(args.store)])
    else:
        config = TransformerConfig(modulus=args.modulus, d_model=args.d_model, weight_decay=args.weight_decay)
        sweep = sweep_train_fraction(config, [float(p) for p in args.train_pcts.split(",")], steps=args.steps,
                                     progress=True)
        for h in sweep.histories:
            write_history(args.store, f"pct{h.parameters['train_pct']:g}_seed{h.settings['seed']}", h)
    p = sweep.histories[0].parameters
    budget = sweep.histories[0].settings["steps"]
    title = (f"{p['operator']} mod {p['modulus']}, d_model={p['d_model']}, wd={p['weight_decay']:g}, "
             f"budget {budget} steps (CPU)")
    save_figure(plot_fraction_phase(sweep, title=title, budget=budget), "docs/figures/neural_fraction_sweep.png")
    rows = ["| train % | seed | steps to 99 % train | steps to 99 % validation | phase |", "|---|---|---|---|---|"]
    for i, pct in enumerate(sweep.train_pct):
        for j, seed in enumerate(sweep.seeds):
            rows.append(f"| {pct:g} | {seed} | {sweep.t_train[i, j]:g} | {sweep.t_val[i, j]:g} | {sweep.phase[i, j]} |")
    text = "\n".join([
        "# Train-fraction phase picture (seed_systems.md §B.6.2, §C.6)", "",
        f"Power transformer, {title}; one seed. Produced by `scripts/neural_fraction_sweep.py` "
        "(see its docstring for the command that trained the runs).", "",
        *rows, "",
        f"Steps to 99 % validation accuracy non-decreasing as the fraction falls (never = largest): "
        f"**{sweep.monotone()}**.", "",
        "![phases](../figures/neural_fraction_sweep.png)",
    ])
    Path("docs/results/neural_fraction_sweep.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
