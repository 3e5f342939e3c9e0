"""Items per second the input pipeline delivers, against what a training step consumes.

Three figures for the same matching batches (``batch_size`` tuples of k+1 items, half V-F, half
F-V):

* cache: the trainer's path - tuples sampled, items gathered from the decoded cache by indexing,
  random time crops and face flips on whole tensors (:meth:`MatchingTask.batch`);
* raw files: what a loader without the cache would do per item - read and decode the wav,
  spectrogram, random crop; decode the jpg, resize, flip, normalise (``--num-workers`` DataLoader
  processes);
* training step: items per second of one whole step (:class:`dsanet.engine.train.Stepper`).

The cache path has to be well above the step for the trainer not to need loader workers.

    python benchmarks/input_pipeline.py --device cpu --size small --data data/benchmark
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from _common import SIZES, parse, parser, timed  # benchmarks/_common.py (the script's folder is on sys.path)
from dsanet.data.cache import build_cache
from dsanet.data.frontends import Spectrogram, face_transform, load_face, load_wav
from dsanet.data.layout import load_index
from dsanet.engine.device import place_cached, resolve_device, to_device
from dsanet.engine.matching import MatchingTask
from dsanet.engine.train import Stepper, build_model, set_train_mode


class RawItems(Dataset):
    """(modality, path) -> one decoded, augmented training input, as a loader would make it."""

    def __init__(self, items: list[tuple[str, Path]], cfg):
        self.items, self.cfg = items, cfg
        self.spec = Spectrogram(cfg)
        self.face = face_transform(cfg, train=True)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        kind, path = self.items[i]
        if kind == "voice":
            with torch.no_grad():
                spec = self.spec(load_wav(path, self.cfg.sample_rate))     # (1, F, T)
            return self.spec.crop(spec, train=True)                        # (1, F, frames)
        return self.face(load_face(path))                                  # (3, S, S)


def raw_items(task: MatchingTask, cached, rng, n_batches: int) -> list[tuple[str, Path]]:
    """The (modality, file) of every item of ``n_batches`` sampled training batches."""
    index = cached.index
    out = []
    for _ in range(n_batches):
        for d, sampler in task.samplers.items():
            t = sampler.sample(task.cfg.batch_size // len(task.samplers), rng)  # (b, k+1)
            a_mod, c_mod = ("voice", "face") if d == "vf" else ("face", "voice")
            for mod, items in ((a_mod, t[:, 0]), (c_mod, t[:, 1:].ravel())):
                table = cached.voice_table if mod == "voice" else cached.face_table
                root = index.voice_path if mod == "voice" else index.face_path
                out += [(mod, root(p)) for p in table.path.to_numpy()[items]]
    return out


def data_root(arg: str | None) -> Path:
    """``--data``, else data/benchmark, else a freshly generated smoke benchmark."""
    root = Path(arg or "data/benchmark")
    if root.exists():
        return root
    from dsanet.data.synthetic import SMOKE, generate

    tmp = Path(tempfile.mkdtemp(prefix="dsanet-bench-")) / "smoke"
    print(f"{root} not found: generating the smoke benchmark in {tmp}")
    generate(tmp, **SMOKE)
    return tmp


def main(argv=None) -> None:
    p = parser(__doc__)
    p.add_argument("--data", default=None, help="data root (default data/benchmark)")
    p.add_argument("--batches", type=int, default=20, help="timed batches from the cache")
    p.add_argument("--raw-batches", type=int, default=2, help="timed batches from raw files")
    p.add_argument("--steps", type=int, default=5, help="timed training steps")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader workers for raw files")
    args = parse(p, argv)
    root = data_root(args.data)
    cfg = SIZES[args.size](device=args.device, data_root=str(root))
    device = resolve_device(cfg)
    items_per_batch = cfg.batch_size * (cfg.k + 1)

    t = time.perf_counter()
    cached = place_cached(build_cache(load_index(root), cfg, "train"), device)
    print(f"cache of the train split ready in {time.perf_counter() - t:.1f} s "
          f"({cached.n_voices} voices, {cached.n_faces} faces)")
    task = MatchingTask(cfg, cached, device)
    rng, gen = np.random.default_rng(0), torch.Generator(cached.voices.device).manual_seed(0)
    keep = lambda x: x  # noqa: E731 - one process: the whole batch

    def cache_batch():
        return [to_device(part, device) for part in task.batch(rng, gen, keep)]

    t_cache = timed(cache_batch, args.batches, device)

    raw = RawItems(raw_items(task, cached, rng, args.raw_batches), cfg)
    loader = DataLoader(raw, batch_size=None, num_workers=args.num_workers, collate_fn=None)
    t = time.perf_counter()
    for _ in loader:
        pass
    t_raw = (time.perf_counter() - t) / args.raw_batches

    model = build_model(cfg, task, device)
    stepper = Stepper(cfg, model, task, device)
    set_train_mode(model, cfg.freeze_bn)
    parts = cache_batch()
    stepper.step(parts)
    t_step = timed(lambda: stepper.step(parts), args.steps, device)

    print(f"device {device} ({torch.get_num_threads()} CPU threads), size {args.size}: face "
          f"{cfg.face_size}px, spectrogram {cfg.spec_bins}x{cfg.spec_frames}, {cfg.backbone}; "
          f"batch {cfg.batch_size} tuples = {items_per_batch} items")
    for name, sec in (("cache gather + crop/flip", t_cache),
                      (f"raw files ({args.num_workers} workers)", t_raw),
                      ("training step", t_step)):
        print(f"{name:28s} {sec * 1e3:9.1f} ms/batch {items_per_batch / sec:10.1f} items/s")
    print(f"cache / step throughput: {t_step / t_cache:.1f}x; raw / step: {t_step / t_raw:.2f}x")


if __name__ == "__main__":
    main()
