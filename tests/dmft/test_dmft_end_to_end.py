"""The finite-alpha DMFT end to end at tiny size: the numpy backend, N = 4, and a run that blows up
going through the CLI with exit 3 (the real solver, no mock)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import dmft
from grokking_cli.main import main

TINY = dict(alpha=3.0, epsilon=0.25, t_max=1.0, dt=0.25, samples=64, max_iter=30, tol=1e-6, seed=1)


def test_numpy_backend_end_to_end_matches_numba():
    """The NumPy twin (float64 throughout) against the Numba kernels in precision="double": the
    same map, so the same fixed point to 1e-8. (The default "mixed" precision is compared with
    "double" in tests/dmft/test_dmft.py.)"""
    by_numpy = dmft.solve(**TINY, backend="numpy", precision="double")
    by_numba = dmft.solve(**TINY, backend="numba", precision="double")
    assert by_numpy.kind == "dmft" and by_numpy.converged, by_numpy.message
    assert by_numpy.settings["backend"] == "numpy"
    for curves in (by_numpy, by_numba):
        assert np.all(np.isfinite(curves.test_loss)) and np.all(curves.test_loss >= 0)
        assert curves.t[-1] == pytest.approx(1.0) and curves.train_loss[0] == pytest.approx(curves.test_loss[0])
    np.testing.assert_allclose(by_numpy.test_loss, by_numba.test_loss, rtol=1e-8)
    np.testing.assert_allclose(by_numpy.train_loss, by_numba.train_loss, rtol=1e-8)
    # learning: both losses fall from t = 0, train below test (finite alpha)
    assert by_numpy.test_loss[-1] < by_numpy.test_loss[0]
    assert by_numpy.train_loss[-1] <= by_numpy.test_loss[-1] + 1e-12


def test_width_four_end_to_end():
    m0 = [0.1, -0.1, 0.05, -0.05]
    curves = dmft.solve(**{**TINY, "samples": 128}, width=4, init_overlap=m0)
    assert curves.converged, curves.message
    assert curves.overlap.shape == (curves.t.size, 4) and curves.cov.shape == (curves.t.size, 4, 4)
    np.testing.assert_allclose(curves.overlap[0], m0)
    np.testing.assert_allclose(curves.cov[0], dmft.parameters.planted_init_cov(m0), atol=1e-12)
    np.testing.assert_allclose(curves.decomposition.sum(axis=1), curves.test_loss, rtol=1e-10)
    assert np.all(np.linalg.eigvalsh(curves.cov) > 0)  # Q(t) stays a covariance


def test_a_run_that_fails_on_its_first_window_exits_3_through_the_cli(tmp_path):
    """ε = 5, κ = 20 (outside the validated envelope) fails even on the shortest first window
    (before the indefinite-input guard of the causal Cholesky factor it blew up there; now the
    halved window does not converge): there is no converged window to return, and the CLI says
    so in one line with exit 3."""
    out = tmp_path / "s.h5"
    result = CliRunner().invoke(main, ["solve", "--alpha", "3", "--epsilon", "5", "--scale", "20", "--dt", "1",
                                       "--t-max", "6", "--samples", "256", "--max-iter", "10", "--no-plot",
                                       "--no-progress", "--json", "--out", str(out)])
    assert result.exit_code == 3, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "did not converge" in errors[0] and "Traceback" not in result.output


def test_a_run_that_does_not_converge_is_printed_stored_and_flagged(tmp_path):
    out = tmp_path / "s.h5"
    result = CliRunner().invoke(main, ["solve", "--alpha", "10", "--epsilon", "0.1", "--t-max", "2",
                                       "--samples", "256", "--max-iter", "2", "--tol", "1e-12", "--no-plot",
                                       "--no-progress", "--json", "--out", str(out)])
    assert result.exit_code == 3, result.output
    summary = json.loads(result.output.splitlines()[0])  # the results are printed all the same
    assert summary["converged"] is False
    from comparisons.store import read_run

    assert read_run(out, summary["stored"]["run_name"]).converged is False  # kept, flagged