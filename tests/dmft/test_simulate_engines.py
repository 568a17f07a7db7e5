"""The fused Numba gradient step of the reference simulation against the NumPy step.

``simulate_gd(..., engine="numba")`` computes the same loss and gradient as the two NumPy
matrix products, summed in another order: with float64 inputs the curves agree to rounding
(rtol 1e-10 after 250 steps of a contracting flow, where one step's relative difference is
~1e-15). With float32 inputs the data set itself is rounded (relative 6e-8), so the curves move
by about that much times the flow's sensitivity to the data; atol 1e-6 on losses of order 0.1–1
leaves room for a gain of ~10 and still fails on any real change of the dynamics (a wrong
gradient moves the losses by 1e-2 within a few steps).
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numpy.testing import assert_allclose

from dmft._gd_kernel import loss_and_gradient
from dmft.parameters import InvalidParameterError, ModelParameters
from dmft.simulate import simulate_gd

T = np.linspace(0.0, 10.0, 6)


@pytest.mark.parametrize("center", [False, True])
def test_fused_step_reproduces_numpy_step(center):
    params = ModelParameters(alpha=4.0, scale=2.0, epsilon=0.3, width=3, center=center,
                             init_overlap=(0.3, -0.1, 0.2))
    numpy_run = simulate_gd(params, 200, T, seed=4, time_step=0.04)
    fused_run = simulate_gd(params, 200, T, seed=4, time_step=0.04, engine="numba")
    assert numpy_run.train_loss[-1] < 0.7 * numpy_run.train_loss[0]       # the runs moved
    for name in ("train_loss", "test_loss", "overlap", "cov"):
        assert_allclose(getattr(fused_run, name), getattr(numpy_run, name), rtol=1e-10, atol=1e-13, err_msg=name)
    assert fused_run.settings["engine"] == "numba"


def test_float32_inputs_change_the_curves_by_rounding_only():
    params = ModelParameters(alpha=10.0, scale=4.0, epsilon=0.1, width=2, center=True, init_overlap=(0.2, -0.2))
    reference = simulate_gd(params, 300, T, seed=1, time_step=0.04)
    rounded = simulate_gd(params, 300, T, seed=1, time_step=0.04, engine="numba", input_dtype="float32")
    for name in ("train_loss", "test_loss"):
        assert_allclose(getattr(rounded, name), getattr(reference, name), rtol=0, atol=1e-6, err_msg=name)
    assert rounded.settings["input_dtype"] == "float32"


def test_fused_gradient_is_the_derivative_of_the_loss():
    """Central differences of the loss along a random direction (step 1e-5: error ~1e-10)."""
    rng = np.random.default_rng(7)
    P, D, N = 300, 40, 2
    X = rng.standard_normal((P, D)) / np.sqrt(D)
    y = 0.5 * (X @ rng.standard_normal(D)) ** 2
    W = rng.standard_normal((N, D))
    direction = rng.standard_normal((N, D))
    _, gradient = loss_and_gradient(X, W, y, 1.5, 0.4)
    h = 1e-5
    plus, _ = loss_and_gradient(X, W + h * direction, y, 1.5, 0.4)
    minus, _ = loss_and_gradient(X, W - h * direction, y, 1.5, 0.4)
    assert_allclose(np.sum(gradient * direction), (plus - minus) / (2 * h), rtol=1e-7)


def test_fused_step_does_not_depend_on_the_thread_count():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1000, 64)) / 8.0
    y = rng.standard_normal(1000)
    W = rng.standard_normal((2, 64))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = loss_and_gradient(X, W, y, 1.0, 0.2)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = loss_and_gradient(X, W, y, 1.0, 0.2)
    finally:
        numba.set_num_threads(before)
    assert one[0] == many[0]
    np.testing.assert_array_equal(one[1], many[1])


@pytest.mark.parametrize("kwargs, message", [
    ({"engine": "torch"}, "engine must be 'numpy' or 'numba'"),
    ({"input_dtype": "float16", "engine": "numba"}, "input_dtype must be 'float64' or 'float32'"),
    ({"input_dtype": "float32"}, "input_dtype='float32' needs engine='numba'"),
])
def test_bad_engine_settings_are_refused(kwargs, message):
    params = ModelParameters(alpha=2.0, scale=1.0, epsilon=0.1, width=2)
    with pytest.raises(InvalidParameterError, match=message):
        simulate_gd(params, 50, T, **kwargs)
