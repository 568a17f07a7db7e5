"""``dmft train …``: the simulation commands of :mod:`empirical`.

Each system owns its command module; this group collects those that are present.
"""

from __future__ import annotations

import click

from dmft._commands import register_optional_commands

__all__ = ["train"]

#: (module, attribute) of each simulation command.
_COMMANDS = (
    ("empirical.committee_cli", "committee"),
    ("empirical.algorithmic_cli", "algorithmic"),
    ("empirical.neural_cli", "neural"),
    ("empirical.bayes_cli", "bayes"),
)


@click.group()
def train():
    """Train the networks and models of the package (PyTorch, CPU or GPU).

    Every command stores its curves in the package's HDF5 layout (--out) and records
    parameters, seed, version and git revision.
    """


register_optional_commands(train, _COMMANDS)
