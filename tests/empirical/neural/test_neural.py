"""Neural grokking systems: optimiser, gradients, centring, resume, spikes, storage, CLI, grokking."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from empirical.neural.tasks import make_task, split_equations
from empirical.metrics import first_crossing
from empirical.neural.modular_mlp import (
    ModularMLP, ModularMLPConfig, mlp_loss_gradients_numpy, one_hot_pairs, train_modular_mlp,
)
from empirical.neural.nanda import NandaConfig, _NandaRun, centred_logits
from comparisons.neural_plots import grokking_summary
from comparisons.store import read_history, write_history
from empirical.neural.history import TrainingHistory
from empirical.neural.training import DecoupledAdamW, geometric_schedule, warmup_lr
from empirical.neural.student_teacher import regression_accuracy
from empirical.neural.transformer import (
    FractionSweep, TransformerConfig, check_no_ungrokking, classify_phase, detect_spikes, jumps_preceded_by_spikes,
    sharp_jumps, train_transformer,
)

torch.set_num_threads(1)

TINY = dict(operator="+", modulus=7, train_pct=60, d_model=16, n_heads=2, n_layers=2)


# ---------------------------------------------------------------------------------------------
# Optimiser and schedules (seed_systems.md §B.4–B.5)


def test_decoupled_adamw_equals_torch_adamw():
    """"to_zero" decay is torch.optim.AdamW; float64, so agreement to 1e-12 relative."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(7, 5, generator=gen, dtype=torch.float64)
    ours, ref = a.clone().requires_grad_(), a.clone().requires_grad_()
    opt_ours = DecoupledAdamW([ours], lr=3e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.7)
    opt_ref = torch.optim.AdamW([ref], lr=3e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.7)
    for k in range(25):
        target = torch.randn(7, 5, generator=gen, dtype=torch.float64)
        for p, opt in ((ours, opt_ours), (ref, opt_ref)):
            opt.zero_grad()
            ((p - target) ** 3).abs().sum().backward()
            opt.step()
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_decay_to_init_shrinks_distance_to_init_geometrically():
    """With zero gradients Adam's update vanishes, so only p − p₀ ← (1 − lr·wd)(p − p₀) acts."""
    p = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = DecoupledAdamW([p], lr=0.1, weight_decay=0.5, decay_form="to_init")
    p.grad = torch.zeros_like(p)
    opt.step()  # records p₀ = 0
    with torch.no_grad():
        p.add_(1.0)
    for _ in range(3):
        p.grad = torch.zeros_like(p)
        opt.step()
    torch.testing.assert_close(p.detach(), torch.full((4,), (1 - 0.05) ** 3, dtype=torch.float64))


def test_warmup_and_geometric_schedule():
    assert [warmup_lr(k, 1e-3, 10) for k in (0, 1, 5, 10, 11, 1000)] == pytest.approx(
        [0.0, 1e-4, 5e-4, 1e-3, 1e-3, 1e-3])
    sched = geometric_schedule(300, 1.01)
    # next = max(floor(1.01 e), e + 1): every epoch up to 199, then 200 → 202 → 204 …
    assert list(sched[:5]) == [0, 1, 2, 3, 4] and 199 in sched and 200 in sched
    assert 201 not in sched and 202 in sched and sched[-1] == 300
    with pytest.raises(ValueError, match="ratio"):
        geometric_schedule(10, 1.0)


# ---------------------------------------------------------------------------------------------
# Modular MLP (theory.md §5 Fig. 2)


def test_modular_mlp_gradient_matches_hand_written_numpy():
    config = ModularMLPConfig(modulus=7, width=9, scale=1.7)
    split = split_equations(make_task("+", 7), 90)
    x, y = one_hot_pairs(split.train, 7)
    model = ModularMLP(config.input_dim, config.width, 7, config.scale, torch.Generator().manual_seed(3))
    out = model(torch.as_tensor(x))
    loss = torch.mean((out - torch.as_tensor(y)) ** 2) / config.scale ** 2
    loss.backward()
    ref_loss, g1, g2 = mlp_loss_gradients_numpy(model.w1.detach().numpy(), model.w2.detach().numpy(), x, y,
                                                config.scale)
    assert float(loss.detach()) == pytest.approx(ref_loss, rel=1e-12)  # float64 round-off only
    np.testing.assert_allclose(model.w1.grad.numpy(), g1, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(model.w2.grad.numpy(), g2, rtol=1e-10, atol=1e-14)


def test_modular_mlp_groks_with_growing_weight_norm():
    """theory.md §7.7: train accuracy perfect first, validation later, weight norm grows.

    p = 23, N = 100, s = 1, 90 % training data, seed 1 (the paper's), plain GD with
    lr_base = 1000 (10× the spec's 100; GD at these step sizes follows gradient flow, so this
    only rescales time by 10 — 20100 → 2009 steps to 99 % train accuracy in a recorded
    3·10⁴-step run at lr_base 100). Deterministic, so the thresholds are margins around the
    recorded run (T_train ≈ 2000, T_val ≈ 2700, norm 83 → 260), not statistical tolerances.
    """
    h = train_modular_mlp(ModularMLPConfig(lr_base=1000.0), steps=3000, log_every=25)
    t_train = first_crossing(h.train_accuracy, 0.99)
    t_val = first_crossing(h.val_accuracy, 0.99)
    assert not t_train.censored and not t_val.censored
    assert h.step[t_val.index] >= 1.2 * h.step[t_train.index]
    assert h.val_accuracy[t_train.index] < 0.5      # memorised, not yet generalised
    assert h.val_accuracy[-1] > 0.99
    assert h.param_norm[-1] > 2.0 * h.param_norm[0]
    summary = grokking_summary(h)
    assert summary["accuracy"]["0.99"]["t_val"] == h.step[t_val.index]


# ---------------------------------------------------------------------------------------------
# Nanda's one-layer transformer: centred cross-entropy


def test_centred_cross_entropy_is_log_p_at_init():
    config = NandaConfig(modulus=11, d_model=16, d_mlp=32, n_heads=2, scale=0.3)
    run = _NandaRun(config, seed=0, device=torch.device("cpu"))
    logits = centred_logits(run.model, run.initial, run.x_train, config.scale)
    assert torch.count_nonzero(logits) == 0
    metrics = run.evaluate()
    assert metrics["train_loss"] == pytest.approx(math.log(11), rel=1e-6)  # float32 log-sum-exp of zeros
    assert metrics["relative_change"] == 0.0
    for k in range(3):
        run.train_step(k)
    assert run.evaluate()["train_loss"] < math.log(11)


# ---------------------------------------------------------------------------------------------
# Resume ≡ uninterrupted


@pytest.mark.parametrize("system", ["transformer", "mlp"])
def test_resume_from_checkpoint_equals_uninterrupted(tmp_path, system):
    if system == "transformer":
        def train(**kw):
            return train_transformer(TransformerConfig(**TINY), seed=3, steps=23, **kw)
    else:
        def train(**kw):
            return train_modular_mlp(ModularMLPConfig(modulus=7, width=8), seed=2, steps=23, log_every=4, **kw)
    full = train()
    ckpt = tmp_path / "run.ckpt"
    first = train(checkpoint=ckpt, stop_after=9)  # an interruption mid-epoch
    assert first.settings.get("completed_steps", 9) == 9 and first.step[-1] <= 9
    resumed = train(checkpoint=ckpt, checkpoint_every=5)
    for name in ("step", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "param_norm"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(full, name), err_msg=name)
    np.testing.assert_array_equal(resumed.extras["step_loss"], full.extras["step_loss"])
    with pytest.raises(ValueError, match="total_steps"):
        train_modular_mlp(ModularMLPConfig(modulus=7, width=8), seed=2, steps=50, checkpoint=ckpt) if system == "mlp" \
            else train_transformer(TransformerConfig(**TINY), seed=3, steps=50, checkpoint=ckpt)


def test_transformer_seed_changes_init_but_not_split():
    a = train_transformer(TransformerConfig(**TINY), seed=0, steps=2)
    b = train_transformer(TransformerConfig(**TINY), seed=1, steps=2)
    assert a.settings["n_train"] == b.settings["n_train"] == round(49 * 0.6)
    assert a.train_loss[0] != b.train_loss[0]
    assert a.extras["learning_rate"][0] == 0.0 and a.extras["learning_rate"][1] == pytest.approx(1e-4)


# ---------------------------------------------------------------------------------------------
# §C.6 analysis on constructed series (known answers)


def test_spike_detector_finds_planted_spikes_only():
    steps = np.arange(1, 5001)
    loss = 1e-7 * np.ones(steps.size)
    loss[:100] = np.logspace(0, -7, 100)
    loss[2999] = 0.5            # ×5·10⁶ spike at step 3000
    loss[3000:3020] = np.logspace(-1, -7, 20)
    loss[3999] = 5e-5           # ×500: below the 10³ threshold
    spikes = detect_spikes(steps, loss)
    assert [s.step for s in spikes] == [3000]
    assert spikes[0].ratio == pytest.approx(5e6)
    assert detect_spikes(steps, loss, ratio=100)[-1].step == 4000
    assert detect_spikes(steps, np.logspace(0, -8, steps.size)) == []
    jumps = [3010, 4500]
    assert jumps_preceded_by_spikes(jumps, spikes) == [True, False]


def test_sharp_jumps_and_ungrokking_check():
    steps = np.arange(0, 1000, 10)
    acc = np.where(steps < 500, 0.05, 1.0)
    assert sharp_jumps(steps, acc) == [500]
    dip = acc.copy()
    dip[70] = 0.3               # one-point dip (a spike), not a plateau
    check = check_no_ungrokking(steps, dip)
    assert check.grokked and check.first_step == 500 and not check.ungrokked
    plateau = acc.copy()
    plateau[70:] = 0.6          # settles lower: un-grokking
    assert check_no_ungrokking(steps, plateau).ungrokked
    assert not check_no_ungrokking(steps, np.zeros(steps.size)).grokked


def test_phase_classification_and_monotonicity():
    assert classify_phase(math.inf, math.inf) == "confusion"
    assert classify_phase(100, math.inf) == "memorisation"
    assert classify_phase(100, 999) == "comprehension"
    assert classify_phase(100, 1000) == "grokking"
    pct = np.array([80.0, 50.0, 30.0])
    sweep = FractionSweep(pct, np.array([0]), np.array([[10.0], [10], [10]]), np.array([[50.0], [400], [math.inf]]),
                          np.array([["comprehension"], ["grokking"], ["memorisation"]]), ())
    assert sweep.monotone()
    bad = FractionSweep(pct, np.array([0]), sweep.t_train, np.array([[500.0], [40], [math.inf]]), sweep.phase, ())
    assert not bad.monotone()
    censored = FractionSweep(np.array([80.0, 65.0, 50.0]), np.array([0]), sweep.t_train,
                             np.array([[1360.0], [math.inf], [math.inf]]), sweep.phase, ())
    assert censored.monotone()  # runs that never generalise count as the largest time


def test_regression_accuracy_counts_points_below_threshold():
    pred = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.01, 0.0]])
    target = torch.zeros(3, 2)
    # per-point MSE: 0, 1, 5e-5
    assert regression_accuracy(pred, target, 1e-3) == pytest.approx(2 / 3)


# ---------------------------------------------------------------------------------------------
# Storage and CLI


def test_history_round_trips_through_the_store(tmp_path):
    h = train_transformer(TransformerConfig(**TINY), seed=0, steps=6)
    path = tmp_path / "runs.h5"
    write_history(path, "tiny", h)
    back = read_history(path, "tiny")
    assert back.system == "transformer"
    for name in ("step", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "param_norm"):
        np.testing.assert_array_equal(getattr(back, name), getattr(h, name))
    np.testing.assert_array_equal(back.extras["step_loss"], h.extras["step_loss"])
    curves = h.to_curves()
    np.testing.assert_allclose(curves.cov[:, 0, 0], h.param_norm ** 2)
    assert curves.kind == "neural:transformer" and np.all(np.isnan(curves.decomposition))
    with pytest.raises(ValueError, match="shape"):
        TrainingHistory("x", [0, 1], [1, 2], [1], [0, 0], [0, 0], [1, 1], {})


def test_cli_runs_stores_and_rejects_bad_input(tmp_path):
    from grokking_cli.main import main

    runner = CliRunner()
    out = tmp_path / "cli.h5"
    result = runner.invoke(main, ["train", "algorithmic", "transformer", "--modulus", "7", "--d-model", "16",
                                  "--heads", "2", "--steps", "5", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["system"] == "transformer" and len(payload["step"]) == len(payload["train_loss"])
    assert "spikes" in payload and "ungrokking" in payload
    result = runner.invoke(main, ["train", "algorithmic", "mlp", "--modulus", "7", "--width", "8", "--steps", "5",
                                  "--json", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    from comparisons.store import list_runs

    assert len(list_runs(out)) == 2
    for args, name in ((["transformer", "--train-pct", "150"], "train_pct"),
                       (["transformer", "--operator", "/", "--modulus", "8"], "modulus"),
                       (["mlp", "--scale", "-1"], "scale"), (["nanda", "--d-model", "10", "--heads", "4"], "d_model"),
                       (["student-teacher", "--init-scale", "0"], "init_scale"),
                       (["digits", "--mnist", str(tmp_path / "none.npz")], "mnist_path"),
                       (["sweep-fraction", "--train-pcts", "50,abc"], "--train-pcts")):
        result = runner.invoke(main, ["train", "algorithmic", *args, "--steps", "2"])
        assert result.exit_code == 2, (args, result.output)
        assert name in result.output and "Traceback" not in result.output, (args, result.output)


def test_digits_reads_a_local_mnist_file(tmp_path):
    from empirical.neural.digits import DigitsConfig, load_digit_data

    rng = np.random.default_rng(0)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=rng.integers(0, 256, (30, 28, 28)), y_train=rng.integers(0, 10, 30),
             x_test=rng.integers(0, 256, (12, 28, 28)), y_test=rng.integers(0, 10, 12))
    xtr, ytr, xte, yte, name = load_digit_data(DigitsConfig(n_train=20, n_test=10, mnist_path=str(path)))
    with np.load(path) as raw:
        np.testing.assert_allclose(xtr, raw["x_train"][:20].reshape(20, 784) / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(yte, raw["y_test"][:10])
    assert name == "mnist" and xte.shape == (10, 784)
    xtr, _, xte, _, name = load_digit_data(DigitsConfig())
    assert name == "sklearn-digits-8x8" and xtr.shape == (1000, 64) and xte.shape == (797, 64)
    assert xtr.max() == 1.0 and xtr.min() == 0.0  # pixels 0..16 scaled by 1/16


# ---------------------------------------------------------------------------------------------
# Transformer architecture (seed_systems.md §B.1)


def test_transformer_size_causality_and_attention():
    from torch.nn import functional as F

    from empirical.neural.transformer import PowerTransformer, _CausalSelfAttention

    model = PowerTransformer(239)
    linear = sum(m.weight.numel() for m in model.blocks.modules() if isinstance(m, torch.nn.Linear))
    assert linear == 2 * (4 * 128 ** 2 + 2 * 128 * 512)  # ≈ 4·10⁵ non-embedding weights, no biases
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Linear))
    tokens = torch.randint(0, 239, (3, 6), generator=torch.Generator().manual_seed(0))
    changed = tokens.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 239
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :5], b[:, :5])  # causal: earlier outputs ignore later tokens
    assert not torch.allclose(a[:, 5], b[:, 5])
    attention = _CausalSelfAttention(16, 4)
    x = torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        q, k, v = (lin(x).view(2, 6, 4, 4).transpose(1, 2) for lin in (attention.query, attention.key, attention.value))
        ref = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 6, 16)
        torch.testing.assert_close(attention(x), attention.out(ref), rtol=1e-5, atol=1e-6)
