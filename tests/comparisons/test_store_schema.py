"""The one store of schema version 2: honest neural histories, records, versions, old files.

Files of schema version 1 (written before issue 15) are built here with h5py directly, group by
group as that code wrote them, and must still load.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from comparisons.store import (SCHEMA_VERSION, StoreError, list_records, list_runs, load, merge_stores,
                               read_history, read_record, read_run, write_history, write_record, write_run)
from dmft.atomic import atomic_replace
from dmft.result import LearningCurves
from empirical.neural.history import TrainingHistory

T = 6


def _history(system="transformer", seed=3) -> TrainingHistory:
    step = np.array([0, 1, 2, 4, 8, 16])
    return TrainingHistory(
        system=system, step=step, train_loss=np.linspace(2, 0.1, T), val_loss=np.linspace(2.5, 0.3, T),
        train_accuracy=np.linspace(0, 1, T), val_accuracy=np.linspace(0, 0.9, T), param_norm=np.linspace(10, 7, T),
        parameters={"modulus": 7, "operator": "+"}, settings={"seed": seed, "device": "cpu"}, seconds=1.5,
        message="ok", extras={"step_loss": np.linspace(3, 0.1, 16)},
    )


def _assert_same_history(a: TrainingHistory, b: TrainingHistory) -> None:
    assert (a.system, a.parameters, a.settings, a.seconds, a.message) == (b.system, b.parameters, b.settings,
                                                                           b.seconds, b.message)
    for key in ("step", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "param_norm"):
        assert_array_equal(getattr(a, key), getattr(b, key))
    assert set(a.extras) == set(b.extras)
    for key in a.extras:
        assert_array_equal(a.extras[key], b.extras[key])


def _assert_same_curves(a: LearningCurves, b: LearningCurves) -> None:
    assert (a.kind, a.parameters, a.settings, a.converged, a.iterations, a.message) == \
        (b.kind, b.parameters, b.settings, b.converged, b.iterations, b.message)
    for key in ("t", "train_loss", "test_loss", "overlap", "cov", "decomposition"):
        assert_array_equal(getattr(a, key), getattr(b, key))
    assert set(a.extras) == set(b.extras)


def test_history_is_stored_with_its_own_fields(tmp_path):
    path, history = tmp_path / "h.h5", _history()
    write_history(path, "run", history)
    with h5py.File(path, "r") as f:
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        group = f["runs/run"]
        assert group.attrs["record_type"] == "history" and group.attrs["schema_version"] == SCHEMA_VERSION
        assert group.attrs["kind"] == "neural:transformer" and group.attrs["seed"] == 3
        assert {"step", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "param_norm"} <= set(group)
        assert not {"overlap", "cov", "decomposition", "t"} & set(group)
        assert group["val_loss"].dims[0][0].name.endswith("/step")
    _assert_same_history(read_history(path, "run"), history)
    assert list_runs(path) == ["run"]
    _assert_same_curves(read_run(path, "run"), history.to_curves())
    _assert_same_curves(load(path)["run"], history.to_curves())


def test_curves_and_records_carry_type_and_version(tmp_path):
    path = tmp_path / "s.h5"
    curves = _history().to_curves()
    write_run(path, "c", curves)
    write_record(path, "r", {"a": np.arange(3), "seed0": {"b": np.ones(2)}}, {"grid": [1, 2]})
    with h5py.File(path, "r") as f:
        assert f["runs/c"].attrs["record_type"] == "curves"
        assert f["records/r"].attrs["record_type"] == "record"
        assert f["records/r"].attrs["schema_version"] == SCHEMA_VERSION
    arrays, attrs = read_record(path, "r")
    assert_array_equal(arrays["seed0"]["b"], np.ones(2)) and attrs["grid"] == [1, 2]
    assert list_records(path) == ["r"] and list_runs(path) == ["c"]
    write_run(path, "theory", _theory())
    with pytest.raises(StoreError, match="not a neural training history"):
        read_history(path, "theory")


def _write_version1_file(path, history: TrainingHistory) -> LearningCurves:
    """A store as the code before schema version 2 wrote it: a neural run in the curves layout,
    a theory run and a record, none with ``record_type`` or ``schema_version``."""
    curves = history.to_curves()
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "grokking-theory/runs/1"
        runs = f.create_group("runs")
        for name, c, extra_attrs in (("neural", curves, {"system": history.system}),
                                     ("theory", _theory(), {})):
            g = runs.create_group(name)
            g.attrs["complete"] = False
            t = g.create_dataset("t", data=c.t)
            t.make_scale("t")
            for key in ("train_loss", "test_loss", "overlap", "cov", "decomposition"):
                g.create_dataset(key, data=getattr(c, key)).dims[0].attach_scale(t)
            g.create_dataset("residual_history", data=c.residual_history)
            if c.extras:
                extras = g.create_group("extras")
                for key, value in c.extras.items():
                    extras.create_dataset(key, data=value)
            attrs = {"kind": c.kind, "parameters": json.dumps(c.parameters, sort_keys=True),
                     "settings": json.dumps(c.settings, sort_keys=True), "converged": bool(c.converged),
                     "iterations": int(c.iterations), "residual": float(c.residual), "seconds": float(c.seconds),
                     "message": c.message, "seed": int(c.settings.get("seed", -1)),
                     "package_version": "0.1.0", "git_revision": "unknown", "created": "2026-01-01T00:00:00Z",
                     **extra_attrs}
            for key, value in attrs.items():
                g.attrs[key] = value
            g.attrs["complete"] = True
        record = f.create_group("records").create_group("old_record")
        record.attrs["complete"] = False
        record.create_dataset("curve", data=np.arange(4.0))
        record.attrs["seeds"] = "[0, 1]"
        record.attrs["complete"] = True
    return curves


def _theory() -> LearningCurves:
    t = np.linspace(0, 1, 4)
    return LearningCurves(kind="online", t=t, train_loss=1 - t / 2, test_loss=1 - t / 3, overlap=np.zeros((4, 2)),
                          cov=np.tile(np.eye(2), (4, 1, 1)), decomposition=np.zeros((4, 3)),
                          parameters={"alpha": 10.0}, settings={"dt": 0.25})


def test_files_of_schema_version_1_still_load(tmp_path):
    path, history = tmp_path / "v1.h5", _history()
    curves = _write_version1_file(path, history)
    assert list_runs(path) == ["neural", "theory"]
    _assert_same_curves(read_run(path, "neural"), curves)
    _assert_same_curves(read_run(path, "theory"), _theory())
    _assert_same_history(read_history(path, "neural"), history)
    arrays, attrs = read_record(path, "old_record")
    assert_array_equal(arrays["curve"], np.arange(4.0)) and attrs["seeds"] == [0, 1]
    # a new writer adds version-2 groups beside the old ones, which stay readable
    write_history(path, "new", _history(seed=4))
    assert list_runs(path) == ["neural", "new", "theory"]
    _assert_same_history(read_history(path, "neural"), history)
    _assert_same_history(read_history(path, "new"), _history(seed=4))


def test_merge_keeps_histories_and_their_time_axis(tmp_path):
    a, b, out = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "out.h5"
    write_history(a, "h", _history())
    write_run(b, "c", _theory())
    assert merge_stores(out, [a, b])["copied"] == ["h", "c"]
    _assert_same_history(read_history(out, "h"), _history())
    with h5py.File(out, "r") as f:
        assert f["runs/h"].attrs["record_type"] == "history"
        assert f["runs/h/val_loss"].dims[0][0].name.endswith("/step")


def test_atomic_replace_keeps_the_original_when_the_writer_fails(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    with atomic_replace(target) as tmp:
        tmp.write_bytes(b"first")
    assert target.read_bytes() == b"first"
    with pytest.raises(RuntimeError):
        with atomic_replace(target, copy_existing=True) as tmp:
            assert tmp.read_bytes() == b"first"
            tmp.write_bytes(b"second")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"first"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]
