"""HDF5 store (docs/hdf5_schema.md): every field round-trips, writes are atomic under SIGKILL,
concurrent writer processes never lose a run, corrupt/foreign files name themselves, merge and
resume behave.

Real subprocesses are used for the kill and concurrency tests (threads would share the lock
and the interpreter, which is exactly what must not be assumed).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import dmft
from comparisons.store import RunConflictError
from comparisons import StoreError, list_runs, load, merge_stores, read_run, to_xarray, write_run
from dmft.result import LearningCurves

ROOT = Path(__file__).resolve().parents[2]


def random_curves(rng, *, kind="simulation", T=17, N=3, seed=5) -> LearningCurves:
    """Curves whose every array is random, so that any field mix-up or cast shows."""
    return LearningCurves(
        kind=kind,
        t=np.sort(rng.uniform(0, 50, T)),
        train_loss=rng.uniform(0, 2, T),
        test_loss=rng.uniform(0, 2, T),
        overlap=rng.normal(size=(T, N)),
        cov=rng.normal(size=(T, N, N)),
        decomposition=rng.uniform(size=(T, 3)),
        parameters={"alpha": math.inf, "epsilon": 0.25, "scale": 1.5, "width": N,
                    "init_overlap": [0.1, -0.1, 0.1], "center": True},
        settings={"seed": seed, "dim": 200, "lr": 1.0, "device": "cpu", "nested": {"a": [1, 2]}},
        converged=False,
        iterations=7,
        residual=3.25e-4,
        residual_history=rng.uniform(size=7),
        seconds=12.5,
        message="stopped: ünïcode message",
        extras={"train_loss_std": rng.uniform(size=T), "cross_cov": rng.normal(size=(T, N, N)),
                "counts": np.arange(T, dtype=np.int64)},
    )


def assert_same_curves(back: LearningCurves, curves: LearningCurves) -> None:
    for key in ("t", "train_loss", "test_loss", "overlap", "cov", "decomposition", "residual_history"):
        a, b = getattr(back, key), getattr(curves, key)
        assert a.dtype == b.dtype, key
        assert_array_equal(a, b, err_msg=key)  # bit-identical, not approximately equal
    assert back.extras.keys() == curves.extras.keys()
    for key, value in curves.extras.items():
        assert back.extras[key].dtype == value.dtype, key
        assert_array_equal(back.extras[key], value, err_msg=key)
    for key in ("kind", "parameters", "settings", "converged", "iterations", "residual", "seconds", "message"):
        assert getattr(back, key) == getattr(curves, key), key


def test_every_field_round_trips_bit_identically(tmp_path, rng):
    path = tmp_path / "runs.h5"
    curves = random_curves(rng)
    write_run(path, "r", curves, attrs={"sweep": "test", "point": 3})
    back = read_run(path, "r")
    assert_same_curves(back, curves)
    assert math.isinf(back.parameters["alpha"])  # JSON Infinity survives
    with h5py.File(path) as handle:
        attrs = handle["runs/r"].attrs
        assert attrs["seed"] == 5 and attrs["sweep"] == "test" and attrs["point"] == 3
        assert attrs["git_revision"] and attrs["package_version"] and attrs["created"].startswith("20")
        for key in ("train_loss", "test_loss", "overlap", "cov", "decomposition"):
            assert handle[f"runs/r/{key}"].dims[0][0].name == "/runs/r/t"
    loaded = load(path)
    assert list(loaded) == ["r"]
    assert_same_curves(loaded["r"], curves)
    assert_same_curves(load(path, "r"), curves)


def test_xarray_view_matches_the_arrays(tmp_path, rng):
    a, b = random_curves(rng, T=5), random_curves(rng, T=7)
    ds = to_xarray(a)
    assert_array_equal(ds["test_loss"].values, a.test_loss)
    assert_array_equal(ds["cov"].values, a.cov)
    assert_array_equal(ds["t"].values, a.t)
    assert list(ds["term"].values) == ["variance", "alignment", "linear"]
    assert ds.attrs["parameters.epsilon"] == 0.25
    assert_array_equal(ds["train_loss_std"].values, a.extras["train_loss_std"])
    both = to_xarray({"a": a, "b": b})
    assert list(both["run"].values) == ["a", "b"]
    # Outer join on t: run b's values sit at its own times, NaN elsewhere.
    sel = both["test_loss"].sel(run="b", t=b.t)
    assert_array_equal(sel.values, b.test_loss)
    assert int(np.isnan(both["test_loss"].sel(run="b").values).sum()) == len(both["t"]) - len(b.t)


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time, pathlib
    import numpy as np
    import comparisons.store as store
    from dmft.result import LearningCurves

    path, marker, mode = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
    T = 4000 if mode == "random" else 10
    rng = np.random.default_rng(1)
    def curves(seed):
        return LearningCurves(kind="simulation", t=np.arange(T, dtype=float), train_loss=np.ones(T),
                              test_loss=np.full(T, float(seed)), overlap=np.zeros((T, 8)),
                              cov=rng.normal(size=(T, 8, 8)), decomposition=np.zeros((T, 3)),
                              parameters={"seed": seed}, settings={"seed": seed})
    store.write_run(path, "early", curves(1))
    if mode == "hook":
        real = store._write_group
        def stalled(root, name, c, attrs):
            group = root.require_group("runs").create_group(name)
            group.attrs["complete"] = False
            group.create_dataset("t", data=c.t)
            root.file.flush()
            marker.write_text("mid-write")
            time.sleep(120)
        store._write_group = stalled
        store.write_run(path, "late", curves(2))
    else:
        marker.write_text("writing")
        for i in range(1000):
            store.write_run(path, f"late{i}", curves(2))
    """
)


def _start_writer(tmp_path, mode):
    script = tmp_path / "killed_writer_proc.py"
    script.write_text(_KILLED_WRITER)
    marker = tmp_path / f"marker-{mode}"
    path = tmp_path / f"killed-{mode}.h5"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(marker), mode], env=env)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, "writer exited early"
        assert time.monotonic() < deadline, "writer never reached the write"
        time.sleep(0.02)
    return proc, path


def test_sigkill_mid_write_leaves_earlier_runs_and_no_partial_run(tmp_path):
    proc, path = _start_writer(tmp_path, "hook")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    # The temporary copy holding the half-written run exists, but the store never saw it.
    assert list(tmp_path.glob(".killed-hook.h5.*.tmp"))
    assert list_runs(path, include_incomplete=True) == ["early"]
    assert_array_equal(read_run(path, "early").test_loss, np.ones(10))
    # The kernel released the dead writer's lock: the next write proceeds and cleans up.
    write_run(path, "after", dmft.solve(alpha=math.inf, epsilon=0.1, t_max=1))
    assert list_runs(path) == ["after", "early"]
    assert not list(tmp_path.glob(".killed-hook.h5.*.tmp"))


def test_sigkill_at_an_arbitrary_moment_keeps_the_file_valid(tmp_path):
    proc, path = _start_writer(tmp_path, "random")
    time.sleep(0.7)  # somewhere inside the stream of writes of ~2 MB runs
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    names = list_runs(path, include_incomplete=True)
    assert names[0] == "early"
    # Whatever was interrupted is absent; everything present is complete and readable.
    assert list_runs(path) == names
    for name in names:
        run = read_run(path, name)
        assert run.test_loss[0] == (1.0 if name == "early" else 2.0)


_CONCURRENT_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from comparisons.store import write_run
    from dmft.result import LearningCurves

    path, worker = sys.argv[1], int(sys.argv[2])
    for j in range(4):
        value = 10 * worker + j
        write_run(path, f"w{worker}_r{j}", LearningCurves(
            kind="simulation", t=np.linspace(0, 1, 50), train_loss=np.full(50, value),
            test_loss=np.full(50, value), overlap=np.full((50, 2), value), cov=np.zeros((50, 2, 2)),
            decomposition=np.zeros((50, 3)), parameters={"worker": worker}, settings={"seed": j}))
    """
)


def test_concurrent_writer_processes_lose_no_run(tmp_path):
    script = tmp_path / "store_writer_proc.py"
    script.write_text(_CONCURRENT_WRITER)
    path = tmp_path / "shared.h5"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, str(script), str(path), str(w)], env=env) for w in range(3)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    names = list_runs(path)
    assert names == sorted(f"w{w}_r{j}" for w in range(3) for j in range(4))
    for w in range(3):
        for j in range(4):
            assert_array_equal(read_run(path, f"w{w}_r{j}").train_loss, np.full(50, 10.0 * w + j))
    assert not list(tmp_path.glob(".shared.h5.*.tmp"))


def test_corrupt_truncated_and_foreign_files_name_themselves(tmp_path, rng):
    good = tmp_path / "good.h5"
    write_run(good, "r", random_curves(rng))
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:600])
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle["data"] = np.arange(3)
    other_format = tmp_path / "other.h5"
    with h5py.File(other_format, "w") as handle:
        handle.attrs["format"] = "someone-else/1"
        handle.create_group("runs")
    for bad in (truncated, foreign, other_format):
        for call in (lambda p: list_runs(p), lambda p: load(p), lambda p: read_run(p, "r"),
                     lambda p: write_run(p, "x", random_curves(rng))):
            with pytest.raises(StoreError, match=bad.name):
                call(bad)
    with pytest.raises(StoreError, match="missing.h5"):
        load(tmp_path / "missing.h5")
    # A store whose run group lost a dataset: a clear error, not a KeyError.
    with h5py.File(good, "a") as handle:
        del handle["runs/r/overlap"]
    with pytest.raises(StoreError, match="good.h5.*malformed"):
        read_run(good, "r")


def test_merge_copies_complete_runs_with_provenance_and_is_resumable(tmp_path, rng):
    a, b = tmp_path / "worker0.h5", tmp_path / "worker1.h5"
    runs = {f"r{i}": random_curves(rng, seed=i) for i in range(4)}
    for i, (name, curves) in enumerate(runs.items()):
        write_run(a if i % 2 == 0 else b, name, curves)
    with h5py.File(b, "a") as handle:  # an interrupted run of an in-place writer
        handle["runs"].create_group("partial").attrs["complete"] = False
    out = tmp_path / "merged.h5"
    report = merge_stores(out, [a, b])
    assert sorted(report["copied"]) == sorted(runs) and report["incomplete"] == ["partial"]
    assert list_runs(out, include_incomplete=True) == sorted(runs)
    for name, curves in runs.items():
        assert_same_curves(read_run(out, name), curves)
    with h5py.File(a) as src, h5py.File(out) as dst:
        assert src["runs/r0"].attrs["created"] == dst["runs/r0"].attrs["created"]
        assert dst["runs/r0/test_loss"].dims[0][0].name == "/runs/r0/t"
    again = merge_stores(out, [a, b])
    assert again["copied"] == [] and sorted(again["skipped"]) == sorted(runs)
    write_run(tmp_path / "clash.h5", "r0", random_curves(rng))
    with pytest.raises(RunConflictError, match="r0.*different run"):
        merge_stores(tmp_path / "other.h5", [a, tmp_path / "clash.h5"])
    # the output's own r0 differs from the clash's: refused, not silently kept; --overwrite replaces it
    with pytest.raises(RunConflictError, match="r0.*overwrite"):
        merge_stores(out, [tmp_path / "clash.h5"])
    assert_same_curves(read_run(out, "r0"), runs["r0"])
    # the identical run in two inputs (a copy of a worker's file) is merged once
    copy = tmp_path / "copy.h5"
    copy.write_bytes(a.read_bytes())
    twice = merge_stores(tmp_path / "twice.h5", [a, copy])
    assert sorted(twice["copied"]) == ["r0", "r2"] and sorted(twice["skipped"]) == ["r0", "r2"]
    with pytest.raises(StoreError, match="notastore.h5"):
        (tmp_path / "notastore.h5").write_bytes(b"junk")
        merge_stores(out, [a, tmp_path / "notastore.h5"])
    assert list_runs(out) == sorted(runs)  # a failed merge changed nothing
    replaced = merge_stores(out, [tmp_path / "clash.h5"], overwrite=True)
    assert replaced["copied"] == ["r0"]
