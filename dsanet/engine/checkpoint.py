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

Devices. :func:`load_checkpoint` reads the file onto the CPU, checks it there, then moves every
tensor to ``map_location`` except the random states (``"rng"``), which stay on the CPU whatever
the map location: ``torch.set_rng_state`` and every generator's ``set_state`` take a CPU
ByteTensor, and numpy reads its state from host memory. :func:`set_rng_state` also copies a state
tensor found on another device (a checkpoint loaded by hand with ``torch.load(map_location=...)``)
back to the CPU first; one on the ``meta`` device holds no data and is refused with a
:class:`CheckpointError`. A checkpoint may be resumed on another device or with its data cache
placed elsewhere; the rule for a ``torch.Generator`` whose saved state comes from another device
type than the generator it is restored into (a generator on the device of a cache that was on the
GPU and is now on the host, say; the states of a CPU and a CUDA generator are different objects,
5,056 and 16 bytes) is: the saved state is set only into a generator of the same device type;
otherwise the generator is reseeded with a seed derived from the saved state (the same checkpoint
resumed twice on the same placement continues identically) and a :class:`RandomStateWarning`
names the generator and both devices. The global CUDA states are restored on as many GPUs as
both the checkpoint and the machine have (none on a CPU-only machine).

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
import warnings
from pathlib import Path

import numpy as np
import torch

from ..config import Config, ConfigError
from .device import resolve_device

FORMAT = "dsanet-checkpoint-2"   # 2: with a sha256 checksum


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or not a dsanet checkpoint."""


class RandomStateWarning(UserWarning):
    """A random stream could not be restored exactly (a generator saved on another device type)
    and was reseeded deterministically instead."""


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
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    ``map_location`` (a device: "cpu", "cuda:1", ``torch.device``; None is the CPU): where its
    tensors go once the file is read and checked on the CPU, except the random states
    (``state["rng"]``), which stay on the CPU (:func:`set_rng_state` needs them there).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    device = torch.device("cpu" if map_location is None else map_location)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
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
    if device.type != "cpu":
        state = {k: v if k == "rng" else _to_device(v, device) for k, v in state.items()}
    return state


def _to_device(obj, device: torch.device):
    """``obj`` (tensors in dicts, lists and tuples) with every tensor moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


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
    ``cfg.device``) and :func:`build_network` on the device it resolves to ("auto" without a GPU:
    the CPU, with a warning for a paper-profile checkpoint; training there refuses instead)."""
    state = load_checkpoint(path)
    if device is not None:
        overrides["device"] = device
    cfg = Config.from_dict(state["config"]).replace(**overrides)
    return build_network(cfg, state["model"], resolve_device(cfg, fallback=True)), cfg, state


# ----------------------------------------------------------------------------- random streams

def _numpy_global_state() -> dict:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(gauss)}


def _set_numpy_global_state(s: dict) -> None:
    keys = _host(s["keys"], "numpy").numpy().astype(np.uint32)
    np.random.set_state((s["name"], keys, s["pos"], s["has_gauss"], s["gauss"]))


def _host(t, what: str) -> torch.Tensor:
    """A saved state tensor as a CPU tensor (copied from another device when it was mapped there)."""
    if not isinstance(t, torch.Tensor):
        return torch.as_tensor(t)
    if t.device.type == "meta":
        raise CheckpointError(f"random state {what!r} is on the meta device, which holds no data; "
                              "read checkpoints with load_checkpoint (random states stay on the "
                              "CPU whatever its map_location)")
    return t.detach().to("cpu")


def _byte_state(t, what: str) -> torch.Tensor:
    """A random state as the CPU ByteTensor ``torch.set_rng_state`` / ``set_state`` take."""
    return _host(t, what).to(torch.uint8).contiguous()


def rng_state(generators: dict[str, object] | None = None) -> dict:
    """Every random stream of the process, plus named ``torch.Generator`` / ``np.random.Generator``
    (a torch generator's state is saved with its device type, see :func:`set_rng_state`)."""
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
            state["generators"][name] = {"kind": "torch", "state": g.get_state(),
                                         "device": g.device.type}
        elif isinstance(g, np.random.Generator):
            state["generators"][name] = {"kind": "numpy", "state": g.bit_generator.state}
        else:
            raise TypeError(f"generator {name!r}: cannot save the state of {type(g).__name__}")
    return state


def set_rng_state(state: dict, generators: dict[str, object] | None = None) -> None:
    """Restore what :func:`rng_state` captured (the named generators are updated in place).

    The states are read from CPU copies wherever their tensors were mapped. A torch generator
    gets its saved state when it is on the device type the state was saved from; otherwise (a
    change of device or of cache placement on resume) it is reseeded from a seed derived from
    the saved state, with a :class:`RandomStateWarning` (rule in the module docstring). The
    global CUDA states go to the GPUs both the checkpoint and this machine have.
    """
    torch.set_rng_state(_byte_state(state["torch"], "torch"))
    saved_cuda = state.get("cuda") or []
    if saved_cuda and torch.cuda.is_available():
        n = min(len(saved_cuda), torch.cuda.device_count())
        for i in range(n):
            torch.cuda.set_rng_state(_byte_state(saved_cuda[i], f"cuda:{i}"), i)
        if n < max(len(saved_cuda), torch.cuda.device_count()):
            warnings.warn(f"the checkpoint holds the CUDA random states of {len(saved_cuda)} GPU(s) "
                          f"and this machine has {torch.cuda.device_count()}: restored on the "
                          f"first {n}", RandomStateWarning, stacklevel=2)
    _set_numpy_global_state(state["numpy"])
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    for name, g in (generators or {}).items():
        if name not in state["generators"]:
            raise CheckpointError(f"checkpoint has no state for random generator {name!r}")
        saved = state["generators"][name]
        if isinstance(g, torch.Generator):
            _set_generator_state(name, g, saved)
        else:
            g.bit_generator.state = saved["state"]


def _set_generator_state(name: str, g: torch.Generator, saved: dict) -> None:
    """Saved state into ``g`` when the device types agree; else a deterministic reseed and a
    warning. Checkpoints written before the device was recorded: tried, and reseeded when the
    state does not fit (its size is that of another device type's generator)."""
    data = _byte_state(saved["state"], name)
    was = saved.get("device")
    if was is None or was == g.device.type:
        try:
            g.set_state(data)
            return
        except RuntimeError as e:
            if was is not None:   # same device type and still refused: not a device change
                raise CheckpointError(f"cannot restore random generator {name!r}: {e}") from e
    seed = int.from_bytes(hashlib.sha256(name.encode() + data.numpy().tobytes()).digest()[:8],
                          "little") >> 1
    g.manual_seed(seed)
    warnings.warn(f"random generator {name!r}: its state was saved on "
                  f"{was or 'another device type'} ({data.numel()} bytes) and cannot be set into a "
                  f"generator on {g.device.type}; reseeded with {seed} derived from the saved "
                  "state (resuming this checkpoint again on this placement gives the same run; "
                  "its draws differ from those of an uninterrupted run)",
                  RandomStateWarning, stacklevel=3)
