"""The GPU paths: every trainer gives on CUDA the numbers it gives on the CPU.

Skipped where torch sees no CUDA device (CI runs there); run on a GPU machine with
``python -m pytest tests/test_cuda.py``. Each trainer draws its data and initialisation on the
CPU (NumPy or a CPU ``torch.Generator``), so a run on CUDA starts from the same numbers and may
differ from the CPU run only by the order of floating-point reductions:

* float64 runs: a relative difference of order 1e-16 per operation, carried through at most a few
  hundred steps of a contracting flow, stays far below the tolerance rtol = 1e-9;
* float32 runs (the transformer, and ``dtype="float32"``): unit roundoff 6e-8; sums over D ≤ 256
  terms and ≤ 512 steps keep the difference below 1e-4 relative, the tolerance used (the CPU
  float32 run of the committee machine is within it of float64: checked with "cpu" in place of
  "cuda").
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from numpy.testing import assert_allclose

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _committee(device, dtype="float64"):
    from empirical.committee.machine import train_committee

    return train_committee(alpha=3.0, dim=256, width=2, scale=2.0, epsilon=0.25, t_max=4.0, lr=2.0,
                           init_overlap=(0.2, -0.2), center=True, record_points=30, seed=5, device=device,
                           dtype=dtype)


def test_committee_machine_cuda_equals_cpu():
    cpu, gpu = _committee("cpu"), _committee("cuda")
    assert gpu.settings["device"].startswith("cuda")
    assert_allclose(gpu.t, cpu.t, rtol=0, atol=0)
    for name in ("train_loss", "test_loss", "overlap", "cov"):
        assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-9, atol=1e-12, err_msg=name)
    # the run moved: the comparison is not between two copies of the initial state
    assert gpu.train_loss[-1] < 0.8 * gpu.train_loss[0]


def test_committee_machine_cuda_float32_close_to_float64():
    cpu, gpu = _committee("cpu"), _committee("cuda", dtype="float32")
    for name in ("train_loss", "test_loss"):
        assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-4, atol=1e-7, err_msg=name)


def test_committee_family_cuda_equals_cpu():
    from dmft.committee_online import CommitteeModel
    from empirical.committee.family import train_committee_family

    model = CommitteeModel(activation="erf", width=2, scale=2.0, target="committee", teacher_width=2,
                           teacher_scale=2.0, init_overlap=np.array([[0.2, 0.05], [0.1, -0.1]]))
    t = np.linspace(0.0, 6.0, 13)
    cpu = train_committee_family(model, 3.0, 256, t, seed=2, time_step=0.05, device="cpu")
    gpu = train_committee_family(model, 3.0, 256, t, seed=2, time_step=0.05, device="cuda")
    for name in ("train_loss", "test_loss", "cov"):
        assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-9, atol=1e-12, err_msg=name)
    assert gpu.train_loss[-1] < 0.9 * gpu.train_loss[0]


def test_modular_mlp_cuda_equals_cpu():
    from empirical.neural.modular_mlp import ModularMLPConfig, train_modular_mlp

    config = ModularMLPConfig(modulus=7, width=8)
    cpu = train_modular_mlp(config, seed=2, steps=40, log_every=4, device="cpu")
    gpu = train_modular_mlp(config, seed=2, steps=40, log_every=4, device="cuda")
    for name in ("train_loss", "val_loss", "param_norm"):
        assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-9, atol=1e-12, err_msg=name)


def test_transformer_cuda_close_to_cpu():
    from empirical.neural.transformer import TransformerConfig, train_transformer

    config = TransformerConfig(operator="+", modulus=7, train_pct=60, d_model=16, n_heads=2, n_layers=2)
    cpu = train_transformer(config, seed=3, steps=23, device="cpu")
    gpu = train_transformer(config, seed=3, steps=23, device="cuda")
    assert_allclose(gpu.step, cpu.step, rtol=0, atol=0)
    for name in ("train_loss", "val_loss", "param_norm"):
        assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-4, atol=1e-6, err_msg=name)


def test_cli_train_committee_device_cuda():
    from grokking_cli.main import main

    args = ["train", "committee", "--alpha", "3", "--dim", "128", "--width", "2", "--epsilon", "0.25", "--t-max", "2",
            "--seed", "1", "--json"]
    outputs = {}
    for device in ("cpu", "cuda"):
        result = CliRunner().invoke(main, [*args, "--device", device])
        assert result.exit_code == 0, result.output
        outputs[device] = json.loads(result.output)
    for key in ("train_loss", "test_loss"):
        assert_allclose(outputs["cuda"][key], outputs["cpu"][key], rtol=1e-9, err_msg=key)
