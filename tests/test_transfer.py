"""The GPU data path's decisions, checked on a CPU (issue 23, item 4): batches cross to the
device in the cache's compact dtypes and are converted there; pinned buffers are allocated once
and reused; a cache goes onto a GPU only when it fits beside what other live workers claimed."""
from __future__ import annotations

import os

import pytest
import torch

from dsanet.data import batches, transfer
from dsanet.data.transfer import PinnedStaging
from dsanet.engine.device import claim_gpu_memory, placement, to_device


class FakeCache:
    """The fields of a CachedSplit the batch functions read."""

    def __init__(self, n=6, s=8, f=16, t=40):
        g = torch.Generator().manual_seed(0)
        self.faces = torch.randint(0, 256, (n, 3, s, s), generator=g, dtype=torch.uint8)
        self.voices = torch.randn(n, 1, f, t, generator=g).half()
        self.voice_frames = torch.full((n,), t)
        self.voice_ids = torch.arange(n)


class Cfg:
    spec_frames = 24


@pytest.fixture
def crossings(monkeypatch):
    """Record the dtype of every tensor that crosses to another device."""
    seen = []
    real = transfer.transfer

    def spy(x, device):
        if device is not None and torch.device(device) != x.device:
            seen.append(x.dtype)
        return real(x, device)

    monkeypatch.setattr(batches, "transfer", spy)
    return seen


def test_faces_cross_as_uint8_and_voices_as_float16_then_are_float32_there(crossings):
    cache, meta = FakeCache(), torch.device("meta")
    face = batches.face_batch(cache, torch.tensor([0, 3, 5]), Cfg, True,
                              torch.Generator().manual_seed(1), device=meta)
    voice = batches.voice_batch(cache, torch.tensor([1, 2]), Cfg, True,
                                torch.Generator().manual_seed(1), device=meta)
    assert crossings == [torch.uint8, torch.float16]
    assert (face.device, face.dtype, tuple(face.shape)) == (meta, torch.float32, (3, 3, 8, 8))
    assert (voice.device, voice.dtype, tuple(voice.shape)) == (meta, torch.float32, (2, 1, 16, 24))


def test_on_the_cache_device_the_batch_is_unchanged():
    cache = FakeCache()
    for dev in (None, torch.device("cpu")):
        a = batches.face_batch(cache, torch.tensor([0, 3, 5]), Cfg, True,
                               torch.Generator().manual_seed(1), device=dev)
        b = batches.face_batch(cache, torch.tensor([0, 3, 5]), Cfg, True,
                               torch.Generator().manual_seed(1))
        assert torch.equal(a, b)
        # by hand: (x / 255 - 0.5) / 0.5 of the (possibly flipped) uint8 faces
        flip = torch.rand(3, generator=torch.Generator().manual_seed(1)) < 0.5
        raw = cache.faces[[0, 3, 5]]
        raw = torch.where(flip[:, None, None, None], raw.flip(-1), raw)
        assert torch.allclose(a, (raw.float() / 255 - 0.5) / 0.5, atol=1e-6)


def test_pinned_buffers_are_allocated_once_and_reused():
    pinned = []
    staging = PinnedStaging(slots=2, pin=lambda t: pinned.append(t) or t, devices=("meta",))
    xs = [torch.full((4, 5), float(i)) for i in range(5)]
    for x in xs:
        out = staging.to(x, "meta")
        assert out.device.type == "meta" and out.shape == x.shape
    assert len(pinned) == 2                               # two slots, allocated once each
    ring = staging._rings[torch.float32]
    assert torch.equal(ring[0].buffer.view(4, 5), xs[4])   # 0, 2, 4 went through slot 0
    assert torch.equal(ring[1].buffer.view(4, 5), xs[3])   # 1, 3 through slot 1
    staging.to(torch.zeros(50), "meta")                   # a larger batch grows its slot once
    assert len(pinned) == 3 and ring[1].buffer.numel() == 50   # (the 6th call: slot 1)
    assert staging.to(xs[0], "cpu") is xs[0]              # nothing to stage on its own device


def test_to_device_is_a_no_op_on_the_same_device():
    x = torch.ones(3)
    assert to_device({"a": (x, [x])}, torch.device("cpu"))["a"][0] is x


def test_placement_rule():
    GB = 10**9
    assert placement(30 * GB, free=80 * GB, total=80 * GB, others=0)           # alone: fits
    assert not placement(30 * GB, free=80 * GB, total=80 * GB, others=30 * GB)  # 2nd worker
    assert not placement(45 * GB, free=80 * GB, total=80 * GB, others=0)       # > half
    assert not placement(10 * GB, free=15 * GB, total=80 * GB, others=0)       # memory in use


def test_two_workers_on_one_gpu_place_the_cache_once(tmp_path):
    GB, me, parent = 10**9, os.getpid(), os.getppid()
    args = dict(free=80 * GB, total=80 * GB, folder=tmp_path)
    assert claim_gpu_memory("GPU-x", 35 * GB, pid=parent, **args)         # the first worker
    assert not claim_gpu_memory("GPU-x", 35 * GB, pid=me, **args)         # the second: host
    assert claim_gpu_memory("GPU-y", 35 * GB, pid=me, **args)             # another GPU: its own
    dead = 2**22 + 4321                                                   # above pid_max: gone
    assert not any(p == dead for p in [me, parent])
    assert claim_gpu_memory("GPU-z", 35 * GB, pid=dead, **args)
    assert claim_gpu_memory("GPU-z", 35 * GB, pid=me, **args)             # the dead one's claim dropped
