"""Shared training machinery of the neural grokking systems.

* :class:`DecoupledAdamW` — Adam with decoupled weight decay, Power et al.'s ``CustomAdamW``
  (seed_systems.md §B.4): ``p ← p·(1 − lr_t·wd)`` ("to_zero") or ``p ← p − lr_t·wd·(p − p₀)``
  ("to_init") before the bias-corrected Adam step.
* :func:`warmup_lr` — the linear warm-up then constant learning rate of §B.4.
* :func:`geometric_schedule` — the logging schedule next = max(⌊r·e⌋, e + 1) of §B.5.
* :func:`run_training` — a seeded driver that logs metrics on a schedule, records every step's
  mini-batch loss, writes atomic checkpoints and resumes from them with numbers identical to an
  uninterrupted run.
* :func:`seeded_init` — build a model under a private RNG state (no global state is changed).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Protocol

import numpy as np
import torch

from dmft.atomic import atomic_replace
from empirical.devices import resolve_device  # noqa: F401  (re-exported: the neural trainers' device)
from empirical.neural.history import TrainingHistory
from dmft.parameters import InvalidParameterError, check_int_at_least

__all__ = [
    "DecoupledAdamW",
    "warmup_lr",
    "geometric_schedule",
    "log_steps_geometric",
    "resolve_device",
    "seeded_init",
    "parameter_norm",
    "descend",
    "save_checkpoint",
    "load_checkpoint",
    "Trainable",
    "TrainingLog",
    "run_training",
]


class DecoupledAdamW(torch.optim.Optimizer):
    """Adam with decoupled weight decay (seed_systems.md §B.4, ``CustomAdamW``).

    Per step, for every parameter p with gradient g (moments m, v; step count k ≥ 1):

    1. weight decay: ``p ← p·(1 − lr·wd)`` (``decay_form="to_zero"``) or
       ``p ← p − lr·wd·(p − p_init)`` (``"to_init"``);
    2. ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g²``;
    3. ``p ← p − lr · (m/(1−β₁ᵏ)) / (√(v/(1−β₂ᵏ)) + eps)``.

    With ``decay_form="to_zero"`` this is ``torch.optim.AdamW`` (the tests compare them).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.98), eps: float = 1e-8,
                 weight_decay: float = 0.0, decay_form: str = "to_zero"):
        if not lr >= 0:
            raise InvalidParameterError(f"lr must be >= 0, got {lr!r}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise InvalidParameterError(f"betas must lie in [0, 1), got {betas!r}")
        if not eps > 0:
            raise InvalidParameterError(f"eps must be > 0, got {eps!r}")
        if not weight_decay >= 0:
            raise InvalidParameterError(f"weight_decay must be >= 0, got {weight_decay!r}")
        if decay_form not in ("to_zero", "to_init"):
            raise InvalidParameterError(f"decay_form must be 'to_zero' or 'to_init', got {decay_form!r}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decay_form=decay_form))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            wd, form = group["weight_decay"], group["decay_form"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    if form == "to_init":
                        state["init"] = p.detach().clone()
                state["step"] += 1
                k = state["step"]
                if wd != 0:
                    if form == "to_zero":
                        p.mul_(1.0 - lr * wd)
                    else:
                        p.sub_(lr * wd * (p - state["init"]))
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
                m_hat = m / (1.0 - beta1 ** k)
                denom = (v / (1.0 - beta2 ** k)).sqrt_().add_(eps)
                p.addcdiv_(m_hat, denom, value=-lr)
        return loss


def warmup_lr(update: int, max_lr: float, warmup_steps: int = 10) -> float:
    """Learning rate of update number ``update`` (0-based), seed_systems.md §B.4.

    Power et al. set the optimiser lr to 1 and let a ``LambdaLR`` supply
    ``min(update, warmup)/warmup · max_lr``; the scheduler is evaluated before the first update,
    so update 0 has lr 0 (only the Adam moments move), update ``warmup`` and later ``max_lr``.
    """
    if warmup_steps <= 0:
        return float(max_lr)
    return float(max_lr) * min(update, warmup_steps) / warmup_steps


def geometric_schedule(last: int, ratio: float) -> np.ndarray:
    """Logged indices 0, then next = max(⌊ratio·e⌋, e + 1), up to ``last`` inclusive (§B.5).

    ``last`` is always included (a run's final state is always logged).
    """
    if ratio <= 1:
        raise InvalidParameterError(f"ratio must be > 1, got {ratio!r}")
    points = [0]
    while points[-1] < last:
        e = points[-1]
        points.append(max(int(math.floor(ratio * e)), e + 1))
    points[-1] = min(points[-1], last)
    return np.unique(np.asarray(points, dtype=np.int64))


def log_steps_geometric(total_steps: int, ratio: float = 1.02, every_at_least: int | None = None) -> np.ndarray:
    """Geometric step schedule (§B.5 form) on steps, optionally also every ``every_at_least`` steps."""
    steps = geometric_schedule(total_steps, ratio)
    if every_at_least:
        steps = np.union1d(steps, np.arange(0, total_steps + 1, every_at_least))
    return steps


@contextlib.contextmanager
def seeded_init(seed: int):
    """Run the block under ``torch.manual_seed(seed)`` and restore the global RNG afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def parameter_norm(parameters: Iterable[torch.Tensor]) -> float:
    """‖θ‖₂ over all given tensors."""
    total = 0.0
    for p in parameters:
        total += float(p.detach().double().pow(2).sum())
    return math.sqrt(total)


def descend(optimizer: torch.optim.Optimizer, objective: torch.Tensor) -> float:
    """One optimiser step on ``objective`` (clear gradients, backpropagate, step); returns its value."""
    optimizer.zero_grad(set_to_none=True)
    objective.backward()
    optimizer.step()
    return float(objective.detach())


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` with ``torch.save`` atomically (:func:`dmft.atomic.atomic_replace`)."""
    with atomic_replace(path) as tmp:
        torch.save(state, tmp)


#: Entries of every checkpoint :func:`run_training` writes.
_CHECKPOINT_KEYS = ("run", "log", "completed", "total_steps")


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by :func:`run_training` (on the CPU).

    Raises
    ------
    InvalidParameterError
        The file is not such a checkpoint (another kind of file, a truncated one, or a torch
        file without the entries of a training run's state).
    OSError
        The file cannot be read.
    """
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=False)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - unpickling a foreign file fails in many ways
        raise InvalidParameterError(
            f"checkpoint {path} is not a checkpoint of a training run (cannot be loaded: "
            f"{type(exc).__name__}); use another checkpoint path or remove the file") from None
    if not isinstance(state, dict) or not all(key in state for key in _CHECKPOINT_KEYS):
        raise InvalidParameterError(
            f"checkpoint {path} is not a checkpoint of a training run (a torch file without its state); "
            "use another checkpoint path or remove the file")
    return state


def _resume(run: "Trainable", log: "TrainingLog", checkpoint, state: dict, *, total_steps: int,
            signature: dict | None) -> int:
    """Load ``state`` (from :func:`load_checkpoint`) into ``run`` and ``log``; return the completed steps.

    Refuses (:class:`InvalidParameterError`) a checkpoint of another run: another step budget,
    another ``signature`` (system, parameters, seed; checkpoints written without one are
    accepted), or a state that does not fit ``run``.
    """
    if state.get("total_steps") != total_steps:
        raise InvalidParameterError(
            f"checkpoint {checkpoint} was written for total_steps={state.get('total_steps')}, "
            f"not {total_steps}; use another checkpoint path")
    stored = state.get("signature")
    if signature is not None and stored is not None and stored != signature:
        raise InvalidParameterError(
            f"checkpoint {checkpoint} is a checkpoint of another run (other parameters or seed); "
            "use another checkpoint path")
    try:
        run.load_state_dict(state["run"])
        log.load_state_dict(state["log"])
        return int(state["completed"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InvalidParameterError(
            f"checkpoint {checkpoint} is not a checkpoint of this run (its state does not fit: "
            f"{' '.join(str(exc).split())[:200]}); use another checkpoint path") from None


class Trainable(Protocol):
    """What :func:`run_training` drives: one system's model, optimiser and data."""

    def train_step(self, update: int) -> float:
        """Perform update number ``update`` (0-based); return its mini-batch training loss."""

    def evaluate(self) -> dict[str, float]:
        """Metrics on the full training and validation sets (``train_loss``, ``val_loss``,
        ``train_accuracy``, ``val_accuracy``, ``param_norm`` and any extras)."""

    def state_dict(self) -> dict:
        """Everything needed to resume (model, optimiser, RNG, data order)."""

    def load_state_dict(self, state: dict) -> None:
        ...


class ModelOptimizerState:
    """Resumable state of a run that holds only ``self.model`` and ``self.optimizer`` (mixin for
    the :class:`Trainable` runs whose data order carries no state)."""

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


class TrainingLog:
    """Metrics logged at scheduled steps, plus the mini-batch loss of every step."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.metrics: dict[str, list[float]] = {}
        self.step_loss: list[float] = []

    def record(self, step: int, metrics: dict[str, float]) -> None:
        self.steps.append(int(step))
        for key, value in metrics.items():
            self.metrics.setdefault(key, []).append(float(value))

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "metrics": {k: list(v) for k, v in self.metrics.items()},
                "step_loss": list(self.step_loss)}

    def load_state_dict(self, state: dict) -> None:
        self.steps = list(state["steps"])
        self.metrics = {k: list(v) for k, v in state["metrics"].items()}
        self.step_loss = list(state["step_loss"])

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"step": np.asarray(self.steps, dtype=np.int64),
               "step_loss": np.asarray(self.step_loss, dtype=float)}
        out.update({k: np.asarray(v, dtype=float) for k, v in self.metrics.items()})
        return out


def run_training(run: Trainable, *, total_steps: int, log_steps: np.ndarray,
                 checkpoint: str | os.PathLike | None = None, checkpoint_every: int | None = None,
                 stop_after: int | None = None, progress: bool = False, description: str = "training",
                 on_log: Callable[[int, dict], bool] | None = None,
                 signature: dict | None = None) -> tuple[TrainingLog, int, float]:
    """Drive ``run`` for ``total_steps`` updates, logging at ``log_steps``, checkpointing.

    Parameters
    ----------
    run : Trainable
    total_steps : int
        Number of optimiser updates.
    log_steps : ndarray of int
        Steps (numbers of completed updates, 0..total_steps) at which ``run.evaluate()`` is logged.
    checkpoint : path, optional
        If the file exists the run resumes from it (model, optimiser, RNG, log); it is rewritten
        every ``checkpoint_every`` updates, at ``stop_after`` and at the end.
        A file that is not a checkpoint of this run is refused (:class:`InvalidParameterError`).
    checkpoint_every : int, optional
        Checkpoint period in updates, >= 1 (default: only at the end / at ``stop_after``).
    stop_after : int, optional
        Stop after this many completed updates (an interruption, for tests and long jobs that
        are continued later); the checkpoint then holds the state to resume from.
    progress : bool
        tqdm progress bar.
    on_log : callable, optional
        Called as ``on_log(step, metrics)`` after each log; returning True stops early.
    signature : dict, optional
        What identifies the run (system, parameters, seed): saved in the checkpoint, and a
        checkpoint with another signature is refused.

    A run whose mini-batch loss or logged losses become non-finite (NaN or inf) has diverged: it is
    logged at that step and stops there (see :meth:`TrainingHistory.diverged_at`).

    Returns
    -------
    (TrainingLog, completed_steps, seconds)
    """
    if checkpoint_every is not None:
        checkpoint_every = check_int_at_least("checkpoint_every", checkpoint_every, 1)
    log = TrainingLog()
    start = 0
    if checkpoint is not None and Path(checkpoint).exists():
        start = _resume(run, log, checkpoint, load_checkpoint(checkpoint), total_steps=total_steps,
                        signature=signature)
    log_set = set(int(s) for s in np.asarray(log_steps).ravel() if 0 <= s <= total_steps)
    end = total_steps if stop_after is None else min(total_steps, int(stop_after))

    def save(completed: int) -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"run": run.state_dict(), "log": log.state_dict(),
                                         "completed": completed, "total_steps": total_steps,
                                         "signature": signature})

    t0 = time.perf_counter()
    if start == 0 and 0 in log_set and not log.steps:
        metrics = run.evaluate()
        log.record(0, metrics)
        if not _finite(metrics) or (on_log is not None and on_log(0, metrics)):
            save(0)
            return log, 0, time.perf_counter() - t0
    completed = start
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=end, initial=start, desc=description, unit="step", mininterval=1.0)
    try:
        for update in range(start, end):
            loss = run.train_step(update)
            log.step_loss.append(loss)
            completed = update + 1
            if bar is not None:
                bar.update(1)
            stop = not math.isfinite(loss)  # diverged: NaN/inf never recovers, log the step and stop
            if completed in log_set or stop:
                metrics = run.evaluate()
                log.record(completed, metrics)
                if bar is not None:
                    bar.set_postfix(train=f"{metrics.get('train_accuracy', float('nan')):.3f}",
                                    val=f"{metrics.get('val_accuracy', float('nan')):.3f}", refresh=False)
                stop = stop or not _finite(metrics)
                if on_log is not None:
                    stop = bool(on_log(completed, metrics)) or stop
            if checkpoint_every and completed % checkpoint_every == 0 and completed < end:
                save(completed)
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()
    save(completed)
    return log, completed, time.perf_counter() - t0


def _finite(metrics: dict) -> bool:
    """Whether the logged losses and parameter norm are finite (else the run has diverged)."""
    return all(math.isfinite(metrics[key]) for key in ("train_loss", "val_loss", "param_norm") if key in metrics)


def train_to_history(run: Trainable, *, system: str, parameters: dict, seed: int, device, steps: int,
                     log_every: int | None, log_points: int, update_name: str, description: str,
                     settings: dict | None = None, extra_keys: Iterable[str] = ("step_loss",),
                     checkpoint=None, checkpoint_every: int | None = None, stop_after: int | None = None,
                     progress: bool = False):
    """Run ``run`` on the geometric log schedule (ratio 1.02, seed_systems.md §B.5, and at least
    every ``log_every`` steps, default ``steps // log_points``) and package the log as a
    :class:`~empirical.neural.history.TrainingHistory`, the shared tail of every neural trainer.
    """
    every = log_every if log_every is not None else max(1, steps // log_points)
    log, completed, seconds = run_training(
        run, total_steps=steps, log_steps=log_steps_geometric(steps, 1.02, every), checkpoint=checkpoint,
        checkpoint_every=checkpoint_every, stop_after=stop_after, progress=progress, description=description,
        signature={"system": system, "parameters": dict(parameters), "seed": seed})
    a = log.arrays()
    return TrainingHistory(
        system=system, step=a["step"], train_loss=a["train_loss"], val_loss=a["val_loss"],
        train_accuracy=a["train_accuracy"], val_accuracy=a["val_accuracy"], param_norm=a["param_norm"],
        parameters=parameters,
        settings={"seed": seed, "device": str(device), "steps": steps, "completed_steps": completed,
                  **(settings or {})},
        seconds=seconds, message=f"{completed} of {steps} {update_name}",
        extras={key: a[key] for key in extra_keys},
    )
