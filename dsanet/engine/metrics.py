"""Evaluation metrics on cached embeddings: scores, 1:k matching accuracy, verification ROC AUC /
EER, retrieval AP / mAP and percentile bootstrap intervals.

The paper measures matching by accuracy (ACC) and retrieval by mean average precision (mAP),
Sec. IV-A "Evaluation protocol"; Tables III-XII. Verification (ROC AUC, EER) follows the
protocol of Wen et al. Scores: ``"distance"`` = negative Euclidean distance (what the structured
metric of eqs. (21)-(22) trains), ``"cosine"`` = cosine similarity, ``"classifier"`` = the
logits of the model's matching classifier (only for tuples with its k). Metrics are fractions
in [0, 1]. :mod:`dsanet.engine.evaluate` assembles them into the table of a split.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve
from torch import Tensor

from ..data.sampling import candidate_order
from .embeddings import Embeddings, Side

SCORES = ("distance", "cosine")


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
    perm = candidate_order(len(t), t.shape[1] - 1, seed)            # (n, k)
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


def identity_means(ids, values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-identity mean of per-item values: (codes (I,), means (I,), counts (I,)).

    The weighted mean of the means with weights = counts is the overall mean.
    """
    codes, inv, counts = np.unique(np.asarray(ids), return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=np.asarray(values, float), minlength=len(codes))
    return codes, sums / counts, counts


def identity_resamples(n_id: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """Copies of each identity in ``n_boot`` resamples with replacement -> (n_boot, n_id) int."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_id, (n_boot, n_id)) + n_id * np.arange(n_boot)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n_id).reshape(n_boot, n_id)


def identity_bootstrap(values, weights, n_boot: int, seed: int = 0,
                       alpha: float = 0.05) -> tuple[float, float]:
    """Percentile (1 - alpha) cluster bootstrap of a weighted mean over identities.

    ``values`` (I,) per-identity means, ``weights`` (I,) their items (anchors, queries). Each
    resample draws I identities with replacement and takes sum c_i w_i v_i / sum c_i w_i
    (c_i: copies of identity i), so items of one identity move together.
    """
    v, w = np.asarray(values, float), np.asarray(weights, float)
    if v.ndim != 1 or len(v) == 0 or w.shape != v.shape:
        raise ValueError(f"identity_bootstrap needs (I,) values and weights, got {v.shape}, "
                         f"{w.shape}")
    c = identity_resamples(len(v), n_boot, seed).astype(float)         # (n_boot, I)
    return _interval((c @ (w * v)) / (c @ w), alpha)


__all__ = [
    "SCORES", "average_precision", "bootstrap_auc_eer", "bootstrap_ci", "classifier_scores",
    "eer_from_roc", "identity_bootstrap", "identity_means", "identity_resamples",
    "matching_accuracy", "matching_scores", "pair_scores", "retrieval_ap",
    "retrieval_map", "roc_auc_eer", "similarity", "similarity_matrix", "verification",
]
