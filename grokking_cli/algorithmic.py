"""``dmft train algorithmic …``: the neural grokking systems from the command line.

Subcommands: ``transformer`` (Power et al., seed_systems.md §B), ``mlp`` (theory.md §5 Fig. 2),
``nanda`` (one-layer transformer, Fig. 5b), ``student-teacher`` (Omnigrok), ``digits`` (Fig. 5a on
the bundled 8×8 digits or a local MNIST file) and ``sweep-fraction`` (the §B.6.2 phase picture).
Each takes ``--seed --device --steps --json --out FILE.h5 --plot FILE.png``; invalid input exits
with code 2. Runs use one CPU thread unless ``--threads`` says otherwise.
"""

from __future__ import annotations

import click

from grokking_cli.common import (echo_json, api_option, handle_errors, outputs_checked_first, report_output_errors,
                                 parse_floats, try_output)
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


def _common(func):
    options = [
        click.option("--seed", type=int, default=None, help="Model seed [default: the system's paper seed]."),
        click.option("--device", type=str, default="cpu", show_default=True, help="cpu, cuda or auto."),
        click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of the table."),
        click.option("--out", type=click.Path(dir_okay=False), default=None, help="Store the run in this HDF5 file."),
        click.option("--run-name", type=str, default=None, help="Run name in --out [default: from the settings]."),
        click.option("--plot", type=click.Path(dir_okay=False), default=None,
                     help="Save loss/accuracy/norm plots (PNG, PDF or SVG by suffix)."),
        click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
                     help="Checkpoint file: resumed from if it exists, rewritten during the run."),
        click.option("--checkpoint-every", type=int, default=None, help="Checkpoint period in steps."),
        click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads."),
        click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar."),
    ]
    func = outputs_checked_first(func)  # --out and --plot before any training
    for option in reversed(options):
        func = option(func)
    return func


def _finish(history, *, as_json, out, run_name, plot, title, extra_lines=(), extra_json=None):
    from comparisons.neural_plots import grokking_summary, plot_history, save_figure
    from comparisons.store import write_history

    summary = grokking_summary(history)
    name = run_name or _default_name(history)
    errors = []
    stored = bool(out) and try_output(lambda: write_history(out, name, history), f"store run {name!r} in {out}", errors)
    plotted = bool(plot) and try_output(
        lambda: save_figure(plot_history(history, title=title, step_loss=True), plot), f"save the plot {plot}", errors)
    if as_json:
        payload = {**history.summary(), "grokking": summary, **(extra_json or {})}
        echo_json(payload)
        report_output_errors(errors)
        return
    f = summary["final"]
    click.echo(f"{title}")
    click.echo(f"  {history.message}; {history.seconds:.1f} s")
    click.echo(f"  final: train acc {100 * f['train_accuracy']:.1f}%  val acc {100 * f['val_accuracy']:.1f}%  "
               f"train loss {f['train_loss']:.4g}  val loss {f['val_loss']:.4g}  |theta| {f['param_norm']:.4g}")
    for tau, row in summary["accuracy"].items():
        click.echo(f"  accuracy > {tau}: train at step {row['t_train']:g}, validation at step {row['t_val']:g}, "
                   f"ratio {row['ratio']:.3g}")
    for line in extra_lines:
        click.echo("  " + line)
    if stored:
        click.echo(f"  stored as run {name!r} in {out}")
    if plotted:
        click.echo(f"  plot saved to {plot}")
    report_output_errors(errors)


def _default_name(history) -> str:
    p = history.parameters
    bits = [history.system]
    for key in ("operator", "modulus", "train_pct", "train_fraction", "scale", "init_scale", "weight_decay"):
        if key in p and p[key] is not None:
            bits.append(f"{key}{p[key]}")
    bits.append(f"seed{history.settings.get('seed')}")
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
@api_option("--modulus", type=int, api=_TRANSFORMER_CONFIG, help="Prime p of the modular operators.")
@api_option("--train-pct", type=float, api=_TRANSFORMER_CONFIG, help="Training data percentage in (0, 100).")
@click.option("--cayley-table", type=click.Path(dir_okay=False), default=None,
              help="CSV multiplication table of a finite group (replaces the operator's table).")
@api_option("--weight-decay", type=float, api=_TRANSFORMER_CONFIG,
              help="Decoupled weight decay (1: Power et al.; 0.01: the thesis).")
@api_option("--lr", "max_lr", type=float, api=_TRANSFORMER_CONFIG, help="Learning rate after warm-up.")
@api_option("--layers", "n_layers", type=int, api=_TRANSFORMER_CONFIG)
@api_option("--d-model", type=int, api=_TRANSFORMER_CONFIG)
@api_option("--heads", "n_heads", type=int, api=_TRANSFORMER_CONFIG)
@api_option("--batch-size", type=int, api=_TRANSFORMER_CONFIG, help="0: min(512, ceil(N_train/2)).")
@api_option("--steps", type=int, api=_TRAIN_TRANSFORMER, help="Optimiser updates.")
@click.option("--stop-when-generalised", is_flag=True, help="Stop once validation accuracy exceeds 99%.")
@_common
@handle_errors
def transformer(operator, modulus, train_pct, cayley_table, weight_decay, max_lr, n_layers, d_model, n_heads,
                batch_size, steps, stop_when_generalised, seed, device, as_json, out, run_name, plot, checkpoint,
                checkpoint_every, threads, progress):
    """Power et al.'s 2-layer transformer on an algorithmic table (seed_systems §B).

    Example (CPU-sized): dmft train algorithmic transformer --modulus 23 --train-pct 60 --d-model 64 --steps 5000
    """
    from empirical.neural.transformer import TransformerConfig, check_no_ungrokking, detect_spikes, train_transformer

    _threads(threads)
    config = TransformerConfig(operator=operator, modulus=modulus, train_pct=train_pct, cayley_table=cayley_table,
                               weight_decay=weight_decay, max_lr=max_lr, n_layers=n_layers, d_model=d_model,
                               n_heads=n_heads, batch_size=batch_size)
    history = train_transformer(config, seed=0 if seed is None else seed, device=device, steps=steps,
                                checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                                stop_when_generalised=stop_when_generalised, progress=progress and not as_json)
    step_loss = history.extras["step_loss"]
    import numpy as np

    spikes = detect_spikes(np.arange(1, step_loss.size + 1), step_loss)
    check = check_no_ungrokking(history.step, history.val_accuracy)
    lines = [f"training-loss spikes (>1e3 x the preceding 1% window min): {len(spikes)}"
             + (f", first at step {spikes[0].step} (x{spikes[0].ratio:.3g})" if spikes else ""),
             f"no un-grokking: grokked={check.grokked}, worst plateau after 99%: {check.worst_plateau:.3f}, "
             f"ungrokked={check.ungrokked}"]
    _finish(history, as_json=as_json, out=out, run_name=run_name, plot=plot,
            title=f"transformer: {config.operator} (p={modulus}), {train_pct:g}% train, wd={weight_decay:g}",
            extra_lines=lines,
            extra_json={"spikes": [s.__dict__ for s in spikes], "ungrokking": check.__dict__})


@algorithmic.command()
@api_option("--modulus", type=int, api=_MODULAR_MLP_CONFIG, help="p.")
@api_option("--operator", type=str, api=_MODULAR_MLP_CONFIG, help="Modular operator.")
@api_option("--width", type=int, api=_MODULAR_MLP_CONFIG, help="Hidden units N.")
@api_option("--scale", type=float, api=_MODULAR_MLP_CONFIG, help="Output scale s (applied twice).")
@api_option("--train-fraction", type=float, api=_MODULAR_MLP_CONFIG)
@api_option("--lr-base", type=float, api=_MODULAR_MLP_CONFIG, help="Learning rate is lr_base/s^2.")
@api_option("--steps", type=int, api=_TRAIN_MODULAR_MLP, help="Full-batch GD steps (epochs).")
@_common
@handle_errors
def mlp(modulus, operator, width, scale, train_fraction, lr_base, steps, seed, device, as_json, out, run_name, plot,
        checkpoint, checkpoint_every, threads, progress):
    """Two-layer quadratic MLP on modular arithmetic, plain GD, MSE (theory.md §5 Fig. 2)."""
    from empirical.neural.modular_mlp import ModularMLPConfig, train_modular_mlp

    _threads(threads)
    config = ModularMLPConfig(modulus=modulus, operator=operator, width=width, scale=scale,
                              train_fraction=train_fraction, lr_base=lr_base)
    history = train_modular_mlp(config, seed=1 if seed is None else seed, device=device, steps=steps,
                                checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                                progress=progress and not as_json)
    _finish(history, as_json=as_json, out=out, run_name=run_name, plot=plot,
            title=f"modular MLP: {operator} mod {modulus}, N={width}, s={scale:g}")


@algorithmic.command()
@api_option("--modulus", type=int, api=_NANDA_CONFIG, help="p.")
@api_option("--operator", type=str, api=_NANDA_CONFIG)
@api_option("--train-fraction", type=float, api=_NANDA_CONFIG)
@api_option("--d-model", type=int, api=_NANDA_CONFIG)
@api_option("--d-mlp", type=int, api=_NANDA_CONFIG)
@api_option("--heads", "n_heads", type=int, api=_NANDA_CONFIG)
@api_option("--scale", type=float, api=_NANDA_CONFIG, help="Output scale s of the centred logits.")
@api_option("--lr-base", type=float, api=_NANDA_CONFIG, help="Learning rate is lr_base/s^2.")
@api_option("--weight-decay", type=float, api=_NANDA_CONFIG)
@api_option("--steps", type=int, api=_TRAIN_NANDA, help="Full-batch steps (epochs).")
@_common
@handle_errors
def nanda(modulus, operator, train_fraction, d_model, d_mlp, n_heads, scale, lr_base, weight_decay, steps, seed,
          device, as_json, out, run_name, plot, checkpoint, checkpoint_every, threads, progress):
    """One-layer transformer (Nanda et al.) with output scale and centred cross-entropy (Fig. 5b)."""
    from empirical.neural.nanda import NandaConfig, train_nanda

    _threads(threads)
    config = NandaConfig(modulus=modulus, operator=operator, train_fraction=train_fraction, d_model=d_model,
                         d_mlp=d_mlp, n_heads=n_heads, scale=scale, lr_base=lr_base, weight_decay=weight_decay)
    history = train_nanda(config, seed=0 if seed is None else seed, device=device, steps=steps, checkpoint=checkpoint,
                          checkpoint_every=checkpoint_every, progress=progress and not as_json)
    _finish(history, as_json=as_json, out=out, run_name=run_name, plot=plot,
            title=f"one-layer transformer: {operator} mod {modulus}, s={scale:g}")


@algorithmic.command("student-teacher")
@api_option("--scale", type=float, api=_STUDENT_TEACHER_CONFIG, help="Output scale s.")
@api_option("--init-scale", type=float, api=_STUDENT_TEACHER_CONFIG, help="Student initial weight multiplier.")
@api_option("--lr", type=float, api=_STUDENT_TEACHER_CONFIG)
@api_option("--weight-decay", type=float, api=_STUDENT_TEACHER_CONFIG)
@api_option("--accuracy-threshold", type=float, api=_STUDENT_TEACHER_CONFIG,
              help="A point counts as correct if its mean squared error is below this.")
@click.option("--center/--no-center", default=False, show_default=True, help="Centre the student's output.")
@api_option("--steps", type=int, api=_TRAIN_STUDENT_TEACHER, help="Full-batch steps (epochs).")
@_common
@handle_errors
def student_teacher(scale, init_scale, lr, weight_decay, accuracy_threshold, center, steps, seed, device, as_json,
                    out, run_name, plot, checkpoint, checkpoint_every, threads, progress):
    """Omnigrok 5-100-100-5 tanh student-teacher regression with an output scale (theory.md §5)."""
    from empirical.neural.student_teacher import StudentTeacherConfig, train_student_teacher

    _threads(threads)
    config = StudentTeacherConfig(scale=scale, init_scale=init_scale, lr=lr, weight_decay=weight_decay,
                                  accuracy_threshold=accuracy_threshold, center=center)
    history = train_student_teacher(config, seed=1 if seed is None else seed, device=device, steps=steps,
                                    checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                                    progress=progress and not as_json)
    _finish(history, as_json=as_json, out=out, run_name=run_name, plot=plot,
            title=f"student-teacher: s={scale:g}, init x{init_scale:g}")


@algorithmic.command()
@click.option("--mnist", "mnist_path", type=click.Path(dir_okay=False), default=None,
              help="Local MNIST .npz (x_train, y_train, x_test, y_test) [default: sklearn's bundled 8x8 digits].")
@api_option("--n-train", type=int, api=_DIGITS_CONFIG)
@api_option("--n-test", type=int, api=_DIGITS_CONFIG)
@api_option("--width", type=int, api=_DIGITS_CONFIG)
@api_option("--depth", type=int, api=_DIGITS_CONFIG, help="Hidden layers.")
@api_option("--init-scale", type=float, api=_DIGITS_CONFIG, help="Multiplier of the Kaiming init.")
@api_option("--scale", type=float, api=_DIGITS_CONFIG, help="Output scale kappa.")
@api_option("--lr", type=float, api=_DIGITS_CONFIG)
@api_option("--weight-decay", type=float, api=_DIGITS_CONFIG)
@api_option("--batch-size", type=int, api=_DIGITS_CONFIG)
@api_option("--steps", type=int, api=_TRAIN_DIGITS)
@_common
@handle_errors
def digits(mnist_path, n_train, n_test, width, depth, init_scale, scale, lr, weight_decay, batch_size, steps, seed,
           device, as_json, out, run_name, plot, checkpoint, checkpoint_every, threads, progress):
    """Digit-classification MLP with initial weight scale and output scale (theory.md §5, Fig. 5a)."""
    from empirical.neural.digits import DigitsConfig, train_digits

    _threads(threads)
    config = DigitsConfig(n_train=n_train, n_test=n_test, width=width, depth=depth, init_scale=init_scale,
                          scale=scale, lr=lr, weight_decay=weight_decay, batch_size=batch_size, mnist_path=mnist_path)
    history = train_digits(config, seed=0 if seed is None else seed, device=device, steps=steps,
                           checkpoint=checkpoint, checkpoint_every=checkpoint_every, progress=progress and not as_json)
    _finish(history, as_json=as_json, out=out, run_name=run_name, plot=plot,
            title=f"digits MLP ({history.settings['dataset']}): init x{init_scale:g}, scale {scale:g}")


@algorithmic.command("sweep-fraction")
@api_option("--operator", type=str, api=_TRANSFORMER_CONFIG)
@api_option("--modulus", type=int, api=_TRANSFORMER_CONFIG)
@click.option("--train-pcts", type=str, default="20,30,40,50,60,70,80", show_default=True,
              help="Comma-separated training percentages (Decision D.12).")
@click.option("--seeds", type=str, default="0", show_default=True, help="Comma-separated model seeds.")
@api_option("--weight-decay", type=float, api=_TRANSFORMER_CONFIG)
@api_option("--lr", "max_lr", type=float, api=_TRANSFORMER_CONFIG)
@api_option("--layers", "n_layers", type=int, api=_TRANSFORMER_CONFIG)
@api_option("--d-model", type=int, api=_TRANSFORMER_CONFIG)
@api_option("--heads", "n_heads", type=int, api=_TRANSFORMER_CONFIG)
@api_option("--steps", type=int, api=_SWEEP_TRAIN_FRACTION, help="Step budget per run.")
@click.option("--seed", type=int, default=None, hidden=True)
@click.option("--device", type=str, default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Store every run in this HDF5 file.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Save the phase picture.")
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
@handle_errors
def sweep_fraction(operator, modulus, train_pcts, seeds, weight_decay, max_lr, n_layers, d_model, n_heads, steps, seed,
                   device, as_json, out, plot, threads, progress):
    """Steps to 99% validation accuracy against the training percentage (seed_systems §B.6.2, §C.6)."""
    from comparisons.neural_plots import plot_fraction_phase, save_figure
    from comparisons.store import write_history
    from empirical.neural.transformer import TransformerConfig, sweep_train_fraction

    _threads(threads)
    pcts = parse_floats(train_pcts, "--train-pcts")
    seed_list = [int(s) for s in parse_floats(seeds, "--seeds")] if seed is None else [seed]
    config = TransformerConfig(operator=operator, modulus=modulus, weight_decay=weight_decay, max_lr=max_lr,
                               n_layers=n_layers, d_model=d_model, n_heads=n_heads)
    sweep = sweep_train_fraction(config, pcts, seeds=seed_list, steps=steps, device=device,
                                 progress=progress and not as_json)
    if out:
        for h in sweep.histories:
            write_history(out, _default_name(h), h)
    if plot:
        save_figure(plot_fraction_phase(sweep, title=f"{operator} mod {modulus}, wd={weight_decay:g}", budget=steps), plot)
    rows = [{"train_pct": float(p), "seed": int(s), "t_train": float(sweep.t_train[i, j]),
             "t_val": float(sweep.t_val[i, j]), "phase": str(sweep.phase[i, j])}
            for i, p in enumerate(sweep.train_pct) for j, s in enumerate(sweep.seeds)]
    if as_json:
        echo_json({"runs": rows, "monotone": sweep.monotone()})
        return
    click.echo(f"train-fraction sweep: {operator} mod {modulus}, wd={weight_decay:g}, budget {steps} steps")
    for r in rows:
        click.echo(f"  {r['train_pct']:5.1f}%  seed {r['seed']}: 99% train at {r['t_train']:g}, "
                   f"99% validation at {r['t_val']:g}  ({r['phase']})")
    click.echo(f"  steps to 99% validation non-decreasing as the fraction falls: {sweep.monotone()}")
    if out:
        click.echo(f"  runs stored in {out}")
    if plot:
        click.echo(f"  plot saved to {plot}")
