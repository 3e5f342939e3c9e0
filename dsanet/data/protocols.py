"""Evaluation protocols: the ``protocols`` command, writing every matching / verification /
retrieval list of a data tree.

Matching (Sec. IV, Tables III-XI; Wen et al. 2021 protocol): 1:k tuples, "U" (negatives among
all identities) and "G" (of the anchor's gender), both directions; verification pairs (U, G);
retrieval sets. Each list has its own random stream from the run seed (:func:`list_seed`).

The draws live in :mod:`dsanet.data.sampling` and the list files in :mod:`dsanet.data.lists`;
their names are re-exported here, so ``from dsanet.data.protocols import TupleSampler,
read_list`` keeps working.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .items import SplitItems, _ByIdentity, split_items  # noqa: F401 (_ByIdentity: old path)
from .layout import SPLITS, DataError, DataIndex, load_index
from .lists import (
    KINDS, PathResolver, ProtocolList, modality_of, read_lines, read_list, write_list,
)
from .sampling import (
    DIRECTIONS, PairSampler, TupleSampler, matching_tuples, retrieval_sets,
    sample_training_pairs, sample_training_tuples, training_sampler, verification_pairs,
)


# ----------------------------------------------------------------------------- CLI

_DIR_NAME = {"vf": "v2f", "fv": "f2v"}


def list_seed(seed: int, *parts) -> np.random.Generator:
    """An independent generator for one list, from the run seed and the list's coordinates."""
    codes = [seed] + [p if isinstance(p, int) else int.from_bytes(str(p).encode()[:8], "little")
                      for p in parts]
    return np.random.default_rng(np.random.SeedSequence(codes))


def write_protocols(index: DataIndex, out, seed: int = 0, n: int = 2000, splits=("val", "test"),
                    ks=tuple(range(2, 11)), log=print) -> list[Path]:
    """Every list: 1:k matching (U and G, both directions), verification (U, G), retrieval."""
    out, written = Path(out), []

    def emit(name, make):
        try:
            written.append(write_list(out / name, make(), index, split))
        except DataError as e:
            log(f"skipped {name}: {e}")

    for split in splits:
        for d in DIRECTIONS:
            for g in (False, True):
                tag = "g_" if g else ""
                for k in ks:
                    emit(f"match_{tag}{_DIR_NAME[d]}_{k}_{split}.txt", lambda: ProtocolList(
                        "matching", d, matching_tuples(index, split, k, d, g, n,
                                                       list_seed(seed, split, d, int(g), k))))
            emit(f"retrieval_{_DIR_NAME[d]}_{split}.txt", lambda: ProtocolList(
                "retrieval", d, *retrieval_sets(index, split, d)))
        for g in (False, True):
            tag = "g_" if g else ""
            emit(f"verify_{tag}v2f_{split}.txt", lambda: ProtocolList(
                "verification", "vf", verification_pairs(
                    index, split, n, list_seed(seed, split, "verify", int(g)), g)))
    return written


def add_protocols_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="data root (voices/, faces/, meta.csv)")
    p.add_argument("--out", required=True, help="folder for the list files")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the draws; each list has its own stream from it (default: 0)")
    p.add_argument("--meta", nargs="*", default=None, help="meta CSV file(s) or a folder of them")
    p.add_argument("--voice-root", default=None, help="voice folder (default: DATA/voices)")
    p.add_argument("--face-root", default=None, help="face folder (default: DATA/faces)")
    p.add_argument("--n", type=_at_least(1), default=2000,
                   help="tuples / pairs per list, at least 1 (default: 2000)")
    p.add_argument("--splits", nargs="+", default=["val", "test"], choices=SPLITS,
                   help="splits to write lists for (default: val test)")
    p.add_argument("--ks", type=_at_least(2), nargs="+", default=list(range(2, 11)),
                   help="candidates k of the 1:k matching lists, each at least 2 (default: 2 .. 10)")


def _at_least(low: int):
    """argparse type: an int >= ``low``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {v}")
        return v
    return parse


def run_protocols(args: argparse.Namespace) -> int:
    meta = args.meta[0] if args.meta and len(args.meta) == 1 else (args.meta or None)
    index = load_index(args.data, meta, args.voice_root, args.face_root)
    print(index.summary().to_string())
    print("skipped:", {k: v for k, v in index.skipped.items() if v})
    written = write_protocols(index, args.out, args.seed, args.n, args.splits, args.ks)
    print(f"wrote {len(written)} lists to {args.out}")
    return 0


__all__ = [
    "KINDS", "PairSampler", "PathResolver", "ProtocolList", "SplitItems", "TupleSampler",
    "add_protocols_arguments", "list_seed", "matching_tuples", "modality_of", "read_lines",
    "read_list", "retrieval_sets", "run_protocols", "sample_training_pairs",
    "sample_training_tuples", "split_items", "training_sampler", "verification_pairs",
    "write_list", "write_protocols",
]
