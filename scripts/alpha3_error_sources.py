"""Where the Monte Carlo error of the α = 3 test loss comes from (docs/results/long_horizon.md,
"Session 23"; issue deliverable 5).

Every experiment solves α = 3, κ = 1, ε = 0.25, N = 2 (the default log grid to ``--t-max``, no
error replicas) once per solver seed and reports, at a few times, the spread of the test loss
over the seeds: relative standard deviation (with its own standard error, sd/√(2(n−1))) and a
robust one (1.4826·MAD/median), because the outcomes at small S have outliers.

    PYTHONPATH=. python scripts/alpha3_error_sources.py estimators --samples 8192 --seeds 8
        the probe estimator of R_g against the exact per-sample recursion (same samples)
    PYTHONPATH=. python scripts/alpha3_error_sources.py parts --samples 4096 --factor 8 --seeds 8
        one part of the data-side estimate (R_g, C_g, r*) taken from an independent stream of
        factor·S samples at the same iterate, the rest from the S samples ("none": the baseline
        with the same settings); --factor 1 decouples the part without adding samples
    PYTHONPATH=. python scripts/alpha3_error_sources.py frozen --samples 8192 --big 131072 --t-freeze 10
        the block t, s ≤ t_freeze of every estimate taken from a converged solve of [0, t_freeze]
        with --big samples (errors injected early made small)

The ``parts`` and ``frozen`` experiments replace :func:`dmft.dmft_solver.estimate_data_side` inside
this process by a wrapper (a diagnostic: the package has no such option). Each solve runs every
window at S (``warmup_samples = S``) so that the wrapper sees one sample size.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np

import dmft
import dmft.dmft_solver as solver
from dmft.solve import make_grid

PROBLEM = dict(alpha=3.0, epsilon=0.25)
REPORT_TIMES = (5.0, 10.0, 20.0, 30.0, 40.0, 60.0)
PARTS = ("response", "cov_g", "r_star")


def spread(curves: np.ndarray, t: np.ndarray) -> list[dict]:
    """Seed statistics of ``curves`` (seeds, T) at the report times."""
    rows = []
    n = curves.shape[0]
    for time_point in REPORT_TIMES:
        if time_point > t[-1] + 1e-9:
            continue
        values = curves[:, int(np.argmin(np.abs(t - time_point)))]
        mean, sd = values.mean(), values.std(ddof=1)
        median = np.median(values)
        rows.append(dict(t=time_point, mean=mean, rel_sd=sd / mean, rel_sd_se=sd / mean / np.sqrt(2 * (n - 1)),
                         robust_rel_sd=1.4826 * np.median(np.abs(values - median)) / median,
                         values=values.round(4).tolist()))
    return rows


def print_spread(label: str, rows: list[dict], seconds: float) -> None:
    print(f"{label}  ({seconds:.1f} s per solve)")
    for row in rows:
        print(f"  t = {row['t']:4.0f}: test {row['mean']:.4f}, relative sd {100 * row['rel_sd']:5.1f} "
              f"± {100 * row['rel_sd_se']:4.1f} %, robust {100 * row['robust_rel_sd']:5.1f} %")


def run(label: str, seeds: int, t_max: float, samples: int, before=None, **options) -> dict:
    curves, seconds, failed = [], [], []
    for seed in range(seeds):
        if before is not None:
            before(seed)
        start = time.perf_counter()
        result = dmft.solve(**PROBLEM, t_max=t_max, samples=samples, error_replicas=0, seed=seed, **options)
        if not result.converged:
            failed.append(seed)            # reported, left out of the statistics
            continue
        seconds.append(time.perf_counter() - start)
        curves.append(result.test_loss)
        t = result.t
    rows = spread(np.array(curves), t)
    if failed:
        label += f" (seeds {failed} did not converge, left out)"
    print_spread(label, rows, float(np.mean(seconds)))
    return dict(label=label, rows=rows, seconds=float(np.mean(seconds)), failed=failed)


def estimators(args) -> list[dict]:
    return [run(f"response={method}, S={args.samples}", args.seeds, args.t_max, args.samples, response=method)
            for method in ("probe", "exact")]


def _wrap(replace):
    """Install ``replace(estimate, arguments) -> estimate`` around the solver's data-side estimate."""
    original = solver.estimate_data_side

    def wrapped(cov_w, overlap, chi, **kwargs):
        return replace(original(cov_w, overlap, chi, **kwargs), original, (cov_w, overlap, chi), kwargs)

    solver.estimate_data_side = wrapped
    return original


def parts(args) -> list[dict]:
    results = []
    for part in ("none",) + PARTS:
        def replace(estimate, original, state, kwargs, part=part):
            if part == "none":
                return estimate
            stream = tuple(np.atleast_1d(kwargs["seed"]).tolist()) + (77,)       # a stream the solve never uses
            other = dict(kwargs, samples=args.factor * kwargs["samples"], seed=stream, workspace=None)
            return dataclasses.replace(estimate, **{part: getattr(original(*state, **other), part)})

        original = _wrap(replace)
        try:
            label = "baseline" if part == "none" else f"{part} from {args.factor}·S independent samples"
            results.append(run(f"{label}, S={args.samples}", args.seeds,
                               args.t_max, args.samples, warmup_samples=args.samples))
        finally:
            solver.estimate_data_side = original
    return results


def frozen(args) -> list[dict]:
    times = make_grid(t_max=args.t_max, grid="log")
    points = int(np.searchsorted(times, args.t_freeze + 1e-9))
    store: dict = {}

    def replace(estimate, original, state, kwargs):
        steps = state[1].shape[0]
        if steps == points and kwargs["samples"] == args.big:
            store["last"] = estimate
        early = store.get("frozen")
        if early is None or steps <= points:
            return estimate
        fields = {}
        for name in ("response", "cov_g"):
            value = getattr(estimate, name).copy()
            value[:points, :points] = getattr(early, name)
            fields[name] = value
        for name in ("r_star", "train_loss"):
            value = getattr(estimate, name).copy()
            value[:points] = getattr(early, name)
            fields[name] = value
        return dataclasses.replace(estimate, **fields)

    def before(seed):
        store.clear()
        dmft.solve(**PROBLEM, times=times[:points], samples=args.big, error_replicas=0, seed=seed + 100,
                   warmup_samples=args.big // 8)
        store["frozen"] = store["last"]

    original = _wrap(replace)
    try:
        return [run(f"t <= {args.t_freeze:g} from S={args.big}, the rest S={args.samples}", args.seeds, args.t_max,
                    args.samples, before=before, times=times)]
    finally:
        solver.estimate_data_side = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=("estimators", "parts", "frozen"))
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--t-max", type=float, default=40.0)
    parser.add_argument("--factor", type=int, default=8, help="parts: samples of the independent stream / S")
    parser.add_argument("--big", type=int, default=131072, help="frozen: samples of the early window's solve")
    parser.add_argument("--t-freeze", type=float, default=10.0, help="frozen: end of the early window")
    parser.add_argument("--json", help="write the statistics here")
    args = parser.parse_args()
    results = {"estimators": estimators, "parts": parts, "frozen": frozen}[args.experiment](args)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(dict(arguments=vars(args), results=results), handle, indent=1)


if __name__ == "__main__":
    main()
