"""Power et al.'s decoder-only transformer on algorithmic tables (seed_systems.md §B.1–B.6, §C.6).

* :class:`PowerTransformer` — 2 layers, d_model 128, 4 heads, FFN 512 with ReLU, post-LN blocks
  ``a = LN(x + MHA(x))``, ``out = LN(a + FFN(a))``, no biases in Q/K/V/O, FFN or head, fixed
  sinusoidal positions added to a learned token embedding, causal mask (§B.1).
* :func:`train_transformer` — :class:`DecoupledAdamW` (β = (0.9, 0.98), eps 1e-8, decoupled
  "to_zero" decay), 10-step linear warm-up to ``max_lr`` = 1e-3 (§B.4); batches of
  ``min(512, ⌈N_train/2⌉)`` reshuffled every epoch; loss and accuracy on the two positions after
  ``=`` (§B.2); validation logged on Power's epoch schedule next = max(⌊1.02e⌋, e+1) (§B.5).
* §C.6 analysis: :func:`detect_spikes` (training-loss "slingshot" spikes: a local maximum more
  than ``ratio`` = 10³ above the minimum of the preceding 1 % window of steps),
  :func:`check_no_ungrokking`, :func:`sharp_jumps` / :func:`jumps_preceded_by_spikes`,
  :func:`sweep_train_fraction` and :func:`classify_phase` for the train-fraction picture (§B.6.2).

Defaults are Power et al.'s main setting (wd = 1, 50 % training data, 10⁵ updates); the thesis
regime is ``weight_decay=0.01`` with up to 2·10⁶ updates (§B.4, Decision D.16).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dmft.parameters import InvalidParameterError, check_int_at_least, check_positive
from empirical.neural.tasks import (
    AlgorithmicTask, Vocabulary, encode_equations, load_cayley_table, make_task, split_equations,
)
from empirical.metrics import first_crossing
from empirical.neural.history import TrainingHistory
from empirical.neural.training import (
    DecoupledAdamW, descend, geometric_schedule, parameter_norm, resolve_device, run_training, seeded_init,
    warmup_lr,
)

__all__ = [
    "TransformerConfig",
    "PowerTransformer",
    "sinusoidal_positions",
    "train_transformer",
    "rhs_loss_and_accuracy",
    "Spike",
    "detect_spikes",
    "UngrokkingCheck",
    "check_no_ungrokking",
    "sharp_jumps",
    "jumps_preceded_by_spikes",
    "step_at_accuracy",
    "classify_phase",
    "FractionSweep",
    "sweep_train_fraction",
]

#: Index of the first right-hand-side prediction in the 6-token model input
#: ``<eos> a op b = c`` (the output at "=" predicts c, the output at c predicts <eos>).
_RHS_START = 4


@dataclass(frozen=True)
class TransformerConfig:
    """Task, architecture and optimiser of Power et al.'s experiment (seed_systems.md §B).

    Attributes
    ----------
    operator : str
        A §B.3 operator (canonical name or Power's string), or the group name when
        ``cayley_table`` is given.
    modulus : int
        Prime p of the modular operators (97 in the paper; smaller for CPU runs).
    train_pct : float
        Training percentage in (0, 100) of the fixed split (§B.2).
    cayley_table : str or None
        CSV file of a group's multiplication table (replaces the operator's table).
    n_layers, d_model, n_heads, d_ff, max_context : int
        Architecture (§B.1); ``d_ff = 0`` means 4·d_model.
    max_lr, weight_decay, beta1, beta2, eps : float
        Optimiser (§B.4).
    warmup_steps : int
        Linear warm-up length (10).
    batch_size : int
        0 means Power's default ``min(512, ⌈N_train/2⌉)``.
    log_ratio : float
        Epoch logging schedule ratio (1.02 for the validation metrics, §B.5).
    decay_form : str
        ``"to_zero"`` (Power default) or ``"to_init"``.
    """

    operator: str = "+"
    modulus: int = 97
    train_pct: float = 50.0
    cayley_table: str | None = None
    n_layers: int = 2
    d_model: int = 128
    n_heads: int = 4
    d_ff: int = 0
    max_context: int = 50
    max_lr: float = 1e-3
    weight_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-8
    warmup_steps: int = 10
    batch_size: int = 0
    log_ratio: float = 1.02
    decay_form: str = "to_zero"

    def __post_init__(self) -> None:
        check_int_at_least("n_layers", self.n_layers, 1)
        check_int_at_least("d_model", self.d_model, 1)
        check_int_at_least("n_heads", self.n_heads, 1)
        if self.d_model % self.n_heads:
            raise InvalidParameterError(f"d_model must be divisible by n_heads, got d_model={self.d_model}, n_heads={self.n_heads}")
        check_int_at_least("d_ff", self.d_ff, 0)
        check_int_at_least("max_context", self.max_context, 6)
        check_positive("max_lr", self.max_lr)
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise InvalidParameterError(f"weight_decay must lie in [0, inf), got {self.weight_decay!r}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise InvalidParameterError(f"{name} must lie in [0, 1), got {getattr(self, name)!r}")
        check_positive("eps", self.eps)
        check_int_at_least("warmup_steps", self.warmup_steps, 0)
        check_int_at_least("batch_size", self.batch_size, 0)
        if not self.log_ratio > 1:
            raise InvalidParameterError(f"log_ratio must be > 1, got {self.log_ratio!r}")
        if self.decay_form not in ("to_zero", "to_init"):
            raise InvalidParameterError(f"decay_form must be 'to_zero' or 'to_init', got {self.decay_form!r}")
        if not 0 < self.train_pct < 100:
            raise InvalidParameterError(f"train_pct must lie in (0, 100), got {self.train_pct!r}")
        self.task()  # validates operator and modulus

    @property
    def ffn_width(self) -> int:
        return self.d_ff or 4 * self.d_model

    def task(self) -> AlgorithmicTask:
        if self.cayley_table:
            return load_cayley_table(self.cayley_table, name=self.operator)
        return make_task(self.operator, self.modulus)

    def as_attrs(self) -> dict:
        return asdict(self)


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """Fixed encoding PE[t, 2i] = sin(t/10000^{2i/d}), PE[t, 2i+1] = cos(·), shape (length, d)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq[: d_model // 2])
    return pe


class _CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.query = nn.Linear(d_model, d_model, bias=False)
        self.key = nn.Linear(d_model, d_model, bias=False)
        self.value = nn.Linear(d_model, d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        h = self.n_heads

        def heads(z):
            return z.view(n, t, h, d // h).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // h)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
        attended = torch.softmax(scores, dim=-1) @ v
        return self.out(attended.transpose(1, 2).reshape(n, t, d))


class _PostLNBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        self.attention = _CausalSelfAttention(d_model, n_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff, bias=False), nn.ReLU(), nn.Linear(d_ff, d_model, bias=False))
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.norm1(x + self.attention(x))
        return self.norm2(a + self.ffn(a))


class PowerTransformer(nn.Module):
    """Decoder-only transformer of seed_systems.md §B.1 (dropout 0, no weight noise)."""

    def __init__(self, vocab_size: int, *, n_layers: int = 2, d_model: int = 128, n_heads: int = 4,
                 d_ff: int = 512, max_context: int = 50):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.register_buffer("positions", sinusoidal_positions(max_context, d_model), persistent=False)
        self.blocks = nn.ModuleList(_PostLNBlock(d_model, n_heads, d_ff) for _ in range(n_layers))
        self.head = nn.Linear(d_model, vocab_size, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits, shape (batch, length, vocab), for token ids of shape (batch, length)."""
        x = self.embedding(tokens) + self.positions[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def rhs_loss_and_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy over the positions after "=" and the fraction of fully correct examples.

    ``logits`` (n, 6, V) and ``targets`` (n, 6) are the model output and ``tokens[:, 1:]``;
    only positions 4 and 5 (predicting c and the final ``<eos>``) count (§B.2).
    """
    rhs_logits = logits[:, _RHS_START:, :]
    rhs_targets = targets[:, _RHS_START:]
    loss = F.cross_entropy(rhs_logits.reshape(-1, rhs_logits.shape[-1]), rhs_targets.reshape(-1))
    correct = (rhs_logits.argmax(-1) == rhs_targets).all(dim=1)
    return loss, correct.float().mean()


class _TransformerRun:
    """Model, optimiser, data and RNG of one run (the :class:`Trainable` of run_training)."""

    def __init__(self, config: TransformerConfig, seed: int, device: torch.device):
        self.config = config
        self.device = device
        task = config.task()
        split = split_equations(task, config.train_pct)
        vocab = Vocabulary.for_task(task)
        self.train_tokens = torch.as_tensor(encode_equations(task, split.train, vocab), device=device)
        self.val_tokens = torch.as_tensor(encode_equations(task, split.val, vocab), device=device)
        n_train = self.train_tokens.shape[0]
        self.batch_size = config.batch_size or min(512, math.ceil(n_train / 2))
        self.batch_size = min(self.batch_size, n_train)
        self.batches_per_epoch = math.ceil(n_train / self.batch_size)
        with seeded_init(seed):
            self.model = PowerTransformer(len(vocab), n_layers=config.n_layers, d_model=config.d_model,
                                          n_heads=config.n_heads, d_ff=config.ffn_width,
                                          max_context=config.max_context).to(device)
        self.optimizer = DecoupledAdamW(self.model.parameters(), lr=config.max_lr,
                                        betas=(config.beta1, config.beta2), eps=config.eps,
                                        weight_decay=config.weight_decay, decay_form=config.decay_form)
        self.generator = torch.Generator().manual_seed(int(seed) + 1)
        self.permutation = torch.arange(n_train)
        self.n_train, self.n_val = n_train, self.val_tokens.shape[0]
        self.vocab_size = len(vocab)

    def train_step(self, update: int) -> float:
        b = update % self.batches_per_epoch
        if b == 0:
            self.permutation = torch.randperm(self.n_train, generator=self.generator)
        idx = self.permutation[b * self.batch_size:(b + 1) * self.batch_size].to(self.device)
        batch = self.train_tokens[idx]
        lr = warmup_lr(update, self.config.max_lr, self.config.warmup_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        logits = self.model(batch[:, :-1])
        loss, _ = rhs_loss_and_accuracy(logits, batch[:, 1:])
        return descend(self.optimizer, loss)

    @torch.no_grad()
    def _measure(self, tokens: torch.Tensor) -> tuple[float, float]:
        self.model.eval()
        loss_sum, correct = 0.0, 0.0
        for start in range(0, tokens.shape[0], 4096):
            chunk = tokens[start:start + 4096]
            loss, acc = rhs_loss_and_accuracy(self.model(chunk[:, :-1]), chunk[:, 1:])
            loss_sum += float(loss) * chunk.shape[0]
            correct += float(acc) * chunk.shape[0]
        return loss_sum / tokens.shape[0], correct / tokens.shape[0]

    def evaluate(self) -> dict[str, float]:
        train_loss, train_acc = self._measure(self.train_tokens)
        val_loss, val_acc = self._measure(self.val_tokens)
        return {"train_loss": train_loss, "val_loss": val_loss, "train_accuracy": train_acc,
                "val_accuracy": val_acc, "param_norm": parameter_norm(self.model.parameters())}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "permutation": self.permutation.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.permutation = state["permutation"].clone()


def train_transformer(config: TransformerConfig = TransformerConfig(), *, seed: int = 0, device: str = "cpu",
                      steps: int = 100_000, checkpoint=None, checkpoint_every: int | None = None,
                      stop_after: int | None = None, stop_when_generalised: bool = False,
                      progress: bool = False) -> TrainingHistory:
    """Train Power et al.'s transformer on ``config``'s task (seed_systems.md §B).

    Parameters
    ----------
    config : TransformerConfig
    seed : int
        Seeds the initialisation (through a private RNG) and the epoch shuffles; the data split is
        fixed (RandomState(0)) whatever the seed.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    steps : int
        Optimiser updates.
    checkpoint, checkpoint_every, stop_after
        See :func:`empirical.neural.training.run_training`; a run resumed from its checkpoint
        gives the same numbers as an uninterrupted one.
    stop_when_generalised : bool
        Stop at the first logged point with validation accuracy ≥ 0.99 (sweeps).

    Returns
    -------
    TrainingHistory
        ``system="transformer"``; extras ``step_loss`` (mini-batch loss of every update,
        1..S) and ``learning_rate`` of every update.
    """
    steps = check_int_at_least("steps", steps, 1)
    seed = check_int_at_least("seed", seed, 0)
    dev = resolve_device(device)
    run = _TransformerRun(config, seed, dev)
    total_epochs = math.ceil(steps / run.batches_per_epoch)
    log_steps = np.minimum(geometric_schedule(total_epochs, config.log_ratio) * run.batches_per_epoch, steps)
    log_steps = np.union1d(log_steps, [steps])

    def stop_rule(_step, metrics):
        return stop_when_generalised and metrics["val_accuracy"] > 0.99

    log, completed, seconds = run_training(run, total_steps=steps, log_steps=log_steps, checkpoint=checkpoint,
                                           checkpoint_every=checkpoint_every, stop_after=stop_after,
                                           progress=progress, description=f"transformer {config.operator}",
                                           on_log=stop_rule,
                                           signature={"system": "transformer", "parameters": config.as_attrs(),
                                                      "seed": seed, "stop_when_generalised": stop_when_generalised})
    arrays = log.arrays()
    lr = np.array([warmup_lr(u, config.max_lr, config.warmup_steps) for u in range(completed)])
    settings = {"seed": seed, "device": str(dev), "steps": steps, "completed_steps": completed,
                "batch_size": run.batch_size, "batches_per_epoch": run.batches_per_epoch,
                "n_train": run.n_train, "n_val": run.n_val, "vocab_size": run.vocab_size,
                "checkpoint": str(checkpoint) if checkpoint else None}
    return TrainingHistory(
        system="transformer", step=arrays["step"], train_loss=arrays["train_loss"], val_loss=arrays["val_loss"],
        train_accuracy=arrays["train_accuracy"], val_accuracy=arrays["val_accuracy"],
        param_norm=arrays["param_norm"], parameters=config.as_attrs(), settings=settings, seconds=seconds,
        message=f"{completed} of {steps} updates", extras={"step_loss": arrays["step_loss"], "learning_rate": lr},
    )


# --------------------------------------------------------------------------------------------
# §C.6 analysis


@dataclass(frozen=True)
class Spike:
    """A training-loss spike (seed_systems.md §C.6).

    Attributes
    ----------
    step : int
        Step of the local maximum.
    value : float
        Loss at the maximum.
    baseline : float
        Minimum of the loss over the preceding window.
    ratio : float
        ``value / baseline``.
    """

    step: int
    value: float
    baseline: float
    ratio: float


def detect_spikes(steps, loss, *, ratio: float = 1e3, window_fraction: float = 0.01,
                  min_window: int = 1) -> list[Spike]:
    """Training-loss spikes: local maxima more than ``ratio`` above the preceding-window minimum.

    The window preceding the point at step s holds the points with steps in
    [s·(1 − window_fraction), s), and at least the ``min_window`` points before it (§C.6:
    "local max / preceding 1 %-window min > 10³"). Of consecutive detections within one window
    only the highest is kept.

    Parameters
    ----------
    steps : array_like, shape (T,)
        Increasing steps of the loss record.
    loss : array_like, shape (T,)
        Positive losses.
    """
    steps = np.asarray(steps, dtype=float)
    loss = np.asarray(loss, dtype=float)
    if steps.shape != loss.shape or steps.ndim != 1:
        raise ValueError(f"steps and loss must be one-dimensional of equal length, got {steps.shape}, {loss.shape}")
    check_positive("ratio", ratio)
    if not 0 < window_fraction < 1:
        raise InvalidParameterError(f"window_fraction must lie in (0, 1), got {window_fraction!r}")
    floor = np.finfo(float).tiny
    spikes: list[Spike] = []
    T = loss.size
    for i in range(1, T):
        if not np.isfinite(loss[i]):
            continue
        if loss[i] < loss[i - 1] or (i + 1 < T and loss[i] < loss[i + 1]):
            continue
        lo = np.searchsorted(steps, steps[i] * (1 - window_fraction), side="left")
        lo = min(lo, i - min_window)
        lo = max(lo, 0)
        base = np.nanmin(loss[lo:i])
        r = loss[i] / max(base, floor)
        if r > ratio:
            spike = Spike(int(steps[i]), float(loss[i]), float(base), float(r))
            if spikes and steps[i] - spikes[-1].step <= window_fraction * steps[i]:
                if spike.value > spikes[-1].value:
                    spikes[-1] = spike
                continue
            spikes.append(spike)
    return spikes


@dataclass(frozen=True)
class UngrokkingCheck:
    """Result of :func:`check_no_ungrokking`.

    Attributes
    ----------
    grokked : bool
        Whether validation accuracy ever exceeded ``threshold``.
    first_step : int or None
        First logged step above the threshold.
    worst_plateau : float
        Lowest rolling median of the validation accuracy after ``first_step`` (NaN if not grokked).
    ungrokked : bool
        True if that plateau fell below ``threshold − tolerance``.
    """

    grokked: bool
    first_step: int | None
    worst_plateau: float
    ungrokked: bool


def check_no_ungrokking(steps, val_accuracy, *, threshold: float = 0.99, tolerance: float = 0.05,
                        plateau_points: int = 5) -> UngrokkingCheck:
    """"No un-grokking" (seed_systems.md §B.6.4): after validation accuracy first exceeds
    ``threshold`` it never settles on a worse plateau.

    A plateau is the rolling median over ``plateau_points`` consecutive logged points, so the
    brief dips that accompany training-loss spikes do not count; the check fails when such a
    median drops below ``threshold − tolerance``.
    """
    steps = np.asarray(steps)
    acc = np.asarray(val_accuracy, dtype=float)
    crossing = first_crossing(acc, threshold, above=True)
    if crossing.censored:
        return UngrokkingCheck(False, None, float("nan"), False)
    after = acc[crossing.index:]
    k = max(1, min(int(plateau_points), after.size))
    medians = np.array([np.median(after[i:i + k]) for i in range(after.size - k + 1)])
    worst = float(medians.min())
    return UngrokkingCheck(True, int(steps[crossing.index]), worst, worst < threshold - tolerance)


def sharp_jumps(steps, val_accuracy, *, rise: float = 0.3, window_fraction: float = 0.05) -> list[int]:
    """Steps at which validation accuracy rises by more than ``rise`` within a short window.

    A jump is reported at the first logged point whose accuracy exceeds the minimum over the
    preceding ``window_fraction``·step steps by ``rise``; later points of the same rise are
    merged into it.
    """
    steps = np.asarray(steps, dtype=float)
    acc = np.asarray(val_accuracy, dtype=float)
    jumps: list[int] = []
    for i in range(1, acc.size):
        lo = max(0, min(np.searchsorted(steps, steps[i] * (1 - window_fraction)), i - 1))
        if acc[i] - np.nanmin(acc[lo:i]) > rise:
            if jumps and steps[i] - jumps[-1] <= window_fraction * steps[i]:
                continue
            jumps.append(int(steps[i]))
    return jumps


def jumps_preceded_by_spikes(jumps: Sequence[int], spikes: Sequence[Spike], *, window_fraction: float = 0.1) -> list[bool]:
    """For each jump step s, whether a spike lies in [s·(1 − window_fraction), s] (§C.6)."""
    out = []
    for s in jumps:
        out.append(any(s * (1 - window_fraction) <= sp.step <= s for sp in spikes))
    return out


def step_at_accuracy(history: TrainingHistory, threshold: float = 0.99, which: str = "val") -> float:
    """First logged step with accuracy strictly above ``threshold`` (``inf`` if never).

    Uses :func:`empirical.metrics.first_crossing` (the shared definition).
    """
    values = history.val_accuracy if which == "val" else history.train_accuracy
    crossing = first_crossing(values, threshold, above=True)
    return float("inf") if crossing.censored else float(history.step[crossing.index])


def classify_phase(t_train: float, t_val: float, *, grokking_ratio: float = 10.0) -> str:
    """Phase of a run from its steps to 99 % train / validation accuracy (§B.6.2).

    ``"confusion"`` if training never fits, ``"memorisation"`` if validation never reaches the
    threshold, ``"grokking"`` if it does at least ``grokking_ratio`` times later than training
    (the §C.6 ratio T_val/T_train ≥ 10), else ``"comprehension"``.
    """
    if not math.isfinite(t_train):
        return "confusion"
    if not math.isfinite(t_val):
        return "memorisation"
    return "grokking" if t_val >= grokking_ratio * max(t_train, 1.0) else "comprehension"


@dataclass(frozen=True)
class FractionSweep:
    """Steps to 99 % train and validation accuracy against the training percentage (§B.6.2).

    Attributes
    ----------
    train_pct : ndarray, shape (F,)
    seeds : ndarray, shape (S,)
    t_train, t_val : ndarray, shape (F, S)
        Steps (``inf`` where never reached within the budget).
    phase : ndarray of str, shape (F, S)
    histories : tuple of TrainingHistory
        Row-major over (fraction, seed).
    """

    train_pct: np.ndarray
    seeds: np.ndarray
    t_train: np.ndarray
    t_val: np.ndarray
    phase: np.ndarray
    histories: tuple

    def median_t_val(self) -> np.ndarray:
        """Median over seeds of the steps to 99 % validation accuracy, per fraction."""
        return np.median(self.t_val, axis=1)

    def monotone(self) -> bool:
        """Whether the median steps to 99 % validation accuracy do not decrease as the fraction
        decreases (§C.6), counting ``inf`` as the largest value."""
        order = np.argsort(-self.train_pct)
        med = self.median_t_val()[order]
        return bool(np.all(med[1:] >= med[:-1]))  # inf >= inf holds (np.diff would give NaN)

    @classmethod
    def from_histories(cls, histories: Sequence[TrainingHistory], threshold: float = 0.99) -> "FractionSweep":
        """Rebuild a sweep from stored transformer runs (one per training percentage and seed)."""
        pcts = sorted({float(h.parameters["train_pct"]) for h in histories})
        seeds = sorted({int(h.settings["seed"]) for h in histories})
        t_train = np.full((len(pcts), len(seeds)), np.inf)
        t_val = np.full_like(t_train, np.inf)
        phase = np.full(t_train.shape, "confusion", dtype=object)
        ordered = []
        for i, pct in enumerate(pcts):
            for j, seed in enumerate(seeds):
                match = [h for h in histories if float(h.parameters["train_pct"]) == pct and int(h.settings["seed"]) == seed]
                if not match:
                    raise ValueError(f"no run for train_pct={pct}, seed={seed}")
                h = match[0]
                t_train[i, j] = step_at_accuracy(h, threshold, "train")
                t_val[i, j] = step_at_accuracy(h, threshold, "val")
                phase[i, j] = classify_phase(t_train[i, j], t_val[i, j])
                ordered.append(h)
        return cls(np.asarray(pcts), np.asarray(seeds), t_train, t_val, phase.astype(str), tuple(ordered))


def sweep_train_fraction(config: TransformerConfig, train_pcts: Sequence[float], *, seeds: Sequence[int] = (0,),
                         steps: int = 100_000, device: str = "cpu", threshold: float = 0.99,
                         progress: bool = False, stop_when_generalised: bool = True) -> FractionSweep:
    """Train at each training percentage and seed; collect steps to ``threshold`` accuracy."""
    pcts = np.asarray(list(train_pcts), dtype=float)
    seeds_arr = np.asarray(list(seeds), dtype=np.int64)
    if pcts.size == 0 or seeds_arr.size == 0:
        raise ValueError("train_pcts and seeds must be non-empty")
    t_train = np.full((pcts.size, seeds_arr.size), np.inf)
    t_val = np.full_like(t_train, np.inf)
    phase = np.empty(t_train.shape, dtype=object)
    histories = []
    for i, pct in enumerate(pcts):
        for j, seed in enumerate(seeds_arr):
            history = train_transformer(replace(config, train_pct=float(pct)), seed=int(seed), device=device,
                                        steps=steps, progress=progress, stop_when_generalised=stop_when_generalised)
            t_train[i, j] = step_at_accuracy(history, threshold, "train")
            t_val[i, j] = step_at_accuracy(history, threshold, "val")
            phase[i, j] = classify_phase(t_train[i, j], t_val[i, j])
            histories.append(history)
    return FractionSweep(pcts, seeds_arr, t_train, t_val, phase.astype(str), tuple(histories))
