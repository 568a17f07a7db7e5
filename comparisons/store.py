"""HDF5 storage of every kind of run: one file format, one atomic writer, one schema.

Three kinds of record share a file (schema in ``docs/hdf5_schema.md``, version
:data:`SCHEMA_VERSION`; every group written by this module carries ``record_type`` and
``schema_version`` attributes)::

    /                        attrs: format = "grokking-theory/runs/1", schema_version
    /runs/<name>/            record_type "curves": theory or committee simulation
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
    /runs/<name>/            record_type "history": training history of a neural system
        step                 (T,)        optimiser steps, attached as dimension scale
        train_loss, val_loss, train_accuracy, val_accuracy, param_norm   (T,)
        extras/<key>         further series (each with its own axis)
        attrs: kind = "neural:<system>", system, parameters, settings, seconds, message, seed,
               provenance, complete
    /records/<name>/         record_type "record": named arrays of a Bayesian/kernel experiment
        <key> or <group>/<key>   arrays (nested mappings become groups)
        attrs: the caller's attributes (JSON for lists and mappings), provenance, complete

Runs without ``record_type`` were written by schema version 1 (before histories had their own
layout): neural runs then used the curves layout with ``overlap`` holding the parameter norm;
they still load, with :func:`read_run` and with :func:`read_history`.

Atomicity (:mod:`dmft.atomic`): every write goes into a copy of the file, which then replaces the
original with ``os.replace``. A process killed mid-write leaves the original file, with all its
earlier runs, untouched; the stray temporary copy is never read, and the next writer deletes it.
An exclusive ``fcntl`` lock on ``<file>.lock`` serialises concurrent writers.

Reading: :func:`read_run` / :func:`load` return :class:`~dmft.result.LearningCurves` (a history
through :meth:`TrainingHistory.to_curves`); :func:`read_history` returns the
:class:`~empirical.neural.history.TrainingHistory`; :func:`read_record` the arrays and attributes
of a record; :func:`to_xarray` gives an ``xarray.Dataset`` view; :func:`merge_stores`
(``dmft merge``) combines the one-file-per-worker output of a sweep.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Iterator, Mapping

import h5py
import numpy as np

from dmft.atomic import atomic_replace, file_lock, remove_stale_temporaries
from dmft.provenance import provenance
from dmft.result import DECOMPOSITION_TERMS, LearningCurves
from dmft.parameters import InvalidParameterError
from empirical.neural.history import TrainingHistory, history_from_curves

__all__ = [
    "write_run",
    "read_run",
    "list_runs",
    "load",
    "merge_stores",
    "to_xarray",
    "write_history",
    "read_history",
    "write_record",
    "read_record",
    "list_records",
    "StoreError",
    "RunConflictError",
    "check_writable",
    "identity_digest",
    "stored_run_info",
    "store_run",
    "file_lock",
    "SCHEMA_VERSION",
]

#: Version of the layout written by this module (1: before ``record_type``; 2: histories and
#: records with their own documented layout).
SCHEMA_VERSION = 2
_CURVES = ("train_loss", "test_loss", "overlap", "cov", "decomposition")
#: Optional Monte Carlo standard errors of a curves run (``LearningCurves.SEM_FIELDS``).
_SEM = ("train_loss_sem", "test_loss_sem", "overlap_sem", "cov_sem")
_HISTORY = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "param_norm")
_FORMAT = "grokking-theory/runs/1"
#: Attributes HDF5 itself uses to tie datasets to dimension scales (never copied verbatim).
_SCALE_ATTRS = ("DIMENSION_LIST", "REFERENCE_LIST", "CLASS", "NAME")


class StoreError(RuntimeError):
    """A file is missing, corrupt, not a grokking-theory store, or cannot be written."""


class RunConflictError(InvalidParameterError):
    """A run name already holds a different run (other parameters or settings) in the store.

    Raised instead of replacing it silently: choose another name or pass ``overwrite=True``
    (``--overwrite``). An invalid-input error (CLI exit 2), raised before any computation.
    """


def identity_digest(request: Mapping) -> str:
    """Short digest (12 hex digits) of everything that shaped a run.

    ``request`` maps every parameter and numerical setting of the run (unset options as
    ``None``) to its value; two runs with the same digest are the same computation. Stored as
    the run's ``identity`` attribute; default run names end in it.
    """
    return hashlib.sha1(_json(dict(request)).encode()).hexdigest()[:12]


def check_writable(path: str | os.PathLike) -> None:
    """Refuse, before any computation, a store path that a later write would fail on.

    Raises :class:`StoreError` (one line naming the path) when ``path`` is a folder, lies under
    a file, is in a folder that cannot be created or written, or exists but is not a readable
    grokking-theory store (a text file, a truncated or random-bytes ``.h5``).
    """
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path}: is a folder, not an HDF5 store")
    parent = path.parent if str(path.parent) else Path(".")
    probe = parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise StoreError(f"{path}: cannot be created, {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise StoreError(f"{path}: cannot write in {probe} (permission denied)")
    if path.exists():
        if not os.access(path, os.R_OK):
            raise StoreError(f"{path}: cannot read the existing store (permission denied)")
        _open_checked(path, "r").close()


def stored_run_info(path: str | os.PathLike, name: str) -> dict | None:
    """``{"identity", "converged", "complete"}`` of run ``name`` in ``path``, or None if absent.

    ``identity`` is None for runs written before identities were recorded.
    """
    path = Path(path)
    if not path.exists():
        return None
    with _open_checked(path, "r") as handle:
        runs = handle.get("runs", {})
        if name not in runs:
            return None
        a = runs[name].attrs
        identity = a.get("identity")
        return {"identity": None if identity is None else str(identity),
                "converged": bool(a.get("converged", True)), "complete": bool(a.get("complete", False))}


def store_run(path: str | os.PathLike, name: str, curves: LearningCurves, *, identity: str,
              attrs: Mapping | None = None, overwrite: bool = False) -> str:
    """Store ``curves`` as run ``name`` without ever replacing another run silently.

    Parameters
    ----------
    identity : str
        :func:`identity_digest` of the run's parameters and settings (stored as ``identity``).
    overwrite : bool
        Replace a complete run of that name made with other parameters or settings.

    Returns
    -------
    str
        ``"stored"``; or ``"kept"`` when ``curves`` did not converge and the store already holds a
        converged run of that name (a non-converged run never replaces a converged one, not even
        with ``overwrite``): nothing is written then.

    Raises
    ------
    RunConflictError
        ``name`` holds a complete run of another identity and ``overwrite`` is false.
    """
    _check_name("run", name)
    try:
        with _atomic_update(Path(path)) as handle:
            runs = handle["runs"]
            if name in runs and bool(runs[name].attrs.get("complete", False)):
                old = runs[name].attrs
                same = old.get("identity") is not None and str(old.get("identity")) == identity
                if not same and not overwrite:
                    raise RunConflictError(
                        f"run name {name!r} already holds a different run in {path} (other parameters or "
                        "settings); choose another run name or pass --overwrite to replace it")
                if bool(old.get("converged", True)) and not curves.converged:
                    raise _KeepExisting()
            _write_group(handle, name, curves, {**dict(attrs or {}), "identity": identity})
    except _KeepExisting:  # the atomic update was abandoned: the file is untouched
        return "kept"
    return "stored"


class _KeepExisting(Exception):
    """Abandon an atomic update: the store keeps what it holds."""


def _json(value) -> str:
    def default(o):
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        return str(o)

    return json.dumps(value, default=default, sort_keys=True)


def _set_attrs(group: h5py.Group, attrs: Mapping) -> None:
    """Scalars as HDF5 attributes, everything else as JSON text."""
    for key, value in attrs.items():
        group.attrs[key] = value if isinstance(value, (str, int, float, bool, np.generic)) else _json(value)


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


def _check_name(kind: str, name: str) -> None:
    if not name or "/" in name:
        raise InvalidParameterError(f"{kind} name must be a non-empty string without '/', got {name!r}")


def _new_group(parent: h5py.Group, name: str, record_type: str) -> h5py.Group:
    """A fresh group ``name`` (replacing one of that name), flagged incomplete until written."""
    if name in parent:
        del parent[name]
    group = parent.create_group(name)
    group.attrs["complete"] = False
    group.attrs["record_type"] = record_type
    group.attrs["schema_version"] = SCHEMA_VERSION
    return group


def _finish(group: h5py.Group) -> None:
    group.file.flush()
    group.attrs["complete"] = True  # written last: an interrupted run never looks complete


def _seed_of(settings: Mapping) -> int:
    """The ``seed`` attribute: ``settings["seed"]``; for an average over seeds (settings ``seeds``, e.g.
    :func:`empirical.committee.machine.average`) the first of them; -1 when the run has none."""
    if settings.get("seed") is not None:
        return int(settings["seed"])
    seeds = _averaged_seeds(settings)
    return seeds[0] if seeds else -1


def _averaged_seeds(settings: Mapping) -> list[int] | None:
    """The seeds of a run averaged over seeds (settings ``seeds`` and no ``seed``), else None."""
    seeds = settings.get("seeds")
    if settings.get("seed") is not None or not isinstance(seeds, (list, tuple, np.ndarray)):
        return None
    return [int(s) for s in seeds if s is not None]


def _seed_attrs(settings: Mapping) -> dict:
    """``seed`` (:func:`_seed_of`) and, for a run averaged over seeds, ``seeds`` (the list, as JSON)."""
    seeds = _averaged_seeds(settings)
    return {"seed": _seed_of(settings), **({"seeds": seeds} if seeds else {})}


def _write_group(root: h5py.Group, name: str, curves: LearningCurves, attrs: Mapping) -> None:
    group = _new_group(root.require_group("runs"), name, "curves")
    t = group.create_dataset("t", data=curves.t)
    t.make_scale("t")
    for key in _CURVES:
        ds = group.create_dataset(key, data=getattr(curves, key))
        ds.dims[0].attach_scale(t)
    for key in _SEM:
        value = getattr(curves, key, None)
        if value is not None:
            ds = group.create_dataset(key, data=value)
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
        **_seed_attrs(curves.settings),
    }
    _set_attrs(group, {**meta, **provenance(), **dict(attrs)})
    _finish(group)


def write_run(path: str | os.PathLike, name: str, curves: LearningCurves, attrs: Mapping | None = None) -> None:
    """Store ``curves`` as run ``name`` in ``path`` (created if absent), atomically.

    A run of the same name is replaced. Earlier runs survive any interruption.
    """
    _check_name("run", name)
    with _atomic_update(Path(path)) as handle:
        _write_group(handle, name, curves, attrs or {})


def _write_history_group(root: h5py.Group, name: str, history: TrainingHistory, attrs: Mapping | None = None) -> None:
    group = _new_group(root.require_group("runs"), name, "history")
    step = group.create_dataset("step", data=history.step)
    step.make_scale("step")
    for key in _HISTORY:
        ds = group.create_dataset(key, data=getattr(history, key))
        ds.dims[0].attach_scale(step)
    if history.extras:
        extras = group.create_group("extras")
        for key, value in history.extras.items():
            extras.create_dataset(key, data=value)
    meta = {
        "kind": f"neural:{history.system}",
        "system": history.system,
        "parameters": _json(history.parameters),
        "settings": _json(history.settings),
        "seconds": float(history.seconds),
        "message": history.message,
        **_seed_attrs(history.settings),
    }
    _set_attrs(group, {**meta, **provenance(), **dict(attrs or {})})
    _finish(group)


def store_history(path: str | os.PathLike, name: str, history: TrainingHistory, *, identity: str,
                  attrs: Mapping | None = None, overwrite: bool = False) -> None:
    """Store a neural system's ``history`` as run ``name`` (layout "history") with its ``identity``,
    never replacing another run silently: :func:`store_run` for training histories.

    Raises
    ------
    RunConflictError
        ``name`` holds a complete run of another identity and ``overwrite`` is false.
    """
    _check_name("run", name)
    with _atomic_update(Path(path)) as handle:
        old = handle["runs"].get(name)
        if old is not None and bool(old.attrs.get("complete", False)) and not overwrite \
                and str(old.attrs.get("identity")) != identity:
            raise RunConflictError(
                f"run name {name!r} already holds a different run in {path} (other parameters or settings); "
                "choose another run name or pass --overwrite to replace it")
        _write_history_group(handle, name, history, {**dict(attrs or {}), "identity": identity})


def write_history(path: str | os.PathLike, name: str, history: TrainingHistory) -> None:
    """Store the training history of a neural system as run ``name`` (atomic; layout "history")."""
    _check_name("run", name)
    with _atomic_update(Path(path)) as handle:
        _write_history_group(handle, name, history)


@contextlib.contextmanager
def _atomic_update(path: Path) -> Iterator[h5py.File]:
    """Yield a writable copy of ``path`` that replaces it atomically when the block succeeds.

    The lock on ``<path>.lock`` is held throughout, so only one writer (process or thread)
    updates the file at a time. If the block raises or the process dies, ``path`` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path):
        remove_stale_temporaries(path)
        existed = path.exists()
        if existed:
            _open_checked(path, "r").close()  # refuse to overwrite a foreign/corrupt file
        mode = stat.S_IMODE(path.stat().st_mode) if existed else _default_file_mode()
        with atomic_replace(path, copy_existing=existed) as tmp:
            with h5py.File(tmp, "a" if existed else "w") as handle:
                handle.attrs["format"] = _FORMAT
                handle.attrs["schema_version"] = SCHEMA_VERSION
                handle.require_group("runs")
                yield handle
            # the temporary is created private (0600); the store gets ordinary permissions: those
            # of the file it replaces, or 0666 less the umask for a new one, as open() would give
            os.chmod(tmp, mode)


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


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


def _record_type(group: h5py.Group) -> str:
    """``"curves"``, ``"history"`` or ``"record"``; groups of schema version 1 are curves."""
    return str(group.attrs.get("record_type", "curves"))


def _read_group(path: Path, name: str, group: h5py.Group) -> LearningCurves:
    """One complete run group as :class:`LearningCurves` (a history through ``to_curves``)."""
    if _record_type(group) == "history":
        return _read_history_group(path, name, group).to_curves()
    return _read_curves_group(path, name, group)


def _read_curves_group(path: Path, name: str, group: h5py.Group) -> LearningCurves:
    """Rebuild :class:`LearningCurves` from one complete run group of the curves layout."""
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
            **{key: group[key][()] for key in _SEM if key in group},
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
        return _read_group(path, name, _complete_run(path, handle, name))


def _read_history_group(path: Path, name: str, group: h5py.Group) -> TrainingHistory:
    """Rebuild :class:`TrainingHistory` from one complete run group of the history layout."""
    try:
        a = group.attrs
        extras = {k: v[()] for k, v in group["extras"].items()} if "extras" in group else {}
        return TrainingHistory(
            system=str(a["system"]),
            step=group["step"][()],
            **{key: group[key][()] for key in _HISTORY},
            parameters=json.loads(a["parameters"]),
            settings=json.loads(a["settings"]),
            seconds=float(a["seconds"]),
            message=str(a["message"]),
            extras=extras,
        )
    except (KeyError, ValueError, TypeError, OSError) as exc:
        raise StoreError(f"{path}: run {name!r} is malformed ({exc})") from exc


def _complete_run(path: Path, handle: h5py.File, name: str) -> h5py.Group:
    if "runs" not in handle or name not in handle["runs"]:
        raise StoreError(f"{path}: no run named {name!r}")
    group = handle["runs"][name]
    if not bool(group.attrs.get("complete", False)):
        raise StoreError(f"{path}: run {name!r} is incomplete")
    return group


def read_history(path: str | os.PathLike, name: str) -> TrainingHistory:
    """Load the training history stored as run ``name``.

    Reads the history layout and, for files of schema version 1, a neural run stored in the
    curves layout (``kind`` ``"neural:<system>"``, parameter norm in ``overlap``).

    Raises
    ------
    StoreError
        As :func:`read_run`, or the run is not a neural training history.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    with _open_checked(path, "r") as handle:
        group = _complete_run(path, handle, name)
        if _record_type(group) == "history":
            return _read_history_group(path, name, group)
        curves = _read_curves_group(path, name, group)
    try:
        return history_from_curves(curves)
    except (KeyError, ValueError) as exc:
        raise StoreError(f"{path}: run {name!r} is not a neural training history ({exc})") from exc


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
    _copy_tree(source, group)
    axis, series = ("step", _HISTORY) if _record_type(source) == "history" else ("t", _CURVES + _SEM)
    if axis in group:
        group[axis].make_scale(axis)
        for key in series:
            if key in group:
                group[key].dims[0].attach_scale(group[axis])
    for attr, value in source.attrs.items():
        if attr != "complete":
            group.attrs[attr] = value
    group.file.flush()
    group.attrs["complete"] = True


def _copy_tree(src: h5py.Group, dst: h5py.Group) -> None:
    """Copy the datasets and subgroups of ``src`` into ``dst`` (dataset attributes too, less the
    dimension-scale references, which would point into the source file)."""
    for key, item in src.items():
        if isinstance(item, h5py.Group):
            _copy_tree(item, dst.create_group(key))
        else:
            ds = dst.create_dataset(key, data=item[()])
            for attr, value in item.attrs.items():
                if attr not in _SCALE_ATTRS:
                    ds.attrs[attr] = value


def _copy_record(source: h5py.Group, records: h5py.Group, name: str) -> None:
    """Copy a record group into ``records`` with all its attributes, ``complete`` written last."""
    if name in records:
        del records[name]
    group = records.create_group(name)
    group.attrs["complete"] = False
    _copy_tree(source, group)
    for attr, value in source.attrs.items():
        if attr != "complete":
            group.attrs[attr] = value
    group.file.flush()
    group.attrs["complete"] = True


#: Attributes that say when and by which code a group was written, not what it holds.
_PROVENANCE_ATTRS = ("created", "package_version", "git_revision", "complete")


def _record_signature(group: h5py.Group) -> tuple:
    """What tells two stored records apart: a digest of their attributes (less the provenance of
    the write) and of every dataset's bytes."""
    digest = hashlib.sha256()
    for key in sorted(group.attrs):
        if key not in _PROVENANCE_ATTRS:
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(group.attrs[key]).tobytes())
    _digest_datasets(digest, group)
    return ("content", digest.hexdigest())


def _digest_datasets(digest, group: h5py.Group) -> None:
    """Feed the name and bytes of every dataset under ``group`` into ``digest`` (hashlib)."""
    def add(name, item):
        if isinstance(item, h5py.Dataset):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(item[()]).tobytes())

    group.visititems(add)


def _merge_records(source: Path, src: h5py.File, records: h5py.Group, out: Path, existing: set,
                   origin: dict, report: dict, overwrite: bool) -> None:
    """Copy the complete records of one input into ``records`` (the rules of the runs: the same
    record found twice is copied once, a different one under a taken name refused)."""
    src_records = src.get("records", {})
    for name in sorted(src_records):
        group = src_records[name]
        if not bool(group.attrs.get("complete", False)):
            report["incomplete"].append(name)
            continue
        signature = _record_signature(group)
        if name in origin:
            if origin[name][1] == signature:
                report["skipped"].append(name)
                continue
            raise RunConflictError(f"{source}: record {name!r} also present in {origin[name][0]} as a different "
                                   "record; rename one of them")
        origin[name] = (source, signature)
        if name in existing and not overwrite:
            if _record_signature(records[name]) != signature:
                raise RunConflictError(f"{source}: record {name!r} differs from the record of that name in {out}; "
                                       "rename it, or merge with --overwrite to replace it")
            report["skipped"].append(name)
            continue
        _copy_record(group, records, name)
        report["copied"].append(name)


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
        Replace runs that ``out`` already holds complete; by default the identical run is kept
        (so that a repeated merge is a no-op, like a resumed sweep) and a different one refused.

    Returns
    -------
    dict
        ``{"copied": [...], "skipped": [...], "incomplete": [...]}`` run names (incomplete runs
        of the inputs are never copied), and ``"records"``: the same three lists for the records
        (``/records``, e.g. of ``dmft train bayes``), merged by the same rules (two records are the
        same when their attributes, less the time and code of the write, and arrays agree).

    Raises
    ------
    StoreError
        A source is unreadable.
    RunConflictError
        Two sources hold different runs under one name, or a source holds a run that differs
        from the run of that name in ``out`` (without ``overwrite``).
        Runs are the same when their ``identity`` digests agree (runs written before it
        existed: their parameters, settings and seed); the same run found twice is copied once.
    """
    out = Path(out)
    sources = [Path(p) for p in inputs]
    if not sources:
        raise InvalidParameterError("inputs must name at least one store to merge, got none")
    for source in sources:
        if source.resolve() == out.resolve():
            raise InvalidParameterError(f"inputs must not include the output file {out}")
        if not source.exists():
            raise StoreError(f"{source}: no such file")
        _open_checked(source, "r").close()
    origin: dict[str, tuple[Path, tuple]] = {}
    report = {"copied": [], "skipped": [], "incomplete": []}
    record_report = {"copied": [], "skipped": [], "incomplete": []}
    record_origin: dict[str, tuple[Path, tuple]] = {}
    with _atomic_update(out) as handle:
        runs = handle["runs"]
        existing = {n for n in runs if bool(runs[n].attrs.get("complete", False))}
        records = handle.require_group("records")
        existing_records = {n for n in records if bool(records[n].attrs.get("complete", False))}
        for source in sources:
            with _open_checked(source, "r") as src:
                _merge_records(source, src, records, out, existing_records, record_origin, record_report, overwrite)
                src_runs = src.get("runs", {})
                for run in sorted(src_runs):
                    group = src_runs[run]
                    if not bool(group.attrs.get("complete", False)):
                        report["incomplete"].append(run)
                        continue
                    if run in origin:
                        if _same_run(group, origin[run][1]):
                            report["skipped"].append(run)          # the identical run twice: once is enough
                            continue
                        raise RunConflictError(
                            f"{source}: run {run!r} also present in {origin[run][0]} as a different run; "
                            "rename one of them"
                        )
                    origin[run] = (source, _run_signature(group))
                    if run in existing and not overwrite:
                        if not _same_run(group, _run_signature(runs[run])):
                            raise RunConflictError(
                                f"{source}: run {run!r} differs from the run of that name in {out}; rename it, "
                                "or merge with --overwrite to replace it"
                            )
                        report["skipped"].append(run)
                        continue
                    _copy_run(group, runs, run)
                    report["copied"].append(run)
        if not len(records):
            del handle["records"]  # no empty group in a store of runs only
    return {**report, "records": record_report}


def _run_signature(group: h5py.Group) -> tuple:
    """What tells two stored runs apart: their ``identity`` digest where they have one, else (runs
    written before it existed, or by :func:`write_run` without one) a digest of their parameters,
    settings and every dataset's bytes."""
    attrs = group.attrs
    if "identity" in attrs:
        return ("identity", str(attrs["identity"]))
    digest = hashlib.sha256()
    for key in ("parameters", "settings", "seed"):
        digest.update(str(attrs.get(key, "")).encode())
    _digest_datasets(digest, group)
    return ("content", digest.hexdigest())


def _same_run(group: h5py.Group, signature: tuple) -> bool:
    return _run_signature(group) == signature


def _write_arrays(group: h5py.Group, arrays: Mapping) -> None:
    for key, value in arrays.items():
        if "/" in str(key):
            raise ValueError(f"array names must not contain '/', got {key!r}")
        if isinstance(value, Mapping):
            _write_arrays(group.create_group(str(key)), value)
        else:
            arr = np.asarray(value)
            if arr.dtype.kind in "OU":
                arr = arr.astype("S")
            group.create_dataset(str(key), data=arr)


def write_record(path: str | os.PathLike, name: str, arrays: Mapping, attrs: Mapping | None = None) -> None:
    """Store the named ``arrays`` (nested mappings allowed) as record ``name``, atomically.

    Records hold what the Bayesian and kernel experiments return (curves per seed, grids,
    tables) under ``/records``; :func:`list_runs` does not list them. A record of the same name
    is replaced; earlier runs and records survive any interruption.

    Like every run, a record carries a ``seed`` attribute: the caller's, else the first of its
    ``seeds``, else -1.
    """
    _check_name("record", name)
    attrs = dict(attrs or {})
    if attrs.get("seed") is None:
        attrs["seed"] = _seed_of({"seeds": attrs.get("seeds")})
    with _atomic_update(Path(path)) as handle:
        group = _new_group(handle.require_group("records"), name, "record")
        _write_arrays(group, arrays)
        _set_attrs(group, {**provenance(), **attrs})
        _finish(group)


def _read_arrays(group: h5py.Group) -> dict:
    return {key: _read_arrays(item) if isinstance(item, h5py.Group) else item[()] for key, item in group.items()}


def list_records(path: str | os.PathLike) -> list[str]:
    """Names of the complete records in ``path``."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    with _open_checked(path, "r") as handle:
        records = handle.get("records", {})
        return sorted(n for n in records if bool(records[n].attrs.get("complete", False)))


def read_record(path: str | os.PathLike, name: str) -> tuple[dict, dict]:
    """Load record ``name``: ``(arrays, attrs)``; JSON lists and mappings in attributes are decoded."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    with _open_checked(path, "r") as handle:
        if "records" not in handle or name not in handle["records"]:
            raise StoreError(f"{path}: no record named {name!r}")
        group = handle["records"][name]
        if not bool(group.attrs.get("complete", False)):
            raise StoreError(f"{path}: record {name!r} is incomplete")
        attrs = {}
        for key, value in group.attrs.items():
            if isinstance(value, str) and value[:1] in "[{":
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            attrs[key] = value.item() if isinstance(value, np.generic) else value
        return _read_arrays(group), attrs


def to_xarray(curves):
    """An :mod:`xarray` view of learning curves (needs the optional ``xarray`` package).

    Parameters
    ----------
    curves : LearningCurves, or mapping of name to LearningCurves
        One run, or several (for example ``load(path)``).

    Returns
    -------
    xarray.Dataset
        Variables ``train_loss``, ``test_loss`` (t), ``overlap`` (t, i), ``cov`` (t, i, j),
        ``decomposition`` (t, term), the standard errors present (``*_sem``, as their curve) and
        every extra array whose leading axis is time: the two-time kernels ``C_w``, ``R_w``,
        ``C_g``, ``R_g`` as (t, s, i, j) with s the second time on the same grid, ``cross_cov``
        as (t, i, j); ``parameters``/``settings`` flattened into ``attrs``. Several runs are
        concatenated along a new ``run`` dimension with an outer join on ``t`` (NaN where a run
        has no point).
    """
    try:
        import xarray as xr
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "to_xarray needs the optional package xarray: pip install 'grokking-theory[xarray]'"
        ) from exc
    def dims_of(run: LearningCurves, key: str, value: np.ndarray) -> tuple[str, ...]:
        """Dimension names of an extra whose leading axis is time.

        Two-time kernels (``C_w``, ``R_w``, ``C_g``, ``R_g``, ... of shape (T, T, N, N) or (T, T))
        get (t, s, i, j): the second time s on the same grid, then the hidden units i, j; one-time
        (T, N, N) arrays (t, i, j); anything else its own names.
        """
        T, n = run.t.shape[0], run.overlap.shape[1]
        shape = value.shape
        if len(shape) >= 2 and shape[1] == T and shape[2:] in ((), (n, n)):
            return ("t", "s", "i", "j")[: len(shape)]
        if shape[1:] in ((n,), (n, n)):
            return ("t", "i", "j")[: len(shape)]
        return ("t",) + tuple(f"{key}_dim{i}" for i in range(1, len(shape)))

    def one(run: LearningCurves):
        n = run.overlap.shape[1]
        data = {
            "train_loss": (("t",), run.train_loss),
            "test_loss": (("t",), run.test_loss),
            "overlap": (("t", "i"), run.overlap),
            "cov": (("t", "i", "j"), run.cov),
            "decomposition": (("t", "term"), run.decomposition),
        }
        for key in _SEM:
            value = getattr(run, key, None)
            if value is not None:
                data[key] = (data[key[:-4]][0], value)
        for key, value in run.extras.items():
            value = np.asarray(value)
            if value.ndim >= 1 and value.shape[0] == run.t.shape[0] and key not in data:
                data[key] = (dims_of(run, key, value), value)
        attrs = {"kind": run.kind, "converged": int(run.converged), "message": run.message}
        for prefix, mapping in (("parameters", run.parameters), ("settings", run.settings)):
            for key, value in mapping.items():
                attrs[f"{prefix}.{key}"] = value if isinstance(value, (int, float, str)) else _json(value)
        return xr.Dataset(
            data,
            coords={"t": run.t, "s": run.t, "i": np.arange(n), "j": np.arange(n), "term": list(DECOMPOSITION_TERMS)},
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
