"""A split's items as arrays: paths and identity ints per modality, and items grouped by identity.

The common input of the samplers (:mod:`dsanet.data.sampling`, :mod:`dsanet.data.in_batch`) and
of the list files (:mod:`dsanet.data.lists`). Item indices are *split-local*: positions in
``DataIndex.split_items(split, modality)`` or in a ``CachedSplit``'s tables (the two agree unless
the cache skipped bad files).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layout import DataIndex

DIRECTIONS = ("vf", "fv")


@dataclass
class SplitItems:
    """Paths and identity ints of one split's items; ``identity_gender`` covers the whole index."""

    split: str
    voice_paths: np.ndarray     # (Nv,) str
    face_paths: np.ndarray      # (Nf,) str
    voice_ids: np.ndarray       # (Nv,) int64
    face_ids: np.ndarray        # (Nf,) int64
    identity_gender: np.ndarray  # (n_identities,) int64: 0 m, 1 f, -1 unknown

    def ids(self, modality: str) -> np.ndarray:
        return self.voice_ids if modality == "voice" else self.face_ids

    def paths(self, modality: str) -> np.ndarray:
        return self.voice_paths if modality == "voice" else self.face_paths


def split_items(source, split: str | None = None) -> SplitItems:
    """The items of ``split`` of a :class:`DataIndex`, or of a ``CachedSplit`` (its own split)."""
    if isinstance(source, SplitItems):
        return source
    if hasattr(source, "voice_table"):  # CachedSplit
        if split not in (None, source.split):
            raise ValueError(f"the cached split is {source.split!r}, not {split!r}")
        vt, ft, index, split = source.voice_table, source.face_table, source.index, source.split
    elif isinstance(source, DataIndex):
        if split is None:
            raise ValueError("split is required with a DataIndex")
        vt, ft, index = (source.split_items(split, "voice"), source.split_items(split, "face"),
                         source)
    else:
        raise TypeError(f"expected a DataIndex or CachedSplit, got {type(source).__name__}")
    return SplitItems(split, vt.path.to_numpy(str), ft.path.to_numpy(str),
                      vt.identity.to_numpy(np.int64), ft.identity.to_numpy(np.int64),
                      index.identity_gender)


def _modalities(direction: str) -> tuple[str, str]:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return ("voice", "face") if direction == "vf" else ("face", "voice")


class _ByIdentity:
    """Items grouped by identity: draw one item of each given identity, vectorised."""

    def __init__(self, ids: np.ndarray, n_identities: int):
        self.order = np.argsort(ids, kind="stable")                       # (N,)
        self.counts = np.bincount(ids, minlength=n_identities)            # (I,)
        self.starts = np.cumsum(self.counts) - self.counts                # (I,)

    def draw(self, identities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.counts[identities]
        offset = np.minimum((rng.random(identities.shape) * c).astype(np.int64), c - 1)
        return self.order[self.starts[identities] + offset]


__all__ = ["DIRECTIONS", "SplitItems", "split_items"]
