"""Command-line interface ``dmft`` (mirrors the Python API).

Exit codes (grokking_cli.common): 0 success; 1 input/output (a store or plot that cannot be
written); 2 invalid input (one-line message naming the parameter); 3 the solver did not converge
or produced non-finite values (message with iteration and residual).
"""

from __future__ import annotations

import math

import click
import numpy as np

from dmft.parameters import InvalidParameterError
from grokking_cli.common import (family_options, family_settings, ALPHA_HELP, EPSILON_FAMILY_HELP, resolve_epsilon, SCALE_HELP, api_option, check_outputs, check_solver_settings, emit_result,
                                 handle_errors, parse_floats, prepare_store, readable_name, run_identity)
from grokking_cli.lazy import LazyGroup

__all__ = ["main"]

#: The API whose defaults ``dmft solve`` shows.
_SOLVE = "dmft.solve:solve"

#: Commands of the other packages, imported on first use (``dmft solve`` stays free of torch).
_LAZY_COMMANDS = {
    "ntk": ("grokking_cli.ntk", "ntk"),
    "train": ("grokking_cli.train", "train"),
    "compare": ("grokking_cli.compare", "compare"),
    "figure": ("grokking_cli.compare", "figure"),
    "sweep": ("grokking_cli.compare", "sweep"),
    "merge": ("grokking_cli.compare", "merge"),
    "phase": ("grokking_cli.phase", "phase"),
}


@click.group(cls=LazyGroup, lazy_commands=_LAZY_COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="grokking-theory")
def main():
    """grokking-theory: learning curves of grokking from theory (DMFT, online ODE, NTK)
    and simulation.

    Conventions: alpha = P/D is the sample ratio, scale is the output scale kappa,
    epsilon the quadratic coefficient of phi(h) = h + epsilon h^2/2. Time is
    t = lr * step / D. Losses are mean squared errors (no 1/2).
    """


#: Options of the finite-alpha solver: refused at alpha = inf (the online ODE has none of them).
_SOLVER_OPTIONS = ("samples", "response", "response_samples", "damping", "mixing", "tol", "max_iter", "seed",
                   "backend", "symmetrize", "error_replicas", "sampler", "union_of_replicas", "precision",
                   "two_level")


def _given(ctx, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


@main.command()
@click.option("--alpha", type=float, required=True, help=ALPHA_HELP)
@click.option("--epsilon", type=float, default=None, help=EPSILON_FAMILY_HELP)
@api_option("--scale", type=float, api=_SOLVE, help=SCALE_HELP)
@api_option("--width", type=int, api=_SOLVE, help="Hidden units N (integer >= 1; at finite alpha the memory grows like (T*N)^2 for T grid times, and a solve beyond this machine's memory is refused).")
@api_option("--t-max", type=float, api=_SOLVE, help="Final time, in theory time t = eta0*step/D.")
@api_option("--dt", type=float, api=_SOLVE,
            help="Time step of a uniform grid, or the first step of the log grid (units of t).")
@click.option("--grid", type=click.Choice(["uniform", "log"]), default=None,
              help="Time grid: 'uniform' (steps of --dt, ending exactly at --t-max) or 'log' (step --dt at "
                   "t=0 growing like dt + 0.01 t: 98 points to t=40, 125 to t=60, 259 to t=300, 374 to t=1000). "
                   "The log grid is as accurate as the uniform one with the same --dt (both within 1.7 Monte "
                   "Carlo standard errors of a dt=0.125 solve for t>=2, alpha=3 and 10) and an iteration costs "
                   "~K^2: the default command takes ~2.3x less time on it than on the uniform grid. "
                   "[default: log at finite alpha, uniform at alpha=inf]")
@click.option("--grid-points", type=int, default=None,
              help="Number of points K of a --grid log time grid (cost per iteration grows like K^2; given "
                   "alone it selects the log grid, also at --alpha inf). "
                   "[default: 1 + ceil(1 + ln(1 + 0.01 t_max/dt)/0.01): 98 for t_max=40, 259 for t_max=300 at dt=0.25]")
@click.option("--init-overlap", type=str, default=None,
              help="Initial overlaps m_i(0) = w_i.beta/D, comma-separated, |m_i| < sqrt(rho). "
                   "[default: +0.1,-0.1,... (planted, typical of D=100)]")
@click.option("--init-cov", type=str, default=None,
              help="Initial covariance C_w(0,0) as N*N comma-separated numbers (row-major). "
                   "[default: planted, delta_ij + (1-delta_ij) m_i m_j / rho]")
@click.option("--center/--no-center", default=False, show_default=True,
              help="Train the centred predictor f(x;W) - f(x;W(0)), for the paper's model and for any "
                   "--activation/--target of the family (theory.md 10.10). Off by default as in the Python API "
                   "(dmft ntk centres by default: the lazy baseline is the paper's centred setting).")
@api_option("--rho", type=float, api=_SOLVE, help="Teacher norm |beta|^2/D.")
@family_options
@click.option("--lr", type=float, default=None,
              help="Learning rate eta0 > 0 of online SGD (--alpha inf only): adds the O(eta0) second-moment "
                   "term of finite steps to the online ODE (docs/theory.md par. 10.5; closed forms for erf "
                   "and for ReLU student and teacher). [default: gradient flow]")
@click.option("--samples", type=int, default=None,
              help="Monte Carlo samples S of the data-side process in all (finite alpha; a multiple of 4, "
                   "antithetic quadruplets; with --sampler rqmc and error replicas B, B solves of S/B each). "
                   "The curves' error falls like S^-1/2 (faster with rqmc) and grows with t at small alpha "
                   "(alpha=3, default S: 0.5-0.6% of the test loss at t=5, 0.9-1.6% at t=10, 4-5% at "
                   "t=20-40, 16% at t=60); raise S or average several --seed values for long windows. "
                   "[default: 32768]")
@click.option("--response", type=click.Choice(["probe", "exact"]), default="probe", show_default=True,
              help="Estimator of the response R_g: 'probe' (random probe vectors, cost of one extra "
                   "trajectory) or 'exact' (per-sample block recursion, cost ~T^3 N^3/6 per sample).")
@click.option("--response-samples", type=int, default=None,
              help="Samples of the exact response recursion; only with --response exact (refused otherwise). [default: all]")
@click.option("--damping", type=float, default=None,
              help="Damping delta in (0,1] of the fixed-point update X <- (1-delta)X + delta X_new "
                   "(also the step of Anderson mixing). [default: 0.5]")
@click.option("--mixing", type=click.Choice(["anderson", "damped"]), default="anderson", show_default=True,
              help="Fixed-point scheme: Anderson mixing (depth 5) or plain damped iteration.")
@click.option("--tol", type=float, default=None,
              help="Convergence tolerance on the sup-norm residual of C_w, m, R_w. [default: 1e-4]")
@click.option("--max-iter", type=int, default=None,
              help="Maximum fixed-point iterations per marching window (the solver converges on [0,10], "
                   "[0,20], ... up to --t-max; docs/theory.md par. 9.1). [default: 100]")
@click.option("--symmetrize/--no-symmetrize", default=None,
              help="Project every iterate onto the subspace invariant under the unit permutations and "
                   "teacher reflection that leave (m(0), C_w(0,0)) invariant (docs/theory.md par. 9.2); "
                   "identical units then stay identical. [default: on]")
@click.option("--error-replicas", type=int, default=None,
              help="Independent solves B of S/B samples each (the first from the online start, the others "
                   "from its fixed point). With --sampler rqmc the curves are their mean and the Monte Carlo "
                   "standard error of every curve their spread/sqrt(B) (bands in the plot, in --json and the "
                   "store); with mc one solve of all S samples gives the curves and the replicas the errors. "
                   "0: one solve of S samples, no error bars. Cost at the default problem (mc): ~0.7x the "
                   "solve without them (7.4 s of 17.5 s on 2 cores); with rqmc the B solves cost about one solve "
                   "of S. "
                   "[default: 8]")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the Monte Carlo samples.")
@click.option("--sampler", type=click.Choice(["rqmc", "mc"]), default=None,
              help="Field normals: mc = pseudo-random; rqmc = randomised quasi-Monte Carlo (scrambled Sobol' "
                   "points; the curves are then the mean of the --error-replicas solves of S/B samples): "
                   "1.5-2.5x smaller error at the default problem, but a solve of S/B samples can go astray on "
                   "long horizons (docs/theory.md par. 9.3). [default: mc]")
@click.option("--union-of-replicas/--separate-main", default=None,
              help="With --sampler mc and error replicas: solve the B replicas first and then the full solve on "
                   "the union of their samples, started at the mean of their fixed points (docs/theory.md par. 9.3). "
                   "Every stream drawn counts, also those of replaced replicas. Measured (2 cores, log grid): the "
                   "default problem 6.4-10.0 s instead of 7.8-8.8 s; alpha = 3, N = 4, t <= 60 183 s instead of "
                   "172 s; at the same --samples its estimate is less accurate (variance ~1.3-1.5x: coarser "
                   "strata of |h*|). [default: --separate-main]")
@click.option("--backend", type=click.Choice(["numba", "numpy"]), default="numba", show_default=True,
              help="Kernels of the finite-alpha solver (numpy: the vectorised reference, ~30x slower).")
@click.option("--precision", type=click.Choice(["double", "mixed"]), default=None,
              help="Floating point of the data side: double = float64 throughout; mixed = the two sample "
                   "products and the kernel's memory sums in float32 while the residual is above 3*tol, then "
                   "float64 to convergence: the default problem 1.33x faster, but alpha = 3 to t = 300 did not "
                   "converge with it (docs/theory.md par. 9.4). [default: double]")
@click.option("--two-level/--plain-iteration", default=None,
              help="After the S/8 warm-up, converge the full-sample map by defect correction with the warm-up "
                   "map (a full evaluation fixes the Monte Carlo difference of the two maps, the corrected "
                   "warm-up map is iterated at 1/8 of the cost; same tolerance on the full map). Tried only "
                   "where the first full residual is below 0.5 and dropped for the plain iteration when an "
                   "outer step does not halve it: the default problem 4.5 -> 3.0 s without replicas; alpha = 3 "
                   "keeps the plain iteration (docs/theory.md par. 9.3). [default: --two-level]")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON summary instead of the table.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Store the run in this HDF5 file. Rerunning the identical run resumes it (nothing is "
                   "recomputed); a run with other parameters or settings gets its own name.")
@click.option("--run-name", type=str, default=None,
              help="Name of the run in --out [default: from the parameters, ending in a digest of every setting].")
@click.option("--overwrite", is_flag=True,
              help="Replace a different run stored under --run-name, or recompute the identical one. "
                   "A non-converged run never replaces a converged one.")
@click.option("--plot", type=click.Path(dir_okay=False), default="dmft_solve.png", show_default=True,
              help="Save the learning-curve picture (PNG, PDF or SVG by suffix): train and test loss with "
                   "Monte Carlo bands, the lazy (kernel) test curve, and the delay between the times train "
                   "and test fall to 0.1 of their start.")
@click.option("--no-plot", is_flag=True, help="Do not save a plot.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="The solver's progress bar (its phase and residual; no ETA: the iteration count is unknown).")
@click.pass_context
@handle_errors
def solve(ctx, alpha, epsilon, scale, width, t_max, dt, grid, grid_points, init_overlap, init_cov, center, rho,
          activation, target, teacher_width, teacher_scale, teacher_activation, noise, lr, samples, response, response_samples, damping, mixing, tol, max_iter, symmetrize, error_replicas, seed,
          sampler, union_of_replicas, backend, precision, two_level, as_json, out, run_name, overwrite, plot, no_plot, progress):
    """Theoretical train/test learning curves of the committee machine.

    Finite --alpha solves the DMFT of full-batch gradient flow on P = alpha*D Gaussian samples
    (D -> infinity, N fixed); --alpha inf integrates the online ODE. With --activation or
    --target committee the general model family is solved (--init-overlap is then the N*M
    matrix R(0), row-major). Examples:

        dmft solve --alpha 10 --epsilon 0.1

        dmft solve --alpha 3 --activation erf --target committee --teacher-width 2 --scale 2 --teacher-scale 2
    """
    plot = None if no_plot else plot
    epsilon = resolve_epsilon(epsilon, activation, target, teacher_activation)
    check_outputs(out, plot)  # before any computation
    overlap = parse_floats(init_overlap, "--init-overlap")
    cov = parse_floats(init_cov, "--init-cov")
    if cov is not None:
        n = int(round(math.sqrt(len(cov))))
        if n * n != len(cov):
            raise InvalidParameterError(f"init_cov must have N*N entries, got {len(cov)}")
        cov = np.array(cov).reshape(n, n)
    family, overlap = family_settings(activation, target, teacher_width, teacher_scale, teacher_activation, overlap,
                                      noise)
    online = math.isinf(alpha) and alpha > 0
    if lr is not None:
        if not online:
            raise click.BadParameter(f"applies to --alpha inf only (online SGD), got --alpha {alpha:g}; the "
                                     "finite-alpha DMFT solves gradient flow", param_hint="--lr")
        if not (lr > 0 and math.isfinite(lr)):
            raise click.BadParameter(f"must lie in (0, inf), got {lr!r}", param_hint="--lr")
        family["lr"] = lr
    given = dict(samples=samples, response=response, response_samples=response_samples, damping=damping,
                 mixing=mixing, tol=tol, max_iter=max_iter, seed=seed, backend=backend, symmetrize=symmetrize,
                 error_replicas=error_replicas, sampler=sampler, union_of_replicas=union_of_replicas,
                 precision=precision, two_level=two_level)
    options = {}
    if online:
        stray = [name for name in _SOLVER_OPTIONS if _given(ctx, name)]
        if stray:
            raise InvalidParameterError(
                f"{', '.join('--' + s.replace('_', '-') for s in stray)}: options of the finite-alpha DMFT "
                "solver; --alpha inf integrates the online ODE, which has none")
    else:
        options = {key: value for key, value in given.items() if value is not None}
        check_solver_settings(options)
    grid_options = {key: value for key, value in (("grid", grid), ("grid_points", grid_points)) if value is not None}
    request = {"alpha": alpha, "epsilon": epsilon, "scale": scale, "width": width, "t_max": t_max, "dt": dt,
               "init_overlap": overlap if not isinstance(overlap, np.ndarray) else overlap.tolist(),
               "init_cov": None if cov is None else cov.tolist(), "center": center,
               "rho": rho, **family, **grid_options, **options}
    if not online:
        # the solver's defaults and numerics revision shaped the run too: a stored run from
        # before a change of them is recomputed, not resumed
        from dmft.dmft_solver import numerics_fingerprint

        request["numerics"] = numerics_fingerprint()
    identity = run_identity("online" if online else "dmft", request)
    name = run_name or readable_name("online" if online else "dmft", alpha, scale, epsilon, width, center,
                                     None if online else seed, identity)
    stored = prepare_store(out, name, identity, overwrite=overwrite)
    if stored is not None:
        result = stored
    else:
        from dmft.solve import solve as solve_curves

        result = solve_curves(alpha, epsilon, scale=scale, width=width, t_max=t_max, dt=dt,
                              init_overlap=overlap, init_cov=cov, center=center, rho=rho, **family, **grid_options,
                              **options, **({} if online else {"progress": progress and not as_json}))
    title = f"alpha=P/D={alpha:g}, scale={scale:g}, epsilon={epsilon:g}, N={width}" + (", centred" if center else "")
    if family:
        title = (f"alpha=P/D={alpha:g}, {activation} student N={width}, scale={scale:g}; "
                 + (f"{teacher_activation or activation} teacher M={teacher_width}, scale={teacher_scale:g}"
                    if target == "committee" else "square target"))

    def plotter(curves):
        from comparisons.story import lazy_reference, plot_story

        # the lazy (kernel) reference is the quadratic model's (dmft.ntk); none for the family
        return plot_story(curves, lazy=None if family else lazy_reference(curves), title=title)

    emit_result(result, as_json=as_json, out=out, run_name=name, plot=plot, title=title, identity=identity,
                request=request, overwrite=overwrite, resumed=stored is not None, plotter=plotter)


if __name__ == "__main__":  # pragma: no cover
    main()
