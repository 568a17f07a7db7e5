"""Cost of the adaptive horizon of the phase maps with and without its cheap probe, in one run.

    PYTHONPATH=. python benchmarks/adaptive_probe.py [--points 2.4,0.16 1.6,0.08 1.6,0.16] [--samples 8192]

Each Fig. 3e point (α = 5.5, N = 4, centred, m(0) = ±40^(−1/2), log grid, t_max = 300, 4 error
replicas, S = 8192: the settings of ``scripts/phase_maps.py fig3e``) is solved by
:class:`comparisons.phase.AdaptiveHorizon` with its default probe (horizons 40, 80, 160 at S/2
without replicas until both losses come within twice their thresholds, then the full solves) and
without it (``probe=0``: every horizon at full cost). Prints every solve with its horizon, samples and
seconds, the total of each mode and their ratio, and whether the two answers are the same
(same final horizon and seed: the same curves).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from comparisons.phase import AdaptiveHorizon, grokking_point, solve_point


def fig3e_point(scale: float, epsilon: float, samples: int) -> dict:
    m0 = [(1.0 if i % 2 == 0 else -1.0) / math.sqrt(40) for i in range(4)]
    return dict(alpha=5.5, width=4, center=True, init_overlap=m0, scale=scale, epsilon=epsilon, t_max=300.0, dt=0.5,
                grid="log", error_replicas=4, samples=samples)


def timed_runner(log):
    def runner(params):
        start = time.perf_counter()
        curves = solve_point(params)
        log.append((params["t_max"], params["samples"], params.get("error_replicas"), time.perf_counter() - start,
                    curves.converged))
        return curves
    return runner


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", nargs="+", default=["2.4,0.16", "1.6,0.08", "1.6,0.16"], help="scale,epsilon pairs")
    parser.add_argument("--samples", type=int, default=8192)
    args = parser.parse_args()
    totals = {"probe": 0.0, "plain": 0.0}
    for spec in args.points:
        scale, epsilon = (float(x) for x in spec.split(","))
        params = fig3e_point(scale, epsilon, args.samples)
        answers = {}
        for mode, probe in (("probe", AdaptiveHorizon.probe), ("plain", 0)):
            log = []
            start = time.perf_counter()
            curves = AdaptiveHorizon(runner=timed_runner(log), probe=probe)(params)
            seconds = time.perf_counter() - start
            totals[mode] += seconds
            point = grokking_point(curves)
            answers[mode] = curves
            print(f"kappa={scale:g} eps={epsilon:g} {mode:5s}: {seconds:7.1f} s; amount "
                  f"{point.amount if point.amount is None else round(point.amount, 2)}"
                  f" ± {point.amount_sem if point.amount_sem is None else round(point.amount_sem, 2)}"
                  f" (t_end {curves.t[-1]:g})", flush=True)
            for t_max, samples, replicas, s, converged in log:
                print(f"    horizon {t_max:5g}  S={samples:6d}  replicas={replicas}  {s:7.1f} s"
                      f"{'' if converged else '  (not converged)'}", flush=True)
        same = (answers["probe"].t.size == answers["plain"].t.size
                and np.array_equal(answers["probe"].test_loss, answers["plain"].test_loss))
        print(f"  same curves in both modes: {same}", flush=True)
    print(f"total: probe {totals['probe']:.1f} s, plain {totals['plain']:.1f} s, "
          f"ratio {totals['probe'] / totals['plain']:.2f}")


if __name__ == "__main__":
    main()
