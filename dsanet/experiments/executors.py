"""Executors: how a sweep's runs get trained once :func:`~dsanet.experiments.run_many` knows
which ones are missing from the run cache.

- ``local`` (default, no extra dependency): a pool of ``workers`` processes on this machine,
  one thread each (:func:`local_pool`).
- ``ray``: every run a Ray task (:func:`ray_pool`), on a local Ray started here or on a cluster
  (``address``), each asking for ``cpus_per_run`` CPUs and ``gpus_per_run`` of a GPU, so that
  several small runs share one GPU. ``pip install ".[cluster]"``.

Both call the same function per run, :func:`train_one` -> :func:`~dsanet.experiments.cached_run`,
which trains into ``runs_root/<task>-<config hash>`` (atomic files, resumable from ``last.pt``),
so a run's result does not depend on the executor; a Ray task lost with its worker or node is
retried by Ray and resumes from the run's last checkpoint, and a sweep started again trains only
what is missing. A run that fine-tunes another run of the same sweep (``init_from``) starts after
it, under both executors.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import Config
from .cache import _DONE, cached_run, run_dir

EXECUTORS = ("local", "ray")
RAY_RETRIES = 3              # Ray re-runs a task this often when its worker or node dies


class ClusterError(ConnectionError):
    """The Ray cluster cannot be reached or used (or Ray is not installed)."""


@dataclass(frozen=True)
class Job:
    """What a worker needs to train one run: its config, the run cache, snapshots or not."""

    cfg: dict
    runs_root: str
    snapshots: bool = False


def train_one(job: Job, executor: str = "local") -> tuple[str, float, bool]:
    """Train (or read back) one run -> (run folder name, wall seconds, was cached).

    An unfinished run's attempt is noted in ``<run>/attempts.jsonl`` first: the executor, the
    host, the process and the step it resumes from (0 for a fresh start; a run retried after its
    worker died shows the step of its last checkpoint)."""
    cfg = Config.from_dict(job.cfg)
    d = run_dir(cfg, job.runs_root)
    if not (d / _DONE).exists():
        note_attempt(d, executor)
    run = cached_run(cfg, job.runs_root, snapshots=job.snapshots)
    return run.dir.name, run.wall_s, run.cached


def note_attempt(d: Path, executor: str) -> dict:
    """Append this attempt at run folder ``d`` to ``d/attempts.jsonl`` and return it."""
    import socket

    step = 0
    if (d / "last.pt").exists():   # memory-mapped: only the step is read, not the weights
        import torch

        step = int(torch.load(d / "last.pt", map_location="cpu", weights_only=True, mmap=True)["step"])
    note = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "executor": executor,
            "host": socket.gethostname(), "pid": os.getpid(), "resumed_from_step": step}
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "attempts.jsonl", "a") as f:
        f.write(json.dumps(note) + "\n")
    return note


def expected_cost(cfg: Config) -> float:
    """A rough relative cost of a run (items per step x streams x steps), to start big runs first."""
    items = (cfg.k + 1) if cfg.task == "matching" else 2
    return cfg.steps * items * (1 + 0.2 * cfg.n_streams)


class Progress:
    """Runs finished so far: a tqdm bar (``bar=True``) or one ``log`` line a run (or silence)."""

    def __init__(self, total: int, log: Callable[[str], None] | None = print, bar: bool = False):
        self.total, self.n, self.log, self.t0 = total, 0, log, time.perf_counter()
        self.bar = None
        if bar and total:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="run", desc="runs")

    def done(self, name: str, wall: float) -> None:
        self.n += 1
        if self.bar is not None:
            self.bar.set_postfix_str(f"{name} {wall:.0f} s", refresh=False)
            self.bar.update()
        elif self.log:
            self.log(f"[{self.n}/{self.total}] {name}: {wall:.0f} s "
                     f"(elapsed {time.perf_counter() - self.t0:.0f} s)")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _waits(todo: dict[Path, Config]) -> dict[Path, Path]:
    """Run -> the run of ``todo`` it fine-tunes (``init_from`` that run's checkpoint)."""
    return {d: Path(c.init_from).parent for d, c in todo.items()
            if c.init_from and Path(c.init_from).parent in todo}


def _by_cost(dirs, todo) -> list[Path]:
    return sorted(dirs, key=lambda d: -expected_cost(todo[d]))


# ----------------------------------------------------------------------------- local pool

def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def local_pool(todo: dict[Path, Config], snap: set, runs_root, workers: int,
               progress: Progress) -> int:
    """Train the runs of ``todo`` (run dir -> config), longest first, ``workers`` at a time.

    A run that fine-tunes another run of ``todo`` is held back until that one has finished and
    then goes first, so both processes stay busy instead of waiting for a second round. A
    worker's error is raised here (the pool is then stopped).
    """
    waits = _waits(todo)
    queue = _by_cost([d for d in todo if d not in waits], todo)
    pool, pending = None, {}

    def job(d):
        return Job(todo[d].to_dict(), str(runs_root), d in snap)

    def finished(d, name, wall):
        progress.done(name, wall)
        for w in [w for w, dep in waits.items() if dep == d]:
            del waits[w]
            queue.insert(0, w)

    if workers > 1 and len(todo) > 1:
        import multiprocessing

        pool = multiprocessing.get_context("spawn").Pool(min(workers, len(todo)), _worker_init)
    try:
        while queue or pending:
            if pool is None:
                d = queue.pop(0)
                finished(d, *train_one(job(d))[:2])
                continue
            while queue and len(pending) < workers:
                d = queue.pop(0)
                pending[pool.apply_async(train_one, (job(d),))] = d
            done = [r for r in pending if r.ready()]
            if not done:
                time.sleep(0.2)
                continue
            for r in done:
                finished(pending.pop(r), *r.get()[:2])
    finally:
        if pool is not None:
            pool.terminate() if pending else pool.close()
            pool.join()
    return len(todo)


# ----------------------------------------------------------------------------- Ray

def _ray():
    try:
        import ray
    except ImportError as e:
        raise ClusterError('the ray executor needs Ray: pip install ".[cluster]"') from e
    return ray


def _ray_task(job: Job, cwd: str, threads: int, *after) -> tuple[str, float, bool]:
    """One run as a Ray task: in the driver's working directory (relative data and run paths
    mean the same on every node of a cluster whose shared storage is mounted at the same path),
    with ``threads`` torch threads. ``after``: the results of the runs it waits for."""
    import torch

    os.chdir(cwd)
    torch.set_num_threads(threads)
    return train_one(job, "ray")


def _forwarded_env() -> dict[str, str]:
    """Environment variables a run's result or placement depends on, for the Ray workers."""
    keep = ("DSANET_", "PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG")
    return {k: v for k, v in os.environ.items() if k.startswith(keep)}


def connect(address: str | None = None, cpus: int | None = None,
            log: Callable[[str], None] | None = print):
    """Ray for a sweep -> (ray module, True when this call started it and must shut it down).

    ``address`` None: a local Ray with ``cpus`` CPUs (and the GPUs it finds); ``"auto"`` or
    ``"ray://HOST:PORT"``: join that cluster. A Ray this process already joined is used as is.
    Prints the cluster's nodes, CPUs and GPUs.
    """
    ray = _ray()
    started = False
    if not ray.is_initialized():
        kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False,
                  runtime_env={"env_vars": _forwarded_env()})
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            if address:
                ray.init(address=address, **kw)
            else:
                ray.init(num_cpus=cpus, **kw)
        except Exception as e:   # ConnectionError, TimeoutError, RuntimeError ... from Ray
            raise ClusterError(f"cannot reach the Ray cluster at {address or 'a local Ray'}: "
                               f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
        started = True
    if log:
        res = ray.cluster_resources()
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        log(f"Ray at {address or 'local'}: {nodes} node(s), {res.get('CPU', 0):g} CPUs, "
            f"{res.get('GPU', 0):g} GPUs")
    return ray, started


def ray_pool(todo: dict[Path, Config], snap: set, runs_root, workers: int, progress: Progress,
             address: str | None = None, cpus_per_run: int = 1,
             gpus_per_run: float | None = None, log: Callable[[str], None] | None = print) -> int:
    """Train the runs of ``todo`` as Ray tasks, longest first.

    A local Ray (no ``address``) gets ``workers x cpus_per_run`` CPUs, so that as many runs train
    at once as in the local pool; on a cluster, as many as its resources fit. ``gpus_per_run``:
    the share of a GPU each run asks for (0.25 packs four runs on one GPU); None: a whole GPU for
    the GPU profile (``paper``, :data:`~dsanet.engine.device.GPU_PROFILES`) when the cluster has
    GPUs, none otherwise. A
    fine-tune gets its source run's result as an argument, so Ray starts it after that run.
    A task whose worker dies is retried (:data:`RAY_RETRIES`) and resumes from ``last.pt``.
    """
    from ..engine.device import GPU_PROFILES

    ray, started = connect(address, None if address else workers * cpus_per_run, log)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        if gpus_per_run is None:
            gpu_profiles = any(c.profile in GPU_PROFILES for c in todo.values())
            gpus_per_run = 1.0 if gpus and gpu_profiles else 0.0
        if gpus_per_run and not gpus:
            raise ClusterError(f"--gpus-per-run {gpus_per_run:g} asked for, but the Ray cluster "
                               f"at {address or 'local'} has no GPU")
        if log:
            log(f"{len(todo)} runs, each {cpus_per_run} CPU(s) + {gpus_per_run:g} GPU")
        task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=RAY_RETRIES,
                          retry_exceptions=False)(_ray_task)
        waits, refs, cwd = _waits(todo), {}, os.getcwd()
        order = _by_cost([d for d in todo if d not in waits], todo)
        while len(order) < len(todo):   # fine-tunes after their sources (chains too)
            order += _by_cost([d for d, s in waits.items() if s in order and d not in order], todo)
        for d in order:
            job = Job(todo[d].to_dict(), str(runs_root), d in snap)
            after = [refs[waits[d]]] if d in waits else []
            refs[d] = task.options(name=f"dsanet:{d.name}").remote(job, cwd, cpus_per_run, *after)
        pending = list(refs.values())
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                name, wall, _ = ray.get(done[0])   # a run's error is raised here
                progress.done(name, wall)
        except BaseException:
            for r in pending:                      # the cluster's runs stop with the sweep
                ray.cancel(r, force=True)
            raise
    finally:
        if started:
            ray.shutdown()
    return len(todo)
