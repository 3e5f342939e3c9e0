"""What the benchmark scripts share: the profile sizes and a synchronised timer."""
from __future__ import annotations

import time

from dsanet.config import paper, quick

SIZES = {"small": quick, "paper": paper}


def timed(fn, n: int, device) -> float:
    """Seconds per call of ``fn`` over ``n`` >= 1 calls (CUDA synchronised at both ends)."""
    if n < 1:
        raise ValueError(f"timed needs at least one call, got n={n}")
    if device.type == "cuda":
        import torch
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    for _ in range(n):
        fn()
    if device.type == "cuda":
        import torch
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t) / n
