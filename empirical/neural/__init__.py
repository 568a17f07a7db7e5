"""The neural grokking systems of the literature (PyTorch).

tasks           : the algorithmic operation tables and their fixed train/validation split.
transformer     : Power et al.'s decoder-only transformer.
nanda           : Nanda et al.'s one-layer transformer.
modular_mlp     : the modular-addition MLP.
student_teacher : the tanh student–teacher MLP.
digits          : the 8×8 digit (and MNIST) MLP.
training        : the shared training loop (optimiser, schedules, checkpoints, resume).
history         : :class:`TrainingHistory`, what every system returns.

Storing a history is the job of :mod:`comparisons.store` (``write_history`` / ``read_history``).
"""

from empirical.neural.history import TrainingHistory

__all__ = ["TrainingHistory"]
