"""Checkpoints that survive a crash mid-write and load with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors, dicts, lists, numbers and strings:

``{"format", "step", "config", "model", "optimizers", "schedulers", "rng", "history",
"best", "extra"}``

``save_checkpoint`` writes to a temporary file in the same folder, flushes and fsyncs it and
renames it over the target with ``os.replace`` (atomic on POSIX and Windows), so a reader sees the
old file or the new one, never half of one. A full disk fails with a :class:`CheckpointError`
naming the folder, the space needed and the space left; the old file is kept.

Every checkpoint carries a sha256 ``"checksum"`` over its content (keys, numbers, strings and the
bytes, dtype and shape of every tensor, in order); :func:`load_checkpoint` recomputes it, so a
flipped byte is refused, never evaluated. A saved ``"config"`` is checked against
:mod:`dsanet.config`'s rules when loading; a wrong one is refused with the file named.

``rng_state()`` / ``set_rng_state()`` carry every random stream a run draws from (torch CPU and
CUDA, numpy's global and Generator streams, Python's ``random``, and torch Generators), converted
to plain types so that ``weights_only`` accepts them.

:func:`build_network` / :func:`load_network` are the one way a trained DSANet is rebuilt from a
checkpoint (``inference.load``, ``train.evaluate_checkpoint`` and ``analysis.load_model`` call
them).
"""
from __future__ import annotations

import errno
import hashlib
import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..config import Config, ConfigError
from .device import resolve_device

FORMAT = "dsanet-checkpoint-2"   # 2: with a sha256 checksum


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or not a dsanet checkpoint."""


# ----------------------------------------------------------------------------- files

def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (tmp file in the same dir, fsync, ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"format": FORMAT, **{k: v for k, v in state.items() if k != "checksum"}}
    body["checksum"] = checksum(body)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(body, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        Path(tmp).unlink(missing_ok=True)
        full = _disk_full(e, path.parent, _tensor_bytes(body))
        if full:
            raise CheckpointError(f"{path}: cannot write the checkpoint, {full}; the previous "
                                  "file (if any) is unchanged") from e
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _disk_full(error: BaseException, folder: Path, need: int) -> str | None:
    """Words for a full disk when ``error`` is ENOSPC or the folder has less than ``need`` free."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    enospc = isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
    if enospc or (free is not None and free < need):
        left = "unknown" if free is None else f"{free / 1e6:.1f} MB"
        return (f"no space left on the device of {folder} (needs about {need / 1e6:.1f} MB, "
                f"{left} free)")
    return None


def _tensor_bytes(obj) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def checksum(state) -> str:
    """sha256 hex digest of a checkpoint's content, the ``"checksum"`` entry itself left out."""
    h = hashlib.sha256()
    _digest(h, {k: v for k, v in state.items() if k != "checksum"})
    return h.hexdigest()


def _digest(h, obj) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k, v in obj.items():
            _digest(h, k)
            _digest(h, v)
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for v in obj:
            _digest(h, v)
    else:   # None, bool, int, float, str, bytes: their repr is exact (floats round-trip)
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


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
    if state.get("checksum") != checksum(state):
        raise CheckpointError(f"{path}: checksum mismatch, the file is damaged (its content "
                              "differs from what was written); not loaded")
    if isinstance(state.get("config"), dict):
        try:
            Config.from_dict(state["config"])
        except (ConfigError, TypeError) as e:
            raise CheckpointError(f"{path}: the saved config is invalid ({e})") from e
    return state


# ----------------------------------------------------------------------------- models

def build_network(cfg: Config, state: dict, device="cpu") -> torch.nn.Module:
    """DSANet of ``cfg`` with the checkpoint's weights (``state["model"]``), on ``device``, in
    evaluation mode."""
    from ..models.dsanet import DSANet   # the models (torchvision) only when one is built

    net = DSANet(cfg)
    if "centres" in state:
        net.init_centres(state["centres"].shape[1])
    net.load_state_dict(state)
    return net.to(device).eval()


def load_network(path: str | Path, device: str | None = None,
                 **overrides) -> tuple[torch.nn.Module, Config, dict]:
    """``(network, config, state)`` of a checkpoint file: the saved config with ``overrides``
    (Config fields such as ``data_root``; ``device`` "cpu", "cuda", "auto", default the saved
    ``cfg.device``) and :func:`build_network` on the device it resolves to."""
    state = load_checkpoint(path)
    if device is not None:
        overrides["device"] = device
    cfg = Config.from_dict(state["config"]).replace(**overrides)
    return build_network(cfg, state["model"], resolve_device(cfg)), cfg, state


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
