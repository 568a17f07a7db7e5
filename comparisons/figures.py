"""The paper's figures (Kumar et al. 2024), reduced by default, full size on request.

``dmft figure NAME [--full] [--out-dir DIR]`` / :func:`make_figure`. Each figure writes
``NAME.png``, ``NAME.pdf`` and ``NAME.h5`` (every run it drew, resumable: runs already complete
there are reused) into the output directory. Settings are those of theory.md §5; the reduced
sizes (``reduced=...`` in :data:`FIGURES`) keep the phenomenon but shrink D, N, the grids and the
number of seeds so that each figure runs in a minute or two on one core.

Labels use this package's names: ``alpha`` is P/D, the output scale is "scale κ (paper: α)".

Theory curves: the finite-α DMFT (``dmft.solve`` at the simulations' α) when the solver
``dmft.dmft_solver`` is installed, otherwise the online (α = ∞) ODE, labelled as such — never
silently substituted. The theory starts from the same planted overlaps m(0) as the simulations
(planted initialisation of theory.md §0 with |m_i(0)| = D^(−1/2), alternating signs).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

import dmft
from comparisons.agreement import agreement, quantity_values
from comparisons.overlay import plot_overlay, pyplot
from comparisons.store import identity_digest, list_runs, read_run, store_run, stored_run_info
from dmft.plotting import save_figure
from dmft.result import LearningCurves
from dmft.parameters import InvalidParameterError, check_finite, check_int_at_least, check_positive
from empirical.metrics import time_to_loss

__all__ = ["FIGURES", "FigureReport", "make_figure", "dmft_available", "SCALE_LABEL", "FIG3E_SIZES",
           "FIG3E_DEFAULTS", "FIG3E_LONG_HORIZON", "fig3e_settings"]

SCALE_LABEL = "scale κ (paper: α)"
EPSILON_LABEL = "ε (quadratic coefficient of φ)"
TIME_LABEL = r"time $t = \eta_0\,\mathrm{step}/D$"


def dmft_available() -> bool:
    """Whether the finite-α DMFT solver is installed (else figures fall back to the online ODE)."""
    return importlib.util.find_spec("dmft.dmft_solver") is not None


def ntk_available() -> bool:
    """Whether :mod:`dmft.ntk` (CKA, linearised baseline) is installed."""
    return importlib.util.find_spec("dmft.ntk") is not None


@dataclass(frozen=True)
class FigureReport:
    """What :func:`make_figure` wrote and the numbers it found."""

    name: str
    files: tuple[str, ...]
    store: str
    seconds: float
    full: bool
    notes: tuple[str, ...] = ()
    numbers: Mapping[str, Any] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"name": self.name, "files": list(self.files), "store": self.store, "seconds": self.seconds,
                "full": self.full, "notes": list(self.notes), "numbers": dict(self.numbers)}

    def lines(self) -> list[str]:
        out = [f"{self.name} ({'full' if self.full else 'reduced'} size, {self.seconds:.1f} s): "
               + ", ".join(self.files) + f"; runs in {self.store}"]
        out += [f"  note: {n}" for n in self.notes]
        out += [f"  {k}: {v}" for k, v in self.numbers.items()]
        return out


class _Runs:
    """Run-or-reuse helper around the figure's HDF5 store (resumable figures).

    A stored run is reused only when it was made from the same request (its ``identity``,
    :func:`comparisons.store.identity_digest` of every argument of the computation): a rerun with
    other settings (``--set``) under the same name recomputes and replaces it, never plots the
    old curves.
    """

    def __init__(self, store: Path, device: str):
        self.store = store
        self.device = device
        self.done = set(list_runs(store)) if store.exists() else set()

    def get(self, name: str, compute: Callable[[], LearningCurves], request: Mapping[str, Any]) -> LearningCurves:
        identity = identity_digest(request)
        if name in self.done and (stored_run_info(self.store, name) or {}).get("identity") == identity:
            return read_run(self.store, name)
        curves = compute()
        store_run(self.store, name, curves, identity=identity, overwrite=True)
        self.done.add(name)
        return curves

    def simulate(self, name: str, **kwargs) -> LearningCurves:
        from empirical import train_committee

        kwargs.setdefault("device", self.device)
        request = {"kind": "simulation", **{k: v for k, v in kwargs.items() if k != "device"}}
        return self.get(name, lambda: train_committee(**kwargs), request)

    def theory(self, name: str, *, alpha, solver_options: Mapping[str, Any] | None = None,
               **kwargs) -> tuple[LearningCurves, str]:
        """DMFT at ``alpha`` when available, else the online ODE; returns (curves, label).

        ``solver_options`` (``samples``, ``seed``, ``tol``, ...) go to the finite-α solver only.
        """
        options = dict(solver_options or {})
        if dmft_available():
            return (self.get(f"{name}_dmft", lambda: dmft.solve(alpha, **kwargs, **options),
                             {"kind": "dmft", "alpha": alpha, **kwargs, **options}),
                    f"DMFT (alpha=P/D={alpha:g})")
        return (self.get(f"{name}_online", lambda: dmft.solve(math.inf, **kwargs), {"kind": "online", **kwargs}),
                "online ODE (alpha=inf)")


def planted_overlap(width: int, dim: int) -> list[float]:
    """m_i(0) = ±D^(−1/2), alternating: the typical overlap of a random start (theory.md §0)."""
    return [(1.0 if i % 2 == 0 else -1.0) / math.sqrt(dim) for i in range(width)]


def _save(fig, out_dir: Path, name: str) -> tuple[str, ...]:
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{name}.png"
    pdf = out_dir / f"{name}.pdf"
    fig.savefig(pdf)
    save_figure(fig, png)
    pyplot().close(fig)
    return (str(png), str(pdf))


def _positive(y):
    y = np.asarray(y, dtype=float)
    return np.where(y > 0, y, np.nan)


# --------------------------------------------------------------------------------------------
# Fig. 1: curves + CKA + linearised baseline
# --------------------------------------------------------------------------------------------
#: Sizes of Fig. 1 (full: the paper's; reduced: a minute on one core).
FIG1_SIZES = {
    True: dict(dim=100, alpha=5.5, width=500, epsilon=0.02, t_max=1000.0, cka_every=100, n_test=1000),
    False: dict(dim=40, alpha=5.5, width=40, epsilon=0.1, t_max=150.0, cka_every=40, n_test=300),
}


def _fig1(runs: _Runs, full: bool, seed: int):
    plt = pyplot()
    s = FIG1_SIZES[bool(full)]
    notes = []
    have_ntk = ntk_available()
    if not have_ntk:
        notes.append("dmft.ntk not installed: CKA panel and linearised baseline skipped")
    kwargs = dict(alpha=s["alpha"], dim=s["dim"], width=s["width"], scale=1.0, epsilon=s["epsilon"],
                  t_max=s["t_max"], lr=1.0, center=True, seed=seed, record_points=150)
    if have_ntk:
        kwargs.update(cka_every=s["cka_every"], n_test=s["n_test"], baselines=True)
    run = runs.simulate(f"fig1_sim_seed{seed}", **kwargs)
    fig, axes = plt.subplots(1, 3 if have_ntk else 2, figsize=(14 if have_ntk else 10, 4.2), constrained_layout=True)
    ax = axes[0]
    keep = run.t > 0
    ax.plot(run.t[keep], run.train_loss[keep], label="train (GD)", color="C0")
    ax.plot(run.t[keep], run.test_loss[keep], label="test (GD, population)", color="C1")
    numbers = {}
    if have_ntk and "lazy_test_loss" in run.extras:
        ax.plot(run.t[keep], run.extras["lazy_train_loss"][keep], ls="--", color="C0", label="train, linearised model")
        ax.plot(run.t[keep], run.extras["lazy_test_loss"][keep], ls="--", color="C1", label="test, linearised model")
        k0 = float(run.extras["k0_regression_test_loss"])
        ax.axhline(k0, color="k", ls=":", lw=1, label=f"K0 regression test MSE ({k0:.3g})")
        numbers["k0_regression_test_loss"] = k0
        numbers["lazy_final_test_loss"] = float(run.extras["lazy_test_loss"][-1])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(TIME_LABEL)
    ax.set_ylabel("mean squared error")
    ax.legend(fontsize=7)
    ax.set_title(f"D={s['dim']}, alpha=P/D={s['alpha']:g}, N={s['width']}, {SCALE_LABEL}=1, ε={s['epsilon']:g}, centred",
                 fontsize=8)
    terms = axes[1]
    for j, (term, style) in enumerate(zip(("variance", "alignment", "linear"), (":", "--", "-."))):
        terms.plot(run.t[keep], _positive(run.decomposition[keep, j]), ls=style, label=f"test: {term} term")
    terms.plot(run.t[keep], run.test_loss[keep], color="C1", lw=2, alpha=0.5, label="test loss")
    terms.set_xscale("log")
    terms.set_yscale("log")
    terms.set_xlabel(TIME_LABEL)
    terms.set_title("test-loss decomposition (theory.md §2.3, centred)", fontsize=8)
    terms.legend(fontsize=7)
    if have_ntk and "cka" in run.extras:
        cka_ax = axes[2]
        cka_t = run.extras["cka_t"]
        later = cka_t > 0
        cka_ax.plot(cka_t[later], run.extras["cka"][later], color="C2", marker=".", ms=3)
        cka_ax.axhline(float(run.extras["cka"][0]), color="k", ls=":", lw=1, label="CKA at t=0")
        cka_ax.legend(fontsize=7)
        cka_ax.set_xscale("log")
        cka_ax.set_xlabel(TIME_LABEL)
        cka_ax.set_ylabel("CKA(test-set NTK, y)")
        cka_ax.set_title("NTK-target alignment", fontsize=8)
        numbers["cka_initial"] = float(run.extras["cka"][0])
        numbers["cka_final"] = float(run.extras["cka"][-1])

    numbers.update({
        "final_train_loss": float(run.train_loss[-1]),
        "final_test_loss": float(run.test_loss[-1]),
        "max_test_loss": float(run.test_loss.max()),
        "t_train(0.1)": time_to_loss(run.t, run.train_loss, 0.1),
        "t_test(0.1)": time_to_loss(run.t, run.test_loss, 0.1),
    })
    return fig, notes, numbers


# --------------------------------------------------------------------------------------------
# Fig. 3a/3b: sweeps of the scale κ and of ε (curves normalised by their step-0 value)
# --------------------------------------------------------------------------------------------
#: Swept values and sizes of Fig. 3a (scale κ) and 3b (ε).
SWEEP_VALUES = {
    "fig3a": {True: [2**-5, 0.25, 0.5, 1, 2, 4, 8, 16], False: [0.25, 1.0, 4.0]},
    "fig3b": {True: [0.25, 0.5, 1, 2, 4], False: [0.25, 1.0, 4.0]},
}
SWEEP_SIZES = {True: dict(dim=100, alpha=4.5, width=500, t_max=300.0),
               False: dict(dim=40, alpha=4.5, width=4, t_max=150.0)}


def _sweep_figure(runs: _Runs, full: bool, seed: int, which: str):
    plt = pyplot()
    values = SWEEP_VALUES[which][bool(full)]
    if which == "fig3a":
        fixed = dict(epsilon=0.25, center=True)
        label = SCALE_LABEL
    else:
        fixed = dict(scale=1.0, center=False)
        label = "ε"
    size = SWEEP_SIZES[bool(full)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True, sharey=True)
    cmap = plt.get_cmap("viridis")
    numbers, notes = {}, []
    for i, value in enumerate(values):
        params = dict(fixed)
        params["scale" if which == "fig3a" else "epsilon"] = float(value)
        m0 = planted_overlap(size["width"], size["dim"])
        sim = runs.simulate(f"{which}_sim_{label[:5].strip()}{value:g}_seed{seed}", alpha=size["alpha"], dim=size["dim"],
                            width=size["width"], t_max=size["t_max"], lr=0.5, target_scale=1.0, init_overlap=m0,
                            seed=seed, record_points=120, **params)
        colour = cmap(i / max(1, len(values) - 1))
        keep = sim.t > 0
        for ax, key in zip(axes, ("train_loss", "test_loss")):
            y = getattr(sim, key)
            ax.plot(sim.t[keep], y[keep] / y[0], color=colour, lw=1.6, label=f"{label} = {value:g} (GD)")
        numbers[f"{label} = {value:g}"] = {
            "t_train(0.1·L0)": time_to_loss(sim.t, sim.train_loss / sim.train_loss[0], 0.1),
            "t_test(0.1·L0)": time_to_loss(sim.t, sim.test_loss / sim.test_loss[0], 0.1),
            "final_test/L0": float(sim.test_loss[-1] / sim.test_loss[0]),
        }
    for ax, key in zip(axes, ("train loss", "test loss")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(TIME_LABEL)
        ax.set_title(f"{key} / its value at t=0", fontsize=9)
    axes[0].set_ylabel("normalised loss")
    axes[1].legend(fontsize=7)
    what = f"{SCALE_LABEL} sweep, ε=0.25, centred" if which == "fig3a" else f"ε sweep, {SCALE_LABEL}=1, uncentred"
    fig.suptitle(f"Fig. 3{which[-1]}: {what}; D={size['dim']}, alpha=P/D={size['alpha']:g}, N={size['width']}, "
                 "convention B target y=(β·x)², lr η₀=0.5", fontsize=9)
    notes.append("simulations only: the paper's panel has no theory line (convention-B target, N=500)")
    return fig, notes, numbers


# --------------------------------------------------------------------------------------------
# Fig. 3e: phase diagram of the amount of grokking over κ × ε
# --------------------------------------------------------------------------------------------
#: Grid and sizes of Fig. 3e (theory.md §5). Reduced: the 4 × 4 grid at D = 40, N = 4, t ≤ 300, the
#: setting on which the DMFT is compared with the simulations; full: the paper's 14 × 14 grid at
#: D = 100, N = 500 (simulations only: the DMFT costs O(S·T²·N²) per iteration, out of reach at
#: N = 500). ``solver`` holds options of ``dmft.solve`` (``samples``, ``grid``, ...); ``workers``
#: the local pool of the DMFT grid (0: in this process). Where the installed solver has them, the
#: long-horizon options :data:`FIG3E_LONG_HORIZON` are the defaults (a uniform grid to t = 300 is
#: out of reach: T = 601 points, O(S·T²·N²) per iteration).
FIG3E_SIZES = {
    True: dict(scales=[0.4 * i for i in range(1, 15)], epsilons=[0.02 * i for i in range(1, 15)],
               dim=100, alpha=5.5, width=500, lr=20.0, t_max=22000.0, seeds=1, theory=False),
    False: dict(scales=[0.4, 0.8, 1.6, 2.4], epsilons=[0.04, 0.08, 0.16, 0.28],
                dim=40, alpha=5.5, width=4, lr=8.0, t_max=300.0, seeds=4, theory=True),
}
#: Settings of Fig. 3e that :data:`FIG3E_SIZES` does not give.
FIG3E_DEFAULTS = dict(dt=0.5, seeds=4, threshold=0.1, record_points=150, theory=True, workers=None, solver={},
                      horizon="full")


#: Solver options of the Fig. 3e DMFT used by default when ``dmft.solve`` accepts them: the log
#: time grid (theory.md §9.1) and Monte Carlo error bars from replica solves (theory.md §9.3).
FIG3E_LONG_HORIZON = {"grid": "log", "error_replicas": 4}


def fig3e_settings(full: bool = False, overrides: Mapping[str, Any] | None = None) -> dict:
    """The settings of Fig. 3e with ``overrides`` (unknown names are refused, naming them)."""
    from comparisons.phase import solver_accepts

    settings = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
                for k, v in {**FIG3E_DEFAULTS, **FIG3E_SIZES[bool(full)]}.items()}
    accepted = solver_accepts()
    settings["solver"].update({k: v for k, v in FIG3E_LONG_HORIZON.items() if k in accepted})
    for key, value in dict(overrides or {}).items():
        if key not in settings:
            raise InvalidParameterError(f"fig3e setting {key!r} is unknown; known: {', '.join(settings)}")
        if key in ("scales", "epsilons"):
            values = value if isinstance(value, (list, tuple)) else [value]
            value = [check_positive(f"fig3e setting {key}", v) if key == "scales" else check_finite(f"fig3e setting {key}", v)
                     for v in values]
        elif key in _FIG3E_CHECKS:
            value = _FIG3E_CHECKS[key](f"fig3e setting {key}", value)
        if key == "solver":
            value = {**settings["solver"], **dict(value)}
        settings[key] = value
    return settings


def _strict_bool(name: str, value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InvalidParameterError(f"{name} must be true or false, got {value!r}")


def _workers(name: str, value):
    return None if value is None else check_int_at_least(name, value, 0)


def _fraction(name: str, value) -> float:
    value = check_positive(name, value)
    if value >= 1:
        raise InvalidParameterError(f"{name} must lie in (0, 1), got {value!r}")
    return value


#: Checks of the scalar Fig. 3e settings given through ``--set`` (each names the setting and its range).
_FIG3E_CHECKS = {
    "seeds": lambda name, v: check_int_at_least(name, v, 1),
    "dim": lambda name, v: check_int_at_least(name, v, 2),
    "width": lambda name, v: check_int_at_least(name, v, 1),
    "record_points": lambda name, v: check_int_at_least(name, v, 2),
    "alpha": check_positive,
    "lr": check_positive,
    "t_max": check_positive,
    "dt": check_positive,
    "threshold": _fraction,
    "theory": _strict_bool,
    "workers": _workers,
}


def _fig3e(runs: _Runs, full: bool, seed: int, settings: Mapping[str, Any] | None = None):
    """Fig. 3e: simulated amount of grokking, the DMFT's on the same grid, the online escape time.

    The amount is t_test − t_train with each loss compared with ``threshold`` × its own value at
    t = 0 (:func:`comparisons.phase.grokking_point`, interpolated, censored when not reached;
    theory.md §5). Simulations and theory start from the same planted m(0) = ±D^(−1/2). The
    third panel is the α = ∞ time to generalise (online ODE; train = test there, so no
    grokking, theory.md §4.4), with the escape estimate of theory.md §4.5 in the numbers.
    """
    from comparisons.phase import map_agreement, phase_diagram, phase_from_seeds, phase_points, plot_phase
    from dmft.asymptotics import escape_time
    from dmft.parameters import ModelParameters

    plt = pyplot()
    s = fig3e_settings(full, settings)
    scales, epsilons, threshold = s["scales"], s["epsilons"], float(s["threshold"])
    m0 = planted_overlap(s["width"], s["dim"])
    axes = {"scale": scales, "epsilon": epsilons}
    notes = []
    tag = f"D{s['dim']}_N{s['width']}_a{s['alpha']:g}_lr{s['lr']:g}_tmax{s['t_max']:g}"
    sims = [[[runs.simulate(f"fig3e_sim_{tag}_scale{kappa:g}_eps{eps:g}_seed{seed + k}", alpha=s["alpha"],
                            dim=s["dim"], width=s["width"], scale=kappa, epsilon=eps, t_max=s["t_max"], lr=s["lr"],
                            center=True, init_overlap=m0, seed=seed + k, record_points=s["record_points"])
              for k in range(int(s["seeds"]))] for eps in epsilons] for kappa in scales]
    fixed_model = {"alpha": s["alpha"], "width": s["width"], "center": True, "init_overlap": m0}
    simulated = phase_from_seeds(axes, sims, threshold, attrs={"fixed": json.dumps({"alpha": s["alpha"]})},
                                 as_xarray=False)
    panels = [(simulated, f"simulation: mean of {s['seeds']} seeds (D={s['dim']}), sd = seed spread", "amount",
               "amount_sd", "sd")]
    numbers: dict[str, Any] = {"settings": {k: v for k, v in s.items()}, "init_overlap": m0,
                               "simulation": phase_points(simulated),
                               "simulation_amount_sd": np.round(simulated["amount_sd"], 4).tolist()}
    theory = None
    if s["theory"] and dmft_available():
        theory = phase_diagram(axes, {**fixed_model, "t_max": s["t_max"], "dt": s["dt"]}, threshold=threshold,
                               out=runs.store, workers=s["workers"], as_xarray=False, horizon=s["horizon"],
                               **dict(s["solver"]))
        panels.append((theory, f"DMFT (alpha=P/D={s['alpha']:g}, D → ∞), ± Monte Carlo sem", "amount",
                       "amount_sem", "±"))
        numbers["dmft"] = phase_points(theory)
        numbers["agreement"] = map_agreement(theory, simulated)
        if not theory.converged.all():
            notes.append(f"{int((~theory.converged).sum())} DMFT points did not converge (framed red in the panel)")
        if int(theory.attrs["computed"]) + int(theory.attrs["reused"]) and not np.isfinite(theory.amount_sem).any():
            notes.append("the DMFT curves carry no Monte Carlo standard error (solver without error replicas): "
                         "no error bars on the DMFT map")
    elif s["theory"]:
        notes.append("DMFT solver absent: no theory map")
    else:
        notes.append(f"no DMFT map (theory off; at N={s['width']} its cost is O(S·T²·N²)): the reduced figure "
                     "(without --full) draws the DMFT beside the simulations")
    online = phase_diagram(axes, {**fixed_model, "alpha": math.inf, "t_max": s["t_max"], "dt": s["dt"]},
                           threshold=threshold, out=runs.store, workers=0, as_xarray=False)
    panels.append((online, f"online (alpha=∞): time t_test for the test loss < {threshold:g} × initial", "t_test",
                   "amount_sem", "±"))
    escape = [[escape_time(ModelParameters(alpha=math.inf, epsilon=eps, scale=kappa, width=s["width"],
                                           init_overlap=m0, center=True)) for eps in epsilons] for kappa in scales]
    numbers["online_t_test"] = np.where(np.isfinite(online.t_test), np.round(online.t_test, 3), None).tolist()
    numbers["escape_time_estimate"] = [[round(float(v), 3) if math.isfinite(v) else None for v in row]
                                       for row in escape]
    amounts = [p.amount[np.isfinite(p.amount) & ~p.censored] for p, _, v, _, _ in panels if v == "amount"]
    vmax = max([float(a.max()) for a in amounts if a.size] or [1.0])
    fig, axs = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), constrained_layout=True)
    for ax, (result, title, variable, error, label) in zip(np.atleast_1d(axs), panels):
        plot_phase(result, ax, variable=variable, title=title, vmax=vmax if variable == "amount" else None,
                   error=error, error_label=label)
    agreement = numbers.get("agreement")
    tail = ""
    if agreement:
        rho = agreement["spearman"]
        ratio = agreement["max_diff_in_sd"]
        tail = (f"; Spearman {rho:.2f}" if rho is not None else "; Spearman n/a") + \
            (f", max |DMFT − sim| = {ratio:.2g} seed sd" if ratio is not None else "")
    fig.suptitle(f"Fig. 3e: amount of grokking; D={s['dim']}, alpha=P/D={s['alpha']:g}, N={s['width']}, "
                 f"lr η₀={s['lr']:g}, centred, t ≤ {s['t_max']:g}, threshold {threshold:g} × initial loss{tail}",
                 fontsize=9)
    return fig, notes, numbers


# --------------------------------------------------------------------------------------------
# Fig. 4: DMFT vs simulation; Fig. 11: loss decomposition
# --------------------------------------------------------------------------------------------
#: Settings of Fig. 4 / Fig. 11. The model is the paper's (theory.md §5: N=2, alpha=P/D=3,
#: kappa=1, epsilon=0.25, eta_0=0.5, uncentred); the simulations are drawn at the paper's D=40 and
#: at a larger D, both from the same planted m(0) = ±40^(-1/2), so the second panel shows the seed
#: spread closing in on the D → ∞ theory. The DMFT is solved with several Monte Carlo seeds: its
#: Monte Carlo error grows with t at alpha=3 (the range over 4 solver seeds reaches ~30 % of the
#: test loss at t=20 with S=8192, ~15 % with S=32768), and the figure shows it instead of hiding
#: it. The window stops
#: at t_max because the DMFT costs O(T²) per sample and iteration (T = t_max/dt); the paper's
#: simulations ran to t=625.
FIG4_SIZES = {
    False: dict(dims=(40, 200), seeds=8, t_max=20.0, samples=32768, mc_seeds=4),
    True: dict(dims=(40, 1000), seeds=16, t_max=40.0, samples=131072, mc_seeds=4),
}
FIG4_MODEL = dict(alpha=3.0, width=2, scale=1.0, epsilon=0.25, lr=0.5, paper_dim=40)


def mean_curves(curves) -> LearningCurves:
    """Pointwise mean of several theory solutions on one grid (e.g. DMFT Monte Carlo seeds).

    Parameters
    ----------
    curves : sequence of LearningCurves
        Same kind and time grid.

    Returns
    -------
    LearningCurves
        Same kind; losses, overlaps, covariances and decomposition averaged; ``converged`` only
        if every input converged; ``settings["mc_seeds"]`` lists the inputs' seeds.
    """
    import dataclasses

    curves = list(curves)
    if not curves:
        raise ValueError("mean_curves needs at least one set of curves")
    first = curves[0]
    for other in curves[1:]:
        if other.kind != first.kind or not np.array_equal(other.t, first.t):
            raise ValueError("mean_curves needs curves of one kind on one time grid")

    def average(field_name):
        return np.mean([getattr(c, field_name) for c in curves], axis=0)

    return dataclasses.replace(
        first, train_loss=average("train_loss"), test_loss=average("test_loss"), overlap=average("overlap"),
        cov=average("cov"), decomposition=average("decomposition"), extras={},
        converged=all(c.converged for c in curves), residual=max(c.residual for c in curves),
        settings={**dict(first.settings), "mc_seeds": [c.settings.get("seed") for c in curves]},
        message=f"pointwise mean of {len(curves)} solutions",
    )


def _monte_carlo_range(curves, quantity: str) -> float:
    """max over t > 0 of (max − min over solver seeds) / mean: the theory's own Monte Carlo spread."""
    values = np.array([quantity_values(c, quantity) for c in curves])
    keep = curves[0].t > 0
    mean = np.abs(values.mean(axis=0))[keep]
    spread = (values.max(axis=0) - values.min(axis=0))[keep]
    return float(np.max(spread / np.maximum(mean, 1e-300)))


def _fig4(runs: _Runs, full: bool, seed: int, *, decomposition: bool = False):
    plt = pyplot()
    size, model = FIG4_SIZES[bool(full)], FIG4_MODEL
    alpha, width, kappa, eps, lr = (model[k] for k in ("alpha", "width", "scale", "epsilon", "lr"))
    m0 = planted_overlap(width, model["paper_dim"])
    notes = []
    solutions = []
    for k in range(size["mc_seeds"]):
        curves, theory_label = runs.theory(
            f"fig4_theory_tmax{size['t_max']:g}_S{size['samples']}_mc{k}", alpha=alpha, epsilon=eps, scale=kappa,
            width=width, t_max=size["t_max"], dt=0.25, init_overlap=m0,
            solver_options=dict(samples=size["samples"], seed=k))
        solutions.append(curves)
        if curves.kind != "dmft":
            break  # online fallback: deterministic, one solution
    usable = [c for c in solutions if c.converged] or solutions
    if len(usable) < len(solutions):
        notes.append(f"{len(solutions) - len(usable)} of {len(solutions)} DMFT Monte Carlo seeds did not converge "
                     "and are left out of the mean")
    theory = mean_curves(usable)
    if theory.kind == "dmft":
        theory_label = f"DMFT mean of {len(usable)} MC seeds (S={size['samples']})"
    else:
        notes.append("DMFT solver absent: theory lines are the online (alpha=inf) ODE, which cannot show the "
                     "finite-alpha train/test gap; rerun when dmft.dmft_solver exists")
    quantities = ("variance", "alignment", "linear", "test_loss") if decomposition else ("train_loss", "test_loss")
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, len(size["dims"]), figsize=(6.2 * len(size["dims"]), 5.0), constrained_layout=True,
                             sharey=True)
    numbers = {"dmft_monte_carlo_range": {q: _monte_carlo_range(usable, q) for q in quantities},
               "dmft_converged": [bool(c.converged) for c in solutions],
               "dmft_iterations": [int(c.iterations) for c in solutions]}
    for ax, dim in zip(np.atleast_1d(axes), size["dims"]):
        sims = [runs.simulate(f"fig4_sim_D{dim}_tmax{size['t_max']:g}_seed{seed + k}", alpha=alpha, dim=dim,
                              width=width, scale=kappa, epsilon=eps, t_max=size["t_max"], lr=lr, init_overlap=m0,
                              seed=seed + k, record_points=150)
                for k in range(size["seeds"])]
        plot_overlay(theory, sims, quantities=quantities, ax=ax, theory_label=theory_label, legend=False)
        if len(usable) > 1:
            keep = theory.t > 0
            for i, quantity in enumerate(quantities):
                for j, solution in enumerate(usable):
                    ax.plot(solution.t[keep], _positive(quantity_values(solution, quantity)[keep]),
                            color=palette[i % len(palette)], lw=0.6, alpha=0.55,
                            label="DMFT, single Monte Carlo seeds (thin)" if i == j == 0 else None)
        paper = " (the paper's D)" if dim == model["paper_dim"] else ""
        ax.set_title(f"D={dim}{paper}: {size['seeds']} seeds, mean ± sd", fontsize=9)
        if dim == size["dims"][0]:
            ax.legend(fontsize=6.5, loc="lower left")
        per_dim = {}
        for q in quantities:
            a = agreement(theory, sims, q)
            per_dim[q] = {k: v for k, v in a.summary().items()
                          if k in ("sup_relative_error", "t_sup", "relative_spread", "spread_ratio", "max_z",
                                   "within_spread")}
        per_dim["final_simulation_train_loss"] = float(np.mean([s.train_loss[-1] for s in sims]))
        per_dim["final_simulation_test_loss"] = float(np.mean([s.test_loss[-1] for s in sims]))
        numbers[f"D={dim}"] = per_dim
    numbers["final_dmft_train_loss"] = float(theory.train_loss[-1])
    numbers["final_dmft_test_loss"] = float(theory.test_loss[-1])
    name = "Fig. 11: test-loss decomposition, DMFT vs simulation" if decomposition else \
        "Fig. 4: DMFT vs simulation, train and test loss"
    fig.suptitle(f"{name}; alpha=P/D={alpha:g}, N={width}, {SCALE_LABEL}={kappa:g}, ε={eps:g}, lr η₀={lr:g}, "
                 f"uncentred, m(0)=±{m0[0]:.3g}; DMFT dt=0.25, thin lines: single Monte Carlo seeds", fontsize=9)
    return fig, notes, numbers


def _fig11(runs: _Runs, full: bool, seed: int):
    return _fig4(runs, full, seed, decomposition=True)


FIGURES: dict[str, Callable] = {
    "fig1": _fig1,
    "fig3a": lambda runs, full, seed: _sweep_figure(runs, full, seed, "fig3a"),
    "fig3b": lambda runs, full, seed: _sweep_figure(runs, full, seed, "fig3b"),
    "fig3e": _fig3e,
    "fig4": _fig4,
    "fig11": _fig11,
}
#: The settings check of each figure that takes ``settings``, run before anything is written.
SETTINGS_CHECKS: dict[str, Callable] = {"fig3e": fig3e_settings}


def make_figure(name: str, *, full: bool = False, out_dir: str | Path = "figures", seed: int = 0,
                device: str = "auto", settings: Mapping[str, Any] | None = None) -> FigureReport:
    """Draw figure ``name`` (a key of :data:`FIGURES`) into ``out_dir`` as PNG and PDF.

    Parameters
    ----------
    name : str
        ``fig1``, ``fig3a``, ``fig3b``, ``fig3e``, ``fig4`` or ``fig11``.
    full : bool
        The paper's sizes (theory.md §5) instead of the reduced ones.
    out_dir : path
        Output directory; ``NAME.h5`` there caches the runs (a rerun reuses them).
    seed : int
        First simulation seed.
    device : str
        Simulation device.
    settings : mapping, optional
        Overrides of the figure's settings, for figures that have them (``fig3e``: see
        :data:`FIG3E_SIZES` and :data:`FIG3E_DEFAULTS`, e.g. ``{"t_max": 20, "seeds": 2, "solver": {"samples": 4096}}``).

    Returns
    -------
    FigureReport
    """
    if name not in FIGURES:
        raise InvalidParameterError(f"figure name must be one of {', '.join(FIGURES)}, got {name!r}")
    seed = check_int_at_least("seed", seed, 0)  # refused now, not by the first simulation after the theory
    draw = FIGURES[name]
    extra = {}
    if settings:
        if "settings" not in inspect.signature(draw).parameters:
            raise InvalidParameterError(f"settings: figure {name} has no settings to override")
        if name in SETTINGS_CHECKS:
            SETTINGS_CHECKS[name](full, settings)  # refused before the output folder or a run exists
        extra["settings"] = settings
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = out_dir / f"{name}{'_full' if full else ''}.h5"
    runs = _Runs(store, device)
    fig, notes, numbers = draw(runs, full, seed, **extra)
    files = _save(fig, out_dir, name)
    return FigureReport(name=name, files=files, store=str(store), seconds=time.perf_counter() - start, full=full,
                        notes=tuple(notes), numbers=numbers)
