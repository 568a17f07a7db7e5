"""PyTorch gradient descent of the committee family (empirical.committee.family) against the
NumPy reference dmft.simulate.simulate_committee_gd: same draws, so the curves must agree to the
round-off of two float64 implementations of the same arithmetic."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from dmft.committee_online import CommitteeModel
from dmft.parameters import InvalidParameterError
from dmft.simulate import simulate_committee_gd
from empirical.committee.family import train_committee_family


@pytest.mark.parametrize("student, teacher", [("erf", "erf"), ("relu", "erf"), ("tanh", "relu"), ("linear", "tanh")])
def test_torch_family_trainer_matches_the_numpy_reference(student, teacher):
    model = CommitteeModel(activation=student, width=2, target="committee", teacher_width=2, scale=2.0,
                           teacher_scale=1.5, teacher_activation=teacher, noise=0.01)
    t = np.linspace(0.0, 3.0, 7)
    ref = simulate_committee_gd(model, 3.0, 60, t, seed=4, time_step=0.05)
    got = train_committee_family(model, 3.0, 60, t, seed=4, time_step=0.05, device="cpu")
    # 60 steps of a 2×60 map: float64 round-off stays far below 1e-10
    for name in ("train_loss", "test_loss", "cov"):
        assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-10, atol=1e-12, err_msg=name)
    assert_allclose(got.extras["overlap_matrix"], ref.extras["overlap_matrix"], rtol=1e-10, atol=1e-12)


def test_square_target_and_quadratic_student():
    model = CommitteeModel(activation="quadratic", epsilon=0.3, width=2, init_overlap=[[0.2], [-0.2]])
    t = np.array([0.0, 1.0, 2.0])
    ref = simulate_committee_gd(model, 4.0, 50, t, seed=1, time_step=0.05)
    got = train_committee_family(model, 4.0, 50, t, seed=1, time_step=0.05, device="cpu")
    assert_allclose(got.train_loss, ref.train_loss, rtol=1e-10)
    assert_allclose(got.test_loss, ref.test_loss, rtol=1e-10)


def test_float32_tracks_float64_and_bad_input_is_refused():
    model = CommitteeModel(activation="erf", width=2, target="committee", teacher_width=2, scale=2.0, teacher_scale=2.0)
    t = np.array([0.0, 2.0])
    a = train_committee_family(model, 3.0, 60, t, seed=0, time_step=0.05, device="cpu")
    b = train_committee_family(model, 3.0, 60, t, seed=0, time_step=0.05, device="cpu", dtype="float32")
    assert_allclose(b.test_loss, a.test_loss, rtol=1e-4)             # single precision, 40 steps
    with pytest.raises(InvalidParameterError, match="dtype"):
        train_committee_family(model, 3.0, 60, t, dtype="float16")
    with pytest.raises(InvalidParameterError, match="device"):
        train_committee_family(model, 3.0, 60, t, device="tpu")
    with pytest.raises(InvalidParameterError, match="lr"):
        train_committee_family(CommitteeModel(activation="erf", target="committee", lr=0.5), 3.0, 60, t)


def test_cli_train_family_mirrors_the_python_api(tmp_path):
    import json

    from click.testing import CliRunner

    from grokking_cli.main import main

    args = ["train", "family", "--alpha", "3", "--dim", "60", "--scale", "2", "--activation", "erf", "--target",
            "committee", "--teacher-width", "2", "--teacher-scale", "2", "--t-max", "1", "--lr", "3", "--seed", "2",
            "--device", "cpu", "--json", "--no-progress", "--out", str(tmp_path / "f.h5")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    model = CommitteeModel(activation="erf", width=2, target="committee", teacher_width=2, scale=2.0, teacher_scale=2.0)
    api = train_committee_family(model, 3.0, 60, np.arange(0, 1.0001, 0.25), seed=2, time_step=3 / 60, device="cpu")
    assert_allclose(summary["final"]["test_loss"], api.test_loss[-1], rtol=1e-12)
    assert_allclose(summary["final"]["train_loss"], api.train_loss[-1], rtol=1e-12)
    again = CliRunner().invoke(main, args)                      # the identical run resumes from the store
    assert again.exit_code == 0 and json.loads(again.output)["stored"]["resumed"]
    bad = CliRunner().invoke(main, args[:-6] + ["--init-overlap", "1,2,3"])
    assert bad.exit_code == 2 and "init_overlap" in bad.output
