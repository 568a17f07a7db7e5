"""Omnigrok student–teacher regression with an output scale (theory.md §5 "Student–teacher").

Teacher and student are 5-100-100-5 tanh MLPs with biases and PyTorch's default initialisation;
the teacher is built from seed ``teacher_seed`` (0), the student from ``student_seed`` (1) and
then every student parameter is multiplied by ``init_scale`` (2, Omnigrok's large-norm trick).
The student's prediction is ``s · g(x; θ)`` with output scale s (or the centred
``s·(g(x; θ) − g(x; θ₀))`` with ``center=True``). Inputs are N(0, I₅): 100 training and 100
test points; labels are the teacher's outputs. Loss: mean squared error over points and the 5
outputs; full-batch AdamW (lr 3e-4, wd 0.05, PyTorch's default β = (0.9, 0.999)) for 10⁴ epochs.

"Accuracy" of a regression (theory.md §5): the fraction of points whose squared error, averaged
over the 5 outputs, is below ``accuracy_threshold`` (1e-3; the sweep uses 1e-4 … 0.1).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from dmft.parameters import InvalidParameterError, check_int_at_least, check_positive
from empirical.neural.history import TrainingHistory
from empirical.neural.training import (
    train_to_history,
    DecoupledAdamW, descend, parameter_norm, resolve_device, seeded_init,
)

__all__ = ["StudentTeacherConfig", "tanh_mlp", "regression_accuracy", "train_student_teacher"]


@dataclass(frozen=True)
class StudentTeacherConfig:
    """Settings of the Omnigrok student–teacher experiment (theory.md §5)."""

    dim: int = 5
    hidden: int = 100
    n_train: int = 100
    n_test: int = 100
    scale: float = 1.0
    init_scale: float = 2.0
    lr: float = 3e-4
    weight_decay: float = 0.05
    accuracy_threshold: float = 1e-3
    teacher_seed: int = 0
    center: bool = False

    def __post_init__(self) -> None:
        for name in ("dim", "hidden", "n_train", "n_test"):
            check_int_at_least(name, getattr(self, name), 1)
        for name in ("scale", "init_scale", "lr", "accuracy_threshold"):
            check_positive(name, getattr(self, name))
        if not self.weight_decay >= 0:
            raise InvalidParameterError(f"weight_decay must lie in [0, inf), got {self.weight_decay!r}")
        check_int_at_least("teacher_seed", self.teacher_seed, 0)

    def as_attrs(self) -> dict:
        return asdict(self)


def tanh_mlp(dim: int, hidden: int) -> nn.Sequential:
    """dim-hidden-hidden-dim tanh MLP with biases (PyTorch default initialisation)."""
    return nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                         nn.Linear(hidden, dim))


def regression_accuracy(prediction: torch.Tensor, target: torch.Tensor, threshold: float) -> float:
    """Fraction of points whose per-point mean squared error is below ``threshold``."""
    per_point = ((prediction - target) ** 2).mean(dim=1)
    return float((per_point < threshold).float().mean())


class _StudentTeacherRun:
    def __init__(self, config: StudentTeacherConfig, seed: int, device: torch.device):
        self.config = config
        with seeded_init(config.teacher_seed):
            teacher = tanh_mlp(config.dim, config.hidden)
        rng = np.random.default_rng(config.teacher_seed)
        x_train = torch.as_tensor(rng.standard_normal((config.n_train, config.dim)), dtype=torch.float32)
        x_test = torch.as_tensor(rng.standard_normal((config.n_test, config.dim)), dtype=torch.float32)
        with torch.no_grad():
            y_train, y_test = teacher(x_train), teacher(x_test)
        self.x_train, self.y_train = x_train.to(device), y_train.to(device)
        self.x_test, self.y_test = x_test.to(device), y_test.to(device)
        with seeded_init(seed):
            self.student = tanh_mlp(config.dim, config.hidden)
        with torch.no_grad():
            for p in self.student.parameters():
                p.mul_(config.init_scale)
        self.student.to(device)
        self.initial = copy.deepcopy(self.student).requires_grad_(False)
        self.optimizer = DecoupledAdamW(self.student.parameters(), lr=config.lr, betas=(0.9, 0.999),
                                        weight_decay=config.weight_decay)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        out = self.student(x)
        if self.config.center:
            with torch.no_grad():
                out = out - self.initial(x)
        return self.config.scale * out

    def train_step(self, update: int) -> float:
        loss = torch.mean((self.predict(self.x_train) - self.y_train) ** 2)
        return descend(self.optimizer, loss)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        out = {}
        thr = self.config.accuracy_threshold
        for name, x, y in (("train", self.x_train, self.y_train), ("val", self.x_test, self.y_test)):
            pred = self.predict(x)
            out[f"{name}_loss"] = float(torch.mean((pred - y) ** 2))
            out[f"{name}_accuracy"] = regression_accuracy(pred, y, thr)
        out["param_norm"] = parameter_norm(self.student.parameters())
        return out

    def state_dict(self) -> dict:
        return {"model": self.student.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.student.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


def train_student_teacher(config: StudentTeacherConfig = StudentTeacherConfig(), *, seed: int = 1,
                          device: str = "cpu", steps: int = 10_000, log_every: int | None = None,
                          checkpoint=None, checkpoint_every: int | None = None, stop_after: int | None = None,
                          progress: bool = False) -> TrainingHistory:
    """Full-batch AdamW on the student (``seed`` = the student seed, 1 in the paper)."""
    steps = check_int_at_least("steps", steps, 1)
    seed = check_int_at_least("seed", seed, 0)
    dev = resolve_device(device)
    run = _StudentTeacherRun(config, seed, dev)
    return train_to_history(
        run, system="student_teacher", parameters=config.as_attrs(), seed=seed, device=dev, steps=steps,
        log_every=log_every, log_points=300, update_name="full-batch AdamW steps",
        description=f"student-teacher s={config.scale:g}",
        checkpoint=checkpoint, checkpoint_every=checkpoint_every, stop_after=stop_after, progress=progress)
