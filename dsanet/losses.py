"""Every loss of DSANet, one function per loss; the totals of eqs. (24) and (25).

Sections follow the paper (Sec. III-B..E):

* adversarial: :func:`discriminator_loss` (eq. 12) and :func:`adversarial_loss` (its generator side);
* classification: :func:`amce_mask` (eq. 16), :func:`amce_loss` (eqs. 14-17) and the Table VIII
  alternatives :func:`bce_loss`, :func:`gbce_loss`, :func:`focal_loss`;
* metric: :func:`structured_metric` (eqs. 21-22) and the Table X alternatives
  :func:`lifted_structure`, :func:`triplet`;
* :func:`centre_loss`, the class-centre term of eq. (27);
* totals: :func:`matching_total` (eq. 24 with eqs. 13, 20, 23), :func:`discriminator_total`
  (eq. 13, the discriminator step) and :func:`retrieval_total` (eqs. 25-27).

Conventions: modality codes face = 0, voice = 1; a tuple holds the anchor at index 0 and ``k``
candidates at 1..k; ``target`` (B,) is the index 0..k-1 of the true candidate. Every loss is computed
in float32 (bf16 autocast inputs are upcast), is batched (no loop over samples) and never reads a
value back to the host. Distances use a square root with a small ``eps`` inside, so that identical
embeddings give a finite (zero) gradient.

The totals take duck-typed model outputs (no import of :mod:`dsanet.models`):

* a tuple output has ``h`` (S, B, k+1, D), ``logits`` (S, B, k) and ``modality`` (B, k+1) long;
* a pair output has ``h_voice`` (S, B, D) and ``h_face`` (S, B, D).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

FACE, VOICE = 0, 1
EPS = 1e-12  # inside the square root of every Euclidean distance
ADVERSARIAL_KINDS = ("sagan", "gan", "wgan", "none")
CLS_LOSSES = ("amce", "bce", "gbce", "focal")
METRIC_LOSSES = ("structured", "lifted", "triplet", "none")
ADV_REDUCTIONS = ("tuple", "mean", "published")

Discriminator = Callable[[Tensor], Tensor] | Tensor | None


# ----------------------------------------------------------------------------- helpers

def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"dsanet/losses.py: unknown {name} {value!r}; choose one of {list(choices)}")


def _check_logits_target(logits: Tensor, target: Tensor, where: str) -> None:
    if logits.dim() != 2:
        raise ValueError(f"dsanet/losses.py {where}: logits must be (B, k), got {tuple(logits.shape)}")
    if target.shape != logits.shape[:1]:
        raise ValueError(f"dsanet/losses.py {where}: target must be (B,) = ({logits.shape[0]},), "
                         f"got {tuple(target.shape)}")
    if target.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"dsanet/losses.py {where}: target must be an integer class index, got {target.dtype}")


def _one_hot(target: Tensor, k: int) -> Tensor:
    """(B,) class indices -> (B, k) float32 one-hot."""
    return F.one_hot(target.long(), k).float()


def safe_distance(x: Tensor, y: Tensor) -> Tensor:
    r"""Euclidean distance over the last axis, :math:`\sqrt{\lVert x-y\rVert^2 + \epsilon}`.

    Broadcasts ``x`` (..., D) against ``y`` (..., D). With ``eps`` inside the root the distance of
    identical vectors is :math:`10^{-6}` and its gradient is exactly zero instead of NaN.
    """
    return ((x.float() - y.float()).pow(2).sum(-1) + EPS).sqrt()


# ----------------------------------------------------------------------------- classification (14-20)

def amce_mask(logits: Tensor, target: Tensor, eta: float) -> Tensor:
    r"""The adaptive 0/1 mask of eq. (16); not differentiated.

    With :math:`p_j = \sigma(m_j)` (eq. 15) and :math:`p^{\max} = \max_j p_j` over the row,

    .. math::
        \omega_j = \begin{cases} 1 & L_i = j \\ 1 & L_i \ne j,\ p_j - p^{\max} + \eta > 0 \\
        0 & \text{otherwise.} \end{cases}

    The row's most probable class always passes (for :math:`\eta > 0`); :math:`\eta > 1` keeps every
    class. Equality (:math:`p_j - p^{\max} + \eta = 0`) is masked, a case eq. (16) leaves open.

    logits (B, k), target (B,) -> mask (B, k) float32.
    """
    _check_logits_target(logits, target, "amce_mask")
    with torch.no_grad():
        p = logits.detach().float().sigmoid()                       # (B, k), eq. (15)
        p_max = p.amax(dim=1, keepdim=True)                         # (B, 1)
        keep = (p - p_max + eta) > 0                                # (B, k)
        keep = keep | _one_hot(target, logits.shape[1]).bool()      # the true class is always kept
    return keep.float()


def amce_loss(logits: Tensor, target: Tensor, eta: float = 0.1) -> Tensor:
    r"""Adaptive mask cross-entropy, eqs. (14)-(17).

    .. math::
        \mathcal{L}_{AMCE} = \frac{1}{B}\sum_{i=1}^{B}\sum_{j=1}^{k} \omega_{ij}\,
        \mathrm{BCE}(m_{ij}, y_{ij}),\qquad
        \mathrm{BCE}(m, y) = -y\log\sigma(m) - (1-y)\log(1-\sigma(m)),

    with :math:`y` the one-hot target and :math:`\omega` from :func:`amce_mask`. Its gradient is
    :math:`\partial\mathcal{L}/\partial m_j = (p_j - 1)/B` for the true class and
    :math:`\omega_j p_j / B` for a negative, which is eq. (17) up to the batch mean.

    Note: eq. (14) writes only :math:`-\sum_j \omega_j \log p_j`; the gradient of eq. (17) (and the
    published code) is that of the binary cross-entropy above, which is what is computed. Eq. (18)
    gives the plain BCE gradient as 0 for negatives, but BCE's gradient there is :math:`p_j`; so with
    :math:`\eta > 1` (every class kept) AMCE *equals* the full BCE of :func:`bce_loss`.

    logits (B, k), target (B,) -> scalar.
    """
    mask = amce_mask(logits, target, eta)                           # (B, k)
    onehot = _one_hot(target, logits.shape[1])                      # (B, k)
    bce = F.binary_cross_entropy_with_logits(logits.float(), onehot, reduction="none")
    return (bce * mask).sum() / logits.shape[0]


def bce_loss(logits: Tensor, target: Tensor) -> Tensor:
    r"""Binary cross-entropy with logits on every class (Table VIII, :math:`\mathcal{L}_{BCE}`).

    .. math:: \mathcal{L}_{BCE} = \frac{1}{B}\sum_{i}\sum_{j=1}^{k}\mathrm{BCE}(m_{ij}, y_{ij}).

    logits (B, k), target (B,) -> scalar.
    """
    _check_logits_target(logits, target, "bce_loss")
    onehot = _one_hot(target, logits.shape[1])
    return F.binary_cross_entropy_with_logits(logits.float(), onehot, reduction="sum") / logits.shape[0]


def gbce_loss(logits: Tensor, target: Tensor, negatives: int = 1) -> Tensor:
    r"""Gradient-boosting cross-entropy (Sun et al., AAAI 2020; Table VIII, :math:`\mathcal{L}_{GBCE}`).

    A softmax cross-entropy restricted to the true class and the ``negatives`` highest-scoring
    negative classes :math:`\mathcal{N}_i` of each row:

    .. math:: \mathcal{L}_{GBCE} = \frac{1}{B}\sum_i \Big[\log\big(e^{m_{iL_i}} +
        \sum_{j\in\mathcal{N}_i} e^{m_{ij}}\big) - m_{iL_i}\Big].

    ``negatives`` is capped at k - 1 (then GBCE is the full softmax cross-entropy; for k = 2 it
    always is). logits (B, k), target (B,) -> scalar.
    """
    _check_logits_target(logits, target, "gbce_loss")
    if negatives < 1:
        raise ValueError(f"dsanet/losses.py gbce_loss: negatives must be >= 1, got {negatives}")
    k = logits.shape[1]
    if k < 2:
        raise ValueError("dsanet/losses.py gbce_loss: needs k >= 2 classes")
    m = logits.float()                                                # (B, k)
    true = m.gather(1, target.long()[:, None])                        # (B, 1)
    neg = m.masked_fill(_one_hot(target, k).bool(), float("-inf"))    # (B, k), true class removed
    hard = neg.topk(min(negatives, k - 1), dim=1).values              # (B, n)
    return (torch.logsumexp(torch.cat([true, hard], 1), dim=1) - true[:, 0]).mean()


def focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0, alpha: float | None = None) -> Tensor:
    r"""Sigmoid focal loss (Lin et al., ICCV 2017; Table VIII, :math:`\mathcal{L}_{Focal}`).

    .. math:: \mathcal{L}_{Focal} = \frac{1}{B}\sum_i\sum_{j=1}^{k} -\alpha_{ij}(1 - p^t_{ij})^{\gamma}
        \log p^t_{ij},\qquad p^t_{ij} = \begin{cases}\sigma(m_{ij}) & y_{ij}=1\\
        1-\sigma(m_{ij}) & y_{ij}=0\end{cases}

    :math:`\alpha_{ij} = 1` by default (``alpha=None``), so that ``gamma=0`` gives :func:`bce_loss`;
    ``alpha=a`` weighs positives by a and negatives by 1 - a (Lin et al. use 0.25).
    Computed as :math:`\log p^t = -\mathrm{BCE}` and :math:`1 - p^t = -\mathrm{expm1}(-\mathrm{BCE})`,
    stable for any logit. logits (B, k), target (B,) -> scalar.
    """
    _check_logits_target(logits, target, "focal_loss")
    onehot = _one_hot(target, logits.shape[1])                                        # (B, k)
    bce = F.binary_cross_entropy_with_logits(logits.float(), onehot, reduction="none")  # -log p_t
    one_minus_pt = (-torch.expm1(-bce)).clamp_min(1e-12)                              # (B, k)
    loss = one_minus_pt.pow(gamma) * bce
    if alpha is not None:
        loss = loss * (alpha * onehot + (1.0 - alpha) * (1.0 - onehot))
    return loss.sum() / logits.shape[0]


def classification_loss(cfg, logits: Tensor, target: Tensor) -> Tensor:
    """The classification term of eq. (24) chosen by ``cfg.cls_loss`` (Table VIII).

    "amce" (eq. 14-17, ``cfg.eta``) | "bce" | "gbce" (``cfg.gbce_negatives``) | "focal"
    (``cfg.focal_gamma``). logits (B, k), target (B,) -> scalar.
    """
    _check_choice("cfg.cls_loss", cfg.cls_loss, CLS_LOSSES)
    if cfg.cls_loss == "amce":
        return amce_loss(logits, target, cfg.eta)
    if cfg.cls_loss == "bce":
        return bce_loss(logits, target)
    if cfg.cls_loss == "gbce":
        return gbce_loss(logits, target, cfg.gbce_negatives)
    return focal_loss(logits, target, cfg.focal_gamma)


# ----------------------------------------------------------------------------- metric (21-23)

def _tuple_distances(h: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Distances of a batch of tuples.

    h (B, k+1, D), target (B,) -> d_ap (B,), d_an (B, k), d_pn (B, k), neg (B, k) bool, where column
    j of d_an / d_pn is candidate j and ``neg`` marks the negatives (every candidate but the true one).
    """
    if h.dim() != 3 or h.shape[1] < 3:
        raise ValueError(f"dsanet/losses.py: metric losses need h (B, k+1, D) with k >= 2, got {tuple(h.shape)}")
    if target.shape != h.shape[:1]:
        raise ValueError(f"dsanet/losses.py: target must be (B,) = ({h.shape[0]},), got {tuple(target.shape)}")
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
        raise ValueError(f"dsanet/losses.py: unknown metric kind {kind!r}")
    return torch.where(valid, e.clamp_min(0.0), torch.zeros_like(e))


def structured_metric(h: Tensor, target: Tensor, margin: float = 1.2) -> Tensor:
    r"""Structured metric loss, eqs. (21)-(22).

    .. math::
        \mathcal{L}_{metric} = \frac{1}{2N}\sum_{i=1}^{N}\max(0, E_i),\quad
        E_i = \log\Big(\max_{n} e^{\theta - d(a_i, n)} + \max_{n} e^{\theta - d(p_i, n)}\Big) + d(a_i, p_i)

    with anchor :math:`a_i` = ``h[i, 0]``, positive :math:`p_i` = ``h[i, 1 + target[i]]``, the other
    k - 1 candidates as negatives :math:`n`, Euclidean :math:`d` and :math:`\theta` = ``margin``.
    :math:`d(a, n)` is cross-modal, :math:`d(p, n)` intra-modal. h (B, k+1, D), target (B,) -> scalar.
    """
    d_ap, d_an, d_pn, neg = _tuple_distances(h, target)
    return structured_terms(d_ap, d_an, d_pn, neg, margin, "structured").sum() / (2 * h.shape[0])


def lifted_structure(h: Tensor, target: Tensor, margin: float = 1.2) -> Tensor:
    r"""Lifted structured loss (Song et al., CVPR 2016) on tuples (Table X).

    .. math:: E_i = \log\Big(\sum_{n} e^{\theta - d(a_i, n)} + \sum_{n} e^{\theta - d(p_i, n)}\Big)
        + d(a_i, p_i),\qquad \mathcal{L} = \frac{1}{2N}\sum_i \max(0, E_i)

    Sums replace the maxima of eq. (22), so it equals :func:`structured_metric` for k = 2 (as the
    paper states for Table X). Song et al. square the hinge; the paper's equality needs it unsquared.
    h (B, k+1, D), target (B,) -> scalar.
    """
    d_ap, d_an, d_pn, neg = _tuple_distances(h, target)
    return structured_terms(d_ap, d_an, d_pn, neg, margin, "lifted").sum() / (2 * h.shape[0])


def triplet(h: Tensor, target: Tensor, margin: float = 1.2) -> Tensor:
    r"""Triplet loss (Schroff et al., CVPR 2015) as Table X describes it.

    .. math:: \mathcal{L} = \frac{1}{N}\sum_i \max\big(0,\ d(a_i, p_i) - \min_n d(p_i, n) + \theta\big)

    The paper: the triplet "compares the inter-modal distance (anchor-positive) with the intra-modal
    distance (positive-negative)"; the hardest negative is used, as in eq. (22).
    h (B, k+1, D), target (B,) -> scalar.
    """
    d_ap, d_an, d_pn, neg = _tuple_distances(h, target)
    return structured_terms(d_ap, d_an, d_pn, neg, margin, "triplet").mean()


def metric_loss(cfg, h: Tensor, target: Tensor) -> Tensor:
    """The metric term of eq. (24) chosen by ``cfg.metric_loss`` (Table X), margin ``cfg.margin``.

    "structured" | "lifted" | "triplet" | "none" (zero). h (B, k+1, D), target (B,) -> scalar.
    """
    _check_choice("cfg.metric_loss", cfg.metric_loss, METRIC_LOSSES)
    if cfg.metric_loss == "none":
        return h.new_zeros((), dtype=torch.float32)
    fn = {"structured": structured_metric, "lifted": lifted_structure, "triplet": triplet}[cfg.metric_loss]
    return fn(h, target, cfg.margin)


# ----------------------------------------------------------------------------- adversarial (12-13)

def _adversarial(logits: Tensor, modality: Tensor, kind: str, flip: bool, weight: Tensor | None,
                 norm: float | None, where: str) -> Tensor:
    _check_choice("adversarial kind", kind, ADVERSARIAL_KINDS)
    if kind == "none":
        return logits.new_zeros((), dtype=torch.float32)
    if logits.dim() < 2 or logits.shape[-1] not in (1, 2):
        raise ValueError(f"dsanet/losses.py {where}: logits must be (..., M, 2) or (..., M, 1), "
                         f"got {tuple(logits.shape)}")
    m = logits.shape[-2]
    if modality.shape[-1] != m:
        raise ValueError(f"dsanet/losses.py {where}: modality must end in M = {m}, got {tuple(modality.shape)}")
    z = logits.float()                                                   # (..., M, C)
    mod = modality.long().expand(z.shape[:-1])                          # (..., M)
    w = torch.ones_like(z[..., 0]) if weight is None else weight.float().expand(z.shape[:-1])
    if kind == "wgan":
        if z.shape[-1] != 1:
            raise ValueError(f"dsanet/losses.py {where}: a WGAN critic outputs (..., M, 1), got {tuple(z.shape)}")
        c = z[..., 0]
        wf, wv = w * (mod == FACE), w * (mod == VOICE)                   # (..., M)
        gap = (c * wf).sum(-1) / wf.sum(-1).clamp_min(1e-12) - (c * wv).sum(-1) / wv.sum(-1).clamp_min(1e-12)
        return (-gap if flip else gap).sum()                             # summed over leading streams
    y = 1 - mod if flip else mod                                         # (..., M)
    if z.shape[-1] == 2:
        per_item = F.cross_entropy(z.reshape(-1, 2), y.reshape(-1), reduction="none").view(y.shape)
    else:
        per_item = F.binary_cross_entropy_with_logits(z[..., 0], y.float(), reduction="none")
    return (per_item * w).sum() / (m if norm is None else norm)


def discriminator_loss(logits: Tensor, modality: Tensor, kind: str = "sagan", *,
                       weight: Tensor | None = None, norm: float | None = None) -> Tensor:
    r"""The discriminator's loss, eq. (12); leading axes (streams) are summed, eq. (13).

    "sagan" / "gan": cross-entropy on the true modality (face 0, voice 1),

    .. math:: \mathcal{L}_{disc} = -\frac{1}{\text{norm}}\sum_{m} w_m \log D_{Y_m}(h_m),

    softmax cross-entropy for (M, 2) logits, sigmoid BCE (probability of "voice") for (M, 1).
    ``norm`` defaults to M (a mean over items); eq. (12) is ``norm`` = N tuples with the k+1 items of
    each tuple summed (see :func:`matching_total`). ``weight`` (M,) weighs items (default 1).

    "wgan": critic loss :math:`\bar c_{face} - \bar c_{voice}` (weighted means of the critic (M, 1)
    over each modality): the critic learns to score voices high and faces low; the Wasserstein
    estimate it maximises is :math:`\bar c_{voice} - \bar c_{face}`; ``norm`` is not used (the
    per-modality means already normalise). "none": zero.

    logits (..., M, C), modality (M,) or (..., M) long -> scalar.
    """
    return _adversarial(logits, modality, kind, False, weight, norm, "discriminator_loss")


def adversarial_loss(logits: Tensor, modality: Tensor, kind: str = "sagan", *,
                     weight: Tensor | None = None, norm: float | None = None) -> Tensor:
    r"""The generator's side of eq. (12): fool the discriminator.

    "sagan" / "gan": the cross-entropy of :func:`discriminator_loss` on the *flipped* modality
    :math:`1 - Y` (as the published code does; the non-saturating GAN form). "wgan": the negated
    critic loss, :math:`\bar c_{voice} - \bar c_{face}`. "none": zero. Same shapes and options as
    :func:`discriminator_loss`.
    """
    return _adversarial(logits, modality, kind, True, weight, norm, "adversarial_loss")


def _adversarial_weights(modality: Tensor, reduction: str) -> tuple[Tensor | None, int]:
    """Item weights (B*(k+1),) and the divisor for a (B, k+1) modality table, per ``cfg.adv_reduction``.

    "tuple" (eq. 12): every item 1, divided by N = B. "mean": every item 1, divided by B(k+1).
    "published": the anchor weighs k and each candidate 1 (both modalities weigh k per tuple; the
    published code's face term x2 for k = 2), divided by B.
    """
    _check_choice("cfg.adv_reduction", reduction, ADV_REDUCTIONS)
    b, items = modality.shape
    if reduction == "mean":
        return None, b * items
    if reduction == "tuple":
        return None, b
    w = torch.ones(b, items, device=modality.device)
    w[:, 0] = items - 1
    return w.reshape(-1), b


# ----------------------------------------------------------------------------- class centres (27)

def centre_loss(h: Tensor, labels: Tensor, centres: Tensor) -> Tensor:
    r"""Class-centre term of eq. (27) (Luo et al., after Wen et al.'s centre loss).

    .. math:: \mathcal{L}_{centre} = \frac{1}{N}\sum_{i=1}^{N}\lVert h_i - c_{L_i}\rVert

    The paper's plain Euclidean norm (not Luo et al.'s :math:`\tfrac12\lVert\cdot\rVert^2`), with the
    safe root of :func:`safe_distance`. h (B, D), labels (B,) long in [0, n), centres (n, D) -> scalar.
    """
    if h.dim() != 2 or centres.dim() != 2 or h.shape[1] != centres.shape[1]:
        raise ValueError(f"dsanet/losses.py centre_loss: need h (B, D) and centres (n, D), got "
                         f"{tuple(h.shape)} and {tuple(centres.shape)}")
    if labels.shape != h.shape[:1]:
        raise ValueError(f"dsanet/losses.py centre_loss: labels must be (B,) = ({h.shape[0]},), "
                         f"got {tuple(labels.shape)}")
    return safe_distance(h, centres[labels.long()]).mean()


# ----------------------------------------------------------------------------- totals (24), (25)

def _disc_logits(discriminator: Discriminator, h: Tensor, kind: str) -> Tensor | None:
    """Discriminator logits (S, M, C) for items h (S, M, D); precomputed logits are reshaped."""
    if kind == "none":
        return None
    if discriminator is None:
        raise ValueError(f"dsanet/losses.py: cfg.adversarial={kind!r} needs a discriminator (module or logits)")
    s, m, d = h.shape
    z = discriminator if isinstance(discriminator, Tensor) else discriminator(h.reshape(s * m, d))
    if z.numel() not in (s * m, 2 * s * m):
        raise ValueError(f"dsanet/losses.py: discriminator logits of shape {tuple(z.shape)} do not fit "
                         f"{s} streams x {m} items")
    return z.reshape(s, m, -1)                                        # (S, M, C)


def _tuple_items(out) -> tuple[Tensor, Tensor]:
    """A tuple output as items: h (S, B*(k+1), D) and modality (B*(k+1),)."""
    if out.h.dim() != 4:
        raise ValueError(f"dsanet/losses.py: TupleOutput.h must be (S, B, k+1, D), got {tuple(out.h.shape)}")
    s, b, items, d = out.h.shape
    if out.modality.shape != (b, items):
        raise ValueError(f"dsanet/losses.py: TupleOutput.modality must be (B, k+1) = ({b}, {items}), "
                         f"got {tuple(out.modality.shape)}")
    return out.h.reshape(s, b * items, d), out.modality.reshape(-1)


def _pair_items(out) -> tuple[Tensor, Tensor]:
    """A pair output as items: h (S, 2B, D) (voices then faces) and modality (2B,)."""
    hv, hf = out.h_voice, out.h_face
    if hv.dim() != 3 or hv.shape != hf.shape:
        raise ValueError(f"dsanet/losses.py: PairOutput needs h_voice and h_face (S, B, D) of one shape, "
                         f"got {tuple(hv.shape)} and {tuple(hf.shape)}")
    b = hv.shape[1]
    modality = torch.cat([torch.full((b,), VOICE, device=hv.device), torch.full((b,), FACE, device=hv.device)])
    return torch.cat([hv, hf], dim=1), modality


def _items_of(out, reduction: str) -> tuple[Tensor, Tensor, Tensor | None, int]:
    """Items, modality, weights and divisor of a tuple or pair output (pairs are tuples with k = 1)."""
    if hasattr(out, "h"):
        h, modality = _tuple_items(out)
        weight, norm = _adversarial_weights(out.modality, reduction)
    else:
        h, modality = _pair_items(out)
        b = out.h_voice.shape[1]
        weight, norm = None, (2 * b if reduction == "mean" else b)
    return h, modality, weight, norm


def _adversarial_total(cfg, out, discriminator: Discriminator, generator_side: bool) -> Tensor:
    h, modality, weight, norm = _items_of(out, cfg.adv_reduction)         # (S, M, D), (M,)
    z = _disc_logits(discriminator, h, cfg.adversarial)                   # (S, M, C) or None
    if z is None:
        return h.new_zeros((), dtype=torch.float32)
    fn = adversarial_loss if generator_side else discriminator_loss
    return fn(z, modality, cfg.adversarial, weight=weight, norm=norm)


def discriminator_total(cfg, out, discriminator: Discriminator) -> Tensor:
    r"""The discriminator step's loss, eq. (13): eq. (12) summed over the S streams.

    :math:`\mathcal{L}^{total}_{disc} = \sum_s \mathcal{L}^{s}_{disc}` with the reduction
    ``cfg.adv_reduction``. ``out`` is a tuple output (matching) or a pair output (retrieval: each
    (voice, face) pair is a tuple of two items); the caller detaches its embeddings.
    ``discriminator`` is a module (M, D) -> (M, 2) or (M, 1), called once on all S*M items, or
    precomputed logits (S, M, C) / (S*M, C) in item order. Returns a scalar (0 for "none").
    """
    return _adversarial_total(cfg, out, discriminator, generator_side=False)


def matching_total(cfg, out, target: Tensor, discriminator: Discriminator = None) -> dict[str, Tensor]:
    r"""The matching objective of eq. (24), every term summed over the S streams.

    .. math:: \mathcal{L}^m_{total} = \mathcal{L}^{total}_{adv} + \lambda\,\mathcal{L}^m_{metric}
        + \mu\,\mathcal{L}^{total}_{cls}

    * adversarial (eq. 13 form, generator side): :func:`adversarial_loss` on ``out.h``'s items,
      reduced as ``cfg.adv_reduction`` (default "tuple": eq. 12's 1/N sum over the k+1 items);
    * metric (eq. 23): :func:`metric_loss` on each stream's (B, k+1, D) tuples;
    * cls (eq. 20): :func:`classification_loss` on each stream's (B, k) logits.

    ``out``: ``h`` (S, B, k+1, D), ``logits`` (S, B, k), ``modality`` (B, k+1); ``target`` (B,).
    ``discriminator``: a module (M, D) -> logits, precomputed logits, or None when
    ``cfg.adversarial == "none"``. Returns scalars ``{total, adversarial, metric, cls}``.
    """
    s, b, items, d = out.h.shape
    if out.logits.shape != (s, b, items - 1):
        raise ValueError(f"dsanet/losses.py matching_total: logits must be (S, B, k) = ({s}, {b}, {items - 1}), "
                         f"got {tuple(out.logits.shape)}")
    targets = target.repeat(s)                                             # (S*B,), stream-major
    # every per-stream loss is a mean over its B rows, so the sum over streams is S x the flat mean
    metric = s * metric_loss(cfg, out.h.reshape(s * b, items, d), targets)
    cls = s * classification_loss(cfg, out.logits.reshape(s * b, items - 1), targets)
    adversarial = _adversarial_total(cfg, out, discriminator, generator_side=True)
    total = adversarial + cfg.lam * metric + cfg.mu * cls
    return {"total": total, "adversarial": adversarial, "metric": metric, "cls": cls}


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
            raise ValueError(f"dsanet/losses.py retrieval_total: stream_kinds needs centres (K, n, D) and one "
                             f"kind per stream ({s}), got {tuple(centres.shape)} and {list(stream_kinds)}")
        return centres[list(stream_kinds)]
    if centres.dim() == 2:
        return centres.expand(s, -1, -1)
    if centres.dim() == 3 and centres.shape[0] == s:
        return centres
    raise ValueError(f"dsanet/losses.py retrieval_total: centres must be (n, D) or (S={s}, n, D), or come "
                     f"with stream_kinds; got {tuple(centres.shape)}")


def retrieval_cls(h_voice: Tensor, h_face: Tensor, labels: Tensor,
                  retrieval_head: Callable[[Tensor], Tensor]) -> Tensor:
    r"""Global classification term of eq. (26) on in-batch pairs, summed over the streams.

    .. math:: \mathcal{L}_{cls} = \sum_s \frac{1}{N}\sum_{i=1}^{N}\sum_{j=1}^{N}
        \mathrm{BCE}\big(C_R(h^s_{v,i} - h^s_{f,j}),\ l_{ij}\big),\quad l_{ij} = [L_i = L_j]

    Every voice i is scored against every face j of the batch; eq. (26) writes only the
    :math:`l \log C_R` term, the full binary cross-entropy (with :math:`1 - l`) is used.
    h_voice, h_face (S, B, D), labels (B,) -> scalar.
    """
    diff = h_voice[:, :, None, :] - h_face[:, None, :, :]                 # (S, B, B, D)
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
        raise ValueError(f"dsanet/losses.py retrieval_total: need h_voice, h_face (S, B, D) and labels (B,), "
                         f"got {tuple(hv.shape)}, {tuple(hf.shape)}, {tuple(labels.shape)}")
    s = hv.shape[0]
    c = _stream_centres(centres, s, stream_kinds)  # (S, n, D)
    c_of = c[:, labels.long()]  # (S, B, D)
    centre = safe_distance(hv, c_of).mean(1).sum() + safe_distance(hf, c_of).mean(1).sum()
    metric = retrieval_metric(cfg, hv, hf, labels) + centre
    cls = retrieval_cls(hv, hf, labels, retrieval_head)
    adversarial = _adversarial_total(cfg, out, discriminator, generator_side=True)
    total = adversarial + cfg.lam1 * metric + cfg.mu1 * cls
    return {"total": total, "adversarial": adversarial, "metric": metric, "cls": cls}
