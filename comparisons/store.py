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
its earlier runs, untouched; the stray temporary copy is never read. An exclusive ``fcntl``
lock on ``<file>.lock`` serialises concurrent writers (processes or threads).
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

__all__ = ["write_run", "read_run", "list_runs", "StoreError", "file_lock"]

_CURVES = ("train_loss", "test_loss", "overlap", "cov", "decomposition")
_FORMAT = "grokking-theory/runs/1"


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
        raise StoreError(f"{path}: not a readable HDF5 file ({exc})") from exc
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
    with file_lock(path):
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
                _write_group(handle, name, curves, attrs or {})
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


def read_run(path: str | os.PathLike, name: str) -> LearningCurves:
    """Load run ``name`` from ``path`` as :class:`LearningCurves`."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    with _open_checked(path, "r") as handle:
        if "runs" not in handle or name not in handle["runs"]:
            raise StoreError(f"{path}: no run named {name!r}")
        group = handle["runs"][name]
        if not bool(group.attrs.get("complete", False)):
            raise StoreError(f"{path}: run {name!r} is incomplete")
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
