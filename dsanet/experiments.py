"""Tables V-XII of the paper as named presets, and sweeps of them over seeds.

Each table is a :class:`Table`: its rows are ``(row name, Config overrides)`` on top of a base
profile config, and its columns say which run fills them (``k=10`` columns train a 10-way
classifier) and which metric cell of the run's tidy evaluation they read. :func:`run_table`
trains every (row, column-run, seed) once - runs are cached on disk under the hash of their
config, so a row shared by several tables (the DSANet row is in most of them) trains once - and
reduces each cell to a mean with a 95% interval over seeds, the paper's number beside it.

Row names are the paper's row labels (``dsanet.paper.table(name)``), so the two join one-to-one.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .config import Config

# ----------------------------------------------------------------------------- table specs


# What ranks the candidates of a matching tuple: "classifier" (the matching head's k logits, the
# paper's; docs/fidelity.md) and, beside it, "distance" (negative Euclidean distance of the
# embeddings, what the structured metric of eqs. 21-22 trains). Every table carries both.
SCORERS = ("classifier", "distance")

# Training steps per run of a table sweep, by profile (None: the profile's own steps). The quick
# sweep trains every row with the headline's recipe at 250 of its 2,400 steps: with 3 seeds per
# cell that is the most the main job's hour on 2 CPU cores holds (~135 runs); the validation
# curves show it is NOT the plateau (docs/fidelity.md, "Learning on the benchmark").
SWEEP_STEPS = {"smoke": 2, "quick": 250, "paper": None, "published": None}
# Steps of Table IV's published-script rows (None: the profile's). At quick sizes a step of the
# published preset costs ~3x ours (its CNN resizes the inputs up to 224 px), so the two runs get a
# quarter of the headline's steps, with the script's schedule scaled to them.
PUBLISHED_STEPS = {"quick": 600}
# Training seeds per cell: at least 3 for Tables V-XI (mean and Student-t interval), 1 for XII.
SWEEP_SEEDS = {"XII": 1}
DEFAULT_SEEDS = 3


def table_seeds(table: str, seeds: int | None = None, smoke: bool = False) -> list[int]:
    """Seeds of ``table``'s cells: ``seeds`` if given, else :data:`SWEEP_SEEDS` (1 in smoke)."""
    n = 1 if smoke else (seeds or SWEEP_SEEDS.get(get_table(table).name, DEFAULT_SEEDS))
    return list(range(int(n)))


@dataclass(frozen=True)
class Column:
    """One result column: the run that fills it and the metric cell read from that run."""

    name: str                   # header, e.g. "V-F" or "V-F (k=10)"
    key: str                    # the paper's column in dsanet.paper.table: "vf", "fv10", ...
    direction: str              # "vf" | "fv"
    k: int = 2                  # candidates per tuple, for training and for the accuracy read
    protocol: str = "U"         # "U" (unconstrained) | "G" (negatives of the anchor's gender)

    def run_overrides(self) -> dict:
        """Config changes for the run behind this column (``k`` candidates in training)."""
        return {"k": self.k} if self.k != 2 else {}

    def select(self, task: str, scorer: str = SCORERS[0]) -> dict:
        """Filters on the tidy metrics frame of a run of ``task`` that give this cell."""
        label = {"vf": "V-F", "fv": "F-V"}[self.direction]        # engine.evaluate's labels
        if task == "retrieval":
            return {"task": "retrieval", "direction": label, "metric": "map"}
        return {"task": "matching", "direction": label, "k": self.k,
                "protocol": self.protocol, "metric": "acc", "scorer": scorer}


@dataclass(frozen=True)
class Table:
    name: str                                   # the paper's numeral: "V" ... "XII"
    title: str
    rows: tuple[tuple[str, dict], ...]
    columns: tuple[Column, ...]
    note: str = ""                              # choices made where the paper is ambiguous


BINARY = (Column("V-F", "vf", "vf", 2), Column("F-V", "fv", "fv", 2))
MULTI = (Column("V-F (k=10)", "vf10", "vf", 10), Column("F-V (k=10)", "fv10", "fv", 10))

# Table V's components, as overrides; DSANet (row g) is the defaults.
BASELINE = {"structure": "gan", "enhancement": "none", "cls_loss": "bce"}   # one-stream adversarial
DEM_ONLY = {"structure": "gan", "enhancement": "dual", "cls_loss": "bce"}   # = VII "Concatenate"
DSANET: dict = {}


_PAPER_SYMBOL = {"lam": "lambda", "lam1": "lambda1"}   # Config field -> the paper's symbol
NOT_IN_PAPER = {"LSGAN"}   # rows of ours that the paper's tables do not have


def _sweep(field_: str, values, extra: dict | None = None) -> list[tuple[str, dict]]:
    """Rows ``"<symbol>=<value>"`` (the paper's labels) setting one Config field."""
    symbol = _PAPER_SYMBOL.get(field_, field_)
    return [(f"{symbol}={v:g}", {field_: v, **(extra or {})}) for v in values]


TABLES: dict[str, Table] = {t.name: t for t in [
    Table("V", "Ablation of DEM, SAS and AMCE (binary matching)", (
        ("a", BASELINE),
        ("b", DEM_ONLY),
        ("c", {"structure": "sas", "enhancement": "none", "cls_loss": "bce"}),
        ("d", {"structure": "gan", "enhancement": "none", "cls_loss": "amce"}),
        ("e", {"structure": "sas", "enhancement": "dual", "cls_loss": "bce"}),
        ("f", {"structure": "sas", "enhancement": "none", "cls_loss": "amce"}),
        ("g", DSANET),
    ), BINARY),
    Table("VI", "Cascaded DEM layers (2, 6, 14 streams)", (
        ("1-layer DEM", {"dem_layers": 1}),
        ("2-layer DEM", {"dem_layers": 2}),
        ("3-layer DEM", {"dem_layers": 3}),
    ), BINARY),
    Table("VII", "One adversarial stream (GAN) against the siamese structure (SAS)", (
        ("GAN baseline", BASELINE),
        ("GAN subtle", {"structure": "gan", "enhancement": "subtle", "cls_loss": "bce"}),
        ("GAN salient", {"structure": "gan", "enhancement": "salient", "cls_loss": "bce"}),
        ("GAN concatenate", DEM_ONLY),
        ("SAS subtle", {"structure": "sas", "enhancement": "subtle"}),
        ("SAS salient", {"structure": "sas", "enhancement": "salient"}),
        ("SAS subtle + salient", DSANET),
    ), BINARY, note="GAN rows use BCE (Baseline and Concatenate carry Table V(a), (b)'s numbers); "
                    "SAS rows use AMCE (the DSANet row is Table V(g))."),
    Table("VIII", "Classification losses (binary and 10-way)", tuple(
        (name, {"cls_loss": loss}) for name, loss in
        [("BCE", "bce"), ("GBCE", "gbce"), ("Focal", "focal"), ("AMCE", "amce")]
    ), BINARY + MULTI),
    Table("IX", "Adversarial networks (binary and 10-way)", tuple(
        (name, {"adversarial": adv}) for name, adv in
        [("GAN", "gan"), ("WGAN", "wgan"), ("LSGAN", "lsgan"), ("SAGAN", "sagan")]
    ), BINARY + MULTI, note="LSGAN (least squares, Mao et al. 2017) is not in the paper: it shows "
                            "that a registered variant (dsanet/variants.py) is one entry."),
    Table("X", "Metric losses (binary and 10-way)", tuple(
        (name, {"metric_loss": m}) for name, m in
        [("Triplet", "triplet"), ("Lifted Structure", "lifted"), ("Structure Metric", "structured")]
    ), BINARY + MULTI),
    Table("XI", "Feature selection strategies (binary matching)", (
        ("baseline", BASELINE),
        ("a", {"selection": "peak", "enhancement": "subtle"}),    # only peak suppression
        ("b", {"selection": "patch", "enhancement": "subtle"}),   # only patch suppression
        ("c", {"selection": "peak", "enhancement": "salient"}),   # only peak enhancement
        ("d", {"selection": "patch", "enhancement": "salient"}),  # only patch enhancement
        ("e", {"selection": "peak", "enhancement": "dual"}),      # only peak DSANet
        ("f", {"selection": "patch", "enhancement": "dual"}),     # only patch DSANet
        ("g", DSANET),                                            # peak + patch (DSANet)
    ), BINARY, note="Suppression = subtle stream only (eq. 9), enhancement = salient only (eq. 8), "
                    "both in the siamese structure."),
    Table("XII", "Hyper-parameters: matching (lambda ... r), retrieval mAP (lambda1, mu1)", tuple(
        _sweep("lam", [1.0, 1.5, 2.0, 2.5]) + _sweep("mu", [1.0, 2.0, 3.0, 4.0])
        + _sweep("alpha", [0.5, 1.0, 1.5, 2.0]) + _sweep("beta", [1.0, 0.9, 0.7, 0.5])
        + _sweep("c", [2, 3, 4, 5]) + _sweep("r", [2, 3, 4, 5])
        + _sweep("lam1", [0.05, 0.1, 0.2, 0.4], {"task": "retrieval"})
        + _sweep("mu1", [0.1, 0.2, 0.4, 0.6], {"task": "retrieval"})
    ), BINARY, note="lam1 / mu1 rows are retrieval runs; their cells are mAP, the others accuracy."),
]}


def table_names() -> list[str]:
    return list(TABLES)


def get_table(name: str) -> Table:
    key = str(name).upper().removeprefix("TABLE").strip()
    if key not in TABLES:
        raise KeyError(f"no preset table {name!r}; choose one of {table_names()}")
    return TABLES[key]


def presets(table: str) -> list[tuple[str, dict]]:
    """The rows of ``table`` as ``(row name, Config overrides)``, in the paper's order."""
    return [(row, dict(ov)) for row, ov in get_table(table).rows]


def budget(base: Config, steps: int | None = None) -> Config:
    """A base config for a sweep: ``steps`` per run (validation at half-way and at the end) and
    the two evaluation sizes the tables read (k = 2 and 10), the same for every table so that
    runs shared between tables are the same config and train once."""
    if steps is None or int(steps) == base.steps:
        return base
    return base.replace(steps=int(steps), eval_every=max(1, int(steps) // 2),
                        eval_ks=tuple(sorted({2, 10})))


def cell_configs(table: str, base: Config, seeds, rows: int | None = None
                 ) -> list[tuple[str, Column, int, Config]]:
    """Every (row, column, seed) of ``table`` with the config of the run behind it
    (only the first ``rows`` rows when given)."""
    t = get_table(table)
    out = []
    for row, ov in t.rows[:rows]:
        for col in t.columns:
            for s in seeds:
                cfg = base.replace(**{**ov, **col.run_overrides(), "seed": int(s)})
                out.append((row, col, int(s), cfg))
    return out


# ----------------------------------------------------------------------------- run cache

_NOT_HASHED = {"name", "device", "num_workers", "cache_dir", "profile", "amp", "log_every"}
# What a training run executes: these modules and every dsanet module they import (code_hash).
_TRAINING_ENTRY = ("dsanet.engine.train", "dsanet.engine.evaluate", "dsanet.config")


def _module_file(root: Path, module: str) -> Path | None:
    """The source file of dotted ``module`` ("dsanet.engine.train") in package directory ``root``,
    None when the name is not a module (``dsanet.config.Config``)."""
    base = root.joinpath(*module.split(".")[1:])
    for f in ((base.with_suffix(".py"),) if base != root else ()) + (base / "__init__.py",):
        if f.is_file():
            return f
    return None


def _dsanet_imports(file: Path, module: str) -> set[str]:
    """Dotted dsanet modules that ``file`` (the source of ``module``) imports, relative or absolute.

    A module's function-level imports count (training calls those functions); a package's
    ``__init__.py`` counts only its module-level ones, which are what importing a submodule runs
    (its functions, such as ``dsanet.load``, are entry points of their own)."""
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    nodes, found = list(tree.body), set()
    while nodes:
        node = nodes.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and file.name == "__init__.py":
            continue
        nodes.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            base = ".".join(parts + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from . import losses`
    return {m for m in found if m == "dsanet" or m.startswith("dsanet.")}


def training_files(root: str | Path | None = None) -> list[Path]:
    """The dsanet source files a training run executes, relative to the package directory ``root``
    (default: this package): :data:`_TRAINING_ENTRY` and, transitively, what they import and the
    packages above each (their ``__init__.py`` runs on import), found statically with ``ast``."""
    root = Path(root) if root is not None else Path(__file__).resolve().parent
    files: dict[str, Path] = {}
    todo = list(_TRAINING_ENTRY)
    while todo:
        mod = todo.pop()
        parts = mod.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
        f = _module_file(root, mod)
        if f is None or mod in files:
            continue
        files[mod] = f
        todo.extend(_dsanet_imports(f, mod))
    return sorted(f.relative_to(root) for f in files.values())


def _hash_files(root: Path) -> str:
    h = hashlib.sha256()
    for rel in training_files(root):  # sorted, so the hash does not depend on discovery order
        h.update(rel.as_posix().encode())
        h.update((root / rel).read_bytes())
    return h.hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def _package_code_hash() -> str:
    return _hash_files(Path(__file__).resolve().parent)


def code_hash(root: str | Path | None = None) -> str:
    """Hash of the code a training run executes (:func:`training_files`), so that a cached run is
    not reused after that code changed, while editing a module training never imports (tables,
    figures, notebooks' helpers) keeps the cache. ``root``: another copy of the package."""
    return _package_code_hash() if root is None else _hash_files(Path(root))


def config_hash(cfg: Config) -> str:
    """Hash of every setting that changes a run's result (not its name, device or workers) and of
    the training code (:func:`code_hash`)."""
    d = {k: v for k, v in sorted(cfg.to_dict().items()) if k not in _NOT_HASHED}
    d["_code"] = code_hash()
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=list).encode()).hexdigest()[:12]


def run_dir(cfg: Config, runs_root: str | Path = "runs") -> Path:
    return Path(runs_root) / f"{cfg.task}-{config_hash(cfg)}"


@dataclass
class Run:
    """A finished training run read back from its directory."""

    cfg: Config
    dir: Path
    metrics: pd.DataFrame                 # tidy test metrics (engine.evaluate.evaluate)
    history: pd.DataFrame                 # one row per logged step
    checkpoint: Path | None
    wall_s: float                         # training time when it was made
    cached: bool = False                  # True when read from disk instead of trained now


_DONE = "done.json"


def _load_run(cfg: Config, d: Path) -> Run | None:
    done = d / _DONE
    if not done.exists():
        return None
    info = json.loads(done.read_text())
    ckpt = d / info["checkpoint"] if info.get("checkpoint") else None   # a name inside d
    return Run(cfg, d, pd.read_csv(d / "metrics.csv"), pd.read_csv(d / "history.csv"),
               ckpt, float(info["wall_s"]), cached=True)


def cached_run(cfg: Config, runs_root: str | Path = "runs", progress: bool = False,
               snapshots: bool = False) -> Run:
    """Train ``cfg`` into ``runs_root/<task>-<hash>`` unless a finished run is there already.

    ``snapshots``: train in segments of ``cfg.eval_every`` steps and keep the model after each as
    ``snap_<step>.pt`` (for quantities tracked over training, e.g. the AMCE mask in notebook 03).
    A finished run keeps ``best.pt`` (the selected model) and drops the resumable ``last.pt``.
    """
    d = run_dir(cfg, runs_root)
    found = _load_run(cfg, d)
    if found is not None:
        return found
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, default=list))
    t0 = time.perf_counter()
    res = _train(cfg, d, progress, snapshots)
    wall = time.perf_counter() - t0
    res.metrics.to_csv(d / "metrics.csv", index=False)
    res.history.to_csv(d / "history.csv", index=False)
    ckpt = Path(res.checkpoint).name if res.checkpoint else None
    if ckpt != "last.pt":
        (d / "last.pt").unlink(missing_ok=True)
    (d / _DONE).write_text(json.dumps({"wall_s": wall, "checkpoint": ckpt}))
    return Run(cfg, d, res.metrics, res.history, d / ckpt if ckpt else None, wall)


def _train(cfg: Config, d: Path, progress: bool, snapshots: bool):
    """engine.train.train, in ``eval_every`` segments with a model snapshot after each if asked."""
    from .engine.checkpoint import load_checkpoint, save_checkpoint
    from .engine.train import train   # late: the engine imports torch and the data stack

    if not snapshots:
        return train(cfg, d, resume=True, progress=progress)
    while True:
        res = train(cfg, d, resume=True, progress=progress, max_steps_this_call=cfg.eval_every)
        state = load_checkpoint(d / "last.pt")
        save_checkpoint({k: state[k] for k in ("step", "config", "model")},
                        d / f"snap_{int(state['step']):06d}.pt")
        if res.finished:
            return res


def _expected_cost(cfg: Config) -> float:
    """A rough relative cost of a run (items per step x streams x steps), to start big runs first."""
    items = (cfg.k + 1) if cfg.task == "matching" else 2
    return cfg.steps * items * (1 + 0.2 * cfg.n_streams)


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


# ----------------------------------------------------------------------------- reduction

def read_cell(metrics: pd.DataFrame, select: dict) -> tuple[float, float, float]:
    """(value, ci_low, ci_high) of the one row of ``metrics`` matching ``select``.

    A ``scorer`` of "classifier" falls back to "distance" where the classifier was not evaluated
    (k other than the run's).
    """
    m = metrics
    for key, val in select.items():
        if key == "scorer":
            continue
        m = m[m[key] == val]
    if "scorer" in select and not m.empty:
        pick = m[m["scorer"] == select["scorer"]]
        m = pick if len(pick) else m[m["scorer"] == "distance"]
    if m.empty:
        raise KeyError(f"no metric row matches {select}")
    r = m.iloc[0]
    return float(r["value"]), float(r.get("ci_low", np.nan)), float(r.get("ci_high", np.nan))


def t_interval(values) -> tuple[float, float, float]:
    """Mean and two-sided 95% Student-t interval of ``values`` (n >= 2)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    n = v.size
    mean = float(v.mean())
    half = float(stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def reduce_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """Per ([scorer,] row, column): mean and 95% CI over seeds; one seed: the run's bootstrap CI."""
    keys = [k for k in ("scorer", "row", "column") if k in cells.columns]
    out = []
    for key, g in cells.groupby(keys, sort=False):
        if len(g) >= 2:
            mean, lo, hi = t_interval(g["value"])
            kind = f"t, {len(g)} seeds"
        else:
            mean, lo, hi = (float(g["value"].iloc[0]), float(g["ci_low"].iloc[0]),
                            float(g["ci_high"].iloc[0]))
            kind = "bootstrap, 1 seed"
        out.append({**dict(zip(keys, key)), "mean": mean, "ci_low": lo, "ci_high": hi,
                    "ci": kind, "n_seeds": len(g), "values": " ".join(f"{v:.4f}" for v in g["value"])})
    return pd.DataFrame(out)


def paper_numbers(table: str) -> pd.DataFrame:
    """The paper's numbers for ``table`` as (row, column, paper) in percent; empty if unknown."""
    from .paper import table as paper_table   # (``dsanet.paper`` the name is also a profile)

    return _paper_long(table, paper_table(get_table(table).name))


def _paper_long(table: str, wide: pd.DataFrame) -> pd.DataFrame:
    """Melt the paper's wide table to (row, column, paper) on this module's row/column names."""
    t = get_table(table)
    wide = wide.copy()
    if "row" in wide.columns:
        wide = wide.set_index("row")
    wide.index = wide.index.map(str)
    rows = []
    for row, _ in t.rows:
        for col in t.columns:
            val = np.nan
            if row in wide.index and col.key in wide.columns:
                val = float(wide.loc[row, col.key])
            rows.append({"row": row, "column": col.name, "paper": val})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- sweeps

@dataclass
class TableResult:
    """A table reduced over seeds (``cells``), its per-run values (``runs``) and how it was made."""

    table: Table
    cells: pd.DataFrame          # row, column, mean, ci_low, ci_high, ci, n_seeds, values, paper
    runs: pd.DataFrame           # row, column, seed, value, ci_low, ci_high, run, cached, wall_s
    made: dict = field(default_factory=dict)
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)   # claims.compare


def table_configs(tables, base_cfg: Config, seeds=(0,), steps: int | None = None,
                  rows: int | None = None) -> list[Config]:
    """The config of every cell of ``tables`` (duplicates included), as :func:`run_table` does."""
    base = budget(base_cfg, steps)
    return [c for t in tables for *_, c in cell_configs(t, base, seeds, rows)]


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
    from .paper import table as paper_table

    xii = paper_table("XII")
    return {r.param: float(r.setting) for r in xii.itertuples() if r.chosen}


def compare_rows(table: str, runs: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Each row against the table's reference row, with the paper's claim (:mod:`dsanet.claims`)."""
    from .claims import compare

    return compare(table, runs, cells, xii_defaults() if table == "XII" else None)


# ----------------------------------------------------------------------------- reports

def fmt_cell(mean: float, lo: float, hi: float, digits: int = 1) -> str:
    """``"91.2 ± 1.3"``: the mean and the half-width of its 95% interval (no ``±`` if unknown)."""
    if not np.isfinite(mean):
        return "-"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(hi - lo) / 2:.{digits}f}"


def wide(result: TableResult, scorer: str | None = None) -> pd.DataFrame:
    """One line per row: each column as "ours ± CI" with the paper's number beside it
    (the cells of ``scorer``; default: the first scorer of the table)."""
    cells = result.cells
    if "scorer" in cells.columns:
        cells = cells[cells["scorer"] == (scorer or cells["scorer"].iloc[0])]
    cells = cells.set_index(["row", "column"])
    comp = result.comparison
    if len(comp):
        comp = comp[comp["scorer"] == (scorer or comp["scorer"].iloc[0])].set_index(["row", "column"])
    lines = []
    for row, _ in result.table.rows:
        line = {"row": row}
        for col in result.table.columns:
            c = cells.loc[(row, col.name)]
            line[col.name] = fmt_cell(c["mean"], c["ci_low"], c["ci_high"])
            line[f"{col.name} paper"] = "-" if pd.isna(c.get("paper")) else f"{c['paper']:.1f}"
            line[f"{col.name} vs ref."] = _versus(comp, row, col.name)
        lines.append(line)
    return pd.DataFrame(lines)


def _versus(comp: pd.DataFrame, row: str, column: str) -> str:
    """"+1.2 ± 2.0, unresolved": the difference to the reference row and the paper's claim."""
    if not len(comp) or (row, column) not in comp.index:
        return "ref." if len(comp) and row in set(comp["reference"]) else "-"
    c = comp.loc[(row, column)]
    return f"{c['diff']:+.1f} ± {c['half']:.1f}, {c['verdict']}"


def wide_all(result: TableResult) -> pd.DataFrame:
    """:func:`wide` for every scorer of the table, stacked with a leading ``scorer`` column."""
    scorers = list(dict.fromkeys(result.cells["scorer"])) if "scorer" in result.cells else [None]
    parts = []
    for s in scorers:
        w = wide(result, s)
        w.insert(0, "scorer", s)
        parts.append(w)
    return pd.concat(parts, ignore_index=True)


def markdown(df: pd.DataFrame) -> str:
    """A GitHub Markdown table of ``df`` (all cells as text, no index)."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(str(v).replace("|", "/") for v in r) + " |"
            for r in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def how_made(made: dict) -> str:
    """One sentence saying how a table was produced (profile, steps, seeds, scorer, interval)."""
    parts = [f"profile `{made['profile']}`"] if made.get("profile") else []
    if made.get("steps"):
        parts.append(f"{made['steps']} steps per run, batch {made.get('batch_size')}, "
                     f"backbone `{made.get('backbone')}`")
    if made.get("scorer"):
        parts.append(f"matching scored by {made['scorer']}")
    seeds = made.get("seeds")
    if seeds is not None:
        parts.append(f"seeds {list(seeds)}")
    if made.get("steps"):
        ci = ("95% Student-t interval over seeds" if len(seeds or []) >= 2
              else "95% bootstrap interval over the test tuples (one seed)")
        parts.append(f"± is the half-width of the {ci}")
    extra = f" {made['note']}" if made.get("note") else ""
    if made.get("comparison"):
        extra += " " + " ".join(f"{s}: {line}." for s, line in made["comparison"].items())
        extra += (" \"vs ref.\": difference to the reference row (the paper's chosen variant) with "
                  "its 95% interval, and whether the paper's claim for the row holds, fails or "
                  "cannot be resolved at this size.")
    return "Made with " + ", ".join(parts) + "." + extra


def write_table(name: str, title: str, df, out_dir: str | Path,
                made: dict | None = None, long: pd.DataFrame | None = None) -> Path:
    """Write ``tables/table_<name>.md`` (title, how it was made, the table) and ``.csv``.

    ``df``: one frame, or a dict caption -> frame for several (e.g. one per scorer); ``long``
    (if given) is the tidy frame saved as the CSV, otherwise the frame(s) themselves.
    """
    d = Path(out_dir) / "tables"
    d.mkdir(parents=True, exist_ok=True)
    frames = df if isinstance(df, dict) else {"": df}
    csv = long if long is not None else pd.concat(
        [f.assign(**({"part": k} if k else {})) for k, f in frames.items()], ignore_index=True)
    csv.to_csv(d / f"table_{name}.csv", index=False)
    text = [f"### Table {name}: {title}", ""]
    if made:
        text += [how_made(made), ""]
        (d / f"table_{name}.json").write_text(json.dumps(made, indent=1, default=str))
    for caption, frame in frames.items():
        text += ([caption, ""] if caption else []) + [markdown(frame), ""]
    path = d / f"table_{name}.md"
    path.write_text("\n".join(text))
    return path


_SCORER_CAPTION = {
    "classifier": "Matching scored by the classifier (the paper's head; 10-way cells from the "
                  "10-way runs' head):",
    "distance": "Matching scored by embedding distance (what the metric of eqs. 21-22 trains):",
}


def write_result(result: TableResult, out_dir: str | Path) -> Path:
    """Write a swept table (:func:`run_table`) with :func:`write_table`."""
    long = result.cells.copy()
    long.insert(0, "table", result.table.name)
    scorers = list(dict.fromkeys(long["scorer"])) if "scorer" in long else [None]
    frames = {_SCORER_CAPTION.get(s, str(s)): wide(result, s) for s in scorers}
    if len(result.comparison):
        from .claims import summary_line

        result.made["comparison"] = {s: summary_line(result.comparison, s) for s in scorers}
    path = write_table(result.table.name, result.table.title, frames, out_dir, result.made, long)
    if len(result.comparison):
        result.comparison.to_csv(path.with_name(f"table_{result.table.name}_claims.csv"), index=False)
    return path
