"""Data-parallel training under ``torchrun`` (DistributedDataParallel; gloo on CPU, nccl on CUDA).

How the trainer uses it:

* every rank draws the same global batch (same sampling seed) and keeps its contiguous slice
  (``rank_slice``), so W ranks see exactly the items one process would see;
* a global batch of n that W does not divide is cut to the largest that W divides,
  ``W * (n // W)`` (:func:`split_size`): every rank takes ``n // W`` items and the last ``n % W``
  items of each drawn batch are left out (the draws are random, so no item is favoured; with a
  fixed training list, ``cfg.train_list_epochs``, the same tail tuples are left out every epoch),
  with a warning once per (n, W). Equal slices keep the DDP mean of the per-rank means equal to the mean
  over the items trained on. A batch of 50 on 4 GPUs trains on 48 a step (12 per rank); choose a
  batch size W divides to train on all of it. A batch smaller than W is refused;
* the generator-side modules (backbones, DEM, generator, classifier or retrieval head) are wrapped
  in one ``DistributedDataParallel``; its gradient all-reduce averages the per-rank means, which
  equals the global-batch mean because every loss is a mean over its tuples;
* the discriminator is left out of that wrapper (its parameters are frozen while it is built) and
  its small gradient is averaged by hand (``average_gradients``) after the discriminator step:
  the discriminator trains on detached embeddings between the generator-side forward and
  backward, which one DDP reducer cannot follow;
* logged loss sums are all-reduced at each log interval, so every rank sees the same numbers and
  the NaN guard stops all ranks at once; only rank 0 evaluates and writes checkpoints.

BatchNorm: each rank normalises with the statistics of its own slice (as plain DDP does).
``cfg.sync_bn`` converts BatchNorm layers to ``SyncBatchNorm`` on CUDA (PyTorch offers it only
there). ``cfg.freeze_bn`` keeps BatchNorm layers on their running statistics, which makes every loss
term separable per tuple, so W ranks then match one process on the global batch up to float
summation order (the DDP test relies on it).
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import warnings

import torch
import torch.distributed as dist
from torch import nn


@dataclasses.dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """Rank and world size from the environment ``torchrun`` sets (1 process when absent)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)))


def init(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by ``torchrun``; the device of this rank.

    On CUDA each rank takes ``cuda:LOCAL_RANK``. Already-initialised groups are reused. The
    collective timeout is 2 hours because rank 0 decodes the caches while the others wait at a
    barrier; for the full VoxCeleb1 build the caches first with a single process.
    """
    info = env_info()
    if not info.enabled:
        return info, device
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(hours=2))
    return info, device


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


_WARNED: set[tuple[int, int]] = set()


def split_size(n: int, world_size: int) -> int:
    """Items per rank of a global batch of ``n``: ``n // world_size`` (the rule of the module
    docstring: the last ``n % world_size`` items are left out, with a warning once per (n, W));
    a batch smaller than the world size raises ``ValueError``."""
    if n < world_size:
        raise ValueError(f"global batch of {n} does not split over {world_size} ranks (fewer "
                         f"items than ranks); choose a batch size of at least {world_size}")
    per, rest = divmod(n, world_size)
    if rest and (n, world_size) not in _WARNED:
        _WARNED.add((n, world_size))
        warnings.warn(f"global batch of {n} does not split over {world_size} ranks: each rank "
                      f"takes {per} and the last {rest} of every batch are left out (a global "
                      f"batch of {per * world_size}); choose a batch size divisible by "
                      f"{world_size} to train on all of it", stacklevel=3)
    return per


def rank_slice(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """This rank's contiguous share of a global batch (dim 0): ``split_size(n, W)`` items, the
    remainder of a batch W does not divide left out (module docstring)."""
    if not info.enabled:
        return x
    per = split_size(x.shape[0], info.world_size)
    return x[info.rank * per:(info.rank + 1) * per]


def wrap(module: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(module)`` under torchrun, else the module itself.

    Only parameters with ``requires_grad`` at this moment are synchronised by DDP.
    """
    if not info.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)  # buffers from rank 0


def average_gradients(params, info: DistInfo) -> None:
    """All-reduce the gradients of ``params`` to their mean over ranks (one flat buffer)."""
    if not info.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_parameters(module: nn.Module, info: DistInfo) -> None:
    """Give every rank rank 0's parameters and buffers (for modules outside the DDP wrapper)."""
    if not info.enabled:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def all_reduce_mean(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of ``x`` over ranks (a copy; ``x`` itself is left as it is)."""
    if not info.enabled:
        return x
    y = x.clone()
    dist.all_reduce(y)
    return y / info.world_size


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def convert_sync_bn(module: nn.Module, device: torch.device, info: DistInfo) -> nn.Module:
    """BatchNorm -> SyncBatchNorm for multi-GPU runs (PyTorch supports it on CUDA only)."""
    if info.enabled and device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return module
