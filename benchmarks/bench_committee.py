"""Speed of the committee-machine trainer (empirical/committee/machine.py).

1. CPU, the Fig. 1 size D = 100, P = 550, N = 500: steps per second of ``train_committee``
   (torch, float64, closed-form gradient) against a plain NumPy implementation of the same
   full-batch GD step in the same process; prints the ratio.
2. GPU, D = 4000, P = 12000, N = 2: the speed-up of ``device="cuda"`` over ``device="cpu"``
   (skipped with a message when CUDA is unavailable), and the agreement of the two curves.
3. CPU, the large-D reference simulations (α = 10, D = 4000, P = 40000, N = 2, centred): one GD
   step of :func:`dmft.simulate.simulate_gd`, the NumPy step (two passes over X) against the fused
   Numba step (:mod:`dmft._gd_kernel`, one pass) with float64 and float32 inputs, in one run, with
   the bytes each step streams and the rate that implies.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_committee.py [--steps 300] [--threads 1]
    PYTHONPATH=. python benchmarks/bench_committee.py --only fused [--fused-dim 4000]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from empirical import make_committee_data, train_committee


def numpy_gd_steps(data, *, scale, epsilon, lr, steps):
    """The same full-batch GD (η = η₀N/κ², uncentred) in plain NumPy; returns the final loss."""
    X, y, W = data.inputs, data.targets, data.init_weights.copy()
    n, p = W.shape[0], X.shape[0]
    eta = lr * n / scale**2
    loss = math.nan
    for _ in range(steps):
        H = X @ W.T
        r = scale / n * (H + 0.5 * epsilon * H * H).sum(1) - y
        loss = float(r @ r / p)
        W -= eta * (2 * scale / (n * p)) * (((1 + epsilon * H) * r[:, None]).T @ X)
    return loss


def rate(fn, steps, repeats=3):
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return steps / best


def fused_step(dim, repeats=5):
    """Seconds per GD step of the NumPy and the fused Numba step at α = 10, N = 2 (best of repeats)."""
    import numba

    from dmft._gd_kernel import loss_and_gradient

    rng = np.random.default_rng(0)
    P, N, kappa, eps = 10 * dim, 2, 4.0, 0.1
    X = rng.standard_normal((P, dim)) / math.sqrt(dim)
    X32 = X.astype(np.float32)
    W = rng.standard_normal((N, dim))
    y = 0.5 * (X @ rng.standard_normal(dim)) ** 2

    def numpy_step():
        H = X @ W.T
        r = kappa / N * (H + 0.5 * eps * H * H).sum(1) - y
        return float(r @ r / P), (2.0 / P) * (kappa / N) * (((1 + eps * H) * r[:, None]).T @ X)

    cases = {"NumPy (2 passes, float64)": (numpy_step, 2 * X.nbytes),
             "fused (1 pass, float64)": (lambda: loss_and_gradient(X, W, y, kappa, eps), X.nbytes),
             "fused (1 pass, float32 X)": (lambda: loss_and_gradient(X32, W, y, kappa, eps), X32.nbytes)}
    loss_and_gradient(X32[:64], W, y[:64], kappa, eps)          # compile (or load the cache)
    reference = numpy_step()
    print(f"GD step of dmft.simulate.simulate_gd, D={dim}, P={P}, N={N} "
          f"({4 * P * dim * N / 1e9:.2f} GFLOP per step; {numba.get_num_threads()} Numba threads, "
          f"BLAS threads as OMP_NUM_THREADS):")
    base = None
    for name, (fn, nbytes) in cases.items():
        loss, grad = fn()
        seconds = min(_timed(fn) for _ in range(repeats))
        base = base or seconds
        error = np.max(np.abs(grad - reference[1])) / np.max(np.abs(reference[1]))
        print(f"  {name:27s} {seconds * 1e3:7.1f} ms  ratio to NumPy {base / seconds:4.2f}x  "
              f"{nbytes / seconds / 1e9:5.1f} GB/s streamed  {4 * P * dim * N / seconds / 1e9:5.1f} GFLOP/s  "
              f"max grad difference {error:.1e}")


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--gpu-steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=["trainer", "fused"], default=None)
    parser.add_argument("--fused-dim", type=int, default=4000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.only == "fused":
        fused_step(args.fused_dim)
        return

    D, alpha, N, kappa, eps = 100, 5.5, 500, 1.0, 0.02
    data = make_committee_data(alpha, D, N, seed=0)
    kw = dict(scale=kappa, epsilon=eps, lr=1.0)
    # few records so that recording does not dominate
    torch_rate = rate(lambda: train_committee(alpha, D, N, steps=args.steps, record_points=2, data=data,
                                              device="cpu", **kw), args.steps)
    numpy_rate = rate(lambda: numpy_gd_steps(data, steps=args.steps, **kw), args.steps)
    check = train_committee(alpha, D, N, steps=args.steps, record_points=2, data=data, device="cpu", **kw)
    ref_loss = numpy_gd_steps(data, steps=args.steps + 1, **kw)
    print(f"CPU ({args.threads} thread(s)), D={D}, P={int(alpha * D)}, N={N}, float64, {args.steps} steps:")
    print(f"  train_committee (torch): {torch_rate:9.1f} steps/s")
    print(f"  plain NumPy GD step    : {numpy_rate:9.1f} steps/s")
    print(f"  ratio torch/NumPy      : {torch_rate / numpy_rate:9.2f}")
    print(f"  final train loss torch {check.train_loss[-1]:.12g} vs NumPy {ref_loss:.12g}")

    if args.only != "trainer":
        fused_step(args.fused_dim)
    if not torch.cuda.is_available():
        print("GPU: skipped (CUDA not available on this machine)")
        return
    D, alpha, N = 4000, 3.0, 2
    steps = args.gpu_steps
    gkw = dict(scale=1.0, epsilon=0.25, lr=1.0, init_overlap=[0.2, -0.2], record_points=20)
    train_committee(alpha, D, N, steps=10, device="cuda", **gkw)  # warm-up
    timings = {}
    results = {}
    for device in ("cpu", "cuda"):
        start = time.perf_counter()
        results[device] = train_committee(alpha, D, N, steps=steps, device=device, **gkw)
        if device == "cuda":
            torch.cuda.synchronize()
        timings[device] = time.perf_counter() - start
    dev = np.max(np.abs(results["cpu"].test_loss - results["cuda"].test_loss) / results["cpu"].test_loss)
    print(f"GPU ({torch.cuda.get_device_name()}), D={D}, P={int(alpha * D)}, N={N}, float64, {steps} steps:")
    print(f"  cpu  {steps / timings['cpu']:9.1f} steps/s ({torch.get_num_threads()} threads)")
    print(f"  cuda {steps / timings['cuda']:9.1f} steps/s")
    print(f"  speed-up {timings['cpu'] / timings['cuda']:.1f}x; max relative test-loss difference {dev:.2e}")


if __name__ == "__main__":
    main()
