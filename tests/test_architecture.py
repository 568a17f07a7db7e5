"""The package's architecture holds: one import direction, rooms, click only in the CLI.

The contracts live in ``[tool.importlinter]`` of ``pyproject.toml`` (issue 15); this test runs
``lint-imports`` on them so that a new import against the direction fails the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dmft", "empirical", "comparisons", "grokking_cli")


def test_import_contracts_are_kept():
    pytest.importorskip("importlinter")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename='pyproject.toml'))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_every_package_is_in_the_contracts_and_installed():
    text = (ROOT / "pyproject.toml").read_text()
    for name in PACKAGES:
        assert f'"{name}"' in text and f'"{name}*"' in text, name


def test_tests_mirror_the_packages():
    """Each package (and each room of empirical) has its own folder of tests."""
    for folder in ("dmft", "empirical", "empirical/committee", "empirical/neural", "empirical/bayes",
                   "comparisons", "cli"):
        assert any((ROOT / "tests" / folder).glob("test_*.py")), folder


def test_a_registered_command_module_that_is_missing_is_an_error():
    from grokking_cli.lazy import LazyGroup

    group = LazyGroup(name="g", lazy_commands={"ghost": ("grokking_cli.no_such_module", "ghost")})
    with pytest.raises(ModuleNotFoundError):
        group.get_command(click.Context(group), "ghost")


def test_every_command_group_is_listed():
    from click.testing import CliRunner

    from grokking_cli.main import main

    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for name in ("solve", "ntk", "train", "compare", "sweep", "figure", "merge"):
        assert f"  {name} " in result.output, name
    result = CliRunner().invoke(main, ["train", "--help"])
    for name in ("committee", "algorithmic", "bayes"):
        assert f"  {name} " in result.output, name


def test_api_default_reads_dataclasses_and_signatures():
    from dataclasses import dataclass

    from grokking_cli.common import api_default

    @dataclass
    class Config:
        width: int = 100
        seed: int = 0

    def run(x, *, lr=0.5):
        return x

    assert api_default(Config, "width") == 100 and api_default(run, "lr") == 0.5
    with pytest.raises(KeyError):
        api_default(Config, "depth")
    with pytest.raises(KeyError):
        api_default(run, "x")


def _walk(command, ctx_name="dmft"):
    yield ctx_name, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from _walk(command.get_command(ctx, name), f"{ctx_name} {name}")


def test_every_api_option_finds_its_default_in_the_api():
    """Options read their defaults from the API: a renamed field must fail here, not for a user."""
    from grokking_cli.common import ApiOption
    from grokking_cli.main import main

    found = 0
    for path, command in _walk(main):
        for param in command.params:
            if isinstance(param, ApiOption):
                value = param.api_value()
                assert value is not None, (path, param.name)
                assert param.get_default(click.Context(command)) == value, (path, param.name)
                found += 1
    assert found >= 40


def test_console_script_points_at_the_cli():
    tomllib = pytest.importorskip("tomllib")
    import importlib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module_name, attr = scripts["dmft"].split(":")
    assert module_name.split(".")[0] == "grokking_cli"
    assert isinstance(getattr(importlib.import_module(module_name), attr), click.Group)
