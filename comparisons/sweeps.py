"""Grids of theory or simulation runs through any ``concurrent.futures``-style executor.

``comparisons.sweep(grid, kind, out, executor=None)`` / ``dmft sweep``:

* the grid is the Cartesian product of parameter lists (or an explicit list of points);
* each point runs ``dmft.solve`` (``kind="theory"``) or ``empirical.train_committee``
  (``kind="simulation"``) in a worker — a local :class:`~concurrent.futures.ProcessPoolExecutor`
  by default, a Dask cluster through ``distributed.Client(...).get_executor()``, Slurm through a
  ``submitit`` executor, or anything else with ``submit(fn, *args)`` returning an object with
  ``done()`` and ``result()``;
* results come back to this process, which is the only writer of ``out``: each is stored with
  :func:`comparisons.store.write_run` as soon as it finishes (atomic per run, under the file lock,
  so a killed sweep keeps every finished point);
* resumable: a point whose run is already complete and converged in ``out`` is not submitted
  again (a stored run that did not converge is recomputed);
* parameter names are checked against the point's function before the first point runs.

Run names are derived from the parameters (:func:`run_name`), so the same grid maps to the
same names on every invocation.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import dmft
from comparisons.store import identity_digest, list_runs, store_run, stored_run_info
from dmft.result import LearningCurves
from dmft.parameters import InvalidParameterError

__all__ = ["KINDS", "SweepResult", "expand_grid", "run_name", "run_point", "sweep", "make_executor", "parse_value",
           "accepted_parameters", "check_parameter_names"]

#: What a sweep point runs.
KINDS = ("theory", "simulation")


def parse_value(text: str):
    """Parse one CLI grid value: int, float (``inf`` allowed), ``true``/``false``, else string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text.strip()


def expand_grid(grid: Mapping[str, Any] | Sequence[Mapping[str, Any]], fixed: Mapping[str, Any] | None = None) -> list[dict]:
    """Points of a grid: the Cartesian product of a mapping of lists, or a list of points.

    Parameters
    ----------
    grid : mapping of str to (list or scalar), or sequence of mappings
        ``{"alpha": [3, 10], "epsilon": [0.1, 0.25]}`` gives four points (a scalar is a list of
        one); a sequence of dicts is taken as the points themselves.
    fixed : mapping, optional
        Parameters added to every point (a point's own value wins).

    Returns
    -------
    list of dict
        In grid order (last key varies fastest).
    """
    fixed = dict(fixed or {})
    if isinstance(grid, Mapping):
        if not grid:
            raise InvalidParameterError("grid must name at least one parameter, got an empty mapping")
        keys = list(grid)
        values = []
        for key in keys:
            v = grid[key]
            v = list(v) if isinstance(v, (list, tuple, range)) else [v]
            if not v:
                raise InvalidParameterError(f"grid parameter {key!r} must have at least one value, got none")
            values.append(v)
        points = [dict(zip(keys, combo)) for combo in itertools.product(*values)]
    else:
        points = [dict(p) for p in grid]
        if not points:
            raise InvalidParameterError("grid must hold at least one point, got none")
    return [{**fixed, **p} for p in points]


def _format(value) -> str:
    if isinstance(value, float):
        return "inf" if math.isinf(value) else format(value, ".12g")
    if isinstance(value, (list, tuple)):
        return ",".join(_format(v) for v in value)
    return str(value).replace("/", "|")


#: Options of ``dmft.solve`` the finite-alpha solver takes through ``**solver_options`` beyond the
#: fields of its settings dataclass (the time grid and error options of the solver).
_SOLVE_EXTRA_OPTIONS = ("progress", "grid", "grid_points", "times", "symmetrize", "error_replicas", "march")
#: Keyword arguments of the simulation that are not parameters a sweep can set.
_SIMULATION_NOT_SWEEPABLE = ("data", "record_hook")


def accepted_parameters(kind: str) -> set[str]:
    """Names a sweep point of ``kind`` may set: the keyword arguments of ``dmft.solve`` (with the
    finite-alpha solver's settings) or of ``empirical.train_committee``."""
    import dataclasses
    import inspect

    parameters = inspect.signature(_point_function(kind)).parameters
    if kind == "simulation":
        return set(parameters) - set(_SIMULATION_NOT_SWEEPABLE)
    names = {n for n, p in parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    try:
        from dmft.dmft_solver import SolverSettings
    except ImportError:  # pragma: no cover - a build without the finite-alpha solver
        return names
    return names | {f.name for f in dataclasses.fields(SolverSettings)} | set(_SOLVE_EXTRA_OPTIONS)


def check_parameter_names(kind: str, names) -> None:
    """Refuse, before the first point runs, a parameter name the point's function does not take."""
    accepted = accepted_parameters(kind)
    unknown = sorted(set(names) - accepted)
    what = "dmft.solve" if kind == "theory" else "empirical.train_committee"
    if unknown:
        raise InvalidParameterError(
            f"unknown sweep parameter(s) {', '.join(repr(u) for u in unknown)}: not an option of {what} "
            f"(names use underscores, e.g. t_max); accepted: {', '.join(sorted(accepted))}")
    missing = sorted(required_parameters(kind) - set(names))
    if missing:
        raise InvalidParameterError(f"sweep parameter(s) {', '.join(repr(m) for m in missing)} missing: {what} "
                                    "requires them; give each as a grid axis or a fixed value")


def required_parameters(kind: str) -> set[str]:
    """The arguments without a default of a point's function (``dmft.solve``: alpha;
    ``empirical.train_committee``: alpha, dim, width)."""
    import inspect

    return {n for n, p in inspect.signature(_point_function(kind)).parameters.items()
            if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _point_function(kind: str):
    """The function a sweep point of ``kind`` calls: ``dmft.solve`` or ``empirical.train_committee``."""
    if kind == "theory":
        return dmft.solve
    if kind == "simulation":
        from empirical import train_committee

        return train_committee
    raise InvalidParameterError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def run_name(kind: str, params: Mapping[str, Any]) -> str:
    """Deterministic store name of a sweep point, e.g. ``theory__alpha=inf__epsilon=0.1``."""
    return "__".join([kind] + [f"{k}={_format(params[k])}" for k in sorted(params)])


def run_identity(kind: str, params: Mapping[str, Any]) -> str:
    """Identity digest of a sweep point: its parameters, plus for a finite-α theory point the
    solver's numerics (:func:`dmft.dmft_solver.numerics_fingerprint`), so that a point stored
    before a change of the solver's defaults is recomputed, not reused."""
    extra = {}
    if kind == "theory" and math.isfinite(float(params.get("alpha", math.inf))):
        from dmft.dmft_solver import numerics_fingerprint

        extra = {"numerics": numerics_fingerprint()}
    return identity_digest({"sweep_kind": kind, **params, **extra})


def run_point(kind: str, params: Mapping[str, Any]) -> LearningCurves:
    """Run one sweep point (executed in the worker; module-level so that it pickles).

    ``kind="theory"``: ``dmft.solve(**params)``; ``kind="simulation"``:
    ``empirical.train_committee(**params)``. Thread limits belong to the worker process
    (:func:`limit_worker_threads`, the local pool's initializer), never to the caller: changing
    ``NUMBA_NUM_THREADS`` in a process that already launched Numba threads breaks later
    parallel compilations.
    """
    if kind == "theory":
        return dmft.solve(**params)
    if kind == "simulation":
        from empirical import train_committee

        return train_committee(**params)
    raise InvalidParameterError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")


def limit_worker_threads() -> None:
    """Initializer of local worker processes: one BLAS/Numba/torch thread each (the pool gives
    the parallelism). Runs before the worker imports numba or torch."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(var, "1")


@dataclass(frozen=True)
class SweepResult:
    """Outcome of :func:`sweep`.

    Attributes
    ----------
    out : str
        The store.
    names : tuple of str
        Run names of every grid point, in grid order.
    computed, skipped : tuple of str
        Points run now / already complete and converged in ``out`` (resume).
    failed : dict of str to str
        Points whose worker raised, with the error message (nothing stored for them).
    invalid : tuple of str
        The failed points whose parameters were refused (:class:`InvalidParameterError`).
    seconds : float
    converged : dict of str to bool
        Whether each point's run with these settings converged (theory: the DMFT met its
        tolerance; simulation: it did not diverge). A point recomputed now that did not converge
        is False even where the store keeps an older converged run of it (other solver numerics).
    """

    out: str
    names: tuple[str, ...]
    computed: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: Mapping[str, str] = field(default_factory=dict)
    invalid: tuple[str, ...] = ()
    seconds: float = 0.0
    converged: Mapping[str, bool] = field(default_factory=dict)

    @property
    def unconverged(self) -> tuple[str, ...]:
        """Points whose stored run did not converge."""
        return tuple(n for n in self.names if self.converged.get(n) is False)

    def summary(self) -> dict:
        return {"out": self.out, "points": len(self.names), "computed": list(self.computed),
                "skipped": list(self.skipped), "failed": dict(self.failed), "invalid": list(self.invalid),
                "seconds": self.seconds,
                "converged": dict(self.converged), "unconverged": list(self.unconverged)}


def _completed(futures: Sequence[Any], poll_seconds: float = 0.2) -> Iterable[Any]:
    """Yield futures as they finish: ``cf.as_completed`` for real futures, polling otherwise
    (submitit jobs have ``done()``/``result()`` but are not ``concurrent.futures.Future``)."""
    if all(isinstance(f, cf.Future) for f in futures):
        yield from cf.as_completed(futures)
        return
    pending = list(futures)
    while pending:
        still = []
        for f in pending:
            if f.done():
                yield f
            else:
                still.append(f)
        pending = still
        if pending:
            time.sleep(poll_seconds)


def make_executor(*, workers: int | None = None, scheduler: str | None = None, slurm: bool = False,
                  slurm_folder: str | Path = "sweep_slurm_logs", slurm_options: Mapping[str, Any] | None = None,
                  slurm_cluster: str = "slurm"):
    """Build the executor of ``dmft sweep`` and a function that releases it.

    Parameters
    ----------
    workers : int, optional
        Processes of the local pool (default: ``os.cpu_count()``).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``): the executor is
        ``distributed.Client(scheduler).get_executor()``.
    slurm : bool
        Submit each point as a Slurm job with ``submitit.AutoExecutor`` (logs in
        ``slurm_folder``; ``slurm_options`` go to ``update_parameters``, e.g. ``timeout_min``,
        ``slurm_partition``).
    slurm_cluster : str
        submitit cluster name; ``"slurm"`` (default) requires ``srun``; ``"debug"`` runs the jobs
        in this process (for tests).

    Returns
    -------
    (executor, close) : the executor and a no-argument function shutting it down.

    Raises
    ------
    InvalidParameterError
        ``scheduler`` is empty, malformed or no scheduler answers there; ``workers`` < 1, or given
        with ``scheduler``/``slurm`` (it sizes the local pool only).
    ModuleNotFoundError
        dask.distributed (``scheduler``) or submitit (``slurm``) is not installed.
    RuntimeError
        ``slurm`` where submitit finds no Slurm cluster.
    """
    if scheduler is not None and not str(scheduler).strip():
        raise InvalidParameterError("scheduler must be the address of a Dask scheduler (e.g. tcp://host:8786), "
                                    "got an empty string")
    if scheduler and slurm:
        raise InvalidParameterError("scheduler and slurm are exclusive: choose one executor")
    if workers is not None and (scheduler or slurm):
        raise InvalidParameterError("workers sets the size of the local process pool; it does not apply with "
                                    f"{'scheduler' if scheduler else 'slurm'} (drop one of them)")
    if scheduler:
        try:
            from distributed import Client
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError("--scheduler needs dask.distributed: pip install 'grokking-theory[dask]'") from exc
        try:
            client = Client(scheduler, timeout="10s")
        except (ValueError, TypeError) as exc:  # malformed: no port, unknown scheme, not a string
            raise InvalidParameterError(
                f"scheduler: malformed Dask scheduler address {scheduler!r} ({exc}); expected e.g. "
                "tcp://host:8786") from None
        except OSError as exc:
            raise InvalidParameterError(f"scheduler: cannot reach a Dask scheduler at {scheduler!r} ({exc})") from exc
        return client.get_executor(pure=False), client.close
    if slurm:
        try:
            import submitit
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError("--slurm needs submitit: pip install 'grokking-theory[slurm]'") from exc
        try:
            executor = submitit.AutoExecutor(folder=str(slurm_folder), cluster=slurm_cluster)
        except RuntimeError as exc:
            raise RuntimeError(
                f"--slurm: no Slurm cluster available here ({exc}); run on a Slurm login node, or use "
                "--scheduler ADDRESS or the local process pool"
            ) from exc
        executor.update_parameters(**dict(slurm_options or {}))
        return executor, (lambda: None)
    import multiprocessing

    if workers is not None and (int(workers) != workers or workers < 1):
        raise InvalidParameterError(f"workers must be an integer >= 1, got {workers!r}")
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=limit_worker_threads)
    return pool, (lambda: pool.shutdown(wait=True, cancel_futures=True))


def sweep(
    grid: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    kind: str,
    out: str | Path,
    executor=None,
    *,
    fixed: Mapping[str, Any] | None = None,
    workers: int | None = None,
    progress: bool = True,
    resume: bool = True,
    runner: Callable[[str, Mapping[str, Any]], LearningCurves] = run_point,
) -> SweepResult:
    """Run every grid point through ``executor`` and store each result as it finishes.

    Parameters
    ----------
    grid : mapping or sequence
        See :func:`expand_grid`. Keys are keyword arguments of ``dmft.solve`` (theory) or
        ``empirical.train_committee`` (simulation).
    kind : {"theory", "simulation"}
    out : path
        HDF5 store; created if absent.
    executor : optional
        Anything with ``submit(fn, *args)`` (``concurrent.futures`` executors, the Dask
        ``Client.get_executor()``, submitit executors). Default: a local process pool of
        ``workers`` processes, shut down at the end.
    fixed : mapping, optional
        Parameters shared by every point.
    workers : int, optional
        Size of the default pool.
    progress : bool
        tqdm progress bar over finished points.
    resume : bool, default True
        Skip points whose run is already complete in ``out``; ``False`` recomputes them.
    runner : callable
        ``runner(kind, params) -> LearningCurves`` executed in the workers (picklable);
        default :func:`run_point`.

    Returns
    -------
    SweepResult
    """
    start = time.perf_counter()
    if kind not in KINDS:
        raise InvalidParameterError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    points = [{str(k).replace("-", "_"): v for k, v in p.items()} for p in expand_grid(grid, fixed)]
    if runner is run_point:
        check_parameter_names(kind, {k for p in points for k in p})
    names = [run_name(kind, p) for p in points]
    if len(set(names)) != len(names):
        raise InvalidParameterError("grid has repeated points (identical parameters)")
    out = Path(out)
    converged: dict[str, bool] = {}
    identities = {name: run_identity(kind, p) for name, p in zip(names, points)}
    if resume and out.exists():
        for name in set(list_runs(out)) & set(names):
            info = stored_run_info(out, name)
            converged[name] = bool(info and info["converged"] and info["identity"] == identities[name])
    # a stored run that did not converge, or that other solver numerics produced, is recomputed
    done = {n for n, ok in converged.items() if ok}
    todo = [(n, p) for n, p in zip(names, points) if n not in done]
    skipped = tuple(n for n in names if n in done)
    computed, failed, invalid = [], {}, []
    close = None
    if executor is not None and workers is not None:
        raise InvalidParameterError("workers sets the size of the default local pool; it does not apply to a "
                                    "given executor (drop one of them)")
    if todo and executor is None:
        executor, close = make_executor(workers=workers)
    try:
        futures = {}
        for name, params in todo:
            futures[executor.submit(runner, kind, params)] = (name, params)
        bar = None
        if progress and futures:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(names), initial=len(skipped), desc=f"sweep ({kind})", unit="run")
        for future in _completed(list(futures)):
            name, params = futures[future]
            try:
                curves = future.result()
            except Exception as exc:  # a failed point must not lose the others
                failed[name] = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, InvalidParameterError):
                    invalid.append(name)
            else:
                # the name spells out every parameter of the point, so a run stored under it is the
                # same point; store_run still never lets a non-converged run replace a converged one
                store_run(out, name, curves, identity=identities[name],
                          attrs={"sweep_kind": kind, "sweep_point": json.dumps(params, sort_keys=True, default=str)},
                          overwrite=True)
                computed.append(name)
                # "kept": the store holds a converged run of this point from other solver numerics,
                # and this one did not converge; the point is reported as not converged (the older
                # run stays in the store, and a resume recomputes the point)
                converged[name] = bool(curves.converged)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=len(failed))
        if bar is not None:
            bar.close()
    finally:
        if close is not None:
            close()
    return SweepResult(out=str(out), names=tuple(names), computed=tuple(computed), skipped=skipped,
                       failed=failed, invalid=tuple(invalid), seconds=time.perf_counter() - start,
                       converged={n: converged[n] for n in names if n in converged})
