"""Do finite-D gradient descent runs of the α = 3, N = 4 problem leave the symmetric subspace?

    PYTHONPATH=. python scripts/alpha3_N4_asymmetry.py --dims 2000 4000 8000 --seeds 8 8 4 \
        --t-max 30 --json docs/results/data/alpha3_N4_asymmetry.json

The DMFT of this problem (α = 3, κ = 1, ε = 0.25, N = 4, m(0) = (0.2, −0.2, 0.2, −0.2)) is
projected onto the subspace invariant under the unit permutations and teacher reflection that
leave (m(0), C_w(0,0)) invariant (theory.md §9.2): as D → ∞ the order parameters obey |m_1| =
|m_2| = |m_3| = |m_4| and Q_11 = … = Q_44 at every t. At finite D the units' overlaps fluctuate by
O(D^(-1/2)) around that, and a direction along which the symmetric dynamics is unstable would
amplify them. This script measures, for gradient descent at several D (the evidence benchmark's
simulator: Numba engine, float32 inputs, step 0.04), the asymmetries

    a_m(t) = Var_i |m_i(t)|,     a_Q(t) = Var_i Q_ii(t)      (population variances over the 4 units)

seed by seed, their seed means, and D·a (constant in D while the fluctuations stay linear), and
the correlation over seeds between a_m(t) and the test loss at t. Seeds are the evidence runs'
(``--first-seed``, default 4, as docs/results/data/long_horizon_alpha3_N4_D4000_seeds4to15_*.json).

    python scripts/alpha3_N4_asymmetry.py --summarise docs/results/data/alpha3_N4_asymmetry_gd_D2000_4000_8000.json

prints the same summary from a stored report.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks.long_horizon import PROBLEMS
from dmft.parameters import ModelParameters
from dmft.simulate import simulate_gd


def asymmetries(overlap: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a_m(t) = Var_i |m_i(t)| and a_Q(t) = Var_i Q_ii(t) (population variances over units)."""
    diag = np.diagonal(cov, axis1=-2, axis2=-1)
    return np.var(np.abs(overlap), axis=-1), np.var(diag, axis=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[2000, 4000, 8000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[8, 8, 4], help="seeds per D (one number per D)")
    parser.add_argument("--first-seed", type=int, default=4)
    parser.add_argument("--t-max", type=float, default=30.0)
    parser.add_argument("--time-step", type=float, default=0.04)
    parser.add_argument("--json", default=None)
    parser.add_argument("--summarise", default=None, metavar="FILE", help="print the summary of a stored report")
    opts = parser.parse_args()
    if opts.summarise:
        with open(opts.summarise) as fh:
            print_summary(json.load(fh))
        return
    if len(opts.seeds) != len(opts.dims):
        parser.error("--seeds needs one count per --dims entry")
    params = ModelParameters(**PROBLEMS[2])
    t = np.round(np.concatenate([np.arange(0.0, 5.0, 0.2), np.arange(5.0, opts.t_max + 1e-9, 1.0)]), 10)
    report = {"problem": PROBLEMS[2], "t": t.tolist(), "time_step": opts.time_step, "dims": {}}
    for dim, count in zip(opts.dims, opts.seeds):
        runs = []
        for seed in range(opts.first_seed, opts.first_seed + count):
            start = time.perf_counter()
            run = simulate_gd(params, dim, t, seed=seed, time_step=opts.time_step, engine="numba",
                              input_dtype="float32")
            a_m, a_q = asymmetries(run.overlap, run.cov)
            runs.append({"seed": seed, "test": run.test_loss.tolist(), "train": run.train_loss.tolist(),
                         "overlap": run.overlap.tolist(), "a_m": a_m.tolist(), "a_q": a_q.tolist()})
            print(f"D={dim} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
            report["dims"][str(dim)] = runs
            if opts.json:
                with open(opts.json, "w") as fh:
                    json.dump(report, fh)
    print_summary(report)


def print_summary(report: dict) -> None:
    """Seed means of a_m, a_Q and D·a_m at a few times, and corr(a_m, test loss) over seeds."""
    t = np.asarray(report["t"])
    times = [1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0]
    index = [int(np.argmin(np.abs(t - s))) for s in times if s <= t[-1] + 1e-9]
    print("t:            " + "".join(f"{t[i]:>11.1f}" for i in index))
    for dim, runs in report["dims"].items():
        a_m = np.array([r["a_m"] for r in runs])
        a_q = np.array([r["a_q"] for r in runs])
        test = np.array([r["test"] for r in runs])
        m_abs = np.array([np.mean(np.abs(r["overlap"]), axis=-1) for r in runs])
        n = len(runs)
        print(f"D = {dim} ({n} seeds)")
        print("  mean |m|    " + "".join(f"{m_abs[:, i].mean():11.4f}" for i in index))
        print("  a_m         " + "".join(f"{a_m[:, i].mean():11.2e}" for i in index))
        print("  D·a_m       " + "".join(f"{int(dim) * a_m[:, i].mean():11.3f}" for i in index))
        print("  a_Q         " + "".join(f"{a_q[:, i].mean():11.2e}" for i in index))
        print("  D·a_Q       " + "".join(f"{int(dim) * a_q[:, i].mean():11.3f}" for i in index))
        if n >= 3:
            corr = [np.corrcoef(a_m[:, i], test[:, i])[0, 1] if np.std(a_m[:, i]) > 0 else np.nan for i in index]
            print("  corr(a_m, test) " + "".join(f"{c:9.2f}  " for c in corr))


if __name__ == "__main__":
    main()
