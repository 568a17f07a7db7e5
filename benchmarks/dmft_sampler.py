"""Pseudo-random against randomised quasi-Monte Carlo field normals: error and honesty of the error bars.

    python benchmarks/dmft_sampler.py [--problem default|alpha3] [--seeds 4] [--samples 32768]
                                      [--samplers mc rqmc] [--json FILE]

For each sampler, solves the same problem with ``--seeds`` solver seeds and prints, over the
grid (t ≥ 2): the seed-to-seed standard deviation of the train and test loss (the true Monte
Carlo error of one solve), the root-mean-square of the reported standard errors, their ratio
(issue criterion: within a factor 1.5) and the seconds per solve. ``default`` is
``dmft solve --alpha 10 --epsilon 0.1`` (t ≤ 40); ``alpha3`` is α = 3, ε = 0.25, N = 2 on the
log grid to t = 60 (issue 13's accuracy problem), whose relative standard error of the test
loss is printed at t = 5, 10, 20, 40, 60.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import dmft

PROBLEMS = {
    "default": dict(alpha=10.0, epsilon=0.1),
    "alpha3": dict(alpha=3.0, epsilon=0.25, t_max=60.0, grid="log"),
}


def run(problem: str, sampler: str, samples: int, seeds: int) -> dict:
    curves, seconds = [], []
    for seed in range(seeds):
        start = time.perf_counter()
        result = dmft.solve(**PROBLEMS[problem], samples=samples, sampler=sampler, seed=seed)
        seconds.append(time.perf_counter() - start)
        if not result.converged:
            raise RuntimeError(f"{problem} {sampler} seed {seed}: {result.message}")
        curves.append(result)
    t = curves[0].t
    late = t >= 2.0
    row = {"problem": problem, "sampler": sampler, "samples": samples, "seeds": seeds,
           "seconds": float(np.mean(seconds)), "t": t.tolist()}
    for name in ("train_loss", "test_loss"):
        values = np.array([getattr(c, name) for c in curves])
        sems = np.array([getattr(c, name + "_sem") for c in curves])
        spread = values.std(axis=0, ddof=1)
        reported = np.sqrt((sems**2).mean(axis=0))
        row[name] = {"mean": values.mean(axis=0).tolist(), "seed_sd": spread.tolist(), "rms_sem": reported.tolist(),
                     "mean_seed_sd": float(spread[late].mean()),
                     "sd_over_sem": float(np.sqrt((spread[late] ** 2).mean() / (reported[late] ** 2).mean()))}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problem", choices=sorted(PROBLEMS), default="default")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--samples", type=int, default=32768)
    parser.add_argument("--samplers", nargs="+", default=["mc", "rqmc"])
    parser.add_argument("--json", default=None)
    opts = parser.parse_args()
    rows = []
    for sampler in opts.samplers:
        row = run(opts.problem, sampler, opts.samples, opts.seeds)
        rows.append(row)
        t = np.array(row["t"])
        for name in ("train_loss", "test_loss"):
            r = row[name]
            print(f"{opts.problem} {sampler:4s} S={opts.samples} {name:10s}: mean seed sd (t >= 2) "
                  f"{r['mean_seed_sd']:.2e}, seed sd / reported SE {r['sd_over_sem']:.2f}", flush=True)
        if opts.problem == "alpha3":
            idx = np.searchsorted(t, [5.0, 10.0, 20.0, 40.0, 60.0])
            idx = idx[idx < t.size]
            mean = np.array(row["test_loss"]["mean"])
            rel_sd = np.array(row["test_loss"]["seed_sd"])[idx] / mean[idx]
            rel_se = np.array(row["test_loss"]["rms_sem"])[idx] / mean[idx]
            print("  t " + " ".join(f"{v:6.1f}" for v in t[idx]))
            print("  relative seed sd of the test loss " + " ".join(f"{v:6.2%}" for v in rel_sd))
            print("  relative reported SE              " + " ".join(f"{v:6.2%}" for v in rel_se), flush=True)
        print(f"  {row['seconds']:.1f} s per solve", flush=True)
    if len(rows) == 2:
        for name in ("train_loss", "test_loss"):
            ratio = rows[0][name]["mean_seed_sd"] / rows[1][name]["mean_seed_sd"]
            print(f"{name}: seed sd {rows[0]['sampler']} / {rows[1]['sampler']} = {ratio:.2f}")
        print(f"seconds {rows[0]['sampler']} / {rows[1]['sampler']} = {rows[0]['seconds'] / rows[1]['seconds']:.2f}")
    if opts.json:
        with open(opts.json, "w") as fh:
            json.dump(rows, fh)


if __name__ == "__main__":
    main()
