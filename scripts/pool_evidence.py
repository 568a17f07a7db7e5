"""Pool several `benchmarks/long_horizon.py evidence` reports of one problem: the offset of each
group of seeds (one D, one simulator) from the DMFT, and of all seeds together, over time.

    python scripts/pool_evidence.py docs/results/data/long_horizon_centred_kappa4_t150_D4000.json \
        docs/results/data/long_horizon_centred_kappa4_t150_D8000_gpu.json --figure offsets.png

Every report must hold the same DMFT curves on the same grid (the first report's are used) and
simulations recorded with the same time step. The DMFT is compared at the simulations' recording
times t_sim = round(t / step)·step (cubic spline), as the evidence benchmark does.

Offsets are (seed mean − DMFT) / L0 with L0 the DMFT's initial test loss. The pooled offset is the
plain mean over all seed curves, whatever their D (unbiased for the D → ∞ curve up to the finite-D
corrections, which these groups show to be smaller than their noise); its standard error is
√(Σ_g n_g s_g²) / Σ_g n_g with s_g each group's seed standard deviation, combined with the DMFT's
replica standard error. Printed: a table at chosen times, and the largest |offset| / combined SE
for t ≥ ``--from`` (default 1: before t ≈ 1 the time discretisation of both the DMFT's first
step and the gradient-descent step is larger than either Monte Carlo error; see
docs/results/long_horizon.md, session 16).

``--dmft FILE KEY [KEY ...]`` replaces the reports' DMFT by the inverse-variance mean of the named
solves of FILE (a ``scripts/long_horizon_samples.py`` output: ``{key: {t, train, test, train_sem,
test_sem}}``), cubic-spline interpolated onto the reports' grid; the solves must be independent
(different solver seeds), since their standard errors are combined as such.

``--merge OUT`` writes the reports' seeds as one report (same problem, DMFT, time step, simulator
and D; each seed once): the per-seed curves of all of them, their mean and standard deviation.
`benchmarks/long_horizon.py evidence --sims OUT --theory ... --json OUT` then fills in its sup
deviations. Runs of a few seeds each (one per process, so that a cut-off loses one seed at most)
become the report the criterion scripts read.

``--split K`` cuts each group into runs of K consecutive seeds and says how far the runs' means
stray from the pooled mean in their own standard errors, against Student's t with K − 1 degrees
of freedom (an upper reference: the pooled mean contains each run, which narrows the spread by
√(1 − K/n)). It tells whether groups of a few seeds can be trusted at their own error bars.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy.interpolate import CubicSpline


def _groups(report, default_seeds, split=None):
    """(label, {field: (seeds, mean, variance over seeds)}) for each D of one report, or for each
    run of ``split`` consecutive seeds of it. Reports older than session 15 keep only the mean and
    spread: their number of seeds is ``default_seeds`` unless they recorded it (never split)."""
    for dim, entry in report["dims"].items():
        simulator = report.get("simulator", "numpy")
        curves = entry.get("seed_curves")
        if curves is None:
            n = int(report.get("seeds") or default_seeds)
            yield (f"D={dim}, {simulator}, seeds {report.get('first_seed', 0)}+",
                   {f: (n, np.array(entry[f]["mean"]), np.array(entry[f]["spread"]) ** 2) for f in ("train", "test")})
            continue
        names = list(curves["train"])
        size = split if split and len(names) >= 2 * split else len(names)
        for first in range(0, len(names) - size + 1, size):
            chosen = names[first:first + size]
            stats = {}
            for field in ("train", "test"):
                seeds = np.array([curves[field][name] for name in chosen])
                stats[field] = (len(seeds), seeds.mean(0), seeds.var(0, ddof=1))
            yield f"D={dim}, {simulator}, seeds {chosen[0]}–{chosen[-1]}", stats


def pool(reports, time_step, default_seeds=4, split=None):
    """Offsets of each group and of all seeds, in units of L0, at the recording times."""
    first = reports[0]
    t = np.array(first["t"])
    steps = {report.get("time_step") or time_step for report in reports}
    if len(steps) != 1 or None in steps:
        raise SystemExit(f"the reports' time steps differ or are unknown ({steps}): give --time-step")
    step = steps.pop()
    scale = first["dmft_test"][0]
    for report in reports[1:]:
        if not np.allclose(report["t"], t, rtol=0, atol=1e-9):
            raise SystemExit("the reports differ in time grid")
        gap = np.max(np.abs(np.array(report["dmft_test"]) - first["dmft_test"])) / scale
        if gap > 1e-4:
            raise SystemExit(f"the reports hold different DMFT curves ({gap:.1e} of L0 apart)")
    t_sim = np.rint(t / step) * step
    out = {"t": t_sim, "groups": [], "pooled": {}, "dmft_sem": {}}
    groups = [g for report in reports for g in _groups(report, default_seeds, split)]
    for field in ("train", "test"):
        theory = CubicSpline(t, first[f"dmft_{field}"])(t_sim)
        theory_sem = np.interp(t_sim, t, first[f"dmft_{field}_sem"])
        out["dmft_sem"][field] = theory_sem / scale
        for label, stats in groups:
            n, mean, var = stats[field]
            out["groups"].append(dict(label=label, field=field, seeds=n, offset=(mean - theory) / scale,
                                      sem=np.sqrt(var / n) / scale))
        total = sum(stats[field][0] for _, stats in groups)
        mean = sum(stats[field][0] * stats[field][1] for _, stats in groups) / total
        sem = np.sqrt(sum(stats[field][0] * stats[field][2] for _, stats in groups)) / total
        combined = np.hypot(sem, theory_sem)
        out["pooled"][field] = dict(seeds=total, offset=(mean - theory) / scale, sem=sem / scale,
                                    z=np.where(combined > 0, (mean - theory) / np.where(combined > 0, combined, 1), 0))
    return out


def replace_dmft(reports, solves):
    """Put the inverse-variance mean of independent DMFT ``solves`` into every report (in place)."""
    t = np.array(reports[0]["t"])
    for field in ("train", "test"):
        values = np.array([CubicSpline(s["t"], s[field])(t) for s in solves])
        variances = np.array([np.interp(t, s["t"], s[f"{field}_sem"]) ** 2 for s in solves])
        # where every solve has zero error (t = 0) they agree and the plain mean is kept; elsewhere
        # a zero variance would weigh 1/tiny, and several of them overflow the sum
        exact = variances.max(0) == 0
        weights = np.where(exact, 1.0, 1.0 / np.where(exact, 1.0, np.maximum(variances, np.finfo(float).tiny)))
        mean = (weights * values).sum(0) / weights.sum(0)
        sem = np.where(exact, 0.0, 1.0 / np.sqrt(weights.sum(0)))
        for report in reports:
            report[f"dmft_{field}"], report[f"dmft_{field}_sem"] = mean.tolist(), sem.tolist()


def merge_reports(reports):
    """One evidence report holding the seeds of all ``reports`` (the first report's fields; per D,
    the union of the per-seed curves and their mean and standard deviation over the seeds).

    Refuses reports that differ in problem, time grid, time step, simulator or DMFT curves, that
    lack per-seed curves, or that hold a seed twice."""
    first = reports[0]
    for report in reports[1:]:
        for key in ("problem", "time_step", "simulator", "t", "dmft_train", "dmft_test"):
            if report.get(key) != first.get(key):
                raise SystemExit(f"the reports differ in {key}: they are not runs of one evidence setting")
    merged = {key: value for key, value in first.items() if key != "dims"}
    merged["dims"] = {}
    for dim in sorted({dim for report in reports for dim in report["dims"]}, key=int):
        curves = {"train": {}, "test": {}}
        for report in reports:
            entry = report["dims"].get(dim)
            if entry is None:
                continue
            if "seed_curves" not in entry:
                raise SystemExit(f"a report lacks the per-seed curves of D = {dim}: it cannot be merged")
            for field in curves:
                repeated = set(curves[field]) & set(entry["seed_curves"][field])
                if repeated:
                    raise SystemExit(f"seed(s) {sorted(repeated, key=int)} of D = {dim} appear in two reports")
                curves[field].update(entry["seed_curves"][field])
        seeds = sorted(curves["train"], key=int)
        entry = {"seed_curves": {field: {seed: curves[field][seed] for seed in seeds} for field in curves}}
        for field in curves:
            values = np.array([curves[field][seed] for seed in seeds])
            spread = values.std(0, ddof=1) if len(seeds) > 1 else np.full(values.shape[1], np.nan)
            entry[field] = {"mean": values.mean(0).tolist(), "spread": spread.tolist()}
        merged["dims"][dim] = entry
    counts = {len(entry["seed_curves"]["train"]) for entry in merged["dims"].values()}
    merged["seeds"] = counts.pop() if len(counts) == 1 else None
    merged["first_seed"] = min(int(seed) for entry in merged["dims"].values() for seed in entry["seed_curves"]["train"])
    return merged


def _student_tail(x, dof):
    """P(T > x) for Student's t with ``dof`` degrees of freedom."""
    from scipy.stats import t as student

    return float(student.sf(x, dof))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+")
    parser.add_argument("--times", type=float, nargs="+", default=[1, 5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 150])
    parser.add_argument("--from", dest="t_from", type=float, default=1.0,
                        help="the largest |z| is taken over t >= this (theory time)")
    parser.add_argument("--figure", default=None, help="draw the offsets (PNG/PDF)")
    parser.add_argument("--time-step", type=float, default=None,
                        help="GD time step of reports that did not record it (0.04 for the session 9-12 reports)")
    parser.add_argument("--split", type=int, default=None,
                        help="cut each group with per-seed curves into runs of this many seeds, and say how far "
                             "their means stray from the pooled one in their own standard errors")
    parser.add_argument("--dmft", nargs="+", default=None, metavar=("FILE", "KEY"),
                        help="compare with the inverse-variance mean of these independent solves of FILE instead")
    parser.add_argument("--default-seeds", type=int, default=4,
                        help="number of seeds of reports that recorded neither it nor their seed curves")
    parser.add_argument("--merge", default=None, metavar="OUT",
                        help="write the reports' seeds as one report to OUT (see above) and stop")
    opts = parser.parse_args()
    reports = [json.load(open(path)) for path in opts.reports]
    if opts.merge:
        merged = merge_reports(reports)
        with open(opts.merge, "w") as fh:
            json.dump(merged, fh)
        print(f"{opts.merge}: " + ", ".join(f"D = {dim}: seeds {', '.join(entry['seed_curves']['train'])}"
                                            for dim, entry in merged["dims"].items()))
        return
    if opts.dmft:
        if len(opts.dmft) < 2:
            raise SystemExit("--dmft takes a file and at least one key")
        stored = json.load(open(opts.dmft[0]))
        replace_dmft(reports, [stored[key] for key in opts.dmft[1:]])
    result = pool(reports, opts.time_step, opts.default_seeds, opts.split)
    t = result["t"]
    index = [int(np.argmin(np.abs(t - x))) for x in opts.times if x <= t[-1]]
    for field in ("train", "test"):
        print(f"\n{field}: (seed mean - DMFT) / L0 in %, ± SE of the seed mean")
        print("| group | seeds | " + " | ".join(f"t = {t[i]:.1f}" for i in index) + " |")
        print("|---|---|" + "---|" * len(index))
        for g in result["groups"]:
            if g["field"] == field:
                print(f"| {g['label']} | {g['seeds']} | "
                      + " | ".join(f"{100 * g['offset'][i]:+.2f} ± {100 * g['sem'][i]:.2f}" for i in index) + " |")
        p = result["pooled"][field]
        print(f"| pooled | {p['seeds']} | " + " | ".join(f"{100 * p['offset'][i]:+.2f} ± {100 * p['sem'][i]:.2f}"
                                                      for i in index) + " |")
        window = t >= opts.t_from
        if opts.split:
            z = np.array([(g["offset"] - p["offset"])[window] / g["sem"][window]
                          for g in result["groups"] if g["field"] == field])
            print(f"runs of {opts.split} seeds against the pooled mean, in their own SE, t >= {opts.t_from:g}: "
                  f"largest {np.max(np.abs(z)):.2f}; beyond 2: {np.mean(np.abs(z) > 2):.1%}, beyond 3: "
                  f"{np.mean(np.abs(z) > 3):.1%} of (run, time) pairs (Student t with {opts.split - 1} dof: "
                  f"{2 * _student_tail(2.0, opts.split - 1):.1%} and {2 * _student_tail(3.0, opts.split - 1):.1%})")
        j = int(np.flatnonzero(window)[np.argmax(np.abs(p["z"][window]))])
        print(f"pooled {field}: largest |offset| / combined SE for t >= {opts.t_from:g}: {abs(p['z'][j]):.2f} "
              f"at t = {t[j]:.1f} ({100 * p['offset'][j]:+.2f} % of L0)")
    if opts.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
        for ax, field in zip(axes, ("train", "test")):
            for g in result["groups"]:
                if g["field"] == field:
                    line, = ax.plot(t, 100 * g["offset"], lw=1, label=f"{g['label']}, {g['seeds']} seeds (±1 SE)")
                    ax.fill_between(t, 100 * (g["offset"] - g["sem"]), 100 * (g["offset"] + g["sem"]),
                                    color=line.get_color(), alpha=0.15, lw=0)
            p = result["pooled"][field]
            ax.plot(t, 100 * p["offset"], "k", lw=2, label=f"all {p['seeds']} seeds (±2 SE)")
            ax.fill_between(t, 100 * (p["offset"] - 2 * p["sem"]), 100 * (p["offset"] + 2 * p["sem"]),
                            color="k", alpha=0.15, lw=0)
            band = 200 * result["dmft_sem"][field]
            ax.fill_between(t, -band, band, color="tab:orange", alpha=0.35, lw=0, zorder=0,
                            label="DMFT ±2 SE (replicas), around 0")
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_xscale("log")
            ax.set_xlim(0.5, t[-1])
            ax.set_xlabel("t (theory time)")
            ax.set_ylabel(f"{field} loss: (GD seed mean − DMFT) / L0  [%]")
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(opts.figure, dpi=130)
        print(f"saved {opts.figure}")


if __name__ == "__main__":
    main()
