"""HDF5 storage of theory and simulation runs, atomic per run.

Layout (see ``docs/hdf5_schema.md``)::

    /runs/<name>/            group, one per run
        t                    (T,)        time axis, attached as dimension scale
        train_loss, test_loss (T,)
        overlap              (T, N)
        cov                  (T, N, N)
        decomposition        (T, 3)      variance, alignment, linear
        residual_history     (iterations,)
        extras/<key>         further arrays
        attrs: kind, parameters (JSON), settings (JSON), converged, iterations, residual,
               seconds, message, seed, package_version, git_revision, created,
               complete (written last)

Atomicity: a run is written into a copy of the file, which then replaces the original with
``os.replace`` (atomic on POSIX). A process killed mid-write leaves the original file, with all
its earlier runs, untouched; the stray temporary copy is never read, and the next writer
deletes it. An exclusive ``fcntl`` lock on ``<file>.lock`` serialises concurrent writers
(processes or threads); the kernel releases it when a writer dies.

Reading: :func:`read_run` / :func:`load` return :class:`~dmft.result.LearningCurves`;
:func:`to_xarray` gives an ``xarray.Dataset`` view; :func:`merge_stores` (``dmft merge``)
combines the one-file-per-worker output of a sweep.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Mapping

import h5py
import numpy as np

from dmft.provenance import provenance
from dmft.result import LearningCurves

__all__ = [
    "write_run",
    "read_run",
    "list_runs",
    "load",
    "merge_stores",
    "to_xarray",
    "StoreError",
    "file_lock",
]

_CURVES = ("train_loss", "test_loss", "overlap", "cov", "decomposition")
_FORMAT = "grokking-theory/runs/1"
#: Attributes HDF5 itself uses to tie datasets to dimension scales (never copied verbatim).
_SCALE_ATTRS = ("DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME")


class StoreError(RuntimeError):
    """A file is missing, corrupt, or not a grokking-theory store."""


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive advisory lock on ``<path>.lock`` for the duration of the block."""
    lock_path = Path(str(path) + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _json(value) -> str:
    def default(o):
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        return str(o)

    return json.dumps(value, default=default, sort_keys=True)


def _open_checked(path: Path, mode: str) -> h5py.File:
    try:
        handle = h5py.File(path, mode)
    except OSError as exc:
        raise StoreError(f"{path}: not a readable HDF5 file, corrupt or truncated ({exc})") from exc
    fmt = handle.attrs.get("format")
    if fmt is not None and fmt != _FORMAT:
        handle.close()
        raise StoreError(f"{path}: not a grokking-theory store (format {fmt!r})")
    if fmt is None and len(handle.keys()) > 0 and "runs" not in handle:
        handle.close()
        raise StoreError(f"{path}: HDF5 file without a grokking-theory 'runs' group")
    return handle


def _write_group(root: h5py.Group, name: str, curves: LearningCurves, attrs: Mapping) -> None:
    runs = root.require_group("runs")
    if name in runs:
        del runs[name]
    group = runs.create_group(name)
    group.attrs["complete"] = False
    t = group.create_dataset("t", data=curves.t)
    t.make_scale("t")
    for key in _CURVES:
        ds = group.create_dataset(key, data=getattr(curves, key))
        ds.dims[0].attach_scale(t)
    group.create_dataset("residual_history", data=curves.residual_history)
    if curves.extras:
        extras = group.create_group("extras")
        for key, value in curves.extras.items():
            extras.create_dataset(key, data=value)
    meta = {
        "kind": curves.kind,
        "parameters": _json(curves.parameters),
        "settings": _json(curves.settings),
        "converged": bool(curves.converged),
        "iterations": int(curves.iterations),
        "residual": float(curves.residual),
        "seconds": float(curves.seconds),
        "message": curves.message,
        "seed": int(curves.settings.get("seed", -1)) if curves.settings.get("seed") is not None else -1,
    }
    meta.update(provenance())
    for key, value in {**meta, **dict(attrs)}.items():
        group.attrs[key] = value if isinstance(value, (str, int, float, bool, np.generic)) else _json(value)
    group.file.flush()
    group.attrs["complete"] = True  # written last: an interrupted run never looks complete


def write_run(path: str | os.PathLike, name: str, curves: LearningCurves, attrs: Mapping | None = None) -> None:
    """Store ``curves`` as run ``name`` in ``path`` (created if absent), atomically.

    A run of the same name is replaced. Earlier runs survive any interruption.
    """
    if not name or "/" in name:
        raise ValueError(f"run name must be a non-empty string without '/', got {name!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _atomic_update(path) as handle:
        _write_group(handle, name, curves, attrs or {})


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary copies left by writers that were killed (call with the lock held)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


@contextlib.contextmanager
def _atomic_update(path: Path) -> Iterator[h5py.File]:
    """Yield a writable copy of ``path`` that replaces it atomically when the block succeeds.

    The lock on ``<path>.lock`` is held throughout, so only one writer (process or thread)
    updates the file at a time. If the block raises or the process dies, ``path`` is untouched.
    """
    with file_lock(path):
        _remove_stale_temporaries(path)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if path.exists():
                _open_checked(path, "r").close()  # refuse to overwrite a foreign/corrupt file
                shutil.copyfile(path, tmp)
                mode = "a"
            else:
                mode = "w"
            with h5py.File(tmp, mode) as handle:
                handle.attrs["format"] = _FORMAT
                handle.require_group("runs")
                yield handle
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


def list_runs(path: str | os.PathLike, *, include_incomplete: bool = False) -> list[str]:
    """Names of the runs in ``path`` (complete ones only unless asked)."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    with _open_checked(path, "r") as handle:
        runs = handle.get("runs", {})
        return sorted(
            name for name in runs if include_incomplete or bool(runs[name].attrs.get("complete", False))
        )


def _read_group(path: Path, name: str, group: h5py.Group) -> LearningCurves:
    """Rebuild :class:`LearningCurves` from one complete run group."""
    try:
        a = group.attrs
        extras = {k: v[()] for k, v in group["extras"].items()} if "extras" in group else {}
        return LearningCurves(
            kind=str(a["kind"]),
            t=group["t"][()],
            train_loss=group["train_loss"][()],
            test_loss=group["test_loss"][()],
            overlap=group["overlap"][()],
            cov=group["cov"][()],
            decomposition=group["decomposition"][()],
            parameters=json.loads(a["parameters"]),
            settings=json.loads(a["settings"]),
            converged=bool(a["converged"]),
            iterations=int(a["iterations"]),
            residual=float(a["residual"]),
            residual_history=group["residual_history"][()],
            seconds=float(a["seconds"]),
            message=str(a["message"]),
            extras=extras,
        )
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise StoreError(f"{path}: run {name!r} is malformed ({exc})") from exc


def read_run(path: str | os.PathLike, name: str) -> LearningCurves:
    """Load run ``name`` from ``path`` as :class:`LearningCurves`.

    Raises
    ------
    StoreError
        The file is missing, corrupt or foreign, or the run is absent, incomplete or malformed;
        the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    with _open_checked(path, "r") as handle:
        if "runs" not in handle or name not in handle["runs"]:
            raise StoreError(f"{path}: no run named {name!r}")
        group = handle["runs"][name]
        if not bool(group.attrs.get("complete", False)):
            raise StoreError(f"{path}: run {name!r} is incomplete")
        return _read_group(path, name, group)


def load(path: str | os.PathLike, name: str | None = None):
    """Load one run, or every complete run, of a store (docs/hdf5_schema.md).

    Parameters
    ----------
    path : path-like
        The HDF5 store.
    name : str, optional
        Run to load. When omitted, every complete run is loaded (incomplete runs, left by an
        interrupted writer of an older layout, are skipped).

    Returns
    -------
    LearningCurves, or dict of str to LearningCurves
        One run when ``name`` is given, else ``{name: curves}`` in sorted name order.
    """
    if name is not None:
        return read_run(path, name)
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    with _open_checked(path, "r") as handle:
        runs = handle.get("runs", {})
        return {
            run: _read_group(path, run, runs[run])
            for run in sorted(runs)
            if bool(runs[run].attrs.get("complete", False))
        }


def _copy_run(source: h5py.Group, runs: h5py.Group, name: str) -> None:
    """Copy a run group into ``runs`` (datasets, attributes, dimension scales), flag last.

    ``h5py.Group.copy`` would leave the dimension-scale references pointing into the source
    file, so datasets are rewritten and the time axis re-attached in the destination.
    """
    if name in runs:
        del runs[name]
    group = runs.create_group(name)
    group.attrs["complete"] = False

    def copy_into(src: h5py.Group, dst: h5py.Group) -> None:
        for key, item in src.items():
            if isinstance(item, h5py.Group):
                copy_into(item, dst.create_group(key))
            else:
                ds = dst.create_dataset(key, data=item[()])
                for attr, value in item.attrs.items():
                    if attr not in _SCALE_ATTRS:
                        ds.attrs[attr] = value

    copy_into(source, group)
    if "t" in group:
        group["t"].make_scale("t")
        for key in _CURVES:
            if key in group:
                group[key].dims[0].attach_scale(group["t"])
    for attr, value in source.attrs.items():
        if attr != "complete":
            group.attrs[attr] = value
    group.file.flush()
    group.attrs["complete"] = True


def merge_stores(out: str | os.PathLike, inputs, *, overwrite: bool = False) -> dict:
    """Merge the complete runs of several stores into ``out`` (the ``dmft merge`` command).

    Used to combine the one-file-per-worker output of distributed sweeps. The merge is one
    atomic update of ``out`` (all runs or none) under its lock; every attribute, including the
    provenance of the original run, is preserved.

    Parameters
    ----------
    out : path-like
        Destination store (created if absent; may be one of ``inputs``' siblings, not an input).
    inputs : sequence of path-like
        Source stores. Each is checked; a corrupt or foreign one raises :class:`StoreError`
        naming it before anything is written.
    overwrite : bool, default False
        Replace runs that ``out`` already holds complete; by default they are kept (so that a
        repeated merge is a no-op, like a resumed sweep).

    Returns
    -------
    dict
        ``{"copied": [...], "skipped": [...], "incomplete": [...]}`` run names (incomplete runs
        of the inputs are never copied).

    Raises
    ------
    StoreError
        A source is unreadable, or two sources hold different runs under one name.
    """
    out = Path(out)
    sources = [Path(p) for p in inputs]
    if not sources:
        raise ValueError("inputs must name at least one store to merge, got none")
    for source in sources:
        if source.resolve() == out.resolve():
            raise ValueError(f"inputs must not include the output file {out}")
        if not source.exists():
            raise StoreError(f"{source}: no such file")
        _open_checked(source, "r").close()
    origin: dict[str, Path] = {}
    report = {"copied": [], "skipped": [], "incomplete": []}
    with _atomic_update(out) as handle:
        runs = handle["runs"]
        existing = {n for n in runs if bool(runs[n].attrs.get("complete", False))}
        for source in sources:
            with _open_checked(source, "r") as src:
                src_runs = src.get("runs", {})
                for run in sorted(src_runs):
                    group = src_runs[run]
                    if not bool(group.attrs.get("complete", False)):
                        report["incomplete"].append(run)
                        continue
                    if run in origin:
                        raise StoreError(
                            f"{source}: run {run!r} also present in {origin[run]}; rename one of them"
                        )
                    origin[run] = source
                    if run in existing and not overwrite:
                        report["skipped"].append(run)
                        continue
                    _copy_run(group, runs, run)
                    report["copied"].append(run)
    return report


def to_xarray(curves):
    """An :mod:`xarray` view of learning curves (needs the optional ``xarray`` package).

    Parameters
    ----------
    curves : LearningCurves, or mapping of name to LearningCurves
        One run, or several (for example ``load(path)``).

    Returns
    -------
    xarray.Dataset
        Variables ``train_loss``, ``test_loss`` (t), ``overlap`` (t, unit), ``cov``
        (t, unit, unit_b), ``decomposition`` (t, term) and every extra array whose leading
        axis is time; ``parameters``/``settings`` flattened into ``attrs``. Several runs are
        concatenated along a new ``run`` dimension with an outer join on ``t`` (NaN where a run
        has no point).
    """
    try:
        import xarray as xr
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "to_xarray needs the optional package xarray: pip install 'grokking-theory[xarray]'"
        ) from exc
    from dmft.result import DECOMPOSITION_TERMS

    def one(run: LearningCurves):
        n = run.overlap.shape[1]
        data = {
            "train_loss": (("t",), run.train_loss),
            "test_loss": (("t",), run.test_loss),
            "overlap": (("t", "unit"), run.overlap),
            "cov": (("t", "unit", "unit_b"), run.cov),
            "decomposition": (("t", "term"), run.decomposition),
        }
        for key, value in run.extras.items():
            value = np.asarray(value)
            if value.ndim >= 1 and value.shape[0] == run.t.shape[0] and key not in data:
                dims = ("t",) + tuple(f"{key}_dim{i}" for i in range(1, value.ndim))
                data[key] = (dims, value)
        attrs = {"kind": run.kind, "converged": int(run.converged), "message": run.message}
        for prefix, mapping in (("parameters", run.parameters), ("settings", run.settings)):
            for key, value in mapping.items():
                attrs[f"{prefix}.{key}"] = value if isinstance(value, (int, float, str)) else _json(value)
        return xr.Dataset(
            data,
            coords={"t": run.t, "unit": np.arange(n), "unit_b": np.arange(n), "term": list(DECOMPOSITION_TERMS)},
            attrs=attrs,
        )

    if isinstance(curves, LearningCurves):
        return one(curves)
    items = dict(curves)
    if not items:
        raise ValueError("curves must hold at least one run, got an empty mapping")
    datasets = [one(run) for run in items.values()]
    return xr.concat(datasets, dim=xr.DataArray(list(items), dims="run", name="run"),
                     join="outer", combine_attrs="drop_conflicts")
