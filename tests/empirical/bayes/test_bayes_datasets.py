"""Datasets 1–10 and concealment (seed_systems.md §A.1, §A.2) against hand-computed cases."""

import numpy as np
import pytest

from empirical.bayes import datasets as ds
from comparisons.store import list_records, read_record, write_record


def test_parity_labels_hand_cases():
    # product of (2b − 1): [0,0,0] → −1 → class 0; [1,1,1] → +1 → class 1; [1,0,0] → +1; [1,1,0] → −1
    bits = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0], [1, 1, 0]])
    assert ds.parity_labels(bits).tolist() == [0, 1, 1, 0]


def test_parity_dataset_structure_and_concealment():
    d = ds.parity(k=3, n_total_dim=40, n_samples=1100, n_train=1000, seed=3)
    assert d.x_train.shape == (1000, 40) and d.x_val.shape == (100, 40)
    x = np.concatenate([d.x_train, d.x_val])
    y = np.concatenate([d.y_train, d.y_val])
    assert set(np.unique(x)) <= {0.0, 1.0}
    assert np.array_equal(y.argmax(1), ds.parity_labels(x[:, :3]))
    # spurious bits are Bernoulli(1/2): mean within 5 standard errors of 1/2
    spurious = x[:, 3:]
    assert abs(spurious.mean() - 0.5) < 5 * 0.5 / np.sqrt(spurious.size)
    # the target does not depend on the spurious bits: |corr| with the label within 5 SE of 0
    corr = np.corrcoef(spurious[:, 0], y[:, 1])[0, 1]
    assert abs(corr) < 5 / np.sqrt(len(y))
    again = ds.parity(k=3, n_total_dim=40, n_samples=1100, n_train=1000, seed=3)
    assert np.array_equal(again.x_train, d.x_train)
    with pytest.raises(ValueError):
        d.x_train[0, 0] = 2.0  # frozen arrays


@pytest.mark.parametrize("operation,rule", [
    ("add", lambda x, y, p: (x + y) % p),
    ("sub", lambda x, y, p: (x - y) % p),
    ("poly", lambda x, y, p: (x * x + x * y + y * y) % p),
    ("poly2", lambda x, y, p: (x * x + x * y + y * y + x) % p),
    ("xyx", lambda x, y, p: (x * y * x) % p),
])
def test_modular_datasets_decode_to_their_rule(operation, rule):
    p = 7
    d = ds.modular(operation, p=p, m=5, seed=1)
    x = np.concatenate([d.x_train, d.x_val])
    assert x.shape == (800, 2 * p + 5) and d.x_train.shape[0] == 600
    assert np.all(x[:, :p].sum(1) == 1) and np.all(x[:, p:2 * p].sum(1) == 1)
    a, b = x[:, :p].argmax(1), x[:, p:2 * p].argmax(1)
    c = np.concatenate([d.y_train, d.y_val]).argmax(1)
    assert np.array_equal(c, rule(a, b, p))


def test_modular_division_and_hand_cases():
    p = 7
    # hand: 3 / 5 mod 7 = 3 · 3 = 9 = 2 (5·3 = 15 = 1 mod 7); 6 / 6 = 1; 0 / 4 = 0
    rule = ds.MODULAR_OPERATIONS["div"][0]
    assert rule(np.array([3, 6, 0]), np.array([5, 6, 4]), p).tolist() == [2, 1, 0]
    d = ds.modular("div", p=p, seed=2)
    x = np.concatenate([d.x_train, d.x_val])
    a, b = x[:, :p].argmax(1), x[:, p:2 * p].argmax(1)
    c = np.concatenate([d.y_train, d.y_val]).argmax(1)
    assert b.min() >= 1  # y ∈ {1..p−1}; the one-hot keeps the unused slot 0
    assert np.array_equal((c * b) % p, a)
    # hand cases of the other polynomials at (x, y) = (2, 3), p = 7: 4+6+9 = 19 = 5; +2 → 0; 2·3·2 = 12 = 5
    assert ds.MODULAR_OPERATIONS["poly"][0](np.array([2]), np.array([3]), 7)[0] == 5
    assert ds.MODULAR_OPERATIONS["poly2"][0](np.array([2]), np.array([3]), 7)[0] == 0
    assert ds.MODULAR_OPERATIONS["xyx"][0](np.array([2]), np.array([3]), 7)[0] == 5


def test_sampling_is_with_replacement():
    # 800 draws of 49 (x, y) pairs must repeat pairs: sampling, not enumeration
    d = ds.modular("add", p=7, seed=0)
    rows = np.concatenate([d.x_train, d.x_val])
    pairs, counts = np.unique(rows[:, :14], axis=0, return_counts=True)
    assert len(rows) > 49  # more draws than distinct pairs, so ...
    assert counts.max() > 1 and len(pairs) < len(rows)  # ... pairs repeat: sampled with replacement
    # every one of the 49 pairs is drawn (a missing one has probability 49·(48/49)^n, < 1e-5 here),
    # each about n/49 times: uniform sampling, not a subset enumerated or favoured
    assert len(pairs) == 49
    assert counts.max() < 3 * len(rows) / 49


def test_one_zero_and_slope_use_the_legacy_stream():
    for seed in (0, 42):
        np_state = np.random.RandomState(seed).rand(100, 1) - 0.5
        d8 = ds.one_zero(seed=seed)
        assert np.array_equal(d8.x_train, np_state[:20]) and np.array_equal(d8.x_val, np_state[80:])
        assert np.array_equal(d8.y_train, (np_state[:20, 0] > 0).astype(float))
        d9 = ds.one_zero_slope(seed=seed)
        assert np.array_equal(d9.x_train, np_state[:2]) and np.allclose(d9.y_val, 0.3 * np_state[2:, 0])
    # §C.1 table: seed 0 gives x_train = (0.049, 0.215)
    assert np.allclose(ds.one_zero_slope(seed=0).x_train[:, 0], [0.049, 0.215], atol=5e-4)
    normal = ds.one_zero(seed=1, x_dist="normal")
    assert np.array_equal(normal.y_val, (normal.x_val[:, 0] > 0).astype(float))


def test_sine_noise_level_and_split():
    d = ds.sine(seed=4, n_points=2000, n_train=1000)
    x = np.concatenate([d.x_train, d.x_val])[:, 0]
    y = np.concatenate([d.y_train, d.y_val])
    assert x.min() >= -1.5 and x.max() <= 1.5
    resid = y - np.sin(2 * x)  # f = 1/π: sin(2π x/π) = sin(2x)
    # sample std of 2000 N(0, 0.1²): relative SE 1/sqrt(2·2000) ≈ 1.6 %; allow 5 SE
    assert abs(resid.std() / 0.1 - 1) < 5 / np.sqrt(4000)
    assert abs(resid.mean()) < 5 * 0.1 / np.sqrt(2000)


def test_gaussian_concealment_option():
    d = ds.modular("add", p=7, m=30, seed=5, spurious="gaussian")
    extra = np.concatenate([d.x_train, d.x_val])[:, 14:]
    assert abs(extra.std() - 1) < 5 / np.sqrt(2 * extra.size)


@pytest.mark.parametrize("call", [
    lambda: ds.modular("mul"), lambda: ds.modular("add", p=8), lambda: ds.modular("add", m=-1),
    lambda: ds.parity(k=3, n_total_dim=2), lambda: ds.parity(spurious="uniform"),
    lambda: ds.one_zero(x_dist="cauchy"), lambda: ds.sine(noise_std=-1), lambda: ds.modular("add", n_train=800),
])
def test_invalid_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_records_round_trip_beside_runs(tmp_path):
    from comparisons.store import list_runs

    path = tmp_path / "r.h5"
    write_record(path, "a", {"x": np.arange(3), "sub": {"y": np.ones((2, 2))}}, {"k": 1, "cfg": {"lr": 0.1}})
    write_record(path, "b", {"x": np.zeros(1)})
    write_record(path, "a", {"x": np.arange(4)})  # replaces a
    assert list_records(path) == ["a", "b"] and list_runs(path) == []
    arrays, attrs = read_record(path, "a")
    assert arrays["x"].tolist() == [0, 1, 2, 3] and "sub" not in arrays and "git_revision" in attrs
    write_record(path, "c", {"sub": {"y": np.eye(2)}}, {"cfg": {"lr": 0.1}})
    arrays, attrs = read_record(path, "c")
    assert np.array_equal(arrays["sub"]["y"], np.eye(2)) and attrs["cfg"] == {"lr": 0.1}
    with pytest.raises(ValueError):
        write_record(path, "bad/name", {})
