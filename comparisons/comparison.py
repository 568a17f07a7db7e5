"""Theory against experiment in one call: ``comparisons.compare`` / ``dmft compare``.

Runs the theory (the DMFT at the sample ratio ``alpha``, or the online ODE) and finite-D
gradient-descent simulations over several seeds from the **same** planted initial overlaps m(0)
(theory.md §0: w_i(0) = m_i β + (1 − m_i²)^(1/2) z_i), stores everything in one HDF5 file,
draws the overlay and measures the agreement (:mod:`comparisons.agreement`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

import dmft
from dmft.parameters import (InvalidParameterError, check_int_at_least, check_positive, default_init_overlap,
                             resolve_epsilon)
from dmft.result import LearningCurves
from dmft.plotting import save_figure
from dmft.solve import DEFAULT_T_MAX, time_grid

from comparisons.agreement import QUANTITIES, Agreement, agreement
from comparisons.overlay import plot_overlay
from comparisons.store import list_runs, read_run, write_run

__all__ = ["Comparison", "compare", "run_theory", "comparison_tag", "theory_run_name", "THEORIES"]

#: Digest of the default simulation settings (float64, no options): their run names carry no
#: digest, as before the settings were part of the names.
_PLAIN_SIMULATION = hashlib.sha1(json.dumps({"dtype": "float64"}, sort_keys=True).encode()).hexdigest()[:8]

#: Theory sides: the DMFT at the simulations' alpha, or the online (alpha = inf) ODE.
THEORIES = ("dmft", "online")


def _default_simulator() -> Callable[..., LearningCurves]:
    try:
        from empirical import train_committee
    except ImportError as exc:  # pragma: no cover - depends on the branch state
        raise ModuleNotFoundError(
            "the committee simulation empirical.train_committee is not available in this "
            "installation; pass simulator=... or install the full package"
        ) from exc
    return train_committee


def _family_model(family: Mapping[str, Any], *, epsilon, scale, width, init_overlap, center=False):
    """The :class:`~dmft.committee_online.CommitteeModel` of a ``family`` comparison (errors name the parameter)."""
    from dmft.committee_online import CommitteeModel

    unknown = sorted(set(family) - {"activation", "target", "teacher_width", "teacher_scale", "teacher_activation",
                                     "noise"})
    if unknown:
        raise InvalidParameterError(f"family: unknown option(s) {', '.join(unknown)}")
    return CommitteeModel(epsilon=epsilon, scale=scale, width=width, init_overlap=init_overlap, center=center, **family)


def _family_simulator(model, *, t_max: float, dt: float) -> Callable[..., LearningCurves]:
    """Seed runs of :func:`empirical.committee.family.train_committee_family`, recorded on the uniform
    grid of spacing ``dt`` to ``t_max``."""
    from empirical.committee.family import train_committee_family

    grid = time_grid(t_max, dt)

    def simulate(*, alpha, dim, lr, seed, device, dtype, **_model_options):
        return train_committee_family(model, alpha, dim, grid, seed=seed, time_step=lr / dim, device=device,
                                      dtype=dtype)

    return simulate


def _check_simulations(alpha: float, dim: int, lr: float, t_max: float, dt: float, model=None) -> None:
    """Refuse, before the theory runs (minutes at finite alpha), what the simulations would refuse
    only after it: no training sample, too small a D for the planted overlaps, and a gradient step
    lr/dim that overshoots the theory's window (``t_max``; for a family run, the spacing of the
    theory grid on which its simulations are recorded)."""
    if int(round(alpha * dim)) < 1:
        raise InvalidParameterError(f"alpha*dim must round to at least one training sample (P = round(alpha*dim) "
                                    f">= 1), got alpha={alpha!r}, dim={dim}")
    least = 2 if model is None else max(2, model.width + model.M)
    if dim < least:
        raise InvalidParameterError(f"dim (input dimension D) must be at least {least} for the planted initial "
                                    f"overlaps of the simulations" + ("" if model is None else " (N + M)")
                                    + f", got {dim}")
    step = lr / dim                                   # theory time of one gradient step
    if model is None and step > t_max:
        raise InvalidParameterError(f"lr must be at most dim*t_max = {dim * t_max:g}: one gradient step advances "
                                    f"t by lr/dim = {step:g}, beyond t_max = {t_max:g}, so the simulations would "
                                    "have no record inside the theory's window")
    if model is not None:
        from empirical.committee.family import record_spacing

        spacing = record_spacing(time_grid(t_max, dt))
        if step > spacing * (1 + 1e-9):
            raise InvalidParameterError(f"lr must be at most dim*dt = {dim * spacing:g}: one gradient step advances t "
                                        f"by lr/dim = {step:g}, more than the spacing {spacing:g} of the theory grid "
                                        "on which the simulations are recorded")


def run_theory(theory: str, *, alpha, epsilon, scale, width, t_max, dt, init_overlap, center,
               options: Mapping[str, Any] | None = None, family: Mapping[str, Any] | None = None) -> LearningCurves:
    """Theory curves: ``"dmft"`` solves at ``alpha`` (online ODE when alpha = inf), ``"online"``
    at alpha = inf whatever ``alpha`` is (the α → ∞ reference of theory.md §4.3). ``family``:
    the general-model options of ``dmft.solve`` (activation, target, teacher_*; theory.md §10)."""
    if theory not in THEORIES:
        raise InvalidParameterError(f"theory must be one of {', '.join(THEORIES)}, got {theory!r}")
    theory_alpha = math.inf if theory == "online" else alpha
    opts = dict(options or {}) if math.isfinite(theory_alpha) else {}
    try:
        return dmft.solve(theory_alpha, epsilon, scale=scale, width=width, t_max=t_max, dt=dt,
                          init_overlap=init_overlap, center=center, **dict(family or {}), **opts)
    except ModuleNotFoundError as exc:
        if exc.name != "dmft.dmft_solver":
            raise
        raise ModuleNotFoundError(
            f"the finite-alpha DMFT solver (dmft.dmft_solver) is not available, so alpha={alpha:g} "
            "cannot be solved; use theory='online' (--theory online) for the alpha = inf reference"
        ) from exc


def comparison_tag(alpha, epsilon, scale, width, dim, center, *, t_max, lr, init_overlap,
                   family: Mapping[str, Any] | None = None) -> str:
    """Stable prefix of the run names of one comparison in the store.

    Readable main parameters plus a short digest of the rest (t_max, lr, m(0), the general-model
    options when given), so that a resumed comparison reuses only runs made with identical settings.
    """
    tag = f"compare_alpha{alpha:g}_eps{epsilon:g}_scale{scale:g}_N{width}_D{dim}"
    if center:
        tag += "_centered"
    rest = {"t_max": float(t_max), "lr": float(lr), "m0": [float(v) for v in np.ravel(init_overlap)]}
    if family:
        tag += f"_{family.get('activation', 'quadratic')}"
        rest["family"] = dict(family)
    rest = json.dumps(rest, sort_keys=True, default=str)
    return f"{tag}_{hashlib.sha1(rest.encode()).hexdigest()[:8]}"


def theory_run_name(tag: str, theory: str, dt: float, options: Mapping[str, Any] | None = None) -> str:
    """Name of the stored theory run of a comparison.

    Parameters
    ----------
    tag : str
        :func:`comparison_tag` of the comparison.
    theory : {"dmft", "online"}
    dt : float
        Theory grid step.
    options : mapping, optional
        Numerical options of the finite-α solver; when given, a short digest of them is
        appended, so that runs solved with different ``samples``/``tol``/``seed`` get
        different names.

    Returns
    -------
    str
    """
    name = f"{tag}__{theory}_theory_dt{dt:g}"
    if options:
        digest = hashlib.sha1(json.dumps(dict(options), sort_keys=True, default=str).encode()).hexdigest()[:8]
        name += f"_opts{digest}"
    return name


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare`.

    Attributes
    ----------
    theory : LearningCurves
        Theory curves (kind ``"dmft"`` or ``"online"``).
    simulations : tuple of LearningCurves
        One simulation per seed.
    agreements : dict of str to Agreement
        Per compared quantity (train and test loss; the decomposition terms when asked).
    parameters : dict
        alpha, epsilon, scale, width, dim, seeds, center, t_max, dt, lr, init_overlap, theory.
    out, plot : str or None
        Where the runs and the overlay were written.
    run_names : dict
        ``{"theory": name, "simulations": [names]}`` in ``out``.
    seconds : float
    """

    theory: LearningCurves
    simulations: tuple[LearningCurves, ...]
    agreements: Mapping[str, Agreement]
    parameters: Mapping[str, Any]
    out: str | None = None
    plot: str | None = None
    run_names: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def within_spread(self) -> bool:
        """Every compared quantity agrees within the seed spread."""
        return all(a.within_spread for a in self.agreements.values())

    def summary(self) -> dict:
        """JSON-ready summary (``dmft compare --json``)."""
        return {
            "parameters": dict(self.parameters),
            "theory": {"kind": self.theory.kind, "converged": bool(self.theory.converged),
                       "iterations": int(self.theory.iterations), "residual": float(self.theory.residual),
                       "message": self.theory.message,
                       "newton_failures": int(self.theory.settings.get("newton_failures", 0) or 0)},
            "simulations": [{"seed": s, "converged": bool(r.converged), "message": r.message}
                            for s, r in zip(self.parameters.get("seeds", []), self.simulations)],
            "agreement": {k: a.summary() for k, a in self.agreements.items()},
            "within_spread": self.within_spread,
            "out": self.out,
            "plot": self.plot,
            "run_names": dict(self.run_names),
            "seconds": self.seconds,
        }

    def lines(self) -> list[str]:
        """Human-readable report of the agreement."""
        p = self.parameters
        head = (f"{self.theory.kind} theory vs {len(self.simulations)} simulations: alpha={p['alpha']:g} (P/D), "
                f"scale={p['scale']:g}, epsilon={p['epsilon']:g}, N={p['width']}, D={p['dim']}, "
                f"center={p['center']}, m(0)={list(p['init_overlap'])}")
        th = self.theory
        status = "converged" if th.converged else "NOT CONVERGED"
        out = [head,
               f"  theory: {th.kind} {status} (iterations {th.iterations}, residual {th.residual:.3g}): {th.message}",
               f"  simulations: {sum(r.converged for r in self.simulations)} of {len(self.simulations)} finished "
               "without diverging",
               "  quantity      window            sup rel.err  at t     seed spread  ratio  max z   within spread"]
        for a in self.agreements.values():
            out.append(
                f"  {a.quantity:<12}  [{a.window[0]:6.3g}, {a.window[1]:6.3g}]  {a.sup_relative_error:10.3%}  "
                f"{a.t_sup:6.3g}  {a.relative_spread:10.3%}  {a.spread_ratio:5.2f}  {a.max_z:6.2f}  {a.within_spread}"
            )
        out.append("  (ratio = sup rel.err / seed spread; max z = largest |theory - seed mean| over the window in "
                   "units of the mean's standard error sd/sqrt(seeds): a few units arise from seed noise alone, "
                   "many more mean a systematic deviation)")
        return out


#: Arguments of every simulation that compare sets itself (not taken from ``simulation_options``).
_SET_BY_COMPARE = frozenset({"alpha", "dim", "width", "scale", "epsilon", "t_max", "lr", "init_overlap", "center",
                             "seed", "device", "dtype"})


def compare(
    alpha: float,
    epsilon: float | None = None,
    scale: float = 1.0,
    width: int = 2,
    dim: int = 2000,
    seeds: int | Sequence[int] = 4,
    *,
    center: bool = False,
    t_max: float | None = None,
    dt: float = 0.25,
    lr: float = 1.0,
    init_overlap: Sequence[float] | None = None,
    theory: str = "dmft",
    theory_options: Mapping[str, Any] | None = None,
    simulation_options: Mapping[str, Any] | None = None,
    window: tuple[float, float] | None = None,
    decomposition: bool = False,
    floor: float | None = None,
    out: str | Path | None = None,
    plot: str | Path | None = None,
    device: str = "auto",
    dtype: str = "float64",
    progress: bool = False,
    simulator: Callable[..., LearningCurves] | None = None,
    family: Mapping[str, Any] | None = None,
) -> Comparison:
    """Theory and matching simulations from the same planted overlaps, stored, drawn, compared.

    Parameters
    ----------
    alpha : float
        Sample ratio P/D of the simulations (finite); also of the DMFT when ``theory="dmft"``.
    epsilon, scale, width :
        ε, output scale κ, hidden units N (theory.md §0); ε as :func:`dmft.parameters.resolve_epsilon`
        takes it (required by the quadratic activation, left out for the others).
    dim : int, default 2000
        Input dimension D of the simulations (P = round(alpha·D)).
    seeds : int or sequence of int, default 4
        Number of seeds (0, 1, …) or the seeds themselves.
    center : bool
        Centred predictor f(x;W) − f(x;W₀) on both sides (theory.md §4.2).
    t_max : float, optional
        Final time t = η₀·step/D; default ``dmft.solve``'s (40).
    dt : float, default 0.25
        Theory grid step.
    lr : float, default 1
        η₀ of the simulations (the theory is in units of t and does not depend on it).
    init_overlap : sequence of float, optional
        m(0), passed to both sides; default the theory's ±0.1 alternating.
    theory : {"dmft", "online"}, default "dmft"
        ``"dmft"`` (default): the finite-α DMFT at the simulations' ``alpha`` (``dmft.solve``),
        the theory that resolves the train/test gap. ``"online"``: the α → ∞ ODE whatever
        ``alpha`` is, a limit test that is only meaningful at large alpha.
    theory_options, simulation_options : mapping, optional
        Extra keyword arguments of ``dmft.solve`` (finite alpha: ``samples``, ``tol``, ``seed``,
        ...) / the simulator. The theory options are part of the stored theory run's name, so a
        resumed comparison never reuses a DMFT solved with other numerical settings.
    window : (float, float), optional
        Time window of the agreement (default: all record times t > 0).
    decomposition : bool
        Also compare and draw the three test-loss terms.
    floor : float, optional
        Floor of the relative-error denominators (see :func:`comparisons.agreement.agreement`).
    out : path, optional
        HDF5 store: the theory and every seed are stored (complete runs already there are
        reused, so an interrupted comparison resumes).
    plot : path, optional
        Overlay figure (PNG/PDF by suffix).
    device, dtype : str
        Of the simulations (``empirical.train_committee``).
    progress : bool
        Progress bar over seeds.
    simulator : callable, optional
        Replaces ``empirical.train_committee`` (same keyword signature).
    family : mapping, optional
        A member of the general family (theory.md §10): ``activation``, ``target``,
        ``teacher_width``, ``teacher_scale``, ``teacher_activation`` as in ``dmft.solve``.
        ``init_overlap`` is then the N×M matrix R(0); the theory is ``dmft.solve`` with these
        options and the simulations are :func:`empirical.committee.family.train_committee_family`
        with time step lr/dim, recorded on the uniform grid of spacing ``dt`` (the theory, on its own
        grid, is interpolated there).

    Returns
    -------
    Comparison
    """
    start = time.perf_counter()
    alpha = check_positive("alpha (P/D)", alpha)
    scale = check_positive("scale (output scale kappa)", scale)
    width = check_int_at_least("width (hidden units N)", width, 1)
    dim = check_int_at_least("dim (input dimension D)", dim, 1)
    lr = check_positive("lr", lr)
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seed_list = list(range(check_int_at_least("seeds", int(seeds), 1)))
    elif isinstance(seeds, (list, tuple, range, np.ndarray)):
        seed_list = [check_int_at_least("seeds (each seed)", s, 0) for s in seeds]
        if not seed_list or len(set(seed_list)) != len(seed_list):
            raise InvalidParameterError(f"seeds must be distinct and at least one, got {seeds!r}")
    else:
        raise InvalidParameterError(f"seeds must be a number of seeds (integer >= 1) or a list of seeds, got {seeds!r}")
    if window is not None:
        if len(window) != 2 or not all(math.isfinite(float(w)) for w in window) or not 0 <= window[0] <= window[1]:
            raise InvalidParameterError(f"window must be (start, end) with 0 <= start <= end, got {window!r}")
        window = (float(window[0]), float(window[1]))
    reserved = sorted(set(simulation_options or {}) & _SET_BY_COMPARE)
    if reserved:
        raise InvalidParameterError(f"simulation_options {', '.join(reserved)}: set by compare itself (give them as "
                                    "compare's own arguments)")
    if simulator is None and not family:
        from empirical import train_committee

        known = set(inspect.signature(train_committee).parameters)
        unknown = sorted(set(simulation_options or {}) - known)
        if unknown:
            raise InvalidParameterError(f"simulation_options {', '.join(unknown)}: not options of "
                                        "empirical.train_committee")
    if theory not in THEORIES:
        raise InvalidParameterError(f"theory must be one of {', '.join(THEORIES)}, got {theory!r}")
    if t_max is None:
        t_max = DEFAULT_T_MAX
    t_max = check_positive("t_max", t_max)
    family = {k: v for k, v in dict(family or {}).items() if v is not None}
    epsilon = resolve_epsilon(epsilon, family.get("activation", "quadratic"), family.get("target", "square"),
                              family.get("teacher_activation"))
    if family:
        model = _family_model(family, epsilon=epsilon, scale=scale, width=width, init_overlap=init_overlap,
                              center=center)
        m0 = model.init_overlap
        simulate = simulator or _family_simulator(model, t_max=t_max, dt=dt)
    else:
        m0 = tuple(float(v) for v in (default_init_overlap(width) if init_overlap is None else init_overlap))
        if len(m0) != width:
            raise InvalidParameterError(f"init_overlap must have one entry per hidden unit (width={width}), got {len(m0)}")
        simulate = simulator or _default_simulator()
    if simulator is None:
        _check_simulations(alpha, dim, lr, t_max, dt, model if family else None)

    tag = comparison_tag(alpha, epsilon, scale, width, dim, center, t_max=t_max, lr=lr, init_overlap=m0,
                         family=family)
    if math.isfinite(alpha) and theory == "dmft":
        from dmft.dmft_solver import numerics_fingerprint

        # the solver's defaults shaped the stored run too: other numerics, other name
        theory_name = theory_run_name(tag, theory, dt, {**dict(theory_options or {}), "numerics": numerics_fingerprint()})
    else:
        theory_name = theory_run_name(tag, theory, dt, theory_options if math.isfinite(alpha) else None)
    sim_digest = hashlib.sha1(json.dumps({"dtype": dtype, **dict(simulation_options or {})}, sort_keys=True,
                                         default=str).encode()).hexdigest()[:8]
    sim_names = [f"{tag}__simulation_seed{s}" + ("" if sim_digest == _PLAIN_SIMULATION else f"_{sim_digest}")
                 for s in seed_list]
    stored = set()
    if out is not None and Path(out).exists():
        stored = set(list_runs(out))

    def cached(name):
        """A stored run to reuse: complete and converged (a non-converged one is recomputed)."""
        if name not in stored:
            return None
        run = read_run(out, name)
        return run if run.converged else None

    theory_curves = cached(theory_name)
    if theory_curves is None:
        theory_curves = run_theory(theory, alpha=alpha, epsilon=epsilon, scale=scale, width=width, t_max=t_max,
                                   dt=dt, init_overlap=m0, center=center, options=theory_options, family=family)
        if out is not None:
            write_run(out, theory_name, theory_curves, attrs={"comparison": tag})
    simulations = []
    iterator = zip(seed_list, sim_names)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(list(iterator), desc="simulations", unit="seed")
    for seed, name in iterator:
        run = cached(name)
        if run is None:
            run = simulate(alpha=alpha, dim=dim, width=width, scale=scale, epsilon=epsilon, t_max=t_max, lr=lr,
                           init_overlap=np.asarray(m0).tolist(), center=center, seed=seed, device=device, dtype=dtype,
                           **dict(simulation_options or {}))
            if out is not None:
                write_run(out, name, run, attrs={"comparison": tag})
        simulations.append(run)

    quantities = ["train_loss", "test_loss"] + (list(QUANTITIES[2:]) if decomposition else [])
    agreements = {q: agreement(theory_curves, simulations, q, window=window, floor=floor) for q in quantities}
    parameters = {
        "alpha": alpha, "epsilon": float(epsilon), "scale": scale, "width": width, "dim": dim,
        "seeds": seed_list, "center": bool(center), "t_max": t_max, "dt": float(dt), "lr": lr,
        "init_overlap": np.asarray(m0).tolist(), "theory": theory, **({"family": family} if family else {}),
    }
    plot_path = None
    if plot is not None:
        theory_label = "online ODE (alpha=inf)" if theory_curves.kind == "online" else "DMFT"
        fig = plot_overlay(theory_curves, simulations, decomposition=decomposition, theory_label=theory_label)
        model_label = (f"{family.get('activation', 'quadratic')} student, "
                       + (f"{family.get('teacher_activation') or family.get('activation', 'quadratic')} teacher "
                          f"M={family.get('teacher_width', 1)}" if family.get("target") == "committee" else "square target")
                       + ", " if family else f"epsilon={epsilon:g}, ")
        fig.axes[0].set_title(
            f"alpha=P/D={alpha:g}, scale kappa={scale:g}, {model_label}N={width}, D={dim}, "
            f"{len(seed_list)} seeds" + (", centred" if center else "")
            + ("" if theory_curves.converged else f"\n{theory_label} NOT CONVERGED: {theory_curves.message}"),
            fontsize=9, color="k" if theory_curves.converged else "r")
        plot_path = str(save_figure(fig, plot))
    return Comparison(
        theory=theory_curves, simulations=tuple(simulations), agreements=agreements, parameters=parameters,
        out=None if out is None else str(out), plot=plot_path,
        run_names={"theory": theory_name, "simulations": sim_names},
        seconds=time.perf_counter() - start,
    )
