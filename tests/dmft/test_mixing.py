"""Fixed-point mixing (dmft.mixing) on problems with a known answer."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from dmft.mixing import Mixer


def _affine_problem(dim=20, radius=0.95, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((dim, dim))
    A *= radius / np.abs(np.linalg.eigvals(A)).max()
    b = rng.standard_normal(dim)
    return A, b, np.linalg.solve(np.eye(dim) - A, b)


def _iterate(mixer, A, b, steps):
    x = np.zeros(b.size)
    for _ in range(steps):
        x = mixer.step(x, A @ x + b)
    return x


def test_anderson_solves_an_affine_map_in_dimension_plus_few_steps():
    """Anderson(m ≥ d) on x = Ax + b is GMRES in disguise: exact after ≈ d + 1 steps (rounding
    and the 1e-10 Tikhonov term leave ~1e-8), while damping at spectral radius 0.95 has barely
    moved (its error contracts at best like 0.975^k)."""
    A, b, solution = _affine_problem()
    anderson = _iterate(Mixer("anderson", damping=0.5, depth=25), A, b, 24)
    damped = _iterate(Mixer("damped", damping=0.5), A, b, 24)
    assert_allclose(anderson, solution, rtol=0, atol=1e-6 * np.abs(solution).max())
    assert np.abs(damped - solution).max() > 0.1 * np.abs(solution).max()


def test_weights_do_not_change_the_fixed_point():
    A, b, solution = _affine_problem(dim=8, radius=0.7, seed=1)
    weights = np.geomspace(1e-2, 1e2, b.size)
    x = _iterate(Mixer("anderson", damping=0.7, depth=10, weights=weights), A, b, 40)
    assert_allclose(x, solution, rtol=0, atol=1e-10 * np.abs(solution).max())


def test_damped_step_is_paper_eq_52():
    x, fx = np.array([1.0, 2.0]), np.array([3.0, -2.0])
    assert_allclose(Mixer("damped", damping=0.25).step(x, fx), 0.75 * x + 0.25 * fx, rtol=1e-15)
    # the first Anderson step has no history and is the same damped step
    assert_allclose(Mixer("anderson", damping=0.25).step(x, fx), 0.75 * x + 0.25 * fx, rtol=1e-15)


def test_converged_state_is_left_alone():
    mixer = Mixer("anderson")
    x = np.ones(3)
    for _ in range(3):
        x = mixer.step(x, x.copy())          # zero residual: no singular least squares
    assert_allclose(x, np.ones(3), rtol=0, atol=0)


@pytest.mark.parametrize("kwargs, fragment", [({"method": "newton"}, "mixing must be one of"),
                                              ({"damping": 0.0}, "damping must lie in (0, 1]"),
                                              ({"depth": 0}, "depth must be >= 1")])
def test_invalid_settings_are_named(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        Mixer(**kwargs)
