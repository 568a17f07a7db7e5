"""PyTorch simulations of the committee machine and of the other grokking systems.

Second layer of the package: imports :mod:`dmft` (the shared result and parameter types), never
:mod:`comparisons` or the CLI. Simulations return results; storing them is the job of
:mod:`comparisons.store`.

Rooms
-----
committee : the committee machine of the theory (:mod:`empirical.committee`).
neural    : the neural grokking systems and their shared training loop (:mod:`empirical.neural`).
bayes     : the Bayesian and kernel systems (:mod:`empirical.bayes`).
metrics   : grokking metrics shared by all of them (:mod:`empirical.metrics`).

Public surface
--------------
train_committee : full-batch gradient descent on the committee machine (theory.md §0–§1),
    returning :class:`dmft.result.LearningCurves` (kind ``"simulation"``).
train_committee_family : the same for the general family (theory.md §10.1: erf, ReLU, tanh,
    linear, quadratic students; square or committee teachers).
simulate_seeds, average : mean curves and their spread over seeds.
CommitteeData, make_committee_data : explicit draws (X, y, W(0), β) of one run.
"""

__all__ = ["train_committee", "train_committee_family", "simulate_seeds", "average", "CommitteeData",
           "make_committee_data"]


def __getattr__(name: str):
    # Start-up time only: ``import empirical.neural.history`` (the store reads histories) must not
    # pull in torch, so the committee machine is imported when one of its names is first used.
    if name == "train_committee_family":
        from empirical.committee import family

        return family.train_committee_family
    if name in __all__:
        from empirical.committee import machine

        return getattr(machine, name)
    raise AttributeError(f"module 'empirical' has no attribute {name!r}")
