"""Evaluation: 1:k matching accuracy, verification AUC / EER, retrieval mAP, bootstrap intervals.

The paper measures matching by accuracy (ACC) and retrieval by mean average precision (mAP),
Sec. IV-A "Evaluation protocol"; Tables III-XII. Verification (ROC AUC, EER) follows the
protocol of Wen et al., whose split the paper uses.

Conventions (recorded in docs/fidelity.md):

* The backbone runs once per item of a split (:func:`embed_split`); every protocol then gathers
  rows of those cached embeddings, so a 1:k tuple costs an index, not k + 1 backbone passes.
  This is exact because the evaluation path has no DEM and runs BatchNorm on running statistics.
* Metrics are stored as fractions in [0, 1]; the paper's tables are in percent, so
  :func:`as_percent` and :func:`headline` multiply by 100 for display and for comparison with
  :mod:`dsanet.paper`.
* Direction ``"vf"`` (the paper's V-F): voice anchor (or query), face candidates (or gallery);
  ``"fv"`` the reverse. ``"V-F"`` / ``"F-V"`` are accepted too and are what tables show.
* Scores: ``"distance"`` = negative Euclidean distance (what the structured metric of eqs.
  (21)-(22) trains), ``"cosine"`` = cosine similarity, ``"classifier"`` = the logits of the
  model's matching classifier (only for tuples with its k).
"""
from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score, roc_curve
from torch import Tensor

DIRECTIONS = {"vf": "vf", "fv": "fv", "V-F": "vf", "F-V": "fv"}
LABELS = {"vf": "V-F", "fv": "F-V"}
COLUMNS = ["task", "direction", "protocol", "k", "scorer", "metric",
           "value", "ci_low", "ci_high", "n"]
SCORES = ("distance", "cosine")


def _direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; use 'vf', 'fv', 'V-F' or 'F-V'")
    return DIRECTIONS[direction]


# ------------------------------------------------------------------------------ embeddings

class Side(NamedTuple):
    """One modality of a split: embeddings, identity per item, gender per item (or None)."""
    x: Tensor                     # (N, D)
    ids: np.ndarray               # (N,)
    gender: np.ndarray | None     # (N,)


@dataclass
class Embeddings:
    """Evaluation embeddings of every item of a split (float32, CPU) and their labels."""
    voice: Tensor                        # (Nv, D)
    face: Tensor                         # (Nf, D)
    voice_ids: np.ndarray                # (Nv,) identity int per voice item
    face_ids: np.ndarray                 # (Nf,)
    voice_gender: np.ndarray | None = None   # (Nv,) any comparable code; None: no G protocol
    face_gender: np.ndarray | None = None    # (Nf,)

    def __post_init__(self):
        self.voice_ids, self.face_ids = np.asarray(self.voice_ids), np.asarray(self.face_ids)
        for name, x, ids, g in (("voice", self.voice, self.voice_ids, self.voice_gender),
                                ("face", self.face, self.face_ids, self.face_gender)):
            if x.ndim != 2 or len(ids) != len(x) or (g is not None and len(g) != len(x)):
                raise ValueError(f"Embeddings.{name}: embeddings {tuple(x.shape)}, ids "
                                 f"{len(ids)}, gender {None if g is None else len(g)} disagree")
        if self.voice.shape[1] != self.face.shape[1]:
            raise ValueError(f"Embeddings: voice dim {self.voice.shape[1]} != face dim "
                             f"{self.face.shape[1]}")

    @property
    def has_gender(self) -> bool:
        return self.voice_gender is not None and self.face_gender is not None

    def side(self, modality: str) -> Side:
        if modality == "voice":
            return Side(self.voice, self.voice_ids, self.voice_gender)
        return Side(self.face, self.face_ids, self.face_gender)

    def sides(self, direction: str) -> tuple[Side, Side]:
        """(anchor / query side, candidate / gallery side) for a direction."""
        d = _direction(direction)
        return (self.side("voice"), self.side("face")) if d == "vf" else \
            (self.side("face"), self.side("voice"))


def embed_split(model, cached, cfg, batch_size: int = 256) -> Embeddings:
    """Embed every voice and face item of a cached split once (no DEM, eval BatchNorm).

    Items come from the data layer's evaluation gather (``train=False``): voices centre-cropped
    to ``cfg.spec_frames``, faces normalised (mean 0.5, std 0.5), no flip. Runs under
    ``torch.inference_mode`` and bf16 autocast on CUDA (when ``cfg.amp``); the model's
    train/eval mode is restored afterwards.

    ``cfg.eval_generator_mode="train"`` (the published script's test pass): only the generator
    stays in train mode, so dropout is on and BatchNorm uses the statistics of each chunk of
    ``batch_size`` items (one input call); the dropout masks come from a fixed seed (the global
    RNG is left as it was) and the generator's running statistics are restored afterwards.
    """
    from dsanet.data.batches import modality_batch  # the data layer, imported lazily

    was_training = model.training
    model.eval()
    generator_train = getattr(cfg, "eval_generator_mode", "eval") == "train"
    saved = ({k: v.clone() for k, v in model.generator.state_dict().items()}
             if generator_train else None)
    try:
        with torch.inference_mode(), _fixed_rng(generator_train, model):
            if generator_train:
                model.generator.train()
            voice, face = (_embed_chunks(model, cached, m, cfg, batch_size, modality_batch)
                           for m in ("voice", "face"))
    finally:
        if saved is not None:
            model.generator.load_state_dict(saved)
        model.train(was_training)
    return Embeddings(voice, face, _np(cached.voice_ids), _np(cached.face_ids),
                      _gender(cached, "voice"), _gender(cached, "face"))


def _fixed_rng(active: bool, model):
    """A context with the global RNG forked and seeded (train-mode dropout), or a no-op."""
    import contextlib

    if not active:
        return contextlib.nullcontext()
    device = next(model.parameters()).device
    devices = [device] if device.type == "cuda" else []
    stack = contextlib.ExitStack()
    stack.enter_context(torch.random.fork_rng(devices=devices))
    torch.manual_seed(0)
    return stack


def _embed_chunks(model, cached, modality: str, cfg, batch_size: int, gather) -> Tensor:
    """model.embed over every item of one modality in chunks -> (N, D) float32 on CPU."""
    n = len(cached.voices if modality == "voice" else cached.faces)
    if n == 0:
        raise ValueError(f"embed_split: the cached split has no {modality} items")
    device = next(model.parameters()).device
    amp = device.type == "cuda" and getattr(cfg, "amp", True)
    out = []
    for start in range(0, n, batch_size):
        items = torch.arange(start, min(start + batch_size, n))              # (b,)
        x = gather(cached, modality, items, cfg, train=False)              # (b, C, H, W)
        x = x.to(device, torch.float32, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            out.append(model.embed(x, modality).float())                    # (b, D)
    return torch.cat(out).cpu()                                             # one transfer


def _np(a) -> np.ndarray:
    return a.cpu().numpy() if isinstance(a, Tensor) else np.asarray(a)


def _gender(cached, modality: str) -> np.ndarray | None:
    g = getattr(cached, f"{modality}_gender", None)
    return None if g is None else _np(g)


# ------------------------------------------------------------------------------ scores

def similarity(a: Tensor, b: Tensor, score: str = "distance") -> Tensor:
    """Elementwise score of broadcastable (..., D) pairs -> (...). Higher = more alike."""
    if score == "distance":
        return -torch.linalg.vector_norm(a - b, dim=-1)
    if score == "cosine":
        return torch.nn.functional.cosine_similarity(a, b, dim=-1)
    raise ValueError(f"unknown score {score!r}; use one of {SCORES}")


def similarity_matrix(q: Tensor, g: Tensor, score: str = "distance") -> Tensor:
    """All-pairs score of queries (Q, D) against gallery (G, D) -> (Q, G)."""
    if score == "distance":
        return -torch.cdist(q, g)
    if score == "cosine":
        qn, gn = (torch.nn.functional.normalize(t, dim=-1) for t in (q, g))
        return qn @ gn.T
    raise ValueError(f"unknown score {score!r}; use one of {SCORES}")


# ------------------------------------------------------------------------------ matching

def shuffle_candidates(n: int, k: int, seed: int = 0) -> Tensor:
    """A seeded random order of the k candidates of each tuple -> (n, k) long.

    Row i lists which tuple column (0 = the positive) lands at each position, so neither the
    fixed position of the positive in the lists nor argmax tie-breaking can inflate accuracy.
    """
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, k, generator=gen).argsort(dim=1)


def _check_tuples(tuples, anchor: Side, cand: Side) -> Tensor:
    t = torch.as_tensor(np.asarray(tuples), dtype=torch.long)
    if t.ndim != 2 or t.shape[1] < 3:
        raise ValueError(f"matching tuples must be (n, k+1) with k >= 2, got {tuple(t.shape)}")
    if len(t) and (t.min() < 0 or t[:, 0].max() >= len(anchor.x)
                   or t[:, 1:].max() >= len(cand.x)):
        raise ValueError(f"matching tuples index outside the split ({len(anchor.x)} anchors, "
                         f"{len(cand.x)} candidates)")
    return t


def matching_scores(emb: Embeddings, tuples, direction: str, scorer: str = "distance",
                    classifier=None, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Scores of the shuffled candidates of each tuple and the position of the positive.

    ``tuples`` (n, k+1): anchor item, positive item, k-1 negatives (item indices of the anchor
    and candidate modalities). Returns ``scores`` (n, k) float and ``label`` (n,) long.
    """
    anchor_side, cand_side = emb.sides(direction)
    t = _check_tuples(tuples, anchor_side, cand_side)               # (n, k+1)
    perm = shuffle_candidates(len(t), t.shape[1] - 1, seed)         # (n, k)
    label = (perm == 0).int().argmax(dim=1)                          # (n,)
    anchor = anchor_side.x[t[:, 0]]                                  # (n, D)
    cands = cand_side.x[t[:, 1:].gather(1, perm)]                    # (n, k, D)
    if scorer == "classifier":
        return classifier_scores(classifier, anchor, cands), label
    return similarity(anchor[:, None], cands, scorer), label


def classifier_scores(classifier, anchor: Tensor, cands: Tensor) -> Tensor:
    """Logits (n, k) of a MatchingClassifier on (n, D) anchors and (n, k, D) candidates."""
    if classifier is None:
        raise ValueError("scorer='classifier' needs a classifier")
    k_clf = getattr(classifier, "k", None)
    if k_clf is not None and k_clf != cands.shape[1]:
        raise ValueError(f"the classifier scores k={k_clf} candidates, the tuples have "
                         f"k={cands.shape[1]}: use scorer='distance'")
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    try:
        with torch.inference_mode():
            logits = classifier(anchor.to(device), cands.to(device))  # (n, k)
    finally:
        classifier.train(was_training)
    return logits.float().cpu()


def matching_accuracy(emb: Embeddings, tuples, direction: str, scorer: str = "distance",
                      classifier=None, seed: int = 0) -> np.ndarray:
    """Per-tuple correctness (n,) bool: the top-scored candidate is the positive."""
    scores, label = matching_scores(emb, tuples, direction, scorer, classifier, seed)
    return (scores.argmax(dim=1) == label).numpy()


# ------------------------------------------------------------------------------ verification

def pair_scores(emb: Embeddings, pairs, score: str = "distance") -> np.ndarray:
    """Scores (n,) of (voice item, face item) pairs (n, 2)."""
    p = torch.as_tensor(np.asarray(pairs), dtype=torch.long)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"verification pairs must be (n, 2) voice/face indices, "
                         f"got {tuple(p.shape)}")
    if len(p) and (p.min() < 0 or p[:, 0].max() >= len(emb.voice)
                   or p[:, 1].max() >= len(emb.face)):
        raise ValueError(f"verification pairs index outside the split ({len(emb.voice)} "
                         f"voices, {len(emb.face)} faces)")
    return similarity(emb.voice[p[:, 0]], emb.face[p[:, 1]], score).numpy()


def eer_from_roc(fpr: np.ndarray, tpr: np.ndarray) -> np.ndarray:
    """Equal error rate of ROC curves (..., P) ordered by decreasing threshold, starting at (0, 0).

    The point where FPR = FNR (= 1 - TPR), linearly interpolated between the two ROC points
    whose FNR - FPR changes sign. Vectorised over leading dimensions.
    """
    fpr, tpr = np.asarray(fpr, float), np.asarray(tpr, float)
    d = (1.0 - tpr) - fpr                            # (..., P) non-increasing, ends at -1
    i = np.argmax(d <= 0, axis=-1)[..., None]        # first index at or past the crossing
    i0 = np.maximum(i - 1, 0)
    d0, d1 = np.take_along_axis(d, i0, -1), np.take_along_axis(d, i, -1)
    f0, f1 = np.take_along_axis(fpr, i0, -1), np.take_along_axis(fpr, i, -1)
    t = np.where(d0 > d1, d0 / np.where(d0 > d1, d0 - d1, 1.0), 1.0)
    eer = (f0 + t * (f1 - f0))[..., 0]
    return np.where(np.isnan(d).any(axis=-1), np.nan, eer)      # a one-class curve has none


def roc_auc_eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """ROC AUC and EER of scores (n,) for binary labels (n,) (1 = same identity)."""
    labels = np.asarray(labels).astype(int)
    if labels.min() == labels.max():
        raise ValueError("verification needs both positive and negative pairs")
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    return float(roc_auc_score(labels, scores)), float(eer_from_roc(fpr, tpr))


def verification(emb: Embeddings, pairs, labels, score: str = "distance") -> dict:
    """Verification of (voice, face) pairs: {"auc", "eer", "n"} (fractions)."""
    auc, eer = roc_auc_eer(pair_scores(emb, pairs, score), labels)
    return {"auc": auc, "eer": eer, "n": len(labels)}


def _roc_from_counts(scores: np.ndarray, labels: np.ndarray, counts: np.ndarray):
    """ROC curves (B, U+1) of B weighted copies of one scored set; counts (B, n) item weights.

    Thresholds are the U distinct scores in decreasing order, with the (0, 0) point first.
    """
    order = np.argsort(-scores, kind="stable")
    s, y, c = scores[order], labels[order].astype(bool), counts[:, order]    # (n,), (B, n)
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])                    # (U,)
    tp = np.add.reduceat(c * y, starts, axis=1).cumsum(1)                    # (B, U)
    fp = np.add.reduceat(c * ~y, starts, axis=1).cumsum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr, fpr = tp / tp[:, -1:], fp / fp[:, -1:]
    zero = np.zeros((len(c), 1))
    return np.hstack([zero, fpr]), np.hstack([zero, tpr])


def bootstrap_auc_eer(scores, labels, n_boot: int, seed: int = 0, alpha: float = 0.05,
                      block: int = 4_000_000) -> dict:
    """Percentile bootstrap over pairs of AUC and EER -> {"auc": (lo, hi), "eer": (lo, hi)}.

    Each resample is a row of item counts; ROC curves of all resamples are built at once from
    cumulative counts over the sorted scores (blocks of rows bound the memory).
    """
    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(int)
    n, rng = len(scores), np.random.default_rng(seed)
    aucs, eers = [], []
    for b in _blocks(n_boot, max(1, block // max(n, 1))):
        idx = rng.integers(0, n, (b, n))                                          # (b, n)
        counts = np.bincount((idx + n * np.arange(b)[:, None]).ravel(), minlength=b * n)
        fpr, tpr = _roc_from_counts(scores, labels, counts.reshape(b, n).astype(float))
        aucs.append(np.trapezoid(tpr, fpr, axis=1))
        eers.append(eer_from_roc(fpr, tpr))
    return {m: _interval(np.concatenate(v), alpha) for m, v in (("auc", aucs), ("eer", eers))}


# ------------------------------------------------------------------------------ retrieval

def average_precision(scores: Tensor, relevant: Tensor) -> Tensor:
    """AP per row of scores (Q, G) with relevance (Q, G) bool -> (Q,) (NaN: no relevant item).

    AP = sum_r P@r * rel_r / n_rel over the gallery ranked by decreasing score.
    """
    order = scores.argsort(dim=1, descending=True, stable=True)          # (Q, G)
    rel = relevant.gather(1, order).float()                              # (Q, G) ranked
    ranks = torch.arange(1, rel.shape[1] + 1, device=rel.device)         # (G,)
    precision = rel.cumsum(1) / ranks                                    # (Q, G)
    return (precision * rel).sum(1) / rel.sum(1)                         # 0 / 0 = NaN


def retrieval_ap(emb: Embeddings, direction: str, score: str = "distance",
                 chunk: int = 512, device=None) -> np.ndarray:
    """AP (Q',) of every query of one modality against the whole gallery of the other.

    Relevant = same identity. Queries whose identity has no gallery item are left out.
    Queries go in chunks of ``chunk`` rows (memory O(chunk * G)), on ``device`` if given.
    """
    query, gallery = emb.sides(direction)
    g_x = gallery.x.to(device) if device is not None else gallery.x
    g_ids = torch.as_tensor(gallery.ids).to(g_x.device)
    q_ids = torch.as_tensor(query.ids).to(g_x.device)
    aps = [average_precision(similarity_matrix(query.x[s].to(g_x.device), g_x, score),
                             q_ids[s, None] == g_ids[None, :])
           for s in (slice(i, i + chunk) for i in range(0, len(query.x), chunk))]
    ap = torch.cat(aps).cpu().numpy()
    return ap[~np.isnan(ap)]


def retrieval_map(emb: Embeddings, direction: str, score: str = "distance") -> float:
    """Mean average precision (fraction) of :func:`retrieval_ap`."""
    return float(retrieval_ap(emb, direction, score).mean())


# ------------------------------------------------------------------------------ intervals

def _blocks(total: int, size: int):
    for start in range(0, total, size):
        yield min(size, total - start)


def _interval(stats: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, hi = np.nanquantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_ci(values, n_boot: int, seed: int = 0, alpha: float = 0.05,
                 block: int = 4_000_000) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval of the mean of per-item values (n,).

    One (n_boot, n) draw of resample indices (in row blocks of at most ``block`` entries).
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or len(v) == 0:
        raise ValueError(f"bootstrap_ci needs a non-empty 1-d array, got shape {v.shape}")
    rng = np.random.default_rng(seed)
    means = np.concatenate([v[rng.integers(0, len(v), (b, len(v)))].mean(1)
                            for b in _blocks(n_boot, max(1, block // len(v)))])  # (n_boot,)
    return _interval(means, alpha)


# ------------------------------------------------------------------------------ protocols

@dataclass
class Protocols:
    """Evaluation lists as item indices of one split.

    matching: (direction, "U" | "G", k) -> (n, k+1) [anchor, positive, k-1 negatives];
    verification: "U" | "G" -> (pairs (n, 2) [voice, face], labels (n,) 1 = same identity);
    retrieval: directions evaluated over the whole split.
    """
    matching: dict = field(default_factory=dict)
    verification: dict = field(default_factory=dict)
    retrieval: tuple = ("vf", "fv")


class TooFewIdentities(ValueError):
    """A split has fewer (same-gender) identities than a 1:k tuple needs."""


def _unknown_gender(g) -> np.ndarray:
    """Items whose gender code is unknown (negative integer codes, as layout writes -1)."""
    g = np.asarray(g)
    return g < 0 if g.dtype.kind in "iuf" else np.zeros(g.shape, bool)


def sample_tuples(anchor: Side, cand: Side, k: int, n: int, rng: np.random.Generator,
                  constrained: bool = False) -> np.ndarray:
    """n random 1:k tuples (n, k+1): anchor item, an item of its identity, k-1 other identities.

    Negatives are k-1 distinct identities other than the anchor's (of the anchor's gender when
    ``constrained``, the "G" protocol of Wen et al.), each represented by a random item.
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


def sample_pairs(emb: Embeddings, n: int, rng: np.random.Generator,
                 constrained: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """n (voice, face) pairs (n, 2), about half of one identity, and their labels (n,)."""
    t = sample_tuples(*emb.sides("vf"), 2, n, rng, constrained)    # (n, 3)
    labels = (rng.random(n) < 0.5).astype(int)
    return np.column_stack([t[:, 0], np.where(labels == 1, t[:, 1], t[:, 2])]), labels


def build_protocols(emb: Embeddings, cfg, seed: int = 0) -> Protocols:
    """Default lists: cfg.eval_tuples tuples per (direction, U/G, k in cfg.eval_ks), pairs.

    Each cell has its own generator seeded by (seed, direction, protocol, k), so a cell does not
    depend on which other cells are built. "G" cells need genders.
    """
    kinds = ["U", "G"] if emb.has_gender else ["U"]
    if emb.has_gender:
        unknown = len(np.union1d(emb.voice_ids[_unknown_gender(emb.voice_gender)],
                                 emb.face_ids[_unknown_gender(emb.face_gender)]))
        if unknown:   # a documented skip with its count, never a G cell with other-gender negatives
            warnings.warn(f"gender-constrained (G) cells skipped: {unknown} identities of this "
                          "split have no known gender")
            kinds = ["U"]
    p = Protocols()
    for di, d in enumerate(("vf", "fv")):
        for pi, kind in enumerate(kinds):
            for k in cfg.eval_ks:
                rng = np.random.default_rng([seed, di, pi, k])
                try:
                    p.matching[(d, kind, k)] = sample_tuples(*emb.sides(d), k, cfg.eval_tuples,
                                                             rng, kind == "G")
                except TooFewIdentities as e:   # a small split cannot fill every cell
                    warnings.warn(f"matching cell ({d}, {kind}, k={k}) skipped: {e}")
    for pi, kind in enumerate(kinds):
        rng = np.random.default_rng([seed, 9, pi])
        p.verification[kind] = sample_pairs(emb, cfg.eval_tuples, rng, kind == "G")
    return p


# ------------------------------------------------------------------------------ the table

def _row(task, direction, protocol, k, scorer, metric, value, ci, n) -> dict:
    return dict(task=task, direction=direction, protocol=protocol, k=k, scorer=scorer,
                metric=metric, value=float(value), ci_low=ci[0], ci_high=ci[1], n=int(n))


def _device(model) -> torch.device | None:
    """The model's device (the ranking for retrieval runs there), None without parameters."""
    params = getattr(model, "parameters", None)
    return next(params(), torch.empty(0)).device if params is not None else None


def _matching_classifier(model):
    clf = getattr(model, "classifier", None) if model is not None else None
    return clf if getattr(clf, "k", None) is not None else None


def _cell_seed(seed: int, *key) -> int:
    """A seed per table cell, so that a position-biased scorer is not judged on one shared
    candidate order in every cell (the order depends only on n, k and the seed)."""
    return (seed * 1_000_003 + zlib.crc32(repr(key).encode())) % 2**31


def _matching_rows(emb, protocols, cfg, clf, seed) -> list[dict]:
    rows = []
    for (d, kind, k), tuples in protocols.matching.items():
        scorers = ["classifier", "distance"] if clf is not None and clf.k == k else ["distance"]
        cell = _cell_seed(seed, d, kind, k)
        for scorer in scorers:
            ok = matching_accuracy(emb, tuples, d, scorer, clf, cell)
            rows.append(_row("matching", LABELS[_direction(d)], kind, k, scorer, "acc",
                             ok.mean(), bootstrap_ci(ok, cfg.bootstrap, cell), len(ok)))
    return rows


def _verification_rows(emb, protocols, cfg, seed) -> list[dict]:
    rows = []
    for kind, (pairs, labels) in protocols.verification.items():
        s = pair_scores(emb, pairs)
        auc, eer = roc_auc_eer(s, labels)
        ci = bootstrap_auc_eer(s, labels, cfg.bootstrap, _cell_seed(seed, "verification", kind))
        rows += [_row("verification", "V-F", kind, pd.NA, "distance", m, v, ci[m], len(s))
                 for m, v in (("auc", auc), ("eer", eer))]
    return rows


def _retrieval_rows(emb, protocols, cfg, seed, device=None) -> list[dict]:
    rows = []
    for d in protocols.retrieval:
        ap = retrieval_ap(emb, d, device=device)
        rows.append(_row("retrieval", LABELS[_direction(d)], "-", pd.NA, "distance", "map",
                         ap.mean(), bootstrap_ci(ap, cfg.bootstrap, _cell_seed(seed, d)), len(ap)))
    return rows


def evaluate(model, cached, cfg, protocols: Protocols | None = None, seed: int = 0,
             embeddings: Embeddings | None = None) -> pd.DataFrame:
    """Every metric of a split as a tidy table (one row per cell; values are fractions).

    Columns: task ("matching" | "verification" | "retrieval"), direction ("V-F" | "F-V"),
    protocol ("U" | "G" | "-"), k (matching only), scorer, metric ("acc" | "auc" | "eer" |
    "map"), value, ci_low, ci_high (percentile bootstrap 95%, cfg.bootstrap resamples over
    tuples / pairs / queries), n. Matching with k equal to the classifier's k is reported with
    both the classifier and the distance scorer; other k with the distance scorer.
    ``embeddings`` skips the backbone pass when given.
    """
    emb = embeddings if embeddings is not None else embed_split(model, cached, cfg)
    protocols = protocols if protocols is not None else build_protocols(emb, cfg, seed)
    rows = (_matching_rows(emb, protocols, cfg, _matching_classifier(model), seed)
            + _verification_rows(emb, protocols, cfg, seed)
            + _retrieval_rows(emb, protocols, cfg, seed, _device(model)))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["k"] = df["k"].astype("Int64")
    return df


# ------------------------------------------------------------------------------ summaries

def as_percent(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with value and interval in percent, as the paper's tables print them."""
    out = df.copy()
    out[["value", "ci_low", "ci_high"]] = out[["value", "ci_low", "ci_high"]] * 100
    return out


def _pick(df: pd.DataFrame, scorer: str | None, **where) -> float:
    sel = df
    for col, v in where.items():
        sel = sel[sel[col] == v]
    if sel.empty:
        return float("nan")
    if scorer is not None:   # the named scorer, or the distance where it was not evaluated
        best = sel[sel["scorer"] == scorer]
        sel = best if len(best) else sel[sel["scorer"] == "distance"]
        return float(sel["value"].iloc[0]) * 100 if len(sel) else float("nan")
    best = sel[sel["scorer"] == "classifier"]
    return float((best if len(best) else sel)["value"].iloc[0]) * 100


def headline(df: pd.DataFrame, protocol: str = "U", scorer: str | None = "distance") -> pd.DataFrame:
    """The Table IV row, in percent: binary vf/fv, 10-way vf10/fv10, retrieval map_vf/map_fv.

    Matching cells come from ``scorer`` ("distance" by default, "classifier", or ``None`` to
    prefer the classifier wherever it was evaluated); a cell the scorer did not evaluate (the
    classifier at a k it was not trained for) falls back to the distance. The default is the
    distance because the paper's concatenation head is linear in the (k+1) embeddings and stays
    at chance on shuffled candidates (docs/fidelity.md, "classifier finding"); pass
    ``scorer="classifier"`` for the paper's read-out. Missing cells are NaN.
    """
    m = df[(df["task"] == "matching") & (df["protocol"] == protocol) & (df["metric"] == "acc")]
    r = df[(df["task"] == "retrieval") & (df["metric"] == "map")]
    row = {f"{d.lower()}{'' if k == 2 else k}": _pick(m, scorer, direction=lab, k=k)
           for k in (2, 10) for d, lab in (("VF", "V-F"), ("FV", "F-V"))}
    row.update({f"map_{d}": _pick(r, None, direction=LABELS[d]) for d in ("vf", "fv")})
    return pd.DataFrame([row])
