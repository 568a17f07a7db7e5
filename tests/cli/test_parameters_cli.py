"""Invalid input is refused with an error naming the parameter; the CLI exits 2 without a traceback."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

import dmft
from grokking_cli.main import main
from dmft.parameters import InvalidParameterError, ModelParameters
from empirical.committee.machine import train_committee

BAD = [
    (dict(alpha=0.0), "alpha"),
    (dict(alpha=-1.0), "alpha"),
    (dict(alpha=float("nan")), "alpha"),
    (dict(epsilon=float("nan")), "epsilon"),
    (dict(scale=0.0), "scale"),
    (dict(scale=math.inf), "scale"),
    (dict(width=0), "width"),
    (dict(width=1.5), "width"),
    (dict(rho=-1.0), "rho"),
    (dict(init_overlap=[1.0, 0.0]), "init_overlap"),
    (dict(init_overlap=[0.1]), "init_overlap"),
    (dict(init_cov=[[1.0, 2.0], [2.0, 1.0]]), "init_cov"),
    (dict(init_cov=[[1.0, 0.0], [0.5, 1.0]]), "init_cov"),
]


@pytest.mark.parametrize("change, name", BAD)
def test_invalid_parameters_raise_named_value_error(change, name):
    kwargs = dict(alpha=10.0, epsilon=0.1, width=2) | change
    with pytest.raises(ValueError, match=name):
        ModelParameters(**kwargs)


@pytest.mark.parametrize("kwargs, name", [(dict(t_max=0.0), "t_max"), (dict(t_max=-3.0), "t_max"),
                                          (dict(dt=0.0), "dt"), (dict(dt=100.0), "dt")])
def test_invalid_time_grid_raises(kwargs, name):
    with pytest.raises(ValueError, match=name):
        dmft.solve(alpha=math.inf, epsilon=0.1, **kwargs)


@pytest.mark.parametrize(
    "args, name",
    [
        (["--alpha", "0", "--epsilon", "0.1"], "alpha"),
        (["--alpha", "inf", "--epsilon", "0.1", "--scale", "-1"], "scale"),
        (["--alpha", "inf", "--epsilon", "0.1", "--width", "0"], "width"),
        (["--alpha", "inf", "--epsilon", "0.1", "--init-overlap", "1.5,0"], "init_overlap"),
        (["--alpha", "inf", "--epsilon", "0.1", "--t-max", "-1"], "t_max"),
        (["--alpha", "inf", "--epsilon", "nan"], "epsilon"),
        (["--alpha", "3", "--epsilon", "0.1", "--sampler", "sobol"], "sampler"),
        (["--alpha", "2", "--epsilon", "0", "--activation", "linear", "--target", "committee", "--noise", "-1"],
         "noise"),
    ],
)
def test_cli_rejects_bad_input_with_exit_code_2(args, name):
    result = CliRunner().invoke(main, ["solve", *args, "--no-plot"])
    assert result.exit_code == 2, result.output
    assert name in result.output
    assert "Traceback" not in result.output


def test_epsilon_is_required_exactly_where_a_quadratic_activation_uses_it():
    """--epsilon belongs to the quadratic activation: required with it (student by default, or a
    quadratic teacher), optional and 0 without it, and refused when non-zero there (it would do
    nothing); the refusals exit with code 2 and name --epsilon."""
    tanh = ["solve", "--alpha", "inf", "--activation", "tanh", "--target", "committee", "--teacher-width", "2",
            "--width", "2", "--scale", "2", "--teacher-scale", "2", "--t-max", "1", "--json", "--no-plot"]
    result = CliRunner().invoke(main, tanh)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["parameters"]["epsilon"] == 0.0
    api = dmft.solve(math.inf, 0.0, activation="tanh", target="committee", teacher_width=2, width=2, scale=2.0,
                     teacher_scale=2.0, t_max=1.0)
    np.testing.assert_allclose(summary["test_loss"], api.test_loss, rtol=1e-12, atol=0)
    # the Python API follows the same rule (dmft.parameters.resolve_epsilon)
    left_out = dmft.solve(math.inf, activation="tanh", target="committee", teacher_width=2, width=2, scale=2.0,
                          teacher_scale=2.0, t_max=1.0)
    np.testing.assert_array_equal(left_out.test_loss, api.test_loss)
    for call in (lambda: dmft.solve(10.0), lambda: dmft.solve(math.inf, 0.2, activation="erf"),
                 lambda: train_committee(3.0, 20, 2, activation="erf", epsilon=0.2, t_max=0.1, device="cpu"),
                 lambda: train_committee(3.0, 20, 2, t_max=0.1, device="cpu")):
        with pytest.raises(InvalidParameterError, match="epsilon"):
            call()
    assert CliRunner().invoke(main, tanh + ["--epsilon", "0"]).exit_code == 0
    # the same rule in `dmft train committee` (its polynomial students, "poly" by default, need it)
    train = ["train", "committee", "--alpha", "3", "--dim", "40", "--width", "2", "--t-max", "0.5", "--device", "cpu",
             "--record-points", "3", "--json", "--no-progress", "--activation", "tanh"]
    trained = CliRunner().invoke(main, train)
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.output)["parameters"]["epsilon"] == 0.0
    for args, message in ((tanh + ["--epsilon", "0.2"], "applies to the quadratic activation only"),
                          (["solve", "--alpha", "10", "--no-plot"], "Missing option '--epsilon'"),
                          (tanh + ["--teacher-activation", "quadratic"], "Missing option '--epsilon'"),
                          (["compare", "--alpha", "3", "--activation", "erf", "--epsilon", "0.1", "--no-plot"],
                           "applies to the quadratic activation only"),
                          (train + ["--epsilon", "0.2"], "applies to the quadratic activation only"),
                          (train + ["--target", "committee", "--teacher-activation", "quadratic"], "Missing option '--epsilon'"),
                          (train[:-2], "missing option(s) --epsilon")):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert "--epsilon" in result.output and message in result.output, result.output


def test_cli_json_is_strict_json_also_for_infinite_alpha():
    # RFC 8259 has no Infinity or NaN: --json writes alpha = inf as the string "inf", so jq and
    # JavaScript read it; a parser that refuses the non-standard constants must accept the output.
    result = CliRunner().invoke(main, ["solve", "--alpha", "inf", "--epsilon", "0.25", "--json", "--t-max", "2",
                                       "--no-plot"])
    assert result.exit_code == 0, result.output

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    summary = json.loads(result.output, parse_constant=refuse)
    assert summary["parameters"]["alpha"] == "inf"
    assert all(math.isfinite(x) for x in summary["test_loss"])


def test_cli_online_json_matches_api(tmp_path):
    plot = tmp_path / "curves.png"
    result = CliRunner().invoke(main, ["solve", "--alpha", "inf", "--epsilon", "0.25", "--json",
                                       "--t-max", "10", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    for key in ("converged", "iterations", "residual", "seconds", "t", "train_loss", "test_loss"):
        assert key in summary
    api = dmft.solve(alpha=math.inf, epsilon=0.25, t_max=10)
    np.testing.assert_allclose(summary["test_loss"], api.test_loss, rtol=1e-12)
    assert plot.stat().st_size > 10_000  # a real PNG with curves, not an empty canvas


def test_help_explains_alpha_and_scale():
    result = CliRunner().invoke(main, ["solve", "--help"])
    assert result.exit_code == 0
    assert "P/D" in result.output and "Output scale" in result.output


def test_cli_rqmc_sampler_pools_the_replicas_and_matches_the_api():
    """`dmft solve --sampler rqmc`: the curves are the mean of the replica solves (settings say so)
    and equal the Python API's with the same options to rounding."""
    args = ["--alpha", "10", "--epsilon", "0.1", "--t-max", "2", "--samples", "1024", "--error-replicas", "4",
            "--sampler", "rqmc"]
    result = CliRunner().invoke(main, ["solve", *args, "--json", "--no-plot", "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["settings"]["sampler"] == "rqmc" and summary["settings"]["pooled_replicas"]
    api = dmft.solve(10.0, 0.1, t_max=2.0, samples=1024, error_replicas=4, sampler="rqmc")
    np.testing.assert_allclose(summary["test_loss"], api.test_loss, rtol=1e-12)
    np.testing.assert_allclose(summary["test_loss_sem"], api.test_loss_sem, rtol=1e-12)


def test_cli_union_of_replicas_matches_the_api_and_is_refused_online():
    """`dmft solve --union-of-replicas`: the settings say the union solve ran, the curves equal the
    Python API's with the same option; at --alpha inf the option is refused (exit 2, named)."""
    args = ["--alpha", "5", "--epsilon", "0.25", "--t-max", "2", "--samples", "1024", "--error-replicas", "4",
            "--union-of-replicas"]
    result = CliRunner().invoke(main, ["solve", *args, "--json", "--no-plot", "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["settings"]["union_of_replicas"] and summary["settings"]["union_of_replicas_used"]
    api = dmft.solve(5.0, 0.25, t_max=2.0, samples=1024, error_replicas=4, union_of_replicas=True)
    np.testing.assert_allclose(summary["test_loss"], api.test_loss, rtol=1e-12)
    np.testing.assert_allclose(summary["test_loss_sem"], api.test_loss_sem, rtol=1e-12)
    online = CliRunner().invoke(main, ["solve", "--alpha", "inf", "--epsilon", "0.25", "--union-of-replicas",
                                       "--no-plot"])
    assert online.exit_code == 2 and "--union-of-replicas" in online.output


def test_solve_lr_runs_online_sgd_as_the_python_api_and_is_refused_at_finite_alpha():
    args = ["solve", "--alpha", "inf", "--epsilon", "0", "--activation", "relu", "--target", "committee",
            "--teacher-width", "2", "--width", "2", "--scale", "2", "--teacher-scale", "2",
            "--init-overlap", "0.3,0.05,0,0.2", "--lr", "0.5", "--t-max", "2", "--json", "--no-plot"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    api = dmft.solve(math.inf, 0.0, activation="relu", target="committee", teacher_width=2, width=2, scale=2.0,
                     teacher_scale=2.0, init_overlap=np.array([[0.3, 0.05], [0.0, 0.2]]), lr=0.5, t_max=2.0)
    summary = json.loads(result.output)
    assert summary["parameters"]["lr"] == 0.5
    np.testing.assert_allclose(summary["test_loss"], api.test_loss, rtol=1e-12, atol=0)
    for bad in (["--alpha", "3"], ["--lr", "-1"]):
        result = CliRunner().invoke(main, args + bad)
        assert result.exit_code == 2 and "--lr" in result.output


def test_response_samples_without_the_exact_response_is_refused():
    """--response-samples sets the exact recursion's sample count; with the probe response it would
    be ignored silently, so it is refused, naming the option, before any solve."""
    with pytest.raises(InvalidParameterError, match="response_samples"):
        dmft.solve(10.0, epsilon=0.1, response_samples=64)
    result = CliRunner().invoke(main, ["solve", "--alpha", "10", "--epsilon", "0.1", "--response-samples", "64",
                                       "--no-plot", "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "response_samples" in result.output and "Traceback" not in result.output


def test_online_ode_that_blows_up_raises_a_solver_error():
    """The failed integration is a dmft.errors.SolverError (what the CLI maps to exit 3), raised by
    the ODE solver itself, and still a RuntimeError for callers that catch that."""
    from dmft.errors import OnlineODEError, SolverError

    with pytest.raises(OnlineODEError, match="ODE integration failed") as caught:
        dmft.solve(math.inf, epsilon=0.1, lr=1.0)
    assert isinstance(caught.value, SolverError) and isinstance(caught.value, RuntimeError)
    from dmft.dmft_solver import DMFTError
    assert issubclass(DMFTError, SolverError)


def test_online_sgd_that_blows_up_exits_3_with_one_line():
    """Online SGD at a learning rate beyond its stability (eta0 = 1 here) makes the committee ODE
    blow up: the solver failure exits 3 with the integrator's reason, not a traceback."""
    result = CliRunner().invoke(main, ["solve", "--alpha", "inf", "--epsilon", "0.1", "--lr", "1", "--no-plot",
                                       "--no-progress"])
    assert result.exit_code == 3, result.output
    assert "did not converge" in result.output and "ODE" in result.output and "Traceback" not in result.output
