"""Attach click commands that live in optional modules (shared by ``dmft`` and ``dmft train``)."""

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
