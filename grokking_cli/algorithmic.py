"""``dmft train algorithmic …``: the neural grokking systems from the command line.

Subcommands: ``transformer`` (Power et al., seed_systems.md §B), ``mlp`` (theory.md §5 Fig. 2),
``nanda`` (one-layer transformer, Fig. 5b), ``student-teacher`` (Omnigrok), ``digits`` (Fig. 5a on
the bundled 8×8 digits or a local MNIST file) and ``sweep-fraction`` (the §B.6.2 phase picture).
Each takes ``--seed --device --steps --json --out FILE.h5 --plot FILE.png``. Exit codes: 0 success,
2 invalid input (also a ``--checkpoint`` or ``--mnist`` file of the wrong kind, a run name in
``--out`` that holds another run), 3 a run diverged (a non-finite loss; it stops there and is not
stored), 1 input/output. Runs stored with ``--out`` are named by their settings and a digest of
every setting that shapes them (``run_identity``); the identical run is resumed from the store.
Runs use one CPU thread unless ``--threads`` says otherwise.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import NamedTuple

import click

from grokking_cli.common import (EXIT_IO, EXIT_NOT_CONVERGED, echo_json, api_option, handle_errors,
                                 outputs_checked_first, parse_floats, prepare_store, run_identity, try_output)
from dmft.parameters import InvalidParameterError

__all__ = ["algorithmic"]

#: The APIs whose defaults the options below show (imported only when a default is needed).
_DIGITS_CONFIG = "empirical.neural.digits:DigitsConfig"
_TRAIN_DIGITS = "empirical.neural.digits:train_digits"
_MODULAR_MLP_CONFIG = "empirical.neural.modular_mlp:ModularMLPConfig"
_TRAIN_MODULAR_MLP = "empirical.neural.modular_mlp:train_modular_mlp"
_NANDA_CONFIG = "empirical.neural.nanda:NandaConfig"
_TRAIN_NANDA = "empirical.neural.nanda:train_nanda"
_STUDENT_TEACHER_CONFIG = "empirical.neural.student_teacher:StudentTeacherConfig"
_TRAIN_STUDENT_TEACHER = "empirical.neural.student_teacher:train_student_teacher"
_TRANSFORMER_CONFIG = "empirical.neural.transformer:TransformerConfig"
_SWEEP_TRAIN_FRACTION = "empirical.neural.transformer:sweep_train_fraction"
_TRAIN_TRANSFORMER = "empirical.neural.transformer:train_transformer"


def _transformer_options(func):
    """The learning rate and shape of the transformer (``transformer`` and ``sweep-fraction``)."""
    options = [
        api_option("--lr", "--max-lr", "max_lr", type=float, api=_TRANSFORMER_CONFIG,
                   help="AdamW learning rate after the linear warm-up (max_lr of the API)."),
        api_option("--layers", "--n-layers", "n_layers", type=int, api=_TRANSFORMER_CONFIG,
                   help="Transformer layers."),
        api_option("--d-model", type=int, api=_TRANSFORMER_CONFIG, help="Model (embedding) width."),
        api_option("--heads", "--n-heads", "n_heads", type=int, api=_TRANSFORMER_CONFIG,
                   help="Attention heads (must divide --d-model)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _common(train: str):
    """The options every one-run command shares; ``train`` (``"module:function"``) is the API whose
    default seed (the system's paper seed) ``--seed`` shows."""
    return functools.partial(_common_options, train=train)


def _common_options(func, *, train: str):
    options = [
        api_option("--seed", type=int, api=train, help="Model seed, an integer >= 0 (the system's paper seed by "
                                                       "default)."),
        click.option("--device", type=str, default="cpu", show_default=True, help="cpu, cuda or auto."),
        click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of the table."),
        click.option("--out", type=click.Path(dir_okay=False), default=None,
                     help="Store the run in this HDF5 file; rerunning the identical run resumes it."),
        click.option("--run-name", type=str, default=None,
                     help="Run name in --out [default: from the settings, ending in a digest of every setting]."),
        click.option("--overwrite", is_flag=True, help="Replace a different run stored under the same name."),
        click.option("--plot", type=click.Path(dir_okay=False), default=None,
                     help="Save loss/accuracy/norm plots (PNG, PDF or SVG by suffix)."),
        click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
                     help="Checkpoint file: resumed from if it exists (it must be this run's), rewritten during "
                          "the run."),
        click.option("--checkpoint-every", type=click.IntRange(min=1), default=None,
                     help="Checkpoint period in steps, >= 1 [default: only at the end]."),
        click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads."),
        click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar."),
    ]
    func = outputs_checked_first(func)  # --out and --plot before any training
    for option in reversed(options):
        func = option(func)
    return func


class _Plan(NamedTuple):
    """A run's place in ``--out``, settled before training."""

    name: str
    identity: str
    request: dict
    stored: object  # the identical complete run read back from --out (a TrainingHistory), or None


def _plan(system: str, config, seed: int, steps: int, *, out, run_name, overwrite, **shaping) -> _Plan:
    """Name and identity of a run (every setting that shapes it), and the stored run to resume.

    Refuses (exit 2), before any training, a name in ``--out`` that holds a different run unless
    ``overwrite`` (:func:`grokking_cli.common.prepare_store`).
    """
    from empirical.neural.history import history_from_curves

    request = {"system": system, "parameters": config.as_attrs(), "seed": seed, "steps": steps, **shaping}
    identity = run_identity(f"neural:{system}", request)
    name = run_name or _default_name(system, request["parameters"], seed, identity)
    if not name or "/" in name:
        raise InvalidParameterError(f"run_name must be a non-empty string without '/', got {name!r}")
    stored = prepare_store(out, name, identity, overwrite=overwrite)
    return _Plan(name, identity, request, None if stored is None else history_from_curves(stored))


def _store_line(out: str, plan: _Plan, history, *, overwrite: bool) -> tuple[bool, str | None, str | None]:
    """Store one run as planned; returns (written now, note or None, error line or None), never
    raises for I/O."""
    from comparisons.store import RunConflictError, store_history

    if plan.stored is not None:
        return False, f"resumed: the identical run {plan.name!r} was already complete in {out}", None
    if history.diverged_at() is not None:
        return False, f"not stored in {out}: the run diverged", None
    errors: list[str] = []
    try:
        stored = try_output(lambda: store_history(out, plan.name, history, identity=plan.identity,
                                                  attrs={"request": json.dumps(plan.request, sort_keys=True, default=str)},
                                                  overwrite=overwrite),
                            f"store run {plan.name!r} in {out}", errors)
    except RunConflictError as exc:  # another process stored a different run meanwhile
        return False, None, f"error (not stored): {exc}"
    return stored, (f"stored as run {plan.name!r} in {out}" if stored else None), (errors[0] if errors else None)


def _diverged_line(history) -> str:
    return (f"error (did not converge): the {history.system} run diverged: non-finite loss at step "
            f"{history.diverged_at()} (training stopped there)")


def _finish(history, plan: _Plan, *, as_json, out, plot, overwrite, title, extra_lines=(), extra_json=None):
    """Store the run, save its plot, print the summary (or JSON); exit 3 if it diverged, 1 if an output failed."""
    from comparisons.neural_plots import grokking_summary, plot_history, save_figure

    summary = grokking_summary(history)
    diverged = history.diverged_at()
    notes, errors = [], []
    written = False
    if out:
        written, note, error = _store_line(out, plan, history, overwrite=overwrite)
        notes += [note] if note else []
        errors += [error] if error else []
    if plot and try_output(lambda: save_figure(plot_history(history, title=title, step_loss=True), plot),
                           f"save the plot {plot}", errors):
        notes.append(f"plot saved to {plot}")
    if as_json:
        stored = {"out": out, "run_name": plan.name if out else None, "identity": plan.identity,
                  "resumed": plan.stored is not None, "written": written}
        echo_json({**history.summary(), "grokking": summary, **(extra_json or {}), "diverged_at": diverged,
                   "stored": stored})
    else:
        _print_summary(history, summary, title, [*extra_lines, *notes])
    _exit_status(errors, _diverged_line(history) if diverged is not None else None)


def _train_and_report(system: str, config, train, *, seed, steps, device, checkpoint, checkpoint_every, progress,
                      as_json, out, run_name, overwrite, plot, title) -> None:
    """The body of a one-run command: plan its place in ``--out`` (resume the identical run, refuse a
    different one), train it with ``train(config, ...)`` unless resumed, then :func:`_finish`.
    ``title``: the plot's title, or a function of the history that gives it."""
    plan = _plan(system, config, seed, steps, out=out, run_name=run_name, overwrite=overwrite)
    history = plan.stored if plan.stored is not None else train(
        config, seed=seed, device=device, steps=steps, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
        progress=progress and not as_json)
    _finish(history, plan, as_json=as_json, out=out, plot=plot, overwrite=overwrite,
            title=title(history) if callable(title) else title)


def _print_summary(history, summary, title, lines) -> None:
    f = summary["final"]
    click.echo(f"{title}")
    click.echo(f"  {history.message}; {history.seconds:.1f} s")
    click.echo(f"  final: train acc {100 * f['train_accuracy']:.1f}%  val acc {100 * f['val_accuracy']:.1f}%  "
               f"train loss {f['train_loss']:.4g}  val loss {f['val_loss']:.4g}  |theta| {f['param_norm']:.4g}")
    for tau, row in summary["accuracy"].items():
        click.echo(f"  accuracy > {tau}: train at step {row['t_train']:g}, validation at step {row['t_val']:g}, "
                   f"ratio {row['ratio']:.3g}")
    for line in lines:
        click.echo("  " + line)


def _exit_status(errors, diverged_line) -> None:
    """After the results were printed: the output failures, then exit 3 (diverged) or 1 (output failed)."""
    for line in errors:
        click.echo(line, err=True)
    if diverged_line:
        click.echo(diverged_line, err=True)
        sys.exit(EXIT_NOT_CONVERGED)
    if errors:
        sys.exit(EXIT_IO)


def _default_name(system: str, parameters: dict, seed: int, identity: str) -> str:
    """Readable run name from the main settings, ending in the first 8 digits of the run's identity."""
    bits = [system]
    for key in ("operator", "modulus", "train_pct", "train_fraction", "scale", "init_scale", "weight_decay"):
        if key in parameters and parameters[key] is not None:
            bits.append(f"{key}{parameters[key]}")
    bits += [f"seed{seed}", identity[:8]]
    return "_".join(str(b).replace("/", "div").replace(" ", "") for b in bits)


def _threads(n: int) -> None:
    import torch

    if n < 1:
        raise InvalidParameterError(f"threads must be an integer >= 1, got {n}")
    torch.set_num_threads(n)


@click.group()
def algorithmic():
    """Grokking on algorithmic tasks and in neural networks (Power et al., Kumar et al. §5).

    Losses are each system's own objective; accuracies are in percent on screen and fractions in
    the stored runs; the stored time axis is the optimiser step.
    """


@algorithmic.command()
@api_option("--operator", type=str, api=_TRANSFORMER_CONFIG,
              help="Operator of seed_systems §B.3: + - * / x**2+y**2 x**2+y**2+x*y x**2+y**2+x*y+x x**3+x*y "
                   "x**3+x*y**2+y mix1 +* +- s5 s5conj s5aba (or Power's string); the group name with --cayley-table.")
@api_option("--modulus", type=int, api=_TRANSFORMER_CONFIG, help="Modulus p of the modular operators (integer >= 2; a prime for the operators that need y^-1 mod p).")
@api_option("--train-pct", type=float, api=_TRANSFORMER_CONFIG, help="Training data percentage in (0, 100).")
@click.option("--cayley-table", type=click.Path(dir_okay=False), default=None,
              help="CSV multiplication table of a finite group (replaces the operator's table).")
@api_option("--weight-decay", type=float, api=_TRANSFORMER_CONFIG,
              help="Decoupled weight decay (1: Power et al.; 0.01: the thesis).")
@_transformer_options
@api_option("--batch-size", type=int, api=_TRANSFORMER_CONFIG,
            help="Mini-batch size in equations; 0: min(512, ceil(N_train/2)).")
@api_option("--steps", type=int, api=_TRAIN_TRANSFORMER, help="Optimiser updates (mini-batch steps).")
@click.option("--stop-when-generalised", is_flag=True, help="Stop once validation accuracy exceeds 99%.")
@_common(_TRAIN_TRANSFORMER)
@handle_errors
def transformer(operator, modulus, train_pct, cayley_table, weight_decay, max_lr, n_layers, d_model, n_heads,
                batch_size, steps, stop_when_generalised, seed, device, as_json, out, run_name, overwrite, plot,
                checkpoint, checkpoint_every, threads, progress):
    """Power et al.'s 2-layer transformer on an algorithmic table (seed_systems §B).

    Example (CPU-sized): dmft train algorithmic transformer --modulus 23 --train-pct 60 --d-model 64 --steps 5000
    """
    from empirical.neural.transformer import TransformerConfig, check_no_ungrokking, detect_spikes, train_transformer

    _threads(threads)
    config = TransformerConfig(operator=operator, modulus=modulus, train_pct=train_pct, cayley_table=cayley_table,
                               weight_decay=weight_decay, max_lr=max_lr, n_layers=n_layers, d_model=d_model,
                               n_heads=n_heads, batch_size=batch_size)
    plan = _plan("transformer", config, seed, steps, out=out, run_name=run_name, overwrite=overwrite,
                 stop_when_generalised=stop_when_generalised)
    history = plan.stored if plan.stored is not None else train_transformer(
        config, seed=seed, device=device, steps=steps, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
        stop_when_generalised=stop_when_generalised, progress=progress and not as_json)
    step_loss = history.extras["step_loss"]
    import numpy as np

    spikes = detect_spikes(np.arange(1, step_loss.size + 1), step_loss)
    check = check_no_ungrokking(history.step, history.val_accuracy)
    lines = [f"training-loss spikes (>1e3 x the preceding 1% window min): {len(spikes)}"
             + (f", first at step {spikes[0].step} (x{spikes[0].ratio:.3g})" if spikes else ""),
             f"no un-grokking: grokked={check.grokked}, worst plateau after 99%: {check.worst_plateau:.3f}, "
             f"ungrokked={check.ungrokked}"]
    _finish(history, plan, as_json=as_json, out=out, plot=plot, overwrite=overwrite,
            title=f"transformer: {config.operator} (p={modulus}), {train_pct:g}% train, wd={weight_decay:g}",
            extra_lines=lines,
            extra_json={"spikes": [s.__dict__ for s in spikes], "ungrokking": check.__dict__})


@algorithmic.command()
@api_option("--modulus", type=int, api=_MODULAR_MLP_CONFIG, help="Modulus p (integer >= 2).")
@api_option("--operator", type=str, api=_MODULAR_MLP_CONFIG, help="Modular operator.")
@api_option("--width", type=int, api=_MODULAR_MLP_CONFIG, help="Hidden units N.")
@api_option("--scale", type=float, api=_MODULAR_MLP_CONFIG, help="Output scale s (applied twice).")
@api_option("--train-fraction", type=float, api=_MODULAR_MLP_CONFIG,
            help="Fraction in (0, 1) of the p^2 equations used for training.")
@api_option("--lr-base", type=float, api=_MODULAR_MLP_CONFIG, help="Learning rate is lr_base/s^2.")
@api_option("--steps", type=int, api=_TRAIN_MODULAR_MLP, help="Full-batch GD steps (epochs).")
@_common(_TRAIN_MODULAR_MLP)
@handle_errors
def mlp(modulus, operator, width, scale, train_fraction, lr_base, steps, seed, device, as_json, out, run_name,
        overwrite, plot, checkpoint, checkpoint_every, threads, progress):
    """Two-layer quadratic MLP on modular arithmetic, plain GD, MSE (theory.md §5 Fig. 2)."""
    from empirical.neural.modular_mlp import ModularMLPConfig, train_modular_mlp

    _threads(threads)
    config = ModularMLPConfig(modulus=modulus, operator=operator, width=width, scale=scale,
                              train_fraction=train_fraction, lr_base=lr_base)
    _train_and_report("modular_mlp", config, train_modular_mlp, seed=seed, steps=steps, device=device,
                      checkpoint=checkpoint, checkpoint_every=checkpoint_every, progress=progress, as_json=as_json,
                      out=out, run_name=run_name, overwrite=overwrite, plot=plot,
                      title=f"modular MLP: {operator} mod {modulus}, N={width}, s={scale:g}")


@algorithmic.command()
@api_option("--modulus", type=int, api=_NANDA_CONFIG, help="Modulus p (integer >= 2).")
@api_option("--operator", type=str, api=_NANDA_CONFIG, help="Modular operator.")
@api_option("--train-fraction", type=float, api=_NANDA_CONFIG,
            help="Fraction in (0, 1) of the p^2 equations used for training.")
@api_option("--d-model", type=int, api=_NANDA_CONFIG, help="Residual-stream width.")
@api_option("--d-mlp", type=int, api=_NANDA_CONFIG, help="Hidden units of the MLP block.")
@api_option("--heads", "--n-heads", "n_heads", type=int, api=_NANDA_CONFIG,
            help="Attention heads (must divide --d-model).")
@api_option("--scale", type=float, api=_NANDA_CONFIG, help="Output scale s of the centred logits.")
@api_option("--lr-base", type=float, api=_NANDA_CONFIG, help="Learning rate is lr_base/s^2.")
@api_option("--weight-decay", type=float, api=_NANDA_CONFIG, help="Decoupled (AdamW) weight decay >= 0.")
@api_option("--steps", type=int, api=_TRAIN_NANDA, help="Full-batch steps (epochs).")
@_common(_TRAIN_NANDA)
@handle_errors
def nanda(modulus, operator, train_fraction, d_model, d_mlp, n_heads, scale, lr_base, weight_decay, steps, seed,
          device, as_json, out, run_name, overwrite, plot, checkpoint, checkpoint_every, threads, progress):
    """One-layer transformer (Nanda et al.) with output scale and centred cross-entropy (Fig. 5b)."""
    from empirical.neural.nanda import NandaConfig, train_nanda

    _threads(threads)
    config = NandaConfig(modulus=modulus, operator=operator, train_fraction=train_fraction, d_model=d_model,
                         d_mlp=d_mlp, n_heads=n_heads, scale=scale, lr_base=lr_base, weight_decay=weight_decay)
    _train_and_report("nanda", config, train_nanda, seed=seed, steps=steps, device=device,
                      checkpoint=checkpoint, checkpoint_every=checkpoint_every, progress=progress, as_json=as_json,
                      out=out, run_name=run_name, overwrite=overwrite, plot=plot,
                      title=f"one-layer transformer: {operator} mod {modulus}, s={scale:g}")


@algorithmic.command("student-teacher")
@api_option("--scale", type=float, api=_STUDENT_TEACHER_CONFIG, help="Output scale s.")
@api_option("--init-scale", type=float, api=_STUDENT_TEACHER_CONFIG, help="Student initial weight multiplier.")
@api_option("--lr", type=float, api=_STUDENT_TEACHER_CONFIG, help="Learning rate of full-batch AdamW.")
@api_option("--weight-decay", type=float, api=_STUDENT_TEACHER_CONFIG, help="Decoupled (AdamW) weight decay >= 0.")
@api_option("--accuracy-threshold", type=float, api=_STUDENT_TEACHER_CONFIG,
              help="A point counts as correct if its mean squared error is below this.")
@click.option("--center/--no-center", default=False, show_default=True, help="Centre the student's output.")
@api_option("--steps", type=int, api=_TRAIN_STUDENT_TEACHER, help="Full-batch steps (epochs).")
@_common(_TRAIN_STUDENT_TEACHER)
@handle_errors
def student_teacher(scale, init_scale, lr, weight_decay, accuracy_threshold, center, steps, seed, device, as_json,
                    out, run_name, overwrite, plot, checkpoint, checkpoint_every, threads, progress):
    """Omnigrok 5-100-100-5 tanh student-teacher regression with an output scale (theory.md §5)."""
    from empirical.neural.student_teacher import StudentTeacherConfig, train_student_teacher

    _threads(threads)
    config = StudentTeacherConfig(scale=scale, init_scale=init_scale, lr=lr, weight_decay=weight_decay,
                                  accuracy_threshold=accuracy_threshold, center=center)
    _train_and_report("student_teacher", config, train_student_teacher, seed=seed, steps=steps, device=device,
                      checkpoint=checkpoint, checkpoint_every=checkpoint_every, progress=progress, as_json=as_json,
                      out=out, run_name=run_name, overwrite=overwrite, plot=plot,
                      title=f"student-teacher: s={scale:g}, init x{init_scale:g}")


@algorithmic.command()
@click.option("--mnist", "--mnist-path", "mnist_path", type=click.Path(dir_okay=False), default=None,
              help="Local MNIST .npz (x_train, y_train, x_test, y_test) [default: sklearn's bundled 8x8 digits].")
@api_option("--n-train", type=int, api=_DIGITS_CONFIG, help="Training images.")
@api_option("--n-test", type=int, api=_DIGITS_CONFIG, help="Test images.")
@api_option("--width", type=int, api=_DIGITS_CONFIG, help="Hidden units per layer.")
@api_option("--depth", type=int, api=_DIGITS_CONFIG, help="Hidden layers.")
@api_option("--init-scale", type=float, api=_DIGITS_CONFIG, help="Multiplier of the Kaiming init.")
@api_option("--scale", type=float, api=_DIGITS_CONFIG, help="Output scale kappa.")
@api_option("--lr", type=float, api=_DIGITS_CONFIG, help="AdamW learning rate.")
@api_option("--weight-decay", type=float, api=_DIGITS_CONFIG, help="AdamW (decoupled) weight decay >= 0.")
@api_option("--batch-size", type=int, api=_DIGITS_CONFIG, help="Mini-batch size in images.")
@api_option("--steps", type=int, api=_TRAIN_DIGITS, help="AdamW steps (mini-batches).")
@_common(_TRAIN_DIGITS)
@handle_errors
def digits(mnist_path, n_train, n_test, width, depth, init_scale, scale, lr, weight_decay, batch_size, steps, seed,
           device, as_json, out, run_name, overwrite, plot, checkpoint, checkpoint_every, threads, progress):
    """Digit-classification MLP with initial weight scale and output scale (theory.md §5, Fig. 5a)."""
    from empirical.neural.digits import DigitsConfig, train_digits

    _threads(threads)
    config = DigitsConfig(n_train=n_train, n_test=n_test, width=width, depth=depth, init_scale=init_scale,
                          scale=scale, lr=lr, weight_decay=weight_decay, batch_size=batch_size, mnist_path=mnist_path)
    _train_and_report("digits", config, train_digits, seed=seed, steps=steps, device=device,
                      checkpoint=checkpoint, checkpoint_every=checkpoint_every, progress=progress, as_json=as_json,
                      out=out, run_name=run_name, overwrite=overwrite, plot=plot,
                      title=lambda history: f"digits MLP ({history.settings['dataset']}): init x{init_scale:g}, "
                                            f"scale {scale:g}")


@algorithmic.command("sweep-fraction")
@api_option("--operator", type=str, api=_TRANSFORMER_CONFIG, help="Operator (as for `transformer`).")
@api_option("--modulus", type=int, api=_TRANSFORMER_CONFIG, help="Modulus p of the modular operators (integer >= 2; a prime for the operators that need y^-1 mod p).")
@click.option("--train-pcts", type=str, default="20,30,40,50,60,70,80", show_default=True,
              help="Comma-separated training percentages (Decision D.12).")
@click.option("--seeds", type=str, default="0", show_default=True, help="Comma-separated model seeds (integers >= 0).")
@api_option("--weight-decay", type=float, api=_TRANSFORMER_CONFIG, help="Decoupled (AdamW) weight decay >= 0.")
@_transformer_options
@api_option("--steps", type=int, api=_SWEEP_TRAIN_FRACTION, help="Step budget per run.")
@click.option("--seed", type=int, default=None, hidden=True)
@click.option("--device", type=str, default="cpu", show_default=True, help="cpu, cuda or auto.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of the table.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Store every run in this HDF5 file (named as by `transformer --stop-when-generalised`); "
                   "runs already complete there are resumed.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Save the phase picture (PNG, PDF or SVG by suffix).")
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar.")
@outputs_checked_first  # --out and --plot before any training
def sweep_fraction(operator, modulus, train_pcts, seeds, weight_decay, max_lr, n_layers, d_model, n_heads, steps, seed,
                   device, as_json, out, plot, threads, progress):
    """Steps to 99% validation accuracy against the training percentage (seed_systems §B.6.2, §C.6)."""
    from dataclasses import replace

    from comparisons.neural_plots import plot_fraction_phase, save_figure
    from empirical.neural.transformer import FractionSweep, TransformerConfig, train_transformer

    _threads(threads)
    pcts = _train_pcts(train_pcts)
    seed_list = _seeds(seeds) if seed is None else _seeds(str(seed), "--seed")
    config = TransformerConfig(operator=operator, modulus=modulus, weight_decay=weight_decay, max_lr=max_lr,
                               n_layers=n_layers, d_model=d_model, n_heads=n_heads)
    plans = [(c, s, _plan("transformer", c, s, steps, out=out, run_name=None, overwrite=False,
                          stop_when_generalised=True))
             for c in [replace(config, train_pct=p) for p in pcts] for s in seed_list]  # all checked before training
    histories = [plan.stored if plan.stored is not None else train_transformer(
        c, seed=s, device=device, steps=steps, progress=progress and not as_json, stop_when_generalised=True)
        for c, s, plan in plans]
    sweep = FractionSweep.from_histories(histories)  # steps to 99% as sweep_train_fraction counts them
    notes, errors = _store_sweep(out, plans, histories)
    if plot and try_output(lambda: save_figure(plot_fraction_phase(
            sweep, title=f"{operator} mod {modulus}, wd={weight_decay:g}", budget=steps), plot),
            f"save the plot {plot}", errors):
        notes.append(f"plot saved to {plot}")
    diverged = [h for h in sweep.histories if h.diverged_at() is not None]
    rows = [{"train_pct": float(p), "seed": int(s), "t_train": float(sweep.t_train[i, j]),
             "t_val": float(sweep.t_val[i, j]), "phase": str(sweep.phase[i, j]),
             "diverged_at": sweep.histories[i * sweep.seeds.size + j].diverged_at()}
            for i, p in enumerate(sweep.train_pct) for j, s in enumerate(sweep.seeds)]
    if as_json:
        echo_json({"runs": rows, "monotone": sweep.monotone(),
                   "stored": {"out": out, "run_names": [plan.name for _, _, plan in plans] if out else None,
                              "resumed": sum(plan.stored is not None for _, _, plan in plans)}})
    else:
        _print_sweep(rows, sweep, f"{operator} mod {modulus}, wd={weight_decay:g}, budget {steps} steps", notes)
    _exit_status(errors, (f"error (did not converge): {len(diverged)} of {len(histories)} runs diverged (non-finite "
                          "loss; not stored): " + ", ".join(f"train_pct {h.parameters['train_pct']:g} seed "
                                                           f"{h.settings['seed']} at step {h.diverged_at()}"
                                                           for h in diverged)) if diverged else None)


def _store_sweep(out, plans, histories) -> tuple[list[str], list[str]]:
    """Store the sweep's new runs (not the diverged ones); (notes, error lines)."""
    if not out:
        return [], []
    errors, stored = [], 0
    for (_, _, plan), history in zip(plans, histories):
        written, _, error = _store_line(out, plan, history, overwrite=False)
        stored += written
        errors += [error] if error else []
    resumed = sum(plan.stored is not None for _, _, plan in plans)
    notes = [f"{stored} runs stored in {out}"] + ([f"{resumed} runs resumed from {out}"] if resumed else [])
    return notes, errors


def _print_sweep(rows, sweep, title, lines) -> None:
    click.echo(f"train-fraction sweep: {title}")
    for r in rows:
        click.echo(f"  {r['train_pct']:5.1f}%  seed {r['seed']}: 99% train at {r['t_train']:g}, "
                   f"99% validation at {r['t_val']:g}  ({r['phase']})"
                   + (f"  DIVERGED at step {r['diverged_at']}" if r["diverged_at"] is not None else ""))
    click.echo(f"  steps to 99% validation non-decreasing as the fraction falls: {sweep.monotone()}")
    for line in lines:
        click.echo("  " + line)


def _train_pcts(text: str) -> list[float]:
    """The distinct percentages of --train-pcts, at least one (exit 2 otherwise)."""
    pcts = list(dict.fromkeys(parse_floats(text, "--train-pcts")))
    if not pcts:
        raise click.BadParameter(f"expected at least one training percentage, got {text!r}", param_hint="--train-pcts")
    outside = [p for p in pcts if not 0 < p < 100]
    if outside:
        raise click.BadParameter(f"training percentages must lie in (0, 100), got {outside[0]!r}",
                                 param_hint="--train-pcts")
    return pcts


def _seeds(text: str, option: str = "--seeds") -> list[int]:
    """The distinct integer seeds >= 0 of a comma-separated list, at least one (exit 2 otherwise)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        seeds = list(dict.fromkeys(int(item) for item in items))
    except ValueError:
        seeds = [-1]
    if not seeds or min(seeds) < 0:
        raise click.BadParameter(f"expected comma-separated integers >= 0, got {text!r}", param_hint=option)
    return seeds
