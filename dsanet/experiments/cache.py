"""The run cache: runs live in ``runs_root/<task>-<hash>`` keyed by the hash of their config and
of the code a training run executes (:func:`code_hash`, an ``ast`` walk of what training imports),
trained once and read back as :class:`Run` objects afterwards.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config import Config

# ----------------------------------------------------------------------------- run cache

_NOT_HASHED = {"name", "device", "num_workers", "cache_dir", "profile", "amp", "log_every"}
# What a training run executes: these modules and every dsanet module they import (code_hash).
_TRAINING_ENTRY = ("dsanet.engine.train", "dsanet.engine.evaluate", "dsanet.config")
# The dsanet package directory (this module is dsanet/experiments/cache.py).
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


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
    (default: the dsanet package this module is part of): :data:`_TRAINING_ENTRY` and,
    transitively, what they import and the packages above each (their ``__init__.py`` runs on
    import), found statically with ``ast``."""
    root = Path(root) if root is not None else _PACKAGE_DIR
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
    return _hash_files(_PACKAGE_DIR)


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
    identity: pd.DataFrame | None = None  # per-identity test values (engine.evaluate.Evaluation;
                                          # identity.csv), None for runs made without it


_DONE = "done.json"


def _load_run(cfg: Config, d: Path) -> Run | None:
    done = d / _DONE
    if not done.exists():
        return None
    info = json.loads(done.read_text())
    ckpt = d / info["checkpoint"] if info.get("checkpoint") else None   # a name inside d
    ident = pd.read_csv(d / "identity.csv") if (d / "identity.csv").exists() else None
    return Run(cfg, d, pd.read_csv(d / "metrics.csv"), pd.read_csv(d / "history.csv"),
               ckpt, float(info["wall_s"]), cached=True, identity=ident)


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
    identity = getattr(res, "identity", None)
    if identity is not None:   # beside metrics.csv, before done.json marks the run finished
        identity.to_csv(d / "identity.csv", index=False)
    res.history.to_csv(d / "history.csv", index=False)
    ckpt = Path(res.checkpoint).name if res.checkpoint else None
    if ckpt != "last.pt":
        (d / "last.pt").unlink(missing_ok=True)
    (d / _DONE).write_text(json.dumps({"wall_s": wall, "checkpoint": ckpt}))
    return Run(cfg, d, res.metrics, res.history, d / ckpt if ckpt else None, wall,
               identity=identity)


def _train(cfg: Config, d: Path, progress: bool, snapshots: bool):
    """engine.train.train, in ``eval_every`` segments with a model snapshot after each if asked."""
    from ..engine.checkpoint import load_checkpoint, save_checkpoint
    from ..engine.train import train   # late: the engine imports torch and the data stack

    if not snapshots:
        return train(cfg, d, resume=True, progress=progress)
    while True:
        res = train(cfg, d, resume=True, progress=progress, max_steps_this_call=cfg.eval_every)
        state = load_checkpoint(d / "last.pt")
        save_checkpoint({k: state[k] for k in ("step", "config", "model")},
                        d / f"snap_{int(state['step']):06d}.pt")
        if res.finished:
            return res
