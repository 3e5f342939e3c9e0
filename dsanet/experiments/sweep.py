"""Sweeps: train many runs in a process pool (:func:`run_many`), and fill a table over seeds from
cached runs (:func:`run_table`), reduced and compared row by row against its reference row.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from ..config import Config
from .cache import _DONE, cached_run, run_dir
from .cells import paper_numbers, read_cell, reduce_cells
from .tables import SCORERS, Table, budget, cell_configs, get_table, table_configs

# ----------------------------------------------------------------------------- process pool

def _expected_cost(cfg: Config) -> float:
    """A rough relative cost of a run (items per step x streams x steps), to start big runs first."""
    items = (cfg.k + 1) if cfg.task == "matching" else 2
    return cfg.steps * items * (1 + 0.2 * cfg.n_streams)


def _pretrain_inputs(cfg: Config) -> str:
    """What a run's pretrained backbones depend on: data, decoding, ``pretrain.FIELDS``."""
    from ..data.cache import _frontend_settings
    from ..engine.pretrain import FIELDS

    return repr((cfg.data_root, cfg.meta, cfg.voice_root, cfg.face_root, cfg.cache_dir,
                 _frontend_settings(cfg), [getattr(cfg, f) for f in FIELDS]))


def prepare_pretrained(cfg: Config) -> None:
    """Train and cache ``cfg``'s pretrained backbones now, if it uses them and they are missing.

    :func:`run_many` calls it in the parent process before its pool starts, so the pretraining
    (:mod:`dsanet.engine.pretrain`) runs once on every thread instead of in one single-threaded
    worker while the others wait on its lock.
    """
    if cfg.backbone_init != "identity" or cfg.init_from:
        return
    from ..engine import distributed as dist
    from ..engine.build import load_splits
    from ..engine.device import resolve_device
    from ..engine.pretrain import pretrained_backbones, pretrained_path

    train = load_splits(cfg, ["train"], dist.DistInfo())["train"]
    path = pretrained_path(cfg, train)
    if path is None or not path.is_file():
        pretrained_backbones(cfg, train, resolve_device(cfg))


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _worker_run(job: tuple[dict, str, bool]) -> tuple[str, float, bool]:
    cfg_dict, runs_root, snapshots = job
    run = cached_run(Config.from_dict(cfg_dict), runs_root, snapshots=snapshots)
    return run.dir.name, run.wall_s, run.cached


def run_many(cfgs, runs_root: str | Path = "runs", workers: int = 1, snapshots=(),
             log: Callable[[str], None] | None = print) -> int:
    """Train every config of ``cfgs`` not cached yet, in ``workers`` processes (1 thread each).

    ``snapshots``: configs among them to train with snapshots (see :func:`cached_run`). Runs are
    independent and land in their own folders, so the result does not depend on ``workers``.
    Returns the number of runs trained.
    """
    snap = {run_dir(c, runs_root) for c in snapshots}
    todo = {}
    for c in [*cfgs, *snapshots]:
        d = run_dir(c, runs_root)
        if d not in todo and not (d / _DONE).exists():
            todo[d] = c
    if workers > 1 and len(todo) > 1:   # pretrained backbones (if any) once, here, on every thread
        for c in {_pretrain_inputs(c): c for c in todo.values()}.values():
            prepare_pretrained(c)
    jobs = sorted(todo.items(), key=lambda kv: -_expected_cost(kv[1]))
    jobs = [(c.to_dict(), str(runs_root), d in snap) for d, c in jobs]
    t0 = time.perf_counter()
    if workers <= 1 or len(jobs) <= 1:
        done = map(_worker_run, jobs)
        pool = None
    else:
        import multiprocessing

        pool = multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)), _worker_init)
        done = pool.imap_unordered(_worker_run, jobs)
    try:
        for i, (name, wall, _) in enumerate(done, 1):
            if log:
                elapsed = time.perf_counter() - t0
                log(f"[{i}/{len(jobs)}] {name}: {wall:.0f} s (elapsed {elapsed:.0f} s)")
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return len(jobs)


# ----------------------------------------------------------------------------- sweeps

@dataclass
class TableResult:
    """A table reduced over seeds (``cells``), its per-run values (``runs``) and how it was made."""

    table: Table
    cells: pd.DataFrame          # row, column, mean, ci_low, ci_high, ci, n_seeds, values, paper
    runs: pd.DataFrame           # row, column, seed, value, ci_low, ci_high, run, cached, wall_s
    made: dict = field(default_factory=dict)
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)   # claims.compare


def plan(tables, base_cfg: Config, seeds=(0,), steps: int | None = None,
         runs_root: str | Path = "runs", rows: int | None = None) -> dict:
    """What :func:`run_table` over ``tables`` will do: cells, distinct runs, runs not yet cached."""
    cfgs = table_configs(tables, base_cfg, seeds, steps, rows)
    dirs = {run_dir(c, runs_root) for c in cfgs}
    return {"cells": len(cfgs), "runs": len(dirs), "steps": budget(base_cfg, steps).steps,
            "to_train": sum(not (d / _DONE).exists() for d in dirs)}


def run_table(table: str, base_cfg: Config, seeds=(0,), runs_root: str | Path = "runs",
              steps: int | None = None, progress: bool = False, scorers=SCORERS,
              rows: int | None = None, log: Callable[[str], None] | None = print) -> TableResult:
    """Train every cell of ``table`` over ``seeds`` (cached) and reduce it (mean, 95% CI, paper).

    ``steps`` shortens every run (see :func:`budget`); ``rows`` keeps the first rows only (smoke);
    ``scorers`` rank matching candidates (:data:`SCORERS`; one set of cells each; retrieval cells
    are distance-ranked mAP whatever the scorer). Values are percentages like the paper's.
    """
    t = get_table(table)
    base = budget(base_cfg, steps)
    recs = []
    t0 = time.perf_counter()
    for row, col, seed, cfg in cell_configs(t.name, base, seeds, rows):
        run = cached_run(cfg, runs_root, progress=progress)
        for scorer in scorers:
            v, lo, hi = read_cell(run.metrics, col.select(cfg.task, scorer))
            recs.append({"scorer": scorer, "row": row, "column": col.name, "seed": seed,
                         "value": 100 * v, "ci_low": 100 * lo, "ci_high": 100 * hi,
                         "run": run.dir.name, "cached": run.cached, "wall_s": run.wall_s})
        if log and not run.cached:
            log(f"table {t.name} | {row} | {col.name} | seed {seed}: {100 * v:.1f} "
                f"({run.wall_s:.0f} s)")
    runs = pd.DataFrame(recs)
    cells = reduce_cells(runs).merge(paper_numbers(t.name), on=["row", "column"], how="left")
    if rows is not None:
        t = dataclasses.replace(t, rows=t.rows[:rows])
    made = {"table": t.name, "profile": base.profile, "steps": base.steps, "scorers": list(scorers),
            "batch_size": base.batch_size, "backbone": base.backbone, "seeds": [int(s) for s in seeds],
            "eval_tuples": base.eval_tuples, "runs": int(runs["run"].nunique()),
            "trained_now": int((~runs.drop_duplicates("run")["cached"]).sum()),
            "wall_s": round(time.perf_counter() - t0, 1), "note": t.note}
    return TableResult(t, cells, runs, made, compare_rows(t.name, runs, cells))


def xii_defaults() -> dict[str, float]:
    """Table XII's chosen setting of each parameter (the paper's symbol -> value)."""
    from ..paper import table as paper_table

    xii = paper_table("XII")
    return {r.param: float(r.setting) for r in xii.itertuples() if r.chosen}


def compare_rows(table: str, runs: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Each row against the table's reference row, with the paper's claim (:mod:`dsanet.claims`)."""
    from ..claims import compare

    return compare(table, runs, cells, xii_defaults() if table == "XII" else None)

