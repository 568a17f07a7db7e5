"""``dmft train family``: gradient descent on any member of the committee family (theory.md §10).

Mirrors :func:`empirical.committee.family.train_committee_family` (the Python API) and takes the
family options of ``dmft solve`` (``--activation``, ``--target committee``, ``--teacher-*``), so
that a theory run and its simulation are one option list apart. It is a sibling of
``dmft train committee`` rather than a set of options on it: that command's ``--activation`` names
the polynomial-task activations (its ``quadratic`` is (ε/2)h²), the theory's ``quadratic`` is
h + (ε/2)h². Exit codes: 0 success, 2 invalid input, 3 a run diverged, 1 input/output.
"""

from __future__ import annotations

import click
import numpy as np

from dmft.parameters import InvalidParameterError
from grokking_cli.common import (DTYPE_HELP, EPSILON_FAMILY_HELP, FINITE_ALPHA_HELP, SCALE_HELP, check_outputs,
                                 emit_result, family_settings, handle_errors, parse_floats, prepare_store,
                                 resolve_epsilon, run_identity, training_family_options)

__all__ = ["family"]


@click.command()
@click.option("--alpha", type=float, required=True, help=FINITE_ALPHA_HELP)
@click.option("--dim", type=int, required=True, help="Input dimension D (>= N + M).")
@click.option("--width", type=int, default=2, show_default=True, help="Hidden units N.")
@click.option("--scale", type=float, default=1.0, show_default=True, help=SCALE_HELP)
@click.option("--epsilon", type=float, default=None, help=EPSILON_FAMILY_HELP)
@training_family_options
@click.option("--init-overlap", type=str, default=None,
              help="R(0) as N*M comma-separated numbers, row-major (planted exactly). "
                   "[default: +-0.1 on the pattern R_in = +-0.1 delta(i mod M, n)]")
@click.option("--center/--no-center", default=False, show_default=True,
              help="Train the centred predictor f(x;W) - f(x;W(0)) (theory.md section 10.10).")
@click.option("--t-max", type=float, default=20.0, show_default=True, help="Final time t = lr*step/D.")
@click.option("--dt", type=float, default=0.25, show_default=True, help="Spacing of the recorded times, in units of t.")
@click.option("--lr", type=float, default=None,
              help="eta_0 (step eta = eta_0 N/scale^2; one step advances t by eta_0/D). [default: 0.02*D]")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed (integer >= 0) of teacher, planting, inputs.")
@click.option("--device", type=str, default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help=DTYPE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON summary.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Store the run in this HDF5 file.")
@click.option("--run-name", type=str, default=None, help="Run name in --out [default: from the parameters].")
@click.option("--overwrite", is_flag=True, help="Replace a different run stored under the same name.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Save the curves (PNG, PDF or SVG).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar over steps.")
@handle_errors
def family(alpha, dim, width, scale, epsilon, activation, target, teacher_width, teacher_scale, teacher_activation,
           noise, init_overlap, center, t_max, dt, lr, seed, device, dtype, as_json, out, run_name, overwrite, plot, progress):
    """Full-batch gradient descent of f = (scale/N) sum_i phi(w_i.x) on P = alpha*D samples of a
    square or committee teacher, with the exact population loss from (Q, R, T). Example (the
    simulation beside `dmft solve --alpha 3 ... --activation erf --target committee`):

        dmft train family --alpha 3 --dim 1000 --scale 2 --activation erf --target committee --teacher-width 2 --teacher-scale 2 --t-max 20
    """
    from dmft.committee_online import CommitteeModel
    from dmft.solve import time_grid
    from empirical.committee.family import train_committee_family

    check_outputs(out, plot)
    epsilon = resolve_epsilon(epsilon, activation, target, teacher_activation)
    overlap = parse_floats(init_overlap, "--init-overlap")
    chosen, overlap = family_settings(activation, target, teacher_width, teacher_scale, teacher_activation, overlap,
                                      noise)
    if overlap is not None and not isinstance(overlap, np.ndarray):
        overlap = np.array(overlap)[:, None]                   # the square target: one teacher field
    if dim < 2:
        raise InvalidParameterError(f"dim must be an integer >= 2, got {dim}")
    lr = 0.02 * dim if lr is None else lr
    if not lr > 0:
        raise InvalidParameterError(f"lr must be > 0, got {lr}")
    t = time_grid(t_max, dt)                                   # checks t_max and dt
    if lr / dim > dt:
        # a step advances t by lr/D: records closer than that would round to the same step
        raise click.BadParameter(f"one step advances t by lr/D = {lr / dim:g}, more than the spacing --dt {dt:g} of "
                                 f"the recorded times: give lr <= dt*D = {dt * dim:g}", param_hint="'--lr'")
    model = CommitteeModel(activation=activation, epsilon=epsilon, scale=scale, width=width, target=target,
                           teacher_width=teacher_width, teacher_scale=teacher_scale,
                           teacher_activation=teacher_activation, noise=noise, init_overlap=overlap, center=center)
    request = {"alpha": alpha, "dim": dim, "width": width, "scale": scale, "epsilon": epsilon, **chosen,
               "init_overlap": model.init_overlap.tolist(), "center": center, "t_max": t_max, "dt": dt, "lr": lr, "seed": seed,
               "dtype": dtype}
    identity = run_identity("simulation", request)
    name = run_name or f"family_{activation}_alpha{alpha:g}_D{dim}_N{width}_seed{seed}_{identity[:8]}"
    stored = prepare_store(out, name, identity, overwrite=overwrite)
    title = (f"alpha=P/D={alpha:g}, D={dim}, {activation} student N={width}, scale={scale:g}; "
             + (f"{model.teacher_activation.name} teacher M={model.M}, scale={teacher_scale:g}"
                if target == "committee" else "square target"))
    if stored is not None:
        emit_result(stored, as_json=as_json, out=out, run_name=name, plot=plot, title=title, identity=identity,
                    request=request, resumed=True)
        return
    try:
        result = train_committee_family(model, alpha, dim, t, seed=seed, time_step=lr / dim, device=device,
                                        dtype=dtype, progress=progress and not as_json)
    except FloatingPointError as exc:
        click.echo(f"error (did not converge): {exc}", err=True)
        raise SystemExit(3) from exc
    emit_result(result, as_json=as_json, out=out, run_name=name, plot=plot, title=title, identity=identity,
                request=request, overwrite=overwrite)
