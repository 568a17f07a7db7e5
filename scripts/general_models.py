"""Numbers of docs/results/general_models.md: the online theory for general activations.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/general_models.py [--seeds 10] [--dim 1000]

Prints markdown tables (≈ 5 minutes on one core):

1. the committee ODE against autograd gradient flow of the exact D = 24 population loss, every
   activation, committee and square targets (the reference implementations live in
   tests/test_committee_online.py and are imported from there);
2. the unspecialised plateau of the erf soft committee machine (K = 2, 3, 4): closed form, an
   independent root of the symmetric reduced equations, loss level against Saad–Solla's;
3. escape times from the plateau against log(1/δ) and the unstable eigenvalue;
4. online SGD at finite η₀ against a finite-D simulation (erf, K = 2), seed mean ± s.e.;
5. the same for the quadratic student with the square target and for tanh;
6. (``--only d-scaling``, ≈ 3 min) the quadratic model's SGD deviation against D.
"""

from __future__ import annotations

import argparse
import math
import zlib
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import fsolve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from dmft import activations as act  # noqa: E402
from dmft.committee_online import CommitteeModel, committee_loss, committee_rates, solve_committee_online  # noqa: E402
import test_committee_online as ref  # noqa: E402


def autograd_table() -> None:
    print("## 1. ODE vs autograd population gradient flow (D = 24, N = 2, t ∈ [0, 2])\n")
    print("| activation | target | max abs err R | max abs err Q | max rel err loss | seconds |")
    print("|---|---|---|---|---|---|")
    for target in ("committee", "square"):
        for name in ref.ACTIVATIONS:
            if target == "square" and name == "relu":
                continue
            rng = np.random.default_rng(zlib.crc32(f"{name}-{target}".encode()))
            d, n = 24, 2
            phi = ref._sin() if name == "sin" else act.get_activation(name, epsilon=0.6)
            M = 2 if target == "committee" else 1
            W0, B = rng.normal(size=(n, d)), rng.normal(size=(M, d))
            T = B @ B.T / d
            kw = dict(activation=phi, scale=1.4, width=n, init_overlap=W0 @ B.T / d, init_cov=W0 @ W0.T / d)
            if target == "committee":
                model = CommitteeModel(target="committee", teacher_width=2, teacher_scale=0.9, teacher_cov=T,
                                       noise=0.01, **kw)
            else:
                model = CommitteeModel(target="square", rho=float(T[0, 0]), **kw)
            t = np.linspace(0, 2.0, 5)
            start = time.perf_counter()
            curves = solve_committee_online(model, t)
            W, loss = ref._population_gradient_flow(W0, B, model, t)
            Q = np.einsum("tid,tjd->tij", W, W) / d
            R = np.einsum("tid,nd->tin", W, B) / d
            print(f"| {name} | {target} | {np.abs(curves.extras['overlap_matrix'] - R).max():.1e} "
                  f"| {np.abs(curves.cov - Q).max():.1e} | {np.abs(curves.test_loss / loss - 1).max():.1e} "
                  f"| {time.perf_counter() - start:.1f} |")
    print()


def symmetric_rates(x, K):
    """(dq, dc, dr) of the symmetric unspecialised reduction Q = (q−c)I + c11ᵀ, R = r11ᵀ."""
    q, c, r = x
    Q = (q - c) * np.eye(K) + c * np.ones((K, K))
    R = r * np.ones((K, K))
    dQ, dR = committee_rates(Q, R, ref._scm(K, np.ones((K, K)) / math.sqrt(K * (2 * K - 1))))  # R(0) unused
    return np.array([dQ[0, 0], dQ[0, 1], dR[0, 0]])


def plateau_table() -> dict:
    print("## 2. Unspecialised plateau of the erf soft committee machine (N = M = K, κ = κ* = K, T = I)\n")
    print("| K | root (q, c, r) of the symmetric equations | closed form q = c = 1/(2K−1), r = (K(2K−1))^(−1/2) "
          "| max residual of full ODE at closed form | loss (MSE) | (2K/π)(π/6 − K asin(1/(2K))) "
          "| Saad–Solla ε_g = loss/2 | λ_max | unstable multiplicity |")
    print("|---|---|---|---|---|---|---|---|---|")
    lams = {}
    for K in (2, 3, 4):
        with np.errstate(invalid="ignore"):
            root, info, ier, msg = fsolve(symmetric_rates, [0.5, 0.1, 0.3], args=(K,), full_output=True, xtol=1e-14)
        a = 1 / math.sqrt(K * (2 * K - 1))
        R = a * np.ones((K, K))
        model = ref._scm(K, R)
        dQ, dR = committee_rates(R @ R.T, R, model)
        loss = committee_loss(R @ R.T, R, model)
        ev = np.linalg.eigvals(ref._plateau_jacobian(K)).real
        lam = ev.max()
        lams[K] = lam
        mult = int(np.sum(np.abs(ev - lam) < 1e-6 * lam))
        print(f"| {K} | ({root[0]:.12f}, {root[1]:.12f}, {root[2]:.12f}) | ({1/(2*K-1):.12f}, {1/(2*K-1):.12f}, {a:.12f}) "
              f"| {max(np.abs(dQ).max(), np.abs(dR).max()):.1e} | {loss:.12f} | {ref.plateau_loss(K):.12f} "
              f"| {loss/2:.6f} | {lam:.10f} | {mult} |")
    print()
    return lams


def escape_table(lams) -> None:
    print("## 3. Escape from the plateau: R(0) = a11ᵀ + δ(I − 11ᵀ/K), Q(0) = RRᵀ; t_esc: loss < plateau/2\n")
    print("| K | δ | t_esc |")
    print("|---|---|---|")
    fits = {}
    for K in (2, 3):
        deltas = np.logspace(-3, -9, 7)
        times = np.array([ref.escape_time(K, d) for d in deltas])
        for d, te in zip(deltas, times):
            print(f"| {K} | {d:.0e} | {te:.6f} |")
        slope, icpt = np.polyfit(np.log(1 / deltas), times, 1)
        fits[K] = (slope, icpt, np.diff(times) / np.log(10))
    print()
    print("| K | fitted slope a (t_esc = a log(1/δ) + b) | b | successive-decade slopes | 1/λ_max | rel. diff |")
    print("|---|---|---|---|---|---|")
    for K, (slope, icpt, local) in fits.items():
        print(f"| {K} | {slope:.8f} | {icpt:.4f} | {', '.join(f'{x:.6f}' for x in local)} | {1/lams[K]:.8f} "
              f"| {abs(slope * lams[K] - 1):.1e} |")
    print()


def sgd_table(seeds: int, dim: int) -> None:
    print(f"## 4. Online SGD at finite η₀ vs simulation (erf, K = 2, D = {dim}, {seeds} seeds, mean ± s.e.)\n")
    K = 2
    base = dict(activation="erf", scale=K, width=K, target="committee", teacher_width=K, teacher_scale=K,
                init_overlap=np.array([[0.3, 0.05], [0.0, 0.2]]), init_cov=np.array([[0.5, 0.1], [0.1, 0.4]]))
    t = np.array([0.0, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0])
    flow = solve_committee_online(CommitteeModel(**base), t).test_loss
    for lr, noise in ((0.5, 0.0), (2.0, 0.0), (2.0, 0.05)):
        model = CommitteeModel(lr=lr, noise=noise, **base)
        theory = solve_committee_online(model, t).test_loss
        gf = solve_committee_online(CommitteeModel(noise=noise, **base), t).test_loss if noise else flow
        start = time.perf_counter()
        runs = np.array([ref.simulate_online_sgd(CommitteeModel(noise=noise, **base), lr, dim, t, t[-1], s)
                         for s in range(seeds)])
        mean, se = runs.mean(0), runs.std(0, ddof=1) / math.sqrt(seeds)
        print(f"η₀ = {lr}, σ² = {noise} (simulation {time.perf_counter() - start:.0f} s)\n")
        print("| t | simulation | ODE with η₀ term | (sim − ODE)/s.e. | gradient flow (η₀ → 0) |")
        print("|---|---|---|---|---|")
        for k in range(len(t)):
            # t = 0: every seed starts at the same exact overlaps (s.e. 0).
            z = f"{(mean[k] - theory[k]) / se[k]:+.1f}" if se[k] > 1e-9 else "—"
            print(f"| {t[k]:g} | {mean[k]:.5f} ± {se[k]:.5f} | {theory[k]:.5f} | {z} | {gf[k]:.5f} |")
        print()


def sgd_other_table(seeds: int, dim: int, only: str | None = None) -> None:
    print(f"## 5. Online SGD for other members of the family (D = {dim}, {seeds} seeds, mean ± s.e.)\n")
    t = np.array([0.0, 1.0, 2.0, 4.0, 6.0])
    cases = (
        ("quadratic (ε = 0.5, κ = 1) student, square target, η₀ = 0.1",
         dict(activation="quadratic", epsilon=0.5, scale=1.0, width=2, target="square", init_overlap=[0.3, -0.2]), 0.1),
        ("tanh K = 2 soft committee (κ = κ* = 2), η₀ = 1",
         dict(activation="tanh", scale=2, width=2, target="committee", teacher_width=2, teacher_scale=2,
              init_overlap=np.array([[0.3, 0.05], [0.0, 0.2]]), init_cov=np.array([[0.5, 0.1], [0.1, 0.4]])), 1.0),
        ("ReLU K = 2 committee (κ = κ* = 2, ReLU teacher), η₀ = 0.5 (orthant-moment I4, session 13)",
         dict(activation="relu", scale=2, width=2, target="committee", teacher_width=2, teacher_scale=2,
              init_overlap=np.array([[0.3, 0.05], [0.0, 0.2]]), init_cov=np.array([[0.5, 0.1], [0.1, 0.4]])), 0.5),
        ("ReLU student, erf teacher (K = 2, κ = κ* = 2), η₀ = 0.5 (mixed I4: erf factors as orthant indicators, session 14)",
         dict(activation="relu", teacher_activation="erf", scale=2, width=2, target="committee", teacher_width=2,
              teacher_scale=2, init_overlap=np.array([[0.3, 0.05], [0.0, 0.2]]),
              init_cov=np.array([[0.5, 0.1], [0.1, 0.4]])), 0.5),
        ("erf student, ReLU teacher (K = 2, κ = κ* = 2), η₀ = 0.5 (mixed I4: Gaussian tilt, session 14)",
         dict(activation="erf", teacher_activation="relu", scale=2, width=2, target="committee", teacher_width=2,
              teacher_scale=2, init_overlap=np.array([[0.3, 0.05], [0.0, 0.2]]),
              init_cov=np.array([[0.5, 0.1], [0.1, 0.4]])), 0.5),
    )
    if only == "relu-sgd":
        cases = cases[2:3]
    elif only == "mixed-sgd":
        cases = cases[3:]
    for label, base, lr in cases:
        start = time.perf_counter()
        theory = solve_committee_online(CommitteeModel(lr=lr, **base), t).test_loss
        flow = solve_committee_online(CommitteeModel(**base), t).test_loss
        ode_s = time.perf_counter() - start
        runs = np.array([ref.simulate_online_sgd(CommitteeModel(**base), lr, dim, t, t[-1], s) for s in range(seeds)])
        mean, se = runs.mean(0), runs.std(0, ddof=1) / math.sqrt(seeds)
        print(f"{label} (ODE {ode_s:.0f} s)\n")
        print("| t | simulation | ODE with η₀ term | (sim − ODE)/s.e. | gradient flow (η₀ → 0) |")
        print("|---|---|---|---|---|")
        for k in range(len(t)):
            z = f"{(mean[k] - theory[k]) / se[k]:+.1f}" if se[k] > 1e-9 else "—"
            print(f"| {t[k]:g} | {mean[k]:.6f} ± {se[k]:.6f} | {theory[k]:.6f} | {z} | {flow[k]:.6f} |")
        print()


def d_scaling_table() -> None:
    print("## 6. Quadratic student, square target, η₀ = 0.1: simulation/ODE − 1 against D\n")
    base = dict(activation="quadratic", epsilon=0.5, scale=1.0, width=2, target="square", init_overlap=[0.3, -0.2])
    t, lr = np.array([0.0, 2.0, 4.0]), 0.1
    theory = solve_committee_online(CommitteeModel(lr=lr, **base), t).test_loss
    print("| D | seeds | t = 2: sim/ODE − 1 | t = 4: sim/ODE − 1 |")
    print("|---|---|---|---|")
    for dim, seeds in ((250, 20), (500, 16), (1000, 10), (2000, 8)):
        runs = np.array([ref.simulate_online_sgd(CommitteeModel(**base), lr, dim, t, t[-1], s) for s in range(seeds)])
        mean, se = runs.mean(0), runs.std(0, ddof=1) / math.sqrt(seeds)
        cells = [f"{mean[k] / theory[k] - 1:+.3f} ± {se[k] / theory[k]:.3f}" for k in (1, 2)]
        print(f"| {dim} | {seeds} | {cells[0]} | {cells[1]} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--dim", type=int, default=1000)
    parser.add_argument("--only", choices=["d-scaling", "relu-sgd", "mixed-sgd"], help="run one section (or case) only")
    args = parser.parse_args()
    if args.only == "d-scaling":
        d_scaling_table()
        return
    if args.only in ("relu-sgd", "mixed-sgd"):
        sgd_other_table(args.seeds, args.dim, only=args.only)
        return
    autograd_table()
    lams = plateau_table()
    escape_table(lams)
    sgd_table(args.seeds, args.dim)
    sgd_other_table(args.seeds, args.dim)


if __name__ == "__main__":
    main()
