"""Generic named-array records in the package's HDF5 store (atomic, with provenance).

The systems of "Grokking Beyond Neural Networks" (linear regression, GPs, MLP/BNN studies) are not
committee machines: their curves have no overlap, covariance or test-loss decomposition. They are
stored as *records* beside the ``/runs`` of :mod:`comparisons.store`, in the same file format and
with the same atomic machinery (copy, write, ``os.replace``, under the same ``fcntl`` lock)::

    /records/<name>/          group, one per record
        <key>                 dataset (any shape)
        <key>/<subkey>        nested mappings become subgroups
        attrs: the caller's attributes (scalars as is, others as JSON), package_version,
               git_revision, created, complete (written last)

A file may hold both runs and records; :func:`comparisons.store.list_runs` ignores records.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

import h5py
import numpy as np

from comparisons.store import _FORMAT, StoreError, _json, _open_checked, file_lock
from dmft.provenance import provenance

__all__ = ["write_record", "read_record", "list_records"]


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

    A record of the same name is replaced; earlier runs and records survive any interruption.
    """
    if not name or "/" in name:
        raise ValueError(f"record name must be a non-empty string without '/', got {name!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if path.exists():
                _open_checked(path, "r").close()  # refuse to overwrite a foreign or corrupt file
                shutil.copyfile(path, tmp)
                mode = "a"
            else:
                mode = "w"
            with h5py.File(tmp, mode) as handle:
                handle.attrs["format"] = _FORMAT
                records = handle.require_group("records")
                if name in records:
                    del records[name]
                group = records.create_group(name)
                group.attrs["complete"] = False
                _write_arrays(group, arrays)
                for key, value in {**provenance(), **dict(attrs or {})}.items():
                    scalar = isinstance(value, (str, int, float, bool, np.generic))
                    group.attrs[key] = value if scalar else _json(value)
                handle.flush()
                group.attrs["complete"] = True
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


def _read_arrays(group: h5py.Group) -> dict:
    out = {}
    for key, item in group.items():
        out[key] = _read_arrays(item) if isinstance(item, h5py.Group) else item[()]
    return out


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
