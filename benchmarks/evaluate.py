"""Evaluation speed: cached embeddings vs one backbone pass per tuple.

A randomly initialised DSANet (compact backbone, small inputs) on a synthetic cached split.
Both ways score the same 1:k V-F tuples for every k in 2..10 with the distance scorer:

* cached - ``embed_split`` (one backbone pass per item of the split, in chunks) and then
  ``matching_accuracy`` for every k (an index gather per tuple);
* naive  - per tuple, the anchor and its k candidates go through the backbone and generator
  (two ``embed`` calls per tuple), then the same distance scoring.

Prints both times, the ratio and whether the two agree on every tuple.

    .venv/bin/python benchmarks/evaluate.py [--per-k 200] [--identities 40] [--per-id 10]
                                            [--size 64] [--threads 1] [--device cpu]
"""
from __future__ import annotations

import argparse
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from dsanet.config import quick
from dsanet.data.batches import modality_batch
from dsanet.engine.device import autocast
from dsanet.engine import evaluate as ev
from dsanet.models.dsanet import DSANet

KS = range(2, 11)


def synthetic_split(n_ids: int, per_id: int, cfg, device) -> types.SimpleNamespace:
    """A CachedSplit look-alike: random spectrograms (float16) and faces (uint8)."""
    g = torch.Generator().manual_seed(0)
    n, tmax = n_ids * per_id, 2 * cfg.spec_frames
    ids = torch.arange(n_ids).repeat_interleave(per_id)
    return types.SimpleNamespace(
        voices=torch.randn(n, 1, cfg.spec_bins, tmax, generator=g).half().to(device),
        voice_frames=torch.randint(cfg.spec_frames // 2, tmax + 1, (n,), generator=g).to(device),
        faces=torch.randint(0, 256, (n, 3, cfg.face_size, cfg.face_size), generator=g,
                            dtype=torch.uint8).to(device),
        voice_ids=ids, face_ids=ids, voice_gender=ids % 2, face_gender=ids % 2)


def naive_accuracy(model, cached, cfg, tuples: np.ndarray, seed: int) -> np.ndarray:
    """One backbone pass per tuple (anchor voice, k candidate faces), distance scorer."""
    perm = ev.shuffle_candidates(len(tuples), tuples.shape[1] - 1, seed)      # same shuffle
    label = (perm == 0).int().argmax(1)
    cands = torch.as_tensor(tuples[:, 1:]).gather(1, perm)
    ok = []
    with torch.inference_mode(), autocast(cached.voices.device, cfg.amp):
        for i in range(len(tuples)):
            v = modality_batch(cached, "voice", tuples[i:i + 1, 0], cfg, train=False)  # (1, 1, F, T)
            f = modality_batch(cached, "face", cands[i], cfg, train=False)            # (k, 3, S, S)
            a, c = model.embed(v, "voice").float(), model.embed(f, "face").float()    # (1, D), (k, D)
            ok.append(ev.similarity(a, c).argmax() == label[i])
    return torch.stack(ok).cpu().numpy()


def cached_accuracy(model, cached, cfg, tuples_by_k: dict, seed: int) -> dict:
    emb = ev.embed_split(model, cached, cfg)
    return {k: ev.matching_accuracy(emb, t, "vf", seed=seed) for k, t in tuples_by_k.items()}


def _timed(fn, sync):
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-k", type=int, default=200)
    ap.add_argument("--identities", type=int, default=40)
    ap.add_argument("--per-id", type=int, default=10)
    ap.add_argument("--size", type=int, default=64, help="face side and spectrogram bins/frames")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    cfg = quick(face_size=args.size, spec_bins=args.size, spec_frames=args.size)
    model = DSANet(cfg).to(device).eval()
    cached = synthetic_split(args.identities, args.per_id, cfg, device)
    emb_ids = ev.Embeddings(torch.zeros(len(cached.voice_ids), 1), torch.zeros(len(cached.face_ids), 1),
                            cached.voice_ids.numpy(), cached.face_ids.numpy())
    tuples = {k: ev.sample_tuples(*emb_ids.sides("vf"), k, args.per_k, np.random.default_rng(k))
              for k in KS}
    cached_accuracy(model, cached, cfg, {2: tuples[2][:4]}, 0)      # warm-up
    fast, t_fast = _timed(lambda: cached_accuracy(model, cached, cfg, tuples, 0), sync)
    slow, t_slow = _timed(lambda: {k: naive_accuracy(model, cached, cfg, t, 0)
                                   for k, t in tuples.items()}, sync)
    n_tuples = sum(len(t) for t in tuples.values())
    n_items = len(cached.voice_ids) + len(cached.face_ids)
    agree = np.mean(np.concatenate([fast[k] == slow[k] for k in KS]))
    print(f"device {device}, threads {args.threads}, inputs {args.size}x{args.size}, "
          f"{n_tuples} V-F tuples (k=2..10, {args.per_k} each), split of {n_items} items")
    print(f"cached embeddings : {t_fast:8.2f} s  (one pass over {n_items} items + gathers)")
    print(f"one pass per tuple: {t_slow:8.2f} s  ({2 * n_tuples} embed calls, "
          f"{sum((k + 1) * len(t) for k, t in tuples.items())} items)")
    print(f"speed-up          : {t_slow / t_fast:8.1f} x")
    print(f"same decision on {100 * agree:.2f}% of tuples; accuracy by k (cached): "
          + " ".join(f"{k}:{fast[k].mean():.2f}" for k in KS))


if __name__ == "__main__":
    main()
