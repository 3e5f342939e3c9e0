"""Checkpoints that survive a crash mid-write and load with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors, dicts, lists, numbers and strings:

``{"format", "step", "config", "model", "optimizers", "schedulers", "rng", "history",
"best", "extra"}``

``save_checkpoint`` writes to a temporary file in the same folder, flushes and fsyncs it and
renames it over the target with ``os.replace`` (atomic on POSIX and Windows), so a reader sees the
old file or the new one, never half of one. ``rng_state()`` / ``set_rng_state()`` carry every
random stream a run draws from (torch CPU and CUDA, numpy's global and Generator streams, Python's
``random``, and torch Generators), converted to plain types so that ``weights_only`` accepts them.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

FORMAT = "dsanet-checkpoint-1"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or not a dsanet checkpoint."""


# ----------------------------------------------------------------------------- files

def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (tmp file in the same dir, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX only; Windows has no directory handles)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the file named
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a dsanet checkpoint (format {state.get('format')!r})"
                              if isinstance(state, dict) else f"{path}: not a dsanet checkpoint")
    return state


# ----------------------------------------------------------------------------- random streams

def _numpy_global_state() -> dict:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _set_numpy_global_state(s: dict) -> None:
    keys = s["keys"].numpy().astype(np.uint32)
    np.random.set_state((s["name"], keys, s["pos"], s["has_gauss"], s["gauss"]))


def rng_state(generators: dict[str, object] | None = None) -> dict:
    """Every random stream of the process, plus named ``torch.Generator`` / ``np.random.Generator``."""
    py = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": _numpy_global_state(),
        "python": {"version": py[0], "state": list(py[1]),
                   "gauss": py[2] if py[2] is None else float(py[2])},
        "generators": {},
    }
    for name, g in (generators or {}).items():
        if isinstance(g, torch.Generator):
            state["generators"][name] = {"kind": "torch", "state": g.get_state()}
        elif isinstance(g, np.random.Generator):
            state["generators"][name] = {"kind": "numpy", "state": g.bit_generator.state}
        else:
            raise TypeError(f"generator {name!r}: cannot save the state of {type(g).__name__}")
    return state


def set_rng_state(state: dict, generators: dict[str, object] | None = None) -> None:
    """Restore what :func:`rng_state` captured (the named generators are updated in place)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    _set_numpy_global_state(state["numpy"])
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    for name, g in (generators or {}).items():
        if name not in state["generators"]:
            raise CheckpointError(f"checkpoint has no state for random generator {name!r}")
        saved = state["generators"][name]
        if isinstance(g, torch.Generator):
            g.set_state(saved["state"])
        else:
            g.bit_generator.state = saved["state"]
