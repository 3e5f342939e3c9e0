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

from . import variants

FACE, VOICE = 0, 1
EPS = 1e-12  # inside the square root of every Euclidean distance
# The names are registered in dsanet.variants, with what each needs:
ADVERSARIAL_KINDS = variants.names("adversarial")
CLS_LOSSES = variants.names("cls_loss")
METRIC_LOSSES = variants.names("metric_loss")
# need the whole batch, not tuples: only with cfg.sampling = "batch"
BATCH_METRICS = tuple(n for n, spec in variants.METRIC_LOSSES.items() if spec.batch_only)
ADV_REDUCTIONS = ("tuple", "mean", "published")
# What the generator's side of eq. (12) aims the discriminator at (see adversarial_loss):
ADV_TARGETS = variants.names("adv_target")

Discriminator = Callable[[Tensor], Tensor] | Tensor | None


# ----------------------------------------------------------------------------- helpers

def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {list(choices)}")



def _check_logits_target(logits: Tensor, target: Tensor, where: str) -> None:
    if logits.dim() != 2:
        raise ValueError(f"{where}: logits must be (B, k), got {tuple(logits.shape)}")
    if target.shape != logits.shape[:1]:
        raise ValueError(f"{where}: target must be (B,) = ({logits.shape[0]},), "
                         f"got {tuple(target.shape)}")
    if target.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{where}: target must be an integer class index, got {target.dtype}")


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
        raise ValueError(f"gbce_loss: negatives must be >= 1, got {negatives}")
    k = logits.shape[1]
    if k < 2:
        raise ValueError(f"gbce_loss needs k >= 2 classes, got logits {tuple(logits.shape)}")
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
    return _CLASSIFICATION[cfg.cls_loss](cfg, logits, target)


# what computes each classification loss registered in dsanet.variants.CLS_LOSSES
_CLASSIFICATION: dict[str, Callable[..., Tensor]] = {
    "amce": lambda cfg, z, t: amce_loss(z, t, cfg.eta),
    "bce": lambda cfg, z, t: bce_loss(z, t),
    "gbce": lambda cfg, z, t: gbce_loss(z, t, cfg.gbce_negatives),
    "focal": lambda cfg, z, t: focal_loss(z, t, cfg.focal_gamma),
    "none": lambda cfg, z, t: z.new_zeros((), dtype=torch.float32),
}


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

    * "tuple" (eq. 21): :math:`rac{1}{per\cdot N}\sum_i r_i`;
    * "published": the published script's: rows grouped by label (``target``, the position
      0..k-1 of the true candidate), each group's sum divided by per x its size, the groups added,
      :math:`\sum_g rac{1}{per\cdot n_g}\sum_{i: L_i = g} r_i`; about k x eq. (21) when the
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


# ----------------------------------------------------------------------------- adversarial (12-13)

def _adversarial(logits: Tensor, modality: Tensor, kind: str, flip: bool, weight: Tensor | None,
                 norm: float | None, where: str, target: str = "flip") -> Tensor:
    """Eq. (12) for the objective of ``kind``'s spec (dsanet.variants.ADVERSARIAL); ``flip``: the
    generator's side, aimed as ``target``'s spec says (dsanet.variants.ADV_TARGETS)."""
    spec = variants.get("adversarial", kind)
    if spec.objective == "none":
        return logits.new_zeros((), dtype=torch.float32)
    if logits.dim() < 2 or logits.shape[-1] not in (1, 2):
        raise ValueError(f"{where}: logits must be (..., M, 2) or (..., M, 1), "
                         f"got {tuple(logits.shape)}")
    m = logits.shape[-2]
    if modality.shape[-1] != m:
        raise ValueError(f"{where}: modality must end in M = {m}, got {tuple(modality.shape)}")
    z = logits.float()                                                   # (..., M, C)
    mod = modality.long().expand(z.shape[:-1])                          # (..., M)
    w = torch.ones_like(z[..., 0]) if weight is None else weight.float().expand(z.shape[:-1])
    if spec.outputs == 1 and z.shape[-1] != 1:
        raise ValueError(f"{where}: the {kind!r} discriminator is a 1-output critic, its logits are "
                         f"(..., M, 1), got {tuple(z.shape)}")
    if spec.objective == "wasserstein":
        c = z[..., 0]
        wf, wv = w * (mod == FACE), w * (mod == VOICE)                   # (..., M)
        gap = (c * wf).sum(-1) / wf.sum(-1).clamp_min(1e-12) - (c * wv).sum(-1) / wv.sum(-1).clamp_min(1e-12)
        return (-gap if flip else gap).sum()                             # summed over leading streams
    goal = variants.get("adv_target", target) if flip else None
    if goal is not None and goal.negate:   # the generator maximises the discriminator's loss
        return -_adversarial(logits, modality, kind, False, weight, norm, where)
    if goal is not None and goal.label == "uniform":   # both modalities at probability 1/2
        y = torch.full(mod.shape, 0.5, device=z.device)                  # (..., M)
    else:
        y = (1 - mod if goal is not None and goal.label == "flipped" else mod).float()  # (..., M)
    if spec.objective == "least_squares":
        per_item = (z[..., 0] - y).square()                              # (D(h) - y)^2, (..., M)
    elif z.shape[-1] == 2:
        logp = F.log_softmax(z, dim=-1)                                  # (..., M, 2)
        per_item = -(y * logp[..., VOICE] + (1 - y) * logp[..., FACE])
    else:
        per_item = F.binary_cross_entropy_with_logits(z[..., 0], y, reduction="none")
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

    "lsgan" (Mao et al., 2017): the least-squares loss of a 1-output discriminator (M, 1) trained
    towards 1 for voices and 0 for faces, reduced as the cross-entropy is,

    .. math:: \mathcal{L}_{disc} = \frac{1}{\text{norm}}\sum_{m} w_m \big(D(h_m) - Y_m\big)^2
        \quad(\text{a voice gives }(D - 1)^2\text{, a face }D^2).

    logits (..., M, C), modality (M,) or (..., M) long -> scalar.
    """
    return _adversarial(logits, modality, kind, False, weight, norm, "discriminator_loss")


def adversarial_loss(logits: Tensor, modality: Tensor, kind: str = "sagan", *,
                     weight: Tensor | None = None, norm: float | None = None,
                     target: str = "flip") -> Tensor:
    r"""The generator's side of eq. (12): fool the discriminator. ``target`` says how:

    * "flip" (the published code; the non-saturating GAN form): the cross-entropy of
      :func:`discriminator_loss` on the *flipped* modality :math:`1 - Y`. Its optimum maps voices
      to where faces were and back: the modalities swap instead of merging, and the
      discriminator's accuracy falls towards 0 rather than 1/2.
    * "confusion" (modality confusion): cross-entropy against the uniform target
      :math:`-\tfrac12(\log D_{face}(h) + \log D_{voice}(h))`, minimal where the discriminator
      cannot tell the modalities apart (accuracy 1/2).
    * "minimax" (gradient reversal): the negated discriminator loss, eq. (12)'s min-max read
      literally; its gradient is the discriminator's, reversed.

    "lsgan" takes the same targets with the squared error in place of the cross-entropy: "flip"
    :math:`(D(h) - (1 - Y))^2`, "confusion" :math:`(D(h) - \tfrac12)^2`, "minimax" the negated
    discriminator loss. "wgan" ignores ``target``: the negated critic loss,
    :math:`\bar c_{voice} - \bar c_{face}`. "none": zero. Same shapes and options as
    :func:`discriminator_loss`.
    """
    _check_choice("adversarial target", target, ADV_TARGETS)
    return _adversarial(logits, modality, kind, True, weight, norm, "adversarial_loss", target)


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
        raise ValueError(f"centre_loss needs h (B, D) and centres (n, D), got "
                         f"{tuple(h.shape)} and {tuple(centres.shape)}")
    if labels.shape != h.shape[:1]:
        raise ValueError(f"centre_loss: labels must be (B,) = ({h.shape[0]},), "
                         f"got {tuple(labels.shape)}")
    return safe_distance(h, centres[labels.long()]).mean()


# ----------------------------------------------------------------------------- totals (24), (25)

def _per_input_logits(discriminator: Callable[[Tensor], Tensor], out, h: Tensor) -> Tensor:
    """``cfg.gen_calls="per_input"``: one discriminator call per stream and input batch.

    The inputs of a tuple output are its k+1 positions (anchor batch, each candidate batch); of a
    pair (or in-batch) output its voice batch and its face batch. h (S, M, D) -> (S, M, C).
    """
    s, m, d = h.shape
    if hasattr(out, "h"):                                             # items b-major: (b, j)
        b, items = out.modality.shape
        x = h.view(s, b, items, d).transpose(1, 2)                    # (S, k+1, B, D)
    else:                                                             # voices, then faces
        x = h.view(s, 2, m // 2, d)                                   # (S, 2, B, D)
    z = torch.stack([torch.stack([discriminator(x[i, j]) for j in range(x.shape[1])])
                     for i in range(s)])                              # (S, G, n, C)
    return (z.transpose(1, 2) if hasattr(out, "h") else z).reshape(s, m, -1)


def _disc_logits(discriminator: Discriminator, h: Tensor, kind: str, out=None) -> Tensor | None:
    """Discriminator logits (S, M, C) for items h (S, M, D); precomputed logits are reshaped.

    With ``out`` (the model output the items come from) the module is called once per stream
    and input batch (:func:`_per_input_logits`), else once on all S*M items.
    """
    if variants.get("adversarial", kind).objective == "none":
        return None
    if discriminator is None:
        raise ValueError(f"cfg.adversarial={kind!r} needs a discriminator (module or logits), got None")
    s, m, d = h.shape
    if isinstance(discriminator, Tensor):
        z = discriminator
    elif out is not None:
        z = _per_input_logits(discriminator, out, h)
    else:
        z = discriminator(h.reshape(s * m, d))
    if z.numel() not in (s * m, 2 * s * m):
        raise ValueError(f"discriminator logits of shape {tuple(z.shape)} do not fit "
                         f"{s} streams x {m} items")
    return z.reshape(s, m, -1)                                        # (S, M, C)


def _tuple_items(out) -> tuple[Tensor, Tensor]:
    """A tuple output as items: h (S, B*(k+1), D) and modality (B*(k+1),)."""
    if out.h.dim() != 4:
        raise ValueError(f"TupleOutput.h must be (S, B, k+1, D), got {tuple(out.h.shape)}")
    s, b, items, d = out.h.shape
    if out.modality.shape != (b, items):
        raise ValueError(f"TupleOutput.modality must be (B, k+1) = ({b}, {items}), "
                         f"got {tuple(out.modality.shape)}")
    return out.h.reshape(s, b * items, d), out.modality.reshape(-1)


def _pair_items(out) -> tuple[Tensor, Tensor]:
    """A pair output as items: h (S, 2B, D) (voices then faces) and modality (2B,)."""
    hv, hf = out.h_voice, out.h_face
    if hv.dim() != 3 or hv.shape != hf.shape:
        raise ValueError(f"PairOutput needs h_voice and h_face (S, B, D) of one shape, "
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
    per_input = out if getattr(cfg, "gen_calls", "pooled") == "per_input" else None
    z = _disc_logits(discriminator, h, cfg.adversarial, per_input)        # (S, M, C) or None
    if z is None:
        return h.new_zeros((), dtype=torch.float32)
    if generator_side:
        return adversarial_loss(z, modality, cfg.adversarial, weight=weight, norm=norm,
                                target=cfg.adv_target)
    return discriminator_loss(z, modality, cfg.adversarial, weight=weight, norm=norm)


def discriminator_logits(cfg, out, discriminator: Callable[[Tensor], Tensor]) -> Tensor:
    """The discriminator's logits (S, M, C) on a tuple or pair output's items, in item order:
    one call on all items, or one per stream and input batch (``cfg.gen_calls="per_input"``)."""
    h = _items_of(out, cfg.adv_reduction)[0]                              # (S, M, D)
    if getattr(cfg, "gen_calls", "pooled") == "per_input":
        return _per_input_logits(discriminator, out, h)
    s, m, d = h.shape
    return discriminator(h.reshape(s * m, d)).view(s, m, -1)


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
        raise ValueError(f"matching_total: logits must be (S, B, k) = ({s}, {b}, {items - 1}), "
                         f"got {tuple(out.logits.shape)}")
    metric, cls = tuple_terms(cfg, out, target)
    adversarial = _adversarial_total(cfg, out, discriminator, generator_side=True)
    total = adversarial + cfg.lam * metric + cfg.mu * cls
    return {"total": total, "adversarial": adversarial, "metric": metric, "cls": cls}


def tuple_terms(cfg, out, target: Tensor) -> tuple[Tensor, Tensor]:
    """The per-tuple terms of eq. (24) summed over streams: (metric, eq. 23; cls, eq. 20).

    ``out``: ``h`` (S, B, k+1, D), ``logits`` (S, B, k); ``target`` (B,) -> two scalars.
    """
    s, b, items, d = out.h.shape
    targets = target.repeat(s)                                             # (S*B,), stream-major
    # every per-stream loss is a mean over its B rows, so the sum over streams is S x the flat mean
    metric = s * metric_loss(cfg, out.h.reshape(s * b, items, d), targets)
    cls = s * classification_loss(cfg, out.logits.reshape(s * b, items - 1), targets)
    return metric, cls


def adversarial_total(cfg, out, discriminator: Discriminator) -> Tensor:
    """The generator side of eq. (13) on a tuple or pair output (each item once for pairs)."""
    return _adversarial_total(cfg, out, discriminator, generator_side=True)


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
    cls = retrieval_cls(hv, hf, labels, retrieval_head)
    adversarial = _adversarial_total(cfg, out, discriminator, generator_side=True)
    total = adversarial + cfg.lam1 * metric + cfg.mu1 * cls
    return {"total": total, "adversarial": adversarial, "metric": metric, "cls": cls}
