"""Command-line interface ``dmft`` (mirrors the Python API).

Exit codes: 0 success; 2 invalid input (one-line message naming the parameter); 3 the solver did
not converge or produced non-finite values (message with iteration and residual).
"""

from __future__ import annotations

import math

import click
import numpy as np

from grokking_cli.common import (ALPHA_HELP, EPSILON_HELP, SCALE_HELP, api_option, emit_result, handle_invalid_input,
                                 parse_floats)
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


@main.command()
@click.option("--alpha", type=float, required=True, help=ALPHA_HELP)
@click.option("--epsilon", type=float, required=True, help=EPSILON_HELP)
@api_option("--scale", type=float, api=_SOLVE, help=SCALE_HELP)
@api_option("--width", type=int, api=_SOLVE, help="Hidden units N.")
@api_option("--t-max", type=float, api=_SOLVE, help="Final time t (units lr*step/D).")
@api_option("--dt", type=float, api=_SOLVE, help="Time step of the grid (units of t).")
@click.option("--init-overlap", type=str, default=None,
              help="Initial overlaps m_i(0) = w_i.beta/D, comma-separated, |m_i| < sqrt(rho). "
                   "[default: +0.1,-0.1,... (planted, typical of D=100)]")
@click.option("--init-cov", type=str, default=None,
              help="Initial covariance C_w(0,0) as N*N comma-separated numbers (row-major). "
                   "[default: planted, delta_ij + (1-delta_ij) m_i m_j / rho]")
@click.option("--center/--no-center", default=False, show_default=True,
              help="Train the centred predictor f(x;W) - f(x;W(0)).")
@api_option("--rho", type=float, api=_SOLVE, help="Teacher norm |beta|^2/D.")
@click.option("--samples", type=int, default=None,
              help="Monte Carlo samples S of the data-side process per iteration (finite alpha; a multiple of 4, "
                   "antithetic quadruplets). The curves' Monte Carlo error falls like S^-1/2 and grows with t "
                   "at small alpha (alpha=3, t=20: 2.7% of the test loss at the default, 0.9% at 131072); "
                   "raise S or average several --seed values for long windows. [default: 32768]")
@click.option("--response", type=click.Choice(["probe", "exact"]), default="probe", show_default=True,
              help="Estimator of the response R_g: 'probe' (random probe vectors, cost of one extra "
                   "trajectory) or 'exact' (per-sample block recursion, cost ~T^3 N^3/6 per sample).")
@click.option("--response-samples", type=int, default=None,
              help="Samples of the exact response recursion (--response exact). [default: all]")
@click.option("--damping", type=float, default=None,
              help="Damping delta in (0,1] of the fixed-point update X <- (1-delta)X + delta X_new "
                   "(also the step of Anderson mixing). [default: 0.5]")
@click.option("--mixing", type=click.Choice(["anderson", "damped"]), default="anderson", show_default=True,
              help="Fixed-point scheme: Anderson mixing (depth 5) or plain damped iteration.")
@click.option("--tol", type=float, default=None,
              help="Convergence tolerance on the sup-norm residual of C_w, m, R_w. [default: 1e-4]")
@click.option("--max-iter", type=int, default=None, help="Maximum fixed-point iterations. [default: 100]")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the Monte Carlo samples.")
@click.option("--backend", type=click.Choice(["numba", "numpy"]), default="numba", show_default=True,
              help="Kernels of the finite-alpha solver (numpy: the vectorised reference, ~30x slower).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON summary instead of the table.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Store the run in this HDF5 file.")
@click.option("--run-name", type=str, default=None, help="Name of the run in --out [default: from the parameters].")
@click.option("--plot", type=click.Path(dir_okay=False), default="dmft_solve.png", show_default=True,
              help="Save train/test loss with the test-loss decomposition (PNG, PDF or SVG by suffix).")
@click.option("--no-plot", is_flag=True, help="Do not save a plot.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar over iterations.")
@handle_invalid_input
def solve(alpha, epsilon, scale, width, t_max, dt, init_overlap, init_cov, center, rho, samples,
          response, response_samples, damping, mixing, tol, max_iter, seed, backend, as_json, out, run_name, plot,
          no_plot, progress):
    """Theoretical train/test learning curves of the committee machine.

    Finite --alpha solves the DMFT of full-batch gradient flow on P = alpha*D Gaussian samples
    (D -> infinity, N fixed); --alpha inf integrates the online ODE. Example:

        dmft solve --alpha 10 --epsilon 0.1
    """
    from dmft.solve import solve as solve_curves

    overlap = parse_floats(init_overlap, "--init-overlap")
    cov = parse_floats(init_cov, "--init-cov")
    if cov is not None:
        n = int(round(math.sqrt(len(cov))))
        if n * n != len(cov):
            raise ValueError(f"init_cov must have N*N entries, got {len(cov)}")
        cov = np.array(cov).reshape(n, n)
    options = {}
    if not math.isinf(alpha):
        options = {"seed": seed, "backend": backend, "progress": progress and not as_json, "response": response,
                   "mixing": mixing}
        for key, value in dict(samples=samples, response_samples=response_samples, damping=damping,
                               tol=tol, max_iter=max_iter).items():
            if value is not None:
                options[key] = value
    result = solve_curves(alpha, epsilon, scale=scale, width=width, t_max=t_max, dt=dt,
                          init_overlap=overlap, init_cov=cov, center=center, rho=rho, **options)
    title = f"alpha=P/D={alpha:g}, scale={scale:g}, epsilon={epsilon:g}, N={width}" + (", centred" if center else "")
    emit_result(result, as_json=as_json, out=out, run_name=run_name, plot=None if no_plot else plot, title=title)


if __name__ == "__main__":  # pragma: no cover
    main()
