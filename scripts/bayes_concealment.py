"""§A.6 at the spec's sizes: the concealment MLP grid and its gap regression (Decision D.2).

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/bayes_concealment.py --out runs/bayes_concealment.h5
    PYTHONPATH=. python scripts/bayes_concealment.py --out runs/bayes_concealment.h5 --report-only

Datasets 2–7 × m ∈ {0, 10, 20, 30, 40} × seeds {0, 1, 2}, 300 epochs each. Runs already in
``--out`` are skipped, so the grid can be resumed. The report step writes
``docs/results/bayes_concealment.md`` and the figure. Acceptance (§C.3): pooled r > 0.7 with
p < 1e-3; r > 0.6 per dataset; slope a in about 0.05–0.12; mean gap at m = 40 > 5× the mean gap
at m ≤ 10 for every dataset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from empirical.bayes.concealment import DEFAULT_EXTRA_DIMS, DEFAULT_SEEDS, concealment_arrays, run_concealment_grid  # noqa: E402
from empirical.bayes.datasets import CONCEALMENT_DATASETS  # noqa: E402
from comparisons.store import list_records, write_record  # noqa: E402


def compute(out: Path, datasets, dims, seeds) -> None:
    done = set(list_records(out)) if out.exists() else set()
    skip = set()
    for d in datasets:
        for m in dims:
            for s in seeds:
                if f"{d}_m{m}_seed{s}" in done:
                    skip.add((d, m, s))

    def store(run):
        (name, arrays), = concealment_arrays([run]).items()
        write_record(out, name, arrays, {"system": "concealment", "dataset": run.dataset, "m": run.m,
                                         "seed": run.seed, "seconds": run.seconds})
        print(f"{name}: gap {run.gap.gap} (t_train {run.gap.t_train}, t_val {run.gap.t_val}, "
              f"censored {run.gap.censored}) {run.seconds:.0f} s", flush=True)

    run_concealment_grid(datasets, dims, seeds, skip=skip, callback=store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bayes_concealment.h5")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--datasets", default=",".join(CONCEALMENT_DATASETS))
    parser.add_argument("--dims", default=",".join(map(str, DEFAULT_EXTRA_DIMS)))
    parser.add_argument("--seeds", default=",".join(map(str, DEFAULT_SEEDS)))
    args = parser.parse_args()
    torch.set_num_threads(1)
    datasets = args.datasets.split(",")
    dims = [int(v) for v in args.dims.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]
    if not args.report_only:
        compute(args.out, datasets, dims, seeds)
    from bayes_report import report_concealment  # noqa: E402

    report_concealment(args.out, " ".join(sys.argv))


if __name__ == "__main__":
    main()
