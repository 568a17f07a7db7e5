"""``dmft phase``: the --json schema, the plot, resume and the exit codes (0, 1, 2, 3)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from grokking_cli.main import main

KEYS = {"scale", "epsilon", "alpha", "t_train", "t_test", "amount", "amount_sem", "censored", "unresolved", "converged"}
#: Online (alpha = inf) points: milliseconds each.
ONLINE = ["--alpha", "inf", "--scale", "1,2", "--epsilon", "0.1,0.25", "--center", "--init-overlap", "0.5,-0.5",
          "--t-max", "60", "--workers", "0", "--no-progress"]


def run(args):
    return CliRunner().invoke(main, ["phase", *args])


def test_json_schema_plot_and_resume(tmp_path):
    out, plot = tmp_path / "phase.h5", tmp_path / "phase.png"
    result = run([*ONLINE, "--out", str(out), "--plot", str(plot), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    points = payload["points"]
    assert len(points) == 4 and all(set(p) == KEYS for p in points)
    assert [(p["scale"], p["epsilon"]) for p in points] == [(1.0, 0.1), (1.0, 0.25), (2.0, 0.1), (2.0, 0.25)]
    assert all(p["alpha"] == "inf" for p in points)
    # online limit: train = test, so no grokking (theory.md §4.4); the escape takes longer at larger κ
    assert all(p["amount"] == 0.0 and p["converged"] and not p["censored"] for p in points)
    assert points[2]["t_test"] > points[0]["t_test"] and points[0]["t_test"] > points[1]["t_test"]
    assert plot.stat().st_size > 0 and payload["computed"] == 4
    again = json.loads(run([*ONLINE, "--out", str(out), "--json"]).output)
    assert again["computed"] == 0 and again["reused"] == 4 and again["points"] == points


def test_censored_points_are_null_and_unconverged_exit_3(tmp_path):
    args = ["--alpha", "10,20", "--scale", "1", "--epsilon", "0.1,0.25", "--t-max", "2", "--dt", "0.5",
            "--samples", "256", "--max-iter", "1", "--workers", "0", "--no-progress", "--out",
            str(tmp_path / "p.h5"), "--json"]
    result = run(args)
    assert result.exit_code == 3, result.output
    points = json.loads(result.stdout)["points"]
    assert all(p["converged"] is False for p in points)
    assert all(p["censored"] and p["amount"] is None and p["t_test"] is None for p in points)
    assert run([*args, "--allow-unconverged"]).exit_code == 0


@pytest.mark.parametrize("args, name", [
    (["--alpha", "inf", "--scale", "1,2", "--epsilon", "0.1"], "exactly two"),
    (["--alpha", "inf,10", "--scale", "1,2", "--epsilon", "0.1,0.2"], "exactly two"),
    (["--alpha", "inf", "--scale", "1,-2", "--epsilon", "0.1,0.2"], "scale"),
    (["--alpha", "inf", "--scale", "1,2", "--epsilon", "0.1,0.2", "--width", "0"], "width"),
    (["--alpha", "inf", "--scale", "1,2", "--epsilon", "0.1,0.2", "--threshold", "1.5"], "threshold"),
    (["--alpha", "inf", "--scale", "1,2", "--epsilon", "0.1,0.2", "--t-max", "-1"], "t_max"),
    (["--alpha", "inf", "--scale", "1,2", "--epsilon", "0.1,x"], "--epsilon"),
    (["--alpha", "inf", "--scale", "1,2", "--epsilon", "0.1,0.2", "--plot", "p.txt"], "plot"),
    (["--alpha", "10", "--scale", "1,2", "--epsilon", "0.1,0.2", "--samples", "7"], "samples"),
])
def test_invalid_input_exits_2_naming_the_parameter(tmp_path, args, name):
    result = run([*args, "--out", str(tmp_path / "p.h5"), "--workers", "0"])
    assert result.exit_code == 2, result.output
    assert name in result.output and "Traceback" not in result.output
    assert not (tmp_path / "p.h5").exists()


def test_io_errors_exit_1_before_computing(tmp_path):
    bad = tmp_path / "not_a_store.h5"
    bad.write_text("not hdf5")
    result = run([*ONLINE, "--out", str(bad)])
    assert result.exit_code == 1 and "not_a_store.h5" in result.output
    (tmp_path / "a_file").write_text("")
    result = run([*ONLINE, "--out", str(tmp_path / "a_file" / "p.h5")])
    assert result.exit_code == 1 and "a_file" in result.output
    result = run([*ONLINE, "--out", str(tmp_path / "p.h5"), "--plot", str(tmp_path / "a_file" / "p.png")])
    assert result.exit_code == 1 and "--plot" in result.output
    assert not (tmp_path / "p.h5").exists()


def test_malformed_scheduler_exits_2_naming_the_option(tmp_path):
    pytest.importorskip("distributed")
    local = ONLINE.index("--workers")                 # --workers sizes the local pool: not with --scheduler
    online = ONLINE[:local] + ONLINE[local + 2:]
    result = run([*online, "--out", str(tmp_path / "p.h5"), "--scheduler", "foo://127.0.0.1:1"])
    assert result.exit_code == 2 and "scheduler" in result.output and "malformed" in result.output, result.output
    assert not (tmp_path / "p.h5").exists()
