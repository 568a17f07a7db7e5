"""Is the log grid as accurate as the uniform one? The measurement behind the default grid.

    python benchmarks/default_grid.py [--problems 0 1] [--t-max 40]

For each problem, solves (same seed, default settings) on the uniform dt = 0.25 grid, on the
default log grid and on a uniform dt = 0.125 grid (the reference), and prints, for the first two
against the reference: the largest difference of the train and test loss over all t and over
t >= 2, in % of the initial test loss, and the largest difference in combined Monte Carlo
standard errors for t >= 2 (theory.md §9.1, "The default grid"). The reference
is not interpolated: the coarser curves are cubic-spline interpolated onto its points.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.interpolate import CubicSpline

import dmft

PROBLEMS = [
    dict(alpha=10.0, epsilon=0.1),                                   # the README's main job
    dict(alpha=3.0, scale=1.0, epsilon=0.25, width=2),
]
GRIDS = [("uniform dt=0.25", dict(grid="uniform")), ("log (default)", dict(grid="log")),
         ("uniform dt=0.125", dict(grid="uniform", dt=0.125))]


def deviations(curves, reference, quantity: str, t_min: float) -> tuple[float, float, float]:
    """(largest |difference| in % of L0, its time, largest |difference| in combined s.e.) on t >= t_min."""
    scale = reference.test_loss[0] / 100.0
    keep = reference.t >= t_min
    value = CubicSpline(curves.t, getattr(curves, quantity))(reference.t)[keep]
    difference = value - getattr(reference, quantity)[keep]
    sem = np.hypot(np.interp(reference.t, curves.t, getattr(curves, quantity + "_sem"))[keep],
                   getattr(reference, quantity + "_sem")[keep])
    worst = int(np.argmax(np.abs(difference)))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sem > 0, np.abs(difference) / sem, 0.0)
    return float(abs(difference[worst]) / scale), float(reference.t[keep][worst]), float(z.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--t-max", type=float, default=40.0)
    opts = parser.parse_args()
    for index in opts.problems:
        problem = PROBLEMS[index]
        print(f"problem {problem}, t_max = {opts.t_max:g}", flush=True)
        solved = {}
        for name, grid in GRIDS:
            start = time.perf_counter()
            curves = dmft.solve(**problem, t_max=opts.t_max, **grid)
            solved[name] = curves
            print(f"  {name}: {len(curves.t)} points, {time.perf_counter() - start:.1f} s, {curves.message}",
                  flush=True)
        reference = solved[GRIDS[-1][0]]
        for name, _ in GRIDS[:-1]:
            for quantity in ("train_loss", "test_loss"):
                early, t_early, _ = deviations(solved[name], reference, quantity, 0.0)
                late, t_late, z_late = deviations(solved[name], reference, quantity, 2.0)
                print(f"  {name:16s} {quantity:10s}: all t {early:.3f} % of L0 (t = {t_early:.2f}); "
                      f"t >= 2 {late:.3f} % (t = {t_late:.2f}), at most {z_late:.2f} combined s.e.")


if __name__ == "__main__":
    main()
