"""Soak: the smoke profile killed (SIGKILL) at random points and resumed, vs. one run left alone.

Each episode starts from nothing (a fresh cache folder and run folder on one generated smoke
tree) and runs the pipeline - cache building, training, the test evaluation that closes
training, then ``evaluate_checkpoint`` of the best checkpoint - in a child process. The parent
kills the child at a random moment of a target stage (cache, train, eval in turn; the delay is
drawn within the stage's length in the uninterrupted run), then starts it again, which resumes
(the cache build starts over, training resumes from ``last.pt``). When the child finishes, its
metrics are compared cell by cell with the uninterrupted run's. Prints the kills per stage
actually hit and the number of differing metrics (0 expected), and checks that no temporary
cache folder is left behind.

    nice -n 19 python benchmarks/soak.py --kills 24 --seed 0
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("cache", "train", "eval")


# ----------------------------------------------------------------------------- child

def _status(folder: Path, stage: str) -> None:
    with open(folder / "status.txt", "a") as fh:
        fh.write(f"{stage} {time.time():.3f}\n")
        fh.flush()
        os.fsync(fh.fileno())


def child(data: Path, folder: Path) -> None:
    """The pipeline, resumable: every stage leaves a state the next start can pick up."""
    import torch

    torch.set_num_threads(1)
    from dsanet.config import smoke
    from dsanet.engine import distributed as dist
    from dsanet.engine.train import evaluate_checkpoint, load_splits, train

    cfg = smoke(data_root=str(data), cache_dir=str(folder / "cache"), device="cpu", num_workers=0)
    _status(folder, "cache")
    load_splits(cfg, ("train", "val", "test"), dist.DistInfo())
    _status(folder, "train")

    def on_step(step: int) -> None:
        if step == cfg.steps:
            _status(folder, "eval")                  # the closing validation and test evaluation
    res = train(cfg, folder / "run", progress=False, on_step=on_step)
    _status(folder, "eval")
    metrics, _, _ = evaluate_checkpoint(res.checkpoint, device="cpu")
    out = {"train": res.metrics.to_dict("records"), "evaluate": metrics.to_dict("records")}
    tmp = folder / "metrics.json.tmp"
    tmp.write_text(json.dumps(out, sort_keys=True, default=str))
    tmp.replace(folder / "metrics.json")
    _status(folder, "done")


# ----------------------------------------------------------------------------- parent

def _last_stage(folder: Path):
    try:
        lines = (folder / "status.txt").read_text().split("\n")
    except OSError:
        return None, None
    lines = [ln.split() for ln in lines if ln.strip()]
    return (lines[-1][0], float(lines[-1][1])) if lines else (None, None)


def _start(data: Path, folder: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    return subprocess.Popen([sys.executable, __file__, "--child", str(data), str(folder)], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(folder / "stderr.txt", "a"))


def reference(data: Path, folder: Path) -> dict:
    """Uninterrupted run: metrics and the length of each stage (seconds)."""
    folder.mkdir(parents=True)
    p = _start(data, folder)
    if p.wait() != 0:
        raise SystemExit(f"reference run failed: see {folder / 'stderr.txt'}")
    rows = [ln.split() for ln in (folder / "status.txt").read_text().splitlines()]
    first = {}
    for s, t in rows:
        first.setdefault(s, float(t))
    lengths = {"cache": first["train"] - first["cache"], "train": first["eval"] - first["train"],
               "eval": first["done"] - first["eval"]}
    return {"metrics": json.loads((folder / "metrics.json").read_text()), "lengths": lengths}


def episode(data: Path, folder: Path, targets: list, lengths: dict, rng: random.Random,
            kills: dict) -> dict:
    """Kill the pipeline once per target stage (when it reaches that stage), then let it finish."""
    folder.mkdir(parents=True)
    for target in targets:
        p = _start(data, folder)
        while p.poll() is None:
            stage, since = _last_stage(folder)
            if stage is not None and STAGES.index(stage if stage in STAGES else "eval") >= \
                    STAGES.index(target) and time.time() >= since:
                break
            time.sleep(0.01)
        if p.poll() is None:
            time.sleep(rng.uniform(0.0, 0.9 * lengths[target]))
        if p.poll() is None:
            stage, _ = _last_stage(folder)
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            if stage in STAGES:
                kills[stage] += 1
        else:
            break
        if (folder / "metrics.json").exists():
            break
    p = _start(data, folder)
    if p.wait() != 0:
        raise SystemExit(f"resumed run failed: see {folder / 'stderr.txt'}")
    return json.loads((folder / "metrics.json").read_text())


def differing(a: dict, b: dict) -> int:
    """Metric cells that differ between two metrics.json contents (exact comparison)."""
    n = 0
    for part in ("train", "evaluate"):
        ra, rb = a[part], b[part]
        if len(ra) != len(rb):
            return max(len(ra), len(rb)) * 10 ** 3
        for x, y in zip(ra, rb):
            n += sum(1 for k in set(x) | set(y) if x.get(k) != y.get(k)
                     and not (x.get(k) != x.get(k) and y.get(k) != y.get(k)))   # NaN == NaN
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=24, help="kills in all (at least)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default=None, help="work folder (default: a temporary one)")
    p.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]))
        return 0
    from dsanet.data.synthetic import SMOKE, generate

    work = Path(args.work or tempfile.mkdtemp(prefix="dsanet-soak-"))
    rng = random.Random(args.seed)
    t0 = time.time()
    generate(work / "data", **SMOKE)
    ref = reference(work / "data", work / "reference")
    print("stage lengths of the uninterrupted run (s):",
          {k: round(v, 2) for k, v in ref["lengths"].items()})
    kills = {s: 0 for s in STAGES}
    diffs, episodes, left = 0, 0, []
    per_episode = ["cache", "cache", "train", "train", "train", "eval", "eval", "eval"]
    while sum(kills.values()) < args.kills:
        episodes += 1
        folder = work / f"episode{episodes}"
        got = episode(work / "data", folder, per_episode, ref["lengths"], rng, kills)
        d = differing(ref["metrics"], got)
        diffs += d
        left += list((folder / "cache").glob(".*.tmp-*"))
        print(f"episode {episodes}: kills so far {kills}, differing metrics {d}", flush=True)
        if episodes >= 10:
            break
    print(f"kills: {sum(kills.values())} ({', '.join(f'{k} {v}' for k, v in kills.items())}) "
          f"in {episodes} episodes")
    print(f"metric cells compared per episode: "
          f"{sum(len(r) for r in ref['metrics']['train'] + ref['metrics']['evaluate'])}")
    print(f"differing metrics: {diffs}")
    print(f"temporary cache folders left: {len(left)}")
    print(f"wall time: {time.time() - t0:.0f} s")
    return 0 if diffs == 0 and not left and sum(kills.values()) >= args.kills else 1


if __name__ == "__main__":
    sys.exit(main())
