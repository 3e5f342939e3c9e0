"""Metric losses on tuples: the structured metric loss (eqs. 21-23), the Table X alternatives
lifted structure and triplet, :func:`metric_loss` picking one, and the two-tower baseline's
in-batch InfoNCE (not the paper's)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .common import BATCH_METRICS, METRIC_LOSSES, _check_choice, _one_hot, safe_distance


# ----------------------------------------------------------------------------- metric (21-23)

def _tuple_distances(h: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Distances of a batch of tuples.

    h (B, k+1, D), target (B,) -> d_ap (B,), d_an (B, k), d_pn (B, k), neg (B, k) bool, where column
    j of d_an / d_pn is candidate j and ``neg`` marks the negatives (every candidate but the true one).
    """
    if h.dim() != 3 or h.shape[1] < 3:
        raise ValueError(f"metric losses need tuple embeddings h (B, k+1, D) with k >= 2, got {tuple(h.shape)}")
    if target.shape != h.shape[:1]:
        raise ValueError(f"metric losses need target (B,) = ({h.shape[0]},), got {tuple(target.shape)}")
    anchor, cands = h[:, 0], h[:, 1:]                                          # (B, D), (B, k, D)
    k = cands.shape[1]
    pos = cands.gather(1, target.long()[:, None, None].expand(-1, 1, h.shape[2]))[:, 0]  # (B, D)
    d_ap = safe_distance(anchor, pos)                                          # (B,)
    d_an = safe_distance(anchor[:, None], cands)                               # (B, k)
    d_pn = safe_distance(pos[:, None], cands)                                  # (B, k)
    neg = ~_one_hot(target, k).bool()                                          # (B, k)
    return d_ap, d_an, d_pn, neg


def _hardest(d: Tensor, neg: Tensor, valid: Tensor) -> Tensor:
    """Row minimum of d over the negatives; rows without negatives (``~valid``) take a finite dummy."""
    return d.masked_fill(~neg & valid[:, None], float("inf")).amin(dim=1)     # (B,)


def structured_terms(d_ap: Tensor, d_an: Tensor, d_pn: Tensor, neg: Tensor, margin: float,
                     kind: str = "structured") -> Tensor:
    r"""Per-row hinge terms of the metric losses from distances; 0 for rows without negatives.

    d_ap (B,), d_an (B, K), d_pn (B, K), neg (B, K) bool -> (B,):

    * "structured", eq. (22): :math:`\max(0, \log(e^{\theta-\min_n d_{an}} + e^{\theta-\min_n d_{pn}})
      + d_{ap})` (the maximum of exponentials is the exponential of the maximum);
    * "lifted" (Song et al.): sums of exponentials over the negatives inside the log (log-sum-exp);
    * "triplet": :math:`\max(0, d_{ap} - \min_n d_{pn} + \theta)`.
    """
    valid = neg.any(dim=1)                                                     # (B,)
    if kind == "structured":
        e = torch.logaddexp(margin - _hardest(d_an, neg, valid),
                            margin - _hardest(d_pn, neg, valid)) + d_ap
    elif kind == "lifted":
        x = margin - torch.cat([d_an, d_pn], dim=1)                            # (B, 2K)
        x = x.masked_fill(~torch.cat([neg, neg], dim=1) & valid[:, None], float("-inf"))
        e = torch.logsumexp(x, dim=1) + d_ap
    elif kind == "triplet":
        e = d_ap - _hardest(d_pn, neg, valid) + margin
    else:
        raise ValueError(f"structured_terms: unknown metric kind {kind!r}; choose structured, lifted or triplet")
    return torch.where(valid, e.clamp_min(0.0), torch.zeros_like(e))


METRIC_NORMS = ("tuple", "published")


def reduce_rows(rows: Tensor, target: Tensor, k: int, per: int, norm: str = "tuple") -> Tensor:
    r"""Per-row metric terms (B,) -> scalar, normalised as ``norm`` says (``cfg.metric_norm``).

    * "tuple" (eq. 21): :math:`\frac{1}{per\cdot N}\sum_i r_i`;
    * "published": the published script's: rows grouped by label (``target``, the position
      0..k-1 of the true candidate), each group's sum divided by per x its size, the groups added,
      :math:`\sum_g \frac{1}{per\cdot n_g}\sum_{i: L_i = g} r_i`; about k x eq. (21) when the
      groups are of equal size (2 x for k = 2). An empty group adds 0 here; the published code
      divides 0 by 0 there (NaN).

    ``per`` is 2 for the structured and lifted losses, 1 for the triplet.
    """
    _check_choice("cfg.metric_norm", norm, METRIC_NORMS)
    if norm == "tuple":
        return rows.sum() / (per * rows.shape[0])
    groups = target.long()                                                     # (B,)
    sums = rows.new_zeros(k).index_add_(0, groups, rows)                       # (k,)
    sizes = torch.bincount(groups, minlength=k).to(rows.dtype)                 # (k,)
    return (sums / (per * sizes.clamp_min(1))).sum()


def structured_metric(h: Tensor, target: Tensor, margin: float = 1.2, norm: str = "tuple") -> Tensor:
    r"""Structured metric loss, eqs. (21)-(22).

    .. math::
        \mathcal{L}_{metric} = \frac{1}{2N}\sum_{i=1}^{N}\max(0, E_i),\quad
        E_i = \log\Big(\max_{n} e^{\theta - d(a_i, n)} + \max_{n} e^{\theta - d(p_i, n)}\Big) + d(a_i, p_i)

    with anchor :math:`a_i` = ``h[i, 0]``, positive :math:`p_i` = ``h[i, 1 + target[i]]``, the other
    k - 1 candidates as negatives :math:`n`, Euclidean :math:`d` and :math:`\theta` = ``margin``.
    :math:`d(a, n)` is cross-modal, :math:`d(p, n)` intra-modal. ``norm``: see :func:`reduce_rows`
    ("published": per label group). h (B, k+1, D), target (B,) -> scalar.
    """
    d_ap, d_an, d_pn, neg = _tuple_distances(h, target)
    rows = structured_terms(d_ap, d_an, d_pn, neg, margin, "structured")       # (B,)
    return reduce_rows(rows, target, h.shape[1] - 1, 2, norm)


def lifted_structure(h: Tensor, target: Tensor, margin: float = 1.2, norm: str = "tuple") -> Tensor:
    r"""Lifted structured loss (Song et al., CVPR 2016) on tuples (Table X).

    .. math:: E_i = \log\Big(\sum_{n} e^{\theta - d(a_i, n)} + \sum_{n} e^{\theta - d(p_i, n)}\Big)
        + d(a_i, p_i),\qquad \mathcal{L} = \frac{1}{2N}\sum_i \max(0, E_i)

    Sums replace the maxima of eq. (22), so it equals :func:`structured_metric` for k = 2 (as the
    paper states for Table X). Song et al. square the hinge; the paper's equality needs it unsquared.
    h (B, k+1, D), target (B,) -> scalar.
    """
    d_ap, d_an, d_pn, neg = _tuple_distances(h, target)
    rows = structured_terms(d_ap, d_an, d_pn, neg, margin, "lifted")           # (B,)
    return reduce_rows(rows, target, h.shape[1] - 1, 2, norm)


def triplet(h: Tensor, target: Tensor, margin: float = 1.2, norm: str = "tuple") -> Tensor:
    r"""Triplet loss (Schroff et al., CVPR 2015) as Table X describes it.

    .. math:: \mathcal{L} = \frac{1}{N}\sum_i \max\big(0,\ d(a_i, p_i) - \min_n d(p_i, n) + \theta\big)

    The paper: the triplet "compares the inter-modal distance (anchor-positive) with the intra-modal
    distance (positive-negative)"; the hardest negative is used, as in eq. (22).
    h (B, k+1, D), target (B,) -> scalar.
    """
    d_ap, d_an, d_pn, neg = _tuple_distances(h, target)
    rows = structured_terms(d_ap, d_an, d_pn, neg, margin, "triplet")          # (B,)
    return reduce_rows(rows, target, h.shape[1] - 1, 1, norm)


def metric_loss(cfg, h: Tensor, target: Tensor) -> Tensor:
    """The metric term of eq. (24) chosen by ``cfg.metric_loss`` (Table X), margin ``cfg.margin``.

    "structured" | "lifted" | "triplet" | "none" (zero), reduced over the tuples as
    ``cfg.metric_norm`` says (:func:`reduce_rows`). h (B, k+1, D), target (B,) -> scalar.
    """
    _check_choice("cfg.metric_loss", cfg.metric_loss, METRIC_LOSSES)
    if cfg.metric_loss in BATCH_METRICS:
        raise ValueError(f"metric_loss={cfg.metric_loss!r} is a batch loss: use sampling='batch'")
    if cfg.metric_loss == "none":
        return h.new_zeros((), dtype=torch.float32)
    fn = {"structured": structured_metric, "lifted": lifted_structure, "triplet": triplet}[cfg.metric_loss]
    return fn(h, target, cfg.margin, getattr(cfg, "metric_norm", "tuple"))


def infonce(h_voice: Tensor, h_face: Tensor, temperature: float = 0.1) -> Tensor:
    r"""Symmetric in-batch InfoNCE (CLIP-style), the two-tower baseline's loss (not the paper's).

    .. math:: \mathcal{L} = -\frac{1}{2B}\sum_i \Big(\log\frac{e^{s_{ii}/\tau}}{\sum_j e^{s_{ij}/\tau}}
        + \log\frac{e^{s_{ii}/\tau}}{\sum_j e^{s_{ji}/\tau}}\Big),\quad
        s_{ij} = \cos(v_i, f_j)

    h_voice, h_face (B, D), row i of both the same identity -> scalar.
    """
    v = F.normalize(h_voice.float(), dim=-1)
    f = F.normalize(h_face.float(), dim=-1)
    logits = v @ f.T / temperature                                          # (B, B)
    target = torch.arange(len(v), device=v.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
