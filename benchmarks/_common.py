"""What the benchmark scripts share: the profile sizes, the common options and a synchronised timer."""
from __future__ import annotations

import argparse
import time

from dsanet.config import paper, quick

SIZES = {"small": quick, "paper": paper}


def parser(doc: str) -> argparse.ArgumentParser:
    """A parser with the options every benchmark takes: --device, --size, --threads."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--size", choices=sorted(SIZES), default="small",
                   help="small: the quick profile (compact CNN, small inputs); paper: ResNet18, "
                        "224 x 224 faces, 224 x 125 spectrograms")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return p


def parse(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse, then apply --threads."""
    args = p.parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    return args


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
