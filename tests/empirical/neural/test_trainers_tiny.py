"""The Nanda, student–teacher and digit trainers at tiny size: they train, log, store, repeat."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from comparisons.store import list_runs, read_history
from empirical.neural.digits import DigitsConfig, train_digits
from empirical.neural.nanda import NandaConfig, train_nanda
from empirical.neural.student_teacher import StudentTeacherConfig, train_student_teacher
from grokking_cli.main import main

TINY = {
    "nanda": (train_nanda, NandaConfig(modulus=7, d_model=8, d_mlp=16, n_heads=2, train_fraction=0.5, lr_base=1e-2)),
    "student_teacher": (train_student_teacher, StudentTeacherConfig(dim=3, hidden=8, n_train=20, n_test=20,
                                                                    lr=1e-2)),
    "digits": (train_digits, DigitsConfig(n_train=100, n_test=100, width=16, depth=2, init_scale=1.0, scale=1.0,
                                          lr=1e-2, batch_size=50)),
}


@pytest.mark.parametrize("system", sorted(TINY))
def test_trainer_learns_logs_and_is_reproducible(system):
    train, config = TINY[system]
    history = train(config, seed=3, steps=40)
    again = train(config, seed=3, steps=40)
    assert history.system == system
    T = history.step.size
    assert T >= 2 and history.step[0] == 0 and history.step[-1] <= 40 and np.all(np.diff(history.step) > 0)
    for field in ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "param_norm"):
        values = getattr(history, field)
        assert values.shape == (T,) and np.all(np.isfinite(values)), field
        np.testing.assert_array_equal(values, getattr(again, field))  # same seed, same run
    assert np.all((history.train_accuracy >= 0) & (history.train_accuracy <= 1))
    assert np.all((history.val_accuracy >= 0) & (history.val_accuracy <= 1))
    assert history.train_loss[-1] < history.train_loss[0]  # 40 steps of training lower the training loss
    assert np.all(history.param_norm > 0)
    other = train(config, seed=4, steps=5)
    assert other.train_loss[0] != history.train_loss[0] or other.param_norm[0] != history.param_norm[0]


@pytest.mark.parametrize("args", [
    ["nanda", "--modulus", "7", "--d-model", "8", "--d-mlp", "16", "--heads", "2"],
    ["student-teacher"],
    ["digits", "--n-train", "100", "--n-test", "100", "--width", "16", "--depth", "2", "--batch-size", "50"],
])
def test_trainer_cli_prints_and_stores(tmp_path, args):
    out = tmp_path / "runs.h5"
    result = CliRunner().invoke(main, ["train", "algorithmic", *args, "--steps", "6", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    (name,) = list_runs(out)
    stored = read_history(out, name)
    np.testing.assert_array_equal(stored.train_loss, payload["train_loss"])
    assert stored.system == payload["system"]
