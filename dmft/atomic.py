"""Atomic replacement of a file: the one writer behind every stored run, record and checkpoint.

The new content is written into a temporary file beside the target (``.<name>.<random>.tmp``),
flushed to disk and moved onto the target with ``os.replace`` (atomic on POSIX). A process killed
mid-write leaves the target as it was; the stray temporary is never read and
:func:`remove_stale_temporaries` deletes it. :func:`file_lock` serialises writers (processes or
threads) with an exclusive ``fcntl`` lock on ``<name>.lock`` that the kernel releases when a
writer dies.

It lives in the bottom layer because both the simulations (training checkpoints,
:mod:`empirical.neural.training`) and the store (:mod:`comparisons.store`) write files.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_replace", "file_lock", "remove_stale_temporaries"]


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive advisory lock on ``<path>.lock`` for the duration of the block."""
    lock_path = Path(str(path) + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Delete temporaries that killed writers left beside ``path`` (call with the lock held).

    Only ``.<name>.<random>.tmp`` with the random part of :func:`tempfile.mkstemp` (letters, digits,
    ``_``: no dot), so that the live temporary of another store in the folder whose name extends
    this one (``<name>.old``: ``.<name>.old.<random>.tmp``), written under its own lock, is kept.
    """
    path = Path(path)
    own = re.compile(rf"\.{re.escape(path.name)}\.[A-Za-z0-9_]+\.tmp")
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if own.fullmatch(stale.name):
            with contextlib.suppress(OSError):
                stale.unlink()


@contextlib.contextmanager
def atomic_replace(path: str | os.PathLike, *, copy_existing: bool = False) -> Iterator[Path]:
    """Yield a temporary path whose content replaces ``path`` atomically when the block succeeds.

    Parameters
    ----------
    path : path-like
        The target; its folder is created if absent.
    copy_existing : bool, default False
        Start from a copy of the target (when it exists) instead of an empty file.

    If the block raises, the temporary is deleted and ``path`` is untouched. Locking is the
    caller's choice (:func:`file_lock`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if copy_existing and path.exists():
            shutil.copyfile(path, tmp)
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
