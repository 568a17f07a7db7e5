"""Finite-α DMFT of the erf soft committee against seed-averaged gradient descent (issue 17).

Usage::

    PYTHONPATH=. python scripts/committee_dmft.py run --alphas 3 10 --dims 1000 2000 --seeds 8 \
        --t-max 60 --out docs/results/data/committee_erf_N2M2.json
    PYTHONPATH=. python scripts/committee_dmft.py table docs/results/data/committee_erf_N2M2.json

Model: student f = (κ/N) Σ_i erf(w_i·x/√2), teacher y = (κ*/M) Σ_m erf(β_m·x/√2), N = M = 2,
κ = κ* = 2, T = I, R(0) = diag(0.1, −0.1), Q(0) planted (= I). DMFT: ``solve_committee_dmft`` on
the uniform grid dt = 0.25 with its default settings (S = 32768, 8 error replicas). Simulation:
``simulate_committee_gd`` (full-batch GD, time step 0.02, P = αD), ``--seeds`` seeds per (α, D).
``run`` stores every curve in the JSON file (stage by stage: a rerun skips what is there);
``table`` prints, at selected times, DMFT ± s.e. and seed mean ± s.e. of train and test loss and
the deviation in combined standard errors; ``steps`` measures, on the fast early fall (t ≤ 5), how
much of the deviation is the gradient-descent step (time steps 0.02, 0.01, 0.005, same seeds,
Richardson extrapolation to gradient flow) and how much the DMFT grid (dt = 0.25 against 0.125):

    PYTHONPATH=. python scripts/committee_dmft.py steps docs/results/data/committee_erf_N2M2.json --alpha 10 --dim 1000

``run --center`` does the same for the centred predictor f(·; W) − f(·; W(0)) (theory.md §10.10):

    PYTHONPATH=. python scripts/committee_dmft.py run --center --alphas 3 --dims 1000 2000 --seeds 8 \
        --t-max 60 --out docs/results/data/committee_erf_N2M2_centred.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dmft.committee_online import CommitteeModel, solve_committee_online  # noqa: E402
from dmft.dmft_solver import solve_committee_dmft  # noqa: E402
from dmft.simulate import simulate_committee_gd  # noqa: E402
from dmft.solve import time_grid  # noqa: E402

DT = 0.25
TIME_STEP = 0.02


def model(center: bool = False) -> CommitteeModel:
    return CommitteeModel(activation="erf", width=2, target="committee", teacher_width=2, scale=2.0,
                          teacher_scale=2.0, center=center)


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _save(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def run(opts) -> None:
    path = Path(opts.out)
    data = _load(path)
    t = time_grid(opts.t_max, DT)
    data.setdefault("settings", {"t_max": opts.t_max, "dt": DT, "time_step": TIME_STEP,
                                 "model": model(opts.center).as_attrs()})
    if "online" not in data:
        online = solve_committee_online(model(opts.center), t)
        data["online"] = {"t": t.tolist(), "loss": online.test_loss.tolist()}
        _save(path, data)
    for alpha in opts.alphas:
        key = f"dmft_alpha{alpha:g}"
        if key not in data:
            start = time.perf_counter()
            curves = solve_committee_dmft(model(opts.center), alpha, t, progress=False)
            data[key] = {"t": curves.t.tolist(), "train": curves.train_loss.tolist(),
                         "test": curves.test_loss.tolist(),
                         "train_sem": curves.train_loss_sem.tolist(), "test_sem": curves.test_loss_sem.tolist(),
                         "message": curves.message, "seconds": time.perf_counter() - start}
            print(f"{key}: {curves.message} ({data[key]['seconds']:.0f} s)", flush=True)
            _save(path, data)
        for dim in opts.dims:
            key = f"gd_alpha{alpha:g}_D{dim}"
            runs = data.setdefault(key, {})
            for seed in range(opts.seeds):
                if str(seed) in runs:
                    continue
                start = time.perf_counter()
                sim = simulate_committee_gd(model(opts.center), alpha, dim, t, seed=seed, time_step=TIME_STEP)
                runs[str(seed)] = {"train": sim.train_loss.tolist(), "test": sim.test_loss.tolist()}
                print(f"{key} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
                _save(path, data)


def table(opts) -> None:
    data = _load(Path(opts.path))
    times = [float(x) for x in opts.times]
    t = np.array(data["online"]["t"])
    idx = [int(np.argmin(np.abs(t - x))) for x in times]
    online = np.array(data["online"]["loss"])
    for key in sorted(k for k in data if k.startswith("dmft_alpha")):
        alpha = key[len("dmft_alpha"):]
        theory = data[key]
        print(f"\n### α = {alpha}: DMFT {theory['seconds']:.0f} s, {theory['message']}\n")
        dims = sorted(int(k.split("_D")[1]) for k in data if k.startswith(f"gd_alpha{alpha}_D"))
        header = "| t | online | DMFT train | DMFT test |"
        for dim in dims:
            header += f" GD train D={dim} | GD test D={dim} | dev train/test (s.e.) |"
        print(header)
        print("|" + "---|" * (header.count("|") - 1))
        for i in idx:
            row = (f"| {t[i]:g} | {online[i]:.4f} | {theory['train'][i]:.4f} ± {theory['train_sem'][i]:.4f} "
                   f"| {theory['test'][i]:.4f} ± {theory['test_sem'][i]:.4f} |")
            for dim in dims:
                runs = data[f"gd_alpha{alpha}_D{dim}"]
                devs = []
                for field in ("train", "test"):
                    sims = np.array([r[field] for r in runs.values()])
                    mean, se = sims[:, i].mean(), sims[:, i].std(ddof=1) / math.sqrt(len(sims))
                    combined = math.hypot(se, theory[f"{field}_sem"][i])
                    devs.append((theory[field][i] - mean) / combined if combined > 0 else 0.0)
                    row += f" {mean:.4f} ± {se:.4f} |"
                row += f" {devs[0]:+.1f} / {devs[1]:+.1f} |"
            print(row)
        # sup over the whole window, in combined standard errors and in units of the initial loss
        for dim in dims:
            runs = data[f"gd_alpha{alpha}_D{dim}"]
            for first in (0.0, 5.0):
                window = t >= first
                line = f"\nsup over {first:g} ≤ t ≤ {t[-1]:g}, D = {dim} ({len(runs)} seeds):"
                for field in ("train", "test"):
                    sims = np.array([r[field] for r in runs.values()])[:, window]
                    mean = sims.mean(0)
                    se = sims.std(0, ddof=1) / math.sqrt(len(sims))
                    combined = np.hypot(se, np.array(theory[f"{field}_sem"])[window])
                    dev = np.array(theory[field])[window] - mean
                    z = np.where(combined > 0, dev / np.where(combined > 0, combined, 1.0), 0.0)
                    k = int(np.argmax(np.abs(dev)))
                    line += (f" {field} |dev| {abs(dev[k]):.4f} = {abs(dev[k]) / online[0] * 100:.2f} % of L0 at "
                             f"t = {t[window][k]:g} ({z[k]:+.1f} s.e.), max |z| {np.abs(z).max():.1f};")
                print(line)


def steps(opts) -> None:
    data = _load(Path(opts.path))
    center = bool(data["settings"]["model"].get("center", False))
    theory = data[f"dmft_alpha{opts.alpha:g}"]
    t = time_grid(5.0, DT)
    n = t.size
    L0 = theory["test"][0]
    runs = {}
    for step in (0.02, 0.01, 0.005):
        sims = [simulate_committee_gd(model(center), opts.alpha, opts.dim, t, seed=s, time_step=step) for s in range(opts.seeds)]
        runs[step] = {f: np.array([getattr(r, f) for r in sims]) for f in ("train_loss", "test_loss")}
    print(f"α = {opts.alpha:g}, D = {opts.dim}, {opts.seeds} seeds, t ≤ 5: sup_t |seed mean − DMFT| in % of L0")
    for field, key in (("train_loss", "train"), ("test_loss", "test")):
        dmft_curve = np.array(theory[key][:n])
        line = f"  {field}:"
        for step, curves in runs.items():
            dev = np.abs(curves[field].mean(0) - dmft_curve)
            line += f" step {step:g}: {dev.max() / L0 * 100:.3f} (t = {t[int(np.argmax(dev))]:g});"
        flow = 2 * runs[0.005][field].mean(0) - runs[0.01][field].mean(0)       # error ∝ step
        dev = np.abs(flow - dmft_curve)
        k = int(np.argmax(dev))
        se = runs[0.005][field].std(0, ddof=1)[k] / math.sqrt(opts.seeds)
        print(line + f" extrapolated to gradient flow: {dev[k] / L0 * 100:.3f} at t = {t[k]:g} "
              f"(seed s.e. {se / L0 * 100:.3f})")
    fine = solve_committee_dmft(model(center), opts.alpha, time_grid(5.0, DT / 2), error_replicas=0)
    coarse = solve_committee_dmft(model(center), opts.alpha, t, error_replicas=0)
    for field in ("train_loss", "test_loss"):
        dev = np.abs(getattr(fine, field)[::2] - getattr(coarse, field))
        print(f"  DMFT grid dt = {DT:g} against {DT / 2:g}, {field}: {dev.max() / L0 * 100:.3f} % of L0 "
              f"at t = {t[int(np.argmax(dev))]:g} (same seed)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--alphas", type=float, nargs="+", default=[3.0, 10.0])
    r.add_argument("--dims", type=int, nargs="+", default=[1000, 2000])
    r.add_argument("--seeds", type=int, default=8)
    r.add_argument("--t-max", type=float, default=60.0)
    r.add_argument("--out", default="docs/results/data/committee_erf_N2M2.json")
    r.add_argument("--center", action="store_true", help="the centred predictor f(W) - f(W(0)) (theory.md §10.10)")
    tb = sub.add_parser("table")
    tb.add_argument("path", nargs="?", default="docs/results/data/committee_erf_N2M2.json")
    tb.add_argument("--times", nargs="+", default=["1", "2", "5", "10", "20", "40", "60"])
    st = sub.add_parser("steps")
    st.add_argument("path", nargs="?", default="docs/results/data/committee_erf_N2M2.json")
    st.add_argument("--alpha", type=float, default=10.0)
    st.add_argument("--dim", type=int, default=1000)
    st.add_argument("--seeds", type=int, default=4)
    opts = parser.parse_args()
    {"run": run, "table": table, "steps": steps}[opts.command](opts)


if __name__ == "__main__":
    main()
