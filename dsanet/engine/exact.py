"""Exact evaluation: the expectation over every tuple (or pair) of a split, not a sample of them.

Matching. The sampled protocol (:func:`dsanet.data.sampling.sample_tuples`) draws a 1:k tuple
as: an anchor item a, uniform among the anchor items whose identity has candidate items; a
positive p, uniform among the candidate items of a's identity; k-1 distinct other identities,
uniform among the M eligible ones (every other identity for "U", those of a's gender for "G"),
one uniform item each. A scorer that scores each (anchor, candidate) pair on its own (distance,
cosine, the pairwise matching head) makes the tuple correct when s(a, p) beats each negative.
Given (a, p) the negative items are independent, so with

    q_j(a, p) = share of identity j's candidate items c with s(a, p) > s(a, c)
                (a tie s(a, p) = s(a, c) counts 1/2),

    P(win | a, p) = e_{k-1}(q_1 .. q_M) / C(M, k-1)                                   (1)

where e_r is the elementary symmetric polynomial (the mean over the C(M, k-1) identity subsets
of the product of their q). The cell value is mean_a mean_{p of a} P(win | a, p). Ties: with
k = 2 the 1/2 is exactly a random tie-break; for k > 2 a positive tied with several negatives
gets the product of halves instead of 1/(t+1) - ties have probability zero for real-valued
embeddings, so this only matters for degenerate ones.

Verification. Every (voice, face) pair of the identities present in both modalities ("U"), or
those of same-gender identities ("G"); label = same identity. ROC AUC counts ties 1/2.

The per-identity values (mean over an identity's anchors, weight = its number of anchors) are
what the identity bootstrap of :mod:`dsanet.engine.evaluate` resamples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..data.sampling import TooFewIdentities, _unknown_gender
from .embeddings import Embeddings, Side, _direction
from .metrics import _interval, average_precision, eer_from_roc, identity_resamples

PAIRWISE = ("distance", "cosine")   # scorers of one (anchor, candidate) pair; "classifier" when
_BUDGET = 1 << 23                   # its head is "pairwise". Elements per chunk (memory bound).


# ------------------------------------------------------------------------------ recurrence

def elementary_symmetric(q, r_max: int) -> Tensor:
    """e_0 .. e_{r_max} of the values q (M, R) along dim 0, for every column -> (r_max+1, R).

    e_r(q_1..q_M) = sum over r-subsets T of prod_{j in T} q_j, by the recurrence over the M
    values  e_r^(m) = e_r^(m-1) + q_m e_{r-1}^(m-1),  e_0 = 1,  all orders r at once. float64
    (every term is non-negative for q in [0, 1], so there is no cancellation). A 1-d q (M,)
    gives (r_max+1,).
    """
    q = torch.as_tensor(q, dtype=torch.float64)
    flat = q.ndim == 1
    q = q[:, None] if flat else q
    e = q.new_zeros(r_max + 1, q.shape[1])                              # (r_max+1, R)
    e[0] = 1.0
    for qm in q:                                                        # M steps, each (R,)
        e[1:] += qm * e[:-1]                   # the right side is built before the update
    return e[:, 0] if flat else e


def _comb(m: np.ndarray, r: int) -> np.ndarray:
    """C(m, r) per entry of the integer array m, float64 (exact up to 2^53)."""
    values = {int(v): float(math.comb(int(v), r)) for v in np.unique(m)}
    return np.vectorize(values.__getitem__, otypes=[float])(m) if len(m) else np.zeros(0)


# ------------------------------------------------------------------------------ scores

def is_pairwise(scorer: str, classifier=None) -> bool:
    """True when ``scorer`` scores each (anchor, candidate) pair on its own (exact value exists)."""
    if scorer in PAIRWISE:
        return True
    return scorer == "classifier" and getattr(classifier, "head", None) == "pairwise"


def pairwise_weights(classifier) -> tuple[Tensor, float]:
    """(w (D,), b) of a pairwise MatchingClassifier: logit(a, c) = w . (a - c)^2 + b.

    Read in eval mode (dropout off; a spectral norm uses its stored vectors, no power step).
    """
    if getattr(classifier, "head", None) != "pairwise":
        raise ValueError(f"the {getattr(classifier, 'head', None)!r} head scores the k candidates "
                         "jointly; only the 'pairwise' head has a pair-score matrix")
    linear = classifier.net[-1]
    was_training = classifier.training
    classifier.eval()
    try:
        with torch.no_grad():
            w = linear.weight.detach().reshape(-1).double().cpu()      # (D,)
            b = 0.0 if linear.bias is None else float(linear.bias.detach().reshape(()))
    finally:
        classifier.train(was_training)
    return w, b


def pair_score_matrix(emb: Embeddings, direction: str, scorer: str = "distance",
                      classifier=None) -> Tensor:
    """Scores (A, C) float64 of every anchor item against every candidate (higher: more alike).

    distance: -||a - c||; cosine: a.c / (|a| |c|); classifier (pairwise head):
    w.(a - c)^2 + b = (a^2).w - 2 (w*a).c + (c^2).w + b, three matrix products.
    """
    anchor, cand = emb.sides(direction)
    a, c = anchor.x.double(), cand.x.double()                           # (A, D), (C, D)
    if scorer == "distance":
        return -torch.cdist(a, c)
    if scorer == "cosine":
        a, c = (torch.nn.functional.normalize(t, dim=-1) for t in (a, c))
        return a @ c.T
    if scorer == "classifier":
        if classifier is None:
            raise ValueError("scorer='classifier' needs a classifier")
        w, b = pairwise_weights(classifier)
        return ((a * a) @ w)[:, None] - 2 * (a * w) @ c.T + ((c * c) @ w)[None, :] + b
    raise ValueError(f"unknown scorer {scorer!r}; use 'distance', 'cosine' or 'classifier'")


# ------------------------------------------------------------------------------ matching

@dataclass
class ExactMatching:
    """Exact 1:k accuracy of one (direction, protocol, scorer) for several k (fractions)."""
    value: dict = field(default_factory=dict)       # k -> cell value
    identity: dict = field(default_factory=dict)    # k -> (I,) mean P(win) of an identity's anchors
    ids: np.ndarray = None                          # (I,) anchor identity codes
    weight: np.ndarray = None                       # (I,) anchors per identity
    anchor: dict = field(default_factory=dict)      # k -> (A,) P(win) per anchor item of the pool
    anchors: np.ndarray = None                      # (A,) the pool: anchor items with candidates
    skipped: dict = field(default_factory=dict)     # k -> why the cell cannot be filled


def _groups(ids: np.ndarray):
    """Items grouped by identity: (codes (M,), table (M, n_max) item or -1, count (M,))."""
    order = np.argsort(ids, kind="stable")
    codes, start, count = np.unique(ids[order], return_index=True, return_counts=True)
    grp = np.repeat(np.arange(len(codes)), count)                      # group of each sorted item
    table = np.full((len(codes), count.max(initial=1)), -1, np.int64)
    table[grp, np.arange(len(order)) - start[grp]] = order
    return codes, table, count


def _eligible(anchor: Side, cand: Side, pool, a_grp, table, kind: str) -> np.ndarray:
    """(A, M) bool: identities a negative may come from, per pool anchor (never its own)."""
    ok = np.arange(table.shape[0])[None, :] != a_grp[:, None]
    if kind == "G":
        if anchor.gender is None or cand.gender is None:
            raise ValueError("gender-constrained tuples need genders in the embeddings")
        if _unknown_gender(anchor.gender[pool]).any() or _unknown_gender(cand.gender).any():
            raise ValueError("the gender-constrained (G) protocol needs every identity's gender")
        ok &= cand.gender[table[:, 0]][None, :] == anchor.gender[pool][:, None]
    return ok


def _positive_scores(S: Tensor, items: Tensor) -> Tensor:
    """u (a, P): each row's scores at ``items`` (a, P) (-1 pads -> +inf), increasing."""
    return S.gather(1, items.clamp(min=0)).masked_fill(items < 0, float("inf")).sort(1).values


def _below(S: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """lo (a, C) = #{t: u_t < s_c} and eq (a, C) = #{t: u_t = s_c}, for u (a, P) increasing.

    Few positives (P <= 16): one comparison of the (a, C) scores per column of u, counted in a
    small integer type (faster than a batched binary search); more: a binary search per score.
    lo + eq <= P.
    """
    if u.shape[1] > 16:
        lo = torch.searchsorted(u, S)                                   # #{u_t < s_c}
        return lo, torch.searchsorted(u, S, right=True) - lo            # #{u_t = s_c}
    dtype = torch.uint8 if u.shape[1] < 255 else torch.int32
    lo, eq = (torch.zeros(S.shape, dtype=dtype) for _ in range(2))
    for ut in u.T:                                                      # P columns, (a,) each
        lo += S > ut[:, None]
        eq += S == ut[:, None]
    return lo, eq


def _outscored(S: Tensor, pos: Tensor, cand_grp: Tensor, count: Tensor) -> Tensor:
    """q (M, a, P): share of identity j's items that each positive outscores, ties 1/2.

    S (a, C) scores of a chunk of anchors; pos (a, P) each anchor's positive items (-1 pads);
    cand_grp (C,) identity position of each candidate; count (M,) items per identity.
    Positives are taken in increasing score order (pads last): with u_1 <= .. <= u_P an
    anchor's positive scores and, per candidate c, lo(c) = #{t: u_t < s_c},
    hi(c) = #{t: u_t <= s_c}:  s_c < u_t  <=>  hi(c) < t  and  s_c <= u_t  <=>  lo(c) < t,
    so counts per (identity, anchor, rank) and a cumulative sum give every q at once. Without
    ties hi = lo on every item of another identity (one count suffices).
    """
    a, C = S.shape
    M, P = len(count), pos.shape[1]
    u = _positive_scores(S, pos)                                        # (a, P)
    lo, eq = _below(S, u)                                               # (a, C) each
    tied = int(eq.sum()) != int((pos >= 0).sum())     # only each positive's own entry is equal
    base = (cand_grp[None, :] * a + torch.arange(a)[:, None]) * (P + 1)   # (a, C) -> (j, a, .)
    cum = [torch.bincount((base + r).ravel(), minlength=M * a * (P + 1))
           .reshape(M, a, P + 1).cumsum(2)[:, :, :P] for r in ((lo + eq, lo) if tied else (lo,))]
    if not tied:
        return cum[0].double() / count.double()[:, None, None]
    return (cum[0] + cum[1]).double() / (2.0 * count.double())[:, None, None]


def exact_cells(scores: Tensor, anchor: Side, cand: Side, ks, kinds=("U",)) -> dict:
    """:class:`ExactMatching` per protocol in ``kinds`` ("U", "G") from one score matrix (A, C).

    A k that some pool anchor cannot fill (fewer than k-1 eligible identities) is left out and
    named in ``skipped`` (the sampled protocol raises :class:`TooFewIdentities` there).
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 2:
        raise ValueError(f"matching needs k >= 2, got {ks}")
    codes, table, count = _groups(np.asarray(cand.ids))
    pool = np.flatnonzero(np.isin(anchor.ids, codes))                  # (A,)
    if len(pool) == 0:
        raise ValueError("no anchor identity has a candidate item")
    a_grp = np.searchsorted(codes, anchor.ids[pool])                   # (A,) group of own identity
    elig = {kind: _eligible(anchor, cand, pool, a_grp, table, kind) for kind in kinds}
    m = {kind: e.sum(1) for kind, e in elig.items()}                   # (A,) eligible identities
    out = {kind: ExactMatching(anchors=pool) for kind in kinds}
    for kind in kinds:
        for k in ks:
            if m[kind].min() < k - 1:
                g = " of the same gender" if kind == "G" else ""
                out[kind].skipped[k] = f"too few identities for k={k} negatives{g}"
    r_max = max([k - 1 for k in ks if any(k not in out[kd].skipped for kd in kinds)], default=0)
    if r_max == 0:
        return out
    scores = torch.as_tensor(scores, dtype=torch.float64)                      # (A_all, C)
    cand_grp = torch.as_tensor(np.searchsorted(codes, cand.ids))               # (C,)
    pos = torch.as_tensor(table)[torch.as_tensor(a_grp)]                        # (A, P)
    n_pos = (pos >= 0).sum(1)                                                   # (A,)
    M, P = table.shape
    valid = (torch.arange(P)[None, :] < n_pos[:, None]).double()   # (A, P) sorted: pads last
    step = max(1, _BUDGET // max(scores.shape[1], M * (P + 1)))
    per_anchor = {kind: {k: [] for k in ks} for kind in kinds}
    for s in range(0, len(pool), step):                                # chunks of anchors
        sl = slice(s, s + step)
        S = scores[torch.as_tensor(pool[sl])]                           # (a, C) this chunk
        q = _outscored(S, pos[sl], cand_grp, torch.as_tensor(count))   # (M, a, P)
        a = q.shape[1]
        q = torch.stack([q * torch.as_tensor(elig[kind][sl]).T[:, :, None] for kind in kinds],
                        1)                                             # (M, kinds, a, P)
        e = elementary_symmetric(q.reshape(M, -1), r_max).reshape(r_max + 1, len(kinds), a, P)
        for i, kind in enumerate(kinds):
            for k in ks:
                if k in out[kind].skipped:
                    continue
                c = torch.as_tensor(_comb(m[kind][sl], k - 1))         # (a,) C(M_a, k-1)
                win = e[k - 1, i] / c[:, None]                         # (a, P) eq. (1)
                per_anchor[kind][k].append((win * valid[sl]).sum(1) / n_pos[sl])
    u, inv, w = np.unique(anchor.ids[pool], return_inverse=True, return_counts=True)
    for kind in kinds:
        res = out[kind]
        res.ids, res.weight = u, w
        for k in ks:
            if k in res.skipped:
                continue
            v = torch.cat(per_anchor[kind][k]).numpy()                 # (A,)
            res.anchor[k] = v
            res.identity[k] = np.bincount(inv, weights=v, minlength=len(u)) / w
            res.value[k] = float(v.mean())
    return out


def exact_matching(emb: Embeddings, direction: str, ks, scorer: str = "distance",
                   classifier=None, constrained: bool = False,
                   scores: Tensor | None = None) -> ExactMatching:
    """Exact 1:k matching accuracy of every k in ``ks`` for one direction and protocol.

    The value of a cell is the accuracy that the sampled protocol estimates, in the limit of
    infinitely many tuples (eq. (1) of this module's docstring; ties count 1/2). ``scores``
    (A, C): a precomputed :func:`pair_score_matrix`. Raises :class:`TooFewIdentities` when a
    k cannot be filled for some anchor, as :func:`dsanet.data.sampling.sample_tuples` does.
    """
    if not is_pairwise(scorer, classifier):
        raise ValueError(f"scorer {scorer!r} scores the candidates jointly: no exact value "
                         "(use the sampled tuples of dsanet.engine.evaluate)")
    d = _direction(direction)
    kind = "G" if constrained else "U"
    if scores is None:
        scores = pair_score_matrix(emb, d, scorer, classifier)
    res = exact_cells(scores, *emb.sides(d), ks, (kind,))[kind]
    if res.skipped:
        raise TooFewIdentities("; ".join(res.skipped.values()))
    return res


# ------------------------------------------------------------------------------ verification

def roc_pos_neg(pos: np.ndarray, negs: list) -> tuple[float, float]:
    """(AUC, EER) of sorted positive scores (P,) against sorted negative score arrays (merged).

    The ROC between two consecutive distinct positive scores only gains negatives (a
    horizontal segment), so its corners (just above and at each distinct positive score x:
    (#neg > x, #pos > x), (#neg >= x, #pos >= x)) trace the full curve of every threshold,
    ties included (a tie group is one diagonal step: AUC counts ties 1/2). No global sort of
    the negatives together is needed.
    """
    n_neg = sum(len(n) for n in negs)
    if len(pos) == 0 or n_neg == 0:
        raise ValueError("verification needs both positive and negative pairs")
    x = np.unique(pos)[::-1]                                           # (U,) decreasing
    above = lambda arr, side: len(arr) - np.searchsorted(arr, x, side)  # noqa: E731 (U,)
    tp = np.stack([above(pos, "right"), above(pos, "left")], 1).ravel()   # (2U,) gt, ge
    fp = np.stack([sum(above(n, "right") for n in negs),
                   sum(above(n, "left") for n in negs)], 1).ravel()
    tpr = np.r_[0.0, tp / len(pos), 1.0]
    fpr = np.r_[0.0, fp / n_neg, 1.0]
    return float(np.trapezoid(tpr, fpr)), float(eer_from_roc(fpr, tpr))


def exact_verification(scores: Tensor, voice: Side, face: Side, kinds=("U",), n_boot: int = 0,
                       seed: int = 0, bins: int = 128, block: int = 128,
                       alpha: float = 0.05) -> dict:
    """AUC and EER over every (voice, face) pair, with identity-bootstrap intervals.

    Pairs: every voice and face item of the identities present in both modalities; "U" all
    of them, "G" those of two same-gender identities; label = same identity. ``scores``: the
    (Nv, Nf) V-F score matrix. Returns {kind: {"auc", "eer", "n", "ci": {"auc": (lo, hi),
    "eer": (lo, hi)}}}. The interval (``n_boot`` > 0) resamples identities with replacement:
    with c_i copies of identity i a pair (voice of i, face of j) weighs c_i c_j. Each resample
    is scored from per-(identity, identity) histograms of ``bins`` uniform score bins (pairs of
    one bin count as ties), and the percentile interval is shifted by the binning offset of
    the full split (exact value - binned value) and widened, if need be, to hold the value.
    """
    ids = np.intersect1d(voice.ids, face.ids)
    v, f = np.flatnonzero(np.isin(voice.ids, ids)), np.flatnonzero(np.isin(face.ids, ids))
    vg, fg = np.searchsorted(ids, voice.ids[v]), np.searchsorted(ids, face.ids[f])
    S = torch.as_tensor(scores, dtype=torch.float64)
    if len(v) < S.shape[0] or len(f) < S.shape[1]:                     # items of one modality only
        S = S[torch.as_tensor(v)][:, torch.as_tensor(f)]
    S = S.numpy()                                                      # (Nv', Nf')
    same = vg[:, None] == fg[None, :]
    gender = None
    if "G" in kinds:
        _, first = np.unique(vg, return_index=True)                    # first voice per identity
        gender = np.asarray(voice.gender)[v[first]]                    # (I,)
        sg = gender[vg][:, None] == gender[fg][None, :]
        neg = {"G": [np.sort(S[~same & sg])], "x": [np.sort(S[~same & ~sg])]}
        neg["U"] = neg["G"] + neg["x"]
    else:
        neg = {"U": [np.sort(S[~same])]}
    pos = np.sort(S[same])
    n = {kind: len(pos) + sum(len(a) for a in neg[kind]) for kind in kinds}
    out = {kind: dict(zip(("auc", "eer"), roc_pos_neg(pos, neg[kind])), n=n[kind], ci={})
           for kind in kinds}
    if n_boot <= 0:
        return out
    every = [pos] + neg["U"]                                           # bins over the bulk
    lo = min(a[int(0.001 * (len(a) - 1))] for a in every if len(a))
    hi = max(a[int(0.999 * (len(a) - 1))] for a in every if len(a))
    I = len(ids)
    H = np.zeros(I * I * bins)
    step = max(1, _BUDGET // S.shape[1])
    for r in range(0, len(S), step):                                   # voice rows, memory bound
        b = np.clip(((S[r:r + step] - lo) * (bins / max(hi - lo, 1e-12))).astype(np.int64),
                    0, bins - 1)                                       # (r, Nf') score bin
        H += np.bincount(((vg[r:r + step, None] * I + fg[None, :]) * bins + b).ravel(),
                         minlength=I * I * bins)
    H = H.astype(np.float32).reshape(I, I, bins)                       # (I, I, bins)
    for i, kind in enumerate(kinds):
        groups = None if kind == "U" else [np.flatnonzero(gender == g) for g in np.unique(gender)]
        counts = identity_resamples(I, n_boot, seed + i)               # (n_boot, I)
        with np.errstate(invalid="ignore", divide="ignore"):   # a resample without negatives
            stats = [binned_auc_eer(*identity_weighted_histograms(H, counts[j:j + block], groups))
                     for j in range(0, n_boot, block)]
            full = binned_auc_eer(*identity_weighted_histograms(H, np.ones((1, I)), groups))
        for m, name in enumerate(("auc", "eer")):
            v = out[kind][name]
            lo_, hi_ = _interval(np.clip(np.concatenate([st[m] for st in stats]) + v - full[m][0],
                                         0.0, 1.0), alpha)       # shifted by the binning offset
            out[kind]["ci"][name] = (min(lo_, v), max(hi_, v))
    return out


def binned_auc_eer(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUC and EER (B,) from weighted score histograms pos, neg (B, bins), ascending bins.

    Pairs sharing a bin count as ties (1/2).
    """
    below = np.cumsum(neg, 1) - neg                                    # negatives in lower bins
    auc = (pos * (below + 0.5 * neg)).sum(1) / (pos.sum(1) * neg.sum(1))
    tp, fp = np.cumsum(pos[:, ::-1], 1), np.cumsum(neg[:, ::-1], 1)   # decreasing thresholds
    zero = np.zeros((len(pos), 1))
    tpr, fpr = np.hstack([zero, tp / tp[:, -1:]]), np.hstack([zero, fp / fp[:, -1:]])
    return auc, eer_from_roc(fpr, tpr)


def identity_weighted_histograms(H: np.ndarray, counts: np.ndarray,
                                 groups=None) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative histograms (B, bins) of B identity resamples.

    H (I, I, bins): pairs per (voice identity, face identity, score bin); counts (B, I):
    copies of each identity; a pair (voice of i, face of j) then weighs c_i c_j: positives
    sum_i c_i^2 H[i, i], negatives sum_{i != j} c_i c_j H[i, j]. ``groups``: index arrays of
    identities; only pairs within one group count (the G protocol: one group per gender).
    """
    groups = [np.arange(H.shape[0])] if groups is None else groups
    c_all = counts.astype(np.float32)
    every = np.zeros((len(counts), H.shape[2]), np.float32)
    pos = np.zeros_like(every)
    for g in groups:
        c, Hg = c_all[:, g], H[np.ix_(g, g)]                           # (B, I_g), (I_g, I_g, bins)
        T = (c @ Hg.reshape(len(g), -1)).reshape(len(c), len(g), -1)   # (B, I_g, bins) sum over i
        every += np.einsum("bjq,bj->bq", T, c)                         # all pairs, weighted
        pos += (c * c) @ Hg[np.arange(len(g)), np.arange(len(g))]      # (B, bins)
    return pos.astype(float), (every - pos).astype(float)


def retrieval_ap_scores(scores: Tensor, q_ids: np.ndarray, g_ids: np.ndarray,
                        chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """AP (Q',) of every query row of a score matrix (Q, G) and the queries kept (Q',).

    Relevant = same identity; queries whose identity has no gallery item are left out. The
    same AP as :func:`dsanet.engine.metrics.average_precision` (gallery ranked by decreasing
    score) without sorting a row: with u_1 <= .. <= u_R a query's relevant scores and
    lo(c) = #{t: u_t < s_c}, the t-th lowest relevant item has rank 1 + #{c: lo(c) >= t} and
    R - t + 1 relevant items at or above it, so AP = mean_t (R - t + 1) / rank_t. Rows with a
    tie at a relevant score are ranked by sorting (ties in gallery order, as there).
    """
    keep = np.flatnonzero(np.isin(q_ids, g_ids))
    codes, table, _ = _groups(np.asarray(g_ids))
    rel_items = torch.as_tensor(table)[torch.as_tensor(np.searchsorted(codes, q_ids[keep]))]
    g = torch.as_tensor(np.asarray(g_ids))
    S_all = torch.as_tensor(scores)
    aps = []
    for s in range(0, len(keep), chunk):
        S = S_all[torch.as_tensor(keep[s:s + chunk])]                  # (q, G)
        rel = rel_items[s:s + chunk]                                   # (q, R) items, -1 pads
        q, R = rel.shape
        n_rel = (rel >= 0).sum(1)                                      # (q,)
        lo, eq = _below(S, _positive_scores(S, rel))                   # (q, G) each
        flat = torch.arange(q)[:, None] * (R + 1)
        below = torch.bincount((flat + lo).ravel(), minlength=q * (R + 1)).reshape(q, R + 1)
        rank = S.shape[1] - below.cumsum(1)[:, :R] + 1                 # (q, R) rank of u_t
        t = torch.arange(1, R + 1)[None, :]
        valid = t <= n_rel[:, None]
        ap = torch.where(valid, (n_rel[:, None] - t + 1).double() / rank, 0.0).sum(1) / n_rel
        tied = eq.sum(1) != n_rel                                      # another item at a u_t
        if tied.any():
            ids = torch.as_tensor(q_ids[keep[s:s + chunk]])[tied]
            ap[tied] = average_precision(S[tied], ids[:, None] == g[None, :]).double()
        aps.append(ap)
    return (torch.cat(aps).numpy() if aps else np.zeros(0)), keep


__all__ = [
    "ExactMatching", "PAIRWISE", "binned_auc_eer", "elementary_symmetric", "exact_cells",
    "exact_matching", "exact_verification", "identity_weighted_histograms", "is_pairwise",
    "pair_score_matrix", "pairwise_weights", "retrieval_ap_scores", "roc_pos_neg",
]
