"""The data-side kernel of this checkout against the same kernel at another git revision, in one run.

    PYTHONPATH=. python benchmarks/kernel_ab.py --base REV [--rounds 2] [--repeats 5]

A change to ``dmft/_data_kernels.py`` is judged by its kernel time against the previous kernel on
the same inputs, measured in the same process (the 2-core machines drift by up to 1.5× over a day,
so times from different runs do not compare). The base revision's file is written to
``~/.cache/grokking-theory/kernel_ab/<rev>/`` and imported as a module of its own (it keeps its
Numba cache there: the first run compiles it, 1–7 min). Both kernels run the default problem's
inputs (α = 10, ε = 0.1, N = 2, the default log grid to t = 40, S = 4096) and the α = 3, N = 4
problem of issue 13 (m(0) = (0.2, −0.2, 0.2, −0.2), log grid to t = 60, S = 2048), with the
block moments only (what the solver runs), in alternating rounds; printed: best time of each
round, the ratio current/base, and the largest difference between the two kernels' outputs.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import pathlib
import subprocess
import sys
import time

import numpy as np

from dmft import _data_kernels as current
from dmft.dmft_solver import online_start
from dmft.parameters import ModelParameters
from dmft.sampling import conditional_square_root, draw_chunk
from dmft.solve import default_grid_points, log_time_grid
from dmft.weight_side import to_flat

CACHE = pathlib.Path.home() / ".cache" / "grokking-theory" / "kernel_ab"


def load_revision(rev: str):
    """The module ``dmft/_data_kernels.py`` as it is at git revision ``rev``."""
    full = subprocess.run(["git", "rev-parse", rev], capture_output=True, text=True, check=True).stdout.strip()
    source = subprocess.run(["git", "show", f"{full}:dmft/_data_kernels.py"], capture_output=True, text=True,
                            check=True).stdout
    folder = CACHE / full[:12]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"data_kernels_{full[:12]}.py"
    if not path.exists() or path.read_text() != source:
        path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def problem_inputs(params: ModelParameters, t_max: float, samples: int):
    """Kernel inputs at the online start of ``params`` on its default log grid."""
    t = log_time_grid(t_max, default_grid_points(t_max))
    state = online_start(params, t)
    T, N = state.overlap.shape
    root = conditional_square_root(to_flat(state.cov), state.overlap.reshape(-1), 1.0)
    u, hstar, probe, _ = draw_chunk(root, seed=0, index=0, start=0, stop=samples, samples=samples, steps=T,
                                    width=N, rho=1.0)
    coupling = (2.0 / params.scale) / params.alpha
    return (u, 0.5 * hstar**2, hstar[:, None].copy(), probe, np.ascontiguousarray(state.response), params.scale,
            current.ACT_QUADRATIC, params.epsilon, coupling, False)


def time_kernel(module, args, repeats: int):
    """Best of ``repeats`` calls of ``module``'s Numba kernel (block moments only), and its outputs."""
    out = module.allocate_outputs(*args[0].shape, store_samples=False)
    weight = np.ones(args[0].shape[0])
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        module.run_data_kernel(module.data_side_numba, *args, weight, out, store_samples=False)
        best = min(best, time.perf_counter() - start)
    return best, out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="git revision of the kernel to compare against")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    opts = parser.parse_args()
    base = load_revision(opts.base)
    problems = {
        "N=2 (alpha=10, eps=0.1, t<=40, S=4096)": problem_inputs(ModelParameters(alpha=10.0, epsilon=0.1), 40.0, 4096),
        "N=4 (alpha=3, eps=0.25, t<=60, S=2048)": problem_inputs(
            ModelParameters(alpha=3.0, epsilon=0.25, width=4, init_overlap=(0.2, -0.2, 0.2, -0.2)), 60.0, 2048),
    }
    for name, args in problems.items():
        small = (args[0][:8], args[1][:8], args[2][:8], args[3][:8]) + args[4:]
        for module in (base, current):          # compile or load from the cache
            start = time.perf_counter()
            time_kernel(module, small, 1)
            print(f"{name}: first call of {module.__name__}: {time.perf_counter() - start:.1f} s")
        T = args[0].shape[1]
        for rnd in range(opts.rounds):
            t_base, out_base = time_kernel(base, args, opts.repeats)
            t_new, out_new = time_kernel(current, args, opts.repeats)
            worst = max(np.abs(out_new[k] - out_base[k]).max() / max(1.0, np.abs(out_base[k]).max())
                        for k in out_base if out_base[k].size)
            print(f"{name}, T={T}, round {rnd + 1}: base {1e3 * t_base:7.1f} ms   current {1e3 * t_new:7.1f} ms   "
                  f"current/base {t_new / t_base:5.3f}   max relative difference {worst:.1e}")


if __name__ == "__main__":
    main()
