"""The overhead Ray adds to a sweep: the same smoke sweep on the local process pool and on a local
Ray with the same number of workers, each run as a user runs it (``python -m dsanet sweep`` in a
fresh process, into an empty run cache), measured in one run of this script.

Both sweeps read one data tree whose pretrained backbones and sweep maps are made first, so
neither pays for them; Ray's start (its head, raylet and worker processes) is part of its time.

    python benchmarks/sweep_executors.py                       # Tables V-XII, 2 seeds, 2 workers
    python benchmarks/sweep_executors.py --tables IX --seeds 2 --repeat 2

Prints each executor's wall time (min over ``--repeat``), the runs trained, and the line
``ray / local wall time: X`` (issue 24's target: at most 1.5).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def sweep(tmp: Path, data: Path, executor: str, args) -> tuple[float, str]:
    runs, out = tmp / f"runs_{executor}", tmp / f"out_{executor}"
    for d in (runs, out):
        shutil.rmtree(d, ignore_errors=True)
    cmd = [sys.executable, "-m", "dsanet", "sweep", "--profile", "smoke", "--data", str(data),
           "--tables", args.tables, "--seeds", str(args.seeds), "--workers", str(args.workers),
           "--runs", str(runs), "--out", str(out), "--executor", executor, "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "RAY_USAGE_STATS_ENABLED": "0"}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        sys.exit(f"{executor} sweep failed:\n{done.stdout}\n{done.stderr}")
    return wall, done.stdout.strip().splitlines()[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", default="V,VI,VII,IX,X,XI,XII")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=1, help="sweeps per executor (min is printed)")
    args = p.parse_args()

    from dsanet.config import get_profile
    from dsanet.data.embedded import ensure_data
    from dsanet.experiments import SWEEP_STEPS, budget, plan
    from dsanet.experiments.sweep import prepare_pretrained

    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        data = tmp / "data"
        base = get_profile("smoke", data_root=str(data))
        ensure_data(base)
        prepare_pretrained(budget(base))            # shared by both sweeps, made once here
        n = plan([s.strip() for s in args.tables.split(",")], base, list(range(args.seeds)),
                 SWEEP_STEPS["smoke"], tmp / "runs")["runs"]
        walls, lines = {}, {}
        for _ in range(args.repeat):
            for ex in ("local", "ray"):               # alternated, so drift hits both
                w, lines[ex] = sweep(tmp, data, ex, args)
                walls[ex] = min(w, walls.get(ex, float("inf")))
        print(f"smoke sweep of Tables {args.tables}, {args.seeds} seeds: {n} runs, "
              f"{args.workers} workers, min of {args.repeat}")
        for ex in ("local", "ray"):
            print(f"{ex:>5}: {walls[ex]:6.1f} s   ({lines[ex]})")
        print(f"ray / local wall time: {walls['ray'] / walls['local']:.2f}")


if __name__ == "__main__":
    main()
