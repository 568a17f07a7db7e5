"""ReLU students at finite α through their Gaussian smoothing (theory.md §10.9, issue 17).

Usage::

    PYTHONPATH=. python scripts/relu_smoothing.py run --widths 0.2 0.1 --alpha 3 --dim 1000 --seeds 8 \
        --t-max 30 --out docs/results/data/relu_smoothing.json
    PYTHONPATH=. python scripts/relu_smoothing.py table docs/results/data/relu_smoothing.json

Model: N = M = 2, κ = κ* = 2, T = I, R(0) = diag(0.1, −0.1), Q(0) planted; teacher ReLU (exact),
student the Gaussian-smoothed ReLU φ_s of width s. For every width s: the finite-α DMFT of φ_s
(solver defaults: S = 32768, 8 error replicas) and gradient descent of the same φ_s student
(``simulate_committee_gd``, P = αD, time step 0.02, ``--seeds`` seeds), which the DMFT must match
as D → ∞; and gradient descent of the exact ReLU student, which the smoothed DMFT approaches as
s → 0 (bias O(s²)). ``table`` prints, at selected times, each DMFT ± s.e., the extrapolation
(4 L_{s/2} − L_s)/3 of the two widths (when they halve), and the seed means ± s.e., with the
deviations in combined standard errors. ``run`` stores every curve in the JSON file stage by stage
(a rerun skips what is there).

The smoothing bias at finite α is O(s), not the O(s²) of the online limit (theory.md §10.9: the
reaction term makes the training fields' density jump at the kink), so the extrapolation to s → 0
is the linear one, L_0 ≈ 2 L_{s/2} − L_s, with standard error √(4 e_{s/2}² + e_s²); ``table``
prints the exponent p of the bias, gap(s)/gap(s/2) = 2^p, measured on gradient descent (the same
seeds for every student, so the differences are precise).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "scripts"))

from committee_dmft import _load, _save  # noqa: E402  (the JSON store of the erf evidence)
from dmft.committee_online import CommitteeModel  # noqa: E402
from dmft.dmft_solver import solve_committee_dmft  # noqa: E402
from dmft.simulate import simulate_committee_gd  # noqa: E402
from dmft.solve import time_grid  # noqa: E402

DT = 0.25
TIME_STEP = 0.02


def model(student: str) -> CommitteeModel:
    return CommitteeModel(activation=student, width=2, target="committee", teacher_width=2, scale=2.0,
                          teacher_scale=2.0, teacher_activation="relu")


def _simulate(data, path, key, student, alpha, dim, seeds, t):
    runs = data.setdefault(key, [])
    for seed in range(len(runs), seeds):
        start = time.perf_counter()
        sim = simulate_committee_gd(model(student), alpha, dim, t, seed=seed, time_step=TIME_STEP)
        runs.append({"train": sim.train_loss.tolist(), "test": sim.test_loss.tolist()})
        _save(path, data)
        print(f"{key} seed {seed}: {time.perf_counter() - start:.1f} s", flush=True)


def run(opts) -> None:
    path = Path(opts.out)
    data = _load(path)
    t = time_grid(opts.t_max, DT)
    data["t"] = t.tolist()
    data["settings"] = {"alpha": opts.alpha, "dim": opts.dim, "time_step": TIME_STEP, "dt": DT, "t_max": opts.t_max,
                        "model": model("relu").as_attrs()}
    for width in opts.widths:
        student = f"smoothed_relu:{width:g}"
        key = f"dmft {student}"
        if key not in data:
            start = time.perf_counter()
            res = solve_committee_dmft(model(student), opts.alpha, t, progress=False)
            data[key] = {"train": res.train_loss.tolist(), "test": res.test_loss.tolist(),
                         "train_sem": res.train_loss_sem.tolist(), "test_sem": res.test_loss_sem.tolist(),
                         "message": res.message, "seconds": time.perf_counter() - start, "converged": res.converged}
            _save(path, data)
            print(f"{key}: {data[key]['seconds']:.0f} s, {res.message}", flush=True)
        _simulate(data, path, f"gd {student} D={opts.dim}", student, opts.alpha, opts.dim, opts.seeds, t)
    _simulate(data, path, f"gd relu D={opts.dim}", "relu", opts.alpha, opts.dim, opts.seeds, t)


def _seed_stats(runs, name):
    values = np.array([r[name] for r in runs])
    return values.mean(0), values.std(0, ddof=1) / math.sqrt(len(values))


def table(opts) -> None:
    data = _load(Path(opts.path))
    t = np.array(data["t"])
    s = data["settings"]
    rows = [int(np.argmin(np.abs(t - x))) for x in opts.times if x <= t[-1] + 1e-9]
    widths = sorted((float(k.split(":")[1]) for k in data if k.startswith("dmft ")), reverse=True)
    print(f"alpha = {s['alpha']}, D = {s['dim']}, GD time step {s['time_step']}; DMFT dt = {s['dt']}\n")
    relu_key = f"gd relu D={s['dim']}"
    relu = {n: _seed_stats(data[relu_key], n) for n in ("train", "test")} if relu_key in data else None
    for name in ("train", "test"):
        header = ["t"]
        for w in widths:
            header += [f"DMFT s={w:g}", f"GD s={w:g}", "dev (s.e.)"]
        if len(widths) == 2 and abs(widths[0] - 2 * widths[1]) < 1e-12:
            header += ["extrapolated s→0 (2L_{s/2} − L_s)"]
        if relu is not None:
            header += [f"GD ReLU ({len(data[relu_key])} seeds)", "extrap. dev (s.e.)"]
        print(f"{name} loss\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for i in rows:
            cells = [f"{t[i]:g}"]
            dm = {}
            for w in widths:
                d = data[f"dmft smoothed_relu:{w:g}"]
                value, sem = d[name][i], d[f"{name}_sem"][i]
                dm[w] = (value, sem)
                mean, se = _seed_stats(data[f"gd smoothed_relu:{w:g} D={s['dim']}"], name)
                cells += [f"{value:.4f} ± {sem:.4f}", f"{mean[i]:.4f} ± {se[i]:.4f}",
                          f"{(value - mean[i]) / math.hypot(sem, se[i]):+.1f}"]
            halving = len(widths) == 2 and abs(widths[0] - 2 * widths[1]) < 1e-12
            if halving:
                (v1, e1), (v2, e2) = dm[widths[0]], dm[widths[1]]
                extrap, extrap_se = 2 * v2 - v1, math.hypot(2 * e2, e1)
                cells += [f"{extrap:.4f} ± {extrap_se:.4f}"]
            if relu is not None:
                mean, se = relu[name]
                cells += [f"{mean[i]:.4f} ± {se[i]:.4f}"]
                if halving:
                    cells += [f"{(extrap - mean[i]) / math.hypot(extrap_se, se[i]):+.1f}"]
                else:
                    cells += ["–"]
            print("| " + " | ".join(cells) + " |")
        print()
    if relu is not None and len(widths) == 2:
        print("exponent p of the smoothing bias on gradient descent, gap(s)/gap(s/2) = 2^p:\n")
        print("| t | p (train) | p (test) |\n|---|---|---|")
        gd = {w: {n: _seed_stats(data[f"gd smoothed_relu:{w:g} D={s['dim']}"], n)[0] for n in ("train", "test")}
              for w in widths}
        for i in rows:
            p = [math.log2((relu[n][0][i] - gd[widths[0]][n][i]) / (relu[n][0][i] - gd[widths[1]][n][i]))
                 for n in ("train", "test")]
            print(f"| {t[i]:g} | {p[0]:.2f} | {p[1]:.2f} |")
        print()
    for w in widths:
        d = data[f"dmft smoothed_relu:{w:g}"]
        print(f"DMFT s={w:g}: {d['seconds']:.0f} s, {d['message']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--widths", type=float, nargs="+", default=[0.2, 0.1])
    r.add_argument("--alpha", type=float, default=3.0)
    r.add_argument("--dim", type=int, default=1000)
    r.add_argument("--seeds", type=int, default=8)
    r.add_argument("--t-max", type=float, default=30.0)
    r.add_argument("--out", default=str(ROOT / "docs/results/data/relu_smoothing.json"))
    tb = sub.add_parser("table")
    tb.add_argument("path", nargs="?", default=str(ROOT / "docs/results/data/relu_smoothing.json"))
    tb.add_argument("--times", type=float, nargs="+", default=[1, 2, 5, 10, 20, 30, 60])
    opts = parser.parse_args(argv)
    run(opts) if opts.command == "run" else table(opts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
