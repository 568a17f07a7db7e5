"""§A.4/§A.5 at the spec's sizes: variational GP classification on 1-0 data and concealed parity.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/bayes_gp_classification.py --out runs/bayes_gp.h5
    PYTHONPATH=. python scripts/bayes_gp_classification.py --out runs/bayes_gp.h5 --report-only

The first form trains every seed (skipping seeds already stored in ``--out``) and then writes the
report; ``--report-only`` rebuilds ``docs/results/bayes_gp_classification.md`` and the figures
from the stored records. Acceptance (seed_systems.md §C.2): mean gap > 0 on both tasks; for
parity, min over dims 1–3 of 1/ℓ exceeds max over dims 4–40 by ≥ 10× at iteration 150.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from empirical.bayes.gp import GP_SEEDS, VariationalGPConfig, gp_classification_data, train_variational_gp, variational_arrays  # noqa: E402
from comparisons.store import list_records, write_record  # noqa: E402

TASKS = {"one_zero": VariationalGPConfig(lengthscale_init=0.005, iterations=1500),
         "parity": VariationalGPConfig(lengthscale_init=None, iterations=500)}


def compute(out: Path, seeds, tasks, force: bool) -> None:
    done = set(list_records(out)) if out.exists() and not force else set()
    for task in tasks:
        config = TASKS[task]
        for seed in seeds:
            name = f"gp_{task}_seed{seed}"
            if name in done:
                continue
            run = train_variational_gp(gp_classification_data(task, seed), seed, config, progress=True)
            write_record(out, name, variational_arrays([run])[f"seed{seed}"],
                         {"system": "gp-classification", "task": task, "seed": seed, "seconds": run.seconds,
                          "config": {k: getattr(config, k) for k in config.__dataclass_fields__}})
            print(f"{task} seed {seed}: gap {run.gap}  {run.seconds:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bayes_gp.h5")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--seeds", default=",".join(map(str, GP_SEEDS)))
    parser.add_argument("--tasks", default="one_zero,parity")
    parser.add_argument("--force", action="store_true", help="recompute runs already stored")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    if not args.report_only:
        compute(args.out, seeds, args.tasks.split(","), args.force)
    from bayes_report import report_gp_classification  # noqa: E402

    report_gp_classification(args.out, seeds, " ".join(sys.argv))


if __name__ == "__main__":
    main()
