"""The retrieval objective, eqs. (25)-(27): the class-centre term (eq. 27), the in-batch
classification term (eq. 26), the in-batch metric term (eq. 27 with the tuples of eq. 22) and
their total :func:`retrieval_total`."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .adversarial import _adversarial_total
from .common import BATCH_METRICS, METRIC_LOSSES, Discriminator, _check_choice, safe_distance
from .metric import structured_terms


# ----------------------------------------------------------------------------- class centres (27)

def centre_loss(h: Tensor, labels: Tensor, centres: Tensor) -> Tensor:
    r"""Class-centre term of eq. (27) (Luo et al., after Wen et al.'s centre loss).

    .. math:: \mathcal{L}_{centre} = \frac{1}{N}\sum_{i=1}^{N}\lVert h_i - c_{L_i}\rVert

    The paper's plain Euclidean norm (not Luo et al.'s :math:`\tfrac12\lVert\cdot\rVert^2`), with the
    safe root of :func:`safe_distance`. h (B, D), labels (B,) long in [0, n), centres (n, D) -> scalar.
    """
    if h.dim() != 2 or centres.dim() != 2 or h.shape[1] != centres.shape[1]:
        raise ValueError(f"centre_loss needs h (B, D) and centres (n, D), got "
                         f"{tuple(h.shape)} and {tuple(centres.shape)}")
    if labels.shape != h.shape[:1]:
        raise ValueError(f"centre_loss: labels must be (B,) = ({h.shape[0]},), "
                         f"got {tuple(labels.shape)}")
    return safe_distance(h, centres[labels.long()]).mean()


# ----------------------------------------------------------------------------- retrieval total (25)-(27)

def _stream_centres(centres: Tensor | Sequence[Tensor], s: int, stream_kinds: Sequence[int] | None) -> Tensor:
    """Centres as (S, n, D).

    Accepts one (n, D) table shared by the streams, S tables (S, n, D) or a list of S, or, with
    ``stream_kinds`` (one table index per stream, as ``DSANet.stream_kinds``), tables (K, n, D)
    of which stream s uses ``centres[stream_kinds[s]]``.
    """
    if not isinstance(centres, Tensor):
        centres = torch.stack(list(centres))
    if stream_kinds is not None:
        if centres.dim() != 3 or len(stream_kinds) != s:
            raise ValueError(f"retrieval_total: stream_kinds needs centres (K, n, D) and one "
                             f"kind per stream ({s}), got {tuple(centres.shape)} and {list(stream_kinds)}")
        return centres[list(stream_kinds)]
    if centres.dim() == 2:
        return centres.expand(s, -1, -1)
    if centres.dim() == 3 and centres.shape[0] == s:
        return centres
    raise ValueError(f"retrieval_total: centres must be (n, D) or (S={s}, n, D), or come "
                     f"with stream_kinds; got {tuple(centres.shape)}")


RETRIEVAL_FEATURES = ("absolute", "difference")


def retrieval_cls(h_voice: Tensor, h_face: Tensor, labels: Tensor,
                  retrieval_head: Callable[[Tensor], Tensor], feature: str = "difference") -> Tensor:
    r"""Global classification term of eq. (26) on in-batch pairs, summed over the streams.

    .. math:: \mathcal{L}_{cls} = \sum_s \frac{1}{N}\sum_{i=1}^{N}\sum_{j=1}^{N}
        \mathrm{BCE}\big(C_R(h^s_{v,i} - h^s_{f,j}),\ l_{ij}\big),\quad l_{ij} = [L_i = L_j]

    Every voice i is scored against every face j of the batch; eq. (26) writes only the
    :math:`l \log C_R` term, the full binary cross-entropy (with :math:`1 - l`) is used.
    ``feature`` (``cfg.retrieval_feature``) is what C_R reads: ``"difference"``
    :math:`h_v - h_f` (eq. 26 as written) or ``"absolute"`` :math:`|h_v - h_f|` elementwise
    (Sec. IV-A: "the distance between the anchor ... and each candidate ... represented as a
    128-dimensional feature"). A linear C_R on the signed difference scores a pair by a
    projection of :math:`h_v - h_f`, which moves every voice against every face along one
    direction instead of bringing pairs together (docs/fidelity.md).
    h_voice, h_face (S, B, D), labels (B,) -> scalar.
    """
    _check_choice("feature", feature, RETRIEVAL_FEATURES)
    diff = h_voice[:, :, None, :] - h_face[:, None, :, :]                 # (S, B, B, D)
    if feature == "absolute":
        diff = diff.abs()
    logits = retrieval_head(diff).float()                                  # (S, B, B)
    if logits.shape != diff.shape[:3]:
        logits = logits.reshape(diff.shape[:3])
    same = (labels[:, None] == labels[None, :]).float().expand_as(logits)  # (S, B, B)
    return F.binary_cross_entropy_with_logits(logits, same, reduction="sum") / h_voice.shape[1]


def retrieval_metric(cfg, h_voice: Tensor, h_face: Tensor, labels: Tensor) -> Tensor:
    r"""The metric part of eq. (27) taken from the tuples of eq. (22), summed over the streams.

    Tuple i: anchor voice :math:`v_i`, positive face :math:`f_i`, negatives every face :math:`f_j`
    of another identity (:math:`L_j \ne L_i`); the row terms of ``cfg.metric_loss`` are divided by
    2N (structured, lifted) or N (triplet), rows without a negative give 0.
    h_voice, h_face (S, B, D), labels (B,) -> scalar.
    """
    _check_choice("cfg.metric_loss", cfg.metric_loss, METRIC_LOSSES)
    if cfg.metric_loss in BATCH_METRICS:
        raise ValueError(f"metric_loss={cfg.metric_loss!r} is a batch loss: use sampling='batch'")
    if cfg.metric_loss == "none":
        return h_voice.new_zeros((), dtype=torch.float32)
    s, b, _ = h_voice.shape
    d_ap = safe_distance(h_voice, h_face).reshape(s * b)                              # (S*B,)
    d_an = safe_distance(h_voice[:, :, None], h_face[:, None]).reshape(s * b, b)      # (S*B, B)
    d_pn = safe_distance(h_face[:, :, None], h_face[:, None]).reshape(s * b, b)       # (S*B, B)
    neg = (labels[:, None] != labels[None, :]).repeat(s, 1)                           # (S*B, B)
    rows = structured_terms(d_ap, d_an, d_pn, neg, cfg.margin, cfg.metric_loss)      # (S*B,)
    per = b if cfg.metric_loss == "triplet" else 2 * b
    return rows.sum() / per


def retrieval_total(cfg, out, labels: Tensor, retrieval_head: Callable[[Tensor], Tensor],
                    centres: Tensor | Sequence[Tensor], discriminator: Discriminator = None, *,
                    stream_kinds: Sequence[int] | None = None) -> dict[str, Tensor]:
    r"""The retrieval objective of eqs. (25)-(27) on a batch of B (voice, face) pairs.

    .. math:: \mathcal{L}^r_{total} = \mathcal{L}^{total}_{adv} + \lambda_1\mathcal{L}^r_{metric}
        + \mu_1\mathcal{L}_{cls}

    * adversarial: generator side of eq. (12) on the 2B items of every stream (each pair a tuple);
    * cls: :func:`retrieval_cls` (eq. 26);
    * metric (eq. 27): :func:`retrieval_metric` plus, for every stream s and both modalities,
      :func:`centre_loss` of the voice and face embeddings to their identity's centre
      :math:`c^s_{L_i}` (one centre per identity and stream, shared by the two modalities).

    ``out``: ``h_voice``, ``h_face`` (S, B, D); ``labels`` (B,) identity indices; ``retrieval_head``
    maps (..., D) differences to (...) logits; ``centres`` (n, D) shared by the streams, (S, n, D)
    or a list of S (n, D) tables, or (K, n, D) with ``stream_kinds`` (stream s uses table
    ``stream_kinds[s]``; ``DSANet`` keeps (2, n, D), salient / subtle side, and its
    ``stream_kinds``). Returns scalars ``{total, adversarial, metric, cls}``.
    """
    hv, hf = out.h_voice, out.h_face
    if hv.dim() != 3 or hv.shape != hf.shape or labels.shape != hv.shape[1:2]:
        raise ValueError(f"retrieval_total needs h_voice, h_face (S, B, D) and labels (B,), "
                         f"got {tuple(hv.shape)}, {tuple(hf.shape)}, {tuple(labels.shape)}")
    s = hv.shape[0]
    c = _stream_centres(centres, s, stream_kinds)  # (S, n, D)
    c_of = c[:, labels.long()]  # (S, B, D)
    centre = safe_distance(hv, c_of).mean(1).sum() + safe_distance(hf, c_of).mean(1).sum()
    metric = retrieval_metric(cfg, hv, hf, labels) + centre
    cls = retrieval_cls(hv, hf, labels, retrieval_head, cfg.retrieval_feature)
    adversarial = _adversarial_total(cfg, out, discriminator, generator_side=True)
    total = adversarial + cfg.lam1 * metric + cfg.mu1 * cls
    return {"total": total, "adversarial": adversarial, "metric": metric, "cls": cls}
