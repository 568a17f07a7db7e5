"""PyTorch simulations of the committee machine and of the other grokking systems.

Public surface
--------------
train_committee : full-batch gradient descent on the committee machine (theory.md §0–§1),
    returning :class:`dmft.result.LearningCurves` (kind ``"simulation"``).
simulate_seeds, average : mean curves and their spread over seeds.
CommitteeData, make_committee_data : explicit draws (X, y, W(0), β) of one run.
"""

from .committee import CommitteeData, average, make_committee_data, simulate_seeds, train_committee

__all__ = ["train_committee", "simulate_seeds", "average", "CommitteeData", "make_committee_data"]
