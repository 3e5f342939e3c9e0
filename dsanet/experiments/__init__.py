"""Tables V-XII of the paper as named presets, and sweeps of them over seeds.

Each table is a :class:`Table`: its rows are ``(row name, Config overrides)`` on top of a base
profile config, and its columns say which run fills them (``k=10`` columns train a 10-way
classifier) and which metric cell of the run's tidy evaluation they read. :func:`run_table`
trains every (row, column-run, seed) once - runs are cached on disk under the hash of their
config, so a row shared by several tables (the DSANet row is in most of them) trains once - and
reduces each cell to a mean with a 95% interval over seeds, the paper's number beside it.

Row names are the paper's row labels (``dsanet.paper.table(name)``), so the two join one-to-one.

The package is split by role; every name is importable from here:

- :mod:`.tables`: the :class:`Table` / :class:`Column` specs and presets, sweep budgets and seeds,
  the config of every cell;
- :mod:`.cache`: the run cache (code hash of what training imports, run directories keyed by the
  config hash, :class:`Run`, :func:`cached_run`);
- :mod:`.cells`: reading cells (and their per-identity values) from a run, reducing them over
  seeds (and test identities), the paper's numbers;
- :mod:`.executors`: how missing runs are trained: a local process pool, or Ray tasks on a local
  Ray or a cluster;
- :mod:`.sweep`: :func:`run_many` (on an executor), :func:`plan` and :func:`run_table`;
- :mod:`.report`: "ours ± CI" frames, Markdown and the table files.
"""
from __future__ import annotations

from .cache import (_DONE, _NOT_HASHED, _TRAINING_ENTRY, Run, _dsanet_imports, _hash_files,
                    _load_run, _module_file, _package_code_hash, _train, cached_run, code_hash,
                    config_hash, run_dir, training_files)
from .cells import (_paper_long, identity_records, paper_numbers, read_cell, read_identity,
                    reduce_cells, reduce_identity_cells, t_interval)
from .report import (_SCORER_CAPTION, PLUS_MINUS, _versus, fmt_cell, how_made, markdown, wide,
                     wide_all, write_result, write_table, run_tables, SweepOutput, sweep_tables)
from .executors import EXECUTORS, ClusterError, Job, expected_cost, train_one
from .sweep import TableResult, compare_rows, plan, run_many, run_table, xii_defaults
from .tables import (BASELINE, BINARY, DEFAULT_SEEDS, DEM_ONLY, DSANET, MULTI, NOT_IN_PAPER,
                     PUBLISHED_STEPS, SCORERS, SWEEP_SEEDS, SWEEP_STEPS, TABLES, _PAPER_SYMBOL,
                     Column, Table, _sweep, budget, cell_configs, get_table, presets, table_configs,
                     table_names, table_seeds)

__all__ = [
    # tables
    "BASELINE", "BINARY", "DEFAULT_SEEDS", "DEM_ONLY", "DSANET", "MULTI", "NOT_IN_PAPER",
    "PUBLISHED_STEPS", "SCORERS", "SWEEP_SEEDS", "SWEEP_STEPS", "TABLES", "Column", "Table",
    "budget", "cell_configs", "get_table", "presets", "table_configs", "table_names",
    "table_seeds",
    # cache
    "Run", "cached_run", "code_hash", "config_hash", "run_dir", "training_files",
    # cells
    "identity_records", "paper_numbers", "read_cell", "read_identity", "reduce_cells",
    "reduce_identity_cells", "t_interval",
    # executors
    "EXECUTORS", "ClusterError", "Job", "expected_cost", "train_one",
    # sweep
    "TableResult", "compare_rows", "plan", "run_many", "run_table", "xii_defaults",
    # report
    "PLUS_MINUS", "SweepOutput", "run_tables", "sweep_tables", "fmt_cell", "how_made", "markdown", "wide", "wide_all", "write_result", "write_table",
]
