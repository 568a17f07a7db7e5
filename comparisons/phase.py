"""The phase diagram of grokking: where, and by how much, the test loss lags the train loss.

One concept in three pieces:

* :func:`grokking_point` — the metric of one set of learning curves (pure; theory.md §5, the
  "amount of grokking" of Fig. 3e): the first time t_train, t_test at which the train and the
  test loss fall below ``threshold`` × their value at t = 0 (linear interpolation between grid
  points), the amount max(0, t_test − t_train), its Monte Carlo standard error by the delta
  method, censoring and convergence.
* :func:`phase_diagram` — a grid of ``dmft.solve`` runs over two of (scale κ, ε, α) through the
  executors of ``dmft sweep`` (local process pool, Dask, Slurm), each solve stored in an HDF5
  store under a name derived from every parameter and setting (a killed run restarts where it
  stopped), returned as a labelled result (:class:`xarray.Dataset` where xarray is installed,
  else :class:`PhaseDiagram`).
* :func:`plot_phase` — the heat map of the amount of grokking, censored cells hatched and never
  coloured as a number, non-converged cells marked, the standard error in each cell.

Why the theory has a phase diagram at all: in the online limit (α = ∞) train and test loss
coincide and the amount of grokking is 0 (theory.md §4.4); at finite α the train loss leads by
the gap of §4.4, and the time both need grows with the escape time of theory.md §4.5,
t* ≈ (κ/3ε) ln(1/(m₀√(κε))). Large κ and small ε (lazy, weakly aligned) therefore grok more.
"""

from __future__ import annotations

import dataclasses
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
from dmft.solve import DEFAULT_DT, DEFAULT_T_MAX, GRIDS, default_grid, make_grid
from comparisons.store import identity_digest, list_runs, read_run, write_run
from comparisons.sweeps import _completed, make_executor
from dmft.parameters import InvalidParameterError
from dmft.result import LearningCurves
from empirical.metrics import first_crossing

__all__ = [
    "SWEEPABLE", "VARIABLES", "DEFAULT_THRESHOLD", "Crossing", "PhasePoint", "PhaseDiagram", "PhaseError",
    "crossing_time", "grokking_point", "phase_diagram", "solve_point", "point_identity", "point_name",
    "phase_points", "plot_phase", "with_stored_sem", "solver_accepts", "phase_from_seeds", "map_agreement",
    "HORIZONS", "AdaptiveHorizon", "UNRESOLVED_SEMS",
]

#: Parameters a phase diagram can sweep (exactly two of them per diagram).
SWEEPABLE = ("scale", "epsilon", "alpha")
#: Variables of the labelled result, in this order.
VARIABLES = ("t_train", "t_test", "amount", "amount_sem", "censored", "unresolved", "converged")
#: Relative loss threshold of Fig. 3e (theory.md §5): a loss has "fallen" below 0.1 × its t = 0 value.
DEFAULT_THRESHOLD = 0.1
#: A threshold not reached by t_end is "unresolved" (not "censored") when the loss at t_end lies
#: within this many of its standard errors of the level: the curves cannot tell whether it was.
UNRESOLVED_SEMS = 2.0
#: Settings that never change a solve's result (left out of its identity).
_NOT_IDENTITY = ("progress",)
#: Solver settings added after stores were written, at the value that reproduces the earlier
#: computation exactly: left out of the identity at that value, so those stores stay valid
#: (``sampler="mc"`` draws the same numbers as the solver before the setting existed).
_LEGACY_VALUES = {"sampler": "mc", "numerics_revision": 12}
#: Names of the standard-error arrays also looked up in a run's extras.
_SEM_EXTRAS = ("train_loss_sem", "test_loss_sem")


class PhaseError(RuntimeError):
    """A phase-diagram point failed (raised only where a caller asks for it)."""


# --------------------------------------------------------------------------------------------
# The metric (pure)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Crossing:
    """First time a loss curve falls below a level.

    Attributes
    ----------
    time : float or None
        Linearly interpolated crossing time; ``None`` when censored.
    sem : float or None
        Delta-method standard error SEM(L)(t*)/|dL/dt(t*)|; ``None`` without a SEM or when censored.
    censored : bool
        The level is never reached within the curve's time range.
    unresolved : bool
        Censored, but the last value lies within :data:`UNRESOLVED_SEMS` standard errors of the
        level: the Monte Carlo error, not the dynamics, decides (never set without a SEM).
    """

    time: float | None
    sem: float | None
    censored: bool
    unresolved: bool = False


def crossing_time(t, loss, level: float, sem=None) -> Crossing:
    """First time ``loss`` falls strictly below ``level``, interpolated linearly (theory.md §5).

    Parameters
    ----------
    t : array_like, shape (T,)
        Increasing times (any grid: uniform, logarithmic, the log-spaced records of a simulation).
    loss : array_like, shape (T,)
    level : float
        Absolute level (the phase diagram passes ``threshold × loss[0]``).
    sem : array_like, shape (T,), optional
        Standard error of ``loss``.

    Returns
    -------
    Crossing
        With i the first index where ``loss[i] < level``: t* solves the linear interpolation
        between (t[i−1], loss[i−1]) and (t[i], loss[i]); δt = SEM(t*)/|slope| with SEM linearly
        interpolated at t* and the slope of that segment (the delta method). ``i = 0`` gives
        t* = t[0] and δt = 0 (the curve starts below the level). Never reached (or NaN): censored;
        also ``unresolved`` when ``loss[-1] − level < UNRESOLVED_SEMS · sem[-1]``.
    """
    t = np.asarray(t, dtype=float)
    loss = np.asarray(loss, dtype=float)
    if t.ndim != 1 or loss.shape != t.shape:
        raise ValueError(f"t and loss must be one-dimensional of one length, got {t.shape} and {loss.shape}")
    crossing = first_crossing(loss, level, above=False)
    err = None if sem is None else np.asarray(sem, dtype=float)
    if crossing.censored:
        last = int(np.flatnonzero(np.isfinite(loss))[-1]) if np.isfinite(loss).any() else None
        unresolved = bool(err is not None and last is not None and math.isfinite(err[last])
                          and loss[last] - level < UNRESOLVED_SEMS * err[last])
        return Crossing(None, None, True, unresolved)
    i = crossing.index
    if i == 0:
        return Crossing(float(t[0]), None if err is None else 0.0, False)
    t0, t1, y0, y1 = t[i - 1], t[i], loss[i - 1], loss[i]
    if not math.isfinite(y0):  # a NaN before the crossing: no segment to interpolate on
        return Crossing(float(t1), None, False)
    w = (y0 - level) / (y0 - y1)  # y0 >= level > y1, so 0 <= w < 1
    t_star = float(t0 + w * (t1 - t0))
    if err is None:
        return Crossing(t_star, None, False)
    slope = abs((y1 - y0) / (t1 - t0))
    sem_star = float((1.0 - w) * err[i - 1] + w * err[i])
    return Crossing(t_star, sem_star / slope if slope > 0 else math.inf, False)


@dataclass(frozen=True)
class PhasePoint:
    """The amount of grokking of one set of learning curves.

    Attributes
    ----------
    t_train, t_test : float or None
        First times the train / test loss fall below ``threshold`` × their value at t = 0;
        ``None`` when not reached within the curves' time range (censored).
    amount : float or None
        max(0, t_test − t_train) (Fig. 3e, theory.md §5); ``None`` when either time is censored.
    amount_sem : float or None
        √(δt_train² + δt_test²), δt = SEM(t*)/|dL/dt(t*)| (delta method); ``None`` where the
        curves carry no standard error or the amount is censored. The Monte Carlo error of the
        level itself (threshold × loss at t = 0) is neglected.
    censored : bool
        Either threshold was never reached.
    unresolved : bool
        Censored, but a threshold not reached lies within its Monte Carlo error at t_end
        (:attr:`Crossing.unresolved`): the curves cannot say whether it was reached, so the
        point is neither a number nor a lower bound.
    train_censored, test_censored : bool
    converged : bool
        Whether the solve met its tolerance (a non-converged solve may stop before t_max).
    t_end : float
        Last time of the curves: a censored amount is at least t_end − t_train.
    threshold : float
    message : str
    """

    t_train: float | None
    t_test: float | None
    amount: float | None
    amount_sem: float | None
    censored: bool
    converged: bool
    train_censored: bool = False
    test_censored: bool = False
    t_end: float = math.nan
    threshold: float = DEFAULT_THRESHOLD
    message: str = ""
    unresolved: bool = False

    def as_dict(self) -> dict:
        """The JSON fields of ``dmft phase --json`` (``None`` where censored)."""
        return {k: getattr(self, k) for k in VARIABLES}


def _check_threshold(threshold) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"threshold must be a number in (0, 1), got {threshold!r}") from None
    if not 0.0 < value < 1.0:
        raise InvalidParameterError(f"threshold must lie in (0, 1) (a fraction of the loss at t = 0), got {threshold!r}")
    return value


def grokking_point(curves: LearningCurves, threshold: float = DEFAULT_THRESHOLD) -> PhasePoint:
    """Crossing times, amount of grokking and its error bar of one set of curves (theory.md §5).

    Parameters
    ----------
    curves : LearningCurves
        Theory or simulation. Its ``train_loss_sem``/``test_loss_sem`` (or, for curves read
        back from a store, the arrays of the same names in ``extras``) give the error bar.
    threshold : float in (0, 1), default 0.1
        Relative level: each loss is compared with ``threshold`` × its own value at t = 0.

    Returns
    -------
    PhasePoint
    """
    threshold = _check_threshold(threshold)
    curves = with_stored_sem(curves)
    crossings = {}
    for key in ("train_loss", "test_loss"):
        loss = getattr(curves, key)
        start = float(loss[0])
        if not (math.isfinite(start) and start > 0):
            raise ValueError(f"{key} at t = 0 must be finite and positive to define a relative threshold, "
                             f"got {start!r}")
        crossings[key] = crossing_time(curves.t, loss, threshold * start, getattr(curves, f"{key}_sem"))
    train, test = crossings["train_loss"], crossings["test_loss"]
    censored = train.censored or test.censored
    amount = amount_sem = None
    if not censored:
        amount = max(0.0, test.time - train.time)
        if train.sem is not None and test.sem is not None:
            amount_sem = math.hypot(train.sem, test.sem)
    return PhasePoint(t_train=train.time, t_test=test.time, amount=amount, amount_sem=amount_sem, censored=censored,
                      converged=bool(curves.converged), train_censored=train.censored,
                      test_censored=test.censored, t_end=float(curves.t[-1]), threshold=threshold,
                      message=curves.message, unresolved=train.unresolved or test.unresolved)


def with_stored_sem(curves: LearningCurves) -> LearningCurves:
    """``curves`` with ``train_loss_sem``/``test_loss_sem`` taken from ``extras`` where absent.

    The store reads the standard errors back into their fields; runs that kept them as extras
    (arrays named ``train_loss_sem``/``test_loss_sem``) are read the same way.
    """
    missing = {k: curves.extras[k] for k in _SEM_EXTRAS if getattr(curves, k) is None and k in curves.extras}
    return dataclasses.replace(curves, **missing) if missing else curves


# --------------------------------------------------------------------------------------------
# Identity of a solve, and the runner executed in the workers
# --------------------------------------------------------------------------------------------
def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _solver_defaults(alpha) -> dict:
    """Every defaulted parameter of ``dmft.solve`` and, at finite α, of the DMFT solver's settings."""
    defaults = {name: p.default for name, p in inspect.signature(dmft.solve).parameters.items()
                if p.default is not inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD}
    if not math.isinf(float(alpha)):
        try:
            from dmft.dmft_solver import NUMERICS_REVISION, SolverSettings
        except ModuleNotFoundError:  # pragma: no cover - the solver is optional
            pass
        else:
            defaults.update({f.name: f.default for f in dataclasses.fields(SolverSettings)
                             if f.default is not dataclasses.MISSING})
            # a change of the numerics at unchanged settings (dropped at revision 12, where the
            # identities of the stored maps were made)
            defaults["numerics_revision"] = NUMERICS_REVISION
    return {k: v for k, v in defaults.items() if k not in _NOT_IDENTITY}


def point_identity(params: Mapping[str, Any]) -> dict:
    """Everything that determines one solve: ``params`` over the solver's defaults (JSON-ready).

    Two calls with the same identity give the same curves; a point stored under one identity
    is reused only by a call with that identity (a changed default, a new solver option, a
    different ``samples`` or grid each give a new one).
    """
    identity = {**_solver_defaults(params["alpha"]), **{k: v for k, v in params.items() if k not in _NOT_IDENTITY}}
    for key, legacy in _LEGACY_VALUES.items():
        if key in identity and identity[key] == legacy:
            del identity[key]
    return _jsonable(identity)


def _short(value) -> str:
    if isinstance(value, float):
        return "inf" if math.isinf(value) else format(value, ".6g")
    return str(value)


def point_name(params: Mapping[str, Any]) -> str:
    """Store name of a point: readable swept values plus a hash of its whole identity."""
    identity = point_identity(params)
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
    head = "__".join(f"{k}={_short(params[k])}" for k in SWEEPABLE if k in params)
    return f"phase__{head}__{digest}"


def solver_accepts() -> frozenset[str]:
    """Names of the keyword arguments the installed ``dmft.solve`` understands (its own
    parameters and the fields of the DMFT solver's settings): the CLI refuses pass-through options
    (``--grid``, ``--error-replicas``, ...) that the installed solver does not have."""
    names = {name for name, p in inspect.signature(dmft.solve).parameters.items() if p.kind is not p.VAR_KEYWORD}
    try:
        from dmft.dmft_solver import SolverSettings
    except ModuleNotFoundError:  # pragma: no cover - the solver is optional
        return frozenset(names)
    return frozenset(names | {f.name for f in dataclasses.fields(SolverSettings)})


_MODEL_KEYS = ("alpha", "epsilon", "scale", "width", "rho", "init_overlap", "init_cov", "center")


def _validate(params: Mapping[str, Any]) -> None:
    """Refuse an invalid point before anything runs (ValueError naming the parameter)."""
    from dmft.parameters import ModelParameters, check_positive

    ModelParameters(**{k: params[k] for k in _MODEL_KEYS if k in params})
    unknown = sorted(set(params) - solver_accepts())
    if unknown:
        raise InvalidParameterError(f"unknown option(s) {', '.join(unknown)} of dmft.solve; "
                                    f"valid: {', '.join(sorted(solver_accepts()))}")
    for key in ("t_max", "dt"):
        if key in params:
            check_positive(key, params[key])
    if params.get("grid") is not None and params["grid"] not in GRIDS:
        raise InvalidParameterError(f"grid must be one of {', '.join(GRIDS)}, got {params['grid']!r}")
    if params.get("times") is None:
        # the grid the solve will build (dt <= t_max, grid_points), refused here rather than in every worker
        grid = params.get("grid") or ("log" if params.get("grid_points") is not None else default_grid(params["alpha"]))
        make_grid(params.get("t_max", DEFAULT_T_MAX), params.get("dt", DEFAULT_DT), grid, params.get("grid_points"))
    if not math.isinf(float(params["alpha"])):
        try:
            from dmft.dmft_solver import SolverSettings
        except ModuleNotFoundError:  # pragma: no cover
            return
        fields = {f.name for f in dataclasses.fields(SolverSettings)}
        SolverSettings(**{k: v for k, v in params.items() if k in fields})


def _online_options_dropped(params: dict) -> dict:
    """At alpha = inf (the online ODE, theory.md §4.3) the finite-α solver's settings do not apply:
    they are left out (the solver refuses them), so an α axis may end in ``inf``."""
    if not math.isinf(float(params["alpha"])):
        return params
    own = {name for name in inspect.signature(dmft.solve).parameters}
    dmft_only = solver_accepts() - own
    return {k: v for k, v in params.items() if k not in dmft_only}


def solve_point(params: Mapping[str, Any]) -> LearningCurves:
    """Solve one point (module level so that it pickles to process, Dask and Slurm workers)."""
    return dmft.solve(**dict(params))


#: How far a point is solved: ``"full"`` to t_max; ``"adaptive"`` on growing horizons until both
#: thresholds are crossed (:class:`AdaptiveHorizon`).
HORIZONS = ("full", "adaptive")


@dataclass(frozen=True)
class AdaptiveHorizon:
    """Runner that solves a point on horizons t_1, 2t_1, 4t_1, …, t_max and stops at the first whose
    curves cross both thresholds (or that does not converge).

    The amount of grokking needs the curves only up to the later crossing; the DMFT's Monte Carlo
    error grows with the horizon at small α (measured: α = 5.5, N = 4, centred, κ = 0.4, ε = 0.04,
    S = 8192 to t = 300 took 1271 s and 605 iterations, and its test-loss standard error passed the
    loss itself after t ≈ 100, while both thresholds are crossed before t = 40). A point that
    needs t_max is solved ≈ 2× (the shorter horizons cost a geometric series); a point that
    crosses early is solved only as far as it must. Picklable (a frozen dataclass).

    With the package's solver (``runner`` = :func:`solve_point`, finite α) a horizon short of
    t_max is solved with ``error_bars_if`` (:func:`dmft.dmft_solver.solve_dmft`): its error
    replicas, about half its cost, run only if its curves cross both thresholds, i.e. only on
    the horizon that is kept. The kept curves are the same, number for number; the discarded
    horizons cost their main solve alone. A custom runner is called with the point's parameters
    only.
    """

    threshold: float = DEFAULT_THRESHOLD
    first: float = 40.0
    runner: Callable[[Mapping[str, Any]], LearningCurves] = solve_point

    def crosses_both(self, t, train_loss, test_loss) -> bool:
        """Whether both losses fall below ``threshold`` × their value at t = 0 within ``t``
        (the censoring of :func:`grokking_point`, which needs no error bars)."""
        return not any(crossing_time(t, loss, self.threshold * float(loss[0])).censored
                       for loss in (train_loss, test_loss))

    def __call__(self, params: Mapping[str, Any]) -> LearningCurves:
        params = dict(params)
        t_max = float(params.get("t_max", DEFAULT_T_MAX))
        if "times" in params:                        # an explicit grid: solve it as given
            return self.runner(params)
        tell_solver = self.runner is solve_point and math.isfinite(float(params.get("alpha", math.inf)))
        horizon = min(self.first, t_max)
        while True:
            last = horizon >= t_max
            ask = {"error_bars_if": self.crosses_both} if tell_solver and not last else {}
            curves = self.runner({**params, "t_max": horizon, **ask})
            point = grokking_point(curves, self.threshold)
            # an unresolved point is solved further: a loss still falling steeply may cross clearly
            # later (κ = 1.6, ε = 0.16 of Fig. 3e is unresolved at t = 40 and crosses at t = 54.5)
            if not point.censored or horizon >= t_max or not curves.converged:
                return curves
            horizon = min(2.0 * horizon, t_max)


# --------------------------------------------------------------------------------------------
# The labelled result
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseDiagram:
    """The phase diagram where :mod:`xarray` is not installed (same arrays as the Dataset).

    Attributes
    ----------
    dims : (str, str)
        The swept parameters; axis 0 and axis 1 of every array.
    coords : mapping of str to ndarray
        Their values.
    t_train, t_test, amount, amount_sem : ndarray of float, shape (n0, n1)
        NaN where censored (or, for ``amount_sem``, where the curves carry no standard error).
    censored, converged, train_censored, test_censored : ndarray of bool
    unresolved : ndarray of bool
        Censored cells whose missing threshold is within the Monte Carlo error at t_end.
    t_end : ndarray of float
    run : ndarray of str
        Store name of each point.
    attrs : mapping
        Threshold, fixed parameters, solver options, store, timing.
    extra : mapping of str to ndarray
        Further variables of the same shape (e.g. ``amount_sd``, ``seeds`` of
        :func:`phase_from_seeds`).
    """

    dims: tuple[str, str]
    coords: Mapping[str, np.ndarray]
    t_train: np.ndarray
    t_test: np.ndarray
    amount: np.ndarray
    amount_sem: np.ndarray
    censored: np.ndarray
    converged: np.ndarray
    train_censored: np.ndarray
    test_censored: np.ndarray
    t_end: np.ndarray
    run: np.ndarray
    attrs: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)
    unresolved: np.ndarray | None = None

    def __post_init__(self):
        if self.unresolved is None:
            object.__setattr__(self, "unresolved", np.zeros(np.shape(self.censored), dtype=bool))

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.coords:
            return np.asarray(self.coords[name])
        if name in self.extra:
            return np.asarray(self.extra[name])
        return getattr(self, name)

    @property
    def data_vars(self) -> tuple[str, ...]:
        return VARIABLES + ("train_censored", "test_censored", "t_end", "run") + tuple(self.extra)

    def to_xarray(self):
        """The same result as an :class:`xarray.Dataset` (needs xarray)."""
        import xarray as xr

        return xr.Dataset({name: (self.dims, self[name]) for name in self.data_vars},
                          coords={d: np.asarray(self.coords[d]) for d in self.dims}, attrs=dict(self.attrs))


def _labelled(diagram: PhaseDiagram, as_xarray: bool | None):
    if as_xarray is False:
        return diagram
    try:
        return diagram.to_xarray()
    except ModuleNotFoundError:
        if as_xarray:
            raise ModuleNotFoundError("xarray is not installed: pip install 'grokking-theory[xarray]'") from None
        return diagram


def _dims(result) -> tuple[str, str]:
    """The two swept names in array order (a Dataset's own ``dims`` is a set of names)."""
    dims = getattr(result["amount"], "dims", None) or tuple(result.dims)
    return dims[0], dims[1]


def _array(result, name) -> np.ndarray:
    return np.asarray(result[name].values if hasattr(result[name], "values") else result[name])


def phase_points(result) -> list[dict]:
    """The points of a phase diagram (Dataset or :class:`PhaseDiagram`) as JSON-ready dicts.

    Each holds ``scale``, ``epsilon``, ``alpha`` (the fixed one from the attributes), the
    variables of :data:`VARIABLES` with ``None`` where censored or unknown, and ``run``; grid
    order, the second swept parameter varying fastest.
    """
    d0, d1 = _dims(result)
    c0, c1 = _array(result, d0), _array(result, d1)
    fixed = json.loads(result.attrs.get("fixed", "{}"))
    arrays = {name: _array(result, name) for name in VARIABLES + ("run",)}
    points = []
    for i, v0 in enumerate(c0):
        for j, v1 in enumerate(c1):
            point = {k: (math.inf if fixed.get(k) == "inf" else fixed.get(k)) for k in SWEEPABLE}
            point.update({d0: float(v0), d1: float(v1)})
            for name in ("t_train", "t_test", "amount", "amount_sem"):
                value = float(arrays[name][i, j])
                point[name] = value if math.isfinite(value) else None
            point["censored"] = bool(arrays["censored"][i, j])
            point["unresolved"] = bool(arrays["unresolved"][i, j])
            point["converged"] = bool(arrays["converged"][i, j])
            point["run"] = str(arrays["run"][i, j])
            points.append(point)
    return points


# --------------------------------------------------------------------------------------------
# The grid runner
# --------------------------------------------------------------------------------------------
def _check_axes(axes: Mapping[str, Sequence[float]], fixed: Mapping[str, Any]) -> dict[str, list[float]]:
    if not isinstance(axes, Mapping) or len(axes) != 2:
        got = list(axes) if isinstance(axes, Mapping) else axes
        raise InvalidParameterError(f"axes must map exactly two of {', '.join(SWEEPABLE)} to lists of values, got {got!r}")
    checked = {}
    for name, values in axes.items():
        if name not in SWEEPABLE:
            raise InvalidParameterError(f"axes: {name!r} cannot be swept; choose two of {', '.join(SWEEPABLE)}")
        values = [values] if np.isscalar(values) else list(values)
        if not values:
            raise InvalidParameterError(f"{name} must have at least one value, got none")
        out = []
        for v in values:
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise InvalidParameterError(f"{name} values must be numbers, got {v!r}") from None
            if math.isnan(v) or v <= 0 or (math.isinf(v) and name != "alpha"):
                note = " (alpha may be inf)" if name == "alpha" else ""
                raise InvalidParameterError(f"{name} values must be positive and finite{note}, got {v!r}")
            out.append(v)
        if len(set(out)) != len(out):
            raise InvalidParameterError(f"{name} values must be distinct, got {values!r}")
        checked[name] = out
    for name in checked:
        if name in fixed:
            raise InvalidParameterError(f"{name} is swept and fixed at once; give it in axes or in fixed, not both")
    third = next(k for k in SWEEPABLE if k not in checked)
    if third in ("alpha", "epsilon") and third not in fixed:
        raise InvalidParameterError(f"{third} must be given as a fixed parameter (it is not swept)")
    return checked


def slowest_first(todo: Sequence[tuple[str, Mapping[str, Any]]]) -> list:
    """``(name, params)`` pairs in the order to submit them: the likely slowest first.

    A point's cost is set by how far its adaptive horizon must go, i.e. by the grokking delay,
    which grows with the output scale κ, shrinks with ε and is largest (and noisiest) at small α;
    α = ∞ points are cheap ODE solves. Submitting in that order lets a pool end with its short
    points instead of one worker running a long one alone. Measured on the Fig. 3e grid (16 DMFT
    points, two workers): 1043 s in grid order, 1012 s slowest first. The gain is small there
    because the long points dominate: each one solved to t = 300 also solved the horizons 40, 80
    and 160 before it (not counted in its stored ``seconds``).
    """
    def key(item):
        params = item[1]
        alpha = float(params.get("alpha", math.inf))
        return (-float(params.get("scale", 1.0)), float(params.get("epsilon", 0.0)), alpha)

    return sorted(todo, key=key)


def _with_unswept_value(fixed: Mapping[str, Any], shared: Mapping[str, Any], grid: Mapping[str, Any]) -> dict:
    """``fixed`` with the value every solve used for the parameter of (κ, ε, α) that is not swept:
    given as a solver option, or ``dmft.solve``'s default (κ = 1), so that :func:`phase_points`
    reports the point that was solved, never ``None``."""
    recorded = dict(fixed)
    third = next(k for k in SWEEPABLE if k not in grid)
    if third not in recorded:
        if third in shared:
            recorded[third] = shared[third]
        else:
            default = inspect.signature(dmft.solve).parameters[third].default
            if default is not inspect.Parameter.empty and default is not None:
                recorded[third] = default
    return recorded


def phase_diagram(
    axes: Mapping[str, Sequence[float]],
    fixed: Mapping[str, Any] | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    out: str | Path,
    executor=None,
    workers: int | None = None,
    scheduler: str | None = None,
    slurm: bool = False,
    slurm_options: Mapping[str, Any] | None = None,
    slurm_folder: str | Path = "phase_slurm_logs",
    progress: bool = False,
    resume: bool = True,
    as_xarray: bool | None = None,
    runner: Callable[[Mapping[str, Any]], LearningCurves] = solve_point,
    horizon: str = "full",
    **solver_options,
):
    """The DMFT phase diagram of grokking over two of (κ, ε, α) (theory.md §4.4, §4.5, §5).

    Parameters
    ----------
    axes : mapping
        Exactly two of ``scale``, ``epsilon``, ``alpha`` → lists of values, e.g.
        ``{"scale": [0.4, 0.8], "epsilon": [0.04, 0.08]}`` (alpha may be ``inf``).
    fixed : mapping, optional
        Further keyword arguments of ``dmft.solve`` shared by every point: the third of
        (scale, epsilon, alpha) (``alpha`` and ``epsilon`` are required when not swept), and
        ``width``, ``center``, ``init_overlap``, ``t_max``, ``dt``, ``rho``, ...
    threshold : float in (0, 1), default 0.1
        Relative loss level of :func:`grokking_point` (Fig. 3e's 0.1). Not part of a solve's
        identity: changing it reuses every stored solve.
    out : path
        HDF5 store (created if absent). Each solve is written as soon as it finishes, under
        :func:`point_name` (swept values + hash of :func:`point_identity`), with its standard
        errors.
    executor : optional
        Anything with ``submit(fn, *args)`` (as for :func:`comparisons.sweeps.sweep`); default:
        built by :func:`comparisons.sweeps.make_executor` from ``workers``/``scheduler``/``slurm``.
        ``workers=0`` solves the points one after another in this process.
    workers, scheduler, slurm, slurm_options, slurm_folder
        As ``dmft sweep``: local process pool size, Dask scheduler address, Slurm via submitit.
    progress : bool
        tqdm bar over finished points.
    resume : bool, default True
        Points whose solve is complete in ``out`` are read back, not recomputed.
    as_xarray : bool, optional
        ``None``: a Dataset where xarray is installed, else :class:`PhaseDiagram`; ``True``
        insists on xarray; ``False`` always returns :class:`PhaseDiagram`.
    runner : callable
        ``runner(params) -> LearningCurves``, executed in the workers (picklable for pools);
        default :func:`solve_point` (``dmft.solve``).
    horizon : {"full", "adaptive"}, default "full"
        ``"adaptive"`` wraps ``runner`` in :class:`AdaptiveHorizon`: each point is solved on
        growing horizons 40, 80, … up to ``t_max`` until both thresholds are crossed. Its stored
        solves then depend on ``threshold``, which joins their identity.
    **solver_options
        Passed through to ``dmft.solve``: ``samples``, ``tol``, ``max_iter``, ``seed``, ``grid``,
        ``grid_points``, ``error_replicas``, ... (whatever the installed solver accepts).

    Returns
    -------
    xarray.Dataset or PhaseDiagram
        dims = the two swept names (in the order of ``axes``); variables ``t_train``,
        ``t_test``, ``amount``, ``amount_sem`` (NaN where censored or unknown), ``censored``,
        ``converged`` (plus ``train_censored``, ``test_censored``, ``t_end``, ``run``, and
        ``failed``: the solve raised, nothing stored, censored and not converged); attrs
        ``threshold``, ``fixed`` (with the value of the unswept one of κ, ε, α, default
        included) and ``solver_options`` (JSON), ``store``, ``computed``,
        ``reused``, ``failed`` (JSON: run → error), ``seconds``.
    """
    start = time.perf_counter()
    threshold = _check_threshold(threshold)
    if horizon not in HORIZONS:
        raise InvalidParameterError(f"horizon must be one of {', '.join(HORIZONS)}, got {horizon!r}")
    if horizon == "adaptive":
        runner = AdaptiveHorizon(threshold=threshold, runner=runner)
    fixed = dict(fixed or {})
    overlap = set(fixed) & set(solver_options)
    if overlap:
        raise InvalidParameterError(f"{', '.join(sorted(overlap))} given both in fixed and as a solver option")
    grid = _check_axes(axes, fixed)
    (d0, values0), (d1, values1) = grid.items()
    shared = {**fixed, **solver_options}
    shared.pop("progress", None)
    points = [[_online_options_dropped({**shared, d0: v0, d1: v1}) for v1 in values1] for v0 in values0]
    for row in points:
        for params in row:
            _validate(params)
    # an adaptive solve stops at the horizon where this threshold is crossed: part of its identity
    marker = {"horizon": "adaptive", "horizon_threshold": threshold} if horizon == "adaptive" else {}
    names = [[point_name({**p, **marker}) for p in row] for row in points]
    out = Path(out)
    stored = set(list_runs(out)) if (resume and out.exists()) else set()
    todo = [(names[i][j], points[i][j]) for i in range(len(values0)) for j in range(len(values1))
            if names[i][j] not in stored]
    results: dict[str, LearningCurves] = {}
    failed: dict[str, str] = {}

    def keep(name, params, curves):
        identity = point_identity({**params, **marker})
        write_run(out, name, curves, attrs={
            "sweep_kind": "theory", "sweep_point": json.dumps(_jsonable(dict(params)), sort_keys=True),
            "phase_identity": json.dumps(identity, sort_keys=True), "identity": identity_digest(identity)})
        results[name] = curves

    if executor is not None and (workers is not None or scheduler or slurm):
        given = "workers" if workers is not None else "scheduler" if scheduler else "slurm"
        raise InvalidParameterError(f"{given} chooses the executor that phase_diagram builds; it does not apply to a "
                                    "given executor (drop one of them)")
    inline = executor is None and workers == 0 and scheduler is None and not slurm
    close = None
    if todo and executor is None and not inline:
        executor, close = make_executor(workers=workers, scheduler=scheduler, slurm=slurm, slurm_folder=slurm_folder,
                                        slurm_options=slurm_options)
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(values0) * len(values1), initial=len(values0) * len(values1) - len(todo),
                   desc="phase diagram", unit="point")
    try:
        if todo and inline:
            for name, params in todo:
                try:
                    curves = runner(params)
                except Exception as exc:  # one failed point must not lose the others
                    failed[name] = f"{type(exc).__name__}: {exc}"
                else:
                    keep(name, params, curves)
                if bar is not None:
                    bar.update(1)
        elif todo:
            futures = {executor.submit(runner, params): (name, params) for name, params in slowest_first(todo)}
            for future in _completed(list(futures)):
                name, params = futures[future]
                try:
                    curves = future.result()
                except Exception as exc:
                    failed[name] = f"{type(exc).__name__}: {exc}"
                else:
                    keep(name, params, curves)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if close is not None:
            close()

    shape = (len(values0), len(values1))
    arrays = {k: np.full(shape, np.nan) for k in ("t_train", "t_test", "amount", "amount_sem", "t_end")}
    flags = {k: np.zeros(shape, dtype=bool)
             for k in ("censored", "unresolved", "converged", "train_censored", "test_censored")}
    failed_cells = np.zeros(shape, dtype=bool)
    for i in range(shape[0]):
        for j in range(shape[1]):
            name = names[i][j]
            if name in failed:
                flags["censored"][i, j] = failed_cells[i, j] = True
                continue
            curves = results.get(name) or read_run(out, name)
            point = grokking_point(curves, threshold)
            for key in arrays:
                value = getattr(point, key)
                arrays[key][i, j] = np.nan if value is None else value
            for key in flags:
                flags[key][i, j] = getattr(point, key)
    attrs = {
        "threshold": threshold,
        "fixed": json.dumps(_jsonable(_with_unswept_value(fixed, shared, grid)), sort_keys=True),
        "solver_options": json.dumps(_jsonable({k: v for k, v in solver_options.items() if k != "progress"}),
                                     sort_keys=True),
        "store": str(out),
        "horizon": horizon,
        "computed": len(results),
        "reused": shape[0] * shape[1] - len(todo),
        "failed": json.dumps(failed, sort_keys=True),
        "seconds": time.perf_counter() - start,
    }
    diagram = PhaseDiagram(dims=(d0, d1), coords={d0: np.array(values0), d1: np.array(values1)}, **arrays, **flags,
                           run=np.array(names, dtype=object), attrs=attrs, extra={"failed": failed_cells})
    return _labelled(diagram, as_xarray)


def phase_from_seeds(axes: Mapping[str, Sequence[float]], runs, threshold: float = DEFAULT_THRESHOLD, *,
                     attrs: Mapping[str, Any] | None = None, as_xarray: bool | None = None):
    """Phase diagram of simulations: the amount of grokking of each seed, averaged per cell.

    Parameters
    ----------
    axes : mapping
        Two swept names → values (the order of the axes of ``runs``).
    runs : nested sequence
        ``runs[i][j]`` is the sequence of :class:`LearningCurves` (one per seed) at the i-th
        value of the first and the j-th value of the second parameter.
    threshold : float
    attrs : mapping, optional
        Added to the result's attributes (``fixed`` as JSON is used by :func:`phase_points`).

    Returns
    -------
    xarray.Dataset or PhaseDiagram
        ``t_train``, ``t_test``, ``amount``: means over the seeds; ``amount_sem`` = sd/√n;
        extra variables ``amount_sd`` (the seed spread, ddof = 1) and ``seeds`` (n). A cell is
        censored when any of its seeds is (its mean would be biased), converged when all are.
    """
    (d0, values0), (d1, values1) = list(axes.items())
    shape = (len(values0), len(values1))
    arrays = {k: np.full(shape, np.nan) for k in ("t_train", "t_test", "amount", "amount_sem", "t_end", "amount_sd")}
    flags = {k: np.zeros(shape, dtype=bool)
             for k in ("censored", "unresolved", "converged", "train_censored", "test_censored")}
    seeds = np.zeros(shape, dtype=int)
    for i in range(shape[0]):
        for j in range(shape[1]):
            points = [grokking_point(c, threshold) for c in runs[i][j]]
            if not points:
                raise ValueError(f"runs[{i}][{j}] holds no curves")
            n = len(points)
            seeds[i, j] = n
            flags["converged"][i, j] = all(p.converged for p in points)
            for key in ("train_censored", "test_censored", "censored", "unresolved"):
                flags[key][i, j] = any(getattr(p, key) for p in points)
            arrays["t_end"][i, j] = min(p.t_end for p in points)
            for key, censored in (("t_train", "train_censored"), ("t_test", "test_censored")):
                if not flags[censored][i, j]:
                    arrays[key][i, j] = float(np.mean([getattr(p, key) for p in points]))
            if not flags["censored"][i, j]:
                amounts = np.array([p.amount for p in points])
                arrays["amount"][i, j] = amounts.mean()
                if n > 1:
                    arrays["amount_sd"][i, j] = amounts.std(ddof=1)
                    arrays["amount_sem"][i, j] = arrays["amount_sd"][i, j] / math.sqrt(n)
    sd = arrays.pop("amount_sd")
    coords = {d0: np.asarray(values0, dtype=float), d1: np.asarray(values1, dtype=float)}
    diagram = PhaseDiagram(dims=(d0, d1), coords=coords, **arrays, **flags, run=np.full(shape, "", dtype=object),
                           attrs={"threshold": float(threshold), **dict(attrs or {})},
                           extra={"amount_sd": sd, "seeds": seeds})
    return _labelled(diagram, as_xarray)


def map_agreement(theory, simulation) -> dict:
    """How well a theory map reproduces a simulated one (cells where neither is censored).

    Parameters
    ----------
    theory : Dataset or PhaseDiagram
        E.g. :func:`phase_diagram` (the DMFT).
    simulation : Dataset or PhaseDiagram
        :func:`phase_from_seeds` on the same grid (needs ``amount_sd``).

    Returns
    -------
    dict
        ``cells`` compared; ``spearman``: rank correlation of the two amounts (None below 3 cells
        or for a constant map); ``max_diff_in_sd``: max |theory − simulation mean| / seed
        spread over cells with a spread > 0, and the cell (``at``) where it occurs;
        ``max_abs_diff``; ``zero_spread_cells``: cells left out of the ratio.
    """
    from scipy.stats import spearmanr

    d0, d1 = _dims(simulation)
    a = _array(theory, "amount").astype(float)
    b = _array(simulation, "amount").astype(float)
    if a.shape != b.shape:
        raise ValueError(f"theory and simulation maps must have one shape, got {a.shape} and {b.shape}")
    sd = _array(simulation, "amount_sd").astype(float)
    both = np.isfinite(a) & np.isfinite(b)
    out = {"cells": int(both.sum()), "spearman": None, "max_diff_in_sd": None, "at": None, "max_abs_diff": None,
           "zero_spread_cells": int(np.sum(both & ~(sd > 0)))}
    if both.sum() >= 3 and np.ptp(a[both]) > 0 and np.ptp(b[both]) > 0:
        out["spearman"] = float(spearmanr(a[both], b[both]).statistic)
    if both.any():
        out["max_abs_diff"] = float(np.max(np.abs(a - b)[both]))
    usable = both & (sd > 0)
    if usable.any():
        ratio = np.where(usable, np.abs(a - b) / np.where(usable, sd, 1.0), -np.inf)
        i, j = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        c0, c1 = _array(simulation, d0), _array(simulation, d1)
        out["max_diff_in_sd"] = float(ratio[i, j])
        out["at"] = {d0: float(c0[i]), d1: float(c1[j])}
    return out


# --------------------------------------------------------------------------------------------
# The picture
# --------------------------------------------------------------------------------------------
_AXIS_LABELS = {"scale": "scale κ (paper: α)", "epsilon": "ε (quadratic coefficient of φ)", "alpha": "alpha = P/D"}


def plot_phase(result, ax=None, *, variable: str = "amount", title: str | None = None, vmax: float | None = None,
               colorbar: bool = True, cmap: str = "magma", error: str = "amount_sem", error_label: str = "±"):
    """Heat map of the amount of grokking over the two swept parameters.

    Rows are the first swept parameter, columns the second (cells equally spaced, ticks at the
    values). Censored cells are hatched and grey, never coloured as a number; their text says
    which threshold was not reached (a censored test loss gives the lower bound
    "≥ t_end − t_train"); unresolved cells (the missing threshold within the Monte Carlo error
    at t_end) are dotted and say so, with no bound. Non-converged cells get a red frame and "n.c.". Each coloured cell
    shows the amount and, where known, ± its standard error.

    Parameters
    ----------
    result : xarray.Dataset or PhaseDiagram
    ax : matplotlib Axes, optional
    variable : {"amount", "t_train", "t_test"}
        What is coloured (``t_test`` of an α = ∞ diagram is the online time to generalise);
        the error is written in the cells only for ``amount``.
    title : str, optional
    vmax : float, optional
        Upper end of the colour scale (to share one scale between panels).
    error : str
        Variable written under the amount (default its standard error; ``amount_sd`` for the
        seed spread of :func:`phase_from_seeds`).
    error_label : str
        Prefix of the error written under the value ("±", or e.g. "sd").

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.patches import Rectangle

    from comparisons.overlay import pyplot

    plt = pyplot()
    d0, d1 = _dims(result)
    c0, c1 = _array(result, d0), _array(result, d1)
    if variable not in ("amount", "t_train", "t_test"):
        raise ValueError(f"variable must be amount, t_train or t_test, got {variable!r}")
    amount = _array(result, variable).astype(float)
    sem = _array(result, error).astype(float) if variable == "amount" else np.full(amount.shape, np.nan)
    names = set(result.data_vars)
    mask = {"amount": "censored", "t_train": "train_censored", "t_test": "test_censored"}[variable]
    censored = _array(result, mask if mask in names else "censored").astype(bool)
    converged = _array(result, "converged").astype(bool)
    extra = {k: _array(result, k) for k in ("train_censored", "test_censored", "t_end", "t_train", "failed",
                                            "unresolved") if k in names}
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.3 * len(c1) + 2.6, 1.0 * len(c0) + 1.8), constrained_layout=True)
    else:
        fig = ax.figure
    shown = np.ma.masked_invalid(np.where(censored, np.nan, amount))
    colours = plt.get_cmap(cmap).with_extremes(bad="0.85")
    finite = amount[np.isfinite(amount) & ~censored]
    top = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    image = ax.imshow(shown, origin="lower", aspect="auto", cmap=colours, vmin=0.0, vmax=max(top, 1e-12),
                      extent=(-0.5, len(c1) - 0.5, -0.5, len(c0) - 0.5))
    for i in range(len(c0)):
        for j in range(len(c1)):
            if censored[i, j]:
                unresolved = "unresolved" in extra and bool(extra["unresolved"][i, j])
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="..." if unresolved else "///",
                                       edgecolor="0.45", lw=0))
                text = "censored"
                if "failed" in extra and extra["failed"][i, j]:
                    text = "failed"
                elif unresolved:
                    text = f"unresolved:\nMC error\nat t = {extra['t_end'][i, j]:.3g}"
                elif variable != "amount" and "t_end" in extra:
                    text = f"not reached\nby t = {extra['t_end'][i, j]:.3g}"
                elif "test_censored" in extra and extra["test_censored"][i, j] and not extra["train_censored"][i, j]:
                    text = f"test not\nreached\n≥ {extra['t_end'][i, j] - extra['t_train'][i, j]:.3g}"
                elif "train_censored" in extra and extra["train_censored"][i, j]:
                    text = "train not\nreached"
                ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color="0.15")
            else:
                value = amount[i, j]
                dark = value < 0.55 * max(top, 1e-12)
                text = f"{value:.3g}" + (f"\n{error_label} {sem[i, j]:.2g}" if math.isfinite(sem[i, j]) else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
            if not converged[i, j]:
                ax.add_patch(Rectangle((j - 0.48, i - 0.48), 0.96, 0.96, fill=False, edgecolor="red", lw=1.8))
                ax.text(j + 0.45, i + 0.45, "n.c.", ha="right", va="top", fontsize=6, color="red")
    ax.set_xticks(range(len(c1)), [f"{v:g}" for v in c1])
    ax.set_yticks(range(len(c0)), [f"{v:g}" for v in c0])
    ax.set_xlabel(_AXIS_LABELS.get(d1, d1))
    ax.set_ylabel(_AXIS_LABELS.get(d0, d0))
    threshold = float(result.attrs.get("threshold", DEFAULT_THRESHOLD))
    what = {"amount": "amount of grokking t_test − t_train", "t_train": "t_train", "t_test": "t_test"}[variable]
    ax.set_title(title or f"{what} (losses < {threshold:g} × initial)", fontsize=8)
    if colorbar:
        label = "amount of grokking" if variable == "amount" else variable
        fig.colorbar(image, ax=ax, label=label + r" (time $t$)")
    return fig
