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


@pytest.mark.parametrize("student, teacher, center", [
    ("erf", "erf", False), ("relu", "erf", False), ("tanh", "relu", False), ("linear", "tanh", False),
    ("smoothed_relu:0.2", "relu", False), ("erf", "erf", True), ("tanh", "relu", True)])
def test_torch_family_trainer_matches_the_numpy_reference(student, teacher, center):
    model = CommitteeModel(activation=student, width=2, target="committee", teacher_width=2, scale=2.0,
                           teacher_scale=1.5, teacher_activation=teacher, noise=0.01, center=center)
    t = np.linspace(0.0, 3.0, 7)
    ref = simulate_committee_gd(model, 3.0, 60, t, seed=4, time_step=0.05)
    got = train_committee_family(model, 3.0, 60, t, seed=4, time_step=0.05, device="cpu")
    # 60 steps of a 2×60 map: float64 round-off stays far below 1e-10
    for name in ("train_loss", "test_loss", "cov"):
        assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-10, atol=1e-12, err_msg=name)
    assert_allclose(got.extras["overlap_matrix"], ref.extras["overlap_matrix"], rtol=1e-10, atol=1e-12)
    if center:
        assert_allclose(got.extras["cross"], ref.extras["cross"], rtol=1e-10, atol=1e-12)


def test_centred_run_starts_from_a_zero_predictor():
    # f(·; W) − f(·; W(0)) (theory.md §10.10) is zero at t = 0: train loss = mean y² of the sample,
    # test loss = E[y²] + σ² exactly, cross overlaps X(0) = Q(0); and centring changes the dynamics.
    from dmft.committee_online import committee_loss
    from dmft.simulate import committee_gd_data

    kw = dict(activation="tanh", width=2, target="committee", teacher_width=2, teacher_scale=1.5,
              teacher_activation="relu", noise=0.01)
    model = CommitteeModel(scale=2.0, center=True, **kw)
    t = np.linspace(0.0, 3.0, 7)
    got = simulate_committee_gd(model, 3.0, 60, t, seed=4, time_step=0.05)
    _, _, _, y = committee_gd_data(model, 3.0, 60, seed=4)
    assert_allclose(got.train_loss[0], np.mean(y**2), rtol=1e-12)
    zero_student = CommitteeModel(scale=1e-12, **kw)
    assert_allclose(got.test_loss[0], committee_loss(model.init_cov, model.init_overlap, zero_student), rtol=1e-9)
    assert_allclose(got.extras["cross"][0], got.cov[0], rtol=1e-12, atol=1e-15)
    plain = simulate_committee_gd(CommitteeModel(scale=2.0, **kw), 3.0, 60, t, seed=4, time_step=0.05)
    assert np.abs(plain.test_loss - got.test_loss).max() > 1e-2


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
    # refused before any step, naming the parameter (exit 2, no traceback): the step must not skip
    # records (lr/D <= dt), P = round(alpha*D) >= 1, D >= N + M, seed >= 0, epsilon only where used
    base = args[:-6]
    for extra, name in ((["--lr", "100"], "--lr"), (["--alpha", "0.001"], "alpha * dim"), (["--dim", "3", "--lr", "0.1"], "N + M"),
                        (["--seed", "-1"], "--seed"), (["--epsilon", "0.3"], "epsilon")):
        refused = CliRunner().invoke(main, base + extra)
        assert refused.exit_code == 2 and name in refused.output and "Traceback" not in refused.output, (extra, refused.output)
    quadratic = ["train", "family", "--alpha", "3", "--dim", "20", "--t-max", "1", "--device", "cpu", "--no-progress"]
    for extra, name in (([], "Missing option '--epsilon'"), (["--epsilon", "nan"], "finite")):
        refused = CliRunner().invoke(main, quadratic + extra)
        assert refused.exit_code == 2 and name in refused.output, (extra, refused.output)


def test_train_committee_hands_the_family_to_the_family_trainer():
    """empirical.train_committee with an erf student and a committee teacher (and output noise) is
    the family trainer at the recorded steps: the same draws and arithmetic, so equal to 0.0; the
    paper-model options it does not take are refused by name."""
    from empirical.committee.machine import train_committee

    got = train_committee(3.0, 60, 2, 2.0, 0.0, t_max=2.0, lr=3.0, activation="erf", target="committee",
                          teacher_width=2, teacher_scale=2.0, noise=0.05, init_overlap=[0.1, 0.0, 0.0, -0.1],
                          record_points=12, seed=3, device="cpu")
    model = CommitteeModel(activation="erf", width=2, target="committee", teacher_width=2, scale=2.0,
                           teacher_scale=2.0, noise=0.05, init_overlap=[[0.1, 0.0], [0.0, -0.1]])
    ref = train_committee_family(model, 3.0, 60, got.t, seed=3, time_step=3.0 / 60, device="cpu")
    assert_allclose(got.t, ref.t, rtol=0, atol=1e-15)
    for name in ("train_loss", "test_loss", "cov"):
        assert_allclose(getattr(got, name), getattr(ref, name), rtol=0, atol=0, err_msg=name)
    assert got.parameters["activation"] == "erf" and got.parameters["dim"] == 60
    assert got.settings["steps"] == 40 and got.settings["trainer"] == "family"
    # the theory's quadratic student is "poly" in this trainer; its "quadratic" is (eps/2)h^2
    poly = train_committee(3.0, 60, 2, 1.0, 0.2, t_max=1.0, lr=3.0, noise=0.1, init_overlap=[0.2, -0.2],
                           record_points=5, seed=0, device="cpu")
    quad = CommitteeModel(activation="quadratic", epsilon=0.2, width=2, noise=0.1, init_overlap=[[0.2], [-0.2]])
    assert_allclose(poly.test_loss, train_committee_family(quad, 3.0, 60, poly.t, seed=0, time_step=0.05,
                                                           device="cpu").test_loss, rtol=0, atol=0)
    # the centred predictor is handed over too (theory.md §10.10)
    centred = train_committee(3.0, 60, 2, 2.0, 0.0, t_max=1.0, lr=3.0, activation="erf", target="committee",
                              teacher_width=2, teacher_scale=2.0, center=True, record_points=5, seed=3, device="cpu")
    ref = train_committee_family(CommitteeModel(activation="erf", width=2, target="committee", teacher_width=2,
                                                scale=2.0, teacher_scale=2.0, center=True),
                                 3.0, 60, centred.t, seed=3, time_step=3.0 / 60, device="cpu")
    assert_allclose(centred.test_loss, ref.test_loss, rtol=0, atol=0)
    assert centred.parameters["center"] is True
    for option, word in ((dict(optimizer="adam"), "optimizer"), (dict(init_scale=2.0), "init_scale"),
                         (dict(readouts=True), "readouts"), (dict(activation="cubic"), "activation"),
                         (dict(init_overlap=[0.1, 0.2, 0.3]), "init_overlap")):
        kwargs = dict(t_max=1.0, target="committee", teacher_width=2, **option)
        with pytest.raises(InvalidParameterError, match=word):
            train_committee(3.0, 60, 2, 1.0, 0.0, **kwargs)


def test_cli_train_committee_takes_the_family_options(tmp_path):
    """`dmft train committee --activation erf --target committee ...` runs the family (equal to the
    Python API), also centred, and a paper-model option it cannot honour exits with code 2, naming it."""
    import json

    from click.testing import CliRunner

    from empirical.committee.machine import train_committee
    from grokking_cli.main import main

    args = ["train", "committee", "--alpha", "3", "--dim", "60", "--width", "2", "--scale", "2", "--epsilon", "0",
            "--activation", "erf", "--target", "committee", "--teacher-width", "2", "--teacher-scale", "2",
            "--noise", "0.05", "--t-max", "1", "--lr", "3", "--seed", "2", "--record-points", "6", "--device", "cpu",
            "--json", "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    api = train_committee(3.0, 60, 2, 2.0, 0.0, t_max=1.0, lr=3.0, activation="erf", target="committee",
                          teacher_width=2, teacher_scale=2.0, noise=0.05, seed=2, record_points=6, device="cpu")
    assert_allclose(summary["final"]["test_loss"], api.test_loss[-1], rtol=1e-12)
    assert summary["parameters"]["teacher_activation"] == "erf" and summary["parameters"]["noise"] == 0.05
    bad = CliRunner().invoke(main, args + ["--init-scale", "2"])
    assert bad.exit_code == 2 and "init_scale" in bad.output
    centred = json.loads(CliRunner().invoke(main, args + ["--center"]).output)
    assert centred["parameters"]["center"] is True
    assert_allclose(centred["final"]["test_loss"], train_committee(
        3.0, 60, 2, 2.0, 0.0, t_max=1.0, lr=3.0, activation="erf", target="committee", teacher_width=2,
        teacher_scale=2.0, noise=0.05, seed=2, record_points=6, device="cpu", center=True).test_loss[-1], rtol=1e-12)


@pytest.mark.parametrize("student, center", [("erf", False), ("erf", True), ("tanh", True)])
def test_family_step_is_the_documented_update_and_its_test_loss_the_monte_carlo_value(student, center):
    """Written here from theory.md §0/§10.1 alone, not from dmft.simulate: f = (κ/N) Σ φ(w_i·x)
    (centred: minus f at W(0)), L = mean (f − y)², W ← W − η ∇L with η = η₀N/κ², t = η₀·step/D.
    The trainer's Q, R, X and train loss equal that run's (1e-12: float64 round-off of 40 steps),
    and its population test loss, from (Q, R, T[, X]), is the mean squared error of those weights
    on 2·10⁵ fresh x ~ N(0, I/D) within 4 standard errors (the per-point spread)."""
    from scipy.special import erf

    from dmft.simulate import committee_gd_data  # the draws only

    act = {"erf": (lambda h: erf(h / np.sqrt(2)), lambda h: np.sqrt(2 / np.pi) * np.exp(-h * h / 2)),
           "tanh": (np.tanh, lambda h: 1 - np.tanh(h) ** 2)}
    phi, dphi = act[student]
    kappa, kstar, noise, D, alpha, eta0, steps = 1.5, 2.0, 0.01, 50, 3.0, 1.0, 40
    model = CommitteeModel(activation=student, width=2, target="committee", teacher_width=2, scale=kappa,
                           teacher_scale=kstar, teacher_activation="erf", noise=noise, center=center,
                           init_overlap=[[0.3, 0.1], [-0.1, 0.2]])
    B, W0, X, y = committee_gd_data(model, alpha, D, seed=2)
    got = train_committee_family(model, alpha, D, [0.0, eta0 / D, steps * eta0 / D], seed=2,
                                 time_step=eta0 / D, device="cpu")
    N, P = 2, X.shape[0]
    f0 = kappa / N * phi(X @ W0.T).sum(1) if center else 0.0
    W, records = W0.copy(), {}
    for k in range(steps + 1):
        H = X @ W.T
        r = kappa / N * phi(H).sum(1) - f0 - y
        records[k] = (W.copy(), np.mean(r * r))
        W = W - eta0 * N / kappa**2 * (2 / P) * (kappa / N) * (r[:, None] * dphi(H)).T @ X
    for j, k in enumerate((0, 1, steps)):
        Wk, loss = records[k]
        assert_allclose(got.cov[j], Wk @ Wk.T / D, rtol=1e-12, atol=1e-14)
        assert_allclose(got.extras["overlap_matrix"][j], Wk @ B.T / D, rtol=1e-12, atol=1e-14)
        assert_allclose(got.train_loss[j], loss, rtol=1e-12)
        if center:
            assert_allclose(got.extras["cross"][j], Wk @ W0.T / D, rtol=1e-12, atol=1e-14)
    x = np.random.default_rng(11).standard_normal((200_000, D)) / np.sqrt(D)
    for j, k in ((0, 0), (2, steps)):
        f = kappa / N * phi(x @ records[k][0].T).sum(1) - (kappa / N * phi(x @ W0.T).sum(1) if center else 0.0)
        sq = (f - kstar / 2 * erf(x @ B.T / np.sqrt(2)).sum(1)) ** 2
        assert abs(got.test_loss[j] - noise - sq.mean()) < 4 * sq.std(ddof=1) / np.sqrt(sq.size), (k, got.test_loss[j])
    assert got.test_loss[-1] < 0.8 * got.test_loss[0]  # the run moved
