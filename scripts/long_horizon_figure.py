"""Figure of a `benchmarks/long_horizon.py evidence` report: DMFT (±2 SE band) against the
seed-averaged gradient descent (mean ± 2 SE of the mean) at each D.

    python scripts/long_horizon_figure.py docs/results/data/long_horizon_alpha3_N2.json \
        docs/figures/long_horizon_alpha3_N2.png
"""

from __future__ import annotations

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report")
    parser.add_argument("figure")
    opts = parser.parse_args()
    report = json.load(open(opts.report))
    t = np.array(report["t"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for ax, field in zip(axes, ("train", "test")):
        curve = np.array(report[f"dmft_{field}"])
        sem = report.get(f"dmft_{field}_sem")
        ax.plot(t, curve, "k-", label=f"DMFT (S={report['samples']})")
        if sem is not None:
            sem = np.array(sem)
            ax.fill_between(t, curve - 2 * sem, curve + 2 * sem, color="k", alpha=0.2, lw=0, label="DMFT ±2 SE")
        for (dim, entry), colour in zip(report["dims"].items(), ("C0", "C3", "C2")):
            mean, spread = np.array(entry[field]["mean"]), np.array(entry[field]["spread"])
            seeds = report.get("seeds", 4)
            n = seeds if isinstance(seeds, int) else len(seeds)
            ax.plot(t, mean, color=colour, lw=1, label=f"GD D={dim}, mean of {n} seeds")
            ax.fill_between(t, mean - 2 * spread / np.sqrt(n), mean + 2 * spread / np.sqrt(n), color=colour,
                            alpha=0.15, lw=0)
        ax.set_xlabel("t = lr·step/D")
        ax.set_ylabel(f"{field} loss")
        ax.set_title(f"{field} loss")
        ax.legend(fontsize=8)
    p = report["problem"]
    fig.suptitle(f"alpha=P/D={p['alpha']:g}, scale={p['scale']:g}, epsilon={p['epsilon']:g}, N={p['width']}"
                 + (", centred" if p.get("center") else ""))
    fig.tight_layout()
    fig.savefig(opts.figure, dpi=120)


if __name__ == "__main__":
    main()
