"""``dmft train …``: the simulation commands of :mod:`empirical`.

Each system owns its command module; this group collects those that are present.
"""

from __future__ import annotations

import importlib

import click

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


def _register() -> None:
    for module_name, attr in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        command = getattr(module, attr, None)
        if command is not None:
            train.add_command(command)


_register()
