"""Click commands that live in other modules, attached eagerly (``dmft train``) or lazily (``dmft``)."""

from __future__ import annotations

import importlib
from typing import Iterable

import click


def register_optional_commands(group: click.Group, entries: Iterable[tuple[str, str]]) -> None:
    """Add ``getattr(module, attr)`` to ``group`` for each (module, attr) whose module exists.

    A module that is absent is skipped; an import error *inside* a present module propagates.
    """
    for module_name, attr in entries:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        command = getattr(module, attr, None)
        if command is not None:
            group.add_command(command)


class LazyGroup(click.Group):
    """A click group whose commands from other modules are imported only when asked for.

    ``dmft solve`` therefore does not import torch (``dmft train``) or the comparison stack;
    ``dmft --help`` imports them all to list them. A module that is absent is left out; an
    import error inside a present module propagates (as in :func:`register_optional_commands`).

    Parameters
    ----------
    lazy_commands : dict
        Command name → (module name, attribute).
    """

    def __init__(self, *args, lazy_commands=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def _load(self, name: str):
        module_name, attr = self.lazy_commands[name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None
        return getattr(module, attr, None)

    def list_commands(self, ctx):
        names = set(super().list_commands(ctx))
        names.update(name for name in self.lazy_commands if self._load(name) is not None)
        return sorted(names)

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None and name in self.lazy_commands:
            command = self._load(name)
        return command
