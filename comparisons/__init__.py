"""HDF5 storage of runs, theory-over-experiment overlays, sweeps and the papers' figures.

Public surface
--------------
write_run, read_run, list_runs, load, merge_stores, to_xarray, StoreError : the HDF5 store
    (docs/hdf5_schema.md).
agreement, Agreement : sup relative error of a theory curve against the seed mean, and its
    ratio to the seed spread.
compare, Comparison : theory and matching simulations from the same planted overlaps.
sweep, SweepResult : grids of runs through any concurrent.futures-style executor.
make_figure : the paper's figures.
"""

from comparisons.agreement import Agreement, agreement
from comparisons.comparison import Comparison, compare
from comparisons.figures import make_figure
from comparisons.store import StoreError, list_runs, load, merge_stores, read_run, to_xarray, write_run
from comparisons.sweeps import SweepResult, sweep

__all__ = [
    "write_run", "read_run", "list_runs", "load", "merge_stores", "to_xarray", "StoreError",
    "agreement", "Agreement", "compare", "Comparison", "sweep", "SweepResult", "make_figure",
]
