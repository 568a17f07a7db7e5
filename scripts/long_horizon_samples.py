"""The centred κ = 4 problem (α = 10, ε = 0.1, N = 2, m(0) = ±0.2) to t = 60 on the default log
grid, solved at S = 8192 and 32768 (solver seeds 0 and 1) and S = 131072 (seed 0), each with its 8
error replicas: does the DMFT move with S (a finite-S bias), and how far do independent solves
scatter compared with their error bars? Then S = 131072, seed 0 on uniform grids dt = 0.25 and
0.125: how much does the time grid move it? Last, S = 32768, seed 0 with the exact response
(2048 response samples) instead of the probe. docs/results/long_horizon.md, session 16.

    PYTHONPATH=. python scripts/long_horizon_samples.py docs/results/data/long_horizon_centred_kappa4_t60_dmft_samples.json

About 15 minutes on two cores (the uniform dt = 0.125 solve, T = 481, and the exact response
are most of it).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

import dmft

PROBLEM = dict(alpha=10.0, epsilon=0.1, scale=4.0, width=2, center=True, init_overlap=(0.2, -0.2), t_max=60.0)
LOG = {"grid": "log"}
EXACT = {"grid": "log", "response": "exact", "response_samples": 2048}
SOLVES = [(8192, 0, LOG), (8192, 1, LOG), (32768, 0, LOG), (32768, 1, LOG), (131072, 0, LOG),
          (131072, 0, {"dt": 0.25}), (131072, 0, {"dt": 0.125}), (32768, 0, EXACT)]


def _key(samples, seed, options):
    if options is LOG:
        return f"{samples}_{seed}"
    if options is EXACT:
        return f"{samples}_{seed}_exact_response{options['response_samples']}"
    return f"{samples}_{seed}_uniform_dt{options['dt']}"


def main(path):
    out = {}
    for samples, seed, grid in SOLVES:
        start = time.perf_counter()
        result = dmft.solve(**PROBLEM, **grid, samples=samples, seed=seed)
        if not result.converged:
            raise SystemExit(f"S={samples}, seed {seed}: {result.message}")
        key = _key(samples, seed, grid)
        out[key] = dict(
            seconds=time.perf_counter() - start, message=result.message, t=result.t.tolist(),
            train=result.train_loss.tolist(), test=result.test_loss.tolist(),
            train_sem=result.train_loss_sem.tolist(), test_sem=result.test_loss_sem.tolist())
        scale = result.test_loss[0]
        cells = []
        for when in (20, 40, 60):
            i = int(np.argmin(np.abs(result.t - when)))
            cells.append(f"t={when}: train {100 * result.train_loss[i] / scale:.2f} ± "
                         f"{100 * result.train_loss_sem[i] / scale:.2f} %, test {100 * result.test_loss[i] / scale:.2f} ± "
                         f"{100 * result.test_loss_sem[i] / scale:.2f} %")
        print(f"{key}: {result.message}; " + "; ".join(cells), flush=True)
    with open(path, "w") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    main(sys.argv[1])
