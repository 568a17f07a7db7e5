"""Every report under docs/results/ names the command that regenerates it on a clean checkout.

A report's command must (1) exist: the script it runs is in the repository, or it is a ``dmft``
command; (2) be accepted: every ``--option`` it passes is an option of that script or command;
(3) recompute, not merely redraw: no ``--report-only`` (the stores it would read are not
committed) and no absolute paths of one machine.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REPORTS = sorted((REPO / "docs" / "results").glob("*.md")) + sorted((REPO / "docs" / "results").glob("*.txt"))

_INLINE = re.compile(r"^Command: `([^`]+)`", re.MULTILINE)
_SHELL = re.compile(r"^\$ (.+?)(?:\s{2,}\(|$)", re.MULTILINE)
_DMFT = re.compile(r"^\s*(?:[A-Z_]+=\S+\s+)*(?:\\\s*)?(dmft [^#\n]+)", re.MULTILINE)


def _commands(text: str) -> list[str]:
    found = _INLINE.findall(text) + _SHELL.findall(text)
    if not found:
        found = [m.strip().rstrip("\\").strip() for m in _DMFT.findall(text)]
    return found


def _options_of_script(path: Path) -> set[str]:
    return set(re.findall(r"""["'](--[a-z][a-z0-9-]*)["']""", path.read_text()))


def _options_of_dmft(words: list[str]) -> set[str]:
    import click

    from grokking_cli.main import main

    command, ctx = main, click.Context(main)
    for word in words:
        if not isinstance(command, click.Group) or word.startswith("-"):
            break
        sub = command.get_command(ctx, word)
        if sub is None:
            break
        command, ctx = sub, click.Context(sub, parent=ctx)
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


@pytest.mark.parametrize("report", REPORTS, ids=lambda p: p.name)
def test_report_names_a_command_that_recomputes_it(report):
    text = report.read_text()
    commands = _commands(text)
    assert commands, f"{report.name}: no 'Command: `...`' (or '$ ...') line says how to regenerate it"
    for command in commands:
        assert "--report-only" not in command, f"{report.name}: {command!r} only redraws from an uncommitted store"
        assert "/work/" not in command and not re.search(r"\s/home/", command), command
        words = [w for w in shlex.split(re.sub(r"\\\s*$", "", command)) if "=" not in w or w.startswith("-")]
        words = [w.split("=", 1)[0] if w.startswith("--") else w for w in words]
        options = {w for w in words if w.startswith("--")}
        script = next((w for w in words if w.endswith(".py")), None)
        if script is not None:
            path = REPO / script
            assert path.exists(), f"{report.name}: {script} does not exist"
            known = _options_of_script(path)
        else:
            assert "dmft" in words, f"{report.name}: {command!r} runs neither a script nor dmft"
            known = _options_of_dmft(words[words.index("dmft") + 1:])
        unknown = options - known
        assert not unknown, f"{report.name}: {command!r} passes options its program does not take: {unknown}"
    assert "/work/wt-" not in text, f"{report.name}: names a path of one machine"
