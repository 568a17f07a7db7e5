"""The α = 3, N = 4 problem started slightly off its symmetric subspace: does the DMFT's broken
trajectory carry the asymmetry that finite-D gradient descent shows, and how far does it move
the test loss?

    PYTHONPATH=. python scripts/alpha3_N4_broken_symmetry.py --deltas 0 0.005 0.02 --t-max 20 \
        --json docs/results/data/alpha3_N4_broken_symmetry.json

For each δ the DMFT solves the problem of ``benchmarks/long_horizon.py`` (α = 3, κ = 1, ε = 0.25,
N = 4) with m(0) = (0.2 + δ, −0.2, 0.2 − δ, −0.2) (C_w(0,0) planted on it). δ = 0 is the symmetric
problem (group of order 8); δ > 0 leaves the group {1, (2 4)}, so units 1 and 3 may separate.
All solves use the same seed (common random numbers), so differences between them are far more
precise than each solve's standard error. Printed: a_Q(t) = Var_i C_w(t,t)_ii and
a_m(t) = Var_i |m_i(t)| (as ``scripts/alpha3_N4_asymmetry.py`` measures them on gradient descent)
and the test loss, at a few times.

    python scripts/alpha3_N4_broken_symmetry.py --summarise FILE [FILE ...] [--delta 0.02]

pairs the δ solve of each stored report with the δ = 0 solve of the same seed and prints the
difference of the test and train loss in % of L0 (the δ = 0 initial test loss), its mean over the
reports and the standard error of that mean (the reports must have independent seeds).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import dmft
from benchmarks.long_horizon import PROBLEMS
from scripts.alpha3_N4_asymmetry import asymmetries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deltas", type=float, nargs="+", default=[0.0, 0.005, 0.02])
    parser.add_argument("--t-max", type=float, default=20.0)
    parser.add_argument("--samples", type=int, default=32768)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--summarise", nargs="+", default=None, metavar="FILE")
    parser.add_argument("--delta", type=float, default=0.02, help="--summarise: the δ compared with δ = 0")
    opts = parser.parse_args()
    if opts.summarise:
        summarise(opts.summarise, opts.delta)
        return
    report = {"problem": PROBLEMS[2], "t_max": opts.t_max, "samples": opts.samples, "seed": opts.seed, "solves": {}}
    times = [1.0, 2.0, 5.0, 10.0, 15.0, 20.0]
    for delta in opts.deltas:
        problem = dict(PROBLEMS[2], init_overlap=(0.2 + delta, -0.2, 0.2 - delta, -0.2))
        res = dmft.solve(**problem, t_max=opts.t_max, samples=opts.samples, seed=opts.seed)
        a_m, a_q = asymmetries(res.overlap, res.cov)
        report["solves"][str(delta)] = {
            "t": res.t.tolist(), "test": res.test_loss.tolist(), "train": res.train_loss.tolist(),
            "test_sem": res.test_loss_sem.tolist(), "overlap": res.overlap.tolist(),
            "cov_diag": np.diagonal(res.cov, axis1=-2, axis2=-1).tolist(),
            "a_q": a_q.tolist(), "a_m": a_m.tolist(), "message": res.message, "seconds": res.seconds,
            "group_order": res.settings["symmetry_group_order"]}
        idx = [int(np.argmin(np.abs(res.t - s))) for s in times if s <= res.t[-1] + 1e-9]
        print(f"delta={delta}: {res.message[:60]} ({res.seconds:.0f} s, group order "
              f"{res.settings['symmetry_group_order']})", flush=True)
        print("  t     " + "".join(f"{res.t[i]:>10.2f}" for i in idx))
        print("  test  " + "".join(f"{res.test_loss[i]:10.4f}" for i in idx))
        print("  ±     " + "".join(f"{res.test_loss_sem[i]:10.4f}" for i in idx))
        print("  a_Q   " + "".join(f"{a_q[i]:10.2e}" for i in idx))
        print("  a_m   " + "".join(f"{a_m[i]:10.2e}" for i in idx))
        print("  m     " + "  ".join(np.array2string(res.overlap[i], precision=3) for i in idx[-2:]))
        if opts.json:
            with open(opts.json, "w") as fh:
                json.dump(report, fh)


def summarise(paths: list[str], delta: float) -> None:
    """Paired differences (δ solve − symmetric solve) / L0 of each report, their mean and its SE."""
    times = [1.0, 2.0, 5.0, 10.0, 15.0, 20.0]
    diffs = {"test": [], "train": []}
    seeds = []
    for path in paths:
        with open(path) as fh:
            report = json.load(fh)
        seeds.append(report["seed"])
        base, broken = report["solves"]["0.0"], report["solves"][str(delta)]
        t = np.asarray(base["t"])
        index = [int(np.argmin(np.abs(t - s))) for s in times]
        scale = base["test"][0]
        for name in diffs:
            diff = (np.asarray(broken[name]) - np.asarray(base[name])) / scale * 100
            diffs[name].append(diff[index])
            print(f"seed {report['seed']} {name:5s} " + "".join(f"{x:+9.3f}%" for x in diff[index]))
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"the reports must have different seeds, got {seeds}")
    print("t          " + "".join(f"{s:>10.1f}" for s in times))
    for name, rows in diffs.items():
        rows = np.asarray(rows)
        mean = rows.mean(axis=0)
        sem = rows.std(axis=0, ddof=1) / np.sqrt(len(rows)) if len(rows) > 1 else np.full(len(times), np.nan)
        print(f"{name:5s} mean " + "".join(f"{m:+7.3f}±{e:.3f}" for m, e in zip(mean, sem)))


if __name__ == "__main__":
    main()
