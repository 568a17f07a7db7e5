"""HDF5 storage of runs, theory-over-experiment overlays, sweeps and the papers' figures."""

from .store import StoreError, list_runs, read_run, write_run

__all__ = ["write_run", "read_run", "list_runs", "StoreError"]
