"""``dmft phase``: the DMFT phase diagram of grokking over two of (scale κ, ε, alpha).

Mirrors :func:`comparisons.phase.phase_diagram`. Exit codes (grokking_cli.common): 0 success;
1 an I/O error (the store or the plot cannot be written or read, checked before computing), no
Slurm or Dask here, or a point whose worker raised something else than a solver failure; 2 invalid
input (one line naming the parameter; also a malformed or unreachable ``--scheduler``); 3 a point
did not converge or its solver failed (unless ``--allow-unconverged``, which accepts non-converged
points).
"""

from __future__ import annotations

import json
import math
import sys

import click

from dmft.parameters import InvalidParameterError
from grokking_cli.common import (echo_json, ALPHA_HELP, EPSILON_HELP, EXIT_IO, EXIT_NOT_CONVERGED, SCALE_HELP, api_option,
                                 check_outputs, handle_errors, parse_floats)

__all__ = ["phase"]

_SOLVE = "dmft.solve:solve"
#: Options passed through to dmft.solve only when given (some exist only in newer solvers).
_PASS_THROUGH = ("samples", "tol", "max_iter", "grid", "grid_points", "error_replicas", "damping", "sampler")


def _values(text: str | None, name: str):
    """A number or a comma-separated list; returns (values, is_list)."""
    if text is None:
        return None, False
    values = parse_floats(text, f"--{name}")
    if not values:
        raise InvalidParameterError(f"{name} must be a number or a comma-separated list of numbers, got {text!r}")
    return values, "," in text


@click.command()
@click.option("--alpha", type=str, required=True,
              help=ALPHA_HELP + " A comma-separated list sweeps it (e.g. 3,5.5,10,inf).")
@click.option("--scale", type=str, default=None, help=SCALE_HELP + " A comma-separated list sweeps it. [default: 1]")
@click.option("--epsilon", type=str, required=True, help=EPSILON_HELP + " A comma-separated list sweeps it.")
@api_option("--width", type=int, api=_SOLVE, help="Hidden units N.")
@click.option("--center/--no-center", default=False, show_default=True,
              help="Centred predictor f(x;W) - f(x;W(0)) (the paper's Fig. 3e is centred).")
@click.option("--init-overlap", type=str, default=None,
              help="Initial overlaps m_i(0), comma-separated. [default: the solver's, +0.1,-0.1,...]")
@api_option("--rho", type=float, api=_SOLVE, help="Teacher norm |beta|^2/D.")
@api_option("--t-max", type=float, api=_SOLVE, help="Final time t = lr*step/D of every solve.")
@api_option("--dt", type=float, api=_SOLVE,
            help="Time step in units of t (of the uniform grid; first step of a log grid).")
@click.option("--threshold", type=float, default=0.1, show_default=True,
              help="A loss has fallen once it is below THRESHOLD x its value at t=0 (Fig. 3e: 0.1).")
@click.option("--horizon", type=click.Choice(["full", "adaptive"]), default="full", show_default=True,
              help="full: solve every point to --t-max; adaptive: on horizons 40, 80, ... up to --t-max, stopping "
                   "at the first where both thresholds are crossed (cheaper, and clear of the long-horizon Monte "
                   "Carlo error at small alpha; the stored solves then depend on --threshold). The horizons it "
                   "discards are solved without their error replicas.")
@click.option("--samples", type=int, default=None,
              help="Monte Carlo samples S of the DMFT (multiple of 4). [default: the solver's, 32768]")
@click.option("--tol", type=float, default=None,
              help="Fixed-point tolerance of the DMFT (sup-norm residual). [default: the solver's, 1e-4]")
@click.option("--max-iter", type=int, default=None,
              help="Maximum fixed-point iterations per marching window. [default: the solver's, 100]")
@click.option("--damping", type=float, default=None,
              help="Damping in (0,1] of the fixed-point update. [default: the solver's, 0.5]")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Monte Carlo seed of every finite-alpha solve (integer >= 0).")
@click.option("--grid", type=str, default=None,
              help="Time grid of the solver: uniform or log. [default: the solver's, log at finite alpha, uniform "
                   "at alpha = inf]")
@click.option("--grid-points", type=int, default=None,
              help="Points of a log grid (given alone it selects the log grid). [default: the solver's, 98 for "
                   "t_max=40]")
@click.option("--error-replicas", type=int, default=None,
              help="Replica solves B for the Monte Carlo error bars (0, or >= 2). [default: the solver's, 8]")
@click.option("--sampler", type=click.Choice(["rqmc", "mc"]), default=None,
              help="Field normals of the DMFT: mc (pseudo-random) or rqmc (scrambled Sobol'). [default: mc]")
@click.option("--out", type=click.Path(dir_okay=False), default="phase.h5", show_default=True,
              help="HDF5 store of every solve; solves already complete there are reused (resume).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Heat map of the amount of grokking (.png, .pdf or .svg).")
@click.option("--json", "as_json", is_flag=True,
              help="Print {\"points\": [...]} as JSON (null where censored; alpha = inf as \"inf\").")
@click.option("--workers", type=int, default=None,
              help="Processes of the local pool (0: solve in this process; not with --scheduler or --slurm). "
                   "[default: CPU count]")
@click.option("--scheduler", type=str, default=None, help="Address of a Dask scheduler (tcp://host:8786).")
@click.option("--slurm", is_flag=True, help="Submit each point as a Slurm job through submitit.")
@click.option("--slurm-partition", type=str, default=None, help="Slurm partition (with --slurm).")
@click.option("--slurm-minutes", type=int, default=60, show_default=True,
              help="Time limit per job in minutes (with --slurm).")
@click.option("--slurm-folder", type=click.Path(file_okay=False), default="phase_slurm_logs", show_default=True,
              help="submitit log folder (with --slurm).")
@click.option("--no-resume", is_flag=True, help="Recompute points already complete in --out.")
@click.option("--allow-unconverged", is_flag=True, help="Exit 0 even if some solve did not converge.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar over points.")
@handle_errors
def phase(alpha, scale, epsilon, width, center, init_overlap, rho, t_max, dt, threshold, horizon, samples, tol, max_iter,
          damping, seed, grid, grid_points, error_replicas, sampler, out, plot, as_json, workers, scheduler, slurm,
          slurm_partition, slurm_minutes, slurm_folder, no_resume, allow_unconverged, progress):
    """The phase diagram of grokking from the DMFT: the amount t_test - t_train over two of
    --alpha, --scale, --epsilon (give exactly two of them as comma-separated lists).

    Per point: the first times the train and the test loss fall below --threshold x their
    initial value, their difference (with the Monte Carlo error bar where the solver gives one),
    whether a threshold was never reached by --t-max (censored: null, never a number), whether
    such a threshold was within the Monte Carlo error at the end (unresolved: the theory cannot
    say) and whether the solve converged. Example (the grid of Fig. 3e):

    \b
        dmft phase --alpha 5.5 --width 4 --center --scale 0.4,0.8,1.6,2.4
        --epsilon 0.04,0.08,0.16,0.28 --t-max 300 --out phase.h5 --plot phase.png --json
    """
    from comparisons.phase import phase_diagram, phase_points, plot_phase, solver_accepts

    given = {"alpha": _values(alpha, "alpha"), "scale": _values(scale, "scale"), "epsilon": _values(epsilon, "epsilon")}
    swept = [k for k, (v, is_list) in given.items() if is_list]
    if len(swept) != 2:
        raise InvalidParameterError("give exactly two of --alpha, --scale, --epsilon as comma-separated lists "
                         f"(the swept parameters), got {len(swept)}: {', '.join(swept) or 'none'}")
    axes = {k: given[k][0] for k in ("scale", "epsilon", "alpha") if k in swept}
    fixed = {"width": width, "center": center, "rho": rho, "t_max": t_max, "dt": dt}
    for k, (values, is_list) in given.items():
        if values is not None and not is_list:
            if len(values) != 1:
                raise InvalidParameterError(f"{k} must be one number when it is not swept, got {values!r}")
            fixed[k] = values[0]
    overlap = parse_floats(init_overlap, "--init-overlap")
    if overlap is not None:
        fixed["init_overlap"] = overlap
    options = {"seed": seed}
    accepted = solver_accepts()
    for key, value in dict(samples=samples, tol=tol, max_iter=max_iter, damping=damping, grid=grid,
                           grid_points=grid_points, error_replicas=error_replicas, sampler=sampler).items():
        if value is None:
            continue
        if key not in accepted:
            raise InvalidParameterError(f"--{key.replace('_', '-')}: the installed solver has no option {key!r} "
                             "(it comes with the long-horizon solver)")
        options[key] = value
    if not 0.0 < threshold < 1.0 or math.isnan(threshold):
        raise InvalidParameterError(f"threshold must lie in (0, 1), got {threshold!r}")
    if workers is not None and workers < 0:
        raise InvalidParameterError(f"workers must be an integer >= 0, got {workers}")
    check_outputs(out, plot)   # before any computation: bad suffix exit 2, unwritable exit 1
    slurm_options = {"timeout_min": slurm_minutes}
    if slurm_partition:
        slurm_options["slurm_partition"] = slurm_partition
    try:
        result = phase_diagram(axes, fixed, threshold=threshold, out=out, workers=workers, scheduler=scheduler,
                               slurm=slurm, slurm_options=slurm_options, slurm_folder=slurm_folder,
                               progress=progress and not as_json, resume=not no_resume, horizon=horizon, **options)
    except RuntimeError as exc:  # no Slurm cluster here (a StoreError is an I/O error: handle_errors)
        if type(exc).__name__ == "StoreError":
            raise
        raise click.ClickException(str(exc)) from None
    points = [{k: ("inf" if isinstance(v, float) and math.isinf(v) else v) for k, v in p.items() if k != "run"}
              for p in phase_points(result)]
    if plot is not None:
        from dmft.plotting import save_figure

        unswept = json.loads(result.attrs["fixed"])   # with the solver's default of an unswept --scale
        title = ", ".join(f"{k}={float(unswept[k]):g}" for k in ("alpha", "scale", "epsilon") if k in unswept) + \
            f", N={width}{', centred' if center else ''}, t <= {t_max:g}; losses < {threshold:g} x initial"
        save_figure(plot_phase(result, title=title), plot)
    failed = json.loads(result.attrs["failed"])
    if as_json:
        echo_json({"points": points, "threshold": threshold, "store": str(out),
                   "computed": int(result.attrs["computed"]), "reused": int(result.attrs["reused"]),
                   "failed": failed})
    else:
        d0, d1 = list(axes)
        click.echo(f"phase diagram over {d0} x {d1}: {len(points)} points, {result.attrs['computed']} computed, "
                   f"{result.attrs['reused']} reused, {result.attrs['seconds']:.1f} s; stored in {out}")
        click.echo(f"  {d0:>8s} {d1:>8s}   t_train    t_test    amount       sem  censored unresolved converged")

        def cell(v):
            return f"{v:9.3g}" if v is not None else "        -"

        for p in points:
            click.echo(f"  {float(p[d0]):8.4g} {float(p[d1]):8.4g} {cell(p['t_train'])} {cell(p['t_test'])} "
                       f"{cell(p['amount'])} {cell(p['amount_sem'])}  {str(p['censored']):>8s} {str(p['unresolved']):>10s} "
                       f"{str(p['converged']):>9s}")
        if plot is not None:
            click.echo(f"  heat map saved to {plot}")
    for name, message in failed.items():
        click.echo(f"error: point {name} failed: {message}", err=True)
    if failed:   # a solver failure is a convergence failure (3), anything else ends as exit 1
        solver_failures = ("DMFTError", "OnlineODEError")   # the dmft.errors.SolverError types, by name
        sys.exit(EXIT_NOT_CONVERGED if all(m.startswith(solver_failures) for m in failed.values()) else EXIT_IO)
    unconverged = [p for p in points if not p["converged"]]
    if unconverged and not allow_unconverged:
        click.echo(f"error: {len(unconverged)} of {len(points)} solves did not converge (marked in the output; "
                   "--allow-unconverged accepts them)", err=True)
        sys.exit(EXIT_NOT_CONVERGED)
