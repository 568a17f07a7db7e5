"""``dmft train algorithmic …``: foreign input files, the sweep's options, diverged runs, run identity.

Every refusal is one line naming the option or parameter, with the documented exit code (2 invalid
input, 1 input/output, 3 a diverged run) and never a traceback.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from comparisons.store import list_runs, read_history
from empirical.neural.modular_mlp import ModularMLPConfig, train_modular_mlp
from grokking_cli.main import main

torch.set_num_threads(1)

#: Tiny runs of each subcommand that takes --checkpoint (a few steps take well under a second).
TINY = {
    "mlp": ["mlp", "--modulus", "5", "--width", "8", "--lr-base", "1"],
    "transformer": ["transformer", "--modulus", "5", "--d-model", "8", "--heads", "2", "--layers", "1"],
    "nanda": ["nanda", "--modulus", "5", "--d-model", "8", "--d-mlp", "8", "--heads", "2"],
    "student-teacher": ["student-teacher"],
    "digits": ["digits", "--n-train", "50", "--n-test", "50", "--width", "8", "--depth", "1", "--batch-size", "25"],
}
#: The modular MLP at a width where plain GD blows up within a few steps (NaN by step 5).
DIVERGING = ["mlp", "--modulus", "5", "--width", "4"]


def _run(*args):
    return CliRunner().invoke(main, ["train", "algorithmic", *args, "--no-progress"])


def _refused(result, code, *names):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    for name in names:
        assert name in result.output, (name, result.output)


# --- bug 1: a --checkpoint that is not this run's checkpoint


@pytest.mark.parametrize("system", sorted(TINY))
def test_checkpoint_that_is_not_a_checkpoint_is_refused(tmp_path, system):
    script = tmp_path / "t.sh"
    script.write_text("#!/bin/sh\necho hello\n")
    result = _run(*TINY[system], "--steps", "3", "--checkpoint", str(script))
    _refused(result, 2, "checkpoint", "t.sh", "not a checkpoint")
    assert script.read_text() == "#!/bin/sh\necho hello\n"  # left as it was


def test_checkpoint_of_another_run_or_without_a_state_is_refused(tmp_path):
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    _refused(_run(*TINY["mlp"], "--steps", "3", "--checkpoint", str(tensor)), 2, "checkpoint", "not a checkpoint")
    ckpt = tmp_path / "run.ckpt"
    assert _run(*TINY["mlp"], "--steps", "3", "--checkpoint", str(ckpt)).exit_code == 0
    other = ["mlp", "--modulus", "5", "--width", "16", "--lr-base", "1"]  # same step budget, another run
    _refused(_run(*other, "--steps", "3", "--checkpoint", str(ckpt)), 2, "checkpoint", "another run")
    _refused(_run(*TINY["mlp"], "--steps", "3", "--seed", "7", "--checkpoint", str(ckpt)), 2, "another run")
    with pytest.raises(ValueError, match="another run"):
        train_modular_mlp(ModularMLPConfig(modulus=5, width=8, lr_base=1, scale=2.0), seed=1, steps=3,
                          checkpoint=ckpt)
    assert _run(*TINY["mlp"], "--steps", "3", "--checkpoint", str(ckpt)).exit_code == 0  # its own run resumes


# --- bug 2: a --mnist file that is not an .npz archive


def test_digits_refuses_an_mnist_file_that_is_not_an_npz(tmp_path):
    import h5py

    script = tmp_path / "t.sh"
    script.write_text("echo hi\n")
    store = tmp_path / "data.h5"
    h5py.File(store, "w").close()
    single = tmp_path / "one.npy"
    np.save(single, np.zeros((3, 784)))
    labels = tmp_path / "labels.npz"
    np.savez(labels, x_train=np.zeros((4, 784)), y_train=np.array([0, 1, 2, 12]), x_test=np.zeros((2, 784)),
             y_test=np.zeros(2))
    for path in (script, store, single, labels):
        result = _run(*TINY["digits"], "--steps", "2", "--mnist", str(path))
        _refused(result, 2, "mnist_path", path.name)


# --- bug 3: sweep-fraction checks its outputs and lists before training


def test_sweep_fraction_checks_outputs_and_lists_before_training(tmp_path):
    sweep = ["sweep-fraction", "--modulus", "5", "--d-model", "8", "--heads", "2", "--layers", "1",
             "--train-pcts", "50", "--steps", "2"]
    result = _run(*sweep, "--plot", str(tmp_path / "x.txt"))
    _refused(result, 2, "--plot", ".png")
    assert "train-fraction sweep" not in result.output  # refused before training
    text = tmp_path / "notes.txt"
    text.write_text("not a store\n")
    _refused(_run(*sweep, "--out", str(text)), 1, "notes.txt")
    base = sweep[:-4]
    for option, value in (("--train-pcts", ","), ("--train-pcts", ""), ("--seeds", ","), ("--seeds", "1.5"),
                          ("--seeds", "-1")):
        _refused(_run(*base, option, value, "--steps", "2"), 2, option)
    _refused(_run(*base, "--train-pcts", "50,150", "--steps", "2"), 2, "--train-pcts")


# --- bug 4: a diverged run exits 3 and is not stored


def test_diverged_run_exits_3_and_is_not_stored(tmp_path):
    result = _run(*DIVERGING, "--steps", "20")
    _refused(result, 3, "diverged", "step 5")
    assert "train acc" in result.stdout  # the results are still shown
    out = tmp_path / "runs.h5"
    result = _run(*DIVERGING, "--steps", "20", "--json", "--out", str(out))
    _refused(result, 3, "diverged")
    payload = json.loads(result.stdout)
    assert payload["diverged_at"] == 5 and payload["final"]["step"] == 5  # training stopped there
    assert not out.exists() or list_runs(out) == []
    assert _run(*TINY["mlp"], "--steps", "5").exit_code == 0  # a finite run is not flagged


# --- bug 5: run names carry an identity digest; no silent replacement


def test_run_identity_names_resume_and_conflicts(tmp_path):
    out = tmp_path / "mlp.h5"
    narrow = ["mlp", "--modulus", "5", "--width", "8", "--lr-base", "1", "--steps", "10", "--out", str(out)]
    wide = ["mlp", "--modulus", "5", "--width", "16", "--lr-base", "1", "--steps", "10", "--out", str(out)]
    assert _run(*narrow).exit_code == 0
    assert _run(*wide).exit_code == 0
    names = list_runs(out)
    assert len(names) == 2  # the second run did not replace the first
    assert sorted(read_history(out, n).parameters["width"] for n in names) == [8, 16]
    again = _run(*narrow, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["stored"]["resumed"] is True and len(list_runs(out)) == 2
    named = _run(*narrow, "--run-name", "mine")
    assert named.exit_code == 0, named.output
    conflict = _run(*wide, "--run-name", "mine")
    _refused(conflict, 2, "mine", "--overwrite")
    assert read_history(out, "mine").parameters["width"] == 8
    replaced = _run(*wide, "--run-name", "mine", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert read_history(out, "mine").parameters["width"] == 16


# --- bug 6: --checkpoint-every < 1


@pytest.mark.parametrize("value", ["0", "-2"])
@pytest.mark.parametrize("system", sorted(TINY))
def test_checkpoint_every_below_one_is_refused(tmp_path, system, value):
    result = _run(*TINY[system], "--steps", "3", "--checkpoint", str(tmp_path / "c.ckpt"), "--checkpoint-every", value)
    _refused(result, 2, "--checkpoint-every")
    assert not (tmp_path / "c.ckpt").exists()
    with pytest.raises(ValueError, match="checkpoint_every"):
        train_modular_mlp(ModularMLPConfig(modulus=5, width=8), steps=3, checkpoint_every=int(value))
