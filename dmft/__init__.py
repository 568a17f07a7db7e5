"""grokking-theory: theoretical learning curves of the committee machine.

Bottom layer of the package: theory and the core types every other layer shares
(:class:`LearningCurves`, :class:`ModelParameters`, :mod:`dmft.provenance`, :mod:`dmft.atomic`).
It imports nothing from :mod:`empirical`, :mod:`comparisons` or the CLI.

Public surface
--------------
solve : the DMFT learning curves at sample ratio ``alpha`` = P/D (``math.inf``: online ODE).
LearningCurves : the result type shared with ``empirical``.
ModelParameters : the validated learning problem.
population : exact population test loss and its decomposition.
ntk : the neural tangent kernel of the committee machine.
activations : activations (erf, relu, tanh, linear, polynomials, user) and Gaussian expectations.
committee_online : online ODE for general activations and committee teachers (``CommitteeModel``).
"""

from .activations import Activation
from .committee_online import CommitteeModel, solve_committee_online
from .parameters import ModelParameters
from .result import DECOMPOSITION_TERMS, LearningCurves
from .solve import solve

__all__ = [
    "solve",
    "LearningCurves",
    "ModelParameters",
    "DECOMPOSITION_TERMS",
    "Activation",
    "CommitteeModel",
    "solve_committee_online",
]
__version__ = "0.1.0"
