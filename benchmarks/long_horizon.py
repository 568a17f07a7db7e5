"""Long-horizon DMFT: log grid against the uniform dt = 0.25 grid, and awkward valid problems.

    python benchmarks/long_horizon.py accuracy [--problems 0 1 2 3] [--samples 32768]
    python benchmarks/long_horizon.py envelope [--t-max 300] [--samples 8192]

``accuracy``: for each reference problem, solves on the uniform grid (dt = 0.25) to t = 60 and
on the default log grid to t_max = 300, and prints the largest difference of the train and test
loss over t ≤ 60 in units of the initial test loss (the uniform curve interpolated onto the log
grid points), with each solve's time and iterations (theory.md §9.1; issue criterion ≤ 1 %).

``envelope``: solves a grid of awkward valid problems (α ∈ [1, ∞), κ ∈ [0.1, 10], ε ∈ [0, 1],
N ≤ 6, centred or not) on the log grid and prints, for each, whether it converged, the message,
and whether any curve is non-finite.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

import dmft

PROBLEMS = [
    dict(alpha=3.0, scale=1.0, epsilon=0.25, width=2, center=False),
    dict(alpha=10.0, scale=1.0, epsilon=0.1, width=2, center=False),
    dict(alpha=3.0, scale=1.0, epsilon=0.25, width=4, center=False, init_overlap=(0.2, -0.2, 0.2, -0.2)),
    dict(alpha=10.0, scale=4.0, epsilon=0.1, width=2, center=True, init_overlap=(0.2, -0.2)),
]

ENVELOPE = [
    dict(alpha=1.0, scale=0.1, epsilon=1.0, width=2, center=False),
    dict(alpha=1.0, scale=10.0, epsilon=0.01, width=2, center=True),
    dict(alpha=1.5, scale=1.0, epsilon=0.0, width=3, center=False),
    dict(alpha=2.0, scale=10.0, epsilon=1.0, width=6, center=True),
    dict(alpha=5.5, scale=2.4, epsilon=0.04, width=4, center=True),
    dict(alpha=10.0, scale=4.0, epsilon=0.1, width=2, center=True, init_overlap=(0.2, -0.2)),
    dict(alpha=100.0, scale=0.1, epsilon=0.5, width=5, center=False),
    dict(alpha=3.0, scale=1.0, epsilon=0.25, width=4, center=False, init_overlap=(0.2, -0.2, 0.2, -0.2)),
]


def accuracy(opts):
    rows = []
    for index in opts.problems:
        problem = PROBLEMS[index]
        start = time.perf_counter()
        uniform = dmft.solve(**problem, t_max=60.0, dt=0.25, samples=opts.samples, seed=opts.seed)
        t_uniform = time.perf_counter() - start
        start = time.perf_counter()
        log = dmft.solve(**problem, t_max=opts.t_max, grid="log", samples=opts.samples, seed=opts.seed,
                         grid_points=opts.grid_points)
        t_log = time.perf_counter() - start
        window = log.t <= 60.0 + 1e-9
        scale = uniform.test_loss[0]
        row = dict(problem=problem, uniform_seconds=t_uniform, log_seconds=t_log,
                   uniform_iterations=uniform.iterations, log_iterations=log.iterations,
                   uniform_converged=uniform.converged, log_converged=log.converged,
                   log_points=int(log.t.size), log_message=log.message)
        for field in ("train_loss", "test_loss"):
            ref = np.interp(log.t[window], uniform.t, getattr(uniform, field))
            row[field + "_sup_diff"] = float(np.max(np.abs(getattr(log, field)[window] - ref)) / scale)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def envelope(opts):
    for problem in ENVELOPE:
        start = time.perf_counter()
        try:
            res = dmft.solve(**problem, t_max=opts.t_max, grid="log", samples=opts.samples, seed=opts.seed)
            finite = bool(np.all(np.isfinite(res.train_loss)) and np.all(np.isfinite(res.test_loss)))
            out = dict(problem=problem, converged=res.converged, finite=finite, message=res.message,
                       iterations=res.iterations, final_test=float(res.test_loss[-1]))
        except Exception as exc:  # noqa: BLE001 - the point is to see every failure
            out = dict(problem=problem, error=f"{type(exc).__name__}: {exc}")
        out["seconds"] = time.perf_counter() - start
        print(json.dumps(out, default=str), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["accuracy", "envelope"])
    parser.add_argument("--problems", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--samples", type=int, default=32768)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--t-max", type=float, default=300.0)
    parser.add_argument("--grid-points", type=int, default=None)
    opts = parser.parse_args()
    (accuracy if opts.mode == "accuracy" else envelope)(opts)


if __name__ == "__main__":
    main()
