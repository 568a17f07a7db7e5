"""The named polynomial-task family of the paper (theory.md §5 table), one frozen dataclass each.

A :class:`CommitteeTask` holds the keyword arguments of :func:`empirical.train_committee` with
the paper's values as defaults (``settings``), a reduced-size variant (``reduced``: overrides
that make the task run in a minute or two on two cores while keeping its phenomenon), an optional sweep
(a tuple of override dictionaries, one run each) and, for tasks whose data are not the plain
teacher draws, a data builder.

Conventions are the package's (theory.md §0): ``alpha`` = P/D, ``scale`` = κ, η = η₀N/(κ²σ²),
t = η₀·step/D. Convention-B experiments (Fig. 3, Fig. 6, eigenvector labels) set
``target_scale=1``: x ~ N(0, I/D) with h = w·x is the same as the code's x ~ N(0, I),
h = w·x/√D.

Settings that the paper's text lost (theory.md §5 "[not recovered]") are chosen here and
documented in each task's ``notes``:

* ``goldilocks`` (App. 8.4.1): a sweep of P/D from below 1 to P = D² at D = 40.
* ``multi_index`` (App. 16): y = ½ Σ_{k≤K} (β_k·x)², K = 2 and 3 independent teachers.
* ``hermite`` (App. 16): y = He_k(β·x) with |β|² = D (β·x ~ N(0, 1)), k = 2, 3, 4, and the
  activation h + (ε/2)h^k of matching degree, P/D = 10 ("larger P").
* ``weight_decay`` (App. 14): the Fig. 6(b) lazy setting κ = 4 with λ ∈ {0, 1e-5, 1e-4, 4e-4}
  (L2 added to the gradient; ηλ ≤ 0.03 keeps the decay stable at η = η₀N/κ²).
* ``adamw``: AdamW on the Fig. 1 setting with lr 3e-3, weight decay 0.1 (the values of the
  paper's AdamW student–teacher run, App. 15b, which is not a committee machine).
* ``interpolation`` (App. 8.4.2): η₀ = 0.5 (the D = 40, N = 2 experiments' value).
* ``eigenvector_activations`` (App. 8.4): the alternative activations at k ∈ {1, 100}.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import numpy as np

from empirical.committee.machine import ACTIVATIONS, CommitteeData, make_committee_data, train_committee
from dmft.parameters import InvalidParameterError

__all__ = ["CommitteeTask", "TASKS", "get_task", "run_task", "ntk_gram_activation", "eigenvector_labels_data",
           "interpolation_data", "multi_index_data", "hermite_data", "hermite"]


# --------------------------------------------------------------------------------------------
# data builders (called with the merged keyword arguments of one run)
# --------------------------------------------------------------------------------------------
def ntk_gram_activation(weights, inputs, *, scale, epsilon, activation="poly"):
    """NTK Gram w.r.t. W of f = (κ/N)Σφ(w_i·x): K(x, x') = (κ²/N²) Σ_i φ'(h_i)φ'(h_i') x·x'.

    The definition of theory.md §2.2 for any activation of :data:`ACTIVATIONS` (the tangent
    kernel summed over the hidden weights only, readouts fixed). Shape (P, P).
    """
    W = np.asarray(weights, dtype=float)
    X = np.asarray(inputs, dtype=float)
    dphi = ACTIVATIONS[activation][1](X @ W.T, epsilon)
    n = W.shape[0]
    return (scale / n) ** 2 * (dphi @ dphi.T) * (X @ X.T)


def eigenvector_labels_data(*, alpha, dim, width, scale, epsilon, seed, activation="poly", eigen_index=1,
                            n_test=100, init_scale=1.0, **_):
    """Eigenvector-label task (App. 8.4): labels are the k-th eigenvector of the initial NTK Gram.

    2P inputs (train and test together) are drawn; the labels are the ``eigen_index``-th
    eigenvector (1-based, descending eigenvalue) of the NTK Gram at W(0) on all 2P points, minus
    its mean over the 2P points. The first P points train, the rest test (``n_test`` = P).
    """
    n_train = int(round(alpha * dim))
    total = n_train + n_test
    if not 1 <= eigen_index <= total:
        raise InvalidParameterError(f"eigen_index must lie in [1, {total}] (train + test points), got {eigen_index!r}")
    base = make_committee_data(alpha, dim, width, init_scale=init_scale, seed=seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(6)[5])
    X_all = rng.standard_normal((total, dim)) / math.sqrt(dim)
    K = ntk_gram_activation(base.init_weights, X_all, scale=scale, epsilon=epsilon, activation=activation)
    values, vectors = np.linalg.eigh(K)
    v = vectors[:, np.argsort(values)[::-1][eigen_index - 1]]
    v = v * np.sign(v[np.argmax(np.abs(v))])  # fix the sign convention
    labels = v - v.mean()
    return CommitteeData(inputs=X_all[:n_train], targets=labels[:n_train], init_weights=base.init_weights,
                         teacher=None, test_inputs=X_all[n_train:], test_targets=labels[n_train:])


def interpolation_data(*, alpha, dim, width, scale, epsilon, seed, interpolation=0.0, rho=1.0,
                       target_scale=0.5, n_test=0, **_):
    """W(0) = λW★ + (1 − λ)W_rand, W★ rows ±β/√(κε) (a generalising fixed point, §4.3; App. 8.4.2)."""
    lam = float(interpolation)
    if not 0.0 <= lam <= 1.0:
        raise InvalidParameterError(f"interpolation must lie in [0, 1], got {lam!r}")
    if width % 2:
        raise InvalidParameterError(f"the aligned solution needs an even width, got width={width}")
    if scale * epsilon <= 0:
        raise InvalidParameterError("the aligned solution needs scale*epsilon > 0")
    data = make_committee_data(alpha, dim, width, rho=rho, target_scale=target_scale, n_test=n_test, seed=seed)
    signs = np.where(np.arange(width) % 2 == 0, 1.0, -1.0)
    # ρ_eff = 2sρ: the aligned rows solve κεM = β_eff β_effᵀ with β_eff = √(2s)β.
    aligned = signs[:, None] * data.teacher[None, :] * math.sqrt(2 * target_scale / (scale * epsilon))
    return replace(data, init_weights=lam * aligned + (1 - lam) * data.init_weights)


def multi_index_data(*, alpha, dim, width, seed, n_indices=2, n_test=2000, init_scale=1.0, **_):
    """Multi-index target y = ½ Σ_{k≤K} (β_k·x)², β_k ~ N(0, I) normalised to |β_k|² = D (App. 16)."""
    base = make_committee_data(alpha, dim, width, init_scale=init_scale, n_test=n_test, seed=seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(7)[6])
    betas = rng.standard_normal((int(n_indices), dim))
    betas *= math.sqrt(dim) / np.linalg.norm(betas, axis=1, keepdims=True)
    target = lambda X: 0.5 * np.sum((X @ betas.T) ** 2, axis=1)  # noqa: E731
    return CommitteeData(inputs=base.inputs, targets=target(base.inputs), init_weights=base.init_weights,
                         teacher=None, test_inputs=base.test_inputs, test_targets=target(base.test_inputs))


def hermite(k: int, z):
    """Probabilists' Hermite polynomial He_k(z) by the three-term recursion."""
    z = np.asarray(z, dtype=float)
    previous, current = np.ones_like(z), z
    if k == 0:
        return previous
    for j in range(1, k):
        previous, current = current, z * current - j * previous
    return current


def hermite_data(*, alpha, dim, width, seed, degree=2, n_test=2000, init_scale=1.0, **_):
    """Hermite target y = He_k(β·x), |β|² = D so that β·x ~ N(0, 1) (App. 16)."""
    base = make_committee_data(alpha, dim, width, init_scale=init_scale, n_test=n_test, seed=seed)
    beta = base.teacher
    target = lambda X: hermite(int(degree), X @ beta)  # noqa: E731
    return CommitteeData(inputs=base.inputs, targets=target(base.inputs), init_weights=base.init_weights,
                         teacher=None, test_inputs=base.test_inputs, test_targets=target(base.test_inputs))


# --------------------------------------------------------------------------------------------
# the task type
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommitteeTask:
    """One named experiment of the polynomial-task family.

    Attributes
    ----------
    name : str
    description : str
        What the paper does with it (figure / appendix).
    settings : Mapping
        Keyword arguments of :func:`train_committee` (plus data-builder options), paper values.
    reduced : Mapping
        Overrides for a small version (a minute or two on two CPU cores).
    sweep : tuple of Mapping
        One run per entry (its overrides, a ``label`` key optional); empty: a single run.
    reduced_sweep : tuple of Mapping, optional
        The sweep of the reduced version (default: ``sweep``).
    data_builder : callable, optional
        ``builder(**kwargs) -> CommitteeData`` for data other than the plain teacher draws.
    notes : str
        Choices made where the paper's settings were not recovered.
    """

    name: str
    description: str
    settings: Mapping[str, Any]
    reduced: Mapping[str, Any] = field(default_factory=dict)
    sweep: tuple = ()
    reduced_sweep: tuple | None = None
    data_builder: Callable[..., CommitteeData] | None = None
    notes: str = ""

    def runs(self, *, reduced: bool = False, overrides: Mapping[str, Any] | None = None) -> list[tuple[str, dict]]:
        """The (label, keyword arguments) of every run: settings ← reduced ← overrides ← sweep."""
        base = dict(self.settings)
        if reduced:
            base = _merge(base, self.reduced)
        base = _merge(base, overrides or {})
        sweep = (self.reduced_sweep if (reduced and self.reduced_sweep is not None) else self.sweep) or ({},)
        out = []
        for entry in sweep:
            entry = dict(entry)
            label = entry.pop("label", None) or ",".join(f"{k}={v}" for k, v in entry.items()) or self.name
            out.append((label, _merge(base, entry)))
        return out


def _merge(base: Mapping[str, Any], layer: Mapping[str, Any]) -> dict:
    """``{**base, **layer}``, except that a run length in ``layer`` (steps or t_max) replaces
    the other one in ``base``."""
    merged = dict(base)
    for length, other in (("steps", "t_max"), ("t_max", "steps")):
        if layer.get(length) is not None:
            merged.pop(other, None)
    merged.update({k: v for k, v in layer.items()})
    return merged


_DATA_KEYS = ("eigen_index", "interpolation", "n_indices", "degree")


def _train_one(task: CommitteeTask, kwargs: dict, *, seed: int, **runtime):
    kwargs = dict(kwargs)
    builder_only = {k: kwargs.pop(k) for k in _DATA_KEYS if k in kwargs}
    data = None
    if task.data_builder is not None:
        data = task.data_builder(seed=seed, **kwargs, **builder_only)
        if data.test_inputs is not None:
            kwargs["n_test"] = data.test_inputs.shape[0]
    result = train_committee(seed=seed, data=data, **kwargs, **runtime)
    if builder_only:
        merged = dict(result.settings)
        merged.update(builder_only)
        merged["task"] = task.name
        result = replace(result, settings=merged)
    else:
        result = replace(result, settings={**result.settings, "task": task.name})
    return result


def run_task(task: CommitteeTask | str, *, reduced: bool = False, seed: int = 0,
             overrides: Mapping[str, Any] | None = None, **runtime) -> list[tuple[str, Any]]:
    """Train every run of a task; returns [(label, LearningCurves), …].

    ``runtime`` (``device``, ``dtype``, ``progress``, ``record_points``, ``record_hook``) passes
    to :func:`train_committee`.
    """
    if isinstance(task, str):
        task = get_task(task)
    return [(label, _train_one(task, kwargs, seed=seed, **runtime))
            for label, kwargs in task.runs(reduced=reduced, overrides=overrides)]


# --------------------------------------------------------------------------------------------
# the family (theory.md §5 table)
# --------------------------------------------------------------------------------------------
_FIG1 = dict(alpha=5.5, dim=100, width=500, scale=1.0, epsilon=0.02, lr=1.0, center=True, steps=100_000,
             n_test=1000, target_scale=0.5)
_FIG1_REDUCED = dict(dim=40, width=20, epsilon=0.2, t_max=120.0, n_test=1000)
_FIG3 = dict(alpha=4.5, dim=100, width=500, epsilon=0.25, lr=0.5, center=True, steps=60_000, target_scale=1.0,
             scale=1.0, n_test=1000)
_SMALL = dict(dim=40, width=20, t_max=150.0)
_D40N2 = dict(alpha=3.0, dim=40, width=2, scale=1.0, epsilon=0.25, lr=0.5, center=False, steps=50_000,
              target_scale=0.5)

TASKS: dict[str, CommitteeTask] = {}


def _add(task: CommitteeTask) -> None:
    TASKS[task.name] = task


_add(CommitteeTask(
    "fig1", "Fig. 1: grokking of the polynomial task (D=100, P=550, N=500, kappa=1, epsilon=0.02, centred)",
    _FIG1, _FIG1_REDUCED))
_add(CommitteeTask(
    "scale_sweep", "Fig. 3(a): output-scale sweep (convention B, epsilon=0.25, centred, eta0=0.5)",
    _FIG3, _SMALL,
    sweep=tuple({"scale": k} for k in (2**-5, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)),
    reduced_sweep=tuple({"scale": k} for k in (0.25, 1.0, 4.0))))
_add(CommitteeTask(
    "epsilon_sweep", "Fig. 3(b): epsilon sweep at kappa=1, uncentred (third-party copy's settings)",
    {**_FIG3, "center": False}, _SMALL,
    sweep=tuple({"epsilon": e} for e in (0.25, 0.5, 1.0, 2.0, 4.0)),
    reduced_sweep=tuple({"epsilon": e} for e in (0.25, 1.0, 4.0))))
_add(CommitteeTask(
    "weight_norm", "App. 8.2 / Fig. 6(a): initial weight scale sigma at kappa=1 (lr 0.5N/sigma^2)",
    {**_FIG3, "steps": 50_000}, _SMALL,
    sweep=tuple({"init_scale": s} for s in (0.125, 0.25, 0.5, 1.0, 2.0)),
    reduced_sweep=tuple({"init_scale": s} for s in (0.25, 1.0, 2.0)),
    notes="centred as the other Fig. 3-family runs; relative movement in extras['relative_movement']"))
_add(CommitteeTask(
    "weight_norm_joint", "App. 8.2 / Fig. 6(b): sigma with kappa = 1/sigma^2 (weight norm = laziness)",
    {**_FIG3, "steps": 50_000}, _SMALL,
    sweep=tuple({"init_scale": s, "scale": 1 / s**2, "label": f"sigma={s},scale={1 / s**2:g}"}
                for s in (0.25, 0.5, 1.0, 2.0)),
    reduced_sweep=tuple({"init_scale": s, "scale": 1 / s**2, "label": f"sigma={s},scale={1 / s**2:g}"}
                        for s in (0.5, 1.0, 2.0))))
_add(CommitteeTask(
    "decomposition", "App. 12 Fig. 11: test-loss decomposition (D=40, N=2, alpha=3, uncentred)",
    _D40N2, {"t_max": 100.0}))
_add(CommitteeTask(
    "readouts", "App. 12 Fig. 12: the same with trained readouts (eta0=0.05, 1e5 steps)",
    {**_D40N2, "readouts": True, "lr": 0.05, "steps": 100_000}, {"t_max": 60.0}))
_add(CommitteeTask(
    "eigenvector", "App. 8.4: labels = k-th eigenvector of the initial NTK Gram (D=100, N=2, P=100+100)",
    dict(alpha=1.0, dim=100, width=2, scale=1.0, epsilon=0.25, lr=0.5, center=True, steps=25_000,
         target_scale=1.0, n_test=100, eigen_index=1),
    {"dim": 40, "n_test": 40, "t_max": 100.0},
    sweep=tuple({"eigen_index": k} for k in (1, 5, 70, 75, 100, 150)),
    reduced_sweep=tuple({"eigen_index": k} for k in (1, 5, 30, 60)),
    data_builder=eigenvector_labels_data))
_add(CommitteeTask(
    "eigenvector_activations", "App. 8.4: eigenvector labels with the alternative activations",
    {**TASKS["eigenvector"].settings},
    {"dim": 40, "n_test": 40, "t_max": 100.0},
    sweep=tuple({"activation": a, "eigen_index": k} for a in ("quadratic", "cubic", "relu_quartic", "quartic")
                for k in (1, 100)),
    reduced_sweep=tuple({"activation": a, "eigen_index": k} for a in ("quadratic", "cubic", "relu_quartic", "quartic")
                        for k in (1, 40)),
    data_builder=eigenvector_labels_data,
    notes="the paper does not say which k it combined with each activation; k = 1 and k = 100 here"))
_add(CommitteeTask(
    "interpolation", "App. 8.4.2: init interpolated towards the aligned solution, W = lam W* + (1-lam) W_rand",
    {**_D40N2, "steps": 20_000},
    {"t_max": 100.0},
    sweep=tuple({"interpolation": lam} for lam in (0.0, 0.05, 0.2, 0.5, 0.75, 0.95)),
    data_builder=interpolation_data,
    notes="eta0 = 0.5 (not recovered; the D=40, N=2 experiments' value)"))
_add(CommitteeTask(
    "goldilocks", "App. 8.4.1: dataset-size regimes, grokking for D <~ P << D^2",
    dict(alpha=5.5, dim=40, width=20, scale=1.0, epsilon=0.2, lr=1.0, center=True, t_max=400.0, n_test=1000),
    {"t_max": 150.0},
    sweep=tuple({"alpha": a} for a in (0.5, 1.0, 3.0, 5.5, 10.0, 40.0)),
    reduced_sweep=tuple({"alpha": a} for a in (1.0, 5.5, 40.0)),
    notes="settings chosen (not recovered): D=40, N=20, kappa=1, epsilon=0.2, P/D from 0.5 to D"))
_add(CommitteeTask(
    "multi_index", "App. 16: multi-index targets y = 1/2 sum_k (beta_k.x)^2, K = 2, 3",
    dict(alpha=10.0, dim=40, width=20, scale=1.0, epsilon=0.25, lr=0.5, center=True, t_max=400.0, n_test=2000),
    {"t_max": 100.0},
    sweep=tuple({"n_indices": k} for k in (2, 3)),
    data_builder=multi_index_data,
    notes="settings chosen (not recovered)"))
_add(CommitteeTask(
    "hermite", "App. 16: Hermite targets He_k(beta.x), activation h + (epsilon/2) h^k, k = 2, 3, 4",
    dict(alpha=10.0, dim=40, width=20, scale=1.0, epsilon=0.25, lr=0.5, center=True, t_max=400.0, n_test=2000),
    {"t_max": 100.0},
    sweep=({"degree": 2, "activation": "poly"}, {"degree": 3, "activation": "poly3"},
           {"degree": 4, "activation": "poly4"}),
    data_builder=hermite_data,
    notes="settings chosen (not recovered); He_2 = (beta.x)^2 - 1"))
_add(CommitteeTask(
    "weight_decay", "App. 14: weight decay on the lazy Fig. 6(b)-type setting (kappa=4)",
    {**_FIG3, "scale": 4.0, "steps": 50_000}, _SMALL,
    sweep=tuple({"weight_decay": w} for w in (0.0, 1e-5, 1e-4, 4e-4)),
    reduced_sweep=tuple({"weight_decay": w} for w in (0.0, 1e-3, 5e-3)),
    notes="values not recovered; L2 added to the gradient; eta*lambda <= 0.1 (reduced: eta = 0.5*20/16)"))
_add(CommitteeTask(
    "momentum", "App. 15a: the Fig. 1 setting with momentum 0.95",
    {**_FIG1, "optimizer": "momentum", "momentum": 0.95}, _FIG1_REDUCED))
_add(CommitteeTask(
    "adamw", "AdamW on the Fig. 1 setting (lr 3e-3/kappa^2, weight decay 0.1)",
    {**_FIG1, "optimizer": "adamw", "lr": 3e-3, "weight_decay": 0.1}, {**_FIG1_REDUCED, "t_max": 0.5},
    notes="App. 15b uses AdamW on a tanh MLP; the values are carried over to the committee machine"))


def get_task(name: str) -> CommitteeTask:
    """The task called ``name`` (ValueError listing the valid names otherwise)."""
    if name not in TASKS:
        raise InvalidParameterError(f"task must be one of {', '.join(sorted(TASKS))}, got {name!r}")
    return TASKS[name]
