"""The ``dmft`` command line: the one place where click lives.

The top layer of the package (``dmft`` ← ``empirical`` ← ``comparisons`` ← ``grokking_cli``): it
may import every package below it, and none of them imports it. One module per command group:

=====================  ==========================================================
module                 commands
=====================  ==========================================================
``main``               the ``dmft`` group and ``dmft solve``
``ntk``                ``dmft ntk``
``train``              the ``dmft train`` group
``committee``          ``dmft train committee``
``algorithmic``        ``dmft train algorithmic …`` (the neural systems)
``bayes``              ``dmft train bayes …``
``compare``            ``dmft compare``, ``dmft sweep``, ``dmft figure``, ``dmft merge``
``common``             help texts, exit codes, parsing and output shared by all of them
``lazy``               the group that imports a command's module on first use
=====================  ==========================================================

Option defaults are read from the Python API (:func:`grokking_cli.common.api_default`,
:class:`grokking_cli.common.ApiOption`), never written a second time here.

Imports written inside command functions are a start-up-time choice only: ``dmft solve`` and
``dmft --help`` must not pay for torch (``empirical``) or h5py (``comparisons.store``), so a command
imports them when it runs. No import in the package is written inside a function to break a
cycle; ``lint-imports`` checks every import, wherever it is written.
"""
