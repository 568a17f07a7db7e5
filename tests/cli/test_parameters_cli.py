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


# ---------------------------------------------------------------------------------------------
# The Python API mirrors the CLI, --help tells the truth, bad values are refused before computing
# ---------------------------------------------------------------------------------------------
def _refused(args, *needles):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    for needle in needles:
        assert needle in result.output, (needle, result.output)
    return result


def test_every_option_of_every_command_has_a_help_text():
    """`--help explains each option`: no visible option of any command is left without a text."""
    import click

    missing = []

    def walk(command, path):
        if isinstance(command, click.Group):
            context = click.Context(command)
            for name in command.list_commands(context):
                walk(command.get_command(context, name), [*path, name])
            return
        missing.extend(f"dmft {' '.join(path)} {'/'.join(p.opts)}" for p in command.params
                       if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip())

    walk(main, [])
    assert not missing, missing


def test_algorithmic_seed_help_shows_the_api_default():
    """--seed of the neural systems shows the seed the command runs, the API's (1 for the MLP and the
    student-teacher, 0 for the others), not a vague 'paper seed'."""
    import re

    for command, seed in (("mlp", 1), ("student-teacher", 1), ("transformer", 0), ("nanda", 0), ("digits", 0)):
        text = " ".join(CliRunner().invoke(main, ["train", "algorithmic", command, "--help"]).output.split())
        assert re.search(r"--seed INTEGER .*?\[default: (\d+)\]", text).group(1) == str(seed), (command, text)


def test_solve_help_states_the_log_grid_points_it_uses():
    """The --grid-points default of `dmft solve --help` is the formula dmft.solve uses (98 points to
    t = 40, 259 to t = 300 at dt = 0.25)."""
    from dmft.solve import default_grid_points

    text = " ".join(CliRunner().invoke(main, ["solve", "--help"]).output.split())
    assert "1 + ceil(1 + ln(1 + 0.01 t_max/dt)/0.01)" in text
    for t_max, dt in ((40.0, 0.25), (300.0, 0.25), (60.0, 0.1), (7.0, 0.5)):
        assert default_grid_points(t_max, dt) == 1 + math.ceil(1 + math.log1p(0.01 * t_max / dt) / 0.01)
    assert "98 for t_max=40, 259 for t_max=300" in text


def test_api_parameter_names_are_options_too():
    """Options whose short CLI name differs from the API's (max_lr, n_layers, n_heads, learning_rate,
    mnist_path) also take the API's name, so that an error naming the API parameter names an option."""
    small = ["train", "algorithmic", "transformer", "--modulus", "5", "--steps", "2", "--d-model", "8",
             "--no-progress"]
    result = _refused(small + ["--n-layers", "1", "--n-heads", "2", "--max-lr", "0"], "max_lr")
    assert "No such option" not in result.output
    result = _refused(["train", "bayes", "linear", "--epochs", "2", "--learning-rate", "0"], "learning_rate")
    assert "No such option" not in result.output
    result = _refused(["train", "algorithmic", "digits", "--mnist-path", "/nonexistent.npz", "--steps", "1"],
                      "mnist_path")
    assert "No such option" not in result.output


def test_sweep_fraction_names_its_option_for_a_bad_percentage():
    args = ["train", "algorithmic", "sweep-fraction", "--modulus", "5", "--steps", "2", "--d-model", "8",
            "--heads", "2", "--layers", "1", "--no-progress"]
    for bad in ("0", "100", "nan", "50,-5"):
        _refused(args + ["--train-pcts", bad], "--train-pcts", "(0, 100)")


def test_compare_refuses_what_the_simulations_refuse_before_the_theory_runs(tmp_path, monkeypatch):
    """No training sample, a gradient step beyond the window, too small a D: refused (exit 2, the
    parameter named) before the DMFT is solved, not minutes later by the first simulation."""
    def no_theory(*args, **kwargs):
        raise AssertionError("the theory ran before the simulation parameters were checked")

    monkeypatch.setattr("comparisons.comparison.run_theory", no_theory)
    base = ["compare", "--epsilon", "0.1", "--seeds", "1", "--t-max", "1", "--no-plot", "--no-progress",
            "--out", str(tmp_path / "c.h5")]
    _refused(base + ["--alpha", "0.0001", "--dim", "20"], "alpha", "dim", "training sample")
    _refused(base + ["--alpha", "3", "--dim", "20", "--lr", "1000"], "lr must be at most")
    _refused(base + ["--alpha", "3", "--dim", "20", "--lr", "30"], "lr must be at most")
    _refused(base + ["--alpha", "3", "--dim", "1"], "dim")
    family = ["compare", "--alpha", "3", "--activation", "erf", "--target", "committee", "--teacher-width", "2",
              "--seeds", "1", "--t-max", "1", "--no-plot", "--no-progress", "--out", str(tmp_path / "f.h5")]
    _refused(family + ["--dim", "3"], "dim", "N + M")
    _refused(family + ["--dim", "20", "--lr", "10"], "lr must be at most", "spacing")
    _refused(base + ["--alpha", "3", "--dim", "20", "--theory-seed", "-1"], "--theory-seed")


def test_figure_refuses_a_negative_seed_before_drawing(tmp_path, monkeypatch):
    from comparisons import figures

    def no_drawing(*args, **kwargs):
        raise AssertionError("the figure was computed before its seed was checked")

    monkeypatch.setitem(figures.FIGURES, "fig4", no_drawing)
    _refused(["figure", "fig4", "--seed", "-1", "--out-dir", str(tmp_path / "figures")], "seed", ">= 0")
    with pytest.raises(InvalidParameterError, match="seed"):
        figures.make_figure("fig4", seed=-1, out_dir=tmp_path / "figures")
    assert not (tmp_path / "figures").exists()


def test_phase_refuses_a_bad_grid_and_a_negative_seed_before_any_point(tmp_path):
    """dt > t_max and too few grid points were refused by every worker (exit 1, one line per point);
    a negative --seed was dropped silently at alpha = inf. All are refused up front (exit 2)."""
    base = ["phase", "--scale", "1,2", "--epsilon", "0.1,0.2", "--t-max", "1", "--workers", "0", "--no-progress",
            "--out", str(tmp_path / "p.h5")]
    _refused(base + ["--alpha", "inf", "--dt", "5"], "dt", "t_max")
    _refused(base + ["--alpha", "3", "--grid-points", "1"], "grid_points")
    _refused(base + ["--alpha", "inf", "--seed", "-1"], "--seed")
    assert not (tmp_path / "p.h5").exists()


def test_a_huge_log_grid_is_refused_not_allocated():
    from dmft.solve import MAX_GRID_POINTS, log_time_grid

    with pytest.raises(InvalidParameterError, match="grid_points"):
        log_time_grid(40.0, int(MAX_GRID_POINTS) + 1)
    _refused(["solve", "--alpha", "3", "--epsilon", "0.1", "--grid-points", "1000000000", "--no-plot"],
             "grid_points")


def test_an_output_scale_beyond_double_range_is_a_non_finite_run_not_a_traceback():
    """--scale 1e300 is a positive number, but the loss (~kappa^2) overflows: the online run is
    reported as non-finite (exit 3, one line), never an OverflowError traceback."""
    for extra in ([], ["--center"]):
        result = CliRunner().invoke(main, ["solve", "--alpha", "inf", "--epsilon", "0.1", "--scale", "1e300",
                                           "--t-max", "1", "--no-plot", *extra])
        assert result.exit_code == 3, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert "did not converge" in result.output and "non-finite" in result.output


def test_solver_defaults_written_in_help_texts_are_the_solvers():
    """Options that default to None (so that only a given value reaches the solver) write the solver's
    default into their help; each must be SolverSettings' actual default."""
    import dataclasses
    import re

    import click

    from dmft.dmft_solver import SolverSettings

    defaults = {f.name: f.default for f in dataclasses.fields(SolverSettings)}
    context = click.Context(main)
    checked = 0
    for command_name in ("solve", "compare", "phase"):
        command = main.get_command(context, command_name)
        for option in command.params:
            field = "seed" if option.name == "theory_seed" else option.name
            match = re.search(r"\[default: (?:the solver's, )?([^\]]+)\]", option.help or "")
            if field not in defaults or option.default is not None or match is None:
                continue
            shown = match.group(1).strip()
            value = defaults[field]
            if value is None:
                continue
            if isinstance(value, bool):
                spelled = {"on", *option.opts} if value else {"off", *option.secondary_opts}
                assert shown in spelled, (command_name, option.name, shown, value)
            elif isinstance(value, (int, float)):
                assert float(shown) == value, (command_name, option.name, shown, value)
            else:
                assert shown == value, (command_name, option.name, shown, value)
            checked += 1
    assert checked >= 20


def test_family_comparison_takes_the_log_grid_it_uses_by_default(tmp_path):
    """At finite alpha the theory of a family comparison is solved on the log grid by default; asking
    for it explicitly (--grid log) must give the same comparison, not a refusal."""
    common = ["compare", "--alpha", "3", "--dim", "40", "--seeds", "1", "--activation", "erf", "--target",
              "committee", "--teacher-width", "2", "--t-max", "1", "--samples", "256", "--error-replicas", "0",
              "--no-plot", "--no-progress", "--json"]
    implicit = CliRunner().invoke(main, common + ["--out", str(tmp_path / "a.h5")])
    explicit = CliRunner().invoke(main, common + ["--grid", "log", "--out", str(tmp_path / "b.h5")])
    assert implicit.exit_code == 0 and explicit.exit_code == 0, explicit.output
    a, b = json.loads(implicit.output.splitlines()[-1]), json.loads(explicit.output.splitlines()[-1])
    assert a["agreement"] == b["agreement"]


def test_an_allocation_the_machine_cannot_satisfy_is_one_line_not_a_traceback(monkeypatch):
    """A MemoryError (an array too large for the machine, e.g. a huge --width) ends the command
    with one line and exit 1, like the other resource errors, not with a traceback."""
    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 74.5 GiB for an array with shape (100000, 100000)")

    monkeypatch.setattr("dmft.dmft_solver.solve_dmft", exhausted)
    result = CliRunner().invoke(main, ["solve", "--alpha", "10", "--epsilon", "0.1", "--no-plot", "--no-progress"])
    assert result.exit_code == 1, result.output
    assert "out of memory" in result.output and "74.5 GiB" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
