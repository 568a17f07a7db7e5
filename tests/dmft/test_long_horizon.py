"""Long-horizon machinery of the DMFT solver (theory.md §9): grids, causal sampling, marching,
symmetry projection and replica error bars, each against an independent reference."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

import dmft
from dmft.dmft_solver import online_start, solve_dmft
from dmft.online import OnlineTrajectory
from dmft.parameters import ModelParameters
from dmft.sampling import _JITTER, conditional_square_root, draw_chunk
from dmft.solve import default_grid_points, log_time_grid, make_grid, time_grid
from dmft.symmetry import invariance_group
from dmft.weight_side import to_flat, trapezoid_weights


# -- the weight-side solve -----------------------------------------------------------------------
@pytest.mark.parametrize("width", [1, 2, 4])
def test_causal_weight_side_solve_matches_a_dense_solve(width):
    """The block-triangular solve of I − cQR_g (theory.md §4.6) against scipy's dense LU solve on a
    random causal system of the solver's shape (log grid, N × N blocks): they must agree to
    rounding, 1e-11 relative to the solution's size (condition number of this system ~1e3)."""
    import scipy.linalg

    from dmft.weight_side import _solve_causal

    rng = np.random.default_rng(width)
    t = log_time_grid(30.0, 60, dt=0.25)
    T = t.size
    response = rng.normal(scale=0.2, size=(T, T, width, width))
    response[np.triu_indices(T, 1)] = 0.0                    # causal: R_g[n, s] = 0 for s > n
    Qflat = np.kron(trapezoid_weights(t), np.eye(width))
    system = np.eye(T * width) - 1.5 * Qflat @ to_flat(response)
    rhs = np.concatenate([Qflat, np.kron(np.ones((T, 1)), np.eye(width))], axis=1)
    expected = scipy.linalg.solve(system, rhs)
    assert_allclose(_solve_causal(system, rhs, width), expected, rtol=0, atol=1e-11 * np.abs(expected).max())


def test_singular_weight_side_system_is_reported_not_solved():
    from dmft.weight_side import _solve_causal

    system = np.eye(6)
    system[2:4, 2:4] = 1.0                                     # a singular diagonal block
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        _solve_causal(system, np.eye(6), 2)


# -- grids ------------------------------------------------------------------------------------
def test_trapezoid_weights_integrate_linear_functions_exactly_on_any_grid():
    t = np.sort(np.r_[0.0, np.random.default_rng(0).uniform(0, 7, 30), 7.0])
    Q = trapezoid_weights(t)
    f = 3.0 - 2.0 * t
    assert_allclose(Q @ f, 3.0 * t - t**2, rtol=0, atol=1e-12)


def test_trapezoid_weights_are_second_order_on_a_geometric_grid():
    errors = []
    for points, dt in ((41, 0.1), (81, 0.05)):          # every step split in two
        t = log_time_grid(10.0, points, dt=dt)
        errors.append(np.max(np.abs(trapezoid_weights(t) @ np.cos(t) - np.sin(t))))
    assert 3.5 < errors[0] / errors[1] < 4.5, errors


def test_log_grid_keeps_the_first_step_and_ends_exactly_at_t_max():
    t = log_time_grid(300.0, 259, dt=0.25)
    steps = np.diff(t)
    assert t[0] == 0.0 and t[-1] == 300.0 and t.size == 259
    assert_allclose(steps[0], 0.25, rtol=1e-12)
    assert_allclose(steps[1:] / steps[:-1], steps[1] / steps[0], rtol=1e-9)    # geometric
    assert default_grid_points(300.0) == 259


def test_uniform_grid_ends_exactly_at_t_max():
    assert_allclose(time_grid(1.0, 0.3), [0.0, 0.3, 0.6, 0.9, 1.0], rtol=0, atol=1e-15)
    assert time_grid(1.0, 0.25)[-1] == 1.0 and time_grid(1.0, 0.25).size == 5


@pytest.mark.parametrize("kwargs, name", [
    (dict(grid="cubic"), "grid"),
    (dict(grid="uniform", grid_points=10), "grid_points"),
    (dict(times=[0.0, 1.0, 0.5]), "times"),
    (dict(times=[0.1, 1.0]), "times"),
])
def test_invalid_grids_are_refused(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_grid(10.0, 0.25, **{"grid": "uniform", **kwargs})


def test_online_start_on_the_log_grid_matches_the_ode():
    """α = ∞ weight side on the default log grid to t = 300: error ≤ that of dt = 0.25 uniform."""
    params = ModelParameters(alpha=math.inf, epsilon=0.1)
    t = make_grid(300.0, grid="log")
    state = online_start(params, t)
    m, Q, _ = OnlineTrajectory(params, 300.0)(t)
    idx = np.arange(t.size)
    assert np.max(np.abs(state.overlap - m)) < 1e-3          # observed 5.6e-4
    assert np.max(np.abs(state.cov[idx, idx] - Q)) < 5e-3    # observed 3.8e-3 (the first steps)


def test_the_default_grid_is_log_at_finite_alpha_and_as_accurate_as_the_uniform_one():
    """theory.md §9.1, "The default grid": at finite α ``dmft.solve`` runs on the log grid, at α = ∞
    on the uniform one. The log grid's curves agree with the uniform dt = 0.25 solve (α = 10, t ≤ 20,
    S = 8192, 4 replicas) within 4 combined standard errors for t ≥ 2 (observed 0.72: the time-major
    streams are partly shared by the two grids, so the difference is smoother than the combined error
    says), and to 0.1 % of L0 for t < 2, where the two grids' steps differ by ≤ 2 % and the standard
    errors are tiny (observed 5.8e-5). The check against a dt = 0.125 reference, at 2.3× the cost
    of the default solve: benchmarks/default_grid.py."""
    from scipy.interpolate import CubicSpline

    online = dmft.solve(math.inf, 0.1, t_max=5.0)
    assert_allclose(online.t, time_grid(5.0, 0.25), rtol=0, atol=1e-12)
    assert_allclose(dmft.solve(math.inf, 0.1, t_max=5.0, grid_points=12).t, log_time_grid(5.0, 12), rtol=0, atol=1e-12)
    common = dict(alpha=10.0, epsilon=0.1, t_max=20.0, samples=8192, error_replicas=4, seed=1)
    log = dmft.solve(**common)
    uniform = dmft.solve(**common, grid="uniform")
    assert log.converged and uniform.converged
    assert_allclose(log.t, make_grid(20.0, grid="log"), rtol=0, atol=1e-12)
    assert log.t.size == default_grid_points(20.0) < uniform.t.size
    L0 = uniform.test_loss[0]
    for field in ("train_loss", "test_loss"):
        on_uniform = CubicSpline(log.t, getattr(log, field))(uniform.t)
        sem = np.hypot(np.interp(uniform.t, log.t, getattr(log, field + "_sem")), getattr(uniform, field + "_sem"))
        difference = np.abs(on_uniform - getattr(uniform, field))
        late = uniform.t >= 2
        assert np.all(difference[late] < 4 * sem[late]), (field, np.max(difference[late] / sem[late]))
        assert np.max(difference[~late]) < 1e-3 * L0, (field, np.max(difference[~late]) / L0)


# -- causal sampling --------------------------------------------------------------------------
def _root(t, params):
    state = online_start(params, t)
    return state, conditional_square_root(to_flat(state.cov), state.overlap.reshape(-1), params.rho,
                                          width=params.width)


def test_causal_factor_reproduces_the_covariance_and_is_lower_triangular():
    params = ModelParameters(alpha=math.inf, epsilon=0.25)
    state, root = _root(time_grid(5.0, 0.25), params)
    cond = to_flat(state.cov) - np.outer(state.overlap.ravel(), state.overlap.ravel())
    assert np.all(np.triu(root.factor, 1) == 0.0)
    # the jitter is _JITTER times the t = 0 conditional variance (1 − 0.01 here)
    assert_allclose(root.factor @ root.factor.T, cond + 0.99 * _JITTER * np.eye(cond.shape[0]), rtol=0, atol=1e-12)


def test_causal_factor_of_an_indefinite_input_keeps_every_variance():
    """An Anderson-extrapolated C_w can be indefinite. Here fields 0 and 1 are identical but
    correlate differently with field 2: the jittered pivot of row 1 is √_JITTER = 1e-2 and,
    unguarded, L[2, 1] = 0.5/1e-2 = 50 (a field of variance 1 drawn with standard deviation 50; measured
    in a replica of the default solve: |u| = 12 where the variance was 1, and the replica blew
    up). With the guard every row of L has norm² ≤ A_ii, and a valid matrix is factored exactly."""
    A = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.5], [0.0, 0.5, 1.0]])
    assert np.min(np.linalg.eigvalsh(A)) < 0
    L = conditional_square_root(A, np.zeros(3), 1.0).factor
    assert np.all(np.sum(L**2, axis=1) <= np.diag(A) * (1 + _JITTER) + 1e-12)
    B = np.random.default_rng(0).standard_normal((5, 5))
    spd = B @ B.T
    scale = spd[0, 0]
    L = conditional_square_root(spd, np.zeros(5), 1.0, width=1).factor
    assert_allclose(L @ L.T, spd + _JITTER * scale * np.eye(5), rtol=0, atol=1e-12)


def test_draws_on_a_window_are_the_restriction_of_the_draws_on_a_longer_grid():
    params = ModelParameters(alpha=math.inf, epsilon=0.25)
    t = time_grid(8.0, 0.25)
    _, root_long = _root(t, params)
    _, root_short = _root(t[:17], params)
    long = draw_chunk(root_long, seed=(3, 0), index=1, start=64, stop=128, samples=256, steps=t.size, width=2, rho=1.0)
    short = draw_chunk(root_short, seed=(3, 0), index=1, start=64, stop=128, samples=256, steps=17, width=2, rho=1.0)
    # equal up to the online ODE's dense-output rounding on the two horizons (~1e-12)
    assert_allclose(long[0][:, :17], short[0], rtol=0, atol=1e-9)
    assert np.array_equal(long[1], short[1]) and np.array_equal(long[2][:, :17], short[2])


# -- symmetry ---------------------------------------------------------------------------------
def test_invariance_group_of_alternating_overlaps():
    params = ModelParameters(alpha=3.0, epsilon=0.25, width=4, init_overlap=(0.2, -0.2, 0.2, -0.2))
    group = invariance_group(params.m0, params.cov0)
    assert group.order == 8
    elements = {(tuple(p), s) for p, s in zip(group.permutations.tolist(), group.signs.tolist())}
    assert ((2, 1, 0, 3), 1.0) in elements and ((0, 3, 2, 1), 1.0) in elements
    assert ((1, 0, 3, 2), -1.0) in elements                    # reflect, then swap 1↔2, 3↔4
    assert ((1, 0, 2, 3), 1.0) not in elements                 # not a symmetry of m(0)
    blocks = np.random.default_rng(1).standard_normal((3, 4, 4))
    once = group.project_pairs(blocks)
    assert_allclose(group.project_pairs(once), once, rtol=0, atol=1e-15)      # a projection
    m = group.project_units(np.random.default_rng(2).standard_normal((3, 4)), odd=True)
    assert_allclose(m[:, 0], m[:, 2], atol=1e-15) and assert_allclose(m[:, 0], -m[:, 1], atol=1e-15)


def test_no_symmetry_without_an_invariant_initial_condition():
    params = ModelParameters(alpha=3.0, epsilon=0.25, init_overlap=(0.1, 0.3))
    assert invariance_group(params.m0, params.cov0).trivial


@pytest.fixture(scope="module")
def width4():
    params = ModelParameters(alpha=3.0, epsilon=0.25, width=4, init_overlap=(0.2, -0.2, 0.2, -0.2))
    return {sym: solve_dmft(params, time_grid(4.0, 0.25), samples=2048, seed=1, error_replicas=0, symmetrize=sym)
            for sym in (True, False)}


def test_symmetrized_solve_keeps_identical_units_identical(width4):
    m = width4[True].overlap
    assert width4[True].converged, width4[True].message
    assert_allclose(m[:, 0], m[:, 2], rtol=0, atol=1e-12)
    assert_allclose(m[:, 0], -m[:, 1], rtol=0, atol=1e-12)
    assert_allclose(m[:, 1], m[:, 3], rtol=0, atol=1e-12)
    assert width4[True].settings["symmetry_group_order"] == 8
    assert width4[True].settings["symmetry_removed"] > 0.0


def test_symmetrized_solve_differs_from_the_plain_one_by_monte_carlo_noise_only(width4):
    plain, sym = width4[False], width4[True]
    asym = np.max(np.abs(plain.overlap[:, 0] - plain.overlap[:, 2]))
    assert asym > 1e-6                                          # the plain solve breaks the symmetry
    assert np.max(np.abs(plain.test_loss - sym.test_loss)) < 0.02 * plain.test_loss[0]


# -- marching ---------------------------------------------------------------------------------
def test_marching_reaches_the_fixed_point_of_the_single_window_iteration():
    """Causality: solving window after window gives the same fixed point as one iteration."""
    params = ModelParameters(alpha=10.0, epsilon=0.25)
    t = time_grid(6.0, 0.25)
    common = dict(samples=2048, seed=2, error_replicas=0, tol=1e-6)
    marched = solve_dmft(params, t, march=True, first_window=2.0, **common)
    whole = solve_dmft(params, t, march=False, **common)
    assert marched.converged and whole.converged
    assert_allclose(marched.test_loss, whole.test_loss, rtol=0, atol=1e-5)
    assert_allclose(marched.train_loss, whole.train_loss, rtol=0, atol=1e-5)


def test_switch_from_warmup_to_full_samples_starts_anderson_afresh(monkeypatch):
    """The warm-up map (S/8 samples) and the full map are different maps: the first mixing step
    after the switch must be a damped step with no secant pair spanning the two. Such a pair
    measures their Monte Carlo difference, not the Jacobian; on the default problem it stalled
    the iteration for 3 full-sample iterations at residual ~1.06 (theory.md §9.1)."""
    import dmft.dmft_solver as solver
    from dmft.mixing import Mixer

    evaluations, fresh_steps = [], []
    estimate = solver.estimate_data_side
    step = Mixer.step

    def spy_estimate(*args, **kwargs):
        evaluations.append(kwargs["samples"])
        return estimate(*args, **kwargs)

    def spy_step(self, x, fx):
        fresh_steps.append(self._last_x is None and not self._dx)
        return step(self, x, fx)

    monkeypatch.setattr(solver, "estimate_data_side", spy_estimate)
    monkeypatch.setattr(Mixer, "step", spy_step)
    result = solve_dmft(ModelParameters(alpha=10.0, epsilon=0.25), time_grid(4.0, 0.25), samples=2048,
                        warmup_samples=512, warmup_tol=3e-2, tol=1e-4, seed=1, error_replicas=0,
                        march=False, two_level=False)
    assert result.converged
    first_full = evaluations.index(2048)
    assert 0 < first_full < len(fresh_steps)
    assert fresh_steps[first_full], "the first full-sample step reused the warm-up map's history"
    assert not any(fresh_steps[first_full + 1:]), "Anderson history was not built on the full map"


_TWO_LEVEL_CASE = dict(samples=4096, warmup_samples=512, seed=3, error_replicas=0, tol=1e-6, march=False)


def test_two_level_iteration_reaches_the_fixed_point_of_the_plain_iteration():
    """theory.md §9.3, "Two-level iteration": defect correction with the warm-up map stops by the
    plain iteration's criterion (full-sample residual < tol), so both land on the same fixed point
    of the full map. Two iterates with residual < tol = 1e-6 differ by ~tol times the inverse
    contraction of the map, so the curves must agree to 1e-5 (as for marching above); and it
    must take fewer full-sample evaluations, which is what it is for."""
    import dmft.dmft_solver as solver

    params = ModelParameters(alpha=10.0, epsilon=0.25)
    t = time_grid(6.0, 0.25)
    counts = {}
    estimate = solver.estimate_data_side

    def counting(*args, **kwargs):
        counts[kwargs["samples"]] = counts.get(kwargs["samples"], 0) + 1
        return estimate(*args, **kwargs)

    solver.estimate_data_side = counting
    try:
        plain = solve_dmft(params, t, two_level=False, **_TWO_LEVEL_CASE)
        plain_full, counts = counts.get(4096, 0), {}
        two = solve_dmft(params, t, two_level=True, **_TWO_LEVEL_CASE)
    finally:
        solver.estimate_data_side = estimate
    assert plain.converged and two.converged
    assert two.settings["two_level_used"] and not plain.settings["two_level_used"]
    assert counts[4096] < plain_full
    assert_allclose(two.test_loss, plain.test_loss, rtol=0, atol=1e-5)
    assert_allclose(two.train_loss, plain.train_loss, rtol=0, atol=1e-5)
    assert_allclose(two.overlap, plain.overlap, rtol=0, atol=1e-5)


def test_an_abandoned_two_level_iteration_leaves_the_plain_one_unchanged(monkeypatch):
    """Where no outer step improves on the first full evaluation (here: no inner iterations, so the
    outer point never moves) the solver goes on with the plain iteration from that evaluation:
    same iterates, same draws, so the same numbers bit for bit as two_level=False."""
    import dmft.dmft_solver as solver

    monkeypatch.setattr(solver, "_INNER_MAX", 0)
    params = ModelParameters(alpha=10.0, epsilon=0.25)
    t = time_grid(6.0, 0.25)
    plain = solve_dmft(params, t, two_level=False, **_TWO_LEVEL_CASE)
    tried = solve_dmft(params, t, two_level=True, **_TWO_LEVEL_CASE)
    assert tried.converged and not tried.settings["two_level_used"]
    np.testing.assert_array_equal(tried.test_loss, plain.test_loss)
    np.testing.assert_array_equal(tried.extras["C_w"], plain.extras["C_w"])


def test_an_abandoned_two_level_iteration_resumes_from_its_best_outer_point(monkeypatch):
    """When an outer step helped but the next did not contract enough, the plain iteration goes on
    from the outer point with the smallest full-sample residual (not from the first one, which
    threw that progress away: the default problem to t = 300 took 133 iterations, 54.9 s, against
    123, 39.5 s). Same map, same stopping rule, so the same fixed point as two_level=False: curves
    to 1e-5 (tol = 1e-6, as above), with fewer full-sample evaluations than that plain run."""
    import dmft.dmft_solver as solver

    outer = []
    two_level = solver._two_level

    def recording(*args, **kwargs):
        outcome, resume = two_level(*args, **kwargs)
        outer.append((args[3][3], None if resume is None else resume[-1]))
        return outcome, resume

    counts = []
    estimate = solver.estimate_data_side

    def counting(*args, **kwargs):
        counts.append(kwargs["samples"])
        return estimate(*args, **kwargs)

    monkeypatch.setattr(solver, "_OUTER_CONTRACTION", 0.01)    # an outer step must cut 100×: it stops early
    monkeypatch.setattr(solver, "_two_level", recording)
    monkeypatch.setattr(solver, "estimate_data_side", counting)
    params = ModelParameters(alpha=10.0, epsilon=0.25)
    t = time_grid(6.0, 0.25)
    plain = solve_dmft(params, t, two_level=False, **_TWO_LEVEL_CASE)
    plain_full = counts.count(4096)
    counts.clear()
    tried = solve_dmft(params, t, two_level=True, **_TWO_LEVEL_CASE)
    assert tried.converged and not tried.settings["two_level_used"]
    (first, resumed), = outer
    assert resumed < first                                       # it resumed from a better point
    assert counts.count(4096) < plain_full, (counts.count(4096), plain_full)
    np.testing.assert_allclose(tried.test_loss, plain.test_loss, rtol=0, atol=1e-5)
    np.testing.assert_allclose(tried.extras["C_w"], plain.extras["C_w"], rtol=0, atol=1e-5)


def test_a_failed_last_window_is_re_marched_at_full_samples(monkeypatch):
    """theory.md §9.1: when the last window (full S, after S/8 warm-up windows) does not converge,
    the solver marches again from the first window at full S, so that no window has to absorb the
    S/8 → S switch over the whole grid (α = 3 to t = 300: main solve 358 s → 225 s, measured).
    Here the first full-S attempt on the whole grid is made to fail."""
    from dataclasses import replace

    import dmft.dmft_solver as solver

    calls = []
    iterate = solver._iterate_window

    def failing_once(problem, t, state, settings, group, **kwargs):
        calls.append((t.size, kwargs["samples"], kwargs["warmup"]))
        outcome = iterate(problem, t, state, settings, group, **kwargs)
        if t.size == grid.size and kwargs["warmup"] is not None and sum(c[0] == grid.size for c in calls) == 1:
            return replace(outcome, converged=False, reason="made to fail")
        return outcome

    grid = time_grid(8.0, 0.25)
    monkeypatch.setattr(solver, "_iterate_window", failing_once)
    common = dict(samples=2048, seed=1, error_replicas=0, tol=1e-4)
    result = solve_dmft(ModelParameters(alpha=10.0, epsilon=0.25), grid, warmup_samples=512, first_window=2.0,
                        **common)
    assert result.converged, result.message
    assert result.settings["remarched_at_full_samples"] and result.settings["windows_halved"] == 0
    assert "re-marched at full S" in result.message
    failed = next(i for i, c in enumerate(calls) if c[0] == grid.size)
    after = calls[failed + 1:]
    assert after[0][0] < grid.size, "the re-march must start again from the first window"
    assert all(samples == 2048 and warmup is None for _, samples, warmup in after)
    assert [c[0] for c in calls[:failed]] == [c[0] for c in after[:failed]]    # the same windows again
    reference = solve_dmft(ModelParameters(alpha=10.0, epsilon=0.25), grid, march=False, **common)
    # the same map (S samples, same seed): the same fixed point to the tolerance
    assert_allclose(result.test_loss, reference.test_loss, rtol=0, atol=1e-3)


# -- error bars ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", ["mc", "rqmc", "mc-union"])
def test_replica_standard_error_matches_the_spread_over_seeds(sampler):
    """theory.md §9.3: the replica SEM against the standard deviation of 8 independent solves.

    Issue criterion: within a factor 1.5 (mc: measured 1.20 for the test loss, 1.23 for the train
    loss, pooled over t ≥ 1). With 8 seeds the spread itself is uncertain by ~25 %. rqmc: the
    curves are the mean of the 8 randomisations, whose spread is the honest error (had the
    full-S solve been reported with the same bars, the ratio would be 0.36, a 2.8× overstatement).
    """
    params = ModelParameters(alpha=5.0, epsilon=0.25)
    t = time_grid(6.0, 0.25)
    union = sampler == "mc-union"       # the full solve on the union of the replicas (batch means)
    runs = [solve_dmft(params, t, samples=4096, seed=s, error_replicas=8, sampler=sampler.removesuffix("-union"),
                       union_of_replicas=union) for s in range(8)]
    assert all(r.settings["union_of_replicas_used"] == union for r in runs)
    for field in ("test_loss", "train_loss"):
        spread = np.std([getattr(r, field) for r in runs], axis=0, ddof=1)
        sem = np.sqrt(np.mean([getattr(r, field + "_sem") ** 2 for r in runs], axis=0))
        ratio = np.sqrt(np.mean(spread[4:] ** 2) / np.mean(sem[4:] ** 2))
        assert 1 / 1.5 < ratio < 1.5, (field, ratio)


@pytest.mark.parametrize("sampler", ["mc", "rqmc", "mc-union"])
def test_a_failed_replica_is_replaced_by_a_fresh_stream_and_reported(monkeypatch, sampler):
    """theory.md §9.3: a replica that blows up is dropped and replaced by the next stream; the
    error bars come from B converged replicas and the message and settings say one was replaced.
    Stream 2 is made to fail. MC: the train-loss SEM must equal std/√B of the four streams that
    ran (1, 3, 4, 5), recomputed here from their own outcomes. RQMC: the main solve (S/B samples)
    is replica 0, so streams 1, 3, 4 complete the four, and the curve is their mean. MC on the
    union: the full solve takes all five streams drawn, the failed one too (no selection of samples
    by how their small solve behaved), so it has 5·S/B samples and its SEM is std/√5."""
    union = sampler == "mc-union"
    sampler = sampler.removesuffix("-union")
    import dmft.dmft_solver as solver

    real = solver._march
    streams, train = [], []

    def failing(*args, **kwargs):
        seed = kwargs.get("seed")
        if kwargs.get("label", "").startswith("replica"):
            streams.append(seed[1])
            if seed == (0, 2):
                return None, 0, [1.0], [], "blew up (forced by the test)"
        outcome = real(*args, **kwargs)
        if kwargs.get("label", "").startswith("replica") or sampler == "rqmc":
            train.append(outcome[0].estimate.train_loss)
        return outcome

    monkeypatch.setattr(solver, "_march", failing)
    params = ModelParameters(alpha=5.0, epsilon=0.25)
    res = solve_dmft(params, time_grid(2.0, 0.25), samples=1024, seed=0, error_replicas=4, sampler=sampler,
                     union_of_replicas=union)
    assert res.converged, res.message
    assert res.settings["union_of_replicas_used"] == union
    assert streams == ([1, 2, 3, 4, 5] if sampler == "mc" else [1, 2, 3, 4])
    assert res.settings["replicas_failed"] == 1 and len(res.settings["replica_iterations"]) == len(streams)
    assert "1 replaced" in res.message
    assert len(train) == 4
    expected = np.std(np.array(train), axis=0, ddof=1) / (math.sqrt(5) if union else 2.0)
    assert_allclose(res.train_loss_sem, expected, rtol=1e-12, atol=0)
    if union:
        assert res.settings["samples_per_solve"] == 5 * 256 and "union of 5 replica streams" in res.message
    assert np.all(res.train_loss_sem[1:] > 0)
    if sampler == "rqmc":
        assert res.settings["pooled_replicas"] and res.settings["samples_per_solve"] == 256
        assert_allclose(res.train_loss, np.mean(np.array(train), axis=0), rtol=1e-12, atol=0)


# -- no crash on a valid problem -----------------------------------------------------------------
ENVELOPE = [
    dict(alpha=1.0, scale=0.1, epsilon=1.0, width=2, center=False),
    dict(alpha=1.0, scale=10.0, epsilon=0.01, width=2, center=True),
    dict(alpha=1.5, scale=1.0, epsilon=0.0, width=3, center=False),
    dict(alpha=2.0, scale=10.0, epsilon=1.0, width=6, center=True),
    dict(alpha=100.0, scale=0.1, epsilon=0.5, width=5, center=False),
]


@pytest.mark.parametrize("t_max", [40.0, 1000.0])
@pytest.mark.parametrize("problem", ENVELOPE, ids=lambda p: "-".join(f"{k}{v}" for k, v in p.items()))
def test_awkward_valid_problems_give_finite_curves_or_say_why_not(problem, t_max):
    """Issue: never NaN, an overflow, an exception or a warning from a linear solve on a valid
    problem, to t_max = 1000 (40 log-grid points: steps up to ~100, so most windows fail there;
    what is checked is that the failure is reported, with the curves up to where it converged)."""
    import warnings

    import scipy.linalg

    with warnings.catch_warnings():
        warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
        warnings.simplefilter("error", RuntimeWarning)
        res = dmft.solve(**problem, t_max=t_max, grid="log", grid_points=40, samples=512, error_replicas=0,
                         max_iter=25, tol=1e-3)
    assert np.all(np.isfinite(res.train_loss)) and np.all(np.isfinite(res.test_loss))
    assert np.all(res.train_loss >= 0) and np.all(res.test_loss >= -1e-12)
    if res.converged:
        assert res.t[-1] == t_max and res.message.startswith("converged")
    else:
        assert res.message.startswith("not converged") and "window" in res.message


def test_a_first_window_that_blows_up_is_reported_not_raised(monkeypatch):
    """A blow-up on the first window (nothing converged before it) returns ``converged=False``
    with the finite iterate of smallest residual and the reason, instead of raising: the data side
    is made to explode from its fourth call on, so every (halved) first window blows up."""
    from dataclasses import replace

    from dmft import dmft_solver as solver

    real = solver.estimate_data_side
    calls = []

    def exploding(*args, **kwargs):
        estimate = real(*args, **kwargs)
        calls.append(1)
        if len(calls) > 3:
            estimate = replace(estimate, cov_g=estimate.cov_g * 1e30)
        return estimate

    monkeypatch.setattr(solver, "estimate_data_side", exploding)
    res = solve_dmft(ModelParameters(alpha=5.0, epsilon=0.25), time_grid(4.0, 0.25), samples=512, seed=0,
                     error_replicas=0, warmup_samples=512)
    assert not res.converged
    assert res.message.startswith("not converged") and "blew up" in res.message
    assert np.all(np.isfinite(res.train_loss)) and np.all(np.isfinite(res.test_loss))
    assert res.iterations == len(res.residual_history) >= 4
    # the reported curves are those of the best iterate: its residual is the smallest finite one
    assert np.isfinite(res.residual_history).any()



@pytest.mark.parametrize("t_max", [5.2, 5.27, 7.16, 53.6])
def test_the_log_grid_ends_exactly_at_t_max(t_max):
    """Issue 13 survey: the rescaling of the geometric steps missed t_max by an ulp on ~1 in 6 log grids
    (t_max = 53.6 ended at 53.60000000000001), so ``t[-1] == t_max`` and ``settings["t_max"]`` were wrong."""
    t = make_grid(t_max, grid="log")
    assert t[-1] == t_max and np.all(np.diff(t) > 0)


def test_a_solve_to_an_awkward_t_max_reports_that_t_max():
    res = dmft.solve(alpha=5.0, epsilon=0.25, t_max=5.2, samples=512, error_replicas=0)
    assert res.converged and res.t[-1] == 5.2 and res.settings["t_max"] == 5.2


def test_replicas_that_all_fail_are_reported_with_the_reason():
    """Issue 13 survey: α = 13.4, κ = 0.73, ε = 0.9, N = 1 to t = 200 with S = 2048 and 8 replicas said only
    "no Monte Carlo error bars: 12 of 12 replicas did not converge" (each stalled at max_iter on the whole
    grid with 256 samples). The message must say at what sample size and why. Here the replicas are made to
    fail cheaply by a tolerance they cannot reach."""
    res = dmft.solve(alpha=5.0, epsilon=0.25, t_max=5.0, samples=512, error_replicas=2, replica_tol=1e-300,
                     max_iter=30)
    assert res.converged and res.test_loss_sem is None and res.train_loss_sem is None
    assert "no Monte Carlo error bars: 3 of 3 replicas did not converge at S/2 = 256 samples each" in res.message
    assert "last failure: window [0, 5]" in res.message and "(max_iter)" in res.message
    assert res.settings["replicas_failed"] == 3


def test_a_first_window_that_never_converges_says_its_curves_are_unconverged():
    """Issue 13 survey: α = 1, κ = 0.1, ε = 1, N = 6, centred, to t = 1000 (60 log points) returned
    ``converged=False`` with curves on [0, 1.17] and the message "not converged: window [0, 1.175] residual
    2.20e-01 >= tol 0.001 after 100 iterations (max_iter) (2 window(s) halved)": nothing said that no window
    converged, i.e. that the curves are an unconverged iterate. Reproduced cheaply by max_iter = 2."""
    res = dmft.solve(alpha=5.0, epsilon=0.25, t_max=2.0, samples=512, error_replicas=0, max_iter=2)
    assert not res.converged and res.message.startswith("not converged")
    assert f"no window converged: the curves on [0, {res.t[-1]:.4g}] are an unconverged iterate" in res.message
    assert np.all(np.isfinite(res.train_loss)) and np.all(np.isfinite(res.test_loss))

# -- against simulation over the whole window (slow) ------------------------------------------------
@pytest.mark.slow
def test_alpha3_agrees_with_seed_averaged_descent_to_t60():
    """α = 3, κ = 1, ε = 0.25, N = 2 to t = 60 (docs/results/long_horizon.md): the DMFT on the log grid
    (interpolated to the simulations' recording times, whole steps of 0.04) against the mean of 4
    gradient-descent runs at D = 1000, within 3 combined standard errors
    (DMFT replica SE and the SE of the seed mean) plus 1 % of the initial loss for the O(D^-1/2)
    finite-size offset. Measured in the report: at most 1.0 combined SE."""
    from dmft.simulate import simulate_gd

    params = ModelParameters(alpha=3.0, epsilon=0.25)
    theory = solve_dmft(params, make_grid(60.0, grid="log"), samples=16384)
    assert theory.converged, theory.message
    from scipy.interpolate import CubicSpline

    runs = [simulate_gd(params, 1000, theory.t, seed=s, time_step=0.04) for s in range(4)]
    t_sim = runs[0].t                            # whole steps: up to 0.02 from the DMFT's grid
    scale = theory.test_loss[0]
    for field in ("train_loss", "test_loss"):
        sims = np.array([getattr(r, field) for r in runs])
        theory_sem = np.interp(t_sim, theory.t, getattr(theory, field + "_sem"))
        se = np.sqrt(sims.var(0, ddof=1) / len(runs) + theory_sem ** 2)
        dev = np.abs(CubicSpline(theory.t, getattr(theory, field))(t_sim) - sims.mean(0))
        assert np.all(dev <= 3 * se + 0.01 * scale), (field, np.max(dev / (3 * se + 0.01 * scale)))


def test_the_union_of_sample_streams_is_the_average_of_its_streams():
    """data_side.SampleStreams: C_g and the probe response off the diagonal are plain sample means,
    so over two streams of equal size they are the average of the two single-stream estimates
    (rounding only). The control-variate quantities pool their coefficients and are not checked."""
    from dmft.data_side import SampleStreams, estimate_data_side
    from dmft.dmft_solver import online_start
    from dmft.problems import SquareTargetProblem

    params = ModelParameters(alpha=5.0, epsilon=0.25)
    t = time_grid(3.0, 0.25)
    state = online_start(params, t)
    problem = SquareTargetProblem(params)
    args = (state.cov, state.overlap, state.response)
    one, two = (estimate_data_side(*args, problem=problem, samples=1024, seed=(0, k)) for k in (1, 2))
    both = estimate_data_side(*args, problem=problem, samples=1024, seed=SampleStreams(((0, 1), (0, 2))))
    assert_allclose(both.cov_g, (one.cov_g + two.cov_g) / 2, rtol=0, atol=1e-13)
    lower = np.tril(np.ones((t.size, t.size), dtype=bool), k=-1)
    assert_allclose(both.response[lower], (one.response[lower] + two.response[lower]) / 2, rtol=0, atol=1e-13)
    assert not np.allclose(one.cov_g, two.cov_g)          # the streams are different samples


def test_the_full_solve_on_the_union_of_replicas_matches_the_separate_one():
    """theory.md §9.3, ``union_of_replicas``: the same replicas (streams 1…B) give the error bars
    either way, so they agree closely (measured ratio 1.00 at the default problem); the curves are
    two independent estimates and agree within 4 combined standard errors."""
    params = ModelParameters(alpha=5.0, epsilon=0.25)
    t = time_grid(6.0, 0.25)
    common = dict(samples=4096, error_replicas=4, seed=3)
    union = solve_dmft(params, t, union_of_replicas=True, **common)
    separate = solve_dmft(params, t, union_of_replicas=False, **common)
    assert union.converged and union.settings["union_of_replicas_used"], union.message
    assert "on the union of 4 replica streams, 4096 samples" in union.message
    assert not separate.settings["union_of_replicas_used"]
    for field in ("train_loss", "test_loss"):
        a, b = getattr(union, field), getattr(separate, field)
        sa, sb = getattr(union, field + "_sem"), getattr(separate, field + "_sem")
        assert np.all(np.abs(a - b)[1:] < 4 * np.hypot(sa, sb)[1:]), field
        ratio = sa[4:] / sb[4:]
        assert np.all((0.8 < ratio) & (ratio < 1.25)), (field, ratio.min(), ratio.max())


def test_error_bars_if_skips_only_the_replicas():
    """error_bars_if (asked after the main solve converged): False leaves out the error replicas and
    says so; True gives the same numbers as no predicate, bit for bit (the replicas start from the
    same fixed point with the same streams); the predicate sees the curves the result returns."""
    params = ModelParameters(alpha=10.0, epsilon=0.1)
    t = time_grid(2.0, 0.25)
    options = dict(samples=1024, error_replicas=2)
    seen = []

    def decline(times, train_loss, test_loss):
        seen.append((times.copy(), train_loss.copy(), test_loss.copy()))
        return False

    plain = solve_dmft(params, t, **options)
    skipped = solve_dmft(params, t, error_bars_if=decline, **options)
    kept = solve_dmft(params, t, error_bars_if=lambda *curves: True, **options)
    assert plain.converged and skipped.converged and kept.converged
    assert skipped.train_loss_sem is None and skipped.test_loss_sem is None
    assert skipped.settings["error_bars_skipped"] and not kept.settings["error_bars_skipped"]
    assert "error_bars_if declined" in skipped.message
    (times, train_loss, test_loss), = seen
    np.testing.assert_array_equal(times, skipped.t)
    np.testing.assert_array_equal(train_loss, skipped.train_loss)
    np.testing.assert_array_equal(test_loss, skipped.test_loss)
    for field in ("train_loss", "test_loss"):
        np.testing.assert_array_equal(getattr(skipped, field), getattr(plain, field))
        np.testing.assert_array_equal(getattr(kept, field), getattr(plain, field))
        np.testing.assert_array_equal(getattr(kept, field + "_sem"), getattr(plain, field + "_sem"))
    with pytest.raises(ValueError, match="error_bars_if"):
        solve_dmft(params, t, error_bars_if=True, **options)


def test_grids_that_cannot_be_built_are_refused_naming_their_parameter():
    """A log grid of 2 points cannot have first step dt < t_max; a geometric grid whose step ratio
    would pass e^50 per interval, or a uniform grid of more than 10^6 points, is refused; dt = 0
    or NaN is refused before it divides anything (InvalidParameterError, CLI exit 2)."""
    import dmft
    from dmft.parameters import InvalidParameterError
    from dmft.solve import log_time_grid, time_grid

    for call, name in ((lambda: log_time_grid(2.0, 2, 0.25), "grid_points"),
                       (lambda: log_time_grid(1e13, 3, 0.25), "grid_points"),
                       (lambda: time_grid(1e9, 0.25), "t_max/dt"),
                       (lambda: dmft.solve(3, 0.1, dt=0.0), "dt"),
                       (lambda: dmft.solve(3, 0.1, dt=float("nan")), "dt")):
        with pytest.raises(InvalidParameterError, match=name):
            call()
    grid = log_time_grid(300.0, 3, 0.25)                 # three points can: steps 0.25 and 299.75
    np.testing.assert_allclose(grid, [0.0, 0.25, 300.0], rtol=1e-12)


def test_a_solve_records_its_thread_count_and_repeats_bit_for_bit():
    """The same seed and thread count give the same numbers, bit for bit; the thread count (which
    splits the sums over samples, so another count moves the curves at rounding level) is recorded
    in the settings stored with the run."""
    import numba

    first = dmft.solve(10.0, epsilon=0.1, t_max=1.0, samples=256, error_replicas=0, seed=3)
    again = dmft.solve(10.0, epsilon=0.1, t_max=1.0, samples=256, error_replicas=0, seed=3)
    assert first.settings["numba_threads"] == numba.get_num_threads()
    np.testing.assert_array_equal(first.test_loss, again.test_loss)
    np.testing.assert_array_equal(first.train_loss, again.train_loss)


def test_a_solve_the_machine_cannot_hold_is_refused_before_anything_is_allocated(monkeypatch):
    """Six two-time matrices of (T*N)^2 doubles are a lower bound on a solve's memory: beyond the
    machine's memory the solve would be killed (a 23 GB OOM kill in the bug hunt), so it is refused
    with an error naming width and grid_points, at once."""
    import time

    from dmft.dmft_solver import TWO_TIME_MATRICES, check_memory
    from dmft.parameters import InvalidParameterError

    need = TWO_TIME_MATRICES * 8 * (98 * 2) ** 2          # the default problem: 1.8 MB
    check_memory(98, 2, available=need)                  # exactly fits
    with pytest.raises(InvalidParameterError, match="width and grid_points"):
        check_memory(98, 2, available=need - 1)
    # a 1 GiB machine: N = 100 on the default 98-point grid needs at least 4.3 GiB
    monkeypatch.setattr("dmft.dmft_solver.physical_memory", lambda: 2**30)
    start = time.perf_counter()
    with pytest.raises(InvalidParameterError, match="width and grid_points"):
        dmft.solve(10.0, epsilon=0.1, width=100)
    assert time.perf_counter() - start < 10
