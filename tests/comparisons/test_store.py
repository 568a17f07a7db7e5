"""HDF5 store: round trip, provenance, refusal of foreign files."""

import math

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
