"""One-layer transformer of Nanda et al. with an output scale (theory.md §5, Fig. 5b).

Model (no LayerNorm, ReLU MLP, context ``a b =`` of 3 tokens, vocabulary p + 1)::

    x₀ = W_E[token] + W_pos[position]                   (d_model)
    x₁ = x₀ + Σ_heads W_O softmax(causal(QKᵀ/√d_head)) V
    x₂ = x₁ + W_out ReLU(W_in x₁ + b_in) + b_out
    logits = W_U x₂ at the last position ("="),          p classes

All matrices are initialised N(0, 1/d_model) (biases zero). The output scale s enters through
the **centred** logits ``s·(f(x; θ) − f(x; θ₀))`` (θ₀ the frozen initial parameters), which are
identically zero at initialisation, so the initial cross-entropy is exactly log p. The
optimiser is :class:`DecoupledAdamW` with ``lr = lr_base/s²``, β = (0.9, 0.98), decoupled weight
decay and a 10-step linear warm-up, full batch.

Paper settings (theory.md §5): p = 113, train fraction 0.4, d_model 128, d_mlp 512, 4 heads × 32,
lr 6e-6/s² with wd 1 over 2·10⁵ epochs (PyTorch version), or the JAX version lr 1e-3/s², wd 2,
1.5·10⁴ epochs with s ∈ {0.15, 1}. The defaults here are the JAX version's optimiser at the
paper's architecture; the CPU evidence uses a smaller p and width (docs/results/neural_nanda.md).
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dmft.parameters import InvalidParameterError, check_int_at_least, check_positive
from empirical.neural.tasks import make_task, split_equations
from empirical.neural.history import TrainingHistory
from empirical.neural.training import (
    train_to_history,
    DecoupledAdamW, ModelOptimizerState, descend, parameter_norm, resolve_device, seeded_init, warmup_lr,
)

__all__ = ["NandaConfig", "OneLayerTransformer", "centred_logits", "train_nanda"]


@dataclass(frozen=True)
class NandaConfig:
    """Settings of theory.md §5 "1-layer Transformer (Fig. 5b, Nanda)".

    Attributes
    ----------
    modulus : int
        p (113 in the paper).
    operator : str
        Modular operator (``+``).
    train_fraction : float
        0.4.
    d_model, d_mlp, n_heads : int
        128, 512, 4.
    scale : float
        Output scale s of the centred logits.
    lr_base : float
        The learning rate is ``lr_base / s²``.
    weight_decay : float
        Decoupled weight decay (2.0 in the JAX version, 1.0 in the PyTorch one).
    warmup_steps : int
        10.
    """

    modulus: int = 113
    operator: str = "+"
    train_fraction: float = 0.4
    d_model: int = 128
    d_mlp: int = 512
    n_heads: int = 4
    scale: float = 1.0
    lr_base: float = 1e-3
    weight_decay: float = 2.0
    beta1: float = 0.9
    beta2: float = 0.98
    warmup_steps: int = 10

    def __post_init__(self) -> None:
        check_int_at_least("modulus", self.modulus, 2)
        for name in ("d_model", "d_mlp", "n_heads"):
            check_int_at_least(name, getattr(self, name), 1)
        if self.d_model % self.n_heads:
            raise InvalidParameterError(f"d_model must be divisible by n_heads, got {self.d_model}, {self.n_heads}")
        check_positive("scale", self.scale)
        check_positive("lr_base", self.lr_base)
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise InvalidParameterError(f"weight_decay must lie in [0, inf), got {self.weight_decay!r}")
        if not 0 < self.train_fraction < 1:
            raise InvalidParameterError(f"train_fraction must lie in (0, 1), got {self.train_fraction!r}")
        check_int_at_least("warmup_steps", self.warmup_steps, 0)
        if make_task(self.operator, self.modulus).modulus is None:
            raise InvalidParameterError(f"operator must be a modular operator, got {self.operator!r}")

    @property
    def lr(self) -> float:
        return self.lr_base / self.scale ** 2

    def as_attrs(self) -> dict:
        return asdict(self)


class OneLayerTransformer(nn.Module):
    """Nanda et al.'s one-layer, LayerNorm-free transformer; logits at the last position."""

    def __init__(self, p: int, d_model: int, d_mlp: int, n_heads: int, n_ctx: int = 3):
        super().__init__()
        std = 1.0 / math.sqrt(d_model)
        self.n_heads = n_heads
        self.embed = nn.Parameter(torch.randn(p + 1, d_model) * std)
        self.pos = nn.Parameter(torch.randn(n_ctx, d_model) * std)
        self.w_q = nn.Parameter(torch.randn(d_model, d_model) * std)
        self.w_k = nn.Parameter(torch.randn(d_model, d_model) * std)
        self.w_v = nn.Parameter(torch.randn(d_model, d_model) * std)
        self.w_o = nn.Parameter(torch.randn(d_model, d_model) * std)
        self.w_in = nn.Parameter(torch.randn(d_model, d_mlp) * std)
        self.b_in = nn.Parameter(torch.zeros(d_mlp))
        self.w_out = nn.Parameter(torch.randn(d_mlp, d_model) / math.sqrt(d_mlp))
        self.b_out = nn.Parameter(torch.zeros(d_model))
        self.unembed = nn.Parameter(torch.randn(d_model, p) * std)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n, t = tokens.shape
        d = self.embed.shape[1]
        h = self.n_heads
        x = self.embed[tokens] + self.pos[:t]

        def heads(z):
            return z.view(n, t, h, d // h).transpose(1, 2)

        q, k, v = heads(x @ self.w_q), heads(x @ self.w_k), heads(x @ self.w_v)
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // h)
        mask = torch.ones(t, t, dtype=torch.bool, device=tokens.device).triu(1)
        attn = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1) @ v
        x = x + attn.transpose(1, 2).reshape(n, t, d) @ self.w_o
        x = x + F.relu(x @ self.w_in + self.b_in) @ self.w_out + self.b_out
        return x[:, -1, :] @ self.unembed


def centred_logits(model: nn.Module, initial: nn.Module, tokens: torch.Tensor, scale: float) -> torch.Tensor:
    """``s·(f(x; θ) − f(x; θ₀))`` (theory.md §5: centred cross-entropy, logits − logits_init)."""
    with torch.no_grad():
        reference = initial(tokens)
    return scale * (model(tokens) - reference)


class _NandaRun(ModelOptimizerState):
    def __init__(self, config: NandaConfig, seed: int, device: torch.device):
        self.config = config
        p = config.modulus
        split = split_equations(make_task(config.operator, p), 100.0 * config.train_fraction)

        def tokens(eqs):
            eqs = np.asarray(eqs)
            return torch.as_tensor(np.stack([eqs[:, 0], eqs[:, 1], np.full(len(eqs), p)], axis=1), device=device)

        self.x_train, self.y_train = tokens(split.train), torch.as_tensor(split.train[:, 2], device=device)
        self.x_val, self.y_val = tokens(split.val), torch.as_tensor(split.val[:, 2], device=device)
        with seeded_init(seed):
            self.model = OneLayerTransformer(p, config.d_model, config.d_mlp, config.n_heads).to(device)
        self.initial = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = DecoupledAdamW(self.model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2),
                                        weight_decay=config.weight_decay)
        self.n_train, self.n_val = len(split.train), len(split.val)

    def train_step(self, update: int) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = warmup_lr(update, self.config.lr, self.config.warmup_steps)
        loss = F.cross_entropy(centred_logits(self.model, self.initial, self.x_train, self.config.scale), self.y_train)
        return descend(self.optimizer, loss)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        out = {}
        for name, x, y in (("train", self.x_train, self.y_train), ("val", self.x_val, self.y_val)):
            logits = centred_logits(self.model, self.initial, x, self.config.scale)
            out[f"{name}_loss"] = float(F.cross_entropy(logits, y))
            out[f"{name}_accuracy"] = float((logits.argmax(1) == y).float().mean())
        out["param_norm"] = parameter_norm(self.model.parameters())
        out["relative_change"] = parameter_norm(
            a - b for a, b in zip(self.model.parameters(), self.initial.parameters())) / parameter_norm(
            self.initial.parameters())
        return out


def train_nanda(config: NandaConfig = NandaConfig(), *, seed: int = 0, device: str = "cpu", steps: int = 15_000,
                log_every: int | None = None, checkpoint=None, checkpoint_every: int | None = None,
                stop_after: int | None = None, progress: bool = False) -> TrainingHistory:
    """Full-batch training of the one-layer transformer on the centred cross-entropy.

    Returns a :class:`TrainingHistory` (``system="nanda"``); extras: ``step_loss`` and
    ``relative_change`` ‖θ − θ₀‖/‖θ₀‖ (the laziness measure of theory.md §5).
    """
    steps = check_int_at_least("steps", steps, 1)
    seed = check_int_at_least("seed", seed, 0)
    dev = resolve_device(device)
    run = _NandaRun(config, seed, dev)
    return train_to_history(
        run, system="nanda", parameters=config.as_attrs(), seed=seed, device=dev, steps=steps,
        log_every=log_every, log_points=300, update_name="full-batch AdamW steps",
        description=f"nanda s={config.scale:g}",
        settings={"n_train": run.n_train, "n_val": run.n_val, "lr": config.lr},
        extra_keys=("step_loss", "relative_change"),
        checkpoint=checkpoint, checkpoint_every=checkpoint_every, stop_after=stop_after, progress=progress)
