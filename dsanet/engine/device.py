"""Where a run computes, and the small device-side conveniences around it.

* ``resolve_device(cfg)``: ``"auto"`` -> ``cuda`` when available, else ``cpu``.
* ``autocast(device, enabled)``: bf16 autocast on CUDA (no loss scaling needed for bf16); a no-op
  context on CPU, where bf16 autocast would be slower than float32 on most hosts.
* ``to_device(x, device)``: non-blocking copies (from pinned memory when the source is on the host).
* ``place_cached(cached, device)``: move a whole decoded cache onto the GPU once when it fits in
  a fraction of the free memory, so that batches are gathered on the device by indexing alone.

No DataLoader workers are needed: the decoded inputs of a split sit in memory (or on the GPU) as
two big tensors and a batch is one vectorised index + crop/flip, far cheaper than a training step
(see ``benchmarks/input_pipeline.py``: ~30x the step's throughput on CPU). ``cfg.num_workers`` is
used where files are decoded: the cache build and the raw-file path of that benchmark.
"""
from __future__ import annotations

import contextlib
import dataclasses

import torch

from ..config import Config


def resolve_device(cfg: Config | str) -> torch.device:
    """``cfg.device`` as a ``torch.device``; "auto" picks CUDA when there is one."""
    name = cfg if isinstance(cfg, str) else cfg.device
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but CUDA is not available on this machine")
    return device


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA when ``enabled``; a null context elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(x, device: torch.device):
    """Tensors (or tuples/lists/dicts of them) onto ``device`` without blocking the host."""
    if isinstance(x, torch.Tensor):
        if x.device == device:
            return x
        if device.type == "cuda" and x.device.type == "cpu" and not x.is_pinned():
            x = x.pin_memory()
        return x.to(device, non_blocking=True)
    if isinstance(x, (list, tuple)):
        return type(x)(to_device(v, device) for v in x)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    return x


def _tensor_fields(obj) -> dict[str, torch.Tensor]:
    if dataclasses.is_dataclass(obj):
        items = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    else:
        items = dict(vars(obj))
    return {k: v for k, v in items.items() if isinstance(v, torch.Tensor)}


def place_cached(cached, device: torch.device, max_fraction: float = 0.5):
    """Move every tensor of a cached split to ``device`` once, when it fits.

    On CUDA the tensors go over only if their total size is below ``max_fraction`` of the free
    memory; otherwise they stay memory-mapped on the host and each gathered batch is pinned and
    copied (:func:`to_device`). On CPU the split is returned unchanged.
    """
    if device.type != "cuda":
        return cached
    tensors = _tensor_fields(cached)
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    free, _ = torch.cuda.mem_get_info(device)
    if size >= max_fraction * free:
        return cached
    moved = {k: t.to(device) for k, t in tensors.items()}
    if dataclasses.is_dataclass(cached):
        return dataclasses.replace(cached, **moved)
    for k, v in moved.items():
        setattr(cached, k, v)
    return cached

