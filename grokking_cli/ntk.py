"""``dmft ntk``: the NTK of the committee machine at initialisation and its lazy learning curves.

Registered on the ``dmft`` group by ``grokking_cli.main`` when this module exists.
"""

from __future__ import annotations

import dataclasses
import sys

import click
import numpy as np

from dmft.ntk import (cka, empirical_ntk_spectrum, initial_ntk_regression, lazy_curves, lazy_time_grid, make_problem,
                      mercer_spectrum, ntk_gram, target_decomposition)
from dmft.parameters import InvalidParameterError, check_finite, check_int_at_least, check_positive
from dmft.plotting import save_figure
from grokking_cli.common import (echo_json, EPSILON_HELP, EXIT_IO, SCALE_HELP, check_outputs, handle_errors, prepare_store,
                                 readable_name, run_identity, store_result)

__all__ = ["ntk"]


def _fmt_sector(label: str) -> str:
    return {"traceless_quadratic": "traceless quad", "null": "null (zero)"}.get(label, label)


def _plot(path, mercer, spec_expected, spec_network, lazy, regression, title):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True)
    P = spec_expected.eigenvalues.size
    rank = np.arange(1, P + 1)
    floor = 1e-6 * spec_expected.eigenvalues[0]
    analytic = mercer.sorted_eigenvalues(P)
    ax1.plot(rank, np.where(analytic > 0, analytic, np.nan), color="k", lw=2, label="Mercer (analytic, §3)")
    ax1.plot(rank, np.where(spec_expected.eigenvalues > floor, spec_expected.eigenvalues, np.nan), ".",
             ms=3, label="Gram/P, expected kernel (eq. 11)")
    ax1.plot(rank, np.where(spec_network.eigenvalues > floor, spec_network.eigenvalues, np.nan), ".",
             ms=3, label=f"Gram/P, network NTK at init (N={mercer.width})")
    for entry in mercer:
        ax1.axhline(entry.eigenvalue, color="0.6", lw=0.6, ls=":")
        ax1.annotate(_fmt_sector(entry.label), (1.05, entry.eigenvalue), fontsize=7, color="0.3",
                     va="bottom")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("rank k")
    ax1.set_ylabel(r"eigenvalue $\lambda_k$ (Gram / P)")
    ax1.set_title("initial NTK spectrum", fontsize=9)
    ax1.legend(fontsize=7, loc="center left")

    keep = lazy.t > 0
    t = lazy.t[keep]
    ax2.plot(t, lazy.train_loss[keep], lw=1.5, label="lazy train")
    ax2.plot(t, lazy.test_loss[keep], lw=2, label="lazy test (population)")
    ax2.plot(t, lazy.extras["test_loss_test_set"][keep], lw=1, ls="--", label="lazy test (test set)")
    for j, (name, style) in enumerate((("variance", ":"), ("alignment", "--"), ("linear", "-."))):
        values = lazy.decomposition[keep, j]
        ax2.plot(t, np.where(values > 0, values, np.nan), color="0.4", lw=0.8, ls=style, label=f"test: {name} term")
    if regression.population_mse is not None:
        ax2.axhline(regression.population_mse, color="r", lw=0.8, label="K0 regression (population)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel(r"time $t = \eta_0\,\mathrm{step}/D$")
    ax2.set_ylabel("mean squared error")
    ax2.set_title("lazy (linearised) learning curves", fontsize=9)
    ax2.legend(fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)


#: Margin between the linear sector of the Gram matrix and its numerical null threshold
#: (10·P·machine-epsilon times the largest eigenvalue) that :func:`max_epsilon` keeps.
PRECISION_MARGIN = 1e3


def max_epsilon(dim: int, n_train: int) -> float:
    """Largest |epsilon| for which float64 still resolves the linear sector of the Gram matrix.

    K = XXᵀ + ε²(XXᵀ)² (times κ²/N): its linear eigenvalues/P are ~1/D, its largest
    ~ε² max((D+2)/D², 1/P) (the |x|² mode, or the traceless block ~ε²·I/P when P < D(D+1)/2).
    Once their ratio 1/(ε² max((D+2)/D, D/P)) falls to the null threshold 10·P·eps_mach of
    the eigendecomposition, the linear modes are lost to rounding: the lazy curves freeze
    them (measured at D = 100, P = 300: from ε ~ 1e6 the train loss stays at 0.1138 instead
    of falling to 0.1123). The bound keeps the ratio PRECISION_MARGIN times above that threshold.
    """
    threshold = 10.0 * n_train * np.finfo(float).eps
    return float(np.sqrt(1.0 / (PRECISION_MARGIN * threshold * max((dim + 2.0) / dim, dim / n_train))))


@click.command("ntk", context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--epsilon", type=float, required=True,
              help=EPSILON_HELP + " Finite, |epsilon| at most about 4e4 at the default D and P (the float64 precision "
                                  "bound of the Gram's linear sector; it shrinks like P^(-1/2) for P > D).")
@click.option("--dim", type=int, default=100, show_default=True, help="Input dimension D (integer >= 1).")
@click.option("--n-train", type=int, default=300, show_default=True,
              help="Training samples P (integer >= 1); the sample ratio is alpha = P/D.")
@click.option("--n-test", type=int, default=1000, show_default=True,
              help="Test samples (integer >= 2; for the CKA and the finite-test-set MSE; the population MSE is "
                   "exact).")
@click.option("--width", type=int, default=2, show_default=True, help="Hidden units N (integer >= 1).")
@click.option("--scale", type=float, default=1.0, show_default=True, help=SCALE_HELP)
@click.option("--rho", type=float, default=1.0, show_default=True,
              help="Teacher norm |beta|^2/D (> 0); beta is rescaled to it exactly.")
@click.option("--target-scale", type=click.Choice(["0.5", "1"]), default="0.5", show_default=True,
              help="s in y = s (beta.x)^2: 0.5 convention A, 1 convention B (theory.md §1.2).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of weights, teacher and data (independent streams).")
@click.option("--center/--no-center", default=True, show_default=True,
              help="Linearise the centred predictor f(x;W) - f(x;W(0)). On by default, unlike dmft solve and "
                   "train committee: the lazy baseline of the paper (Fig. 1) is the centred network, whose "
                   "output starts at 0.")
@click.option("--ridge", type=float, default=0.0, show_default=True,
              help="Ridge added to the Gram diagonal in K0 regression (>= 0; units of K, incl. kappa^2/N).")
@click.option("--t-min", type=float, default=0.01, show_default=True,
              help="First non-zero time, in theory time t = eta0*step/D (> 0, < t-max).")
@click.option("--t-max", type=float, default=1e4, show_default=True,
              help="Final time, in theory time t = eta0*step/D. Longer than dmft solve's 40: the lazy curves are "
                   "cheap at any t and reach the kernel-regression limit only at t ~ 1e3-1e4.")
@click.option("--points", type=int, default=61, show_default=True,
              help="Time points (integer >= 2: t = 0 plus log-spaced; with --lr, rounded to whole steps and "
                   "duplicates dropped).")
@click.option("--lr", type=float, default=None,
              help="eta0 > 0: exact discrete gradient descent with eta = eta0 N/kappa^2 (times rounded to whole "
                   "steps of eta0/D; must be < P/max eigenvalue of (N/kappa^2)K for stability). "
                   "[default: gradient flow]")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON summary instead of the tables.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Store the lazy curves (with the spectra as extras) in this HDF5 file.")
@click.option("--run-name", type=str, default=None,
              help="Name of the run in --out [default: from the parameters, ending in a digest of every setting].")
@click.option("--overwrite", is_flag=True, help="Replace a different run stored under the same name.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Save the spectrum (analytic vs empirical) and the lazy curves (PNG, PDF or SVG).")
@click.option("--progress/--no-progress", default=False, show_default=True, help="Progress bar over time points.")
@handle_errors
def ntk(epsilon, dim, n_train, n_test, width, scale, rho, target_scale, seed, center, ridge, t_min, t_max,
        points, lr, as_json, out, run_name, overwrite, plot, progress):
    """Neural tangent kernel of the committee machine at initialisation (theory.md §2.2, §3).

    Prints the analytic Mercer spectrum of the expected initial NTK, the empirical Gram
    spectra grouped into its three sectors (linear, traceless quadratic, |x|^2), the CKA of
    the initial NTK with the target, the K0-regression test MSE, and the train/test losses
    of the linearised (lazy) model under gradient flow (gradient descent with --lr). Example:

        dmft ntk --epsilon 0.25 --dim 100 --n-train 300 --width 2
    """
    check_outputs(out, plot)  # before any computation
    epsilon = check_finite("epsilon", epsilon)
    dim = check_int_at_least("dim (input dimension D)", dim, 1)
    n_train = check_int_at_least("n_train (training samples P)", n_train, 1)
    bound = max_epsilon(dim, n_train)
    if abs(epsilon) > bound:
        raise InvalidParameterError(
            f"epsilon must lie in [-{bound:.3g}, {bound:.3g}] at D={dim}, P={n_train}: beyond, the linear sector of the "
            f"Gram matrix (eigenvalues ~1/D against ~epsilon^2) is lost to float64 rounding, got {epsilon:g}")
    n_test = check_int_at_least("n_test (test samples)", n_test, 2)
    width = check_int_at_least("width (hidden units N)", width, 1)
    scale = check_positive("scale (output scale kappa)", scale)
    rho = check_positive("rho (teacher norm |beta|^2/D)", rho)
    ridge = check_finite("ridge", ridge)
    if ridge < 0:
        raise InvalidParameterError(f"ridge must lie in [0, inf), got {ridge!r}")
    if lr is not None:
        lr = check_positive("lr (eta0)", lr)
    s = float(target_scale)
    try:
        grid = lazy_time_grid(t_min, t_max, points, dim=dim, lr=lr)
    except InvalidParameterError:
        raise
    except ValueError as exc:  # a check of the grid's inputs (t_min < t_max)
        raise InvalidParameterError(str(exc)) from None
    request = {"epsilon": epsilon, "dim": dim, "n_train": n_train, "n_test": n_test, "width": width, "scale": scale,
               "rho": rho, "target_scale": s, "seed": seed, "center": center, "ridge": ridge, "t_min": t_min,
               "t_max": t_max, "points": points, "lr": lr}
    identity = run_identity("lazy", request)
    name = run_name or readable_name("lazy", n_train / dim, scale, epsilon, width, center, seed, identity)
    prepare_store(out, name, identity, overwrite=overwrite)  # a different run under --run-name: refused now

    data = make_problem(dim, n_train, n_test, width, rho=rho, target_scale=s, seed=seed)
    W0, beta = data["weights0"], data["teacher"]
    mercer = mercer_spectrum(epsilon, dim, scale=scale, width=width)
    target = target_decomposition(dim, teacher=beta, target_scale=s)
    spec_expected = empirical_ntk_spectrum(data["x_train"], epsilon=epsilon, scale=scale, width=width)
    spec_network = empirical_ntk_spectrum(data["x_train"], epsilon=epsilon, scale=scale, weights=W0)
    cka_test = cka(ntk_gram(W0, data["x_test"], epsilon=epsilon, scale=scale), data["y_test"])
    cka_train = cka(ntk_gram(W0, data["x_train"], epsilon=epsilon, scale=scale), data["y_train"]) if n_train > 1 else None
    regression = initial_ntk_regression(
        W0, data["x_train"], data["y_train"], data["x_test"], data["y_test"], epsilon=epsilon, scale=scale,
        ridge=ridge, center=center, teacher=beta, target_scale=s,
    )
    lazy = lazy_curves(
        W0, data["x_train"], data["y_train"], data["x_test"], data["y_test"], epsilon=epsilon, scale=scale,
        t=grid, teacher=beta, center=center, target_scale=s, lr=lr, progress=progress and not as_json,
    )
    extras = dict(lazy.extras)
    extras.update(
        mercer_eigenvalues=np.array([e.eigenvalue for e in mercer]),
        mercer_multiplicities=np.array([e.multiplicity for e in mercer]),
        gram_eigenvalues_over_P_expected=spec_expected.eigenvalues,
        gram_eigenvalues_over_P_network=spec_network.eigenvalues,
    )
    settings = dict(lazy.settings, seed=seed, ridge=ridge)
    lazy = dataclasses.replace(lazy, extras=extras, settings=settings)

    alpha = n_train / dim
    summary = {
        "parameters": lazy.parameters,
        "settings": lazy.settings,
        "mercer": [
            {"label": e.label, "eigenvalue": e.eigenvalue, "multiplicity": e.multiplicity,
             "lazy_rate": mercer.rate(e.label), "target_power": target.power[e.label]}
            for e in mercer
        ],
        "gram_expected": [dataclasses.asdict(x) for x in spec_expected.sectors],
        "gram_network": [dataclasses.asdict(x) for x in spec_network.sectors],
        "cka": {"test": cka_test, "train": cka_train},
        "kernel_regression": {
            "ridge": ridge, "center": center, "test_mse": regression.test_mse, "train_mse": regression.train_mse,
            "population_mse": regression.population_mse,
            "population_decomposition": regression.population_decomposition.tolist(),
        },
        "lazy": lazy.summary(),
    }

    notes, errors = [], []
    written = False
    if out:
        written, note, error = store_result(out, name, lazy, identity=identity, request=request, overwrite=overwrite, attrs={
            "cka_test": cka_test, "kernel_regression_test_mse": regression.test_mse,
            "kernel_regression_population_mse": regression.population_mse, "ridge": ridge,
        })
        notes += [note] if note else []
        errors += [error] if error else []
    title = (f"D={dim}, P={n_train} (alpha=P/D={alpha:g}), N={width}, scale={scale:g}, epsilon={epsilon:g}, "
             f"seed {seed}" + (", centred" if center else ""))
    if plot:
        try:
            _plot(plot, mercer, spec_expected, spec_network, lazy, regression, title)
            notes.append(f"  plot saved to {plot}")
        except OSError as exc:
            errors.append(f"error (input/output): could not save the plot {plot}: {exc}")
    if as_json:
        summary["stored"] = {"out": out, "run_name": name if out else None, "identity": identity, "written": written}
        echo_json(summary, default=float)
        _finish(errors)
        return

    echo = click.echo
    echo(f"NTK of the committee machine: {title}")
    echo("Analytic Mercer spectrum of the expected initial NTK (theory.md §3; eigenvalues include kappa^2/N):")
    echo("  sector           multiplicity    eigenvalue   lazy rate (P->inf)   target power")
    for e in mercer:
        echo(f"  {_fmt_sector(e.label):16s} {e.multiplicity:12d}  {e.eigenvalue:12.5g}   {mercer.rate(e.label):12.5g}"
             f"        {target.power[e.label]:10.5g}")
    for name, spec in (("expected kernel (eq. 11)", spec_expected),
                       (f"network NTK at init (eq. 19, N={width})", spec_network)):
        echo(f"Gram eigenvalues / P, {name}, rank-ordered into sectors:")
        echo("  sector            count        mean      median         min         max   mean/analytic")
        for x in spec.sectors:
            ratio = f"{x.mean / x.analytic:10.4f}" if x.analytic > 0 else "         -"
            echo(f"  {_fmt_sector(x.label):16s} {x.count:6d}  {x.mean:10.4g}  {x.median:10.4g}  {x.minimum:10.4g}"
                 f"  {x.maximum:10.4g}      {ratio}")
    quad = mercer["traceless_quadratic"]
    if n_train < mercer.rank and epsilon != 0:  # at epsilon = 0 the quadratic sectors are null
        echo(f"  note: P = {n_train} is below the rank D + D(D+1)/2 = {mercer.rank} of the kernel, so the "
             f"traceless sector ({quad.multiplicity} modes) is not resolved; its Gram eigenvalues/P are of order epsilon^2 kappa^2/(N P) (that part of K is close to a multiple "
             "of the identity), not the Mercer value")
    train_txt = f", train {cka_train:.4f}" if cka_train is not None else ""
    echo(f"CKA of the initial NTK with the target (§2.5): test set {cka_test:.4f}{train_txt}")
    d = regression.population_decomposition
    echo(f"K0 regression (ridge {ridge:g}, {'centred' if center else 'uncentred'}): test MSE {regression.test_mse:.5g} "
         f"({n_test} points), population MSE {regression.population_mse:.5g} "
         f"[variance {d[0]:.4g}, alignment {d[1]:.4g}, linear {d[2]:.4g}], train MSE {regression.train_mse:.3g}")
    echo(f"Lazy (linearised) curves, {lazy.settings['dynamics']}, {lazy.message}:")
    echo("         t    train_loss   test (population)   test (test set)")
    T = lazy.t.size
    for i in sorted(set(np.linspace(0, T - 1, min(T, 9)).round().astype(int).tolist())):
        echo(f"  {lazy.t[i]:8.3g}  {lazy.train_loss[i]:12.5g}   {lazy.test_loss[i]:16.5g}  "
             f"{lazy.extras['test_loss_test_set'][i]:16.5g}")
    if ridge == 0:
        echo(f"       inf  {regression.train_mse:12.5g}   {regression.population_mse:16.5g}  "
             f"{regression.test_mse:16.5g}   (t -> inf limit = K0 regression)")
    for line in notes:
        echo(line)
    _finish(errors)


def _finish(errors) -> None:
    """Report storing/plotting failures after the results were printed (exit 1)."""
    for line in errors:
        click.echo(line, err=True)
    if errors:
        sys.exit(EXIT_IO)
