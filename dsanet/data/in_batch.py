"""In-batch training tuples: draw identities once, compute each item once, form tuples from the batch.

The paper's tuples (Sec. III, eqs. 12-24) are an anchor in one modality and k candidates in the
other: the anchor's own identity and k - 1 other identities. Drawing every tuple's items afresh
(:class:`dsanet.data.sampling.TupleSampler`, ``cfg.sampling = "tuple"``) costs k + 1 backbone
passes per tuple. Here (``cfg.sampling = "batch"``, the default) a step draws ``B`` distinct
training identities with one voice and one face each; every item goes through the backbones,
DEM and the generator once, and the V-F and F-V tuples are *index tables into the batch*:

* anchor ``i`` (a voice for V-F, a face for F-V) is paired with the other modality's item ``i``
  (the true candidate) and with the items of ``k - 1`` distinct other batch identities, drawn
  among all of them ("U") or among those of the anchor's gender ("G", ``constrained``);
* candidates are shuffled per tuple; ``label`` is the true candidate's column;
* ``per_anchor`` tuples per anchor and direction, each with its own negatives.

Every loss stays per tuple (eqs. 12-24 read the gathered (T, k+1, D) embeddings), so the
objective is the paper's; only the sampling of the items changes. Backbone items per tuple:
``2B / (2 * per_anchor * B) = 1 / per_anchor`` at any k (against k + 1 per tuple).

All draws are vectorised numpy on the host, from the trainer's sampling stream. Part of the
sampling home: :mod:`dsanet.data.sampling` re-exports these names.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .items import _ByIdentity, split_items
from .layout import DataError


@dataclass
class BatchPlan:
    """One step's items and tuples. Item tables index the split; tuple tables index the batch."""

    voice_items: np.ndarray          # (B,) voice item per batch identity (split-local index)
    face_items: np.ndarray           # (B,) face item per batch identity
    identities: np.ndarray           # (B,) identity ints, distinct
    tuples: dict                     # direction -> (anchor (T,), cands (T, k), label (T,)) int64

    @property
    def size(self) -> int:
        return len(self.identities)


def in_batch_tuples(gender: np.ndarray, k: int, per_anchor: int, constrained: bool,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tuples over a batch of B distinct identities: anchor (T,), cands (T, k), label (T,).

    ``gender`` (B,) int (0 m, 1 f, -1 unknown) of the batch identities; T = B * per_anchor.
    Row t: anchor position ``a = t // per_anchor``; ``cands[t]`` holds ``a`` (the true candidate)
    and k - 1 distinct positions other than ``a`` (of ``a``'s gender when ``constrained``), in a
    random order; ``label[t]`` is the column of ``a``.
    """
    B = len(gender)
    if k < 2:
        raise ValueError(f"matching needs k >= 2 candidates, got k={k}")
    anchor = np.repeat(np.arange(B), per_anchor)                          # (T,)
    T = len(anchor)
    keys = rng.random((T, B))                                             # (T, B)
    keys[np.arange(T), anchor] = np.inf                                   # never the anchor itself
    if constrained:
        if (gender < 0).any():
            raise DataError(f"a gender-constrained (G) batch needs every gender; "
                            f"{int((gender < 0).sum())} of {B} batch identities have none",
                            "unknown_gender")
        keys[gender[None, :] != gender[anchor][:, None]] = np.inf
    negs = np.argpartition(keys, k - 2, axis=1)[:, : k - 1]               # (T, k-1)
    if not np.isfinite(np.take_along_axis(keys, negs, 1)).all():
        what = "of the anchor's gender " if constrained else ""
        raise ValueError(f"a batch of {B} identities has too few other identities {what}"
                         f"for 1:{k} tuples; raise batch_size")
    cands = np.column_stack([anchor, negs])                               # (T, k), true first
    perm = rng.random((T, k)).argsort(axis=1)                             # a shuffle per row
    cands = np.take_along_axis(cands, perm, 1)
    label = perm.argmin(axis=1)                                           # where column 0 went
    return anchor, cands.astype(np.int64), label.astype(np.int64)


class IdentityBatchSampler:
    """B distinct identities with both modalities in one split, one voice and one face each."""

    def __init__(self, source, split: str | None = None):
        self.items = items = split_items(source, split)
        n_id = len(items.identity_gender)
        self.eligible = np.intersect1d(items.voice_ids, items.face_ids)   # sorted identity ints
        self.voices = _ByIdentity(items.voice_ids, n_id)
        self.faces = _ByIdentity(items.face_ids, n_id)
        if len(self.eligible) < 2:
            raise DataError(f"split {items.split!r}: in-batch tuples need >= 2 identities with "
                            f"both voices and faces, found {len(self.eligible)}", "too_few_identities")

    def sample(self, B: int, k: int, directions, rng: np.random.Generator, per_anchor: int = 1,
               constrained: bool = False) -> BatchPlan:
        """A :class:`BatchPlan` of ``B`` identities and tuples for each of ``directions``."""
        if B > len(self.eligible):
            raise ValueError(f"batch of {B} identities but the split has {len(self.eligible)} "
                             "with both voices and faces; lower batch_size")
        ids = rng.choice(self.eligible, size=B, replace=False)            # (B,) distinct
        gender = self.items.identity_gender[ids]
        tuples = {d: in_batch_tuples(gender, k, per_anchor, constrained, rng) for d in directions}
        return BatchPlan(self.voices.draw(ids, rng), self.faces.draw(ids, rng), ids, tuples)


__all__ = ["BatchPlan", "IdentityBatchSampler", "in_batch_tuples"]
