"""The committee machine of the theory, trained by finite-D gradient descent (PyTorch).

machine : data draws, the trainer :func:`train_committee`, seed averages (theory.md §0–§1).
family  : gradient descent of the general family (erf, ReLU, tanh, ... students; committee
          teachers), :func:`train_committee_family` (theory.md §10.1).
tasks   : the named experiments of the polynomial-task family (``dmft train committee --task``).
"""

from empirical.committee.machine import (ACTIVATIONS, OPTIMIZERS, CommitteeData, average, make_committee_data,
                                         simulate_seeds, train_committee)
from empirical.committee.family import train_committee_family

__all__ = ["train_committee", "train_committee_family", "simulate_seeds", "average", "CommitteeData", "make_committee_data", "ACTIVATIONS",
           "OPTIMIZERS"]
