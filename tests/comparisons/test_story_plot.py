"""The picture of ``dmft solve --plot``: threshold-crossing times, the lazy reference, SEM bands."""

import dataclasses
import math

import numpy as np
import pytest

import dmft
from comparisons.overlay import plot_overlay
from comparisons.story import lazy_reference, plot_story, threshold_time


def test_threshold_time_interpolates_the_first_crossing():
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    loss = np.array([1.0, 0.5, 0.2, 0.05, 0.2])  # crosses 0.1 between t = 2 and 3, then comes back
    assert threshold_time(t, loss) == pytest.approx(2.0 + (0.2 - 0.1) / (0.2 - 0.05))
    assert threshold_time(t, np.array([1.0, 0.9, 0.8, 0.7, 0.6])) is None
    assert threshold_time(t, np.zeros(5)) is None  # no scale to measure against


def _finite_alpha(curves, alpha=10.0, **changes):
    return dataclasses.replace(curves, kind="dmft", parameters={**curves.parameters, "alpha": alpha}, **changes)


def test_story_marks_both_crossings_and_the_delay():
    online = dmft.solve(math.inf, 0.1, t_max=40)
    train = online.test_loss * np.exp(-0.05 * online.t)  # a train curve that falls earlier
    curves = _finite_alpha(online, train_loss=train, train_loss_sem=0.01 * train, test_loss_sem=0.02 * online.test_loss)
    fig = plot_story(curves, lazy=None)
    crossings = fig.crossing_times
    assert crossings["test"] == pytest.approx(threshold_time(curves.t, curves.test_loss))
    assert crossings["train"] == pytest.approx(threshold_time(curves.t, train))
    assert crossings["train"] < crossings["test"]
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert any(text.startswith("delay") for text in texts)
    assert ax.get_xscale() == "linear" and ax.get_yscale() == "log"
    labels = [c.get_label() for c in ax.collections]
    assert sum("Monte Carlo" in label for label in labels) == 2  # one band per curve with a SEM


def test_lazy_reference_is_the_same_problem_linearised():
    online = dmft.solve(math.inf, 0.1, t_max=40)
    curves = _finite_alpha(online)
    lazy = lazy_reference(curves)
    assert lazy.kind == "lazy" and np.array_equal(lazy.t, curves.t)
    # the same planted start: the initial population loss agrees up to finite-D fluctuations
    assert lazy.test_loss[0] == pytest.approx(curves.test_loss[0], rel=0.1)
    np.testing.assert_allclose(lazy.overlap[0], curves.overlap[0], atol=1e-12)
    # and the kernel cannot learn the quadratic teacher: the lazy test loss stays near its plateau
    assert lazy.test_loss[-1] > 0.3 * lazy.test_loss[0] > curves.test_loss[-1]
    assert lazy_reference(online) is None  # alpha = inf: no finite sample, no lazy curve


def test_compare_overlay_draws_the_theory_band():
    online = dmft.solve(math.inf, 0.25, t_max=5)
    theory = _finite_alpha(online, alpha=3.0, test_loss_sem=0.01 * online.test_loss,
                           train_loss_sem=0.01 * online.train_loss)
    fig = plot_overlay(theory, [])
    labels = [c.get_label() for c in fig.axes[0].collections]
    assert sum("Monte Carlo" in label for label in labels) == 2
