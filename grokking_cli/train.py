"""``dmft train …``: the simulation commands, one module per system family.

``committee`` (:mod:`grokking_cli.committee`), ``family`` (the general committee family,
:mod:`grokking_cli.family`), ``algorithmic`` (the neural systems,
:mod:`grokking_cli.algorithmic`) and ``bayes`` (:mod:`grokking_cli.bayes`). Each module imports
torch only when its command runs.
"""

from __future__ import annotations

import click

from grokking_cli.algorithmic import algorithmic
from grokking_cli.bayes import bayes
from grokking_cli.committee import committee
from grokking_cli.family import family

__all__ = ["train"]


@click.group()
def train():
    """Train the networks and models of the package (PyTorch, CPU or GPU).

    Every command stores its curves in the package's HDF5 layout (--out) and records
    parameters, seed, version and git revision.
    """


for _command in (committee, family, algorithmic, bayes):
    train.add_command(_command)
