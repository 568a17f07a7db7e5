"""``dmft train bayes …``: the systems of "Grokking Beyond Neural Networks" (seed_systems.md §A).

One subcommand per system (``linear``, ``gp-classification``, ``gp-sine``, ``concealment``, ``bnn``,
``laplace``). Sizes default to the spec's values; ``--seed`` may be repeated (default: the spec's
seeds). ``--json`` prints a machine-readable summary, ``--out FILE.h5`` stores the curves as a
record (:mod:`comparisons.store`), ``--plot FILE.png`` saves the figure (and a PDF beside it).
Invalid input exits with code 2, before any training. A run whose loss or weights become NaN or
inf (or whose kernel matrix breaks down) stops there: one line names the run and the epoch or
iteration, nothing is stored or plotted, and the command exits with code 3.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import asdict, is_dataclass

import click
import numpy as np

from grokking_cli.common import (EXIT_NOT_CONVERGED, echo_json, api_option, handle_errors, outputs_checked_first,
                                 report_output_errors, try_output)
from dmft.parameters import InvalidParameterError, check_int_at_least
from empirical.bayes.divergence import TrainingDiverged

__all__ = ["bayes"]

#: The APIs whose defaults the options below show (imported only when a default is needed).
_BNN = "empirical.bayes.bnn:BNNConfig"
_CONCEALMENT = "empirical.bayes.concealment:ConcealmentConfig"
_EXACT = "empirical.bayes.gp:ExactGPConfig"
_LAPLACE = "empirical.bayes.laplace:LaplaceConfig"
_LAPLACE_LANDSCAPE = "empirical.bayes.laplace:laplace_landscape"
_LINEAR = "empirical.bayes.linear:LinearGrokkingConfig"
_LML_LANDSCAPE = "empirical.bayes.gp:lml_landscape"
_VARIATIONAL = "empirical.bayes.gp:VariationalGPConfig"


def _gap_dict(gap) -> dict:
    return {"t_train": gap.t_train, "t_val": gap.t_val, "gap": gap.gap, "train_censored": gap.train_censored,
            "val_censored": gap.val_censored}


def _config_dict(config) -> dict:
    return asdict(config) if is_dataclass(config) else dict(config)


def _finish(system: str, summary: dict, arrays: dict, attrs: dict, *, parameters: dict, seeds, as_json: bool,
            out: str | None, name: str | None, plot: str | None, figure) -> None:
    """Store the record (with ``parameters``: every option that shaped it, ``seed``: the first of
    ``seeds``, the seeds used, and the store's provenance), save the plot, print the summary."""
    from comparisons.bayes_plots import save_png_pdf
    from comparisons.store import write_record

    seeds = [int(s) for s in seeds]
    record_attrs = {"system": system, "parameters": parameters, "seed": seeds[0], "seeds": seeds, **attrs}
    errors = []
    stored = bool(out) and try_output(lambda: write_record(out, name or system, arrays, record_attrs),
                                      f"store record {name or system!r} in {out}", errors)
    plotted = bool(plot) and try_output(lambda: save_png_pdf(figure(), plot), f"save the plot {plot}", errors)
    if as_json:
        echo_json({"system": system, **summary}, default=float)
        report_output_errors(errors)
        return
    click.echo(f"{system}:")
    for key, value in summary.items():
        click.echo(f"  {key}: {value}")
    if stored:
        click.echo(f"  stored as record {name or system!r} in {out}")
    if plotted:
        click.echo(f"  plot saved to {plot}")
    report_output_errors(errors)


def _diverged_exits_3(func):
    """A run that diverged (:class:`~empirical.bayes.divergence.TrainingDiverged`): one line, exit 3.

    Nothing is stored or plotted: the results of the other runs are not printed either, as in
    ``dmft train family``.
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except TrainingDiverged as exc:
            click.echo(f"error (did not converge): {exc}; nothing stored or plotted", err=True)
            sys.exit(EXIT_NOT_CONVERGED)

    return wrapper


def _common(func):
    func = outputs_checked_first(_diverged_exits_3(func))  # --out and --plot before any computation
    func = click.option("--name", default=None, help="Record name in --out (default: the system name).")(func)
    func = click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Save the figure (PNG + PDF).")(func)
    func = click.option("--out", type=click.Path(dir_okay=False), default=None, help="Store the curves (HDF5 record).")(func)
    func = click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")(func)
    return func


def _seeds(seeds, default):
    seeds = tuple(seeds) or tuple(default)
    for s in seeds:
        if s < 0:
            raise InvalidParameterError(f"seed must be an integer >= 0, got {s!r}")
    return seeds


@click.group()
def bayes():
    """Grokking beyond neural networks: linear regression, GPs, concealment MLP, BNN (seed_systems.md §A)."""


@bayes.command()
@click.option("--seed", "seeds", type=int, multiple=True, help="Data seed (repeatable; default 0..4).")
@api_option("--epochs", type=int, api=_LINEAR, help="Full-batch SGD epochs (one step each).")
@api_option("--lr", "--learning-rate", "lr", type=float, api=_LINEAR, field="learning_rate",
            help="Full-batch SGD step (learning_rate of the API).")
@api_option("--noise-variance", type=float, api=_LINEAR, help="σ² of eq 8.")
@api_option("--prior-variance", type=float, api=_LINEAR, help="s² of eq 8.")
@_common
@handle_errors
def linear(seeds, epochs, lr, noise_variance, prior_variance, as_json, out, plot, name):
    """Linear regression with nuisance features and the MDL loss (§A.3)."""
    from empirical.bayes.linear import LinearGrokkingConfig, linear_arrays, run_linear_seeds

    config = LinearGrokkingConfig(epochs=epochs, learning_rate=lr, noise_variance=noise_variance,
                                  prior_variance=prior_variance)
    seeds = _seeds(seeds, range(5))
    runs = run_linear_seeds(seeds, config)
    summary = {"gaps": {r.seed: _gap_dict(r.gap) for r in runs},
               "final_val_accuracy": {r.seed: float(r.val_accuracy[-1]) for r in runs},
               "final_weights": {r.seed: r.weights[-1].round(4).tolist() for r in runs}}

    def figure():
        from comparisons.bayes_plots import plot_linear

        return plot_linear(runs)

    _finish("linear", summary, linear_arrays(runs), {"config": _config_dict(config)},
            parameters=_config_dict(config), seeds=seeds, as_json=as_json, out=out, name=name, plot=plot,
            figure=figure)


@bayes.command("gp-classification")
@click.option("--task", type=click.Choice(["one_zero", "parity"]), default="one_zero", show_default=True,
              help="one_zero: 1-0 classification (Dataset 8, §A.4); parity: concealed 3-bit parity (§A.5).")
@click.option("--seed", "seeds", type=int, multiple=True, help="Seed (repeatable; default 42 52 62 72 82).")
@click.option("--iterations", type=int, default=None, help="Adam iterations. [default: 1500 one_zero, 500 parity]")
@api_option("--lr", "--learning-rate", "lr", type=float, api=_VARIATIONAL, field="learning_rate",
            help="Adam step (learning_rate of the API).")
@click.option("--lengthscale-init", type=float, default=None,
              help="Initial ARD lengthscale of every input dimension (> 0). [default: 0.005 one_zero, gpytorch's "
                   "log 2 = 0.693 parity]")
@click.option("--n-train", type=int, default=None,
              help="Training points (parity: plus 100 validation points). [default: 20 one_zero, 1000 parity]")
@click.option("--x-dist", type=click.Choice(["uniform", "normal"]), default=None,
              help="Dataset 8 inputs (--task one_zero only; Decision D.1). [default: uniform]")
@click.option("--spurious", type=click.Choice(["bits", "gaussian"]), default=None,
              help="Parity concealment coordinates (--task parity only; Decision D.1). [default: bits]")
@_common
@handle_errors
def gp_classification(task, seeds, iterations, lr, lengthscale_init, n_train, x_dist, spurious, as_json, out, plot, name):
    """Variational GP classification on 1-0 data or concealed parity (§A.4, §A.5)."""
    for option, value, owner in (("--x-dist", x_dist, "one_zero"), ("--spurious", spurious, "parity")):
        if value is not None and task != owner:   # it would be ignored: refuse rather than run without it
            raise click.BadParameter(f"applies to --task {owner} only, got --task {task}", param_hint=option)
    x_dist, spurious = x_dist or "uniform", spurious or "bits"
    from empirical.bayes.gp import GP_SEEDS, VariationalGPConfig, gp_classification_data, train_variational_gp, variational_arrays

    if task == "one_zero":
        config = VariationalGPConfig(lengthscale_init=0.005 if lengthscale_init is None else lengthscale_init,
                                     iterations=1500 if iterations is None else iterations, learning_rate=lr)
        kwargs = {"x_dist": x_dist, **({"n_train": n_train} if n_train is not None else {})}
    else:
        config = VariationalGPConfig(lengthscale_init=lengthscale_init, iterations=500 if iterations is None else iterations,
                                     learning_rate=lr)
        kwargs = {"spurious": spurious, **({"n_train": n_train, "n_samples": n_train + 100} if n_train is not None else {})}
    seeds = _seeds(seeds, GP_SEEDS)
    runs = [train_variational_gp(gp_classification_data(task, s, **kwargs), s, config, progress=not as_json)
            for s in seeds]
    summary = {"task": task, "gaps": {r.seed: _gap_dict(r.gap) for r in runs},
               "mean_gap": float(np.mean([r.gap.gap for r in runs])),
               "final_val_accuracy": {r.seed: float(r.val_accuracy[-1]) for r in runs}}
    if task == "parity":
        summary.update(_lengthscale_ratio(runs, config.iterations))

    def figure():
        from comparisons.bayes_plots import plot_gp_classification

        return plot_gp_classification({task: runs})

    parameters = {"task": task, **_config_dict(config), "n_train": n_train, **kwargs}
    _finish("gp-classification", summary, variational_arrays(runs), {"task": task, "config": _config_dict(config)},
            parameters=parameters, seeds=seeds, as_json=as_json, out=out, name=name, plot=plot, figure=figure)


def _lengthscale_ratio(runs, iterations: int, at: int = 150) -> dict:
    """min 1/ℓ of the 3 informative dims over max 1/ℓ of the others per seed, at iteration ``at``
    (App. H.1), or at the last iteration of a shorter run: the iteration used is returned with it.
    """
    t = min(at, iterations)
    ratio = {r.seed: float(r.inverse_lengthscales(t)[:3].min() / r.inverse_lengthscales(t)[3:].max()) for r in runs}
    return {"inverse_lengthscale_ratio": ratio, "inverse_lengthscale_ratio_iteration": t}


def _check_grid(grid: int) -> None:
    """--grid before any training (the landscape is computed after it)."""
    check_int_at_least("grid", grid, 2)


@bayes.command("gp-sine")
@click.option("--seed", "seeds", type=int, multiple=True, help="Data seed (default 0; first one used).")
@click.option("--case", "cases", type=click.Choice(["A", "B", "C"]), multiple=True, help="Initialisations (default all).")
@api_option("--iterations", type=int, api=_EXACT, help="Adam iterations on the log marginal likelihood.")
@api_option("--lr", "--learning-rate", "lr", type=float, api=_EXACT, field="learning_rate",
            help="Adam step (learning_rate of the API).")
@api_option("--grid", type=int, api=_LML_LANDSCAPE, field="n_grid", help="Landscape grid points per axis.")
@click.option("--fix-noise", is_flag=True, help="Keep σ_n² at 0.01 (Decision D.8 flag).")
@_common
@handle_errors
def gp_sine(seeds, cases, iterations, lr, grid, fix_noise, as_json, out, plot, name):
    """Exact GP regression on the sine from initialisations A/B/C with landscapes (§A.7)."""
    from empirical.bayes.datasets import sine
    from empirical.bayes.gp import ExactGPConfig, exact_arrays, lml_landscape, train_exact_gp

    seed = _seeds(seeds, (0,))[0]
    _check_grid(grid)
    data = sine(seed=seed)
    config = ExactGPConfig(iterations=iterations, learning_rate=lr, train_noise=not fix_noise)
    runs = [train_exact_gp(data, c, config, progress=not as_json) for c in (cases or ("A", "B", "C"))]
    landscape = lml_landscape(data, n_grid=grid)
    summary = {"seed": seed, "settle": {r.case: [r.settle_iteration("train"), r.settle_iteration("val")] for r in runs},
               "settle_ratio": {r.case: r.settle_ratio for r in runs},
               "final": {r.case: {"log_lengthscale": float(r.log_lengthscale[-1]),
                                  "log_outputscale": float(r.log_outputscale[-1]), "noise": float(r.noise[-1]),
                                  "val_mse": float(r.val_mse[-1])} for r in runs}}

    def figure():
        from comparisons.bayes_plots import plot_gp_sine

        return plot_gp_sine(runs, landscape)

    parameters = {**_config_dict(config), "cases": [r.case for r in runs], "grid": grid}
    _finish("gp-sine", summary, exact_arrays(runs, landscape), {"seed": seed, "config": _config_dict(config)},
            parameters=parameters, seeds=[seed], as_json=as_json, out=out, name=name, plot=plot, figure=figure)


@bayes.command()
@click.option("--dataset", "datasets", type=click.Choice(["add", "sub", "div", "poly", "poly2", "xyx"]), multiple=True,
              help="Datasets 2–7 (repeatable; default all six).")
@click.option("--m", "dims", type=int, multiple=True,
              help="Added dimensions (repeatable; default 0 10 20 30 40). The gap regression needs 2 or more distinct "
                   "values.")
@click.option("--seed", "seeds", type=int, multiple=True, help="Seeds (repeatable; default 0 1 2).")
@api_option("--epochs", type=int, api=_CONCEALMENT, help="Training epochs of each MLP.")
@api_option("--hidden", type=int, api=_CONCEALMENT, help="Hidden units of the MLP.")
@api_option("--spurious", type=click.Choice(["bits", "gaussian"]), api=_CONCEALMENT,
            help="Concealment coordinates: Bernoulli(1/2) bits or N(0, 1) values (Decision D.1).")
@_common
@handle_errors
def concealment(datasets, dims, seeds, epochs, hidden, spurious, as_json, out, plot, name):
    """Concealment MLP grid, gap per run and the log-linear gap regression (§A.6)."""
    from empirical.bayes.concealment import (DEFAULT_EXTRA_DIMS, DEFAULT_SEEDS, ConcealmentConfig, concealment_arrays,
                                             run_concealment_grid)
    from empirical.bayes.datasets import CONCEALMENT_DATASETS

    config = ConcealmentConfig(epochs=epochs, hidden=hidden, spurious=spurious)
    dims = tuple(dims) or DEFAULT_EXTRA_DIMS
    for m in dims:
        if m < 0:
            raise InvalidParameterError(f"m must be an integer >= 0, got {m!r}")
    seeds = _seeds(seeds, DEFAULT_SEEDS)
    datasets = tuple(datasets or CONCEALMENT_DATASETS)
    runs = run_concealment_grid(datasets, dims, seeds, config, progress=not as_json)
    summary = {"gaps": {f"{r.dataset}_m{r.m}_seed{r.seed}": _gap_dict(r.gap) for r in runs}}
    summary.update(_regression_summary(runs))

    def figure():
        from comparisons.bayes_plots import plot_concealment

        return plot_concealment(runs)

    parameters = {**_config_dict(config), "datasets": list(datasets), "m": [int(m) for m in dims]}
    _finish("concealment", summary, concealment_arrays(runs), {"config": _config_dict(config)},
            parameters=parameters, seeds=seeds, as_json=as_json, out=out, name=name, plot=plot, figure=figure)


def _regression_summary(runs) -> dict:
    """The gap regressions that can be fit (``regression``) and a note naming those that cannot."""
    from empirical.bayes.concealment import FIT_REQUIREMENT, regression_table

    table = regression_table(runs, skip_unfittable=True)
    rows = [*dict.fromkeys(r.dataset for r in runs), "combined"]
    summary = {"regression": {k: asdict(v) for k, v in table.items()}} if table else {}
    missing = [name for name in rows if name not in table]
    if missing:
        summary["regression_note"] = (f"no gap regression for {', '.join(missing)}: a fit needs {FIT_REQUIREMENT} "
                                      "(repeat --m and --seed)")
    return summary


@bayes.command()
@click.option("--q-mean-std", "q_mean_stds", type=float, multiple=True,
              help="Initial posterior-mean std (repeatable; default 0.005 … 1.0).")
@click.option("--seed", "seeds", type=int, multiple=True, help="Seeds (repeatable; default 0 1 2).")
@api_option("--epochs", type=int, api=_BNN,
              help="Full-batch SGD epochs. 1500 is the Fig 6 script's budget; validation accuracy stays near "
                   "chance there, and every run of the grid groks (validation > 0.95) within 16000 epochs, so use 20000 "
                   "to see the whole trajectory (docs/results/bayes_bnn_20000epochs.md).")
@api_option("--hidden", type=int, api=_BNN, help="Hidden units (spec: 200).")
@_common
@handle_errors
def bnn(q_mean_stds, seeds, epochs, hidden, as_json, out, plot, name):
    """Mean-field BNN on concealed parity, description-length complexity (§A.8)."""
    from empirical.bayes.bnn import (BNN_SEEDS, MIN_EPOCHS_FOR_STEEPEST, Q_MEAN_STDS, BNNConfig, bnn_arrays,
                                     bnn_summary, run_bnn_grid)

    config = BNNConfig(epochs=epochs, hidden=hidden)
    seeds = _seeds(seeds, BNN_SEEDS)
    q_mean_stds = tuple(q_mean_stds or Q_MEAN_STDS)
    runs = run_bnn_grid(q_mean_stds, seeds, config, progress=not as_json)
    summary = {"gaps": {f"q{r.q_mean_std:g}_seed{r.seed}": _gap_dict(r.gap) for r in runs}}
    if len({r.q_mean_std for r in runs}) >= 2:
        s = bnn_summary(runs)
        summary.update(spearman_r=s.spearman_r, min_error_epoch=s.min_error_epoch,
                       steepest_complexity_epoch=s.steepest_complexity_epoch,
                       steepest_complexity_epoch_linear=s.steepest_complexity_epoch_linear,
                       error_half_fall_epoch=s.error_half_fall_epoch,
                       complexity_half_fall_epoch=s.complexity_half_fall_epoch,
                       mean_gap=dict(zip(map(float, s.q_mean_stds), map(float, s.mean_gap))))
        if s.steepest_complexity_epoch is None:
            summary["note"] = f"the steepest complexity fall needs --epochs >= {MIN_EPOCHS_FOR_STEEPEST}, got {epochs}"

    def figure():
        from comparisons.bayes_plots import plot_bnn

        return plot_bnn(runs)

    parameters = {**_config_dict(config), "q_mean_stds": [float(q) for q in q_mean_stds]}
    _finish("bnn", summary, bnn_arrays(runs), {"config": _config_dict(config)}, parameters=parameters, seeds=seeds,
            as_json=as_json, out=out, name=name, plot=plot, figure=figure)


@bayes.command()
@click.option("--seed", "seeds", type=int, multiple=True, help="Dataset 8 seed (default 42; first one used).")
@click.option("--case", "cases", type=click.Choice(["A", "B", "C"]), multiple=True, help="Initialisations (default all).")
@api_option("--iterations", type=int, api=_LAPLACE, help="Adam iterations on the Laplace log marginal likelihood.")
@api_option("--lr", "--learning-rate", "lr", type=float, api=_LAPLACE, field="learning_rate",
            help="Adam step (learning_rate of the API).")
@api_option("--grid", type=int, api=_LAPLACE_LANDSCAPE, field="n_grid", help="Landscape grid points per axis.")
@_common
@handle_errors
def laplace(seeds, cases, iterations, lr, grid, as_json, out, plot, name):
    """Laplace-approximation GP classification: complexity ½log|B|, landscapes (§A.9, D.7)."""
    from empirical.bayes.datasets import one_zero
    from empirical.bayes.laplace import LaplaceConfig, laplace_arrays, laplace_landscape, train_laplace_gp

    seed = _seeds(seeds, (42,))[0]
    _check_grid(grid)
    data = one_zero(seed=seed)
    config = LaplaceConfig(iterations=iterations, learning_rate=lr)
    runs = [train_laplace_gp(data, c, config, progress=not as_json) for c in (cases or ("A", "B", "C"))]
    landscape = laplace_landscape(data, n_grid=grid)
    summary = {"seed": seed, "gaps": {r.case: _gap_dict(r.gap) for r in runs},
               "final": {r.case: {"log_lengthscale": float(r.log_lengthscale[-1]),
                                  "log_outputscale": float(r.log_outputscale[-1]), "lml": float(r.lml[-1]),
                                  "complexity": float(r.complexity[-1])} for r in runs}}

    def figure():
        from comparisons.bayes_plots import plot_laplace

        return plot_laplace(runs, landscape)

    parameters = {**_config_dict(config), "cases": [r.case for r in runs], "grid": grid}
    _finish("laplace", summary, laplace_arrays(runs, landscape), {"seed": seed, "config": _config_dict(config)},
            parameters=parameters, seeds=[seed], as_json=as_json, out=out, name=name, plot=plot, figure=figure)
