"""HDF5 storage of runs, theory-over-experiment overlays, sweeps and the papers' figures.

Third layer of the package: imports :mod:`dmft` and :mod:`empirical`, never the CLI
(:mod:`grokking_cli`). Theory and simulations return results; this layer stores, compares and
draws them.

Public surface
--------------
write_run, read_run, list_runs, load, merge_stores, to_xarray, StoreError : the HDF5 store
    (docs/hdf5_schema.md).
write_history, read_history : neural training histories in the same store.
write_record, read_record, list_records : named arrays of the Bayesian and kernel systems.
agreement, Agreement : sup relative error of a theory curve against the seed mean, and its
    ratio to the seed spread.
compare, Comparison : theory and matching simulations from the same planted overlaps.
sweep, SweepResult : grids of runs through any concurrent.futures-style executor.
make_figure : the paper's figures.
phase_diagram, grokking_point, PhaseDiagram, PhasePoint : the phase diagram of grokking (amount of
    grokking over two of κ, ε, α) from the DMFT, resumable, through the sweep executors.
"""

from comparisons.agreement import Agreement, agreement
from comparisons.comparison import Comparison, compare
from comparisons.figures import make_figure
from comparisons.phase import PhaseDiagram, PhasePoint, grokking_point, phase_diagram
from comparisons.store import (SCHEMA_VERSION, StoreError, list_records, list_runs, load, merge_stores, read_history,
                               read_record, read_run, to_xarray, write_history, write_record, write_run)
from comparisons.sweeps import SweepResult, sweep

__all__ = [
    "write_run", "read_run", "list_runs", "load", "merge_stores", "to_xarray", "StoreError", "SCHEMA_VERSION",
    "write_history", "read_history", "write_record", "read_record", "list_records",
    "agreement", "Agreement", "compare", "Comparison", "sweep", "SweepResult", "make_figure",
    "phase_diagram", "grokking_point", "PhaseDiagram", "PhasePoint",
]
