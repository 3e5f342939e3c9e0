"""Host-to-device copies of batches: compact dtypes, through pinned buffers allocated once.

A batch gathered from a cache that stays on the host (too large for the GPU, or placed by another
worker) crosses to the GPU in the cache's own dtype - faces as uint8 (a quarter of float32's
bytes), spectrograms as float16 - and is converted on arrival (:mod:`dsanet.data.batches`).

The copy goes through :class:`PinnedStaging`: per dtype, a ring of page-locked buffers allocated
once (and grown when a larger batch comes), so a copy is ``buffer.copy_(x)`` then a non-blocking
DMA, instead of ``x.pin_memory()`` (a fresh page-locked allocation and a synchronous copy) per
tensor per step. A buffer is reused only after the copy out of it has finished (a CUDA event per
buffer), so with two slots the next batch is staged while the last one is still in flight.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class _Slot:
    buffer: torch.Tensor           # (capacity,) pinned, one dtype
    event: object = None           # torch.cuda.Event of the last copy out of it (None: free)


class PinnedStaging:
    """Copies host tensors to a device through reused pinned buffers (``slots`` per dtype).

    Only host -> ``devices`` copies are staged (CUDA; pinned memory means nothing elsewhere);
    the rest is ``.to``. ``pin``: how a buffer is page-locked (default ``Tensor.pin_memory``;
    tests on a machine without a GPU pass another, with ``devices=("meta",)``).
    """

    def __init__(self, slots: int = 2, pin: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 devices: tuple[str, ...] = ("cuda",)):
        self.slots, self.devices = slots, devices
        self._pin = pin or (lambda t: t.pin_memory())
        self._rings: dict[torch.dtype, list[_Slot]] = {}
        self._next: dict[torch.dtype, int] = {}

    def _slot(self, x: torch.Tensor) -> _Slot:
        ring = self._rings.setdefault(x.dtype, [])
        i = self._next.get(x.dtype, 0)
        self._next[x.dtype] = (i + 1) % self.slots
        if i == len(ring):
            ring.append(_Slot(self._pin(torch.empty(x.numel(), dtype=x.dtype))))
        slot = ring[i]
        if slot.event is not None:
            slot.event.synchronize()   # the copy out of this buffer has finished
            slot.event = None
        if slot.buffer.numel() < x.numel():   # a larger batch: grow this buffer once
            slot.buffer = self._pin(torch.empty(x.numel(), dtype=x.dtype))
        return slot

    def to(self, x: torch.Tensor, device: torch.device | str) -> torch.Tensor:
        device = torch.device(device)
        if x.device == device:
            return x
        if x.device.type != "cpu" or device.type not in self.devices or x.is_pinned():
            return x.to(device, non_blocking=True)
        slot = self._slot(x)
        staged = slot.buffer[: x.numel()].view(x.shape)
        staged.copy_(x)
        out = staged.to(device, non_blocking=True)
        if device.type == "cuda":
            slot.event = torch.cuda.Event()
            slot.event.record(torch.cuda.current_stream(device))
        return out


STAGING = PinnedStaging()


def transfer(x: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    """``x`` on ``device`` (None: where it is), staged through :data:`STAGING` from the host."""
    if device is None:
        return x
    return STAGING.to(x, device)


__all__ = ["PinnedStaging", "STAGING", "transfer"]
