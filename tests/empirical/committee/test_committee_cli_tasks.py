"""Tests of ``dmft train committee`` (grokking_cli/committee.py) and of the named tasks
(empirical/committee/tasks.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from comparisons.store import list_runs, read_run
from grokking_cli.main import main
from empirical import make_committee_data, train_committee
from empirical.committee.tasks import (
    TASKS,
    eigenvector_labels_data,
    get_task,
    hermite,
    interpolation_data,
    ntk_gram_activation,
    run_task,
)

torch.set_num_threads(1)

SMALL = ["--alpha", "3", "--dim", "12", "--width", "3", "--epsilon", "0.25", "--steps", "40",
         "--record-points", "8", "--device", "cpu", "--no-progress"]


def _invoke(args):
    return CliRunner().invoke(main, ["train", "committee", *args], catch_exceptions=False)


def test_cli_json_equals_api():
    result = _invoke(SMALL + ["--center", "--seed", "4", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    api = train_committee(3.0, 12, 3, 1.0, 0.25, steps=40, record_points=8, center=True, seed=4, device="cpu")
    np.testing.assert_array_equal(summary["test_loss"], api.test_loss)
    np.testing.assert_array_equal(summary["train_loss"], api.train_loss)
    assert summary["parameters"]["center"] is True and summary["kind"] == "simulation"


def test_cli_out_and_plot(tmp_path):
    out, png = tmp_path / "runs.h5", tmp_path / "curves.png"
    result = _invoke(SMALL + ["--out", str(out), "--run-name", "small", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    stored = read_run(out, "small")
    api = train_committee(3.0, 12, 3, 1.0, 0.25, steps=40, record_points=8, device="cpu")
    np.testing.assert_array_equal(stored.test_loss, api.test_loss)
    np.testing.assert_array_equal(stored.extras["relative_movement"], api.extras["relative_movement"])
    assert png.stat().st_size > 1000


def test_interrupted_write_leaves_earlier_runs(tmp_path, monkeypatch):
    """A run killed while being written leaves the file's earlier runs readable and unchanged."""
    out = tmp_path / "runs.h5"
    assert _invoke(SMALL + ["--out", str(out), "--run-name", "first"]).exit_code == 0
    before = read_run(out, "first")
    import comparisons.store as store

    def crash(group, name, curves, attrs):
        group.require_group("runs").create_group(name)
        raise RuntimeError("simulated crash mid-write")

    monkeypatch.setattr(store, "_write_group", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _invoke(SMALL + ["--out", str(out), "--run-name", "second", "--seed", "1"])
    assert list_runs(out) == ["first"]
    np.testing.assert_array_equal(read_run(out, "first").test_loss, before.test_loss)


@pytest.mark.parametrize("args, message", [
    (["--scale", "-1"], "scale"),
    (["--optimizer", "momentum", "--momentum", "1.5"], "momentum"),
    (["--init-overlap", "0.1,0.2"], "init_overlap"),
    (["--t-max", "3"], "exactly one"),
    (["--seeds", "0"], "seeds"),
    (["--dtype", "float16"], "float16"),
])
def test_cli_bad_input_exits_2(args, message):
    result = _invoke(SMALL + args)
    assert result.exit_code == 2 and message in result.output


def test_cli_unknown_task_and_missing_options_exit_2():
    unknown = _invoke(["--task", "nonsense"])
    assert unknown.exit_code == 2 and "task" in unknown.output and "nonsense" in unknown.output
    missing = _invoke(["--alpha", "2", "--steps", "3"])
    assert missing.exit_code == 2 and "--dim" in missing.output


def test_cli_task_sweep(tmp_path):
    out = tmp_path / "sweep.h5"
    result = _invoke(["--task", "scale_sweep", "--reduced", "--steps", "5", "--record-points", "4",
                      "--device", "cpu", "--no-progress", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    labels = [r["label"] for r in summary["runs"]]
    assert labels == ["scale=0.25", "scale=1.0", "scale=4.0"]
    assert len(list_runs(out)) == 3
    name = summary["run_names"][2]
    assert name.startswith("scale_sweep_scale=4.0_")  # the label, then the digest of every setting
    assert read_run(out, name).parameters["scale"] == 4.0
    # the identical command again: the same names, nothing replaced silently, still three runs
    again = _invoke(["--task", "scale_sweep", "--reduced", "--steps", "5", "--record-points", "4",
                     "--device", "cpu", "--no-progress", "--out", str(out), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["run_names"] == summary["run_names"] and len(list_runs(out)) == 3
    # other settings (more steps) get their own names
    other = _invoke(["--task", "scale_sweep", "--reduced", "--steps", "6", "--record-points", "4",
                     "--device", "cpu", "--no-progress", "--out", str(out), "--json"])
    assert other.exit_code == 0, other.output
    assert len(list_runs(out)) == 6


# ------------------------------------------------------------------------------------------
# tasks
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_runs_reduced(name):
    """Each task's reduced version builds valid runs (a few steps each) with its settings."""
    task = get_task(name)
    runs = run_task(task, reduced=True, overrides={"steps": 3}, record_points=3, device="cpu")
    expected = len(task.reduced_sweep if task.reduced_sweep is not None else task.sweep) or 1
    assert len(runs) == expected
    for label, result in runs:
        assert result.settings["task"] == name and result.settings["steps"] == 3
        assert np.all(np.isfinite(result.test_loss)) and np.all(np.isfinite(result.train_loss))


def test_task_paper_settings():
    fig1 = get_task("fig1").runs()[0][1]
    assert (fig1["alpha"] * fig1["dim"], fig1["dim"], fig1["width"], fig1["epsilon"], fig1["steps"]) == \
        (550.0, 100, 500, 0.02, 100_000) and fig1["center"]
    kappas = [kw["scale"] for _, kw in get_task("scale_sweep").runs()]
    assert kappas == [2**-5, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert get_task("momentum").settings["momentum"] == 0.95
    joint = [(kw["init_scale"], kw["scale"]) for _, kw in get_task("weight_norm_joint").runs()]
    assert all(k == pytest.approx(1 / s**2) for s, k in joint)
    # an override replaces the run length of the layer below
    assert "t_max" not in get_task("fig1").runs(reduced=True, overrides={"steps": 7})[0][1]


def test_aligned_initialisation_is_a_zero_loss_fixed_point():
    """λ = 1 puts W(0) on a generalising fixed point (theory.md §4.3): test and train loss are 0
    (round-off) and stay 0; λ = 0 is the random init."""
    kw = dict(alpha=3.0, dim=40, width=2, scale=1.0, epsilon=0.25, seed=2)
    data = interpolation_data(interpolation=1.0, **kw)
    res = train_committee(**kw, steps=50, record_points=5, data=data, device="cpu")
    assert np.max(res.test_loss) < 1e-12 and np.max(res.train_loss) < 1e-12
    random = interpolation_data(interpolation=0.0, **kw)
    np.testing.assert_array_equal(random.init_weights, make_committee_data(3.0, 40, 2, seed=2).init_weights)


def test_hermite_polynomials():
    z = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(hermite(2, z), z**2 - 1, atol=1e-12)
    np.testing.assert_allclose(hermite(3, z), z**3 - 3 * z, atol=1e-12)
    np.testing.assert_allclose(hermite(4, z), z**4 - 6 * z**2 + 3, atol=1e-11)


@pytest.mark.parametrize("activation", ["poly", "cubic", "relu_quartic"])
def test_ntk_gram_matches_autograd_and_labels_are_eigenvectors(activation):
    """The NTK Gram equals Σ_W ∂f(x)/∂W ∂f(x')/∂W from autograd (1e-12), and the eigenvector
    labels plus a constant are an eigenvector of it (residual < 1e-10)."""
    from empirical.committee.machine import ACTIVATIONS

    rng = np.random.default_rng(1)
    N, D = 3, 6
    W = rng.standard_normal((N, D))
    X = rng.standard_normal((8, D)) / math.sqrt(D)
    phi = ACTIVATIONS[activation][0]
    Wt = torch.tensor(W, requires_grad=True)
    rows = []
    for x in torch.tensor(X):
        f = 1.3 / N * phi(Wt @ x, 0.4).sum()
        rows.append(torch.autograd.grad(f, Wt)[0].reshape(-1))
    J = torch.stack(rows).numpy()
    np.testing.assert_allclose(ntk_gram_activation(W, X, scale=1.3, epsilon=0.4, activation=activation),
                               J @ J.T, rtol=1e-12, atol=1e-14)

    kw = dict(alpha=1.0, dim=10, width=2, scale=1.0, epsilon=0.25, seed=0, activation=activation, n_test=10)
    data = eigenvector_labels_data(eigen_index=3, **kw)
    X_all = np.vstack([data.inputs, data.test_inputs])
    labels = np.concatenate([data.targets, data.test_targets])
    K = ntk_gram_activation(data.init_weights, X_all, scale=1.0, epsilon=0.25, activation=activation)
    values, vectors = np.linalg.eigh(K)
    v = vectors[:, np.argsort(values)[::-1][2]]
    sign = np.sign(v @ labels)
    assert np.ptp(sign * v - labels) < 1e-10          # labels = eigenvector − its mean
    assert abs(labels.sum()) < 1e-12
