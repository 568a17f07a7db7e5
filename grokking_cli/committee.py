"""``dmft train committee``: gradient descent on the committee machine from the command line.

Mirrors :func:`empirical.train_committee` (theory.md §0–§1); ``--task NAME`` runs a named
experiment of :mod:`empirical.committee.tasks` (the paper's settings, ``--reduced`` for the small version);
options given explicitly override the task's settings (a sweep's own values still win for the
swept parameter). Exit codes: 0 success, 2 invalid input, 3 a run diverged.
"""

from __future__ import annotations

import sys

import click

from dmft.parameters import InvalidParameterError, ModelParameters
from dmft.plotting import plot_curves, save_figure
from grokking_cli.common import (echo_json, FINITE_ALPHA_HELP, DTYPE_HELP, EPSILON_HELP, EXIT_IO, EXIT_NOT_CONVERGED, SCALE_HELP,
                                 api_default, check_outputs, emit_result, handle_errors, parse_floats, resolve_epsilon,
                                 prepare_store, run_identity, store_result)

__all__ = ["committee"]

#: Settings a command-line run (no --task) takes from :func:`train_committee`'s own defaults
#: when the option is not given (the options default to None so that a task's settings win);
#: the output scale, which ``train_committee`` requires, from :class:`dmft.parameters.ModelParameters`.
_API_DEFAULTED = ("lr", "init_scale", "center", "rho", "target_scale", "optimizer", "momentum", "weight_decay",
                  "readouts", "activation", "n_test")


def _task_names():
    from empirical.committee.tasks import TASKS

    return sorted(TASKS)


@click.command()
@click.option("--task", type=str, default=None,
              help="Named experiment of the polynomial-task family (see --list-tasks); its settings are "
                   "the defaults, explicit options override them.")
@click.option("--list-tasks", is_flag=True, help="List the named tasks and exit.")
@click.option("--reduced", is_flag=True, help="With --task: the reduced-size version (smaller D, fewer steps: about 1-2 minutes on two CPU cores).")
@click.option("--alpha", type=float, default=None, help=FINITE_ALPHA_HELP)
@click.option("--dim", type=int, default=None, help="Input dimension D.")
@click.option("--width", type=int, default=None, help="Hidden units N.")
@click.option("--scale", type=float, default=None, help=SCALE_HELP + " [default: 1]")
@click.option("--epsilon", type=float, default=None,
              help=EPSILON_HELP + " Required with the polynomial students (poly, the default; quadratic, cubic, ...) "
                   "or a quadratic teacher; with erf, tanh, relu, linear or smoothed_relu:WIDTH it may be left out "
                   "(0) and is refused unless 0.")
@click.option("--steps", type=int, default=None, help="Number of full-batch GD steps.")
@click.option("--t-max", type=float, default=None, help="Or: final theory time t = lr*step/D.")
@click.option("--lr", type=float, default=None,
              help="eta_0; step size eta = eta_0 N/(scale^2 sigma^2) (Adam: eta_0/(scale^2 sigma^2)). [default: 1]")
@click.option("--init-overlap", type=str, default=None,
              help="Planted initial overlaps m_i(0) = w_i.beta/D, comma-separated (exact). [default: W ~ N(0,1)]")
@click.option("--init-scale", type=float, default=None, help="Initial weight scale sigma: W(0) <- sigma W(0). [default: 1]")
@click.option("--center/--no-center", default=None, help="Train f(x;W) - f(x;W(0)). [default: no, as dmft solve and the Python API; dmft ntk "
                   "centres by default for the paper's lazy baseline]")
@click.option("--rho", type=float, default=None, help="Teacher norm |beta|^2/D (imposed exactly). [default: 1]")
@click.option("--target-scale", type=float, default=None,
              help="y = s (beta.x)^2: 0.5 convention A, 1 convention B. [default: 0.5]")
@click.option("--optimizer", type=click.Choice(["gd", "momentum", "adam", "adamw"]), default=None,
              help="Full-batch optimiser. [default: gd]")
@click.option("--momentum", type=float, default=None,
              help="Heavy-ball momentum mu in [0,1) (--optimizer momentum only). [default: 0]")
@click.option("--weight-decay", type=float, default=None,
              help="Weight decay lambda >= 0 (L2 for gd/momentum/adam, decoupled for adamw). [default: 0]")
@click.option("--readouts/--no-readouts", default=None, help="Train the readouts a_i too (spec 2.3). [default: no]")
@click.option("--activation", type=str, default=None, help="phi: poly (h + eps h^2/2, default), quadratic "
              "(eps h^2/2), cubic, relu_quartic, quartic, poly3, poly4; or a student of the general family "
              "(docs/theory.md par. 10): erf (erf(h/sqrt2)), tanh, relu, linear, smoothed_relu:WIDTH "
              "(the Gaussian-smoothed ReLU E[relu(h + WIDTH z)], par. 10.9).")
@click.option("--target", type=click.Choice(["square", "committee"]), default=None,
              help="square: y = target_scale (beta.x)^2; committee: y = (teacher_scale/M) sum_m phi*(beta_m.x) "
                   "(+ noise), T = I, trained as the general family. [default: square]")
@click.option("--teacher-width", type=int, default=None, help="Teacher units M (--target committee). [default: 1]")
@click.option("--teacher-scale", type=float, default=None,
              help="Teacher output scale kappa* (--target committee). [default: 1]")
@click.option("--teacher-activation", type=str, default=None,
              help="Teacher phi* (--target committee): quadratic (h + eps h^2/2), square, linear, erf, relu, tanh. "
                   "[default: the student's]")
@click.option("--noise", type=float, default=None,
              help="Output-noise variance sigma^2 >= 0 of the targets (general family). [default: 0]")
@click.option("--n-test", type=int, default=None, help="Size of a finite test set (0: none). [default: 0]")
@click.option("--cka-every", type=int, default=None,
              help="Every k steps: CKA of the test-set NTK with the test labels (needs --n-test). [default: off]")
@click.option("--baselines/--no-baselines", default=None,
              help="Add the linearised-model curves and the K0 kernel-regression loss (spec 1.4). [default: off]")
@click.option("--record-points", type=int, default=200, show_default=True, help="Log-spaced records (plus step 0).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the teacher, data and init.")
@click.option("--seeds", type=int, default=1, show_default=True,
              help="Average over this many seeds (seed, seed+1, ...); spread stored in extras.")
@click.option("--device", type=str, default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help=DTYPE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON summary.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Store the run(s) in this HDF5 file; rerunning the identical run resumes it.")
@click.option("--run-name", type=str, default=None,
              help="Run name in --out [default: from the parameters, ending in a digest of every setting].")
@click.option("--overwrite", is_flag=True,
              help="Replace a different run stored under the same name (a diverged run never replaces a finished one).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Save train/test loss with the decomposition (PNG, PDF or SVG by suffix).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar over steps.")
@handle_errors
def committee(task, list_tasks, reduced, alpha, dim, width, scale, epsilon, steps, t_max, lr, init_overlap,
              init_scale, center, rho, target_scale, optimizer, momentum, weight_decay, readouts, activation,
              target, teacher_width, teacher_scale, teacher_activation, noise, n_test, cka_every, baselines, record_points, seed, seeds, device, dtype, as_json, out, run_name,
              overwrite, plot, progress):
    """Train the committee machine f = (scale/N) sum_i phi(w_i.x) by full-batch gradient descent
    on P = alpha*D samples of y = (beta.x)^2/2 and report learning curves against t = lr*step/D.
    With --activation erf/tanh/relu/linear/smoothed_relu:WIDTH, --target committee or --noise, the student and teacher
    are any member of the general family (docs/theory.md par. 10), the simulation beside
    `dmft solve` with the same options.

    Examples (Fig. 1 of the paper; the erf soft committee, N = M = 2):

    \b
        dmft train committee --alpha 5.5 --dim 100 --width 500 --scale 1 --epsilon 0.02 --steps 100000 --center
        dmft train committee --alpha 3 --dim 1000 --width 2 --scale 2 --activation erf
        --target committee --teacher-width 2 --teacher-scale 2 --t-max 20
    """
    from empirical.committee.machine import average, is_family_student, train_committee
    from empirical.committee.tasks import TASKS, CommitteeTask, get_task, run_task

    if list_tasks:
        if as_json:
            echo_json({name: TASKS[name].description for name in sorted(TASKS)})
            return
        for name in sorted(TASKS):
            click.echo(f"{name:24s} {TASKS[name].description}")
        return
    check_outputs(out, plot)  # before any computation
    given = dict(alpha=alpha, dim=dim, width=width, scale=scale, epsilon=epsilon, steps=steps, t_max=t_max, lr=lr,
                 init_overlap=parse_floats(init_overlap, "--init-overlap"), init_scale=init_scale, center=center,
                 rho=rho, target_scale=target_scale, optimizer=optimizer, momentum=momentum,
                 weight_decay=weight_decay, readouts=readouts, activation=activation, n_test=n_test,
                 cka_every=cka_every, baselines=baselines, target=target, teacher_width=teacher_width,
                 teacher_scale=teacher_scale, teacher_activation=teacher_activation, noise=noise)
    given = {k: v for k, v in given.items() if v is not None}
    if seeds < 1:
        raise InvalidParameterError(f"seeds must be an integer >= 1, got {seeds}")
    if record_points < 2:
        raise InvalidParameterError(f"record_points must be an integer >= 2, got {record_points}")
    if reduced and task is None:
        raise InvalidParameterError("--reduced needs --task")
    if steps is not None and t_max is not None:
        raise InvalidParameterError("give exactly one of --steps and --t-max")
    if task is None and activation is not None and is_family_student(activation):
        # epsilon belongs to the quadratic activation, as in `dmft solve`: 0 for a student of the
        # family unless its teacher is quadratic, and refused when non-zero there
        teacher = "quadratic" if teacher_activation == "poly" else teacher_activation
        given["epsilon"] = resolve_epsilon(epsilon, activation, target, teacher)
    if task is None:
        missing = [k for k in ("alpha", "dim", "width", "epsilon") if k not in given]
        if missing:
            raise InvalidParameterError(f"missing option(s) {', '.join('--' + m.replace('_', '-') for m in missing)} "
                             "(or use --task NAME)")
        if steps is None and t_max is None:
            raise InvalidParameterError("give exactly one of --steps and --t-max")
        defaults = {"scale": api_default(ModelParameters, "scale"),
                    **{name: api_default(train_committee, name) for name in _API_DEFAULTED}}
        the_task = CommitteeTask("committee", "command-line run", {**defaults, **given})
        overrides = {}
    else:
        the_task = get_task(task)
        overrides = given
    runtime = dict(device=device, dtype=dtype, progress=progress and not as_json, record_points=record_points)
    # Everything that shapes the runs (the device only changes the round-off, and is recorded in
    # the settings of every run).
    request = {"task": task, "reduced": reduced, "settings": dict(the_task.settings) if task is None else None,
               "overrides": {k: v for k, v in overrides.items()}, "seed": seed, "seeds": seeds, "dtype": dtype,
               "record_points": record_points}
    identity = run_identity("simulation", request)
    single_name = run_name or f"{task or 'committee'}{'_reduced' if reduced else ''}_seed{seed}" + (
        f"x{seeds}" if seeds > 1 else "") + f"_{identity[:8]}"
    stored = prepare_store(out, single_name, identity, overwrite=overwrite)
    if stored is not None:  # the identical single run is complete in --out: resume
        emit_result(stored, as_json=as_json, out=out, run_name=single_name, plot=plot, title=_title(stored),
                    identity=identity, request=request, resumed=True)
        return
    labelled = []
    for s in range(seed, seed + seeds):
        for i, (label, result) in enumerate(run_task(the_task, reduced=reduced, seed=s, overrides=overrides,
                                                      **runtime)):
            if s == seed:
                labelled.append((label, [result]))
            else:
                labelled[i][1].append(result)
    results = [(label, runs[0] if len(runs) == 1 else average(runs)) for label, runs in labelled]

    title = (f"task {task}{' (reduced)' if reduced else ''}: " if task else "") + _title(results[0][1])
    if len(results) == 1:
        emit_result(results[0][1], as_json=as_json, out=out, run_name=single_name, plot=plot, title=title,
                    identity=identity, request=request, overwrite=overwrite)
        return
    sweep_title = f"task {task}{' (reduced)' if reduced else ''}: " + ", ".join(label for label, _ in results)
    _emit_sweep(results, task=task, as_json=as_json, out=out, run_name=run_name, plot=plot, title=sweep_title,
                identity=identity, request=request, overwrite=overwrite)


def _title(result) -> str:
    p = result.parameters
    return (f"alpha=P/D={p['alpha']:g}, D={p['dim']}, N={p['width']}, scale={p['scale']:g}, "
            f"epsilon={p['epsilon']:g}" + (", centred" if p["center"] else ""))


def _emit_sweep(results, *, task, as_json, out, run_name, plot, title, identity, request, overwrite):
    """Store, plot and print the runs of a sweep; exit 3 if any diverged, 1 if storing failed."""
    names = [f"{run_name or task}_{label}_{identity[:8]}".replace("/", "_").replace(" ", "") for label, _ in results]
    notes, errors, written = [], [], []
    if out:
        for name, (label, result) in zip(names, results):
            wrote, note, error = store_result(out, name, result, identity=run_identity("simulation", {**request,
                                                                                               "label": label}),
                                              request=request, overwrite=overwrite)
            written += [name] if wrote else []
            notes += [note] if note else []
            errors += [error] if error else []
    if plot:
        try:
            save_figure(plot_curves([r for _, r in results], decomposition=False, title=title), plot)
            notes.append(f"  plot saved to {plot}")
        except OSError as exc:
            errors.append(f"error (input/output): could not save the plot {plot}: {exc}")
    if as_json:
        echo_json({"task": task, "identity": identity, "out": out, "run_names": names if out else None,
                   "written": written,
                   "runs": [{"label": label, **r.summary()} for label, r in results]})
    else:
        click.echo(f"task {task}: {len(results)} runs")
        click.echo("  label                              final t   train_loss    test_loss  converged")
        for label, r in results:
            click.echo(f"  {label:32s} {r.t[-1]:9.2f} {r.train_loss[-1]:12.5g} {r.test_loss[-1]:12.5g}  {r.converged}")
        for line in notes:
            click.echo(line)
    for line in errors:
        click.echo(line, err=True)
    if not all(r.converged for _, r in results):
        bad = [label for label, r in results if not r.converged]
        click.echo(f"error (did not converge): runs diverged: {', '.join(bad)}", err=True)
        sys.exit(EXIT_NOT_CONVERGED)
    if errors:
        sys.exit(EXIT_IO)
