"""Tests of the committee-machine simulation (empirical/committee/machine.py, theory.md §0–§2, §7).

Each numerical claim is checked against something that could fail independently:
autograd and a per-sample loop for the gradient; a plain-NumPy trainer written here from the
spec's per-step update (theory.md §1.4) for whole trajectories; a large finite test set for the
exact population loss; the online ODE (dmft.solve at alpha=inf) for the large-alpha limit; the
qualitative claims of theory.md §7.7 at reduced size.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dmft
from dmft.population import loss_decomposition
from empirical import CommitteeData, average, make_committee_data, simulate_seeds, train_committee
from empirical.committee.machine import (
    ACTIVATIONS,
    committee_loss_and_gradient,
    readout_loss_decomposition,
    record_schedule,
)
from empirical.metrics import time_to_loss

torch.set_num_threads(1)

CPU = dict(device="cpu")


# ------------------------------------------------------------------------------------------
# gradients
# ------------------------------------------------------------------------------------------
def _random_problem(rng, p=13, d=7, n=4):
    X = rng.standard_normal((p, d)) / math.sqrt(d)
    y = 0.5 * (X @ rng.standard_normal(d)) ** 2
    W = rng.standard_normal((n, d))
    a = rng.standard_normal(n)
    W0 = rng.standard_normal((n, d))
    return X, y, W, a, W0


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("readouts", [False, True])
@pytest.mark.parametrize("center", [False, True])
def test_gradient_matches_autograd(rng, activation, readouts, center):
    """Closed-form ∂L/∂W, ∂L/∂a equal torch.autograd of L = mean((f̃ − y)²), to 1e-12 (float64
    round-off on O(1) numbers)."""
    X, y, W, a, W0 = _random_problem(rng)
    kappa, eps = 1.7, 0.3
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    Xt, yt = t(X), t(y)
    Wt = t(W).requires_grad_(True)
    at = t(a).requires_grad_(True) if readouts else None
    phi = ACTIVATIONS[activation][0]

    def predict(weights, readout):
        act = phi(Xt @ weights.T, eps)
        return kappa / W.shape[0] * (act.sum(1) if readout is None else act @ readout)

    offset = predict(t(W0), t(a) if readouts else None).detach() if center else None
    f = predict(Wt, at) - (offset if center else 0.0)
    loss = ((f - yt) ** 2).mean()
    loss.backward()
    closed_loss, gW, ga, _ = committee_loss_and_gradient(
        t(W), t(a) if readouts else None, Xt, yt, scale=kappa, epsilon=eps, offset=offset,
        activation=activation)
    assert float(closed_loss) == pytest.approx(float(loss.detach()), rel=1e-12)
    np.testing.assert_allclose(gW.numpy(), Wt.grad.numpy(), rtol=1e-12, atol=1e-13)
    if readouts:
        np.testing.assert_allclose(ga.numpy(), at.grad.numpy(), rtol=1e-12, atol=1e-13)


def test_gd_step_matches_spec_update(rng):
    """One step of η = η₀N/κ² GD equals the spec's per-sample update (theory.md §1.4)
    Δw_i = (2η₀/κ)(1/P) Σ_μ Δ_μ φ'(h_iμ) x_μ, Δ = y − f, written as explicit loops; 1e-12."""
    X, y, W, _, _ = _random_problem(rng, p=9, d=5, n=3)
    kappa, eps, eta0 = 2.5, 0.4, 0.7
    n, p = W.shape[0], X.shape[0]
    expected = W.copy()
    for i in range(n):
        total = np.zeros(X.shape[1])
        for mu in range(p):
            f_mu = kappa / n * sum(X[mu] @ W[j] + 0.5 * eps * (X[mu] @ W[j]) ** 2 for j in range(n))
            total += (y[mu] - f_mu) * (1 + eps * (X[mu] @ W[i])) * X[mu]
        expected[i] += 2 * eta0 / kappa * total / p
    _, gW, _, _ = committee_loss_and_gradient(W, None, X, y, scale=kappa, epsilon=eps)
    eta = eta0 * n / kappa**2
    np.testing.assert_allclose(W - eta * gW, expected, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------------------
# an independent plain-NumPy trainer (written separately from empirical/committee/machine.py)
# ------------------------------------------------------------------------------------------
def _reference_run(X, y, W0, beta, a0, *, kappa, eps, eta0, steps, center, optimizer="gd", mu=0.0,
                   wd=0.0, target_scale=0.5, b1=0.9, b2=0.999, adam_eps=1e-8):
    """Full-batch training written from theory.md §1.4 / §2.3 with per-step records.

    Returns a dict of arrays indexed by step 0..steps: train loss, exact population loss in
    the D-dimensional form E[(v·x + xᵀAx)²] = |v|²/D + (trA)²/D² + 2‖A‖²_F/D², overlaps,
    covariance, ‖θ‖ and ‖θ−θ₀‖/‖θ₀‖.
    """
    P, D = X.shape
    N = W0.shape[0]
    trained_readouts = a0 is not None
    W = W0.copy()
    a = a0.copy() if trained_readouts else np.ones(N)
    a_init = a.copy()

    def net(Wm, am, Xm):
        H = Xm @ Wm.T
        return kappa / N * ((H + eps / 2 * H**2) @ am), H

    f_init = net(W0, a_init, X)[0] if center else np.zeros(P)
    lr = eta0 * N / kappa**2 if optimizer in ("gd", "momentum") else eta0 / kappa**2
    vel_w, vel_a = np.zeros_like(W), np.zeros_like(a)
    sq_w, sq_a = np.zeros_like(W), np.zeros_like(a)
    theta0 = math.sqrt(np.sum(W0**2) + (np.sum(a_init**2) if trained_readouts else 0.0))
    out = {k: [] for k in ("train", "pop", "m", "Q", "norm", "move")}
    for k in range(steps + 1):
        f, H = net(W, a, X)
        err = f - f_init - y
        out["train"].append(np.mean(err**2))
        # population loss, D-dimensional form
        v = kappa / N * (a @ W - (a_init @ W0 if center else 0.0))
        A = kappa * eps / (2 * N) * (W.T @ (a[:, None] * W)) - target_scale * np.outer(beta, beta)
        if center:
            A -= kappa * eps / (2 * N) * (W0.T @ (a_init[:, None] * W0))
        out["pop"].append(v @ v / D + np.trace(A) ** 2 / D**2 + 2 * np.sum(A * A) / D**2)
        out["m"].append(W @ beta / D)
        out["Q"].append(W @ W.T / D)
        sq = np.sum(W**2) + (np.sum(a**2) if trained_readouts else 0.0)
        mv = np.sum((W - W0) ** 2) + (np.sum((a - a_init) ** 2) if trained_readouts else 0.0)
        out["norm"].append(math.sqrt(sq))
        out["move"].append(math.sqrt(mv) / theta0)
        if k == steps:
            break
        # gradients of mean(err²) by the chain rule, sample by sample in matrix form
        dphi = 1 + eps * H
        g_w = np.zeros_like(W)
        for i in range(N):
            g_w[i] = 2 / P * kappa / N * a[i] * ((err * dphi[:, i]) @ X)
        g_a = 2 / P * kappa / N * ((H + eps / 2 * H**2).T @ err)
        pairs = [(W, g_w, vel_w, sq_w)] + ([(a, g_a, vel_a, sq_a)] if trained_readouts else [])
        for param, grad, vel, sqr in pairs:
            if optimizer in ("gd", "momentum", "adam"):
                grad = grad + wd * param
            if optimizer == "gd":
                param -= lr * grad
            elif optimizer == "momentum":
                vel *= mu
                vel += grad
                param -= lr * vel
            else:
                if optimizer == "adamw":
                    param *= 1 - lr * wd
                vel *= b1
                vel += (1 - b1) * grad
                sqr *= b2
                sqr += (1 - b2) * grad**2
                param -= lr * (vel / (1 - b1 ** (k + 1))) / (np.sqrt(sqr / (1 - b2 ** (k + 1))) + adam_eps)
    return {k: np.array(v) for k, v in out.items()}


REFERENCE_CASES = {
    "gd": dict(),
    "gd_centred": dict(center=True),
    "readouts_centred": dict(center=True, readouts=True, lr=0.05),
    "momentum_wd": dict(optimizer="momentum", momentum=0.9, weight_decay=1e-3, lr=0.3),
    "adamw": dict(optimizer="adamw", weight_decay=0.05, lr=0.02, center=True),
    "adam_convB": dict(optimizer="adam", weight_decay=1e-2, lr=0.02, target_scale=1.0),
}


@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_matches_independent_numpy_trainer(case):
    """Identical draws → identical curves (rtol 1e-10, float64; round-off only) for the trainer
    and the plain-NumPy reference above: train loss, exact test loss, m, Q, ‖θ‖, movement."""
    opts = dict(REFERENCE_CASES[case])
    readouts = opts.pop("readouts", False)
    target_scale = opts.pop("target_scale", 0.5)
    alpha, D, N, kappa, eps, steps = 3.0, 12, 3, 1.5, 0.25, 60
    data = make_committee_data(alpha, D, N, target_scale=target_scale, readouts=readouts, seed=7)
    res = train_committee(alpha, D, N, kappa, eps, steps=steps, record_points=25, data=data,
                          readouts=readouts, target_scale=target_scale, **opts, **CPU)
    ref = _reference_run(data.inputs, data.targets, data.init_weights, data.teacher,
                         data.init_readouts if readouts else None, kappa=kappa, eps=eps,
                         eta0=opts.get("lr", 1.0), steps=steps, center=opts.get("center", False),
                         optimizer=opts.get("optimizer", "gd"), mu=opts.get("momentum", 0.0),
                         wd=opts.get("weight_decay", 0.0), target_scale=target_scale)
    idx = res.extras["steps"]
    assert idx[0] == 0 and idx[-1] == steps
    np.testing.assert_allclose(res.t, opts.get("lr", 1.0) * idx / D, rtol=1e-15)
    np.testing.assert_allclose(res.train_loss, ref["train"][idx], rtol=1e-10)
    np.testing.assert_allclose(res.test_loss, ref["pop"][idx], rtol=1e-10)
    np.testing.assert_allclose(res.decomposition.sum(-1), res.test_loss, rtol=1e-12)
    np.testing.assert_allclose(res.overlap, ref["m"][idx], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(res.cov, ref["Q"][idx], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(res.extras["param_norm"], ref["norm"][idx], rtol=1e-10)
    np.testing.assert_allclose(res.extras["relative_movement"], ref["move"][idx], rtol=1e-10, atol=1e-14)
    # the run must actually move (a non-trivial comparison)
    assert res.train_loss[-1] < 0.9 * res.train_loss[0]


# ------------------------------------------------------------------------------------------
# population loss
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("opts", [dict(), dict(center=True), dict(readouts=True, lr=0.05),
                                  dict(readouts=True, center=True, lr=0.3, target_scale=1.0)],
                         ids=["plain", "centred", "readouts", "readouts_centred_convB"])
def test_population_loss_matches_large_test_set(opts):
    """The exact test loss from (Q, m[, cross]) agrees with the mean squared error on 10⁵ fresh
    points within 4.5 standard errors (SE from the per-point squared errors) at every record."""
    opts = dict(opts)
    readouts = opts.pop("readouts", False)
    target_scale = opts.pop("target_scale", 0.5)
    alpha, D, N = 4.0, 16, 3
    data = make_committee_data(alpha, D, N, n_test=100_000, readouts=readouts, target_scale=target_scale,
                               init_overlap=[0.3, -0.2, 0.1], seed=3)
    ses = []

    def standard_error(step, state):
        W = state.weights.numpy()
        a = state.readouts.numpy() if state.readouts is not None else np.ones(N)
        Xt = data.test_inputs
        H = Xt @ W.T
        f = 1.0 / N * ((H + 0.25 / 2 * H**2) @ a)
        if opts.get("center"):
            H0 = Xt @ data.init_weights.T
            a0 = data.init_readouts if readouts else np.ones(N)
            f -= 1.0 / N * ((H0 + 0.25 / 2 * H0**2) @ a0)
        sq = (f - data.test_targets) ** 2
        ses.append(sq.std(ddof=1) / math.sqrt(sq.size))
        return {"hook_mse": sq.mean()}

    # 2000 steps: the centred runs of this draw sit on their plateau for the first ~1000 steps
    res = train_committee(alpha, D, N, 1.0, 0.25, steps=2000, record_points=6, data=data, readouts=readouts,
                          target_scale=target_scale, record_hook=standard_error, **opts, **CPU)
    finite = res.extras["test_loss_finite"]
    np.testing.assert_allclose(finite, res.extras["hook_mse"], rtol=1e-10)
    z = np.abs(res.test_loss - finite) / np.array(ses)
    assert np.all(z < 4.5), z
    assert abs(res.test_loss[-1] - res.test_loss[0]) > 0.1 * res.test_loss[0]  # training moved the loss


def test_readout_decomposition_reduces_to_population_module(rng):
    """With a ≡ 1 the general Gaussian-moment decomposition equals dmft.population (1e-12)."""
    N, D = 3, 50
    W = rng.standard_normal((N, D))
    beta = rng.standard_normal(D)
    Q, m, rho = W @ W.T / D, W @ beta / D, beta @ beta / D
    G = np.block([[Q, m[:, None]], [m[None, :], np.array([[rho]])]])
    kappa, eps = 1.3, 0.2
    b = np.r_[np.full(N, kappa / N), 0.0]
    c = np.r_[np.full(N, kappa * eps / (2 * N)), -0.5]
    np.testing.assert_allclose(readout_loss_decomposition(G, b, c),
                               loss_decomposition(Q, m, epsilon=eps, scale=kappa, rho=rho), rtol=1e-12)


# ------------------------------------------------------------------------------------------
# the online limit
# ------------------------------------------------------------------------------------------
def test_large_alpha_follows_online_ode():
    """At P/D = 60, D = 100, N = 2 (planted m(0) = ±0.2, κ = 1, ε = ¼) the seed-mean test loss
    and overlaps follow dmft.solve(alpha=inf) over t ≤ 10 (through the escape, loss 1.1 → 0.05):
    |mean − ODE| ≤ 3·(seed-to-seed std) + 0.02 at every record (the O(1/α) train/test gap and
    finite-D fluctuations of order D^(-1/2); a wrong time unit or learning-rate factor of 2
    misses by > 0.3)."""
    m0 = [0.2, -0.2]
    sim = simulate_seeds(60.0, 100, 2, 1.0, 0.25, t_max=10.0, init_overlap=m0, record_points=30, seeds=3, **CPU)
    ode = dmft.solve(alpha=math.inf, epsilon=0.25, scale=1.0, width=2, t_max=10.0, init_overlap=m0, dt=0.05)
    ode_loss = np.interp(sim.t, ode.t, ode.test_loss)
    spread = sim.extras["test_loss_std"]
    assert np.all(np.abs(sim.test_loss - ode_loss) <= 3 * spread + 0.02)
    # train ≈ test at large α (gap O(1/α))
    assert np.max(np.abs(sim.train_loss - sim.test_loss)) < 0.1
    ode_m = np.stack([np.interp(sim.t, ode.t, ode.overlap[:, i]) for i in range(2)], axis=1)
    m_spread = sim.extras["overlap_all"].std(axis=0, ddof=1)
    assert np.all(np.abs(sim.overlap - ode_m) <= 3 * m_spread + 0.05)
    assert sim.test_loss[-1] < 0.1 and ode_loss[-1] < 0.1 and abs(sim.overlap[-1, 0]) > 1.8


# ------------------------------------------------------------------------------------------
# the phenomenology of theory.md §7.7 at reduced size
# ------------------------------------------------------------------------------------------
def _fig1_like(scale, epsilon, t_max):
    """Fig. 1 setting shrunk: D = 40, P = 5.5·D, N = 20, centred, random init, two seeds."""
    return simulate_seeds(5.5, 40, 20, scale, epsilon, t_max=t_max, center=True, record_points=50, seeds=2, **CPU)


def test_fig1_phenomenology_and_scale_and_epsilon_trends():
    """theory.md §7.7: (i) the test loss first rises — the linear term grows — while the train
    loss falls, then falls late when the alignment term drops; (ii) a larger κ delays
    generalisation; (iii) a smaller ε delays it but ends at a lower test loss."""
    base = _fig1_like(1.0, 0.2, 120.0)
    te, tr, dec = base.test_loss, base.train_loss, base.decomposition
    peak = int(np.argmax(te))
    assert te[peak] > te[0] + 0.03                          # rises …
    assert tr[peak] < 0.8 * tr[0]                           # … while the train loss falls
    assert dec[peak, 2] - dec[0, 2] > te[peak] - te[0]       # the rise is the linear term
    assert dec[peak, 1] > 0.9 * dec[0, 1]                    # alignment still unlearnt at the peak
    assert dec[-1, 1] < 0.1 * dec[0, 1] and te[-1] < 0.05    # … and learnt late
    t_train, t_test = time_to_loss(base.t, tr, 0.1), time_to_loss(base.t, te, 0.1)
    assert t_test > 2.5 * t_train                             # grokking: a delay

    lazier = _fig1_like(2.0, 0.2, 120.0)
    assert time_to_loss(lazier.t, lazier.test_loss, 0.1) > 1.5 * t_test

    strong, weak = _fig1_like(1.0, 0.3, 200.0), _fig1_like(1.0, 0.15, 200.0)
    assert time_to_loss(weak.t, weak.test_loss, 0.1) > 1.3 * time_to_loss(strong.t, strong.test_loss, 0.1)
    # final test losses differ by more than 3 combined standard errors of the seed means
    se = math.hypot(weak.extras["test_loss_sem"][-1], strong.extras["test_loss_sem"][-1])
    assert weak.test_loss[-1] < strong.test_loss[-1] - 3 * se


# ------------------------------------------------------------------------------------------
# initialisation, determinism, dtype, seeds
# ------------------------------------------------------------------------------------------
def test_planted_overlaps_and_teacher_norm_are_exact():
    data = make_committee_data(2.0, 30, 4, init_overlap=[0.5, -0.3, 0.0, 0.9], rho=2.0, seed=1)
    D = 30
    np.testing.assert_allclose(data.teacher @ data.teacher / D, 2.0, rtol=1e-14)
    np.testing.assert_allclose(data.init_weights @ data.teacher / D, [0.5, -0.3, 0.0, 0.9], atol=1e-14)
    res = train_committee(2.0, 30, 4, 1.0, 0.1, steps=1, init_overlap=[0.5, -0.3, 0.0, 0.9], rho=2.0,
                          seed=1, **CPU)
    np.testing.assert_allclose(res.overlap[0], [0.5, -0.3, 0.0, 0.9], atol=1e-14)


def test_planted_initial_covariance_has_the_theory_diagonal():
    """theory.md §0 plants w_i = (m_i/ρ)β + (1 − m_i²/ρ)^½ z_i with z_i ⊥ β and |z_i|² = D, so the
    run starts from Q(0)_ii = 1 exactly (as dmft.simulate.planted_weights) and only the
    off-diagonal z_i·z_j/D fluctuates, around m_i m_j/ρ, at the scale D^(-1/2)."""
    m0 = [0.3, -0.2, 0.1, 0.6]
    for rho, scale in ((1.0, 1.0), (2.0, 0.7)):
        data = make_committee_data(3.0, 40, 4, init_overlap=m0, rho=rho, init_scale=scale, seed=5)
        res = train_committee(3.0, 40, 4, 1.5, 0.3, steps=1, init_overlap=m0, rho=rho, init_scale=scale,
                              seed=5, **CPU)
        Q0 = data.init_weights @ data.init_weights.T / 40
        # exact up to round-off (σ² Q_ii = σ²); before the fix Q_ii − 1 was 0.1–0.2 at D = 40
        np.testing.assert_allclose(np.diag(Q0), scale**2, rtol=1e-13)
        np.testing.assert_allclose(np.diag(res.cov[0]), scale**2, rtol=1e-13)
        np.testing.assert_allclose(data.init_weights @ data.teacher / 40, scale * np.array(m0), atol=1e-14)
        # off-diagonal: sampling scale 1/√D ≈ 0.16; 4 of it bounds all 6 pairs (a 1e-4 event)
        off = Q0 / scale**2 - np.outer(m0, m0) / rho
        assert np.all(np.abs(off[~np.eye(4, dtype=bool)]) < 4 / math.sqrt(40))


def test_deterministic_for_a_seed_and_different_across_seeds():
    kw = dict(steps=50, record_points=10, n_test=200, **CPU)
    a = train_committee(3.0, 20, 5, 1.0, 0.2, seed=11, **kw)
    b = train_committee(3.0, 20, 5, 1.0, 0.2, seed=11, **kw)
    c = train_committee(3.0, 20, 5, 1.0, 0.2, seed=12, **kw)
    for name in ("train_loss", "test_loss", "overlap", "cov", "decomposition"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.extras["test_loss_finite"], b.extras["test_loss_finite"])
    assert not np.array_equal(a.train_loss, c.train_loss)


def test_float32_agrees_with_float64():
    """Same draws in float32: curves agree to 1e-4 relative (single precision over 200 steps)."""
    kw = dict(steps=200, record_points=20, seed=5, **CPU)
    d64 = train_committee(5.0, 30, 4, 1.0, 0.2, dtype="float64", **kw)
    d32 = train_committee(5.0, 30, 4, 1.0, 0.2, dtype="float32", **kw)
    np.testing.assert_allclose(d32.train_loss, d64.train_loss, rtol=1e-4)
    np.testing.assert_allclose(d32.test_loss, d64.test_loss, rtol=1e-4)


def test_t_max_sets_steps_in_theory_time():
    res = train_committee(2.0, 25, 2, 1.0, 0.1, t_max=3.0, lr=0.5, record_points=5, **CPU)
    assert res.settings["steps"] == 150 and res.t[-1] == pytest.approx(3.0)


def test_average_over_seeds():
    kw = dict(steps=30, record_points=8, **CPU)
    runs = [train_committee(3.0, 15, 3, 1.0, 0.3, seed=s, **kw) for s in (0, 1, 2)]
    avg = simulate_seeds(3.0, 15, 3, 1.0, 0.3, seeds=[0, 1, 2], **kw)
    stacked = np.stack([r.test_loss for r in runs])
    np.testing.assert_allclose(avg.test_loss, stacked.mean(0), rtol=1e-14)
    np.testing.assert_allclose(avg.extras["test_loss_std"], stacked.std(0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(avg.extras["test_loss_q50"], np.median(stacked, 0), rtol=1e-14)
    assert list(avg.extras["seeds"]) == [0, 1, 2]
    with pytest.raises(ValueError, match="identical time grids"):
        average([runs[0], train_committee(3.0, 15, 3, 1.0, 0.3, steps=31, record_points=8, **CPU)])


def test_divergence_is_reported_not_hidden():
    res = train_committee(3.0, 10, 2, 1.0, 0.25, steps=400, lr=60.0, record_points=30, **CPU)
    assert not res.converged and "diverged" in res.message


def test_custom_targets_use_the_test_set():
    """Without a teacher the test loss is the finite test-set loss; overlaps are NaN."""
    rng = np.random.default_rng(0)
    D, N, P = 10, 2, 30
    X = rng.standard_normal((P, D)) / math.sqrt(D)
    Xt = rng.standard_normal((50, D)) / math.sqrt(D)
    data = CommitteeData(inputs=X, targets=X[:, 0] * X[:, 1] * D, init_weights=rng.standard_normal((N, D)),
                         test_inputs=Xt, test_targets=Xt[:, 0] * Xt[:, 1] * D)
    res = train_committee(P / D, D, N, 1.0, 0.5, steps=20, record_points=5, data=data, activation="cubic", **CPU)
    np.testing.assert_array_equal(res.test_loss, res.extras["test_loss_finite"])
    assert np.all(np.isnan(res.overlap)) and res.settings["test_loss_source"] == "test_set"


# ------------------------------------------------------------------------------------------
# invalid input
# ------------------------------------------------------------------------------------------
BAD_INPUTS = [
    (dict(alpha=0.0), "alpha"),
    (dict(alpha=math.inf), "alpha"),
    (dict(dim=0), "dim"),
    (dict(width=0), "width"),
    (dict(scale=-1.0), "scale"),
    (dict(epsilon=math.nan), "epsilon"),
    (dict(lr=0.0), "lr"),
    (dict(t_max=1.0), "exactly one"),
    (dict(steps=None), "exactly one"),
    (dict(init_overlap=[0.1]), "init_overlap"),
    (dict(init_overlap=[1.2, 0.0]), "init_overlap"),
    (dict(optimizer="sgdx"), "optimizer"),
    (dict(optimizer="momentum", momentum=1.0), "momentum"),
    (dict(momentum=0.5), "momentum"),
    (dict(weight_decay=-1.0), "weight_decay"),
    (dict(dtype="float16"), "dtype"),
    (dict(device="tpu"), "device"),
    (dict(record_points=1), "record_points"),
    (dict(n_test=-1), "n_test"),
    (dict(activation="sigmoid"), "activation"),
    (dict(init_scale=0.0), "init_scale"),
    (dict(target_scale=-0.5), "target_scale"),
    (dict(seed=-3), "seed"),
    (dict(alpha=0.01), "training sample"),
]


@pytest.mark.parametrize("bad, name", BAD_INPUTS, ids=[b[1] + str(i) for i, b in enumerate(BAD_INPUTS)])
def test_bad_input_raises_named_value_error(bad, name):
    kw = dict(alpha=2.0, dim=10, width=2, scale=1.0, epsilon=0.1, steps=5, **CPU)
    kw.update(bad)
    with pytest.raises(ValueError, match=name):
        train_committee(**kw)


def test_bad_explicit_data_is_refused():
    data = make_committee_data(2.0, 10, 2, seed=0)
    with pytest.raises(ValueError, match="disagrees"):
        train_committee(3.0, 10, 2, 1.0, 0.1, steps=2, data=data, **CPU)
    with pytest.raises(ValueError, match="targets"):
        CommitteeData(inputs=np.zeros((4, 3)), targets=np.zeros(5), init_weights=np.zeros((2, 3)))
    no_teacher = CommitteeData(inputs=data.inputs, targets=data.targets, init_weights=data.init_weights)
    with pytest.raises(ValueError, match="test set"):
        train_committee(2.0, 10, 2, 1.0, 0.1, steps=2, data=no_teacher, **CPU)


def test_record_schedule_is_log_spaced_with_zero():
    s = record_schedule(10_000, 50)
    assert s[0] == 0 and s[1] == 1 and s[-1] == 10_000 and np.all(np.diff(s) > 0)
    assert list(record_schedule(37, 2)) == [0, 37] and list(record_schedule(1, 5)) == [0, 1]
    ratios = s[-10:][1:] / s[-10:][:-1]
    np.testing.assert_allclose(ratios, (10_000) ** (1 / 48), rtol=0.02)


# ------------------------------------------------------------------------------------------
# NTK alignment and the kernel baselines (dmft.ntk)
# ------------------------------------------------------------------------------------------
def test_cka_every_k_steps_matches_autograd_ntk():
    """extras['cka'] (every k steps) equals the spec §2.5 CKA of the test-set NTK built here from
    autograd Jacobians of f w.r.t. W at the same steps (1e-10)."""
    kappa, eps, N, D = 1.0, 0.5, 3, 8
    grams = {}

    def jacobian_gram(step, state):
        rows = []
        with torch.enable_grad():  # the trainer records under torch.no_grad()
            W = state.weights.clone().requires_grad_(True)
            for x in state.test_inputs:
                h = W @ x
                f = kappa / N * (h + eps / 2 * h**2).sum()
                rows.append(torch.autograd.grad(f, W)[0].reshape(-1))
        J = torch.stack(rows).detach().numpy()
        grams[step] = J @ J.T
        return {}

    data = make_committee_data(3.0, D, N, n_test=30, seed=1)
    res = train_committee(3.0, D, N, kappa, eps, steps=40, record_points=6, data=data, cka_every=5,
                          record_hook=jacobian_gram, **CPU)
    y = data.test_targets - data.test_targets.mean()
    for step, K in grams.items():
        if step % 5 and step != 40:
            continue
        Kc = K - K.mean(axis=0)
        expected = y @ Kc @ y / (np.linalg.norm(Kc) * (y @ y))
        got = res.extras["cka"][list(res.extras["cka_steps"]).index(step)]
        assert got == pytest.approx(expected, rel=1e-10)
    assert list(res.extras["cka_steps"]) == list(range(0, 41, 5))
    assert res.extras["cka"][-1] != res.extras["cka"][0]


def test_large_scale_network_follows_linearised_model():
    """The centred network approaches its linearisation (dmft.ntk.lazy_curves, same GD) as κ
    grows, with the deviation shrinking like 1/κ (theory.md §1.4, lazy limit): the sup test-loss
    deviation at κ = 64 is 0.15–0.35 of that at κ = 16 (1/κ predicts 0.25) and below 0.05."""
    deviation = {}
    for kappa in (16.0, 64.0):
        res = train_committee(3.0, 20, 4, kappa, 0.5, t_max=20, center=True, n_test=200, record_points=12,
                              baselines=True, **CPU)
        deviation[kappa] = np.max(np.abs(res.test_loss - res.extras["lazy_test_loss"]))
        assert np.max(np.abs(res.train_loss - res.extras["lazy_train_loss"])) < 2.5 * deviation[kappa] + 1e-3
    assert 0.15 < deviation[64.0] / deviation[16.0] < 0.35 and deviation[64.0] < 0.05
    # the K0 regression baseline is the lazy model's t → ∞ limit: worse than the rich network
    rich = train_committee(3.0, 20, 4, 1.0, 0.5, t_max=200, center=True, baselines=True, record_points=5, **CPU)
    assert rich.test_loss[-1] < 0.5 * float(rich.extras["k0_regression_test_loss"])


def test_baseline_and_cka_options_refuse_unsupported_settings():
    with pytest.raises(ValueError, match="cka_every"):
        train_committee(2.0, 10, 2, 1.0, 0.1, steps=3, cka_every=1, **CPU)
    with pytest.raises(ValueError, match="baselines"):
        train_committee(2.0, 10, 2, 1.0, 0.1, steps=3, baselines=True, optimizer="adam", **CPU)
