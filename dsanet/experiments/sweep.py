"""Sweeps: train many runs (:func:`run_many`, on an executor of :mod:`.executors`), and fill a
table over seeds from cached runs (:func:`run_table`), reduced and compared row by row against
its reference row.
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
from .executors import EXECUTORS, Progress, local_pool, ray_pool
from .cells import identity_records, paper_numbers, read_cell, reduce_identity_cells
from .tables import SCORERS, Table, budget, cell_configs, get_table, table_configs

# ----------------------------------------------------------------------------- training runs

def _pretrain_inputs(cfg: Config) -> str:
    """What a run's pretrained backbones depend on: data, decoding, ``pretrain.FIELDS``."""
    from ..data.cache import _frontend_settings
    from ..engine.pretrain import FIELDS

    return repr((cfg.data_root, cfg.meta, cfg.voice_root, cfg.face_root, cfg.cache_dir,
                 cfg.split_protocol, cfg.split_lists,
                 _frontend_settings(cfg), [getattr(cfg, f) for f in FIELDS]))


def prepare_pretrained(cfg: Config) -> None:
    """Train and cache ``cfg``'s pretrained backbones now, if it uses them and they are missing,
    and, under the sweep protocol (``backbone_train="frozen"``), their training maps.

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
    if cfg.backbone_train == "frozen":   # and the sweep protocol's maps of those backbones
        from ..engine.maps import training_maps
        from ..engine.pretrain import init_backbones
        from ..models.dsanet import DSANet

        model = DSANet(cfg)
        init_backbones(model, cfg, train, resolve_device(cfg))
        training_maps(model.to(resolve_device(cfg)), train, cfg, resolve_device(cfg))


def run_many(cfgs, runs_root: str | Path = "runs", workers: int = 1, snapshots=(),
             log: Callable[[str], None] | None = print, executor: str = "local",
             address: str | None = None, cpus_per_run: int = 1,
             gpus_per_run: float | None = None, bar: bool = False) -> int:
    """Train every config of ``cfgs`` not cached yet -> the number of runs trained.

    ``executor``: ``"local"`` (``workers`` processes of one thread on this machine) or ``"ray"``
    (Ray tasks on a local Ray of ``workers`` x ``cpus_per_run`` CPUs, or on the cluster at
    ``address``, each with ``gpus_per_run`` of a GPU): :mod:`.executors`. ``snapshots``: configs
    among them to train with snapshots (see :func:`cached_run`). Runs are independent and land in
    their own folders, so the result depends neither on ``workers`` nor on the executor.
    ``log``: a line per finished run (or ``bar``: a tqdm bar).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    snap = {run_dir(c, runs_root) for c in snapshots}
    todo = {}
    for c in [*cfgs, *snapshots]:
        d = run_dir(c, runs_root)
        if d not in todo and not (d / _DONE).exists():
            todo[d] = c
    if not todo:
        return 0
    if (executor == "ray" or workers > 1) and len(todo) > 1:
        # pretrained backbones (and sweep maps) once, here, on every thread: not in each worker
        for c in {_pretrain_inputs(c): c for c in todo.values()}.values():
            prepare_pretrained(c)
    progress = Progress(len(todo), log, bar)
    try:
        if executor == "ray":
            return ray_pool(todo, snap, runs_root, workers, progress, address, cpus_per_run,
                            gpus_per_run, log)
        return local_pool(todo, snap, runs_root, workers, progress)
    finally:
        progress.close()


# ----------------------------------------------------------------------------- sweeps

@dataclass
class TableResult:
    """A table reduced over seeds (``cells``), its per-run values (``runs``), their per-identity
    values (``identity``), the comparisons with the reference row and how it was made."""

    table: Table
    cells: pd.DataFrame          # row, column, mean, ci_low, ci_high, ci, n_seeds, values, paper
    runs: pd.DataFrame           # row, column, seed, value, ci_low, ci_high, run, cached, wall_s
    made: dict = field(default_factory=dict)
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)   # claims.compare
    # scorer, row, column, seed, identity, value (percent), weight, metric, k, run (claims' input)
    identity: pd.DataFrame = field(default_factory=pd.DataFrame)


def plan(tables, base_cfg: Config, seeds=(0,), steps: int | None = None,
         runs_root: str | Path = "runs", rows: int | None = None) -> dict:
    """What :func:`run_table` over ``tables`` will do: cells, distinct runs, runs not yet cached."""
    cfgs = table_configs(tables, base_cfg, seeds, steps, rows, runs_root)
    dirs = {run_dir(c, runs_root) for c in cfgs}
    return {"cells": len(cfgs), "runs": len(dirs), "steps": budget(base_cfg, steps).steps,
            "to_train": sum(not (d / _DONE).exists() for d in dirs)}


def run_table(table: str, base_cfg: Config, seeds=(0,), runs_root: str | Path = "runs",
              steps: int | None = None, progress: bool = False, scorers=SCORERS,
              rows: int | None = None, log: Callable[[str], None] | None = print,
              seed_prior: pd.DataFrame | None = None) -> TableResult:
    """Train every cell of ``table`` over ``seeds`` (cached) and reduce it (mean, 95% CI, paper).

    ``steps`` shortens every run (see :func:`budget`); ``rows`` keeps the first rows only (smoke);
    ``scorers`` rank matching candidates (:data:`SCORERS`; one set of cells each; retrieval cells
    are distance-ranked mAP whatever the scorer). Values are percentages like the paper's.
    Intervals cover seeds and test identities where the runs hold per-identity values
    (:mod:`dsanet.claims`); ``seed_prior`` (:func:`dsanet.claims.pooled_seed_variance` of other
    tables) gives a seed variance to a table with one seed per row (Table XII).
    """
    t = get_table(table)
    base = budget(base_cfg, steps)
    recs, ident = [], []
    t0 = time.perf_counter()
    for row, col, seed, cfg in cell_configs(t.name, base, seeds, rows, runs_root):
        run = cached_run(cfg, runs_root, progress=progress)
        for scorer in scorers:
            sel = col.select(cfg.task, scorer)
            v, lo, hi = read_cell(run.metrics, sel)
            recs.append({"scorer": scorer, "row": row, "column": col.name, "seed": seed,
                         "value": 100 * v, "ci_low": 100 * lo, "ci_high": 100 * hi,
                         "run": run.dir.name, "cached": run.cached, "wall_s": run.wall_s})
            ident.append(identity_records(run, sel, v, scorer=scorer, row=row, column=col.name,
                                          seed=seed, metric=sel["metric"],
                                          k=sel.get("k", float("nan")), run=run.dir.name))
        if log and not run.cached:
            log(f"table {t.name} | {row} | {col.name} | seed {seed}: {100 * v:.1f} "
                f"({run.wall_s:.0f} s)")
    runs = pd.DataFrame(recs)
    identity = pd.concat(ident, ignore_index=True)
    cells = reduce_identity_cells(identity, runs, seed_prior).merge(
        paper_numbers(t.name), on=["row", "column"], how="left")
    if rows is not None:
        t = dataclasses.replace(t, rows=t.rows[:rows])
    made = {"table": t.name, "profile": base.profile, "steps": base.steps, "scorers": list(scorers),
            "batch_size": base.batch_size, "backbone": base.backbone, "seeds": [int(s) for s in seeds],
            "eval_tuples": base.eval_tuples, "runs": int(runs["run"].nunique()),
            "trained_now": int((~runs.drop_duplicates("run")["cached"]).sum()),
            "wall_s": round(time.perf_counter() - t0, 1), "note": t.note,
            "interval": _interval_kind(identity, seeds, seed_prior),
            "protocol": base.backbone_train}
    comparison = compare_rows(t.name, identity, cells, seed_prior)
    if len(comparison):
        made["correction"] = comparison["correction"].iloc[0].split(",")[0]
    return TableResult(t, cells, runs, made, comparison, identity)


def _interval_kind(identity: pd.DataFrame, seeds, seed_prior=None) -> str:
    """What a table's "±" covers, for :func:`dsanet.experiments.how_made`."""
    many = len(list(seeds)) >= 2
    if identity["identity"].notna().all():
        if many:
            return "seeds and test identities"
        if seed_prior is not None and len(seed_prior):
            return "seeds (variance borrowed from other tables) and test identities"
        return "test identities (one seed, no seed variance: no interval)"
    return "seeds" if many else "test tuples (bootstrap, one seed)"


def xii_defaults() -> dict[str, float]:
    """Table XII's chosen setting of each parameter (the paper's symbol -> value)."""
    from ..paper import table as paper_table

    xii = paper_table("XII")
    return {r.param: float(r.setting) for r in xii.itertuples() if r.chosen}


def compare_rows(table: str, records: pd.DataFrame, cells: pd.DataFrame,
                 seed_prior: pd.DataFrame | None = None, **kw) -> pd.DataFrame:
    """Each row against the table's reference row, with the paper's claim and the verdict
    (:func:`dsanet.claims.compare`): ``records`` the per-identity values (``TableResult.identity``),
    ``cells`` the paper's numbers (column ``paper``); ``kw`` to :func:`~dsanet.claims.compare`."""
    from ..claims import compare

    return compare(table, records, cells, xii_defaults() if table == "XII" else None,
                   prior=seed_prior, **kw)

