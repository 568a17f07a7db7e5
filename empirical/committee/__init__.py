"""The committee machine of the theory, trained by finite-D gradient descent (PyTorch).

machine : data draws, the trainer :func:`train_committee`, seed averages (theory.md §0–§1).
tasks   : the named experiments of the polynomial-task family (``dmft train committee --task``).
"""

from empirical.committee.machine import (ACTIVATIONS, OPTIMIZERS, CommitteeData, average, make_committee_data,
                                         simulate_seeds, train_committee)

__all__ = ["train_committee", "simulate_seeds", "average", "CommitteeData", "make_committee_data", "ACTIVATIONS",
           "OPTIMIZERS"]
