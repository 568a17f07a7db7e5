"""What every command of the ``dmft`` CLI shares: help texts, exit codes, input parsing, output.

Exit codes, each with a one-line message on stderr and never a traceback:

* 0 success;
* 1 input/output: a store or plot path that cannot be written or read (a text file, a corrupt
  ``.h5``, a path under a file, a read-only folder), a missing optional package, an array too
  large for the machine's memory (``MemoryError``);
* 2 invalid input: an :class:`~dmft.parameters.InvalidParameterError` (the message names the
  parameter) or a usage error of click; no other ``ValueError`` counts as bad input;
* 3 the computation did not converge or blew up: DMFT ``converged=False`` or any
  :class:`~dmft.errors.SolverError` (``DMFTError``, a failed online-ODE integration
  ``OnlineODEError``), a diverged simulation.

Outputs are checked before any computation (:func:`check_outputs`); if storing still fails
afterwards, the results are printed anyway and the command ends with exit 1.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from pathlib import Path

import click
import numpy as np

from dmft.errors import SolverError
from dmft.parameters import InvalidParameterError
from dmft.parameters import resolve_epsilon as model_epsilon
from dmft.plotting import plot_curves, save_figure

__all__ = ["EXIT_IO", "EXIT_INVALID", "EXIT_NOT_CONVERGED", "ALPHA_HELP", "FINITE_ALPHA_HELP", "SCALE_HELP", "EPSILON_HELP",
           "api_default", "parse_floats", "handle_errors", "handle_invalid_input", "emit_result",
           "default_run_name", "check_outputs", "check_plot_path", "run_identity", "prepare_store",
           "PLOT_SUFFIXES", "DTYPE_HELP", "readable_name", "store_result", "not_converged_line", "check_solver_settings", "outputs_checked_first", "report_output_errors", "try_output"]

EXIT_IO = 1
EXIT_INVALID = 2
EXIT_NOT_CONVERGED = 3

#: Figure formats every ``--plot`` accepts (the suffix picks the format).
PLOT_SUFFIXES = (".png", ".pdf", ".svg")

DTYPE_HELP = ("Floating-point precision of the simulation (weights, data, losses): float64 (default, the "
              "precision the theory comparisons use) or float32 (about twice as fast on a GPU, losses "
              "below ~1e-6 of their start are rounding noise).")

ALPHA_HELP = (
    "Sample ratio alpha = P/D (training samples per input dimension), in (0, inf]; "
    "'inf' gives the online (Saad-Solla) limit. NOT the output scale: that is --scale."
)
#: --alpha of the commands that train on P = round(alpha*D) samples (a finite data set)
FINITE_ALPHA_HELP = ("Sample ratio alpha = P/D (training samples per input dimension), in (0, inf): P = "
                     "round(alpha*dim) >= 1 samples. NOT the output scale: that is --scale.")
SCALE_HELP = "Output scale kappa > 0 of f = (kappa/N) sum_i phi(w_i.x) (the paper's laziness 'alpha')."
EPSILON_HELP = "Quadratic coefficient epsilon of phi(h) = h + (epsilon/2) h^2 (initial NTK-task alignment)."


def strict_json(value):
    """``value`` with what RFC 8259 JSON cannot hold made explicit: numpy scalars and arrays as Python
    numbers and lists, ±inf as the strings "inf"/"-inf" (e.g. alpha = inf, the online limit), NaN as
    null, so that jq, JavaScript and strict parsers read every ``--json`` output."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None if np.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value


def echo_json(payload, default=None) -> None:
    """Print ``payload`` as one line of strict JSON (:func:`strict_json`; ``default`` converts other
    objects first, as in :func:`json.dumps`)."""
    if default is not None:
        payload = json.loads(json.dumps(payload, default=default))
    click.echo(json.dumps(strict_json(payload), allow_nan=False))


def parse_floats(text: str | None, name: str):
    """Parse a comma-separated list of floats (``None`` passes through)."""
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}", param_hint=name) from exc


def _solver_failure(exc: BaseException) -> bool:
    """A solver that did not converge or blew up (:class:`dmft.errors.SolverError`, exit 3)."""
    return isinstance(exc, SolverError)


def _exit_code(exc: BaseException) -> int | None:
    """The documented exit code of an exception that ends a command, None to let it propagate."""
    from_store = type(exc).__name__ == "StoreError" and type(exc).__module__ == "comparisons.store"
    if _solver_failure(exc):
        return EXIT_NOT_CONVERGED
    if from_store or isinstance(exc, (OSError, ModuleNotFoundError, MemoryError)):
        return EXIT_IO
    return None


def handle_errors(func):
    """Map the exceptions that end a command to its exit code and one line on stderr.

    :class:`~dmft.parameters.InvalidParameterError` → usage error (exit 2); a solver failure →
    exit 3; a store or file-system error, or an allocation the machine cannot satisfy
    (``MemoryError``), → exit 1. Anything else is a bug and propagates.
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InvalidParameterError as exc:
            raise click.UsageError(str(exc)) from None
        except click.ClickException:
            raise
        except Exception as exc:
            code = _exit_code(exc)
            if code is None:
                raise
            what = ("did not converge" if code == EXIT_NOT_CONVERGED else
                    "out of memory" if isinstance(exc, MemoryError) else "input/output")
            click.echo(f"error ({what}): {_one_line(exc)}", err=True)
            sys.exit(code)

    return wrapper


#: Former name of :func:`handle_errors`.
handle_invalid_input = handle_errors


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return text


def check_plot_path(plot: str | None, option: str = "--plot") -> None:
    """Refuse a plot path before any computation: a suffix no format matches (exit 2), a
    location that cannot be written (exit 1)."""
    if not plot:
        return
    path = Path(plot)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise InvalidParameterError(
            f"{option} must end in {', '.join(PLOT_SUFFIXES)} (the suffix picks the format), got {plot!r}")
    _check_location(path, option)


def _check_location(path: Path, option: str) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"{option} {path}: is a folder")
    probe = path.parent
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(f"{option} {path}: cannot be created, {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise PermissionError(f"{option} {path}: cannot be written (permission denied)")


def check_outputs(out: str | None = None, plot: str | None = None, *, plot_option: str = "--plot") -> None:
    """Check ``--out`` and ``--plot`` before any computation (see :func:`check_plot_path` and
    :func:`comparisons.store.check_writable`)."""
    check_plot_path(plot, plot_option)
    if out:
        from comparisons.store import check_writable  # start-up time: h5py only when a run is stored

        check_writable(out)


def check_solver_settings(options: dict) -> None:
    """Validate the finite-alpha solver's settings before any computation (exit 2 if invalid)."""
    import dataclasses

    try:
        from dmft.dmft_solver import SolverSettings
    except ImportError:  # pragma: no cover - the solver checks them itself
        return
    known = {f.name for f in dataclasses.fields(SolverSettings)}
    try:
        SolverSettings(**{k: v for k, v in options.items() if k in known})
    except InvalidParameterError:
        raise
    except (ValueError, TypeError) as exc:
        raise InvalidParameterError(str(exc)) from None


def outputs_checked_first(func):
    """Decorator of a command with ``out`` and ``plot`` parameters: check both before it runs."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        check_outputs(kwargs.get("out"), kwargs.get("plot"))
        return func(*args, **kwargs)

    return handle_errors(wrapper)


def report_output_errors(errors) -> None:
    """After the results were printed: one line per storing/plotting failure, then exit 1."""
    for line in errors:
        click.echo(line, err=True)
    if errors:
        sys.exit(EXIT_IO)


def try_output(action, what: str, errors: list) -> bool:
    """Run ``action()`` (a store or plot write); on an I/O failure append one line to ``errors``."""
    try:
        action()
        return True
    except Exception as exc:  # noqa: BLE001 - I/O failures are reported, anything else re-raised
        if _exit_code(exc) != EXIT_IO:
            raise
        errors.append(f"error (input/output): could not {what}: {_one_line(exc)}")
        return False


def run_identity(kind: str, request: dict) -> str:
    """Digest of everything that shaped a run (:func:`comparisons.store.identity_digest`)."""
    from comparisons.store import identity_digest

    return identity_digest({"kind": kind, **request})


def prepare_store(out: str | None, name: str, identity: str, *, overwrite: bool):
    """Before computing: the stored run to resume, or None; refuse a name holding another run.

    The identical run, complete and converged, is resumed (returned); a non-converged one is
    recomputed. A different run under ``name`` raises :class:`~comparisons.store.RunConflictError`
    (exit 2) unless ``overwrite``.
    """
    if not out:
        return None
    from comparisons.store import RunConflictError, read_run, stored_run_info

    info = stored_run_info(out, name)
    if info is None or not info["complete"]:
        return None
    if info["identity"] != identity:
        if overwrite:
            return None
        raise RunConflictError(
            f"run name {name!r} already holds a different run in {out} (other parameters or settings); "
            "choose another --run-name or pass --overwrite to replace it")
    if info["converged"] and not overwrite:
        return read_run(out, name)
    return None


def _summary_lines(result) -> list[str]:
    p = result.parameters
    lines = [
        f"{result.kind} learning curves: alpha={p['alpha']:g} (P/D), scale={p['scale']:g}, "
        f"epsilon={p['epsilon']:g}, width={p['width']}, center={p['center']}",
        f"  converged={result.converged}  iterations={result.iterations}  "
        f"residual={result.residual:.3g}  time={result.seconds:.2f} s",
        *([f"  {result.message}"] if result.converged else []),  # else said once, by the error line
        "         t    train_loss     test_loss   overlap m(t)",
    ]
    T = len(result.t)
    rows = sorted(set(np.linspace(0, T - 1, min(T, 9)).round().astype(int).tolist()))
    for i in rows:
        m = " ".join(f"{v:+.3f}" for v in result.overlap[i])
        lines.append(f"  {result.t[i]:8.2f}  {result.train_loss[i]:12.5g}  {result.test_loss[i]:12.5g}   {m}")
    return lines


def not_converged_line(result) -> str:
    """The one line that says a run did not converge (or diverged)."""
    if result.kind == "dmft":
        return (f"error (did not converge): the DMFT stopped after {result.iterations} iterations at residual "
                f"{result.residual:.3g}: {result.message}")
    return f"error (did not converge): {result.kind} run: {result.message}"


def store_result(out, name, result, *, identity, request=None, attrs=None, overwrite=False):
    """Store one run; returns (written, status line or None, error line or None), ``written`` true
    only when the run was written into ``out`` now. Never raises for I/O."""
    from comparisons.store import RunConflictError, StoreError, store_run

    extra = dict(attrs or {})
    if request is not None:
        extra["request"] = json.dumps(request, sort_keys=True, default=str)
    try:
        status = store_run(out, name, result, identity=identity, attrs=extra, overwrite=overwrite)
    except RunConflictError as exc:
        return False, None, f"error (not stored): {exc}"
    except (StoreError, OSError) as exc:
        return False, None, f"error (input/output): could not store run {name!r} in {out}: {_one_line(exc)}"
    if status == "kept":
        return False, (f"  not stored: {out} keeps its converged run {name!r} (a non-converged run never "
                       "replaces a converged one)"), None
    return True, f"  stored in {out} as {name!r}", None


def emit_result(result, *, as_json: bool, out: str | None, run_name: str | None, plot: str | None, title: str,
                identity: str | None = None, request: dict | None = None, overwrite: bool = False,
                resumed: bool = False, plotter=None, attrs=None):
    """Store the run, save the plot, print the summary (or JSON); then the exit code.

    Storing and plotting come first, but their failures are only reported after the results
    are printed: a full line each, exit 1. A run that did not converge ends with exit 3 and
    one line saying so (the same line the table shows, said once).
    """
    name = run_name or default_run_name(result, identity)
    notes, errors = [], []
    written = False
    if out and resumed:
        notes.append(f"  resumed: the identical run {name!r} was already complete in {out}")
    elif out:
        written, note, error = store_result(out, name, result, identity=identity or run_identity(result.kind, {}),
                                            request=request, attrs=attrs, overwrite=overwrite)
        notes += [note] if note else []
        errors += [error] if error else []
    if plot:
        try:
            fig = plotter(result) if plotter is not None else plot_curves(result, title=title)
            save_figure(fig, plot)
            notes.append(f"  plot saved to {plot}")
        except OSError as exc:  # the suffix was checked before computing: only the file system fails here
            errors.append(f"error (input/output): could not save the plot {plot}: {_one_line(exc)}")
    if as_json:
        summary = result.summary()
        summary["stored"] = {"out": out, "run_name": name if out else None, "identity": identity,
                             "resumed": bool(resumed), "written": written}
        _add_newton(summary, result)
        echo_json(summary)
    else:
        for line in _summary_lines(result):
            click.echo(line)
        for line in notes:
            click.echo(line)
    _warn_newton(result)
    for line in errors:
        click.echo(line, err=True)
    if not result.converged:
        click.echo(not_converged_line(result), err=True)
        sys.exit(EXIT_NOT_CONVERGED)
    if errors:
        sys.exit(EXIT_IO)


def _newton_failures(result) -> int:
    value = result.settings.get("newton_failures") if hasattr(result, "settings") else None
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _add_newton(summary: dict, result) -> None:
    summary["newton_failures"] = _newton_failures(result)


def _warn_newton(result) -> None:
    failures = _newton_failures(result)
    if failures:
        click.echo(f"warning: the implicit Newton step of the data side missed its tolerance in {failures} "
                   "sample-steps (settings.newton_failures); the curves keep the last Newton iterate there",
                   err=True)


def default_run_name(result, identity: str | None = None) -> str:
    """Readable name of a run from its parameters, ending in its identity digest when given."""
    p = result.parameters
    return readable_name(result.kind, p.get("alpha"), p.get("scale"), p.get("epsilon"), p.get("width"),
                         p.get("center"), result.settings.get("seed"), identity)


def readable_name(kind, alpha, scale, epsilon, width, center, seed, identity) -> str:
    name = f"{kind}_alpha{float(alpha):g}_scale{float(scale):g}_eps{float(epsilon):g}_N{width}"
    if center:
        name += "_centered"
    if seed is not None:
        name += f"_seed{seed}"
    if identity:
        name += f"_{identity[:8]}"
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


def _activation_name(ctx, param, value):
    """Refuse an unknown activation name by name (exit code 2); names of
    :data:`dmft.activations.ACTIVATION_NAMES` and ``smoothed_relu:<width>`` pass."""
    from dmft.activations import get_activation

    if value is None:
        return None
    try:
        get_activation(value)
    except (InvalidParameterError, ValueError) as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc
    return value


def family_options(command, *, relu: str = "relu (--alpha inf only)"):
    """The general-model options (theory.md §10) shared by ``dmft solve``, ``dmft compare`` and
    (see :func:`training_family_options`) ``dmft train family``."""
    options = [
        click.option("--activation", type=str, default="quadratic", show_default=True, callback=_activation_name,
                     help="Student phi: quadratic = h + epsilon h^2/2 (the paper's model), linear, "
                          f"erf = erf(h/sqrt2), tanh, {relu}, or smoothed_relu:WIDTH, the "
                          "Gaussian-smoothed ReLU E[relu(h + WIDTH z)], whose finite-alpha curves tend to "
                          "ReLU's as WIDTH -> 0 (docs/theory.md par. 10.9)."),
        click.option("--target", type=click.Choice(["square", "committee"]), default="square", show_default=True,
                     help="square: y = (beta.x)^2/2; committee: y = (teacher_scale/M) sum_m phi*(beta_m.x), T = I."),
        click.option("--teacher-width", type=int, default=1, show_default=True,
                     help="Teacher units M (--target committee)."),
        click.option("--teacher-scale", type=float, default=1.0, show_default=True,
                     help="Teacher output scale kappa* (--target committee)."),
        click.option("--teacher-activation", type=str, default=None, callback=_activation_name,
                     help="Teacher phi* (--target committee). [default: the student's activation]"),
        click.option("--noise", type=float, default=0.0, show_default=True,
                     help="Output-noise variance sigma^2 >= 0 of the targets (y + sigma xi, one frozen xi per "
                          "training sample); the test loss includes it."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def training_family_options(command):
    """:func:`family_options` for a command that trains networks: gradient descent takes ReLU
    students at any alpha (only the finite-alpha DMFT refuses them)."""
    return family_options(command, relu="relu")


EPSILON_FAMILY_HELP = (EPSILON_HELP + " Required with the quadratic student (the default) or a quadratic teacher; "
                       "with other activations it has no meaning: it may be left out (and is refused unless 0).")


def resolve_epsilon(epsilon, activation, target, teacher_activation):
    """--epsilon as the model needs it (:func:`dmft.parameters.resolve_epsilon`): required where a
    quadratic activation is used (student, or the teacher of --target committee), else 0 (and a
    non-zero value is refused: it would do nothing). Raises click.UsageError / BadParameter (exit
    code 2)."""
    try:
        return model_epsilon(epsilon, activation, target, teacher_activation)
    except InvalidParameterError as err:
        if epsilon is None:
            raise click.UsageError(f"Missing option '--epsilon': {err}.") from None
        raise click.BadParameter(str(err), param_hint="'--epsilon'") from None


def family_settings(activation, target, teacher_width, teacher_scale, teacher_activation, overlap, noise=0.0):
    """The family options that differ from the package model's, and --init-overlap as the N×M R(0).

    Returns ``({}, overlap)`` for the package model, so that its run identities stay unchanged.
    """
    family = {key: value for key, value, default in (
        ("activation", activation, "quadratic"), ("target", target, "square"), ("teacher_width", teacher_width, 1),
        ("teacher_scale", teacher_scale, 1.0), ("teacher_activation", teacher_activation, None),
        ("noise", noise, 0.0)) if value != default}
    if family and overlap is not None:
        m = teacher_width if target == "committee" else 1
        if m < 1 or len(overlap) % m:
            raise InvalidParameterError(f"init_overlap must have N*M entries (M = {m}), got {len(overlap)}")
        overlap = np.array(overlap).reshape(-1, m)
    return family, overlap

