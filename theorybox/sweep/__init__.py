"""Sweeps: grids of datasets x optimizers x hyperparameters x seeds on Dask.

A sweep is a TOML file (:func:`load_spec`), expanded into cells with stable ids
(:class:`Cell`), run by :func:`run_sweep` on a local or existing Dask cluster into
one tidy table, resumable, with failed cells recorded rather than fatal. See
``docs/sweeps.md``. Dask (``distributed``) is imported only when a sweep runs.
"""

from theorybox.sweep.cli import register_cli
from theorybox.sweep.runner import (
    FAILED_STATUSES,
    ROW_COLUMNS,
    SweepResult,
    plot_sweep,
    read_rows,
    run_cell,
    run_sweep,
    write_table,
)
from theorybox.sweep.spec import (
    Cell,
    DatasetEntry,
    SweepSpec,
    SweepSpecError,
    expand,
    load_spec,
    parse_spec,
)

__all__ = [
    "FAILED_STATUSES",
    "ROW_COLUMNS",
    "Cell",
    "DatasetEntry",
    "SweepResult",
    "SweepSpec",
    "SweepSpecError",
    "expand",
    "load_spec",
    "parse_spec",
    "plot_sweep",
    "read_rows",
    "register_cli",
    "run_cell",
    "run_sweep",
    "write_table",
]
