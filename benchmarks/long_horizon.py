"""Long-horizon DMFT: log grid against the uniform dt = 0.25 grid, and awkward valid problems.

    python benchmarks/long_horizon.py accuracy [--problems 0 1 2 3] [--samples 32768]
    python benchmarks/long_horizon.py envelope [--t-max 300] [--samples 8192]
    python benchmarks/long_horizon.py evidence --problems 0 --t-max 60 [--dims 2000 4000] [--seeds 4] [--theory F]
        [--device cuda]
    python benchmarks/long_horizon.py speed [--cases 5]

``accuracy``: for each reference problem, solves on the uniform grid (dt = 0.25) to t = 60 and
on the default log grid to t_max = 300, and prints the largest difference of the train and test
loss over t ≤ 60 in units of the initial test loss (the uniform curve interpolated onto the log
grid points), with each solve's time and iterations (theory.md §9.1; issue criterion ≤ 1 %).

``envelope``: solves a grid of awkward valid problems (α ∈ [1, ∞), κ ∈ [0.1, 10], ε ∈ [0, 1],
N ≤ 6, centred or not) on the log grid and prints, for each, whether it converged, the message,
and whether any curve is non-finite.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import dmft

PROBLEMS = [
    dict(alpha=3.0, scale=1.0, epsilon=0.25, width=2, center=False),
    dict(alpha=10.0, scale=1.0, epsilon=0.1, width=2, center=False),
    dict(alpha=3.0, scale=1.0, epsilon=0.25, width=4, center=False, init_overlap=(0.2, -0.2, 0.2, -0.2)),
    dict(alpha=10.0, scale=4.0, epsilon=0.1, width=2, center=True, init_overlap=(0.2, -0.2)),
]

ENVELOPE = [
    dict(alpha=1.0, scale=0.1, epsilon=1.0, width=2, center=False),
    dict(alpha=1.0, scale=10.0, epsilon=0.01, width=2, center=True),
    dict(alpha=1.5, scale=1.0, epsilon=0.0, width=3, center=False),
    dict(alpha=2.0, scale=10.0, epsilon=1.0, width=6, center=True),
    dict(alpha=5.5, scale=2.4, epsilon=0.04, width=4, center=True),
    dict(alpha=10.0, scale=4.0, epsilon=0.1, width=2, center=True, init_overlap=(0.2, -0.2)),
    dict(alpha=100.0, scale=0.1, epsilon=0.5, width=5, center=False),
    dict(alpha=3.0, scale=1.0, epsilon=0.25, width=4, center=False, init_overlap=(0.2, -0.2, 0.2, -0.2)),
]


def accuracy(opts):
    rows = []
    for index in opts.problems:
        problem = PROBLEMS[index]
        start = time.perf_counter()
        uniform = dmft.solve(**problem, t_max=60.0, dt=0.25, samples=opts.samples, seed=opts.seed)
        t_uniform = time.perf_counter() - start
        start = time.perf_counter()
        log = dmft.solve(**problem, t_max=opts.t_max, grid="log", samples=opts.samples, seed=opts.seed,
                         grid_points=opts.grid_points)
        t_log = time.perf_counter() - start
        window = log.t <= 60.0 + 1e-9
        scale = uniform.test_loss[0]
        row = dict(problem=problem, uniform_seconds=t_uniform, log_seconds=t_log,
                   uniform_iterations=uniform.iterations, log_iterations=log.iterations,
                   uniform_converged=uniform.converged, log_converged=log.converged,
                   log_points=int(log.t.size), log_message=log.message)
        for field in ("train_loss", "test_loss"):
            ref = np.interp(log.t[window], uniform.t, getattr(uniform, field))
            row[field + "_sup_diff"] = float(np.max(np.abs(getattr(log, field)[window] - ref)) / scale)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def envelope(opts):
    for problem in ENVELOPE:
        start = time.perf_counter()
        try:
            res = dmft.solve(**problem, t_max=opts.t_max, grid="log", samples=opts.samples, seed=opts.seed)
            finite = bool(np.all(np.isfinite(res.train_loss)) and np.all(np.isfinite(res.test_loss)))
            out = dict(problem=problem, converged=res.converged, finite=finite, message=res.message,
                       iterations=res.iterations, final_test=float(res.test_loss[-1]))
        except Exception as exc:  # noqa: BLE001 - the point is to see every failure
            out = dict(problem=problem, error=f"{type(exc).__name__}: {exc}")
        out["seconds"] = time.perf_counter() - start
        print(json.dumps(out, default=str), flush=True)


def _simulate(job):
    from dmft.parameters import ModelParameters
    from dmft.simulate import simulate_gd

    problem, dim, seed, t, time_step, engine, input_dtype = job
    run = simulate_gd(ModelParameters(**problem), dim, np.asarray(t), seed=seed, time_step=time_step, engine=engine,
                      input_dtype=input_dtype)
    print(f"  D={dim} seed {seed}: done", flush=True)
    return dim, seed, run.train_loss.tolist(), run.test_loss.tolist()


def _simulate_torch(job, device):
    """The same gradient descent in PyTorch on ``device`` (one run at a time; a GPU for D ≥ 4000).

    :func:`empirical.committee.family.train_committee_family` with the paper's model as a member of
    the family (quadratic student, square target, Q(0) planted exactly): the draws are NumPy's on
    the CPU, the arithmetic float64 on the device.
    """
    from dmft.committee_online import CommitteeModel
    from dmft.parameters import ModelParameters
    from empirical.committee.family import train_committee_family

    problem, dim, seed, t, time_step = job[:5]
    params = ModelParameters(**problem)
    model = CommitteeModel(activation="quadratic", epsilon=params.epsilon, scale=params.scale, width=params.width,
                           rho=params.rho, center=params.center, init_overlap=np.asarray(params.m0, dtype=float))
    run = train_committee_family(model, params.alpha, dim, np.asarray(t), seed=seed, time_step=time_step,
                                 device=device)
    print(f"  D={dim} seed {seed}: {run.seconds:.1f} s on {run.settings['device']}", flush=True)
    return dim, seed, run.train_loss.tolist(), run.test_loss.tolist()


def _stored_theory(path):
    """A DMFT solve saved as JSON (t, train, test, train_sem, test_sem, message, seconds) by an
    earlier run, e.g. docs/results/data/long_horizon_centred_kappa4_t150.json."""
    from types import SimpleNamespace

    with open(path) as fh:
        data = json.load(fh)
    # The sample size and parameters of that solve (None where the file does not record them).
    samples = data.get("samples") if "dmft_train" in data else data.get("settings", {}).get("samples")
    parameters = data.get("problem") if "dmft_train" in data else data.get("parameters")
    if "dmft_train" in data:                     # an evidence report: re-analyse its DMFT curves
        data = {"t": data["t"], "train": data["dmft_train"], "test": data["dmft_test"],
                "train_sem": data["dmft_train_sem"], "test_sem": data["dmft_test_sem"], "message": data["message"],
                "seconds": data.get("dmft_seconds", float("nan"))}
    elif "train_loss" in data:                   # the --json summary of `dmft solve`
        data = {"t": data["t"], "train": data["train_loss"], "test": data["test_loss"],
                "train_sem": data["train_loss_sem"], "test_sem": data["test_loss_sem"], "message": data["message"],
                "seconds": data.get("seconds", float("nan"))}
    arrays = {key: np.asarray(data[key], dtype=float) for key in ("t", "train", "test", "train_sem", "test_sem")}
    return SimpleNamespace(t=arrays["t"], train_loss=arrays["train"], test_loss=arrays["test"],
                           train_loss_sem=arrays["train_sem"], test_loss_sem=arrays["test_sem"],
                           converged=data["message"].startswith("converged"), message=data["message"],
                           seconds=data.get("seconds", float("nan")), samples=samples, parameters=parameters)


def _check_stored_problem(path, parameters, problem) -> None:
    """Refuse a stored DMFT whose recorded parameters differ from the problem being compared."""
    if not parameters:                           # an older file without its parameters: trust --problems
        return
    for name, value in problem.items():
        if name not in parameters:
            continue
        stored, wanted = np.asarray(parameters[name], dtype=float), np.asarray(value, dtype=float)
        if stored.shape != wanted.shape or not np.allclose(stored, wanted, rtol=0, atol=1e-12):
            raise SystemExit(f"--theory {path}: its {name} = {parameters[name]} differs from the problem's {value}")


def _at_times(t, curve, sem, t_new):
    """A DMFT curve (cubic spline) and its standard error (linear) at the times ``t_new``."""
    from scipy.interpolate import CubicSpline

    values = CubicSpline(t, curve)(t_new)
    return values, None if sem is None else np.interp(t_new, t, sem)


def evidence(opts):
    """DMFT (log grid, replica error bars) against seed-averaged gradient descent at large D."""
    from concurrent.futures import ProcessPoolExecutor

    problem = PROBLEMS[opts.problems[0]]
    start = time.perf_counter()
    if opts.theory:
        theory = _stored_theory(opts.theory)
        _check_stored_problem(opts.theory, theory.parameters, problem)
        seconds = float(theory.seconds)
        if theory.samples is not None:           # the report names the S of the stored solve
            opts.samples = int(theory.samples)
    else:
        theory = dmft.solve(**problem, t_max=opts.t_max, grid="log", samples=opts.samples, seed=opts.seed,
                            error_replicas=opts.replicas)
        seconds = time.perf_counter() - start
    print(f"DMFT {problem}: {theory.message} in {seconds:.0f} s", flush=True)
    t = theory.t
    stored = None
    if opts.sims:                                # the simulations of an earlier report, same grid
        with open(opts.sims) as fh:
            stored = json.load(fh)
        if not np.allclose(stored["t"], t, rtol=0, atol=1e-9):
            raise SystemExit(f"--sims {opts.sims}: its time grid differs from the DMFT's")
        opts.dims = [int(d) for d in stored["dims"]]
        if stored.get("time_step"):                    # the steps those simulations took (older
            opts.time_step = float(stored["time_step"])  # reports: give --time-step)
    elif opts.device and (opts.engine != "numpy" or opts.input_dtype != "float64"):
        raise SystemExit("--engine and --input-dtype choose the NumPy/Numba simulation; --device runs "
                         "the PyTorch one (float64): give one or the other")
    pool = ProcessPoolExecutor(opts.workers) if stored is None and not opts.device else None

    def simulate(dim):
        """The seeds of one D: (dim, seed, train, test) each."""
        jobs = [(problem, dim, seed, t.tolist(), opts.time_step, opts.engine, opts.input_dtype)
                for seed in range(opts.first_seed, opts.first_seed + opts.seeds)]
        if opts.device:
            return [_simulate_torch(job, opts.device) for job in jobs]
        return list(pool.map(_simulate, jobs))

    simulator = f"torch on {opts.device}" if opts.device else f"{opts.engine}, {opts.input_dtype} inputs"
    if stored is not None:
        simulator = stored.get("simulator", "stored (simulator not recorded)")
        opts.seeds, opts.first_seed = int(stored.get("seeds", opts.seeds)), int(stored.get("first_seed", 0))
    report = dict(problem=problem, t_max=opts.t_max, first_seed=opts.first_seed, simulator=simulator,
                  time_step=opts.time_step, samples=opts.samples, dmft_seconds=seconds, seeds=opts.seeds,
                  converged=theory.converged, message=theory.message, t=t.tolist(),
                  dmft_train=theory.train_loss.tolist(), dmft_test=theory.test_loss.tolist(),
                  dmft_train_sem=None if theory.train_loss_sem is None else theory.train_loss_sem.tolist(),
                  dmft_test_sem=None if theory.test_loss_sem is None else theory.test_loss_sem.tolist(),
                  dims={})
    scale = theory.test_loss[0]
    # The simulations record at whole steps, t_sim = round(t / time_step)·time_step, up to half a
    # step away from the DMFT's grid; early on, where the losses move fast, half a step of 0.04 is
    # 0.1-0.3 % of L0. Compare at t_sim: the DMFT interpolated there (cubic spline), its SE linearly.
    t_sim = np.rint(t / opts.time_step) * opts.time_step
    report["t_simulation"] = t_sim.tolist()
    theory_at_sim = {field: _at_times(t, getattr(theory, f"{field}_loss"), getattr(theory, f"{field}_loss_sem"), t_sim)
                     for field in ("train", "test")}
    for dim in opts.dims:
        runs = None if stored is not None else simulate(dim)
        entry = {}
        for k, field in ((2, "train"), (3, "test")):
            if stored is not None:
                mean = np.array(stored["dims"][str(dim)][field]["mean"])
                spread = np.array(stored["dims"][str(dim)][field]["spread"])
                runs = [None] * int(stored.get("seeds", opts.seeds))
                if "seed_curves" in stored["dims"][str(dim)]:
                    entry["seed_curves"] = stored["dims"][str(dim)]["seed_curves"]
            else:
                curves = np.array([r[k] for r in runs])
                mean, spread = curves.mean(0), curves.std(0, ddof=1)
                entry.setdefault("seed_curves", {})[field] = {str(r[1]): list(r[k]) for r in runs}
            theory_curve, sem = theory_at_sim[field]
            dev = np.abs(theory_curve - mean)
            i = int(np.argmax(dev))
            entry[field] = dict(sup_dev=float(dev[i] / scale), at=float(t_sim[i]),
                                seed_spread=float(spread[i] / scale),
                                seed_sem=float(spread[i] / np.sqrt(len(runs)) / scale),
                                dmft_sem=None if sem is None else float(sem[i] / scale),
                                mean=mean.tolist(), spread=spread.tolist())
            print(f"  D={dim} {field}: sup|DMFT - mean| = {dev[i] / scale:.4f} of the initial loss at t={t_sim[i]:.1f}; "
                  f"seed spread {spread[i] / scale:.4f}, seed-mean SE {spread[i] / np.sqrt(len(runs)) / scale:.4f}, "
                  f"DMFT SE {float('nan') if sem is None else sem[i] / scale:.4f}", flush=True)
            if sem is not None:
                combined = np.hypot(spread / np.sqrt(len(runs)), sem)
                z = np.where(combined > 0, dev / np.where(combined > 0, combined, 1.0), 0.0)
                j = int(np.argmax(z[1:])) + 1
                entry[field]["max_combined_se"] = float(z[j])
                entry[field]["max_combined_se_at"] = float(t_sim[j])
                print(f"    largest deviation in combined standard errors: {z[j]:.2f} at t={t_sim[j]:.1f} "
                      f"({(theory_curve - mean)[j] / scale:+.4f} of the initial loss)", flush=True)
        report["dims"][str(dim)] = entry
        if opts.json:                            # after each D: a run stopped later keeps what is done
            with open(opts.json, "w") as fh:
                json.dump(report, fh)
    if pool is not None:
        pool.shutdown()


def speed(opts):
    """Seconds of the default solve, of the whole default command and of the issue's long-horizon
    problems, each as a ratio to the first default (session 6: uniform grid, one window, no symmetry
    projection, no replicas) in the same run. Run twice: the first run also compiles the Numba
    kernels into the cache."""
    previous = dict(march=False, symmetrize=False, error_replicas=0, sampler="mc")
    default = dict(alpha=10.0, epsilon=0.1)
    cases = [
        ("first default (session 6): alpha=10, eps=0.1, t_max=40, uniform, one window, no replicas",
         dict(default, grid="uniform"), previous),
        ("default before session 18: the same on the uniform dt=0.25 grid", dict(default, grid="uniform"), {}),
        ("default: alpha=10, eps=0.1, t_max=40, log grid (98 points)", default, {}),
        ("the whole command `dmft solve --alpha 10 --epsilon 0.1` (new process, plot written)", "command", {}),
        ("default with --precision mixed", default, dict(precision="mixed")),
        ("default with the full solve on the union of the replicas (--union-of-replicas)",
         default, dict(union_of_replicas=True)),
        ("default without replicas", default, dict(error_replicas=0)),
        ("alpha=3, N=4, t_max=60, log grid", dict(PROBLEMS[2], t_max=60.0, grid="log"), {}),
        ("alpha=3, N=4, t_max=60, log grid, --precision mixed", dict(PROBLEMS[2], t_max=60.0, grid="log"),
         dict(precision="mixed")),
        ("alpha=3, N=4, t_max=60, log grid, --union-of-replicas", dict(PROBLEMS[2], t_max=60.0, grid="log"),
         dict(union_of_replicas=True)),
        ("alpha=3, N=2, t_max=300, log grid", dict(PROBLEMS[0], t_max=300.0, grid="log"), {}),
    ]
    reference = None
    for label, problem, options in cases[: opts.cases]:
        if problem == "command":
            seconds, status = _command_seconds(["dmft", "solve", "--alpha", "10", "--epsilon", "0.1"])
            iterations = "   -"
        else:
            start = time.perf_counter()
            res = dmft.solve(**problem, samples=opts.samples, seed=opts.seed, **options)
            seconds = time.perf_counter() - start
            iterations = f"{res.iterations:4d}"
            status = "converged" if res.converged else "NOT converged"
        reference = reference or seconds
        print(f"{seconds:8.1f} s  x{seconds / reference:5.2f}  {iterations} it  {status}  {label}", flush=True)


def _command_seconds(command) -> tuple[float, str]:
    """Wall seconds of a CLI command run in a fresh process in a temporary folder, and its status."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    return seconds, "exit 0" if done.returncode == 0 else f"exit {done.returncode}: {done.stderr.strip()[-200:]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["accuracy", "envelope", "evidence", "speed"])
    parser.add_argument("--cases", type=int, default=5, help="speed: run the first CASES cases")
    parser.add_argument("--dims", type=int, nargs="+", default=[2000, 4000])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=0, help="evidence: simulate seeds first-seed, first-seed + 1, ...")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--time-step", type=float, default=0.02, help="theory time per GD step of the simulations")
    parser.add_argument("--json", default=None, help="write the evidence report here")
    parser.add_argument("--engine", choices=["numpy", "numba"], default="numpy",
                        help="evidence: the GD step of dmft.simulate.simulate_gd (numba: fused, one pass over X)")
    parser.add_argument("--input-dtype", choices=["float64", "float32"], default="float64",
                        help="evidence: storage of the inputs with --engine numba")
    parser.add_argument("--device", default=None,
                        help="evidence: simulate in PyTorch on this device (e.g. cuda), one run at a time, instead of "
                             "the NumPy reference in a process pool")
    parser.add_argument("--theory", default=None,
                        help="evidence: read the DMFT from this JSON (t, train, test, *_sem, the --json of "
                             "`dmft solve`, or an evidence report) instead of solving")
    parser.add_argument("--sims", default=None,
                        help="evidence: take the simulations from this earlier report (same time grid; its seeds "
                             "and time step) instead of running them; with --theory the same file, re-analyses it")
    parser.add_argument("--problems", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--samples", type=int, default=32768)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--t-max", type=float, default=300.0)
    parser.add_argument("--grid-points", type=int, default=None)
    opts = parser.parse_args()
    {"accuracy": accuracy, "envelope": envelope, "evidence": evidence, "speed": speed}[opts.mode](opts)


if __name__ == "__main__":
    main()
