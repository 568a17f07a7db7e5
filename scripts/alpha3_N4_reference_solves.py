"""Issue 13, deliverable 2 against a better DMFT reference to t = 60: independent solves of the
α = 3, N = 4 problem (κ = 1, ε = 0.25, m(0) = (0.2, −0.2, 0.2, −0.2), default log grid to t = 60),
and the criterion "inside the large-D simulations' seed spread" read against their mean.

Session 25 read the criterion against one S = 262144 solve, whose own Monte Carlo error is
0.2–1.3 % of L0 over t ≤ 60, the size of the offset in question; seven independent solves were
run only to t = 20. This script runs more, to t = 60 (docs/results/long_horizon.md, "Session 27").

    PYTHONPATH=. python scripts/alpha3_N4_reference_solves.py run OUT.json --seeds 1 2 3 4 5 6 [--samples 65536]
    PYTHONPATH=. python scripts/alpha3_N4_reference_solves.py criterion OUT.json

``run`` solves one solver seed after the other (each with its 8 error replicas) and rewrites OUT
after each (a stopped run keeps what is done; seeds already in OUT are skipped). OUT has the
format of ``scripts/long_horizon_samples.py`` (``{key: {t, train, test, train_sem, test_sem}}``,
key ``"<samples>_<seed>"``), so ``scripts/pool_evidence.py --dmft OUT KEY ...`` reads it too. The
session-24 solve (S = 262144, seed 0, its draws independent of seeds ≥ 1) is added as key
``262144_0``.

``criterion`` prints the test loss of three references built from the solves (:func:`references`)
with the spread of the S = 65536 solves against their replica standard errors (deliverable 4's
check at this problem), then, for each reference, against the stored gradient-descent runs of
sessions 24–25 and 28 (D = 4000: 16 seeds; D = 8000: 11 seeds, and 13 more since session 28, one
run per seed merged by ``scripts/pool_evidence.py --merge``; step 0.04): per D and curve, the sup over
the recording times t ≤ 60 of |DMFT − seed mean| against the seed standard deviation at that time
(the criterion as the evidence benchmark reads it) and the largest ratio of the two.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from scipy.interpolate import CubicSpline

import dmft

DATA = "docs/results/data/"
PROBLEM = dict(alpha=3.0, epsilon=0.25, scale=1.0, width=4, init_overlap=(0.2, -0.2, 0.2, -0.2), t_max=60.0)
STORED = ("262144_0", DATA + "theory_s24_alpha3_N4_t60_S262144.json")
#: Sample count of the solves whose plain mean is the main reference (other counts: the finite-S bias).
REFERENCE_SAMPLES = 65536
#: Gradient descent, step 0.04: (D, reports) pooled per D.
SIMULATIONS = {4000: ["long_horizon_alpha3_N4_D4000_seeds0to3_S262144.json",
                      "long_horizon_alpha3_N4_D4000_seeds4to15_S262144.json"],
               8000: ["long_horizon_alpha3_N4_D8000_gpu_S262144.json",
                      "long_horizon_alpha3_N4_D8000_seeds5to11_S262144.json",
                      "long_horizon_alpha3_N4_D8000_seeds12to24_S262144.json"]}


def _write(path, out):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(out, fh)
    os.replace(tmp, path)


def run(path, seeds, samples):
    out = json.load(open(path)) if os.path.exists(path) else {}
    if STORED[0] not in out:
        stored = json.load(open(STORED[1]))
        out[STORED[0]] = dict(seconds=None, message=stored["message"], t=stored["t"], train=stored["train_loss"],
                              test=stored["test_loss"], train_sem=stored["train_loss_sem"],
                              test_sem=stored["test_loss_sem"], source=STORED[1])
    for seed in seeds:
        key = f"{samples}_{seed}"
        if key in out:
            continue
        start = time.perf_counter()
        result = dmft.solve(**PROBLEM, samples=samples, seed=seed, progress=False)
        seconds = time.perf_counter() - start
        if not result.converged:
            print(f"{key}: not converged ({result.message}); not stored", flush=True)
            continue
        out[key] = dict(seconds=seconds, message=result.message, t=result.t.tolist(),
                        train=result.train_loss.tolist(), test=result.test_loss.tolist(),
                        train_sem=result.train_loss_sem.tolist(), test_sem=result.test_loss_sem.tolist())
        _write(path, out)
        L0 = result.test_loss[0]
        at = [int(np.argmin(np.abs(result.t - x))) for x in (10, 15, 30, 60)]
        print(f"{key}: {seconds:.0f} s, {result.message}; test / L0 at t = 10, 15, 30, 60: "
              + ", ".join(f"{result.test_loss[i] / L0:.4f} ± {result.test_loss_sem[i] / L0:.4f}" for i in at), flush=True)
    _write(path, out)


def _on_grid(solve, field, t):
    return CubicSpline(solve["t"], solve[field])(t), np.interp(t, solve["t"], solve[f"{field}_sem"])


def references(solves, field, t):
    """Three DMFT references on the times ``t``, {label: (curve, standard error)}.

    - the plain mean of the solves of the smaller S, its error from their spread (it trusts no
      replica error bar);
    - the S = 262144 solve alone, with its replica error;
    - all solves weighted by their sample counts (Monte Carlo variance ∝ 1/S), its error from the
      smaller-S solves' spread scaled to the total sample count.
    """
    small = _group(solves, REFERENCE_SAMPLES)
    if len(small) < 2:
        raise SystemExit(f"need >= 2 solves at S = {REFERENCE_SAMPLES}, got {sorted(small)}")
    values = np.array([_on_grid(v, field, t)[0] for v in small.values()])
    spread = values.std(0, ddof=1)
    big, big_sem = _on_grid(solves[STORED[0]], field, t)
    used = {**small, STORED[0]: solves[STORED[0]]}
    total = sum(_samples(k) for k in used)
    weighted = sum(_samples(k) * _on_grid(v, field, t)[0] for k, v in used.items()) / total
    return {f"mean of {len(small)} S = {REFERENCE_SAMPLES} solves": (values.mean(0), spread / np.sqrt(len(small))),
            "S = 262144 solve": (big, big_sem),
            f"these {len(used)} solves, weighted by S": (weighted, spread * np.sqrt(REFERENCE_SAMPLES / total))}


def _samples(key):
    return int(key.split("_")[0])


def _group(solves, samples):
    return {k: v for k, v in solves.items() if _samples(k) == samples}


def criterion(path, times=(2, 5, 10, 15, 20, 30, 40, 50, 60)):
    solves = json.load(open(path))
    L0 = solves[STORED[0]]["test"][0]
    print(f"{len(solves)} independent solves: {', '.join(sorted(solves, key=lambda k: (_samples(k), k)))}")
    x = np.array(times, dtype=float)
    print("test loss / L0 in %: the references, then each sample count's plain mean ± spread/√n, and its spread "
          "over seeds / mean replica SE")
    print("| t | " + " | ".join(f"{v:g}" for v in times) + " |")
    print("|---|" + "---|" * len(times))
    for label, (curve, sem) in references(solves, "test", x).items():
        print(f"| {label} | " + " | ".join(f"{100 * c / L0:.2f} ± {100 * e / L0:.2f}" for c, e in zip(curve, sem)) + " |")
    honesty = {}
    for samples in sorted({_samples(k) for k in solves}):
        group = _group(solves, samples)
        if len(group) < 2:
            continue
        values = np.array([_on_grid(v, "test", x)[0] for v in group.values()])
        errors = np.array([_on_grid(v, "test", x)[1] for v in group.values()])
        spread = values.std(0, ddof=1)
        print(f"| S = {samples}, mean of {len(group)} | " + " | ".join(
            f"{100 * m / L0:.2f} ± {100 * e / L0:.2f}" for m, e in zip(values.mean(0), spread / np.sqrt(len(group)))) + " |")
        print(f"| S = {samples}, spread / replica SE | " + " | ".join(f"{r:.2f}" for r in spread / errors.mean(0)) + " |")
        honesty[samples] = list(group.values())
    for samples, group in honesty.items():
        # deliverable 4's check on every grid time t >= 1 (earlier the errors are ~1e-4 of L0)
        t = np.array(group[0]["t"])
        late = t[t >= 1.0]
        for field in ("train", "test"):
            values = np.array([_on_grid(v, field, late)[0] for v in group])
            errors = np.array([_on_grid(v, field, late)[1] for v in group])
            ratio = values.std(0, ddof=1) / errors.mean(0)
            print(f"S = {samples}, {field}: spread of {len(group)} solves / their mean replica SE over the {late.size} grid "
                  f"times 1 <= t <= 60: median {np.median(ratio):.2f}, range {ratio.min():.2f}-{ratio.max():.2f}, "
                  f"outside [1/1.5, 1.5] at {np.mean((ratio > 1.5) | (ratio < 1 / 1.5)):.0%} of them")
    for dim, names in SIMULATIONS.items():
        reports = [json.load(open(DATA + name)) for name in names]
        step = reports[0]["time_step"]
        t_sim = np.rint(np.array(reports[0]["t"]) / step) * step
        for field in ("train", "test"):
            curves = np.array([c for r in reports for c in r["dims"][str(dim)]["seed_curves"][field].values()])
            mean, spread = curves.mean(0), curves.std(0, ddof=1)
            for label, (theory, sem) in references(solves, field, t_sim).items():
                dev = np.abs(theory - mean)
                i = int(np.argmax(dev))
                ratio = dev / np.where(spread > 0, spread, np.inf)
                j = int(np.argmax(ratio))
                print(f"D = {dim}, {field} ({len(curves)} seeds) vs {label}: sup |DMFT - seed mean| = "
                      f"{100 * dev[i] / L0:.2f} % of L0 at t = {t_sim[i]:.1f}, seed sd there {100 * spread[i] / L0:.2f} %, "
                      f"DMFT SE {100 * sem[i] / L0:.2f} % -> {'inside' if dev[i] <= spread[i] else 'OUTSIDE'}; "
                      f"largest |dev| / sd {ratio[j]:.2f} at t = {t_sim[j]:.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("out")
    run_parser.add_argument("--seeds", type=int, nargs="+", required=True)
    run_parser.add_argument("--samples", type=int, default=65536)
    crit = sub.add_parser("criterion")
    crit.add_argument("out")
    opts = parser.parse_args()
    if opts.command == "run":
        run(opts.out, opts.seeds, opts.samples)
    else:
        criterion(opts.out)


if __name__ == "__main__":
    main()
