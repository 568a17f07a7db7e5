"""Finite-α DMFT for general students and committee teachers (theory.md §10.7), each claim against
an independent reference: the package model's own solver, the online ODE, Monte Carlo of the
Gaussian means, the NumPy twin of the kernel and seed-averaged gradient descent."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from dmft import _data_kernels as kernels
from dmft.committee_online import (CommitteeModel, committee_mean_response, committee_target_response,
                                   solve_committee_online)
from dmft.dmft_solver import online_start, solve_committee_dmft, solve_dmft
from dmft.online import mean_response
from dmft.parameters import InvalidParameterError, ModelParameters
from dmft.problems import CommitteeProblem
from dmft.sampling import conditional_square_root, draw_teacher_chunk
from dmft.simulate import committee_gd_data, simulate_committee_gd
from dmft.solve import make_grid, time_grid
from dmft.weight_side import to_flat


def _erf_committee(**kw):
    return CommitteeModel(activation="erf", width=2, target="committee", teacher_width=2, scale=2.0,
                          teacher_scale=2.0, **kw)


@pytest.mark.parametrize("center, scale", [(False, 1.0), (True, 2.0)])
def test_square_target_through_the_committee_path_reproduces_the_package_model(center, scale):
    """Quadratic student + square target as a CommitteeProblem: the control-variate means come from
    the generic pair integrals and the weight side from its M-teacher form, yet the fixed point
    must be the package model's to rounding (same draws; observed 1.2e-14, centred 1.7e-14: there
    the cross overlaps X = C_w(t, 0), the column E[∂g/∂h_0] and the t = 0 response come from the
    family's formulas of theory.md §10.10)."""
    t = time_grid(4.0, 0.25)
    params = ModelParameters(alpha=3.0, epsilon=0.25, init_overlap=(0.1, -0.1), center=center, scale=scale)
    model = CommitteeModel(activation="quadratic", epsilon=0.25, width=2, init_overlap=[[0.1], [-0.1]],
                           center=center, scale=scale)
    # precision="double": two code paths for one map agree to rounding only in float64 (the
    # single-precision parts of "mixed" round their slightly different inputs apart, ~1e-7)
    options = dict(samples=2048, error_replicas=0, symmetrize=False, precision="double")
    ref = solve_dmft(params, t, **options)
    got = solve_committee_dmft(model, 3.0, t, **options)
    assert ref.converged and got.converged
    for name in ("train_loss", "test_loss", "overlap", "cov"):
        assert_allclose(getattr(got, name), getattr(ref, name), rtol=0, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("name", ["erf", "tanh", "smoothed_relu:0.3"])
def test_gaussian_means_match_monte_carlo(name):
    """E[∂g/∂h] and E[∂g/∂h*] at Gaussian fields (closed forms for erf and the smoothed ReLU,
    Gauss–Hermite for tanh) against 10⁶ samples, within 5 standard errors."""
    model = CommitteeModel(activation=name, width=2, target="committee", teacher_width=2, scale=1.5,
                           teacher_scale=0.8)
    Q = np.array([[1.3, 0.4], [0.4, 0.8]])
    R = np.array([[0.5, 0.1], [-0.2, 0.3]])
    omega = np.block([[Q, R], [R.T, np.eye(2)]])
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1_000_000, 4)) @ np.linalg.cholesky(omega).T
    h, hs = x[:, :2], x[:, 2:]
    phi, teacher = model.activation, model.teacher_activation
    delta = 0.8 / 2 * teacher.phi(hs).sum(1) - 1.5 / 2 * phi.phi(h).sum(1)
    dphi = phi.dphi(h)
    jac = -1.5 / 2 * dphi[:, :, None] * dphi[:, None, :] + np.einsum("s,si,ij->sij", delta, phi.ddphi(h), np.eye(2))
    dstar = 0.8 / 2 * dphi[:, :, None] * teacher.dphi(hs)[:, None, :]
    for samples, mean in ((jac, committee_mean_response(Q, R, model)), (dstar, committee_target_response(Q, R, model))):
        se = samples.std(0) / math.sqrt(len(samples))
        assert np.all(np.abs(samples.mean(0) - mean) < 5 * se), (samples.mean(0), mean, se)


def test_gaussian_means_of_the_quadratic_student_are_eq_33_and_34():
    model = CommitteeModel(activation="quadratic", epsilon=0.3, scale=2.0, width=2, init_overlap=[[0.2], [-0.1]])
    Q = np.array([[1.2, 0.3], [0.3, 0.9]])
    R = np.array([[0.4], [-0.2]])
    assert_allclose(committee_mean_response(Q, R, model), mean_response(Q, epsilon=0.3, scale=2.0), rtol=1e-13)
    assert_allclose(committee_target_response(Q, R, model), 0.3 * R, rtol=1e-13)


@pytest.mark.parametrize("name, width", [("erf", 2), ("tanh", 2), ("smoothed_relu:0.2", 2), ("erf", 3)])
def test_numba_and_numpy_kernels_agree_for_smooth_students_and_two_teachers(name, width):
    """N = 2 takes the kernel's fixed-index memory sums, N = 3 the general ones (both with the
    second teacher tangent's own pass); T = 13 exercises the four-at-a-time loop and its tail."""
    model = CommitteeModel(activation=name, width=width, target="committee", teacher_width=2, scale=2.0,
                           teacher_scale=2.0)
    problem = CommitteeProblem(model, 3.0)
    t = time_grid(3.0, 0.25)
    state = online_start(problem, t)
    T, N = state.cov.shape[0], width
    root = conditional_square_root(to_flat(state.cov), state.overlap.reshape(T * N, 2), model.teacher_cov, width=N)
    u, hstar, probe, _ = draw_teacher_chunk(root, np.linalg.cholesky(model.teacher_cov), seed=2, index=0, start=0,
                                            stop=100, samples=100, steps=T, width=N)
    y, dy = problem.targets(hstar)
    code, param = problem.kernel_activation
    outs = []
    for kernel in (kernels.data_side_numba, kernels.data_side_numpy):
        out = kernels.allocate_outputs(100, T, N, teachers=2)
        failures = kernels.run_data_kernel(kernel, u, y, np.ascontiguousarray(dy), probe,
                                           np.ascontiguousarray(state.response), 2.0, code, param, 2.0 / 2.0 / 3.0,
                                           False, np.linspace(0.5, 1.5, 100), out)
        assert failures == 0
        outs.append(out)
    for key, ref in outs[1].items():
        assert_allclose(outs[0][key], ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()), err_msg=key)


def test_teacher_draws_have_the_requested_joint_covariance():
    """u = m T⁻¹ h* + L z with h* = L_T z*: Cov(u, h*) = m and Cov(h*) = T (8192 samples, 5 s.e.)."""
    T = np.array([[1.0, 0.3], [0.3, 0.7]])
    m = np.array([[0.4, -0.1], [0.2, 0.25]])                    # one time, N = 2
    C = np.array([[1.0, 0.2], [0.2, 1.1]])
    root = conditional_square_root(C, m, T, width=2)
    _, hstar, _, _ = draw_teacher_chunk(root, np.linalg.cholesky(T), seed=5, index=0, start=0, stop=8192,
                                        samples=8192, steps=1, width=2)
    u, _, _, _ = draw_teacher_chunk(root, np.linalg.cholesky(T), seed=5, index=0, start=0, stop=8192,
                                    samples=8192, steps=1, width=2)
    u = u[:, 0]
    cross = u.T @ hstar / len(u)
    teacher = hstar.T @ hstar / len(u)
    assert_allclose(cross, m, atol=5 * math.sqrt(1.2 / 2048))          # quadruplets: 2048 independent groups
    assert_allclose(teacher, T, atol=5 * math.sqrt(2.0 / 2048))


def test_online_start_of_the_erf_committee_is_second_order_in_dt():
    """α = ∞ through the M-teacher weight side = trapezoid discretisation of the committee ODE
    (whose rates use I3 closed forms, not the means used here): error ∝ dt²."""
    problem = CommitteeProblem(_erf_committee(), 3.0)
    errors = []
    for dt in (0.2, 0.1):
        t = time_grid(4.0, dt)
        state = online_start(problem, t)
        ode = solve_committee_online(problem.model, t)
        idx = np.arange(t.size)
        errors.append(max(np.abs(state.overlap - ode.extras["overlap_matrix"]).max(),
                          np.abs(state.cov[idx, idx] - ode.cov).max()))
    assert errors[0] < 5e-3, errors
    assert 3.0 < errors[0] / errors[1] < 5.0, errors


@pytest.mark.parametrize("center", [False, True])
def test_large_alpha_dmft_approaches_the_online_limit_as_one_over_alpha(center):
    """The finite-α corrections are O(1/α): against the α = ∞ solution on the same grid (the
    online start, so that the time discretisation cancels), the erf DMFT's test loss deviates by
    ≤ 1e-3 of the initial loss at α = 1000 (observed 6.7e-4 absolute, 5e-4 relative; centred 2.1e-4,
    3e-4) and by more than 5× that at α = 100 (observed 7.2×, centred 7.6×; exactly 10× would be
    pure 1/α, the rest is the O(1e-4) field jitter and Monte Carlo floor). Centred, the limit is
    the centred online ODE of theory.md §10.10."""
    t = time_grid(6.0, 0.25)
    deviation = {}
    for alpha in (100.0, 1000.0):
        problem = CommitteeProblem(_erf_committee(center=center), alpha)
        curves = solve_dmft(problem, t, samples=4096, error_replicas=0)
        assert curves.converged
        start = online_start(problem, t)
        limit = problem.decomposition(start.cov, start.overlap).sum(axis=-1)
        deviation[alpha] = np.abs(curves.test_loss - limit).max()
    assert deviation[1000.0] < 1e-3 * limit[0], deviation
    assert deviation[100.0] > 5 * deviation[1000.0], deviation


def _assert_dmft_matches_descent(model):
    """The DMFT of ``model`` at α = 3 against gradient descent at D = 400 averaged over 8 seeds, t ≤ 5
    (the fall onto the plateau). Tolerance: 4 combined standard errors plus 0.5 % of the initial
    loss for finite D (the O(D^-1/2) seed-to-seed spread is what the s.e. measures; the 0.5 % covers
    an O(1/D) mean shift and the GD step)."""
    t = time_grid(5.0, 0.25)
    theory = solve_committee_dmft(model, 3.0, t, samples=8192, error_replicas=4)
    assert theory.converged, theory.message
    runs = [simulate_committee_gd(model, 3.0, 400, t, seed=s, time_step=0.025) for s in range(8)]
    for name in ("train_loss", "test_loss"):
        sims = np.array([getattr(r, name) for r in runs])
        se = np.hypot(sims.std(0, ddof=1) / math.sqrt(len(sims)), getattr(theory, f"{name}_sem"))
        deviation = np.abs(getattr(theory, name) - sims.mean(0))
        assert np.all(deviation < 4 * se + 0.005 * theory.test_loss[0]), (name, deviation.max(), se.max())
    # and the finite-α effect is real: the train loss lies clearly below the test loss at t = 5
    assert theory.test_loss[-1] - theory.train_loss[-1] > 10 * np.hypot(theory.train_loss_sem[-1], theory.test_loss_sem[-1])


def test_erf_dmft_against_seed_averaged_gradient_descent():
    """erf soft committee (N = M = 2, κ = κ* = 2). Observed: sup deviation 0.26 % of the initial
    loss, at most 0.83 s.e."""
    _assert_dmft_matches_descent(_erf_committee())


def test_centred_erf_dmft_against_seed_averaged_gradient_descent():
    """The centred predictor f(·; W) − f(·; W(0)) of the erf committee (theory.md §10.10): the data
    side subtracts φ(h_0) and carries the response to h_0, the means take X = C_w(t, 0). Observed:
    sup deviation 0.82 % (train) and 0.31 % (test) of the initial loss, at most 0.98 s.e."""
    _assert_dmft_matches_descent(_erf_committee(center=True))


def test_smoothed_relu_dmft_against_seed_averaged_gradient_descent():
    """Gaussian-smoothed ReLU student (s = 0.2, theory.md §10.9), exact ReLU teacher, N = M = 2,
    κ = κ* = 2, against gradient descent of the same smoothed student: it is smooth, so its DMFT is
    exact as D → ∞ (tolerance as for erf)."""
    _assert_dmft_matches_descent(CommitteeModel(activation="smoothed_relu:0.2", width=2, target="committee",
                                                teacher_width=2, scale=2.0, teacher_scale=2.0, teacher_activation="relu"))


def _relu_descent_at_the_kink(dim, time_step, t_end, seed, window=50):
    """Gradient descent of the §10.9 ReLU committee (N = M = 2, κ = κ* = 2, α = 3), written out
    here: final training fields H, residuals y − f, and per pair the number of sign changes of
    h_iμ in the last ``window`` steps."""
    model = CommitteeModel(activation="relu", width=2, target="committee", teacher_width=2, scale=2.0,
                           teacher_scale=2.0, teacher_activation="relu")
    _, W, X, y = committee_gd_data(model, 3.0, dim, seed)
    P, steps = X.shape[0], int(round(t_end / time_step))
    H = X @ W.T
    flips = np.zeros(H.shape, dtype=int)
    for step in range(steps):
        residual = y - np.maximum(H, 0.0).sum(axis=1)          # (κ/N) Σ relu with κ = N = 2
        # w_i += η (2/P)(κ/N) Σ_μ Δ_μ Θ(h_iμ) x_μ with η = η₀N/κ² = η₀/2, η₀ = time_step·D
        W = W + time_step * dim / P * ((residual[:, None] * (H > 0)).T @ X)
        H_new = X @ W.T
        if steps - step <= window:
            flips += (H_new > 0) != (H > 0)
        H = H_new
    return W, H, y - np.maximum(H, 0.0).sum(axis=1), flips


def test_relu_training_fields_slide_on_the_kink():
    """theory.md §10.11: at finite α a training point acts on its own field at the rate γ = c/α, so
    an over-predicted point whose other drift is weaker slides on h = 0 (Filippov). Gradient descent
    (D = 400, α = 3, t = 20, 4 seeds) must show (i) fresh inputs' fields with the Gaussian density at
    the kink (a control; 4 Poisson s.e.); (ii) training fields with an excess mass at |h| < 0.01 of
    more than 5 Poisson s.e. of the Gaussian count; (iii) that excess unchanged when the step is
    halved (ratio > 0.7: a mere chattering artefact would scale with the step, ratio 0.5); (iv) the
    chattering pairs over-predicted (Δ < 0, required by (10.11a)) in ≥ 95 % of cases, against
    < 50 % of all pairs. These are the reasons the exact ReLU is refused at finite α."""
    dim, tau, seeds = 400, 1e-2, range(4)
    excess = {}
    for time_step in (0.02, 0.01):
        near = expected = chattering = over_chattering = over_all = pairs = 0.0
        for seed in seeds:
            W, H, residual, flips = _relu_descent_at_the_kink(dim, time_step, 20.0, seed)
            q = np.sqrt(np.diag(W @ W.T) / dim)                 # std of each unit's field
            density0 = 1.0 / (np.sqrt(2.0 * np.pi) * q)
            near += np.sum(np.abs(H) < tau)
            expected += H.shape[0] * np.sum(2.0 * tau * density0)
            over = np.broadcast_to((residual < 0)[:, None], H.shape)
            chatter = flips >= 2
            chattering += chatter.sum()
            over_chattering += over[chatter].sum()
            over_all += over.sum()
            pairs += H.size
            if time_step == 0.02:
                X_test = np.random.default_rng([seed, 7]).standard_normal((20000, dim)) / np.sqrt(dim)
                count = np.sum(np.abs(X_test @ W.T) < tau)
                gauss = 20000 * np.sum(2.0 * tau * density0)
                assert abs(count - gauss) < 4.0 * np.sqrt(gauss), (count, gauss)
        assert near - expected > 5.0 * np.sqrt(expected), (time_step, near, expected)
        excess[time_step] = near - expected
        assert chattering >= 20
        assert over_chattering / chattering >= 0.95
        assert over_all / pairs < 0.5
    assert excess[0.01] / excess[0.02] > 0.7, excess


@pytest.mark.parametrize("change, word", [
    (dict(activation="relu"), "smoothed_relu"),
    (dict(lr=0.5), "lr"),
])
def test_unsupported_committee_settings_are_refused_with_the_parameter_named(change, word):
    kw = dict(activation="erf", width=2, target="committee", teacher_width=2)
    kw.update(change)
    with pytest.raises(InvalidParameterError, match=word):
        CommitteeProblem(CommitteeModel(**kw), 3.0)


def test_infinite_alpha_is_refused():
    with pytest.raises(InvalidParameterError, match="alpha"):
        CommitteeProblem(_erf_committee(), math.inf)


def test_cli_solves_the_erf_committee_and_refuses_relu_at_finite_alpha(tmp_path):
    import json

    from click.testing import CliRunner

    from grokking_cli.main import main

    base = ["solve", "--alpha", "3", "--epsilon", "0", "--target", "committee", "--teacher-width", "2",
            "--scale", "2", "--teacher-scale", "2", "--t-max", "1", "--samples", "512", "--error-replicas", "2",
            "--no-plot", "--json", "--no-progress"]
    result = CliRunner().invoke(main, base + ["--activation", "erf"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["converged"] and summary["parameters"]["activation"] == "erf"
    assert summary["parameters"]["teacher_width"] == 2 and summary["parameters"]["alpha"] == 3.0
    # the JSON carries the full R(t) (T, N, M) and its replica error; `overlap` is its diagonal here
    R, R_sem = np.array(summary["overlap_matrix"]), np.array(summary["overlap_matrix_sem"])
    assert R.shape == R_sem.shape == (len(summary["t"]), 2, 2)
    assert_allclose(R[:, [0, 1], [0, 1]], summary["overlap"], rtol=0, atol=0)
    assert_allclose(R_sem[:, [0, 1], [0, 1]], summary["overlap_sem"], rtol=0, atol=0)
    assert_allclose(summary["final"]["overlap_matrix"], R[-1], rtol=0, atol=0)
    refused = CliRunner().invoke(main, base + ["--activation", "relu"])
    assert refused.exit_code == 2 and "activation" in refused.output and "smoothed_relu" in refused.output
    smoothed = CliRunner().invoke(main, base + ["--activation", "smoothed_relu:0.2", "--teacher-activation", "relu"])
    assert smoothed.exit_code == 0, smoothed.output
    assert json.loads(smoothed.output)["parameters"]["activation"] == "smoothed_relu:0.2"
    for bad in ("smoothed_relu:-1", "smoothed_relu:x", "softsign"):
        refused = CliRunner().invoke(main, base + ["--activation", bad])
        assert refused.exit_code == 2 and "activation" in refused.output, (bad, refused.output)


def test_compare_overlays_an_erf_committee_with_its_simulations(tmp_path):
    """comparisons.compare for a family member: DMFT and torch GD from the same R(0), stored and
    compared (α = 3, D = 300, 4 seeds, t ≤ 3; the agreement is within the seed spread)."""
    from comparisons.comparison import compare
    from comparisons.store import list_runs

    family = dict(activation="erf", target="committee", teacher_width=2, teacher_scale=2.0)
    result = compare(3.0, 0.0, scale=2.0, width=2, dim=300, seeds=4, t_max=3.0, lr=1.0, family=family,
                     theory_options=dict(samples=4096, error_replicas=4), out=tmp_path / "c.h5",
                     plot=tmp_path / "c.png", device="cpu")
    assert result.theory.converged and result.theory.parameters["activation"] == "erf"
    assert all(run.settings["time_step"] == 1.0 / 300 for run in result.simulations)
    # the simulations record every dt = 0.25; the theory is on the solver's default (log) grid and the
    # agreement interpolates it onto the simulations' record times
    assert np.allclose(result.simulations[0].t, time_grid(3.0, 0.25))
    assert np.allclose(result.theory.t, make_grid(3.0, grid="log"))
    assert result.within_spread, result.lines()
    assert len(list_runs(tmp_path / "c.h5")) == 5 and (tmp_path / "c.png").exists()


def test_user_activation_runs_in_the_numpy_kernel_and_matches_the_compiled_one():
    """A student given only by its callables (here tanh through activations.custom) runs in the NumPy
    kernel and must give the compiled tanh kernel's fixed point to rounding (same draws; the
    Gaussian means come from Gauss–Hermite in both; precision="double", the NumPy kernel being
    float64 throughout). The Numba backend is refused for it."""
    from dmft.activations import custom

    t = time_grid(1.0, 0.25)
    user = custom(np.tanh, lambda h: 1 / np.cosh(h) ** 2, lambda h: -2 * np.tanh(h) / np.cosh(h) ** 2, name="my_tanh")
    common = dict(width=2, target="committee", teacher_width=2, teacher_activation="erf", scale=1.5)
    options = dict(samples=512, error_replicas=0, precision="double")
    ref = solve_committee_dmft(CommitteeModel(activation="tanh", **common), 3.0, t, **options)
    got = solve_committee_dmft(CommitteeModel(activation=user, **common), 3.0, t, backend="numpy", **options)
    assert ref.converged and got.converged
    assert_allclose(got.test_loss, ref.test_loss, rtol=0, atol=1e-9)
    assert_allclose(got.train_loss, ref.train_loss, rtol=0, atol=1e-9)
    with pytest.raises(InvalidParameterError, match="backend"):
        solve_committee_dmft(CommitteeModel(activation=user, **common), 3.0, t, **options)


def test_committee_symmetry_group_and_projection():
    """The committee group pairs student and teacher permutations (theory.md §9.2, §10.7): for the
    square target it is the package model's group; for an erf committee with R(0) symmetric under
    swapping both students and both teachers it has order 2 (erf is odd: no reflection), and the
    projected solve is exactly symmetric and agrees with the unprojected one within its error bars."""
    from dmft.symmetry import invariance_group

    params = ModelParameters(alpha=3.0, epsilon=0.25, init_overlap=(0.1, -0.1))
    quad = CommitteeProblem(CommitteeModel(activation="quadratic", epsilon=0.25, width=2,
                                           init_overlap=[[0.1], [-0.1]]), 3.0)
    assert quad.symmetry(True).order == invariance_group(params.m0, params.cov0).order == 2
    t = time_grid(4.0, 0.25)
    ref = solve_dmft(params, t, samples=2048, error_replicas=0)
    got = solve_dmft(quad, t, samples=2048, error_replicas=0)
    assert_allclose(got.test_loss, ref.test_loss, rtol=0, atol=1e-10)

    model = _erf_committee(init_overlap=[[0.1, 0.05], [0.05, 0.1]])
    group = CommitteeProblem(model, 3.0).symmetry(True)
    assert group.order == 2 and np.all(group.signs == 1.0)
    t = time_grid(3.0, 0.25)
    sym = solve_committee_dmft(model, 3.0, t, samples=4096, error_replicas=4)
    raw = solve_committee_dmft(model, 3.0, t, samples=4096, error_replicas=4, symmetrize=False)
    R = sym.extras["overlap_matrix"]
    assert_allclose(R[:, 0, 0], R[:, 1, 1], rtol=0, atol=1e-12)
    assert_allclose(R[:, 0, 1], R[:, 1, 0], rtol=0, atol=1e-12)
    se = np.hypot(sym.test_loss_sem, raw.test_loss_sem)
    assert np.all(np.abs(sym.test_loss - raw.test_loss) <= 4 * se + 1e-12)
