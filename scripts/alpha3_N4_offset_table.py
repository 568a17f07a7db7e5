"""Test loss of the α = 3, N = 4 problem (κ = 1, ε = 0.25, m(0) = ±0.2) at fixed times: seed means
of gradient descent at D = 4000 and 8000 against DMFT solves on several time grids and sample sizes
(docs/results/long_horizon.md, "Session 25"). Every curve is interpolated (cubic spline) to the same
times; the simulations at their recording times t_sim = round(t / step)·step.

    python scripts/alpha3_N4_offset_table.py [--extra-sims REPORT ...]

Prints a Markdown table: mean ± standard error of the seed mean (GD), value ± replica standard
error (DMFT), and the mean of seven independent DMFT solves ± the standard error from their
spread. ``--extra-sims`` adds evidence reports as their own rows (e.g. another GD step).
"""
import argparse
import json

import numpy as np
from scipy.interpolate import CubicSpline

DATA = "docs/results/data/"
SIMULATIONS = ["long_horizon_alpha3_N4_D4000_seeds0to3_S262144.json", "long_horizon_alpha3_N4_D4000_seeds4to15_S262144.json",
               "long_horizon_alpha3_N4_D8000_gpu_S262144.json", "long_horizon_alpha3_N4_D8000_seeds5to11_S262144.json"]
SOLVES = {"log grid (125 points), S = 262144": "theory_s24_alpha3_N4_t60_S262144.json",
          "log grid (125 points), S = 32768": "theory_s15_alpha3_N4_t60.json",
          "uniform dt = 1, S = 131072": "theory_s25_alpha3_N4_t20_uniform_dt1.0_S131072.json",
          "uniform dt = 0.5, S = 131072": "theory_s25_alpha3_N4_t20_uniform_dt0.5_S131072.json",
          "uniform dt = 0.25, S = 131072": "theory_s25_alpha3_N4_t20_uniform_dt0.25_S131072.json"}
#: Seven solves with seeds 0–6 (their spread gives the error of their mean, independent of the
#: replica error bars; the ratio spread / replica SE is printed too).
INDEPENDENT = "theory_s25_alpha3_N4_t20_dt0.25_S65536_seeds0to6.json"
TIMES = (1, 2, 5, 10, 15, 20)


def seed_curves(path):
    """{D: [spline of each seed's test loss]} of one evidence report."""
    with open(path) as fh:
        report = json.load(fh)
    if "time_step" not in report:
        raise SystemExit(f"{path}: the report does not record the simulations' time_step")
    step = report["time_step"]
    t_sim = np.rint(np.asarray(report["t"]) / step) * step
    return {int(dim): [CubicSpline(t_sim, curve) for curve in entry["seed_curves"]["test"].values()]
            for dim, entry in report["dims"].items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extra-sims", nargs="*", default=[])
    opts = parser.parse_args()
    rows = []
    pooled = {}
    for name in SIMULATIONS:
        for dim, curves in seed_curves(DATA + name).items():
            pooled.setdefault(dim, []).extend(curves)
    groups = [(f"GD D = {dim}, step 0.04", curves) for dim, curves in sorted(pooled.items())]
    groups += [(f"GD D = {dim}, {path}", curves) for path in opts.extra_sims for dim, curves in seed_curves(path).items()]
    for label, curves in groups:
        values = np.array([[float(c(x)) for x in TIMES] for c in curves])
        se = values.std(0, ddof=1) / np.sqrt(len(values))
        rows.append(f"| {label} ({len(values)} seeds) | " + " | ".join(f"{m:.4f} ± {s:.4f}" for m, s in zip(values.mean(0), se)) + " |")
    for label, name in SOLVES.items():
        with open(DATA + name) as fh:
            solve = json.load(fh)
        value, error = CubicSpline(solve["t"], solve["test_loss"]), CubicSpline(solve["t"], solve["test_loss_sem"])
        rows.append(f"| DMFT {label} | " + " | ".join(
            f"{float(value(x)):.4f} ± {float(error(x)):.4f}" if x <= solve["t"][-1] else "—" for x in TIMES) + " |")
    with open(DATA + INDEPENDENT) as fh:
        solves = json.load(fh)["solves"]
    values = np.array([[float(CubicSpline(s["t"], s["test_loss"])(x)) for x in TIMES] for s in solves.values()])
    errors = np.array([[float(CubicSpline(s["t"], s["test_loss_sem"])(x)) for x in TIMES] for s in solves.values()])
    spread = values.std(0, ddof=1)
    rows.append(f"| DMFT uniform dt = 0.25, S = 65536, mean of {len(values)} independent solves | " + " | ".join(
        f"{m:.4f} ± {e:.4f}" for m, e in zip(values.mean(0), spread / np.sqrt(len(values)))) + " |")
    print("| test loss | " + " | ".join(f"t = {x}" for x in TIMES) + " |")
    print("|---|" + "---|" * len(TIMES))
    print("\n".join(rows))
    print("\nindependent solves: seed standard deviation / mean replica standard error at those times: "
          + ", ".join(f"{r:.2f}" for r in spread / errors.mean(0)))


if __name__ == "__main__":
    main()
