"""The failures of a computation, as distinct from bad input.

:class:`~dmft.parameters.InvalidParameterError` says the *input* is outside its valid range. The
classes here say that valid input led to a computation that did not converge or blew up; the
``dmft`` command line maps every :class:`SolverError`, and only it, to exit code 3.
"""

from __future__ import annotations

__all__ = ["SolverError", "OnlineODEError"]


class SolverError(RuntimeError):
    """A solver did not converge or produced non-finite values (CLI exit code 3).

    A subclass of ``RuntimeError``, so ``except RuntimeError`` keeps working.
    """


class OnlineODEError(SolverError):
    """The adaptive integrator of an online ODE (theory.md §4, §10) stopped before ``t_max``.

    The message carries the integrator's own reason (e.g. the step size fell below its floor
    because the order parameters grow without bound, as online SGD does beyond its stable
    learning rate).
    """
