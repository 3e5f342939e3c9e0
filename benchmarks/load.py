"""Load: a tree of VoxCeleb1's shape through indexing, list building and cache building.

The tree has Table II's counts - 1,225 identities (924 train, 112 validation, 189 test), 149,354
clips and 137,060 faces, about 8 clips per session - made of hard links to a handful of small
generated files (short clips, small images), so it costs directory entries, not disk. Stages:

* ``index``: ``load_index`` over the whole tree;
* ``lists``: ``write_protocols`` (every 1:k U / G matching list of val and test, retrieval,
  verification; ``--n`` tuples each), then ``read_list`` of two of them;
* ``cache``: ``build_cache`` of the test split's first identities at two sizes (``--fractions``)
  at small input sizes, to show the growth; the build time of the whole corpus is projected
  linearly from the larger one;
* ``paper-size sample``: a few real-length items (``--clip-seconds``, 256 x 256 faces) cached at
  the paper profile's input sizes (224 x 224 faces, 224-bin spectrograms, Tmax <= 375 frames),
  from which the cache size and build time at the paper profile are projected.

Each stage prints its wall time, the peak of Python-traced memory (``tracemalloc``, numpy and
torch CPU buffers included) and the process's peak resident memory (``ru_maxrss``).

    nice -n 19 python benchmarks/load.py --work /tmp/dsanet-load
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

TABLE_II = {  # split: (identities, faces, clips)
    "train": (924, 104724, 113322), "val": (112, 12260, 14182), "test": (189, 20076, 21850)}
LETTERS = {"val": "AB", "test": "CDE", "train": "FGHJKLMNOPRSTW"}
CLIPS_PER_SESSION = 8
SR = 16000


def _spread(total: int, n: int) -> list[int]:
    return [total // n + (i < total % n) for i in range(n)]


def make_tree(root: Path, clip_seconds: float, image_size: int, n_sources: int = 4) -> dict:
    """The VoxCeleb1-shaped tree of hard links; returns counts per split."""
    src = root / ".sources"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    wavs, jpgs = [], []
    for j in range(n_sources):
        t = np.arange(int(clip_seconds * SR)) / SR
        sf.write(src / f"{j}.wav", 0.3 * np.sin(2 * np.pi * 150 * (j + 1) * t)
                 + 0.05 * rng.standard_normal(t.size), SR, subtype="PCM_16")
        Image.fromarray(rng.integers(0, 255, (image_size, image_size, 3), np.uint8)).save(
            src / f"{j}.jpg", quality=90)
        wavs.append(src / f"{j}.wav")
        jpgs.append(src / f"{j}.jpg")
    rows, ident = ["VoxCeleb1_ID,VGGFace1_ID,Gender,Nationality,Set"], 0
    for split, (n_id, n_faces, n_clips) in TABLE_II.items():
        letters = LETTERS[split]
        for i, (nf, nc) in enumerate(zip(_spread(n_faces, n_id), _spread(n_clips, n_id))):
            vid, name = f"id{10001 + ident:05d}", f"{letters[i % len(letters)]}{i:04d}_Person"
            rows.append(f"{vid},{name},{'mf'[ident % 2]},Nowhere,dev")
            for c in range(nc):
                d = root / "voices" / vid / f"s{c // CLIPS_PER_SESSION:03d}"
                if c % CLIPS_PER_SESSION == 0:
                    d.mkdir(parents=True)
                os.link(wavs[(ident + c) % n_sources], d / f"{c:05d}.wav")
            d = root / "faces" / name
            d.mkdir(parents=True)
            for f in range(nf):
                os.link(jpgs[(ident + f) % n_sources], d / f"{f:08d}.jpg")
            ident += 1
    (root / "meta.csv").write_text("\n".join(rows) + "\n")
    return TABLE_II


class Stage:
    """Wall time, tracemalloc peak and ru_maxrss of a block."""

    def __init__(self, name: str, results: list):
        self.name, self.results = name, results

    def __enter__(self):
        tracemalloc.start()
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        dt = time.perf_counter() - self.t
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB -> MiB on Linux
        self.results.append((self.name, dt, peak / 2 ** 20, rss))
        print(f"{self.name:<34} {dt:9.2f} s  traced peak {peak / 2 ** 20:8.1f} MiB  "
              f"max RSS {rss:8.0f} MiB", flush=True)
        self.seconds = dt


def sub_index(index, split: str, fraction: float):
    """The index restricted to the first ``fraction`` of ``split``'s identities."""
    ids = index.identities.index[index.identities.split == split]
    keep = set(ids[: max(2, int(round(fraction * len(ids))))])
    return dataclasses.replace(index, voices=index.voices[index.voices.identity.isin(keep)],
                               faces=index.faces[index.faces.identity.isin(keep)])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default=None, help="work folder (removed at the end unless --keep)")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--clip-seconds", type=float, default=1.0, help="length of the tree's clips")
    p.add_argument("--image-size", type=int, default=48, help="side of the tree's faces")
    p.add_argument("--n", type=int, default=2000, help="tuples per list")
    p.add_argument("--fractions", type=float, nargs=2, default=(0.125, 0.25),
                   help="parts of the test split cached (growth check; projection from the last)")
    p.add_argument("--paper-clip-seconds", type=float, default=8.2,
                   help="clip length of the paper-size sample (VoxCeleb1's mean is about 8.2 s)")
    args = p.parse_args(argv)

    import torch
    torch.set_num_threads(1)
    from dsanet.config import paper, smoke
    from dsanet.data.cache import MAX_CROPS, build_cache
    from dsanet.data.layout import load_index
    from dsanet.data.protocols import read_list, write_protocols

    work = Path(args.work or tempfile.mkdtemp(prefix="dsanet-load-"))
    if work.exists() and any(work.iterdir()):
        shutil.rmtree(work)
    results: list = []
    try:
        with Stage("tree (hard links)", results):
            make_tree(work / "tree", args.clip_seconds, args.image_size)
        lines = (work / "tree" / "meta.csv").read_text().splitlines()
        (work / "half.csv").write_text("\n".join(lines[:1] + lines[1::2]) + "\n")
        with Stage("index: load_index, every 2nd identity", results) as half:
            half_index = load_index(work / "tree", meta=work / "half.csv")
        with Stage("index: load_index", results) as full:
            index = load_index(work / "tree")
        ratio = (len(index.voices) + len(index.faces)) / (len(half_index.voices) + len(half_index.faces))
        print(f"index growth: {ratio:.2f}x the files took {full.seconds / half.seconds:.2f}x the time")
        print(index.summary().to_string())
        with Stage(f"lists: write_protocols (n={args.n}), half", results) as half:
            write_protocols(half_index, work / "half-lists", n=args.n, log=lambda m: None)
        with Stage(f"lists: write_protocols (n={args.n})", results) as full:
            written = write_protocols(index, work / "lists", n=args.n, log=lambda m: None)
        print(f"list growth: 2x the identities took {full.seconds / half.seconds:.2f}x the time")
        with Stage("lists: read_list x2 (1:10 G, retrieval)", results):
            read_list(work / "lists" / "match_g_v2f_10_test.txt", "matching", index, "test")
            read_list(work / "lists" / "retrieval_v2f_test.txt", "retrieval", index, "test")
        print(f"{len(written)} lists written")

        cfg = smoke(cache_dir=str(work / "cache"), num_workers=0, device="cpu")
        per_item = []
        for frac in args.fractions:
            sub = sub_index(index, "test", frac)
            n_items = len(sub.voices) + len(sub.faces)
            with Stage(f"cache: test x {frac:g} ({n_items} items)", results) as st:
                build_cache(sub, cfg, "test")
            per_item.append((n_items, st.seconds / n_items))
        total_items = sum(v for _, f, c in TABLE_II.values() for v in (f, c))
        (n1, a), (n2, b) = per_item
        print(f"cache growth: {n2 / n1:.2f}x the items took {n2 * b / (n1 * a):.2f}x the time "
              f"(linear: {n2 / n1:.2f}x)")
        print(f"projected smoke-size cache of the whole corpus ({total_items} items, "
              f"{args.clip_seconds:g} s clips): {b * total_items / 60:.1f} min")

        # paper profile: real-length clips and 256 x 256 faces, a small sample
        sample = work / "paper-sample"
        ids = [(f"id{9001 + i}", f"{'CDE'[i % 3]}{i:03d}_Sample", "mf"[i % 2]) for i in range(6)]
        rng = np.random.default_rng(1)
        t = np.arange(int(args.paper_clip_seconds * SR)) / SR
        for i, (vid, name, _) in enumerate(ids):
            for c in range(8):
                (sample / "voices" / vid / "s0").mkdir(parents=True, exist_ok=True)
                sf.write(sample / "voices" / vid / "s0" / f"{c:05d}.wav",
                         0.3 * np.sin(2 * np.pi * 120 * (i + 1) * t)
                         + 0.05 * rng.standard_normal(t.size), SR, subtype="PCM_16")
                (sample / "faces" / name).mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (256, 256, 3), np.uint8)).save(
                    sample / "faces" / name / f"{c:08d}.jpg", quality=90)
        (sample / "meta.csv").write_text("VoxCeleb1_ID,VGGFace1_ID,Gender,Nationality,Set\n" + "".join(
            f"{v},{n},{g},Nowhere,dev\n" for v, n, g in ids))
        pcfg = paper(data_root=str(sample), cache_dir=str(work / "paper-cache"), num_workers=0,
                     device="cpu")
        sidx = load_index(sample)
        with Stage(f"cache: paper sizes, {len(sidx.voices)} clips + {len(sidx.faces)} faces",
                   results) as st:
            cached = build_cache(sidx, pcfg, "test")
        # the sample has one face per clip, the corpus about as many of each (149k / 137k)
        per_pair = st.seconds / len(sidx.voices)
        tmax = min(MAX_CROPS * pcfg.spec_frames, cached.voices.shape[-1] if len(cached.voices)
                   else MAX_CROPS * pcfg.spec_frames)
        clips = sum(c for _, _, c in TABLE_II.values())
        faces = sum(f for _, f, _ in TABLE_II.values())
        vbytes = clips * pcfg.spec_bins * MAX_CROPS * pcfg.spec_frames * 2
        fbytes = faces * 3 * pcfg.face_size ** 2
        print(f"paper profile: sample Tmax {tmax} frames (cap {MAX_CROPS * pcfg.spec_frames}); "
              f"projected cache {vbytes / 1e9:.1f} GB voices (1 x {pcfg.spec_bins} x "
              f"{MAX_CROPS * pcfg.spec_frames} float16) + {fbytes / 1e9:.1f} GB faces "
              f"(3 x {pcfg.face_size} x {pcfg.face_size} uint8) = {(vbytes + fbytes) / 1e9:.1f} GB "
              "on disk (memory-mapped, not resident)")
        print(f"paper profile: {per_pair * 1e3:.1f} ms per clip + face on one core -> about "
              f"{per_pair * max(clips, faces) / 3600:.1f} h for the corpus "
              f"({args.paper_clip_seconds:g} s clips)")
        print("\nstage | seconds | traced peak MiB | max RSS MiB")
        for name, dt, peak, rss in results:
            print(f"{name} | {dt:.2f} | {peak:.1f} | {rss:.0f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
