"""``dmft compare``, ``dmft sweep``, ``dmft merge``, ``dmft figure`` (registered by grokking_cli.main).

Exit codes: 0 success; 1 input/output (a store or plot that cannot be written or read), a sweep
point that failed, ``--slurm`` without a Slurm cluster, dask/submitit not installed, or a
comparison that disagreed beyond the seed spread with ``--require-agreement``; 2 invalid input
(one-line message naming the parameter, e.g. a malformed ``--scheduler`` address); 3 a theory run
did not converge (unless ``--allow-unconverged``) or a simulation diverged.
"""

from __future__ import annotations

import math
import sys

import click

from dmft.plotting import save_figure
from grokking_cli.common import (echo_json, family_options, family_settings, ALPHA_HELP, DTYPE_HELP, EPSILON_FAMILY_HELP, resolve_epsilon, EXIT_INVALID, EXIT_IO, EXIT_NOT_CONVERGED, SCALE_HELP,
                                 api_option, check_outputs, check_solver_settings, handle_errors, parse_floats)
from dmft.parameters import InvalidParameterError

__all__ = ["compare", "sweep", "merge", "figure"]


@click.command()
@click.option("--alpha", type=float, required=True,
              help=ALPHA_HELP + " Here it must be finite: the simulations use P = round(alpha*dim) samples.")
@click.option("--epsilon", type=float, default=None, help=EPSILON_FAMILY_HELP)
@api_option("--scale", type=float, api="dmft.solve:solve", help=SCALE_HELP)
@api_option("--width", type=int, api="dmft.solve:solve", help="Hidden units N.")
@click.option("--dim", type=int, default=2000, show_default=True, help="Input dimension D of the simulations.")
@click.option("--seeds", type=int, default=4, show_default=True, help="Number of simulation seeds (0..seeds-1).")
@click.option("--center/--no-center", default=False, show_default=True,
              help="Centred predictor f(x;W) - f(x;W(0)) on both sides (off by default, as in dmft solve; "
                   "dmft ntk centres by default for the paper's lazy baseline).")
@api_option("--t-max", type=float, api="dmft.solve:solve", help="Final time t = lr*step/D.")
@api_option("--dt", type=float, api="dmft.solve:solve",
            help="Time step of the theory grid, in units of t (of a uniform grid; the first step of the default "
                 "log grid).")
@click.option("--lr", type=float, default=1.0, show_default=True,
              help="Learning rate eta_0 of the simulations (step size eta_0*N/scale^2).")
@click.option("--init-overlap", type=str, default=None,
              help="Planted m_i(0), comma-separated, used by theory AND simulations. [default: +0.1,-0.1,...]")
@click.option("--theory", type=click.Choice(["dmft", "online"]), default="dmft", show_default=True,
              help="dmft: the finite-alpha DMFT at the simulations' --alpha (the default: it resolves the "
                   "train/test gap); online: the alpha = inf ODE whatever --alpha is (a limit test, "
                   "meaningful only at large alpha).")
@click.option("--samples", type=int, default=None,
              help="Monte Carlo samples S of the DMFT solver (multiple of 4). [default: the solver's, 32768]")
@click.option("--tol", type=float, default=None,
              help="Fixed-point tolerance of the DMFT solver (sup-norm residual). [default: the solver's, 1e-4]")
@click.option("--max-iter", type=int, default=None,
              help="Maximum fixed-point iterations of the DMFT solver. [default: the solver's, 100]")
@click.option("--damping", type=float, default=None,
              help="Damping in (0,1] of the DMFT update. [default: the solver's, 0.5]")
@click.option("--mixing", type=click.Choice(["anderson", "damped"]), default=None,
              help="Fixed-point scheme of the DMFT solver. [default: the solver's, anderson]")
@click.option("--response", type=click.Choice(["probe", "exact"]), default=None,
              help="Estimator of the DMFT response R_g. [default: the solver's, probe]")
@click.option("--response-samples", type=int, default=None, help="Samples of --response exact. [default: all]")
@click.option("--theory-seed", type=click.IntRange(min=0), default=None,
              help="Seed of the DMFT's Monte Carlo samples (dmft solve --seed). [default: the solver's, 0]")
@click.option("--backend", type=click.Choice(["numba", "numpy"]), default=None,
              help="Kernels of the DMFT solver. [default: the solver's, numba]")
@click.option("--grid", type=click.Choice(["uniform", "log"]), default=None,
              help="Time grid of the DMFT solver. [default: the solver's, log at finite alpha]")
@click.option("--grid-points", type=int, default=None, help="Points of a --grid log time grid. [default: the solver's]")
@click.option("--symmetrize/--no-symmetrize", default=None,
              help="Symmetrise the DMFT's two-time kernels. [default: the solver's, on]")
@click.option("--error-replicas", type=int, default=None,
              help="Replica solves for the DMFT's Monte Carlo error bands (0, or >= 2). [default: the solver's, 8]")
@click.option("--sampler", type=click.Choice(["rqmc", "mc"]), default=None,
              help="Field normals of the DMFT: mc or rqmc (scrambled Sobol'). [default: the solver's, mc]")
@click.option("--allow-unconverged", is_flag=True,
              help="Exit 0 even when the theory run did not converge (it is still reported and marked).")
@click.option("--window", type=str, default=None,
              help="Time window 'START,END' of the agreement. [default: every record time t > 0]")
@click.option("--decomposition", is_flag=True, help="Also compare and draw the three test-loss terms.")
@click.option("--device", type=str, default="auto", show_default=True, help="Simulation device: auto, cpu, cuda.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help=DTYPE_HELP)
@click.option("--out", type=click.Path(dir_okay=False), default="compare.h5", show_default=True,
              help="HDF5 store for the theory and every seed (complete runs made with identical settings are "
                   "reused; a theory run that did not converge is recomputed).")
@click.option("--plot", type=click.Path(dir_okay=False), default="compare.png", show_default=True,
              help="Overlay figure (PNG, PDF or SVG by suffix).")
@click.option("--no-plot", is_flag=True, help="Do not draw the overlay.")
@click.option("--json", "as_json", is_flag=True, help="Print the agreement as JSON.")
@click.option("--require-agreement", is_flag=True,
              help="Exit 1 unless every quantity agrees within the seed spread.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar over seeds.")
@family_options
@handle_errors
def compare(alpha, epsilon, scale, width, dim, seeds, center, t_max, dt, lr, init_overlap, theory, samples, tol,
            max_iter, damping, mixing, response, response_samples, theory_seed, backend, grid, grid_points,
            symmetrize, error_replicas, sampler, allow_unconverged, window, decomposition, device, dtype, out, plot, no_plot,
            as_json, require_agreement, progress, activation, target, teacher_width, teacher_scale,
            teacher_activation, noise):
    """Theory against seed-averaged simulations from the same planted overlaps.

    Runs the theory (by default the finite-alpha DMFT at --alpha; --theory online for the
    alpha = inf ODE) and --seeds gradient-descent simulations at dimension --dim, stores them
    in --out, draws the overlay (theory lines, simulation mean +- one standard deviation, train
    and test) and prints the sup relative error over the window and its ratio to the seed
    spread. Example:

        dmft compare --alpha 3 --epsilon 0.25 --scale 1 --dim 2000 --seeds 4

    Any member of the general family (--activation, --target committee, ...; docs/theory.md par. 10)
    is compared the same way, its simulations recorded every --dt in t (the theory is interpolated there):

        dmft compare --alpha 3 --activation erf --target committee --teacher-width 2 --scale 2 --teacher-scale 2 --dim 1000 --t-max 20
    """
    from comparisons.comparison import compare as run_compare
    from empirical.devices import resolve_device

    epsilon = resolve_epsilon(epsilon, activation, target, teacher_activation)
    check_outputs(out, None if no_plot else plot)  # before any computation
    resolve_device(device)                          # also when every run is already in --out
    if math.isinf(alpha):
        raise InvalidParameterError("alpha (P/D) must be finite for the simulations; use --theory online for alpha = inf")
    overlap = parse_floats(init_overlap, "--init-overlap")
    family, overlap = family_settings(activation, target, teacher_width, teacher_scale, teacher_activation, overlap,
                                      noise)
    win = parse_floats(window, "--window")
    if win is not None and len(win) != 2:
        raise InvalidParameterError(f"window must be 'START,END', got {window!r}")
    given = dict(samples=samples, tol=tol, max_iter=max_iter, damping=damping, mixing=mixing, response=response,
                 response_samples=response_samples, seed=theory_seed, backend=backend, grid=grid,
                 grid_points=grid_points, symmetrize=symmetrize, error_replicas=error_replicas,
                 sampler=sampler)
    options = {key: value for key, value in given.items() if value is not None}
    if options and theory == "online":
        raise InvalidParameterError(
            f"{', '.join('--' + k.replace('_', '-') for k in options)}: options of the DMFT solver, but "
            "--theory online integrates the alpha = inf ODE, which has none")
    if options:
        check_solver_settings(options)
    options = options or None
    try:
        result = _run_compare_call(run_compare, alpha, epsilon, scale, width, dim, seeds, center, t_max, dt, lr,
                                   overlap, theory, options, win, decomposition, out, no_plot, plot, device,
                                   dtype, progress and not as_json, family=family or None)
    except ModuleNotFoundError as exc:  # the DMFT solver or the simulator is not installed
        click.echo(f"error (input/output): {exc}", err=True)
        sys.exit(EXIT_IO)
    _report_compare(result, as_json, require_agreement, allow_unconverged)


def _run_compare_call(run_compare, alpha, epsilon, scale, width, dim, seeds, center, t_max, dt, lr, overlap, theory,
                      options, win, decomposition, out, no_plot, plot, device, dtype, progress, family=None):
    return run_compare(alpha, epsilon, scale, width, dim, seeds, center=center, t_max=t_max, dt=dt, lr=lr,
                       init_overlap=overlap, theory=theory, theory_options=options,
                       window=tuple(win) if win else None, decomposition=decomposition, out=out,
                       plot=None if no_plot else plot, device=device, dtype=dtype, progress=progress,
                       family=family)


def _report_compare(result, as_json, require_agreement, allow_unconverged=False):
    if as_json:
        echo_json(result.summary())
    else:
        for line in result.lines():
            click.echo(line)
        click.echo(f"  stored in {result.out}")
        if result.plot:
            click.echo(f"  overlay saved to {result.plot}")
    failures = result.theory.settings.get("newton_failures")
    if failures:
        click.echo(f"warning: the DMFT's implicit Newton step missed its tolerance in {failures} sample-steps",
                   err=True)
    diverged = [str(s) for s, r in zip(result.parameters["seeds"], result.simulations) if not r.converged]
    if diverged:
        click.echo(f"error (did not converge): simulation seed(s) {', '.join(diverged)} diverged", err=True)
        sys.exit(EXIT_NOT_CONVERGED)
    if not result.theory.converged and not allow_unconverged:
        click.echo(f"error (did not converge): the {result.theory.kind} theory run did not converge "
                   f"(iterations {result.theory.iterations}, residual {result.theory.residual:.3g}): "
                   f"{result.theory.message}; --allow-unconverged accepts it", err=True)
        sys.exit(EXIT_NOT_CONVERGED)
    if require_agreement and not result.within_spread:
        click.echo("error: theory deviates from the simulation mean by more than the seed spread", err=True)
        sys.exit(1)


@click.command()
@click.option("--kind", type=click.Choice(["theory", "simulation"]), required=True,
              help="theory: dmft.solve per point; simulation: empirical.train_committee per point.")
@click.option("--param", "-p", "params", multiple=True, required=True,
              help="Grid axis NAME=V1,V2,... (repeat; Cartesian product). Names are keyword arguments of "
                   "dmft.solve / train_committee, e.g. -p alpha=3,10 -p epsilon=0.1,0.25. 'inf' is allowed.")
@click.option("--set", "fixed", multiple=True,
              help="Parameter NAME=VALUE shared by every point (repeat), e.g. --set t_max=20. "
                   "A comma makes a list value (e.g. init_overlap=0.1,-0.1).")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="HDF5 store; complete runs already there are skipped (resume).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes of the local pool (>= 1; not with --scheduler or --slurm). [default: CPU count]")
@click.option("--scheduler", type=str, default=None,
              help="Address of a Dask scheduler (tcp://host:8786): run the points on that cluster.")
@click.option("--slurm", is_flag=True, help="Submit each point as a Slurm job through submitit.")
@click.option("--slurm-partition", type=str, default=None, help="Slurm partition (with --slurm).")
@click.option("--slurm-minutes", type=int, default=60, show_default=True,
              help="Time limit per job in minutes (with --slurm).")
@click.option("--slurm-folder", type=click.Path(file_okay=False), default="sweep_slurm_logs", show_default=True,
              help="submitit log folder (with --slurm).")
@click.option("--no-resume", is_flag=True, help="Recompute points that are already complete in --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Draw the test loss of every point of the grid (PNG, PDF or SVG by suffix).")
@click.option("--allow-unconverged", is_flag=True,
              help="Exit 0 even when a theory point did not converge (it is still stored, reported and marked).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar over points.")
@handle_errors
def sweep(kind, params, fixed, out, workers, scheduler, slurm, slurm_partition, slurm_minutes, slurm_folder,
          no_resume, as_json, plot, allow_unconverged, progress):
    """Run a grid of theory or simulation runs through a process pool, Dask or Slurm.

    Each result is stored in --out as soon as it finishes; rerunning the same command skips the
    points already complete. Example:

        dmft sweep --kind theory -p alpha=inf -p epsilon=0.05,0.1,0.25 -p scale=1,2,4 --out sweep.h5
    """
    from comparisons.sweeps import check_parameter_names, make_executor, parse_value
    from comparisons.sweeps import sweep as run_sweep

    check_outputs(out, plot)  # before any computation
    def parse_pair(text, option):
        if "=" not in text:
            raise click.BadParameter(f"expected NAME=VALUE[,VALUE...], got {text!r}", param_hint=option)
        name, _, values = text.partition("=")
        return name.strip().replace("-", "_"), [parse_value(v) for v in values.split(",") if v.strip()]

    grid = {}
    for text in params:
        name, values = parse_pair(text, "--param")
        if name in grid:
            raise click.BadParameter(f"{name} is given twice; list all its values in one -p {name}=V1,V2,...",
                                     param_hint="'--param'")
        grid[name] = values
    shared = {}
    for text in fixed:
        name, values = parse_pair(text, "--set")
        if name in grid or name in shared:
            raise click.BadParameter(f"{name} is given twice (swept by -p or set already); give it once",
                                     param_hint="'--set'")
        shared[name] = values[0] if len(values) == 1 else values
    check_parameter_names(kind, set(grid) | set(shared))  # before the first point
    slurm_options = {"timeout_min": slurm_minutes}
    if slurm_partition:
        slurm_options["slurm_partition"] = slurm_partition
    if scheduler is not None or slurm:     # also an empty --scheduler, which make_executor refuses
        try:
            executor, close = make_executor(workers=workers, scheduler=scheduler, slurm=slurm,
                                            slurm_folder=slurm_folder, slurm_options=slurm_options)
        except RuntimeError as exc:  # no Slurm cluster here: one line, exit 1 (as dmft phase)
            raise click.ClickException(str(exc)) from None
        workers = None                    # the executor is chosen; the local pool's size does not apply
    else:
        executor, close = None, (lambda: None)
    try:
        result = run_sweep(grid, kind, out, executor, fixed=shared, workers=workers,
                           progress=progress and not as_json, resume=not no_resume)
    finally:
        close()
    plot_error = None
    stored = bool(result.computed or result.skipped)
    if plot and stored:
        try:
            _plot_sweep(result, plot)
        except OSError as exc:
            plot_error = f"error (input/output): could not save the plot {plot}: {exc}"
    if as_json:
        summary = result.summary()
        summary["plot"] = plot if plot and stored and not plot_error else None
        echo_json(summary)
    else:
        click.echo(f"sweep ({kind}): {len(result.names)} points, {len(result.computed)} computed, "
                   f"{len(result.skipped)} already complete, {len(result.failed)} failed, "
                   f"{len(result.unconverged)} not converged, {result.seconds:.1f} s; stored in {result.out}")
        for name in result.names:
            if name in result.converged:
                click.echo(f"  {'converged    ' if result.converged[name] else 'NOT CONVERGED'}  {name}")
        if plot and stored and not plot_error:
            click.echo(f"  plot saved to {plot}")
        elif plot and not stored:
            click.echo("  no plot: no point of the sweep was stored")
    for name, message in result.failed.items():
        click.echo(f"  failed {name}: {message}", err=True)
    if plot_error:
        click.echo(plot_error, err=True)
    if result.unconverged and not allow_unconverged:
        what = "theory point(s)" if kind == "theory" else "simulation(s) diverged:"
        click.echo(f"error (did not converge): {len(result.unconverged)} {what} not converged: "
                   f"{', '.join(result.unconverged)}; --allow-unconverged accepts them", err=True)
        sys.exit(EXIT_NOT_CONVERGED)
    if result.failed and len(result.invalid) == len(result.failed) and not plot_error:
        click.echo(f"error (invalid input): {len(result.invalid)} point(s) refused their parameters", err=True)
        sys.exit(EXIT_INVALID)
    if result.failed or plot_error:
        sys.exit(EXIT_IO)


def _plot_sweep(result, path) -> None:
    from comparisons.overlay import pyplot
    from comparisons.store import load

    plt = pyplot()
    runs = load(result.out)
    fig, ax = plt.subplots(figsize=(6.4, 4.6), constrained_layout=True)
    for name in result.names:
        if name in runs:
            run = runs[name]
            keep = run.t > 0
            label = name.split("__", 1)[1].replace("__", ", ") + ("" if run.converged else " (NOT CONVERGED)")
            ax.plot(run.t[keep], run.test_loss[keep], lw=1.2, ls="-" if run.converged else ":", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"time $t = \eta_0\,\mathrm{step}/D$")
    ax.set_ylabel("test loss (mean squared error)")
    ax.legend(fontsize=6)
    save_figure(fig, path)


@click.command()
@click.argument("out", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace runs that OUT already holds.")
@click.option("--json", "as_json", is_flag=True, help="Print the merge report as JSON.")
@handle_errors
def merge(out, inputs, overwrite, as_json):
    """Merge the complete runs and records of stores IN1.h5 IN2.h5 ... into OUT.h5 (atomic, provenance kept).

    Example: dmft merge all.h5 worker0.h5 worker1.h5
    """
    from comparisons.store import merge_stores

    report = merge_stores(out, inputs, overwrite=overwrite)
    if as_json:
        echo_json(report)
    else:
        records = report["records"]
        click.echo(f"merged into {out}: {len(report['copied'])} copied, {len(report['skipped'])} already present, "
                   f"{len(report['incomplete'])} incomplete ignored; records: {len(records['copied'])} copied, "
                   f"{len(records['skipped'])} already present, {len(records['incomplete'])} incomplete ignored")


@click.command()
@click.argument("name", type=str)
@click.option("--full", is_flag=True, help="The paper's sizes (hours on a CPU) instead of the reduced ones.")
@click.option("--out-dir", type=click.Path(file_okay=False), default="figures", show_default=True,
              help="Where NAME.png and NAME.pdf (and NAME.h5 with the runs) are written.")
@click.option("--seed", type=int, default=0, show_default=True, help="First simulation seed (integer >= 0).")
@click.option("--device", type=str, default="auto", show_default=True, help="Simulation device: auto, cpu, cuda.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written and the key numbers as JSON.")
@click.option("--set", "overrides", multiple=True,
              help="Override a setting of the figure, NAME=VALUE (repeat; a comma makes a list), e.g. for fig3e "
                   "--set t_max=20 --set scales=1,2 --set seeds=2 --set workers=0.")
@click.option("--solver", "solver", multiple=True,
              help="Option of dmft.solve for the figure's DMFT runs, NAME=VALUE (repeat), e.g. --solver samples=4096 "
                   "--solver grid=log (fig3e).")
@handle_errors
def figure(name, full, out_dir, seed, device, as_json, overrides, solver):
    """Reproduce a figure of the paper: fig1, fig3a, fig3b, fig3e, fig4, fig11 (or 'all').

    Reduced size by default (a minute or two on one core), the paper's sizes with --full.
    Sweeps are labelled with this package's names: "scale kappa (paper: alpha)". fig3e draws
    the simulated amount of grokking beside the DMFT's on the same grid and the online escape
    time, and reports their rank correlation and largest difference in seed spreads.
    """
    from comparisons.figures import FIGURES, make_figure
    from comparisons.sweeps import parse_value
    from empirical.devices import resolve_device

    resolve_device(device)                # refused now, not when the first uncached simulation runs
    names = list(FIGURES) if name == "all" else [name]
    for figure_name in names:
        if figure_name not in FIGURES:
            raise InvalidParameterError(f"figure NAME must be one of {', '.join(FIGURES)} or all, got {figure_name!r}")

    def pairs(texts, option):
        parsed = {}
        for text in texts:
            if "=" not in text:
                raise click.BadParameter(f"expected NAME=VALUE[,VALUE...], got {text!r}", param_hint=option)
            key, _, values = text.partition("=")
            items = [parse_value(v) for v in values.split(",") if v.strip()]
            parsed[key.strip()] = items if "," in values else (items[0] if items else "")
        return parsed

    settings = pairs(overrides, "--set")
    if solver:
        settings["solver"] = pairs(solver, "--solver")
    if settings and len(names) != 1:
        raise InvalidParameterError("--set/--solver apply to one figure, not to 'all'")
    reports = [make_figure(n, full=full, out_dir=out_dir, seed=seed, device=device, settings=settings or None)
               for n in names]
    if as_json:
        echo_json([r.summary() for r in reports])
    else:
        for report in reports:
            for line in report.lines():
                click.echo(line)
