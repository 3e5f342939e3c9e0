"""DEM speed: the batched module vs the per-sample reference loop.

A training batch of 50 tuples of three 32 x 12 x 12 maps (150 maps), one DEM layer producing the
salient and subtle streams (eqs. 1-9). Prints the median time of each over repeats and the ratios
against two per-sample loops: the NumPy reference (given its blocks, so its draws are not timed)
and the batched module called on one sample at a time. The batched time includes drawing.

    .venv/bin/python benchmarks/dem.py [--repeats 50] [--threads 1] [--device cpu]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from dsanet.config import paper
from dsanet.models.dem import DEM, draw_blocks
from dsanet.models.dem_reference import dem_reference


def _median_seconds(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tuples", type=int, default=50)
    ap.add_argument("--maps-per-tuple", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    cfg = paper()  # C = 32, 12 x 12 maps, r = c = 4, selection "both", alpha 1, beta 0.9
    n = args.tuples * args.maps_per_tuple
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(n, cfg.channels, cfg.map_size, cfg.map_size, generator=g).to(device)
    dem = DEM(cfg).to(device).train()
    rows, cols = draw_blocks(n, cfg.r, cfg.c, generator=g)

    def torch_loop():  # the module called once per sample, as a per-sample torch script would
        return [dem(maps[b:b + 1]) for b in range(n)]

    few = max(3, args.repeats // 5)
    with torch.no_grad():
        t_batched = _median_seconds(lambda: dem(maps), args.repeats, sync)
        t_ref = _median_seconds(lambda: dem_reference(maps, rows, cols, cfg), few, sync)
        t_loop = _median_seconds(torch_loop, few, sync)
    print(f"DEM on {n} maps of {cfg.channels}x{cfg.map_size}x{cfg.map_size} ({args.tuples} tuples x "
          f"{args.maps_per_tuple}), device {device}, {args.threads} thread(s)")
    print(f"batched            DEM(maps)                     median {t_batched * 1e3:8.3f} ms")
    print(f"per-sample NumPy   dem_reference                 median {t_ref * 1e3:8.3f} ms"
          f"   ratio {t_ref / t_batched:5.1f}x")
    print(f"per-sample torch   DEM(maps[b:b+1]) for each b   median {t_loop * 1e3:8.3f} ms"
          f"   ratio {t_loop / t_batched:5.1f}x")


if __name__ == "__main__":
    main()
