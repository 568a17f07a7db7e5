"""Command-line interface ``dmft`` (mirrors the Python API).

Exit codes: 0 success; 2 invalid input (one-line message naming the parameter); 3 the solver did
not converge or produced non-finite values (message with iteration and residual).
"""

from __future__ import annotations

import json
import math
import sys

import click

from ._commands import LazyGroup

__all__ = ["main", "handle_invalid_input", "parse_floats", "emit_result"]

EXIT_NOT_CONVERGED = 3

ALPHA_HELP = (
    "Sample ratio alpha = P/D (training samples per input dimension), in (0, inf]; "
    "'inf' gives the online (Saad-Solla) limit. NOT the output scale: that is --scale."
)
SCALE_HELP = "Output scale kappa > 0 of f = (kappa/N) sum_i phi(w_i.x) (the paper's laziness 'alpha')."
EPSILON_HELP = "Quadratic coefficient epsilon of phi(h) = h + (epsilon/2) h^2 (initial NTK-task alignment)."


def parse_floats(text: str | None, name: str):
    """Parse a comma-separated list of floats (``None`` passes through)."""
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}", param_hint=name) from exc


def handle_invalid_input(func):
    """Turn ``ValueError`` raised by parameter validation into a one-line usage error (exit 2)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None

    return wrapper


def _summary_lines(result) -> list[str]:
    p = result.parameters
    lines = [
        f"{result.kind} learning curves: alpha={p['alpha']:g} (P/D), scale={p['scale']:g}, "
        f"epsilon={p['epsilon']:g}, width={p['width']}, center={p['center']}",
        f"  converged={result.converged}  iterations={result.iterations}  "
        f"residual={result.residual:.3g}  time={result.seconds:.2f} s",
        f"  {result.message}",
        "         t    train_loss     test_loss   overlap m(t)",
    ]
    T = len(result.t)
    rows = sorted(set(np.linspace(0, T - 1, min(T, 9)).round().astype(int).tolist()))
    for i in rows:
        m = " ".join(f"{v:+.3f}" for v in result.overlap[i])
        lines.append(f"  {result.t[i]:8.2f}  {result.train_loss[i]:12.5g}  {result.test_loss[i]:12.5g}   {m}")
    return lines


def emit_result(result, *, as_json: bool, out: str | None, run_name: str | None, plot: str | None, title: str):
    """Print the summary (or JSON), store the run, save the plot; exit 3 if not converged."""
    if out:
        from comparisons.store import write_run

        write_run(out, run_name or default_run_name(result), result)
    if plot:
        from .plotting import plot_curves, save_figure

        save_figure(plot_curves(result, title=title), plot)
    if as_json:
        click.echo(json.dumps(result.summary()))
    else:
        for line in _summary_lines(result):
            click.echo(line)
        if out:
            click.echo(f"  stored in {out}")
        if plot:
            click.echo(f"  plot saved to {plot}")
    if not result.converged:
        click.echo(
            f"error: not converged after {result.iterations} iterations, residual {result.residual:.3g}: "
            f"{result.message}",
            err=True,
        )
        sys.exit(EXIT_NOT_CONVERGED)


def default_run_name(result) -> str:
    p = result.parameters
    name = f"{result.kind}_alpha{p['alpha']:g}_scale{p['scale']:g}_eps{p['epsilon']:g}_N{p['width']}"
    if p.get("center"):
        name += "_centered"
    seed = result.settings.get("seed")
    if seed is not None:
        name += f"_seed{seed}"
    return name


import numpy as np  # noqa: E402  (after helpers, keeps the CLI import light for --help)


#: Commands of the other packages, imported on first use (``dmft solve`` stays free of torch).
_LAZY_COMMANDS = {
    "ntk": ("dmft.ntk_cli", "ntk"),
    "train": ("empirical.cli", "train"),
    "compare": ("comparisons.cli", "compare"),
    "figure": ("comparisons.cli", "figure"),
    "sweep": ("comparisons.cli", "sweep"),
    "merge": ("comparisons.cli", "merge"),
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
@click.option("--scale", type=float, default=1.0, show_default=True, help=SCALE_HELP)
@click.option("--width", type=int, default=2, show_default=True, help="Hidden units N.")
@click.option("--t-max", type=float, default=40.0, show_default=True, help="Final time t (units lr*step/D).")
@click.option("--dt", type=float, default=0.25, show_default=True, help="Time step of the grid (units of t).")
@click.option("--init-overlap", type=str, default=None,
              help="Initial overlaps m_i(0) = w_i.beta/D, comma-separated, |m_i| < sqrt(rho). "
                   "[default: +0.1,-0.1,... (planted, typical of D=100)]")
@click.option("--init-cov", type=str, default=None,
              help="Initial covariance C_w(0,0) as N*N comma-separated numbers (row-major). "
                   "[default: planted, delta_ij + (1-delta_ij) m_i m_j / rho]")
@click.option("--center/--no-center", default=False, show_default=True,
              help="Train the centred predictor f(x;W) - f(x;W(0)).")
@click.option("--rho", type=float, default=1.0, show_default=True, help="Teacher norm |beta|^2/D.")
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
    from .solve import solve as solve_curves

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
