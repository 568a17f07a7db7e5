"""A click group whose commands live in other modules and are imported on first use.

``dmft solve`` therefore imports neither torch (``dmft train``) nor the comparison stack; ``dmft
--help`` imports them all to list them. Every registered module must exist: a missing one is an
error, never a command that silently disappears.
"""

from __future__ import annotations

import importlib

import click

__all__ = ["LazyGroup"]


class LazyGroup(click.Group):
    """A click group with commands imported from their own modules when first asked for.

    Parameters
    ----------
    lazy_commands : dict
        Command name → (module name, attribute).
    """

    def __init__(self, *args, lazy_commands=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def _load(self, name: str) -> click.Command:
        module_name, attr = self.lazy_commands[name]
        module = importlib.import_module(module_name)  # ModuleNotFoundError propagates
        command = getattr(module, attr, None)
        if not isinstance(command, click.Command):
            raise RuntimeError(f"{module_name}.{attr} is not a click command (registered as 'dmft {name}')")
        return command

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None and name in self.lazy_commands:
            command = self._load(name)
        return command
