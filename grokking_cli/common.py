"""What every command of the ``dmft`` CLI shares: help texts, exit codes, input parsing, output.

Exit codes: 0 success; 2 invalid input (one-line message naming the parameter); 3 the solver did
not converge, or a run diverged or produced non-finite values.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys

import click
import numpy as np

from dmft.plotting import plot_curves, save_figure

__all__ = ["EXIT_NOT_CONVERGED", "ALPHA_HELP", "SCALE_HELP", "EPSILON_HELP", "api_default", "parse_floats",
           "handle_invalid_input", "emit_result", "default_run_name"]

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
        from comparisons.store import write_run  # start-up time: h5py only when a run is stored

        write_run(out, run_name or default_run_name(result), result)
    if plot:
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


def api_default(api, name: str):
    """The default of field or parameter ``name`` of ``api`` (a dataclass or a function).

    Options read their defaults from here, so that the command line and the Python API cannot
    drift apart.
    """
    import dataclasses

    if dataclasses.is_dataclass(api):
        for f in dataclasses.fields(api):
            if f.name == name:
                if f.default is not dataclasses.MISSING:
                    return f.default
                if f.default_factory is not dataclasses.MISSING:
                    return f.default_factory()
                break
        raise KeyError(f"{api.__name__} has no field {name!r} with a default")
    parameter = inspect.signature(api).parameters.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        raise KeyError(f"{api.__name__} has no parameter {name!r} with a default")
    return parameter.default


class ApiOption(click.Option):
    """An option whose default is the default of the API it feeds, read when first needed.

    ``api`` names a dataclass or function as ``"module:attribute"`` and ``field`` its field or
    parameter (the option's own name unless given). The module is imported only when the default
    is needed (the command runs or its ``--help`` is shown), so listing the commands stays free
    of torch. ``--help`` shows the value, as for a literal default.
    """

    def __init__(self, *decls, api: str, field: str | None = None, **kwargs):
        kwargs.setdefault("show_default", True)
        super().__init__(*decls, **kwargs)
        self.api = api
        self.field = field or self.name

    def api_value(self):
        import importlib

        module_name, attr = self.api.split(":")
        return api_default(getattr(importlib.import_module(module_name), attr), self.field)

    def get_default(self, ctx, call=True):
        value = super().get_default(ctx, call=call)
        if value is None or type(value).__name__ == "Sentinel":  # no default given here (click >= 8.3: UNSET)
            return self.api_value()
        return value


def api_option(*decls, api: str, field: str | None = None, **kwargs):
    """``click.option`` with the default read from ``api`` (see :class:`ApiOption`)."""
    return click.option(*decls, cls=ApiOption, api=api, field=field, **kwargs)
