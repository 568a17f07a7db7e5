"""HDF5 storage of runs, theory-over-experiment overlays, sweeps and the papers' figures."""

from .store import StoreError, list_runs, load, merge_stores, read_run, to_xarray, write_run

__all__ = ["write_run", "read_run", "list_runs", "load", "merge_stores", "to_xarray", "StoreError"]
