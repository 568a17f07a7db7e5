"""Issue 16: nothing lost, nothing overwritten, nothing silently ignored; exit codes as documented.

Exit codes (grokking_cli.common): 1 input/output, 2 invalid input (InvalidParameterError only),
3 not converged / blew up. Every test goes through the CLI and checks the one-line message.
"""

import dataclasses
import json
import math
import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner

import dmft
import importlib
from comparisons.store import (RunConflictError, list_runs, read_run, store_run, stored_run_info, to_xarray,
                               write_run)
from dmft.parameters import InvalidParameterError, ModelParameters, check_finite, check_int_at_least, check_positive
from grokking_cli.main import main

solve_module = importlib.import_module("dmft.solve")
ONLINE = ["solve", "--alpha", "inf", "--epsilon", "0.25", "--t-max", "2", "--init-overlap", "0.2,-0.2"]


def _replace_solve(monkeypatch, replacement):
    """Replace dmft.solve.solve for the CLI, keeping the signature its option defaults are read from."""
    import functools

    monkeypatch.setattr(solve_module, "solve", functools.wraps(solve_module.solve)(replacement))


def _invoke(args):
    return CliRunner().invoke(main, args)


def _one_error_line(result, *needles):
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith(("error", "Error"))]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], (needle, result.output)
    return errors[0]


@pytest.fixture
def no_computation(monkeypatch):
    """Any computation fails the test: the checks must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("computed before checking the outputs")

    _replace_solve(monkeypatch, refuse)


def _bad_stores(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a store\n")
    truncated = tmp_path / "truncated.h5"
    write_run(tmp_path / "good.h5", "run", dmft.solve(math.inf, 0.25, t_max=1))
    truncated.write_bytes((tmp_path / "good.h5").read_bytes()[:600])
    random_bytes = tmp_path / "random.h5"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    return {"text file": text, "truncated h5": truncated, "random-bytes h5": random_bytes,
            "path under a file": text / "run.h5", "a folder": tmp_path}


# ---------------------------------------------------------------------------------------------
# --out and --plot are checked before any computation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["text file", "truncated h5", "random-bytes h5", "path under a file", "a folder"])
def test_solve_refuses_a_bad_store_before_computing(tmp_path, no_computation, case):
    out = _bad_stores(tmp_path)[case]
    result = _invoke(ONLINE + ["--out", str(out), "--no-plot"])
    if case == "a folder":  # click's own path check: a usage error naming the option
        assert result.exit_code == 2 and "--out" in result.output and "directory" in result.output
        return
    assert result.exit_code == 1, result.output
    _one_error_line(result, str(out.name))


def test_unwritable_folder_is_refused_before_computing(tmp_path, no_computation):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        result = _invoke(ONLINE + ["--out", str(folder / "s.h5"), "--no-plot"])
    finally:
        folder.chmod(stat.S_IRWXU)
    assert result.exit_code == 1
    _one_error_line(result, "permission")


def test_bad_plot_suffix_is_refused_before_computing(tmp_path, no_computation):
    result = _invoke(ONLINE + ["--plot", str(tmp_path / "out.xyz")])
    assert result.exit_code == 2 and "--plot" in result.output and ".png" in result.output
    result = _invoke(ONLINE + ["--plot", str(tmp_path / "notes.txt" / "p.png")])
    (tmp_path / "f").write_text("x")
    result = _invoke(ONLINE + ["--plot", str(tmp_path / "f" / "p.png")])
    assert result.exit_code == 1
    _one_error_line(result, "--plot")


def test_committee_and_ntk_check_outputs_first(tmp_path, monkeypatch):
    text = tmp_path / "notes.txt"
    text.write_text("x")

    def refuse(*args, **kwargs):
        raise AssertionError("computed before checking the outputs")

    monkeypatch.setattr("grokking_cli.ntk.make_problem", refuse)
    result = _invoke(["ntk", "--epsilon", "0.25", "--dim", "5", "--n-train", "10", "--out", str(text)])
    assert result.exit_code == 1
    _one_error_line(result, "notes.txt")
    result = _invoke(["ntk", "--epsilon", "0.25", "--plot", str(tmp_path / "x.jpeg2")])
    assert result.exit_code == 2 and "--plot" in result.output
    monkeypatch.setattr("empirical.committee.tasks.run_task", refuse)
    result = _invoke(["train", "committee", "--alpha", "2", "--dim", "10", "--width", "2", "--epsilon", "0.1",
                      "--steps", "3", "--out", str(text), "--device", "cpu"])
    assert result.exit_code == 1
    _one_error_line(result, "notes.txt")


def test_results_are_printed_when_storing_fails_afterwards(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("comparisons.store.store_run", broken)
    result = _invoke(ONLINE + ["--out", str(tmp_path / "s.h5"), "--no-plot", "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.output.splitlines()[0])  # the results came first, complete
    assert summary["converged"] and len(summary["test_loss"]) == len(summary["t"])
    _one_error_line(result, "could not store", "No space left")
    text = _invoke(ONLINE + ["--out", str(tmp_path / "s.h5"), "--no-plot"])
    assert text.exit_code == 1 and "train_loss" in text.output
    _one_error_line(text, "could not store")


# ---------------------------------------------------------------------------------------------
# never overwrite silently
# ---------------------------------------------------------------------------------------------
def test_runs_with_other_settings_get_their_own_names_and_identical_runs_resume(tmp_path, monkeypatch):
    out = tmp_path / "s.h5"
    first = _invoke(ONLINE[:-4] + ["--t-max", "5", "--out", str(out), "--no-plot", "--json"])
    second = _invoke(ONLINE[:-4] + ["--t-max", "10", "--out", str(out), "--no-plot", "--json"])
    assert first.exit_code == 0 and second.exit_code == 0
    names = [json.loads(r.output)["stored"]["run_name"] for r in (first, second)]
    assert names[0] != names[1] and sorted(list_runs(out)) == sorted(names)
    assert read_run(out, names[0]).t[-1] == 5 and read_run(out, names[1]).t[-1] == 10
    # the identical run again: resumed from the store, nothing computed
    _replace_solve(monkeypatch, lambda *a, **k: pytest.fail("recomputed an identical stored run"))
    again = _invoke(ONLINE[:-4] + ["--t-max", "5", "--out", str(out), "--no-plot", "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["stored"]["resumed"] is True


def test_a_stored_dmft_run_from_other_solver_numerics_is_recomputed_not_resumed(tmp_path, monkeypatch):
    # The identity of a finite-alpha run includes the solver's defaults and NUMERICS_REVISION:
    # after a change of the numerics the same request is solved again instead of resumed.
    from dmft import dmft_solver

    out = tmp_path / "s.h5"
    args = ["solve", "--alpha", "10", "--epsilon", "0.1", "--t-max", "1", "--samples", "256", "--error-replicas", "0",
            "--out", str(out), "--no-plot", "--json", "--no-progress"]
    first = _invoke(args)
    assert first.exit_code == 0, first.output
    assert json.loads(_invoke(args).output)["stored"]["resumed"] is True
    monkeypatch.setattr(dmft_solver, "NUMERICS_REVISION", dmft_solver.NUMERICS_REVISION + 1)
    again = json.loads(_invoke(args).output)
    assert again["stored"]["resumed"] is False
    assert again["stored"]["run_name"] != json.loads(first.output)["stored"]["run_name"]


def test_explicit_run_name_never_replaces_a_different_run_without_overwrite(tmp_path):
    out = tmp_path / "s.h5"
    assert _invoke(ONLINE + ["--out", str(out), "--run-name", "mine", "--no-plot"]).exit_code == 0
    other = ONLINE[:-4] + ["--t-max", "3", "--out", str(out), "--run-name", "mine", "--no-plot"]
    refused = _invoke(other)
    assert refused.exit_code == 2 and "mine" in refused.output and "--overwrite" in refused.output
    assert read_run(out, "mine").t[-1] == 2
    replaced = _invoke(other + ["--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert read_run(out, "mine").t[-1] == 3


def test_a_non_converged_run_never_replaces_a_converged_one(tmp_path):
    out = tmp_path / "s.h5"
    good = dmft.solve(math.inf, 0.25, t_max=2)
    bad = dataclasses.replace(good, converged=False, message="residual 0.5 after 3 iterations")
    assert store_run(out, "r", good, identity="a") == "stored"
    assert store_run(out, "r", bad, identity="a") == "kept"
    assert store_run(out, "r", bad, identity="b", overwrite=True) == "kept"
    assert read_run(out, "r").converged and stored_run_info(out, "r")["identity"] == "a"
    with pytest.raises(RunConflictError, match="'r'"):
        store_run(out, "r", good, identity="b")
    assert store_run(out, "n", bad, identity="c") == "stored"  # a failed run is kept when nothing better exists
    assert store_run(out, "n", good, identity="c") == "stored" and read_run(out, "n").converged


def test_stores_get_ordinary_permissions(tmp_path):
    out = tmp_path / "s.h5"
    umask = os.umask(0o022)
    try:
        write_run(out, "r", dmft.solve(math.inf, 0.25, t_max=1))
    finally:
        os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    out.chmod(0o640)
    write_run(out, "s", dmft.solve(math.inf, 0.25, t_max=1))
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # an update keeps the file's own mode


def test_sem_fields_round_trip_through_the_store(tmp_path):
    base = dmft.solve(math.inf, 0.25, t_max=1)
    T, N = base.overlap.shape
    curves = dataclasses.replace(base, train_loss_sem=np.full(T, 1e-3), test_loss_sem=np.linspace(0, 1e-2, T),
                                 overlap_sem=np.full((T, N), 2e-3), cov_sem=np.full((T, N, N), 3e-3))
    write_run(tmp_path / "s.h5", "r", curves)
    back = read_run(tmp_path / "s.h5", "r")
    for name in ("train_loss_sem", "test_loss_sem", "overlap_sem", "cov_sem"):
        np.testing.assert_array_equal(getattr(back, name), getattr(curves, name))
    write_run(tmp_path / "s.h5", "plain", base)
    assert read_run(tmp_path / "s.h5", "plain").test_loss_sem is None


def test_to_xarray_names_the_two_time_dimensions():
    pytest.importorskip("xarray")
    base = dmft.solve(math.inf, 0.25, t_max=1, center=True)
    T, N = base.overlap.shape
    curves = dataclasses.replace(base, extras={**base.extras, "C_w": np.zeros((T, T, N, N)),
                                               "R_w": np.zeros((T, T, N, N))})
    ds = to_xarray(curves)
    assert ds["C_w"].dims == ("t", "s", "i", "j") and ds["R_w"].dims == ("t", "s", "i", "j")
    assert ds["cov"].dims == ("t", "i", "j") and ds["cross_cov"].dims == ("t", "i", "j")
    np.testing.assert_array_equal(ds["s"].values, base.t)


# ---------------------------------------------------------------------------------------------
# exit codes
# ---------------------------------------------------------------------------------------------
def test_parameter_checks_raise_the_dedicated_type():
    for call in (lambda: check_positive("scale", -1), lambda: check_finite("epsilon", math.nan),
                 lambda: check_int_at_least("width", 0, 1), lambda: check_positive("scale", "abc"),
                 lambda: ModelParameters(alpha=3, epsilon=0.1, init_overlap=[2.0, 0.0])):
        with pytest.raises(InvalidParameterError):
            call()
    assert issubclass(InvalidParameterError, ValueError)


def test_a_value_error_inside_a_run_is_not_bad_input(monkeypatch):
    def singular(*args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    _replace_solve(monkeypatch, singular)
    result = _invoke(ONLINE + ["--no-plot"])
    assert result.exit_code != 2
    assert isinstance(result.exception, np.linalg.LinAlgError)


def test_dmft_error_exits_3_with_one_line(monkeypatch):
    from dmft.dmft_solver import DMFTError

    def blow_up(*args, **kwargs):
        raise DMFTError("non-finite iterate at iteration 4 (residual inf)", 4, math.inf)

    _replace_solve(monkeypatch, blow_up)
    result = _invoke(["solve", "--alpha", "3", "--epsilon", "0.1", "--no-plot", "--no-progress"])
    assert result.exit_code == 3, result.output
    _one_error_line(result, "non-finite iterate")


def test_non_converged_solve_exits_3_and_says_it_once(monkeypatch, tmp_path):
    message = "not converged: residual 0.31 > tol 0.0001 after 2 iterations"

    def unconverged(*args, **kwargs):
        curves = dmft.solve(math.inf, 0.25, t_max=2)
        return dataclasses.replace(curves, kind="dmft", converged=False, iterations=2, residual=0.31,
                                   message=message, parameters={**curves.parameters, "alpha": 3.0})

    _replace_solve(monkeypatch, unconverged)
    result = _invoke(["solve", "--alpha", "3", "--epsilon", "0.25", "--no-plot", "--no-progress",
                      "--out", str(tmp_path / "s.h5")])
    assert result.exit_code == 3
    assert result.output.count(message) == 1
    _one_error_line(result, "did not converge", "0.31")


def test_online_ode_failure_exits_3(monkeypatch):
    import dmft.online

    class Failed:
        success = False
        message = "Required step size is less than spacing between numbers."

    monkeypatch.setattr(dmft.online, "solve_ivp", lambda *a, **k: Failed())
    result = _invoke(ONLINE + ["--no-plot"])
    assert result.exit_code == 3
    _one_error_line(result, "online ODE", "step size")


def test_solver_options_are_refused_at_alpha_inf_and_checked_before_computing(no_computation):
    result = _invoke(ONLINE + ["--samples", "64", "--no-plot"])
    assert result.exit_code == 2 and "--samples" in result.output
    result = _invoke(["solve", "--alpha", "3", "--epsilon", "0.1", "--samples", "10", "--no-plot"])
    assert result.exit_code == 2 and "samples" in result.output and "multiple of 4" in result.output
    result = _invoke(["solve", "--alpha", "3", "--epsilon", "0.1", "--damping", "1.5", "--no-plot"])
    assert result.exit_code == 2 and "damping" in result.output


def test_solve_passes_the_new_solver_options_on(monkeypatch):
    seen = {}

    def capture(*args, **kwargs):
        seen.update(kwargs)
        curves = dmft.solve(math.inf, 0.25, t_max=1)
        return dataclasses.replace(curves, parameters={**curves.parameters, "alpha": 3.0}, kind="dmft")

    _replace_solve(monkeypatch, capture)
    monkeypatch.setattr("grokking_cli.main.check_solver_settings", lambda options: None)
    result = _invoke(["solve", "--alpha", "3", "--epsilon", "0.25", "--grid", "log", "--grid-points", "50",
                      "--symmetrize", "--error-replicas", "4", "--no-plot", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert seen["grid"] == "log" and seen["grid_points"] == 50
    assert seen["symmetrize"] is True and seen["error_replicas"] == 4


def test_newton_failures_are_reported(monkeypatch):
    def with_failures(*args, **kwargs):
        curves = dmft.solve(math.inf, 0.25, t_max=1)
        return dataclasses.replace(curves, settings={**curves.settings, "newton_failures": 7})

    _replace_solve(monkeypatch, with_failures)
    result = _invoke(ONLINE + ["--no-plot", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output.splitlines()[0])["newton_failures"] == 7
    assert "warning" in result.output and "7" in result.output


def test_a_missing_command_module_is_an_error():
    from grokking_cli.lazy import LazyGroup

    group = LazyGroup(name="g", lazy_commands={"ghost": ("grokking_cli.no_such_module", "ghost")})
    result = CliRunner().invoke(group, ["ghost"])
    assert result.exit_code != 0 and isinstance(result.exception, ModuleNotFoundError)


# ---------------------------------------------------------------------------------------------
# sweeps: names checked up front, convergence shown, exit 3
# ---------------------------------------------------------------------------------------------
def test_sweep_refuses_unknown_names_before_the_first_point(tmp_path, monkeypatch):
    import comparisons.sweeps

    monkeypatch.setattr(comparisons.sweeps, "make_executor",
                        lambda **k: pytest.fail("a point started before the names were checked"))
    result = _invoke(["sweep", "--kind", "theory", "-p", "epsilon=0.1", "--set", "alpha=3", "--set", "tmax=5",
                      "--out", str(tmp_path / "s.h5"), "--no-progress"])
    assert result.exit_code == 2 and "'tmax'" in result.output
    result = _invoke(["sweep", "--kind", "simulation", "-p", "epsilon=0.1", "--set", "samples=64",
                      "--out", str(tmp_path / "s.h5"), "--no-progress"])
    assert result.exit_code == 2 and "'samples'" in result.output


def test_sweep_accepts_hyphenated_names_and_stores_what_it_ran(tmp_path):
    out = tmp_path / "s.h5"
    result = _invoke(["sweep", "--kind", "theory", "-p", "epsilon=0.1", "--set", "alpha=inf", "--set", "t-max=5",
                      "--workers", "1", "--out", str(out), "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    (name,) = json.loads(result.output)["computed"]
    assert "t_max=5" in name and read_run(out, name).t[-1] == 5


def test_sweep_resume_recomputes_a_non_converged_point(tmp_path):
    import concurrent.futures as cf

    from comparisons.sweeps import sweep

    calls = []

    def runner(kind, params):
        calls.append(params)
        curves = dmft.solve(math.inf, params["epsilon"], t_max=1)
        return dataclasses.replace(curves, converged=len(calls) > 1, message="test")

    with cf.ThreadPoolExecutor(1) as pool:
        first = sweep({"epsilon": [0.1]}, "theory", tmp_path / "s.h5", pool, runner=runner, progress=False)
        assert first.unconverged == first.names
        second = sweep({"epsilon": [0.1]}, "theory", tmp_path / "s.h5", pool, runner=runner, progress=False)
    assert len(calls) == 2 and second.computed == first.names and not second.unconverged


def test_sweep_cli_exits_3_for_an_unconverged_theory_point(tmp_path, monkeypatch):
    import comparisons.sweeps
    from comparisons.sweeps import SweepResult

    def fake(grid, kind, out, executor, **kwargs):
        return SweepResult(out=str(out), names=("theory__a", "theory__b"), computed=("theory__a", "theory__b"),
                           skipped=(), converged={"theory__a": True, "theory__b": False})

    monkeypatch.setattr(comparisons.sweeps, "sweep", fake)
    args = ["sweep", "--kind", "theory", "-p", "epsilon=0.1", "--set", "alpha=3", "--out", str(tmp_path / "s.h5"),
            "--no-progress"]
    result = _invoke(args)
    assert result.exit_code == 3 and "NOT CONVERGED  theory__b" in result.output
    _one_error_line(result, "theory__b", "--allow-unconverged")
    assert _invoke(args + ["--allow-unconverged"]).exit_code == 0
    as_json = _invoke(args + ["--json"])
    assert json.loads(as_json.output.splitlines()[0])["unconverged"] == ["theory__b"]


def test_sweep_plot_says_where_it_wrote(tmp_path):
    plot = tmp_path / "sweep.png"
    result = _invoke(["sweep", "--kind", "theory", "-p", "epsilon=0.1,0.2", "--set", "alpha=inf", "--set", "t_max=2",
                      "--workers", "1", "--out", str(tmp_path / "s.h5"), "--no-progress", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert f"plot saved to {plot}" in result.output and plot.stat().st_size > 5000


def test_algorithmic_and_bayes_commands_check_outputs_first(tmp_path, monkeypatch):
    text = tmp_path / "notes.txt"
    text.write_text("x")
    def never(*args, seed=0, **kwargs):  # the signature keeps the seed default --seed shows
        pytest.fail("trained before checking --out")

    monkeypatch.setattr("empirical.neural.modular_mlp.train_modular_mlp", never, raising=False)
    result = _invoke(["train", "algorithmic", "mlp", "--modulus", "7", "--width", "8", "--steps", "3",
                      "--out", str(text)])
    assert result.exit_code == 1
    _one_error_line(result, "notes.txt")
    result = _invoke(["train", "bayes", "linear", "--epochs", "3", "--plot", str(tmp_path / "x.gif")])
    assert result.exit_code == 2 and "--plot" in result.output


def test_bayes_results_are_printed_when_the_record_cannot_be_stored(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("comparisons.store.write_record", broken)
    result = _invoke(["train", "bayes", "linear", "--epochs", "3", "--seed", "0", "--json",
                      "--out", str(tmp_path / "b.h5")])
    assert result.exit_code == 1
    assert json.loads(result.output.splitlines()[0])["system"] == "linear"
    _one_error_line(result, "could not store", "No space left")


def test_ntk_refuses_a_different_run_under_its_name_before_computing(tmp_path):
    out = tmp_path / "n.h5"
    base = ["ntk", "--epsilon", "0.25", "--dim", "6", "--n-train", "12", "--n-test", "10", "--points", "5",
            "--out", str(out), "--run-name", "k"]
    assert _invoke(base).exit_code == 0
    refused = _invoke(base[:2] + ["0.3"] + base[3:])
    assert refused.exit_code == 2 and "'k'" in refused.output and "--overwrite" in refused.output
    assert _invoke(base[:2] + ["0.3"] + base[3:] + ["--overwrite"]).exit_code == 0
    assert read_run(out, "k").parameters["epsilon"] == 0.3


# ---------------------------------------------------------------------------------------------
# provenance: every stored run and record names its parameters, seed(s), version and revision
# ---------------------------------------------------------------------------------------------
def _provenance_of_every_group(path):
    """{group name: attrs} of every complete run and record in ``path``, each checked to carry
    parameters, seed, package_version and git_revision."""
    import h5py

    found = {}
    with h5py.File(path, "r") as handle:
        for top in ("runs", "records"):
            for name, group in handle.get(top, {}).items():
                attrs = dict(group.attrs)
                assert attrs.get("complete"), name
                for key in ("parameters", "seed", "package_version", "git_revision"):
                    assert key in attrs, (name, key, sorted(attrs))
                assert attrs["package_version"] != "" and attrs["git_revision"] != ""
                found[f"{top}/{name}"] = attrs
    return found


def test_bayes_records_carry_their_parameters_and_seeds(tmp_path):
    out = tmp_path / "b.h5"
    result = _invoke(["train", "bayes", "linear", "--epochs", "3", "--seed", "2", "--seed", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = _invoke(["train", "bayes", "gp-classification", "--iterations", "2", "--seed", "42", "--x-dist",
                      "normal", "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = _provenance_of_every_group(out)
    linear = records["records/linear"]
    assert linear["seed"] == 2 and json.loads(linear["seeds"]) == [2, 5]
    assert json.loads(linear["parameters"])["epochs"] == 3
    gp = records["records/gp-classification"]
    assert gp["seed"] == 42 and json.loads(gp["seeds"]) == [42]
    parameters = json.loads(gp["parameters"])
    assert parameters["x_dist"] == "normal" and parameters["task"] == "one_zero" and parameters["iterations"] == 2


def _strict_json(text):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    lines = text.splitlines()
    assert len(lines) == 1, text[:2000]  # --json: the JSON and nothing else on stdout
    return json.loads(lines[0], parse_constant=refuse)


_CHEAP_STORING_COMMANDS = {
    "solve online": ONLINE + ["--no-plot"],
    "solve dmft": ["solve", "--alpha", "10", "--epsilon", "0.1", "--samples", "256", "--t-max", "2", "--no-plot",
                   "--no-progress"],
    "ntk": ["ntk", "--epsilon", "0.25", "--dim", "6", "--n-train", "12", "--n-test", "10", "--points", "5"],
    "train committee x2 seeds": ["train", "committee", "--alpha", "2", "--dim", "10", "--width", "2", "--epsilon",
                                 "0.1", "--steps", "20", "--seeds", "2", "--device", "cpu"],
    "train family": ["train", "family", "--alpha", "2", "--dim", "10", "--activation", "erf", "--t-max", "1",
                     "--lr", "0.5", "--device", "cpu"],
    "train algorithmic mlp": ["train", "algorithmic", "mlp", "--modulus", "7", "--width", "8", "--steps", "5"],
    "train bayes linear": ["train", "bayes", "linear", "--epochs", "3", "--seed", "1"],
}


@pytest.mark.parametrize("command", list(_CHEAP_STORING_COMMANDS))
def test_json_stdout_is_strict_and_stored_runs_carry_provenance_and_repeat_bit_for_bit(tmp_path, command):
    import h5py

    args = _CHEAP_STORING_COMMANDS[command]
    stores = []
    for attempt in ("first", "second"):
        out = tmp_path / f"{attempt}.h5"
        result = _invoke(args + ["--json", "--out", str(out)])
        assert result.exit_code == 0, result.output
        _strict_json(result.stdout)
        stores.append(out)
    groups = _provenance_of_every_group(stores[0])
    for name, attrs in groups.items():  # -1 only for the online ODE, which draws nothing at random
        assert int(attrs["seed"]) >= 0 or attrs.get("kind") == "online", name
    with h5py.File(stores[0], "r") as first, h5py.File(stores[1], "r") as second:
        datasets = []
        first.visititems(lambda name, item: datasets.append(name) if isinstance(item, h5py.Dataset) else None)
        assert datasets
        for name in datasets:
            a, b = first[name][()], second[name][()]
            assert a.dtype == b.dtype and a.shape == b.shape, name
            assert a.tobytes() == b.tobytes(), f"{command}: {name} differs between two runs with the same seed"


def test_json_says_whether_the_run_was_written(tmp_path, monkeypatch):
    out = tmp_path / "s.h5"
    args = ONLINE + ["--out", str(out), "--no-plot", "--json"]
    first = _invoke(args)
    assert first.exit_code == 0 and _strict_json(first.stdout)["stored"]["written"] is True
    again = _strict_json(_invoke(args).stdout)["stored"]
    assert again["resumed"] is True and again["written"] is False  # read back, nothing written

    def broken(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("comparisons.store.store_run", broken)
    failed = _invoke(args + ["--overwrite"])
    assert failed.exit_code == 1
    assert _strict_json(failed.stdout)["stored"]["written"] is False
    monkeypatch.undo()
    ntk = ["ntk", "--epsilon", "0.25", "--dim", "6", "--n-train", "12", "--n-test", "10", "--points", "5", "--json"]
    assert _strict_json(_invoke(ntk + ["--out", str(out)]).stdout)["stored"]["written"] is True
    assert _strict_json(_invoke(ntk).stdout)["stored"]["written"] is False
    mlp = ["train", "algorithmic", "mlp", "--modulus", "7", "--width", "8", "--steps", "3", "--json", "--out", str(out)]
    assert _strict_json(_invoke(mlp).stdout)["stored"]["written"] is True
    resumed = _strict_json(_invoke(mlp).stdout)["stored"]
    assert resumed["resumed"] is True and resumed["written"] is False


def test_list_tasks_with_json_prints_json():
    result = _invoke(["train", "committee", "--list-tasks", "--json"])
    assert result.exit_code == 0, result.output
    tasks = _strict_json(result.stdout)
    assert tasks and all(isinstance(description, str) for description in tasks.values())
