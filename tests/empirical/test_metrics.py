"""Grokking metrics: the operational definitions of seed_systems.md §0 and theory.md §5."""

import numpy as np
import pytest

from empirical.metrics import amount_of_grokking, first_crossing, grokking_gap, time_to_loss


def test_gap_is_strict_and_zero_based():
    train = [0.5, 0.95, 0.96, 1.0, 1.0]   # 0.95 is not > 0.95: first pass at epoch 2
    val = [0.1, 0.2, 0.5, 0.9, 0.951]
    gap = grokking_gap(train, val)
    assert (gap.t_train, gap.t_val, gap.gap) == (2, 4, 2)
    assert not gap.censored


def test_gap_censored_at_epoch_count_and_can_be_negative():
    gap = grokking_gap([0.1, 0.2, 0.3], [0.99, 0.99, 0.99])
    assert gap.t_train == 3 and gap.train_censored
    assert gap.gap == -3 and gap.censored


def test_nan_never_crosses():
    assert first_crossing([np.nan, np.nan], 0.5).censored


def test_amount_of_grokking_matches_definition():
    t = np.arange(10.0)
    train = np.array([1, 0.5, 0.05, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01])
    test = np.array([1, 1, 1, 1, 1, 1, 0.09, 0.05, 0.01, 0.01])
    assert time_to_loss(t, train, 0.1) == 2.0
    assert amount_of_grokking(t, train, test, 0.1) == pytest.approx(4.0)
    assert amount_of_grokking(t, test, train, 0.1) == 0.0          # test before train: none
    assert amount_of_grokking(t, train, np.ones(10), 0.1) == 7.0   # censored at t[-1] = 9
    assert amount_of_grokking(t, np.ones(10), test, 0.1) == 0.0
