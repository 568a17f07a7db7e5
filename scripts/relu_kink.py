"""Training points stuck on ReLU's kink: evidence for sliding (Filippov) motion at finite alpha.

Full-batch gradient descent of the ReLU committee of general_models.md §10 (N = M = 2, κ = κ* = 2,
ReLU teacher, α = 3) at several step sizes. At each recording time it measures, for the training
preactivations h_iμ = w_i·x_μ and for fresh test inputs,

* the fraction of pairs (i, μ) with |h_iμ| < τ, and the Gaussian expectation 2τ p_i(0) of the
  marginal N(0, Q_ii) that test inputs follow;
* the fraction of training pairs whose sign changed at least twice in the last ``window`` steps
  (chattering across the kink, the discrete image of sliding), and among them the fraction whose
  sample is over-predicted (Δ = y − f < 0): sliding is possible only there (theory.md §10.11),
  against the same fraction over all pairs.

If the training excess over the test fraction stays finite as the step size goes to 0 (and as D grows),
gradient flow holds a finite mass of training points on the kink: the data-side process of the DMFT
is then a differential inclusion (theory.md §10.7), which is why the finite-alpha solver refuses the
exact ReLU. Means and standard errors are over seeds.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/relu_kink.py run --dim 1000 --seeds 4
    PYTHONPATH=. python scripts/relu_kink.py table
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from dmft.committee_online import CommitteeModel
from dmft.simulate import committee_gd_data

DATA = Path(__file__).resolve().parent.parent / "docs" / "results" / "data" / "relu_kink.json"
TAUS = (1e-4, 1e-3, 1e-2)


def model() -> CommitteeModel:
    return CommitteeModel(activation="relu", width=2, target="committee", teacher_width=2, scale=2.0,
                          teacher_scale=2.0, teacher_activation="relu")


def kink_statistics(alpha: float, dim: int, time_step: float, times, seed: int, *, window: int = 50,
                    n_test: int = 4000) -> dict:
    """Kink masses of training and test preactivations along one gradient-descent run."""
    mod = model()
    B, W, X, y = committee_gd_data(mod, alpha, dim, seed)
    X_test = np.random.default_rng([seed, 1]).standard_normal((n_test, dim)) / math.sqrt(dim)
    P, N, kappa = X.shape[0], mod.width, mod.scale
    lr0 = time_step * dim
    record = np.rint(np.asarray(times) / time_step).astype(int)
    step, out = 0, {"train": [], "test": [], "gauss": [], "chatter": [], "chatter_over": [], "over": []}
    sign_changes = np.zeros((P, N), dtype=np.int64)
    H = X @ W.T
    for target in record:
        while step < target:
            residual = y - kappa / N * np.maximum(H, 0.0).sum(axis=1)
            W = W + lr0 * (2.0 / (kappa * P)) * ((residual[:, None] * (H > 0)).T @ X)
            H_new = X @ W.T
            if target - step <= window:
                sign_changes += (H_new > 0) != (H > 0)
            H = H_new
            step += 1
        q = np.sqrt(np.diag(W @ W.T) / dim)
        H_test = X_test @ W.T
        out["train"].append([float(np.mean(np.abs(H) < tau)) for tau in TAUS])
        out["test"].append([float(np.mean(np.abs(H_test) < tau)) for tau in TAUS])
        out["gauss"].append([float(np.mean(2.0 * tau / (math.sqrt(2.0 * math.pi) * q))) for tau in TAUS])
        chattering = sign_changes >= 2
        over = np.broadcast_to((y - kappa / N * np.maximum(H, 0.0).sum(axis=1) < 0)[:, None], H.shape)
        out["chatter"].append(float(np.mean(chattering)))
        out["chatter_over"].append(float(np.mean(over[chattering])) if chattering.any() else float("nan"))
        out["over"].append(float(np.mean(over)))
        sign_changes[:] = 0
    return out


def run(opts) -> None:
    data = json.loads(DATA.read_text()) if DATA.exists() else {}
    data["settings"] = {"alpha": opts.alpha, "times": opts.times, "taus": list(TAUS), "window": 50,
                        "model": model().as_attrs()}
    for time_step in opts.steps:
        key = f"D={opts.dim} dt={time_step:g}"
        runs = data.setdefault(key, [])
        for seed in range(len(runs), opts.seeds):
            start = time.perf_counter()
            runs.append(kink_statistics(opts.alpha, opts.dim, time_step, opts.times, seed))
            DATA.write_text(json.dumps(data, indent=1))
            print(f"{key} seed {seed}: {time.perf_counter() - start:.1f} s", flush=True)


def table(opts) -> None:
    data = json.loads(DATA.read_text())
    times = data["settings"]["times"]
    lines = ["| run | t | train − test, τ=1e-4 | τ=1e-3 | τ=1e-2 | test / Gauss, τ=1e-3 | chattering | Δ<0: chattering / all |",
             "|---|---|---|---|---|---|---|---|"]
    for key, runs in data.items():
        if key == "settings":
            continue
        train, test, gauss = (np.array([r[k] for r in runs]) for k in ("train", "test", "gauss"))
        chatter = np.array([r["chatter"] for r in runs])
        excess = train - test
        n = len(runs)
        for j, t in enumerate(times):
            cells = [f"{excess[:, j, a].mean():.4f} ± {excess[:, j, a].std(ddof=1) / math.sqrt(n):.4f}" for a in range(3)]
            ratio = test[:, j, 1].mean() / gauss[:, j, 1].mean()
            lines.append(f"| {key} ({n} seeds) | {t:g} | " + " | ".join(cells)
                         + f" | {ratio:.2f} | {chatter[:, j].mean():.4f} ± {chatter[:, j].std(ddof=1) / math.sqrt(n):.4f}"
                         + f" | {np.nanmean([r['chatter_over'][j] for r in runs]):.3f} / {np.mean([r['over'][j] for r in runs]):.3f} |")
    print("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("--alpha", type=float, default=3.0)
    p.add_argument("--dim", type=int, default=1000)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=float, nargs="+", default=[0.02, 0.01, 0.005])
    p.add_argument("--times", type=float, nargs="+", default=[5.0, 10.0, 20.0, 30.0])
    sub.add_parser("table")
    opts = parser.parse_args(argv)
    run(opts) if opts.command == "run" else table(opts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
