"""Provenance recorded with every run: package version, git revision, creation time."""

from __future__ import annotations

import datetime as _dt
import functools
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["package_version", "git_revision", "provenance"]


def package_version() -> str:
    """Installed version of the ``grokking-theory`` distribution (``"unknown"`` if absent)."""
    try:
        return metadata.version("grokking-theory")
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=1)
def git_revision() -> str:
    """Git revision of the source tree, with ``-dirty`` if it has uncommitted changes.

    ``"unknown"`` unless the package runs from the top of a git checkout (an editable install): an
    installed copy in site-packages may lie inside another repository (a project's ``.venv``),
    whose revision says nothing about the code that ran.
    """
    root = Path(__file__).resolve().parent.parent
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        if not top or Path(top).resolve() != root:
            return "unknown"
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance() -> dict:
    """Attributes stored with every run: version, git revision, UTC creation time."""
    return {
        "package_version": package_version(),
        "git_revision": git_revision(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
