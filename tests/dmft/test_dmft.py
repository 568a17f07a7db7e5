"""Finite-α DMFT solver (theory.md §4), each claim against an independent reference.

Grids are short (t ≤ 4, dt = 0.25) so that the whole module runs in well under a minute once the
Numba kernels are cached; the long-time, large-D comparisons live in
``benchmarks/dmft_vs_simulation.py`` with their recorded output.
"""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from numpy.testing import assert_allclose

from dmft import _data_kernels as kernels
from grokking_cli.main import main
from dmft.data_side import estimate_data_side
from dmft.dmft_solver import SolverSettings, online_start, solve_dmft
from dmft.online import OnlineTrajectory
from dmft.parameters import ModelParameters
from dmft.problems import SquareTargetProblem
from dmft.sampling import conditional_square_root, draw_chunk
from dmft.simulate import simulate_gd
from dmft.solve import time_grid
from dmft.weight_side import to_flat

T_MAX = 4.0
DT = 0.25


def _kernel_inputs(params, samples, t_max=T_MAX):
    t = time_grid(t_max, DT)
    state = online_start(params, t)
    T, N = state.overlap.shape
    root = conditional_square_root(to_flat(state.cov), state.overlap.reshape(-1), params.rho)
    u, hstar, probe, _ = draw_chunk(root, seed=3, index=0, start=0, stop=samples, samples=samples,
                                 steps=T, width=N, rho=params.rho)
    return state, u, hstar, probe


def _run_kernel(kernel, params, state, u, hstar, probe, weight=None, store_samples=True, memory_dtype=np.float64):
    S, T, N = u.shape
    out = kernels.allocate_outputs(S, T, N, store_samples=store_samples)
    weight = np.ones(S) if weight is None else weight
    failures = kernels.run_data_kernel(kernel, u, 0.5 * hstar**2, hstar[:, None].copy(), probe,
                                       np.ascontiguousarray(state.response), params.scale, kernels.ACT_QUADRATIC,
                                       params.epsilon, 2.0 / params.scale / params.alpha, params.center, weight, out,
                                       store_samples=store_samples, memory_dtype=memory_dtype)
    return failures, out


@pytest.mark.parametrize("center, width", [(False, 2), (True, 2), (False, 3), (True, 1), (False, 4), (True, 5)])
def test_numba_and_numpy_kernels_agree_to_rounding(center, width):
    """Same draws → same per-sample outputs (rtol 1e-12 of each array's scale).

    N = 1 and 2 use the closed-form inverses of the block kernel, N ≥ 3 its pivoted
    Gauss–Jordan; the memory sums take the fixed-index N = 2 path, units in pairs (N = 4) and
    pairs plus a last odd unit (N = 3, 5); 100 samples leave a partial last block."""
    params = ModelParameters(alpha=3.0, epsilon=0.25, center=center, width=width)
    state, u, hstar, probe = _kernel_inputs(params, 100)
    weight = np.random.default_rng(0).uniform(0.5, 1.5, 100)
    f1, numba_out = _run_kernel(kernels.data_side_numba, params, state, u, hstar, probe, weight)
    f2, numpy_out = _run_kernel(kernels.data_side_numpy, params, state, u, hstar, probe, weight)
    assert f1 == f2 == 0
    for name, ref in numpy_out.items():
        assert_allclose(numba_out[name], ref, rtol=0, atol=1e-12 * max(1.0, np.abs(ref).max()), err_msg=name)


@pytest.mark.parametrize("center, width", [(False, 2), (True, 2), (False, 4)])
def test_single_precision_memory_sums_round_within_their_bound(center, width):
    """theory.md §9.4: the Numba kernel with float32 memory sums and histories against float64 on
    the same draws. Each sum of ≤ N·T products carries ~6e-8 relative rounding per term; every
    per-sample output and block moment must lie within 1e-5 of its array's scale (observed ≤ 7e-7
    at T = 161), against Monte Carlo errors ≥ 1e-3 of that scale."""
    params = ModelParameters(alpha=3.0, epsilon=0.25, center=center, width=width)
    state, u, hstar, probe = _kernel_inputs(params, 256, t_max=40.0)
    _, double = _run_kernel(kernels.data_side_numba, params, state, u, hstar, probe)
    _, single = _run_kernel(kernels.data_side_numba, params, state, u, hstar, probe, memory_dtype=np.float32)
    changed = 0
    for name, ref in double.items():
        scale = max(1e-300, np.abs(ref).max())
        assert_allclose(single[name], ref, rtol=0, atol=1e-5 * scale, err_msg=name)
        changed += not np.array_equal(single[name], ref)
    assert changed >= 5                      # the single-precision path was taken


def test_mixed_precision_solve_agrees_with_double_far_inside_its_error_bars():
    """precision="mixed" against the default "double" on the same draws (α = 5, ε = 0.25, t ≤ 6):
    both converge on the double-precision map ("mixed" finishes in float64), so the curves differ
    only by where the two iterations stopped within the tolerance: < 2 % of their Monte Carlo
    standard error (observed 2.2e-3; 1.4e-5 when "mixed" still ran single precision to the end)."""
    params = ModelParameters(alpha=5.0, epsilon=0.25)
    common = dict(samples=4096, error_replicas=4, seed=1)
    mixed = solve_dmft(params, time_grid(6.0, 0.25), precision="mixed", **common)
    double = solve_dmft(params, time_grid(6.0, 0.25), **common)
    assert mixed.converged and double.converged and double.settings["precision"] == "double"
    for name in ("train_loss", "test_loss"):
        sem = getattr(double, name + "_sem")[1:]
        difference = np.abs(getattr(mixed, name) - getattr(double, name))[1:]
        assert np.all(difference < 0.02 * sem), (name, (difference / sem).max())


@pytest.mark.parametrize("kernel", [kernels.data_side_numba, kernels.data_side_numpy])
def test_kernel_block_moments_are_the_weighted_sums_of_the_per_sample_outputs(kernel):
    """The control-variate sums the kernels accumulate per block of samples, added over blocks,
    equal Σ_a w_a X_a, Σ w X⁰, Σ w X X⁰, Σ w X⁰² formed here from the per-sample outputs (100
    samples: a partial last block), and they do not depend on whether those outputs are stored."""
    params = ModelParameters(alpha=3.0, epsilon=0.25, center=True, width=2)
    state, u, hstar, probe = _kernel_inputs(params, 100)
    weight = np.random.default_rng(1).uniform(0.5, 1.5, 100)
    _, out = _run_kernel(kernel, params, state, u, hstar, probe, weight)
    _, lean = _run_kernel(kernel, params, state, u, hstar, probe, weight, store_samples=False)
    pairs = {"train_moments": (out["delta"] ** 2, out["delta_gauss"] ** 2),
             "local_moments": (out["local"], out["jac_gauss"]),
             "rstar_moments": (out["dg_dstar"], out["dstar_gauss"])}
    for name, (x, c) in pairs.items():
        expected = [np.tensordot(weight, v, axes=1) for v in (x, c, x * c, c * c)]
        got = out[name].sum(axis=0)
        for k in range(4):
            assert_allclose(got[k], expected[k], rtol=1e-12, atol=1e-12 * np.abs(expected[k]).max(), err_msg=name)
    assert_allclose(out["local0_moments"].sum(axis=0), np.tensordot(weight, out["local0"], axes=1), rtol=1e-12,
                    atol=1e-14)
    assert np.abs(out["local0"]).max() > 0            # centred: the local part of ∂g/∂u_0 is there
    for name in kernels.MOMENT_NAMES + ("g", "probe_memory"):
        assert_allclose(lean[name], out[name], rtol=0, atol=0, err_msg=name)
    assert lean["local"].shape[0] == 0


def test_exact_response_kernels_agree_and_start_from_local_blocks():
    params = ModelParameters(alpha=3.0, epsilon=0.25, center=True)
    state, u, hstar, probe = _kernel_inputs(params, 32, t_max=2.0)
    _, out = _run_kernel(kernels.data_side_numba, params, state, u, hstar, probe)
    T, N = u.shape[1:]
    coupling = 2.0 / params.scale / params.alpha
    a = np.zeros((2, T, T, N, N))
    b = np.zeros((1, T, T, N, N))
    ones = np.ones(u.shape[0])
    kernels.exact_response_numba(out["local"], np.ascontiguousarray(state.response), coupling, out["local0"], ones, a)
    kernels.exact_response_numpy(out["local"], np.ascontiguousarray(state.response), coupling, out["local0"], ones, b)
    assert_allclose(a.sum(0), b[0], rtol=0, atol=1e-12 * np.abs(b).max())
    idx = np.arange(T)
    assert_allclose(b[0][idx, idx], out["local"].sum(0), rtol=1e-13)
    assert np.all(b[0][np.triu_indices(T, 1)] == 0.0)           # causality: R_g(n, s > n) = 0


@pytest.mark.parametrize("center", [False, True])
def test_probe_response_converges_to_exact_recursion(center):
    """The probe estimator of R_g is unbiased for the per-sample recursion's mean response.

    Reference: the exact block recursion on 16384 samples. The probe's own noise falls like
    S^{-1/2}: from S = 4096 to S = 65536 its sup deviation from the reference must drop by more
    than 2.5 (4 expected; observed 4.2 uncentred, 3.8 centred) and end below 10 % of the largest
    regular entry. A bias would leave a floor.
    """
    params = ModelParameters(alpha=3.0, epsilon=0.25, center=center)
    t = time_grid(T_MAX, DT)
    state = online_start(params, t)
    common = dict(problem=SquareTargetProblem(params), seed=1)
    exact = estimate_data_side(state.cov, state.overlap, state.response, response="exact", samples=16384, **common)
    lower = np.tril_indices(t.size, -1)
    scale = np.abs(exact.response[lower]).max()
    assert scale > 0.05          # the regular part is a real effect at α = 3
    deviation = {}
    for samples in (4096, 65536):
        probe = estimate_data_side(state.cov, state.overlap, state.response, response="probe", samples=samples,
                                   **common)
        deviation[samples] = np.abs(probe.response[lower] - exact.response[lower]).max()
    assert deviation[4096] / deviation[65536] > 2.5, deviation
    assert deviation[65536] < 0.1 * scale, (deviation, scale)


def test_scaled_initial_probe_is_unbiased_and_cuts_the_centred_noise():
    """Centred model: the probe at t = 0 drawn as σ₀·(±1), its column rescaled by 1/σ₀².

    Against the exact block recursion (65536 samples): at σ₀ = 0.15 the estimate stays unbiased
    (its deviation in the column R_g[:, 0] and in the other columns falls by > 2.5 from S = 4096 to
    65536; observed 3.1 and 3.8), and the other columns, which at σ₀ = 1 carry the variance of the
    direct response to h_0, are less noisy (rms deviation at S = 4096 below 0.7× that of σ₀ = 1;
    observed 0.50). Mean of three seeds each.
    """
    params = ModelParameters(alpha=3.0, epsilon=0.25, scale=2.0, center=True)
    t = time_grid(4.0, 0.25)
    state = online_start(params, t)
    common = dict(problem=SquareTargetProblem(params))
    exact = estimate_data_side(state.cov, state.overlap, state.response, response="exact", samples=65536, seed=1,
                               **common)
    T = t.size
    column = np.zeros((T, T), bool)
    column[1:, 0] = True
    other = np.tril(np.ones((T, T), bool), -1) & ~column

    def rms(scale, samples):
        out = []
        for seed in (2, 3, 4):
            probe = estimate_data_side(state.cov, state.overlap, state.response, response="probe", samples=samples,
                                       seed=seed, initial_probe_scale=scale, **common)
            d = probe.response - exact.response
            out.append((np.sqrt(np.mean(d[other] ** 2)), np.sqrt(np.mean(d[column] ** 2))))
        return np.mean(out, axis=0)

    small, large = rms(0.15, 4096), rms(0.15, 65536)
    assert np.all(small / large > 2.5), (small, large)
    assert small[0] < 0.7 * rms(1.0, 4096)[0]


def test_online_start_is_second_order_in_dt():
    """α = ∞ weight side = trapezoid discretisation of the online ODE: error ∝ dt²."""
    params = ModelParameters(alpha=math.inf, epsilon=0.25)
    errors = []
    for dt in (0.2, 0.1):
        t = time_grid(4.0, dt)
        state = online_start(params, t)
        m, Q, _ = OnlineTrajectory(params, 4.0)(t)
        idx = np.arange(t.size)
        errors.append(max(np.abs(state.overlap - m).max(), np.abs(state.cov[idx, idx] - Q).max()))
    assert errors[0] < 5e-3            # observed 3.0e-3 at dt = 0.2
    assert 3.2 < errors[0] / errors[1] < 4.8


@pytest.fixture(scope="module")
def alpha_series():
    """Solutions on the short grid for a range of α (shared by several tests)."""
    out = {}
    for alpha in (3.0, 12.5, 25.0, 50.0, 100.0):
        params = ModelParameters(alpha=alpha, epsilon=0.25)
        out[alpha] = solve_dmft(params, time_grid(T_MAX, DT), samples=8192, tol=1e-6, seed=0)
    return out


def test_solver_converges_with_finite_curves(alpha_series):
    for alpha, res in alpha_series.items():
        assert res.converged, (alpha, res.message)
        assert res.residual < 1e-6
        assert np.all(np.isfinite(res.train_loss)) and np.all(np.isfinite(res.test_loss))
        assert res.extras["C_w"].shape == (res.t.size, res.t.size, 2, 2)


def test_approaches_online_limit_as_one_over_alpha(alpha_series):
    """sup|C_w(t,t) − C_w^∞| and sup|m − m^∞| shrink like 1/α (theory.md §7.3).

    The reference is the same discrete scheme at α = ∞, so time-step error cancels; successive
    doublings of α must halve the deviation (ratio in [1.6, 2.5]).
    """
    t = time_grid(T_MAX, DT)
    ref = online_start(ModelParameters(alpha=math.inf, epsilon=0.25), t)
    idx = np.arange(t.size)
    dev = {}
    for alpha in (25.0, 50.0, 100.0):
        res = alpha_series[alpha]
        dev[alpha] = max(np.abs(res.cov - ref.cov[idx, idx]).max(), np.abs(res.overlap - ref.overlap).max())
    assert 1.6 < dev[25.0] / dev[50.0] < 2.5, dev
    assert 1.6 < dev[50.0] / dev[100.0] < 2.5, dev


def test_train_equals_test_at_large_alpha_and_gap_grows_as_alpha_shrinks(alpha_series):
    gaps = {a: r.gap[-1] for a, r in alpha_series.items()}
    assert gaps[3.0] > gaps[12.5] > gaps[25.0] > gaps[50.0] > gaps[100.0] > 0
    # the gap is O(1/α): α·gap is roughly constant at large α
    assert 0.8 < (50 * gaps[50.0]) / (100 * gaps[100.0]) < 1.25


def test_zero_overlap_stays_zero():
    """m ≡ 0 is an exact fixed point (theory.md §7.4), also with Monte Carlo sampling."""
    params = ModelParameters(alpha=3.0, epsilon=0.25, init_overlap=(0.0, 0.0))
    res = solve_dmft(params, time_grid(T_MAX, DT), samples=1024, tol=1e-5)
    assert res.converged
    assert np.abs(res.overlap).max() < 1e-13


@pytest.mark.parametrize(
    "alpha, scale, epsilon, center",
    [(10.0, 1.0, 0.1, False), (3.0, 1.0, 0.25, False), (10.0, 4.0, 0.1, True)],
)
def test_agrees_with_finite_dimensional_gradient_descent(alpha, scale, epsilon, center):
    """DMFT against seed-averaged full-batch GD at D = 300 (spec §0 planted initialisation).

    Tolerance: 3 standard errors of the seed mean plus a finite-size allowance of 1/√D relative
    (fluctuations of C_w(0,0) and of the data at D = 300), measured on train and test loss.
    """
    params = ModelParameters(alpha=alpha, epsilon=epsilon, scale=scale, center=center)
    t = time_grid(T_MAX, DT)
    theory = solve_dmft(params, t, samples=8192, tol=1e-5)
    assert theory.converged
    dim, seeds = 300, 6
    # GD step DT/12 ≈ 0.02 divides the grid step, so the records fall exactly on the DMFT grid
    runs = [simulate_gd(params, dim, t, seed=s, time_step=DT / 12) for s in range(seeds)]
    assert_allclose(runs[0].t, t, rtol=0, atol=1e-12)
    for field in ("train_loss", "test_loss"):
        sims = np.array([getattr(r, field) for r in runs])
        mean, sem = sims.mean(0), sims.std(0, ddof=1) / np.sqrt(seeds)
        allowed = 3 * sem + mean / np.sqrt(dim)
        assert np.all(np.abs(getattr(theory, field) - mean) <= allowed), (field, getattr(theory, field) - mean, allowed)
    # and the gap is resolved: train and test differ by more than the allowance at α = 3
    if alpha == 3.0:
        assert theory.gap[-1] > 0.1


def test_anderson_and_damped_iteration_reach_the_same_fixed_point():
    """Same random numbers, two mixing schemes: one fixed point (theory.md §0.1 "Iteration").

    With residual r < 1e-7 and a contraction of at most ~0.7 per damped step, each iterate lies
    within ~r/(1 − 0.7) < 1e-6 of the fixed point, so the curves must agree to 1e-6.
    """
    params = ModelParameters(alpha=3.0, epsilon=0.25)
    t = time_grid(T_MAX, DT)
    common = dict(samples=2048, warmup_samples=2048, tol=1e-7, max_iter=200, seed=3)
    anderson = solve_dmft(params, t, mixing="anderson", **common)
    damped = solve_dmft(params, t, mixing="damped", **common)
    assert anderson.converged and damped.converged
    for field in ("train_loss", "test_loss", "overlap", "cov"):
        assert_allclose(getattr(anderson, field), getattr(damped, field), rtol=0, atol=1e-6, err_msg=field)
    assert anderson.iterations < damped.iterations, (anderson.iterations, damped.iterations)


def test_non_convergence_is_reported_not_hidden():
    params = ModelParameters(alpha=3.0, epsilon=0.25)
    res = solve_dmft(params, time_grid(1.0, DT), samples=256, max_iter=2, tol=1e-12)
    assert not res.converged and not res.success
    assert "not converged" in res.message and res.iterations == 2
    assert np.all(np.isfinite(res.test_loss))
    runner = CliRunner()
    # the CLI on the API call's uniform grid (on the default log grid a window that fails is halved)
    out = runner.invoke(main, ["solve", "--alpha", "3", "--epsilon", "0.25", "--t-max", "1", "--samples", "256",
                               "--max-iter", "2", "--tol", "1e-12", "--grid", "uniform", "--no-plot", "--json",
                               "--no-progress"])
    assert out.exit_code == 3, out.output
    summary = json.loads(out.stdout)            # the failure message goes to stderr
    assert summary["converged"] is False and summary["iterations"] == 2


def test_cli_json_summary_for_finite_alpha(tmp_path):
    runner = CliRunner()
    out = runner.invoke(main, ["solve", "--alpha", "10", "--epsilon", "0.1", "--t-max", "1", "--samples", "1024",
                               "--json", "--no-progress", "--plot", str(tmp_path / "p.png"),
                               "--out", str(tmp_path / "r.h5")])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    for key in ("converged", "iterations", "residual", "seconds", "t", "train_loss", "test_loss"):
        assert key in summary
    assert summary["converged"] is True
    assert (tmp_path / "p.png").stat().st_size > 0
    from comparisons.store import read_run, list_runs

    (name,) = list_runs(tmp_path / "r.h5")
    stored = read_run(tmp_path / "r.h5", name)
    assert_allclose(stored.test_loss, summary["test_loss"], rtol=1e-15)


@pytest.mark.parametrize(
    "options, fragment",
    [({"samples": 6}, "samples must be a multiple of 4"), ({"damping": 0.0}, "damping must lie in (0, 1]"),
     ({"response": "stein"}, "response must be one of"), ({"backend": "cuda"}, "backend must be one of"),
     ({"max_iter": 0}, "max_iter"), ({"mixing": "broyden"}, "mixing must be one of"),
     ({"warmup_tol": -1.0}, "warmup_tol"), ({"precision": "half"}, "precision must be one of")],
)
def test_invalid_settings_are_named(options, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        SolverSettings(**options)
