"""HDF5 store: round trip, provenance, refusal of foreign files."""

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.testing import assert_array_equal

import dmft
from comparisons.store import StoreError, list_runs, read_run, write_run


def test_round_trip_preserves_curves_and_records_provenance(tmp_path):
    path = tmp_path / "runs.h5"
    curves = dmft.solve(alpha=math.inf, epsilon=0.1, t_max=5, center=True)
    write_run(path, "a", curves)
    write_run(path, "b", curves)
    assert list_runs(path) == ["a", "b"]
    back = read_run(path, "a")
    for key in ("t", "train_loss", "test_loss", "overlap", "cov", "decomposition"):
        assert_array_equal(getattr(back, key), getattr(curves, key))
    assert_array_equal(back.extras["cross_cov"], curves.extras["cross_cov"])
    assert back.parameters == curves.parameters
    with h5py.File(path) as handle:
        attrs = handle["runs/a"].attrs
        assert attrs["complete"]
        for key in ("package_version", "git_revision", "created", "parameters", "seed"):
            assert key in attrs
        assert handle["runs/a/test_loss"].dims[0][0].name == "/runs/a/t"


def test_incomplete_run_is_not_listed(tmp_path):
    path = tmp_path / "runs.h5"
    write_run(path, "done", dmft.solve(alpha=math.inf, epsilon=0.1, t_max=2))
    with h5py.File(path, "a") as handle:
        handle["runs"].create_group("partial").attrs["complete"] = False
    assert list_runs(path) == ["done"]
    with pytest.raises(StoreError, match="incomplete"):
        read_run(path, "partial")


def test_foreign_and_corrupt_files_give_clear_errors(tmp_path):
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"not hdf5 at all")
    with pytest.raises(StoreError, match="corrupt.h5"):
        list_runs(corrupt)
    with pytest.raises(StoreError, match="corrupt.h5"):
        write_run(corrupt, "x", dmft.solve(alpha=math.inf, epsilon=0.1, t_max=2))
    assert corrupt.read_bytes() == b"not hdf5 at all"  # nothing lost
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as handle:
        handle["data"] = np.arange(3)
    with pytest.raises(StoreError, match="foreign.h5"):
        list_runs(foreign)


# ---------------------------------------------------------------------------------------------
# provenance: the seed(s) of every run and the git revision of the code that ran it
# ---------------------------------------------------------------------------------------------
def test_a_seed_average_records_its_seeds(tmp_path):
    # `dmft train committee --seeds 2` stores empirical.committee.machine.average of the seeds' runs:
    # its settings hold "seeds", not "seed"; the stored `seed` must not say "absent" (-1)
    import dataclasses

    from empirical.committee.machine import average

    base = dmft.solve(alpha=math.inf, epsilon=0.1, t_max=1)
    runs = [dataclasses.replace(base, settings={**base.settings, "seed": s}) for s in (3, 4)]
    path = tmp_path / "runs.h5"
    write_run(path, "mean", average(runs))
    write_run(path, "one", runs[1])
    with h5py.File(path) as handle:
        mean, one = handle["runs/mean"].attrs, handle["runs/one"].attrs
        assert mean["seed"] == 3
        assert_array_equal(json.loads(mean["seeds"]), [3, 4])
        assert one["seed"] == 4 and "seeds" not in one


def test_git_revision_is_not_borrowed_from_an_enclosing_repository(tmp_path):
    # an installed (not editable) package lives in site-packages, which may lie inside some other
    # git repository (a project's .venv): its HEAD is not the revision of the code that ran
    import importlib.util
    import shutil
    import subprocess

    import dmft.provenance

    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    outer = tmp_path / "project"
    site = outer / ".venv" / "lib" / "site-packages" / "dmft"
    site.mkdir(parents=True)
    shutil.copy(dmft.provenance.__file__, site / "provenance.py")
    (outer / "README").write_text("another project\n")
    quiet = dict(cwd=outer, check=True, capture_output=True)
    subprocess.run([git, "init", "-q"], **quiet)
    subprocess.run([git, "add", "README"], **quiet)
    subprocess.run([git, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x"], **quiet)
    spec = importlib.util.spec_from_file_location("installed_provenance", site / "provenance.py")
    installed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(installed)
    assert installed.git_revision() == "unknown"
    # the package's own checkout still gives its revision
    root = Path(dmft.provenance.__file__).resolve().parents[1]
    head = subprocess.run([git, "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    if head.returncode == 0:
        assert dmft.provenance.git_revision().split("-")[0] == head.stdout.strip()


def test_merge_keeps_the_records_of_its_inputs(tmp_path):
    # `dmft merge` must not drop what `dmft train bayes --out` stored: records travel with their
    # provenance, the same record twice is copied once, a different one under a taken name is refused
    from comparisons.store import RunConflictError, list_records, merge_stores, read_record, write_record

    a, b, out = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "all.h5"
    write_record(a, "linear", {"seed0": {"loss": np.arange(4.0)}}, {"system": "linear", "seeds": [0]})
    write_run(b, "theory", dmft.solve(alpha=math.inf, epsilon=0.1, t_max=1))
    write_record(b, "linear", {"seed0": {"loss": np.arange(4.0)}}, {"system": "linear", "seeds": [0]})
    with h5py.File(b, "a") as handle:  # an interrupted record of an in-place writer
        handle["records"].create_group("partial").attrs["complete"] = False
    report = merge_stores(out, [a, b])
    assert report["copied"] == ["theory"]
    assert report["records"] == {"copied": ["linear"], "skipped": ["linear"], "incomplete": ["partial"]}
    assert list_records(out) == ["linear"]
    arrays, attrs = read_record(out, "linear")
    assert_array_equal(arrays["seed0"]["loss"], np.arange(4.0))
    with h5py.File(a, "r") as src, h5py.File(out, "r") as dst:
        for key in ("created", "git_revision", "package_version", "seed", "seeds", "system"):
            assert src["records/linear"].attrs[key] == dst["records/linear"].attrs[key], key
        assert dst["records/linear"].attrs["complete"]
    assert merge_stores(out, [a])["records"]["skipped"] == ["linear"]  # a repeated merge is a no-op
    c = tmp_path / "c.h5"
    write_record(c, "linear", {"seed0": {"loss": np.ones(4)}}, {"system": "linear", "seeds": [0]})
    with pytest.raises(RunConflictError, match="linear"):
        merge_stores(out, [c])
    assert merge_stores(out, [c], overwrite=True)["records"]["copied"] == ["linear"]
    assert_array_equal(read_record(out, "linear")[0]["seed0"]["loss"], np.ones(4))


def test_a_writer_never_deletes_the_live_temporary_of_another_store(tmp_path, monkeypatch):
    # the writer of "s.h5" cleans up the temporaries that killed writers of "s.h5" left behind; the
    # temporary of a live writer of another store in the folder ("s.h5.old") is not one of them
    import comparisons.store as store

    curves = dmft.solve(alpha=math.inf, epsilon=0.1, t_max=1)
    main, other = tmp_path / "s.h5", tmp_path / "s.h5.old"
    real = store._write_group

    def meanwhile(root, name, run, attrs):
        if name == "outer":  # while "s.h5.old" is being written, another process writes "s.h5"
            write_run(main, "inner", run)
        real(root, name, run, attrs)

    monkeypatch.setattr(store, "_write_group", meanwhile)
    write_run(other, "outer", curves)
    assert list_runs(other) == ["outer"] and list_runs(main) == ["inner"]
    stale = tmp_path / ".s.h5.abc123_x.tmp"  # what a writer of s.h5 killed mid-write leaves
    stale.write_bytes(b"partial")
    write_run(main, "later", curves)
    assert not stale.exists() and sorted(p.name for p in tmp_path.glob(".*.tmp")) == []
