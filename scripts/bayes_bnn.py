"""§A.8 at the spec's sizes: the mean-field BNN grid of Fig 6 (q_mean_std × seeds 0, 1, 2).

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/bayes_bnn.py --out runs/bayes_bnn.h5
    PYTHONPATH=. python scripts/bayes_bnn.py --out runs/bayes_bnn.h5 --report-only

The Fig 6 budget of 1500 epochs ends before any run generalises (docs/results/bayes_bnn.md); the
same grid run for 20000 epochs groks in every run (docs/results/bayes_bnn_20000epochs.md)::

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/bayes_bnn.py --out runs/bayes_bnn_20000.h5 --epochs 20000

(24 runs of about 2 minutes each on one core; the recorded grid ran as two processes, ``--seeds 0`` and
``--seeds 1,2``, into two stores whose records were then copied into one.)

Runs already in ``--out`` are skipped. Acceptance (§C.5): Spearman(q_mean_std, mean gap) > 0;
on the averaged curves the epoch of minimum error precedes the epoch of steepest complexity
decrease.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from empirical.bayes.bnn import BNN_SEEDS, Q_MEAN_STDS, BNNConfig, bnn_arrays, train_bnn  # noqa: E402
from comparisons.store import list_records, write_record  # noqa: E402


def compute(out: Path, qs, seeds, epochs: int) -> None:
    done = set(list_records(out)) if out.exists() else set()
    for seed in seeds:
        for q in qs:
            name = f"q{q:g}_seed{seed}"
            if name in done:
                continue
            run = train_bnn(seed, replace(BNNConfig(), q_mean_std=q, epochs=epochs))
            write_record(out, name, bnn_arrays([run])[name], {"system": "bnn", "q_mean_std": q, "seed": seed,
                                                              "epochs": epochs, "seconds": run.seconds})
            print(f"{name}: gap {run.gap} {run.seconds:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bayes_bnn.h5")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--q-mean-stds", default=",".join(f"{q:g}" for q in Q_MEAN_STDS))
    parser.add_argument("--seeds", default=",".join(map(str, BNN_SEEDS)))
    parser.add_argument("--epochs", type=int, default=BNNConfig().epochs)
    args = parser.parse_args()
    torch.set_num_threads(1)
    qs = [float(v) for v in args.q_mean_stds.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]
    if not args.report_only:
        compute(args.out, qs, seeds, args.epochs)
    from bayes_report import report_bnn  # noqa: E402

    report_bnn(args.out, " ".join(sys.argv))


if __name__ == "__main__":
    main()
