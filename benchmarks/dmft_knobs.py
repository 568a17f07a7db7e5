"""Convergence of the finite-α DMFT in its numerical knobs (issue: time step, samples, damping).

    python benchmarks/dmft_knobs.py [--alpha 10 --epsilon 0.1 --scale 1] [--t-max 40]

Solves the default problem with the default settings and then with one knob changed at a time:

* the time step halved (dt 0.25 → 0.125): discretisation error of the trapezoid scheme;
* the samples doubled with a different seed: Monte Carlo error of the fixed point (two
  independent estimates; their difference is √2 × the error of one);
* another seed at the default samples: the seed-to-seed spread at the default S;
* plain damping instead of Anderson mixing, and damping 0.7: must land on the same fixed point
  up to the convergence tolerance (same random numbers);
* tol 1e-5 instead of 1e-4: the error left by stopping at the default tolerance.

Prints, for each variant, the sup over the grid of |Δ train loss|, |Δ test loss| (absolute and
relative to the default curve, relative where the loss exceeds 1e-3) and |Δ m|. Curves on the
finer grid are compared at the common grid points.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import dmft


def _compare(reference, other):
    stride = round((other.t.size - 1) / (reference.t.size - 1))
    rows = {}
    for field in ("train_loss", "test_loss"):
        a, b = getattr(reference, field), getattr(other, field)[::stride]
        significant = a > 1e-3
        rows[field] = (np.abs(b - a).max(), (np.abs(b - a)[significant] / a[significant]).max())
    rows["overlap"] = (np.abs(other.overlap[::stride] - reference.overlap).max(), np.nan)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alpha", type=float, default=10.0)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--t-max", type=float, default=40.0)
    opts = parser.parse_args()
    problem = dict(alpha=opts.alpha, epsilon=opts.epsilon, scale=opts.scale, t_max=opts.t_max)
    variants = {
        "default (dt 0.25, S 32768, anderson, tol 1e-4)": {},
        "dt 0.125": {"dt": 0.125},
        "S 65536, seed 1": {"samples": 65536, "seed": 1},
        "seed 1": {"seed": 1},
        "mixing damped": {"mixing": "damped"},
        "damping 0.7": {"damping": 0.7},
        "tol 1e-5": {"tol": 1e-5},
    }
    print(f"DMFT knob convergence: alpha={opts.alpha:g}, epsilon={opts.epsilon:g}, scale={opts.scale:g}, "
          f"t_max={opts.t_max:g}")
    print(f"{'variant':48s} {'iters':>5s} {'sec':>6s} {'|dtrain|':>9s} {'rel':>8s} {'|dtest|':>9s} "
          f"{'rel':>8s} {'|dm|':>9s}")
    reference = None
    for name, options in variants.items():
        start = time.perf_counter()
        res = dmft.solve(**problem, **options)
        seconds = time.perf_counter() - start
        if not res.converged:
            print(f"{name:48s} NOT CONVERGED: {res.message}")
            continue
        if reference is None:
            reference = res
            print(f"{name:48s} {res.iterations:5d} {seconds:6.1f}   (reference)", flush=True)
            continue
        rows = _compare(reference, res)
        print(f"{name:48s} {res.iterations:5d} {seconds:6.1f} {rows['train_loss'][0]:9.1e} {rows['train_loss'][1]:8.1%} "
              f"{rows['test_loss'][0]:9.1e} {rows['test_loss'][1]:8.1%} {rows['overlap'][0]:9.1e}", flush=True)


if __name__ == "__main__":
    main()
