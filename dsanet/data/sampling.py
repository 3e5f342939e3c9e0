"""Every tuple and pair draw, for training and evaluation, and the candidate shuffles.

All draws are vectorised and reproducible from a seed. Item indices are *split-local*:
positions in ``DataIndex.split_items(split, modality)`` or in a ``CachedSplit``'s tables (the
two agree unless the cache skipped bad files; lists on disk hold paths, so they resolve against
either).

Matching (Sec. IV, Tables III-XI; Wen et al. 2021 protocol): an anchor item in one modality,
the true item of the anchor's identity and k-1 items of k-1 *distinct other* identities in the
other modality. "U" draws negatives among all identities of the split, "G" (``constrained``)
among identities of the anchor's gender. Three samplers draw such tuples, each with its own use
of the random stream; they are kept apart because trained runs and the committed reports depend
on their exact draw sequences:

* :class:`TupleSampler` (training with ``cfg.sampling = "tuple"``; the list files of
  :func:`dsanet.data.protocols.write_protocols` via :func:`matching_tuples` and
  :func:`verification_pairs`): anchors uniform, with replacement, over the anchor items of
  identities that can form a tuple (for "G": of a gender with at least k identities);
  candidate items uniform within their identity. :class:`PairSampler`: retrieval training pairs.
* :func:`sample_tuples` / :func:`sample_pairs` (the default evaluation cells of
  :func:`dsanet.engine.evaluate.build_protocols`): the same protocol over labelled sides (an
  identity and a gender per item, e.g. :class:`dsanet.engine.evaluate.Side`); anchors without
  replacement unless n exceeds the anchor pool; a cell that some anchor cannot fill raises
  :class:`TooFewIdentities`; pair labels are independent coin flips (balanced in
  :func:`verification_pairs`).
* :class:`IdentityBatchSampler` / :func:`in_batch_tuples` (training with
  ``cfg.sampling = "batch"``): tuples as index tables into a batch of distinct identities
  (:mod:`dsanet.data.in_batch`, re-exported here).

Candidate shuffles (so that neither the position of the true candidate nor argmax tie-breaking
can inflate accuracy): :func:`shuffle_candidates` for training batches (torch, the trainer's
generator), :func:`candidate_order` for evaluation (a seeded order per table cell); in-batch
tuples are shuffled inside :func:`in_batch_tuples`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .in_batch import BatchPlan, IdentityBatchSampler, in_batch_tuples
from .items import DIRECTIONS, SplitItems, _ByIdentity, _modalities, split_items
from .layout import DataError

_CHUNK = 1 << 22  # random keys per chunk when drawing distinct negatives


# ----------------------------------------------------------------------------- samplers

class TupleSampler:
    """Matching tuples (anchor, true, k-1 negatives) for one split, direction, k and protocol.

    Everything that does not depend on the draw (groups, pools) is computed once, so that a
    training loop can call :meth:`sample` every step.
    """

    def __init__(self, source, split: str | None, k: int, direction: str,
                 constrained: bool = False):
        if k < 2:
            raise ValueError(f"k must be at least 2, got {k}")
        self.items = items = split_items(source, split)
        self.k, self.direction, self.constrained = k, direction, constrained
        a_mod, c_mod = _modalities(direction)
        n_id = len(items.identity_gender)
        self.anchor_ids = items.ids(a_mod)
        self.cands = _ByIdentity(items.ids(c_mod), n_id)
        both = np.intersect1d(self.anchor_ids, items.ids(c_mod))          # eligible identities
        unknown = int((items.identity_gender[both] < 0).sum()) if constrained else 0
        if unknown:
            raise DataError(
                f"split {items.split!r}: the G protocol draws negatives of the anchor's gender, "
                f"but {unknown} of {len(both)} identities have no known gender (meta Gender "
                "other than m / f / male / female)", "unknown_gender")
        key = items.identity_gender if constrained else np.zeros(n_id, np.int64)
        self.key = key
        self.pools = {}                                                  # group -> (m,) ids
        for g in np.unique(key[both]):
            pool = both[key[both] == g]
            if len(pool) >= k:
                self.pools[int(g)] = pool
        usable = np.concatenate([np.zeros(0, np.int64)] + list(self.pools.values()))
        self.anchor_pool = np.flatnonzero(np.isin(self.anchor_ids, usable))  # anchor items
        if len(self.anchor_pool) == 0:
            what = "of one gender " if constrained else ""
            raise DataError(
                f"split {items.split!r}: 1:{k} matching needs {k} identities {what}with both "
                f"voices and faces; found {len(both)} in all", "too_few_identities")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, k+1) int64 item indices: anchor, true candidate, k-1 negatives."""
        anchors = rng.choice(self.anchor_pool, size=n)                   # (n,)
        aid = self.anchor_ids[anchors]                                   # (n,)
        neg_ids = np.empty((n, self.k - 1), np.int64)
        for g, pool in self.pools.items():
            rows = np.flatnonzero(self.key[aid] == g)
            neg_ids[rows] = self._distinct_others(pool, aid[rows], rng)
        pos = self.cands.draw(aid, rng)                                  # (n,)
        negs = self.cands.draw(neg_ids, rng)                             # (n, k-1)
        return np.column_stack([anchors, pos, negs]).astype(np.int64)

    def _distinct_others(self, pool: np.ndarray, aid: np.ndarray, rng) -> np.ndarray:
        """k-1 distinct identities of ``pool`` other than each row's anchor: (r,) -> (r, k-1)."""
        m, out = len(pool), np.empty((len(aid), self.k - 1), np.int64)
        apos = np.searchsorted(pool, aid)                                # pool is sorted
        step = max(1, _CHUNK // m)
        for s in range(0, len(aid), step):                               # memory chunks only
            keys = rng.random((min(step, len(aid) - s), m))
            keys[np.arange(keys.shape[0]), apos[s:s + step]] = 2.0       # never the anchor
            pick = np.argpartition(keys, self.k - 2, axis=1)[:, : self.k - 1]
            out[s:s + step] = pool[pick]
        return out


class PairSampler:
    """Retrieval training pairs (voice item, face item) of one identity; voices drawn uniformly."""

    def __init__(self, source, split: str | None = None):
        self.items = items = split_items(source, split)
        both = np.intersect1d(items.voice_ids, items.face_ids)
        self.voices = np.flatnonzero(np.isin(items.voice_ids, both))
        self.faces = _ByIdentity(items.face_ids, len(items.identity_gender))
        if len(self.voices) == 0:
            raise DataError(f"split {items.split!r}: no identity has both voices and faces",
                            "too_few_identities")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        v = rng.choice(self.voices, size=n)                               # (n,)
        return np.column_stack([v, self.faces.draw(self.items.voice_ids[v], rng)])


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def matching_tuples(source, split: str | None = None, k: int = 2, direction: str = "vf",
                    constrained: bool = False, n: int = 1000, seed=0) -> np.ndarray:
    """(n, k+1) int64: anchor item, true item, k-1 negatives of distinct other identities.

    ``constrained`` (the "G" protocol) draws negatives of the anchor's gender. ``seed`` is an
    int or a ``numpy.random.Generator``.
    """
    return TupleSampler(source, split, k, direction, constrained).sample(n, _rng(seed))


def verification_pairs(source, split: str | None = None, n: int = 1000, seed=0,
                       constrained: bool = False) -> np.ndarray:
    """(n, 3) int64 rows (voice item, face item, label): half positive (label 1), half negative."""
    rng = _rng(seed)
    t = TupleSampler(source, split, 2, "vf", constrained).sample(n, rng)   # voice, pos, neg
    label = rng.permutation(np.arange(n) % 2 == 0)                        # balanced
    return np.column_stack([t[:, 0], np.where(label, t[:, 1], t[:, 2]), label]).astype(np.int64)


def retrieval_sets(source, split: str | None = None, direction: str = "vf"):
    """(queries, gallery) item indices: every item of the identities present in both modalities."""
    items = split_items(source, split)
    q_mod, g_mod = _modalities(direction)
    both = np.intersect1d(items.voice_ids, items.face_ids)
    return (np.flatnonzero(np.isin(items.ids(q_mod), both)),
            np.flatnonzero(np.isin(items.ids(g_mod), both)))


def sample_training_tuples(cached, B: int, k: int, direction: str, rng,
                           constrained: bool = False) -> np.ndarray:
    """One batch of training tuples (B, k+1); build a :class:`TupleSampler` once for loops."""
    return TupleSampler(cached, None, k, direction, constrained).sample(B, _rng(rng))


def sample_training_pairs(cached, B: int, rng) -> np.ndarray:
    """One batch of retrieval training pairs (B, 2); build a :class:`PairSampler` for loops."""
    return PairSampler(cached).sample(B, _rng(rng))


def training_sampler(cached, cfg, seed=None):
    """Infinite iterator of training batches for ``cfg.task``.

    matching: yields ``[(direction, tuples (b, k+1)), ...]`` - one entry, or for
    ``cfg.direction == "both"`` two with half of ``cfg.batch_size`` each ("vf" first);
    retrieval: yields pairs (B, 2).
    """
    rng = np.random.default_rng(cfg.seed if seed is None else seed)
    if cfg.task == "retrieval":
        pairs = PairSampler(cached)
        while True:
            yield pairs.sample(cfg.batch_size, rng)
    dirs = list(DIRECTIONS) if cfg.direction == "both" else [cfg.direction]
    sizes = [cfg.batch_size // len(dirs) + (i < cfg.batch_size % len(dirs))
             for i in range(len(dirs))]
    samplers = {d: TupleSampler(cached, None, cfg.k, d) for d in dirs}
    while True:
        yield [(d, samplers[d].sample(b, rng)) for d, b in zip(dirs, sizes) if b > 0]


# ----------------------------------------------------------------------------- evaluation draws

class TooFewIdentities(ValueError):
    """A split has fewer (same-gender) identities than a 1:k tuple needs."""


def _unknown_gender(g) -> np.ndarray:
    """Items whose gender code is unknown (negative integer codes, as layout writes -1)."""
    g = np.asarray(g)
    return g < 0 if g.dtype.kind in "iuf" else np.zeros(g.shape, bool)


def sample_tuples(anchor, cand, k: int, n: int, rng: np.random.Generator,
                  constrained: bool = False) -> np.ndarray:
    """n random 1:k tuples (n, k+1): anchor item, an item of its identity, k-1 other identities.

    Negatives are k-1 distinct identities other than the anchor's (of the anchor's gender when
    ``constrained``, the "G" protocol of Wen et al.), each represented by a random item.
    ``anchor`` and ``cand`` are labelled sides (:class:`dsanet.engine.evaluate.Side`):
    ``.ids`` (N,) identity and ``.gender`` (N,) code (or None) per item.
    """
    if constrained and (anchor.gender is None or cand.gender is None):
        raise ValueError("gender-constrained tuples need genders in the embeddings")
    if constrained and (_unknown_gender(anchor.gender).any() or _unknown_gender(cand.gender).any()):
        n_unknown = len(np.union1d(anchor.ids[_unknown_gender(anchor.gender)],
                                   cand.ids[_unknown_gender(cand.gender)]))
        raise ValueError(f"the gender-constrained (G) protocol needs every identity's gender; "
                         f"{n_unknown} identities have none")
    order = np.argsort(cand.ids, kind="stable")                     # candidate items by identity
    ident, start, count = np.unique(cand.ids[order], return_index=True, return_counts=True)
    pool = np.flatnonzero(np.isin(anchor.ids, ident))
    if len(pool) == 0:
        raise ValueError("no anchor identity has a candidate item")
    a = rng.choice(pool, n, replace=n > len(pool))                  # (n,)
    a_id = np.searchsorted(ident, anchor.ids[a])                    # (n,) positions in ident
    keys = rng.random((n, len(ident)))                              # random order of identities
    keys[np.arange(n), a_id] = np.inf
    if constrained:
        keys[cand.gender[order[start]][None, :] != anchor.gender[a][:, None]] = np.inf
    if (np.isfinite(keys).sum(1) < k - 1).any():
        raise TooFewIdentities(f"too few identities for k={k} negatives"
                               f"{' of the same gender' if constrained else ''}")
    neg_id = np.argsort(keys, axis=1)[:, : k - 1]                   # (n, k-1)
    pos, neg = (_random_item(order, start, count, i, rng) for i in (a_id, neg_id))
    return np.column_stack([a, pos, neg]).astype(np.int64)


def _random_item(order, start, count, i: np.ndarray, rng) -> np.ndarray:
    """A uniformly drawn item of identity positions i (any shape), items grouped by ``order``."""
    return order[start[i] + (rng.random(i.shape) * count[i]).astype(np.int64)]


def sample_pairs(emb, n: int, rng: np.random.Generator,
                 constrained: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """n (voice, face) pairs (n, 2), about half of one identity, and their labels (n,).

    ``emb`` gives the voice and face sides by ``emb.sides("vf")`` (an
    :class:`dsanet.engine.evaluate.Embeddings`).
    """
    t = sample_tuples(*emb.sides("vf"), 2, n, rng, constrained)    # (n, 3)
    labels = (rng.random(n) < 0.5).astype(int)
    return np.column_stack([t[:, 0], np.where(labels == 1, t[:, 1], t[:, 2])]), labels


# ----------------------------------------------------------------------------- candidate shuffles

def _uniform(shape, generator: torch.Generator | None, device) -> Tensor:
    """Uniform keys drawn on the generator's device (else on ``device``), moved to ``device``."""
    gdev = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=gdev).to(device)


def shuffle_candidates(cands: Tensor, generator: torch.Generator | None = None):
    """cands (B, k) with the true item in column 0 -> (shuffled (B, k), label (B,)).

    A random permutation per row (argsort of uniform keys), so the label is uniform on 0..k-1.
    """
    perm = _uniform(cands.shape, generator, cands.device).argsort(dim=1)  # (B, k)
    return cands.gather(1, perm), perm.argmin(dim=1)                       # column 0 -> label


def candidate_order(n: int, k: int, seed: int = 0) -> Tensor:
    """A seeded random order of the k candidates of each tuple -> (n, k) long.

    Row i lists which tuple column (0 = the positive) lands at each position, so neither the
    fixed position of the positive in the lists nor argmax tie-breaking can inflate accuracy.
    (``dsanet.engine.evaluate.shuffle_candidates`` is this function.)
    """
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, k, generator=gen).argsort(dim=1)


__all__ = [
    "BatchPlan", "DIRECTIONS", "IdentityBatchSampler", "PairSampler", "SplitItems",
    "TooFewIdentities", "TupleSampler", "candidate_order", "in_batch_tuples", "matching_tuples",
    "retrieval_sets", "sample_pairs", "sample_training_pairs", "sample_training_tuples",
    "sample_tuples", "shuffle_candidates", "split_items", "training_sampler", "verification_pairs",
]
