"""Measurements of solver variants (docs/results/long_horizon.md, sessions 18 and 21; theory.md §9.3):
those tried and not made the default, and the two-level iteration, which is.

    PYTHONPATH=. python scripts/solver_variants.py union           # union of replicas against the separate solve
    PYTHONPATH=. python scripts/solver_variants.py replica-tol     # looser replica tolerances
    PYTHONPATH=. python scripts/solver_variants.py replica-mixing  # damping 1 / Anderson depth 10 for the replicas
    PYTHONPATH=. python scripts/solver_variants.py newton          # Newton iterations per step, quadratic vs erf
    PYTHONPATH=. python scripts/solver_variants.py two-level       # two-level iteration against the plain one

Timings depend on the machine's state: compare rows of one run only.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

import dmft

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from long_horizon import PROBLEMS  # noqa: E402

DEFAULT = dict(alpha=10.0, epsilon=0.1)


def _timed(**options):
    start = time.perf_counter()
    result = dmft.solve(**options)
    return result, time.perf_counter() - start


def union():
    """Separate main solve against the full solve on the union of the replicas, alternating."""
    cases = [("alpha=10, the default problem", DEFAULT, 2), ("alpha=3, N=2, t<=40", dict(PROBLEMS[0], t_max=40.0), 1),
             ("centred kappa=4, t<=60", dict(PROBLEMS[3], t_max=60.0), 1),
             ("alpha=3, N=4, t<=60", dict(PROBLEMS[2], t_max=60.0), 1)]
    for name, problem, pairs in cases:
        for _ in range(pairs):
            for union_of_replicas in (False, True):
                result, seconds = _timed(**problem, union_of_replicas=union_of_replicas)
                print(f"{name:30s} union={union_of_replicas!s:5s} {seconds:7.1f} s  {result.iterations:4d} it  "
                      f"{result.message}", flush=True)


def two_level():
    """Plain against two-level iteration of the main solve (no replicas), alternating, with the
    full-sample evaluations, the outer residuals and the largest difference of the test loss."""
    cases = [("alpha=10, the default problem", DEFAULT), ("centred kappa=4, t<=60", dict(PROBLEMS[3], t_max=60.0)),
             ("alpha=3, N=2, t<=60", dict(PROBLEMS[0], t_max=60.0)), ("alpha=3, N=4, t<=60", dict(PROBLEMS[2], t_max=60.0))]
    for name, problem in cases:
        curves = []
        for flag in (False, True):
            result, seconds = _timed(**problem, two_level=flag, error_replicas=0)
            curves.append(result.test_loss)
            print(f"{name:30s} two_level={flag!s:5s} {seconds:7.1f} s  {result.iterations:4d} it  {result.message}",
                  flush=True)
        print(f"{name:30s} largest |test loss difference| {np.max(np.abs(curves[0] - curves[1])):.2e}", flush=True)


def _replica_rows(variants, label):
    """Solve each problem with each variant of the replicas' settings; print replica iterations and the
    ratio of the test-loss standard error to the first variant's."""
    import dmft.dmft_solver as solver

    original = solver._solve_replicas
    try:
        for problem in (DEFAULT, dict(alpha=3.0, epsilon=0.25)):
            base = None
            for change in variants:
                def patched(problem_, t, fixed, settings, group, _change=change, **kw):
                    return original(problem_, t, fixed, dataclasses.replace(settings, **_change), group, **kw)

                solver._solve_replicas = patched
                result, seconds = _timed(**problem)
                base = base or result
                ratio = result.test_loss_sem[1:] / base.test_loss_sem[1:]
                iterations = result.settings["replica_iterations"]
                print(f"{problem} {label}={change}: {seconds:.1f} s, replica iterations {sum(iterations)} {iterations}, "
                      f"test-loss SE / first row in [{ratio.min():.3f}, {ratio.max():.3f}], median {np.median(ratio):.3f}",
                      flush=True)
    finally:
        solver._solve_replicas = original


def newton():
    """Newton iterations per time step (the most over a chunk) of the NumPy twin kernel, counted as
    evaluations of the field terms minus the two that every step makes after the loop."""
    import dmft._data_kernels as kernels
    from dmft.committee_online import CommitteeModel
    from dmft.data_side import estimate_data_side
    from dmft.dmft_solver import online_start
    from dmft.parameters import ModelParameters
    from dmft.problems import CommitteeProblem, SquareTargetProblem
    from dmft.solve import time_grid

    t = time_grid(40.0, 0.25)
    original, calls = kernels._gaussian_field_terms, [0]

    def counting(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    kernels._gaussian_field_terms = counting
    try:
        quadratic = SquareTargetProblem(ModelParameters(alpha=10.0, epsilon=0.1))
        erf = CommitteeProblem(CommitteeModel(activation="erf", width=2, target="committee", teacher_width=2,
                                              scale=2.0, teacher_scale=2.0), 10.0)
        for name, problem in (("quadratic", quadratic), ("erf N=M=2", erf)):
            state = online_start(problem, t)
            calls[0] = 0
            estimate_data_side(state.cov, state.overlap, state.response, problem=problem, samples=256, seed=0,
                               backend="numpy", chunk=256)
            print(f"{name}: {calls[0] / t.size - 2:.2f} Newton iterations per step (T = {t.size}, S = 256)")
    finally:
        kernels._gaussian_field_terms = original


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["union", "replica-tol", "replica-mixing", "newton", "two-level"])
    what = parser.parse_args().what
    if what == "union":
        union()
    elif what == "two-level":
        two_level()
    elif what == "replica-tol":
        _replica_rows([dict(replica_tol=1e-3), dict(replica_tol=3e-3), dict(replica_tol=1e-2)], "replicas")
    elif what == "replica-mixing":
        _replica_rows([{}, dict(damping=1.0), dict(anderson_depth=10), dict(damping=1.0, anderson_depth=10)],
                      "replicas")
    else:
        newton()


if __name__ == "__main__":
    main()
