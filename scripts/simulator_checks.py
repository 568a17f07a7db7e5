"""Two checks behind docs/results/long_horizon.md, session 16: do the two gradient-descent
simulators, and the two ways of planting W(0), give the same seed-averaged curves?

    PYTHONPATH=. python scripts/simulator_checks.py simulators docs/results/data/simulators_centred_D1000.json
    PYTHONPATH=. python scripts/simulator_checks.py planting docs/results/data/planting_alpha10_D2000.json

``simulators``: the centred κ = 4 problem (α = 10, ε = 0.1, N = 2, m(0) = ±0.2) at D = 1000, seeds
0–15, to t = 60 on the session-15 DMFT grid, step 0.04, once with
:func:`dmft.simulate.simulate_gd` (fused Numba step) and once with
:func:`empirical.committee.family.train_committee_family` (PyTorch, CPU). The two draw different
numbers, so their 16-seed means are compared in combined standard errors (~8 min on two cores).

``planting``: α = 10, κ = 1, ε = 0.1, N = 2 at D = 2000, seeds 0–7, to t = 40 (every 0.4),
step 0.04, :func:`dmft.simulate.simulate_gd` as it is (Q₁₂(0) = m₁m₂/ρ plus its O(D^−1/2)
fluctuation) and with the same draws re-planted so that Q₁₂(0) = m₁m₂/ρ exactly, as the PyTorch
trainer plants it. Paired seed by seed (~6 min).
"""

from __future__ import annotations

import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import long_horizon  # noqa: E402  (the evidence benchmark's simulators and problems)

STEP = 0.04
THEORY = REPO / "docs" / "results" / "data" / "theory_s15_centred_kappa4_t150.json"


def _grid():
    t = np.array(json.load(open(THEORY))["t"])
    return t[t <= 60.0]


def _numba(seed):
    t = _grid()
    return long_horizon._simulate((long_horizon.PROBLEMS[3], 1000, seed, t.tolist(), STEP, "numba", "float64"))[2:]


def _torch(seed):
    import torch

    torch.set_num_threads(1)
    t = _grid()
    return long_horizon._simulate_torch((long_horizon.PROBLEMS[3], 1000, seed, t.tolist(), STEP), "cpu")[2:]


def simulators(path, seeds=16):
    # spawn, not fork: a parent that already ran a Numba (OpenMP) kernel must not fork
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        numba_runs = list(pool.map(_numba, range(seeds)))
        torch_runs = list(pool.map(_torch, range(seeds)))
    t = _grid()
    out = dict(t=t.tolist(), numba=numba_runs, torch=torch_runs)
    scale = json.load(open(THEORY))["test_loss"][0]
    for k, field in enumerate(("train", "test")):
        a = np.array([r[k] for r in numba_runs])
        b = np.array([r[k] for r in torch_runs])
        se = np.hypot(a.std(0, ddof=1), b.std(0, ddof=1)) / np.sqrt(seeds)
        z = np.where(se > 0, (b.mean(0) - a.mean(0)) / np.where(se > 0, se, 1), 0)
        late = t >= 5
        print(f"{field}: torch − numba, largest |z| for 5 <= t <= 60: {np.max(np.abs(z[late])):.2f}; "
              f"at t = 50: {100 * (b.mean(0) - a.mean(0))[np.argmin(abs(t - 50))] / scale:+.2f} % of L0")
    with open(path, "w") as fh:
        json.dump(out, fh)


def _exactly_planted(planted):
    """``dmft.simulate.planted_weights`` with the students' parts orthogonal to the teacher made
    orthonormal (same draws): Q₁₂(0) = m₁m₂/ρ exactly."""
    def plant(params, dim, rng):
        beta, W = planted(params, dim, rng)
        unit = beta / np.linalg.norm(beta)
        rest = np.array([W[i] - m * beta / params.rho for i, m in enumerate(params.m0)])
        rest -= np.outer(rest @ unit, unit)
        basis, _ = np.linalg.qr(rest.T)
        basis *= np.sign(np.sum(basis * rest.T, axis=0))
        return beta, np.array([m * beta / params.rho + np.sqrt(1 - m * m / params.rho) * np.sqrt(dim) * basis[:, i]
                               for i, m in enumerate(params.m0)])
    return plant


def planting(path, seeds=8, dim=2000):
    import dmft.simulate as simulate
    from dmft.parameters import ModelParameters

    params = ModelParameters(**long_horizon.PROBLEMS[1])
    t = np.arange(0.0, 40.0 + 1e-9, 0.4)
    planted = simulate.planted_weights
    out = {"t": t.tolist()}
    try:
        for name, plant in (("random_Q12", planted), ("exact_Q12", _exactly_planted(planted))):
            simulate.planted_weights = plant
            runs = [simulate.simulate_gd(params, dim, t, seed=s, time_step=STEP, engine="numba") for s in range(seeds)]
            out[name] = dict(train=[r.train_loss.tolist() for r in runs], test=[r.test_loss.tolist() for r in runs],
                             q12=[float(r.cov[0, 0, 1]) for r in runs])
    finally:
        simulate.planted_weights = planted
    scale = out["random_Q12"]["test"][0][0]
    for field in ("train", "test"):
        diff = np.array(out["exact_Q12"][field]) - np.array(out["random_Q12"][field])
        sem = diff.std(0, ddof=1) / np.sqrt(seeds)
        i = int(np.argmax(np.abs(diff.mean(0))))
        print(f"{field}: exact − random Q12(0), paired: largest |mean| {100 * abs(diff.mean(0)[i]) / scale:.2f} "
              f"± {100 * sem[i] / scale:.2f} % of L0 at t = {t[i]:.1f}")
    with open(path, "w") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    {"simulators": simulators, "planting": planting}[sys.argv[1]](sys.argv[2])
