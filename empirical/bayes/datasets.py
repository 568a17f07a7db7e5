"""Datasets 1–10 of "Grokking Beyond Neural Networks" and the concealment augmentation.

Specification: ``seed_systems.md`` §A.1 (table of datasets) and §A.2 ("HiddenDataset"), with
Decision D.1 (follow the authors' code: uniform Dataset-8 inputs and Bernoulli(½) spurious bits,
with ``x_dist="normal"`` and ``spurious="gaussian"`` options for the paper's wording).

Every builder is seeded and deterministic and returns a frozen :class:`Dataset`. Integer datasets
(1–7) are i.i.d. samples drawn *with replacement* and split at random, as in the authors' code, so
the same (x, y) pair may appear in both splits. Datasets 8 and 9 use NumPy's legacy stream
(``np.random.seed(s); np.random.rand(100, 1) − 0.5``) so that §C.1's reference numbers are
reproducible; the others use ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from dmft.parameters import InvalidParameterError, check_int_at_least

__all__ = [
    "Dataset",
    "MODULAR_OPERATIONS",
    "CONCEALMENT_DATASETS",
    "parity",
    "modular",
    "one_zero",
    "one_zero_slope",
    "sine",
    "conceal",
    "concealed",
    "parity_labels",
    "modular_inverse",
]


@dataclass(frozen=True)
class Dataset:
    """A train/validation split (seed_systems.md §A.1).

    Attributes
    ----------
    name : str
        Dataset name (``"parity"``, ``"add"``, …, ``"one_zero"``, ``"slope"``, ``"sine"``).
    x_train, x_val : ndarray, shape (N_train, n), (N_val, n)
        Inputs (float64). ``n = d + m``: ``d`` informative coordinates then ``m`` spurious ones.
    y_train, y_val : ndarray
        Targets: one-hot (N, classes) for datasets 1–7; scalar (N,) for 8–10 (0/1 labels for 8,
        real values for 9 and 10).
    n_informative : int
        ``d``, the number of informative leading input coordinates.
    n_spurious : int
        ``m``, the number of appended concealment coordinates (§A.2).
    settings : Mapping
        The arguments that built the dataset (for provenance).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    n_informative: int
    n_spurious: int = 0
    settings: Mapping = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("x_train", "y_train", "x_val", "y_val"):
            arr = np.array(getattr(self, key), dtype=float)
            arr.setflags(write=False)
            object.__setattr__(self, key, arr)
        if self.x_train.shape[0] != self.y_train.shape[0] or self.x_val.shape[0] != self.y_val.shape[0]:
            raise InvalidParameterError("inputs and targets must have the same number of rows")
        object.__setattr__(self, "settings", dict(self.settings))

    @property
    def input_dim(self) -> int:
        """Total input length n = d + m."""
        return int(self.x_train.shape[1])


# ----------------------------------------------------------------------------------------------
# helpers


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((labels.size, classes))
    out[np.arange(labels.size), labels.astype(int)] = 1.0
    return out


def _random_split(n_total: int, n_train: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random permutation split (the role of ``torch.utils.data.random_split``)."""
    order = rng.permutation(n_total)
    return order[:n_train], order[n_train:]


def _check_split(n_samples: int, n_train: int) -> None:
    check_int_at_least("n_samples", n_samples, 2)
    if not (1 <= n_train < n_samples):
        raise InvalidParameterError(f"n_train must lie in [1, n_samples - 1] = [1, {n_samples - 1}], got {n_train!r}")


def modular_inverse(y: np.ndarray, p: int) -> np.ndarray:
    """Multiplicative inverse y^(p−2) mod p (Fermat) for y in 1..p−1, p prime."""
    y = np.asarray(y, dtype=np.int64)
    return np.array([pow(int(v), p - 2, p) for v in y.ravel()], dtype=np.int64).reshape(y.shape)


def _is_prime(p: int) -> bool:
    return p >= 2 and all(p % q for q in range(2, int(p ** 0.5) + 1))


#: Datasets 2–7 (§A.1): name -> (rule c(x, y, p), whether y ranges over 1..p−1 only).
MODULAR_OPERATIONS: dict[str, tuple[Callable[[np.ndarray, np.ndarray, int], np.ndarray], bool]] = {
    "add": (lambda x, y, p: (x + y) % p, False),  # dataset 2
    "sub": (lambda x, y, p: (x - y) % p, False),  # dataset 3
    "div": (lambda x, y, p: (x * modular_inverse(y, p)) % p, True),  # dataset 4
    "poly": (lambda x, y, p: (x * x + x * y + y * y) % p, False),  # dataset 5, eq 18
    "poly2": (lambda x, y, p: (x * x + x * y + y * y + x) % p, False),  # dataset 6, eq 19
    "xyx": (lambda x, y, p: (x * y * x) % p, False),  # dataset 7, eq 20
}

#: The six datasets of the concealment study (§A.6), in the order of Table 2.
CONCEALMENT_DATASETS = tuple(MODULAR_OPERATIONS)


# ----------------------------------------------------------------------------------------------
# concealment (§A.2)


def conceal(x: np.ndarray, m: int, rng: np.random.Generator, spurious: str = "bits") -> np.ndarray:
    """Append ``m`` spurious coordinates to every row of ``x`` (seed_systems.md §A.2).

    Parameters
    ----------
    x : ndarray, shape (N, d)
    m : int
        Number of spurious coordinates (``m >= 0``).
    rng : numpy.random.Generator
    spurious : {"bits", "gaussian"}
        ``"bits"`` (authors' code, Decision D.1): independent Bernoulli(½) values in {0, 1};
        ``"gaussian"``: independent N(0, 1) values (the paper's §2.1.3 wording).

    Returns
    -------
    ndarray, shape (N, d + m)
        Drawn once per example (fixed, not resampled per epoch); the target is unchanged.
    """
    check_int_at_least("m (spurious dimensions)", m, 0)
    x = np.asarray(x, dtype=float)
    if spurious == "bits":
        extra = rng.integers(0, 2, size=(x.shape[0], m)).astype(float)
    elif spurious == "gaussian":
        extra = rng.standard_normal((x.shape[0], m))
    else:
        raise InvalidParameterError(f"spurious must be one of 'bits', 'gaussian', got {spurious!r}")
    return np.concatenate([x, extra], axis=1)


# ----------------------------------------------------------------------------------------------
# datasets 1–7


def parity_labels(bits: np.ndarray) -> np.ndarray:
    """Class index of Dataset 1: 1 if Π_i (2 b_i − 1) = +1, else 0 (§A.1, authors' code)."""
    signs = 2.0 * np.asarray(bits, dtype=float) - 1.0
    return (np.prod(signs, axis=1) > 0).astype(int)


def parity(k: int = 3, n_total_dim: int = 40, n_samples: int = 1100, n_train: int = 1000, seed: int = 0,
           spurious: str = "bits") -> Dataset:
    """Dataset 1, k-bit parity, concealed to total input length ``n_total_dim`` (§A.1, §A.2, §A.5).

    Inputs are the raw bits (0/1 floats) followed by ``n_total_dim − k`` spurious coordinates;
    the target is one-hot over 2 classes, class 1 iff the ±1-product is +1.
    Defaults are the GP-parity setting of §A.5 (k = 3, n = 40, 1000 + 100 samples).
    """
    check_int_at_least("k", k, 1)
    check_int_at_least("n_total_dim", n_total_dim, k)
    _check_split(n_samples, n_train)
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(n_samples, k)).astype(float)
    labels = parity_labels(bits)
    x = conceal(bits, n_total_dim - k, rng, spurious)
    train, val = _random_split(n_samples, n_train, rng)
    y = _one_hot(labels, 2)
    return Dataset("parity", x[train], y[train], x[val], y[val], n_informative=k, n_spurious=n_total_dim - k,
                   settings=dict(k=k, n_total_dim=n_total_dim, n_samples=n_samples, n_train=n_train, seed=seed,
                                 spurious=spurious))


def modular(operation: str, p: int = 7, m: int = 0, n_samples: int = 800, n_train: int = 600, seed: int = 0,
            spurious: str = "bits") -> Dataset:
    """Datasets 2–7: ``c = op(x, y) mod p`` with one-hot inputs, concealed by ``m`` (§A.1, §A.6).

    x (and y, except for division where y ∈ {1..p−1}) are drawn uniformly *with replacement*.
    The input is concat(one-hot_p(x), one-hot_p(y)) followed by ``m`` spurious coordinates; the
    target is one-hot_p(c). Defaults are the concealment setting of §A.6 (p = 7, 800 samples,
    600 train).
    """
    if operation not in MODULAR_OPERATIONS:
        raise InvalidParameterError(f"operation must be one of {sorted(MODULAR_OPERATIONS)}, got {operation!r}")
    check_int_at_least("p", p, 2)
    if not _is_prime(p):
        raise InvalidParameterError(f"p must be a prime (modular division needs inverses), got {p!r}")
    _check_split(n_samples, n_train)
    rule, nonzero_y = MODULAR_OPERATIONS[operation]
    rng = np.random.default_rng(seed)
    x = rng.integers(0, p, size=n_samples)
    y = rng.integers(1, p, size=n_samples) if nonzero_y else rng.integers(0, p, size=n_samples)
    c = rule(x, y, p)
    inputs = np.concatenate([_one_hot(x, p), _one_hot(y, p)], axis=1)
    inputs = conceal(inputs, m, rng, spurious)
    train, val = _random_split(n_samples, n_train, rng)
    target = _one_hot(c, p)
    return Dataset(operation, inputs[train], target[train], inputs[val], target[val], n_informative=2 * p,
                   n_spurious=m, settings=dict(operation=operation, p=p, m=m, n_samples=n_samples, n_train=n_train,
                                               seed=seed, spurious=spurious))


def concealed(name: str, m: int, seed: int, **kwargs) -> Dataset:
    """Dataset by name for the concealment study (datasets 2–7, or ``"parity"``)."""
    if name == "parity":
        k = kwargs.pop("k", 3)
        return parity(k=k, n_total_dim=k + m, seed=seed, **kwargs)
    return modular(name, m=m, seed=seed, **kwargs)


# ----------------------------------------------------------------------------------------------
# datasets 8–10


def _legacy_uniform(seed: int, n_points: int) -> np.ndarray:
    """``np.random.seed(seed); np.random.rand(n, 1) − 0.5`` without touching global state."""
    return np.random.RandomState(seed).rand(n_points, 1) - 0.5


def one_zero(seed: int = 42, n_points: int = 100, n_train: int = 20, n_val: int = 20,
             x_dist: str = "uniform") -> Dataset:
    """Dataset 8, 1-0 classification: label 1 iff x > 0 (§A.1, Decision D.1).

    ``x_dist="uniform"`` (authors' code): x = U(0,1) − 0.5 from NumPy's legacy stream;
    ``"normal"``: x ~ N(0, 0.5²). Train = the first ``n_train`` points, validation = the last
    ``n_val`` (``x[80:]`` for the defaults).
    """
    check_int_at_least("n_points", n_points, 2)
    check_int_at_least("n_train", n_train, 1)
    check_int_at_least("n_val", n_val, 1)
    if n_train + n_val > n_points:
        raise InvalidParameterError(f"n_train + n_val must be <= n_points = {n_points}, got {n_train + n_val}")
    if x_dist == "uniform":
        x = _legacy_uniform(seed, n_points)
    elif x_dist == "normal":
        x = 0.5 * np.random.RandomState(seed).randn(n_points, 1)
    else:
        raise InvalidParameterError(f"x_dist must be one of 'uniform', 'normal', got {x_dist!r}")
    label = (x[:, 0] > 0).astype(float)
    return Dataset("one_zero", x[:n_train], label[:n_train], x[n_points - n_val:], label[n_points - n_val:],
                   n_informative=1, settings=dict(seed=seed, n_points=n_points, n_train=n_train, n_val=n_val,
                                                  x_dist=x_dist))


def one_zero_slope(seed: int = 0, n_points: int = 100, n_train: int = 2, slope: float = 0.3) -> Dataset:
    """Dataset 9 (eq 21): y = 0.3·x with x = U(0,1) − 0.5 (legacy stream); train = first 2 points.

    Targets are the real values y; the classification target of §A.3 is sign(y).
    """
    check_int_at_least("n_points", n_points, 2)
    if not (1 <= n_train < n_points):
        raise InvalidParameterError(f"n_train must lie in [1, {n_points - 1}], got {n_train!r}")
    x = _legacy_uniform(seed, n_points)
    y = slope * x[:, 0]
    return Dataset("slope", x[:n_train], y[:n_train], x[n_train:], y[n_train:], n_informative=1,
                   settings=dict(seed=seed, n_points=n_points, n_train=n_train, slope=slope))


def sine(seed: int = 0, n_points: int = 100, n_train: int = 50, amplitude: float = 1.0,
         frequency: float = 1.0 / np.pi, phase: float = 0.0, noise_std: float = 0.1,
         x_range: tuple[float, float] = (-1.5, 1.5), random_x: bool = True) -> Dataset:
    """Dataset 10 (eq 22): y = A sin(2π f x + φ) + ε, ε ~ N(0, σ_y²), random 50/50 split.

    Defaults (authors' code): A = 1, f = 1/π (y = sin(2x) + ε), φ = 0, σ_y = 0.1, 100 points,
    x uniform on [−1.5, 1.5] (``random_x=True``); ``random_x=False`` gives
    linspace(−1.5, 1.5, 100) + 0.1·N(0, 1).
    """
    check_int_at_least("n_points", n_points, 2)
    _check_split(n_points, n_train)
    if not (np.isfinite(noise_std) and noise_std >= 0):
        raise InvalidParameterError(f"noise_std must lie in [0, inf), got {noise_std!r}")
    lo, hi = map(float, x_range)
    if not hi > lo:
        raise InvalidParameterError(f"x_range must be (low, high) with high > low, got {x_range!r}")
    rng = np.random.default_rng(seed)
    if random_x:
        x = rng.uniform(lo, hi, size=n_points)
    else:
        x = np.linspace(lo, hi, n_points) + noise_std * rng.standard_normal(n_points)
    y = amplitude * np.sin(2 * np.pi * frequency * x + phase) + noise_std * rng.standard_normal(n_points)
    train, val = _random_split(n_points, n_train, rng)
    return Dataset("sine", x[train, None], y[train], x[val, None], y[val], n_informative=1,
                   settings=dict(seed=seed, n_points=n_points, n_train=n_train, amplitude=amplitude,
                                 frequency=frequency, phase=phase, noise_std=noise_std, x_range=[lo, hi],
                                 random_x=random_x))
