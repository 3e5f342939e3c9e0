"""Known-answer tests of dsanet/losses.py.

Expected values come from hand computation or from plain per-element Python formulas written here
(lists and the ``math`` module), never from the code under test.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from dsanet import losses as L
from dsanet.config import Config

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- naive references

def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def naive_bce(m: float, y: float) -> float:
    p = sig(m)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def dist(x, y) -> float:
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(x, y)))


def naive_tuple_rows(h, target, margin, kind):
    """Per-tuple hinge terms from nested lists h[i][j][d]."""
    rows = []
    for i, t in enumerate(target):
        a, p = h[i][0], h[i][1 + t]
        negs = [h[i][1 + j] for j in range(len(h[i]) - 1) if j != t]
        ea = [math.exp(margin - dist(a, n)) for n in negs]
        ep = [math.exp(margin - dist(p, n)) for n in negs]
        if kind == "structured":
            e = math.log(max(ea) + max(ep)) + dist(a, p)
        elif kind == "lifted":
            e = math.log(sum(ea) + sum(ep)) + dist(a, p)
        else:  # triplet
            e = dist(a, p) - min(dist(p, n) for n in negs) + margin
        rows.append(max(0.0, e))
    return rows


def naive_metric(h, target, margin, kind):
    rows = naive_tuple_rows(h, target, margin, kind)
    return sum(rows) / (len(rows) if kind == "triplet" else 2 * len(rows))


def naive_amce(logits, target, eta):
    total = 0.0
    for row, t in zip(logits, target):
        p = [sig(m) for m in row]
        pmax = max(p)
        for j, m in enumerate(row):
            if j == t or p[j] - pmax + eta > 0:
                total += naive_bce(m, 1.0 if j == t else 0.0)
    return total / len(logits)


def naive_ce(z, y):
    """Softmax cross-entropy of one logit list z and class y."""
    return math.log(sum(math.exp(v) for v in z)) - z[y]


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def tensor(x, **kw):
    return torch.tensor(x, dtype=torch.float32, **kw)


# ----------------------------------------------------------------------------- AMCE (14-19)

PROBS = [0.9, 0.85, 0.7, 0.81, 0.2, 0.79]


def test_amce_mask_follows_eq16_on_chosen_probabilities():
    logits = tensor([[logit(p) for p in PROBS]] * 2)
    target = torch.tensor([2, 4])
    mask = L.amce_mask(logits, target, eta=0.1)
    # p - p_max + eta: 0.1, 0.05, -0.1, 0.01, -0.6, -0.01
    assert mask.tolist() == [[1, 1, 1, 1, 0, 0],   # class 2 kept as the true class
                             [1, 1, 0, 1, 1, 0]]   # class 4 kept as the true class, class 2 masked


def test_amce_gradient_is_eq17_and_zero_for_masked_classes():
    torch.manual_seed(0)
    logits = (torch.randn(4, 6) * 2).requires_grad_()
    target = torch.tensor([0, 3, 5, 1])
    L.amce_loss(logits, target, eta=0.1).backward()
    grad = logits.grad * 4                                  # undo the 1/B
    p = [[sig(v) for v in row] for row in logits.tolist()]
    n_masked = 0
    for i, t in enumerate(target.tolist()):
        pmax = max(p[i])
        for j in range(6):
            if j == t:
                want = p[i][j] - 1.0
            elif p[i][j] - pmax + 0.1 > 0:
                want = p[i][j]
            else:
                want, n_masked = 0.0, n_masked + 1
            assert grad[i, j].item() == pytest.approx(want, abs=1e-6)
    assert n_masked > 0                                     # the example really exercises the mask


def test_amce_known_value_and_large_eta_equals_full_bce():
    torch.manual_seed(1)
    logits = torch.randn(5, 4) * 3
    target = torch.tensor([0, 1, 2, 3, 1])
    lg, tg = logits.tolist(), target.tolist()
    assert L.amce_loss(logits, target, 0.1).item() == pytest.approx(naive_amce(lg, tg, 0.1), rel=1e-5)
    full = sum(naive_bce(m, 1.0 if j == t else 0.0) for row, t in zip(lg, tg) for j, m in enumerate(row)) / 5
    assert L.amce_loss(logits, target, eta=2.0).item() == pytest.approx(full, rel=1e-5)
    assert L.bce_loss(logits, target).item() == pytest.approx(full, rel=1e-5)
    assert L.amce_loss(logits, target, 0.1).item() < full   # something was masked


# ----------------------------------------------------------------------------- GBCE, focal

def test_gbce_known_values():
    logits = tensor([[2.0, 1.0, 3.0, 0.5]])
    target = torch.tensor([1])
    # one negative: the hardest, class 2 -> log(1 + e^2)
    assert L.gbce_loss(logits, target, 1).item() == pytest.approx(math.log(1 + math.e ** 2), rel=1e-6)
    # two negatives: classes 2 and 0
    want = math.log(math.exp(1) + math.exp(3) + math.exp(2)) - 1
    assert L.gbce_loss(logits, target, 2).item() == pytest.approx(want, rel=1e-6)
    # more negatives than exist: full softmax cross-entropy
    assert L.gbce_loss(logits, target, 9).item() == pytest.approx(naive_ce([2, 1, 3, 0.5], 1), rel=1e-6)


def test_focal_known_values():
    logits = tensor([[0.0, 2.0]])
    target = torch.tensor([0])
    p1 = sig(2.0)
    want = 0.5 ** 2 * math.log(2) + p1 ** 2 * -math.log(1 - p1)
    assert L.focal_loss(logits, target, gamma=2.0).item() == pytest.approx(want, rel=1e-5)
    want_alpha = 0.25 * 0.5 ** 2 * math.log(2) + 0.75 * p1 ** 2 * -math.log(1 - p1)
    assert L.focal_loss(logits, target, 2.0, alpha=0.25).item() == pytest.approx(want_alpha, rel=1e-5)
    torch.manual_seed(2)
    z, t = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    assert L.focal_loss(z, t, gamma=0.0).item() == pytest.approx(L.bce_loss(z, t).item(), rel=1e-6)


def test_classification_dispatch_and_errors():
    torch.manual_seed(3)
    z, t = torch.randn(4, 3), torch.tensor([0, 2, 1, 1])
    zl, tl = z.tolist(), t.tolist()
    cfg = Config(eta=0.1)
    assert L.classification_loss(cfg, z, t).item() == pytest.approx(naive_amce(zl, tl, 0.1), rel=1e-5)
    want_bce = naive_amce(zl, tl, 5.0)
    assert L.classification_loss(cfg.replace(cls_loss="bce"), z, t).item() == pytest.approx(want_bce, rel=1e-5)
    want_ce = sum(naive_ce(r, y) for r, y in zip(zl, tl)) / 4  # k = 3, 2 negatives = full CE
    g = L.classification_loss(cfg.replace(cls_loss="gbce", gbce_negatives=2), z, t)
    assert g.item() == pytest.approx(want_ce, rel=1e-5)
    f = L.classification_loss(cfg.replace(cls_loss="focal", focal_gamma=0.0), z, t)
    assert f.item() == pytest.approx(want_bce, rel=1e-5)
    with pytest.raises(ValueError, match="cls_loss"):
        L.classification_loss(cfg.replace(cls_loss="softmax"), z, t)
    with pytest.raises(ValueError, match="target"):
        L.amce_loss(z, t[:2], 0.1)


# ----------------------------------------------------------------------------- metric (21-23)

@pytest.mark.parametrize("k", [2, 10])
def test_structured_lifted_triplet_match_naive_loops(k):
    torch.manual_seed(k)
    h = torch.randn(5, k + 1, 4) * 0.7
    target = torch.randint(0, k, (5,))
    hl, tl = h.tolist(), target.tolist()
    for fn, kind in [(L.structured_metric, "structured"), (L.lifted_structure, "lifted"), (L.triplet, "triplet")]:
        got = fn(h, target, 1.2).item()
        assert got == pytest.approx(naive_metric(hl, tl, 1.2, kind), rel=1e-5, abs=1e-6), kind
        assert got > 0


def test_lifted_equals_structured_only_for_k2():
    torch.manual_seed(4)
    t2 = torch.randint(0, 2, (6,))
    h2 = torch.randn(6, 3, 8)
    assert L.lifted_structure(h2, t2).item() == pytest.approx(L.structured_metric(h2, t2).item(), rel=1e-6)
    h10, t10 = torch.randn(6, 11, 8) * 0.3, torch.randint(0, 10, (6,))
    assert L.lifted_structure(h10, t10).item() > L.structured_metric(h10, t10).item() + 1e-3


def test_structured_hand_value_and_clamp_at_zero():
    # 1-D embeddings, k = 2: a = 0, candidates 1 (positive) and 3 (negative), margin 1
    h = tensor([[[0.0], [1.0], [3.0]]])
    want = math.log(math.exp(1 - 3) + math.exp(1 - 2)) + 1        # d(a,n)=3, d(p,n)=2, d(a,p)=1
    assert L.structured_metric(h, torch.tensor([0]), 1.0).item() == pytest.approx(want / 2, rel=1e-5)
    # negative far away, positive on the anchor: E < 0 is clamped to 0, gradient 0
    far = tensor([[[0.0, 0.0], [0.0, 0.0], [50.0, 0.0]]]).requires_grad_()
    loss = L.structured_metric(far, torch.tensor([0]), 1.2)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.count_nonzero(far.grad) == 0


def test_metric_dispatch_none_and_shape_errors():
    h, t = torch.randn(2, 3, 4), torch.tensor([0, 1])
    assert L.metric_loss(Config(metric_loss="none"), h, t).item() == 0.0
    assert L.metric_loss(Config(margin=0.5), h, t).item() == pytest.approx(
        naive_metric(h.tolist(), t.tolist(), 0.5, "structured"), rel=1e-5)
    with pytest.raises(ValueError, match="k >= 2"):
        L.structured_metric(torch.randn(2, 2, 4), t)
    with pytest.raises(ValueError, match="metric_loss"):
        L.metric_loss(Config(metric_loss="npair"), h, t)


# ----------------------------------------------------------------------------- adversarial (12-13)

def test_discriminator_and_adversarial_known_values():
    z = tensor([[2.0, 0.0], [0.0, 1.0]])
    mod = torch.tensor([0, 1])                                   # face, voice
    want_d = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    want_g = (math.log(1 + math.exp(2)) + math.log(1 + math.exp(1))) / 2   # flipped labels
    assert L.discriminator_loss(z, mod, "sagan").item() == pytest.approx(want_d, rel=1e-6)
    assert L.adversarial_loss(z, mod, "gan").item() == pytest.approx(want_g, rel=1e-6)
    # eq. (12) normalisation: sum over the items of one tuple, / N = 1
    assert L.discriminator_loss(z, mod, norm=1).item() == pytest.approx(2 * want_d, rel=1e-6)
    # (M, 1) logits: sigmoid probability of "voice"
    c = tensor([[2.0], [-1.0]])
    want_1 = (-math.log(1 - sig(2.0)) - math.log(sig(-1.0))) / 2
    assert L.discriminator_loss(c, mod).item() == pytest.approx(want_1, rel=1e-6)
    assert L.adversarial_loss(c, mod).item() == pytest.approx((-math.log(sig(2.0)) - math.log(1 - sig(-1.0))) / 2,
                                                              rel=1e-6)
    assert L.discriminator_loss(z, mod, "none").item() == 0.0


def test_wgan_sign_convention_and_stream_sum():
    critic = tensor([[1.0], [3.0], [2.0]])
    mod = torch.tensor([0, 1, 1])
    assert L.discriminator_loss(critic, mod, "wgan").item() == pytest.approx(1 - 2.5)
    assert L.adversarial_loss(critic, mod, "wgan").item() == pytest.approx(2.5 - 1)
    two_streams = torch.stack([critic, critic * 2])             # (S=2, M, 1): summed over streams
    assert L.discriminator_loss(two_streams, mod, "wgan").item() == pytest.approx(-1.5 - 3.0)
    with pytest.raises(ValueError, match="critic"):
        L.discriminator_loss(tensor([[1.0, 0.0]]), torch.tensor([0]), "wgan")


def test_extreme_logits_give_finite_losses_and_gradients():
    z = tensor([[100.0, -100.0, 100.0], [-100.0, -100.0, 100.0]]).requires_grad_()
    t = torch.tensor([1, 0])
    for fn in [lambda: L.amce_loss(z, t, 0.1), lambda: L.bce_loss(z, t), lambda: L.gbce_loss(z, t, 1),
               lambda: L.focal_loss(z, t, 2.0), lambda: L.focal_loss(z, t, 0.5)]:
        z.grad = None
        loss = fn()
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    assert L.bce_loss(z, t).item() == pytest.approx((100 + 100 + 100 + 100 + 0 + 100) / 2, rel=1e-5)
    d = tensor([[100.0, -100.0], [-100.0, 100.0]]).requires_grad_()
    loss = L.discriminator_loss(d, torch.tensor([1, 1])) + L.adversarial_loss(d, torch.tensor([1, 1]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(d.grad).all()


def test_identical_embeddings_have_finite_gradients():
    h = torch.ones(3, 4, 5, requires_grad=True)
    t = torch.tensor([0, 1, 2])
    for fn in [L.structured_metric, L.lifted_structure, L.triplet]:
        h.grad = None
        loss = fn(h, t, 1.2)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(h.grad).all()
    # all distances ~0: structured E = log(2 e^1.2) + 0
    assert L.structured_metric(h, t, 1.2).item() == pytest.approx((math.log(2) + 1.2) / 2, rel=1e-4)
    x = torch.zeros(2, 3, requires_grad=True)
    loss = L.centre_loss(x, torch.tensor([0, 0]), torch.zeros(1, 3))
    loss.backward()
    assert loss.item() < 1e-5 and torch.isfinite(x.grad).all()


# ----------------------------------------------------------------------------- centres (27)

def test_centre_loss_known_value():
    h = tensor([[3.0, 4.0], [1.0, 1.0]])
    centres = tensor([[1.0, 1.0], [0.0, 0.0]])
    assert L.centre_loss(h, torch.tensor([1, 0]), centres).item() == pytest.approx(2.5, abs=1e-5)
    assert L.centre_loss(h, torch.tensor([0, 1]), centres).item() == pytest.approx(
        (math.sqrt(4 + 9) + math.sqrt(2)) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="centre_loss"):
        L.centre_loss(h, torch.tensor([0, 1]), torch.zeros(3, 5))


# ----------------------------------------------------------------------------- totals (24), (25)

class LinearDisc(torch.nn.Module):
    """A fixed linear discriminator D -> 2 whose logits the tests recompute by hand."""

    def __init__(self, d, c=2):
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.w = torch.nn.Parameter(torch.randn(c, d, generator=g))

    def forward(self, x):
        return x @ self.w.T

    def logits(self, v):
        return [sum(wi * xi for wi, xi in zip(row, v)) for row in self.w.tolist()]


def fake_tuples(s=2, b=3, k=3, d=4, seed=5):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(s, b, k + 1, d, generator=g)
    logits = torch.randn(s, b, k, generator=g) * 2
    modality = torch.ones(b, k + 1, dtype=torch.long)
    modality[:, 0] = 0                                        # face anchors, voice candidates ...
    modality[1:, 0], modality[1:, 1:] = 1, 0                  # ... except rows 1.. are voice anchors
    target = torch.randint(0, k, (b,), generator=g)
    return SimpleNamespace(h=h, logits=logits, modality=modality), target


def naive_adv(out, disc, flip, weights=None, norm=None):
    s, b, items, _ = out.h.shape
    total = 0.0
    for si in range(s):
        for i in range(b):
            for j in range(items):
                y = out.modality[i, j].item()
                y = 1 - y if flip else y
                w = 1.0 if weights is None else weights(j, items)
                total += w * naive_ce(disc.logits(out.h[si, i, j].tolist()), y)
    return total / (b if norm is None else norm)


def test_matching_total_combines_streams_as_eq24():
    out, target = fake_tuples()
    disc = LinearDisc(4)
    cfg = Config(lam=2.0, mu=3.0, eta=0.1, margin=1.2, adv_target="flip")   # the naive reference flips
    res = L.matching_total(cfg, out, target, disc)
    tl = target.tolist()
    adv = naive_adv(out, disc, flip=True)                     # eq. (12): sum over k+1 items, / N
    metric = sum(naive_metric(out.h[si].tolist(), tl, 1.2, "structured") for si in range(2))
    cls = sum(naive_amce(out.logits[si].tolist(), tl, 0.1) for si in range(2))
    assert set(res) == {"total", "adversarial", "metric", "cls"}
    assert res["adversarial"].item() == pytest.approx(adv, rel=1e-5)
    assert res["metric"].item() == pytest.approx(metric, rel=1e-5)
    assert res["cls"].item() == pytest.approx(cls, rel=1e-5)
    assert res["total"].item() == pytest.approx(adv + 2.0 * metric + 3.0 * cls, rel=1e-5)
    # precomputed logits give the same value; so does the discriminator step with unflipped labels
    pre = disc(out.h.reshape(-1, 4))
    assert L.matching_total(cfg, out, target, pre)["adversarial"].item() == pytest.approx(adv, rel=1e-5)
    assert L.discriminator_total(cfg, out, disc).item() == pytest.approx(naive_adv(out, disc, flip=False), rel=1e-5)


def test_matching_total_reductions_and_switches():
    out, target = fake_tuples(k=2)
    disc = LinearDisc(4)
    cfg = Config(lam=0.5, mu=0.25, adv_target="flip")
    pub = L.matching_total(cfg.replace(adv_reduction="published"), out, target, disc)["adversarial"]
    want = naive_adv(out, disc, True, weights=lambda j, items: items - 1.0 if j == 0 else 1.0)
    assert pub.item() == pytest.approx(want, rel=1e-5)        # k = 2: the anchor (face in F-V) x2
    mean = L.matching_total(cfg.replace(adv_reduction="mean"), out, target, disc)["adversarial"]
    assert mean.item() == pytest.approx(naive_adv(out, disc, True, norm=3 * 3), rel=1e-5)
    off = L.matching_total(cfg.replace(adversarial="none", metric_loss="none"), out, target, None)
    assert off["adversarial"].item() == 0.0 and off["metric"].item() == 0.0
    assert off["total"].item() == pytest.approx(0.25 * off["cls"].item(), rel=1e-6)
    with pytest.raises(ValueError, match="discriminator"):
        L.matching_total(cfg, out, target, None)
    with pytest.raises(ValueError, match="adv_reduction"):
        L.matching_total(cfg.replace(adv_reduction="sum"), out, target, disc)


class DiffHead(torch.nn.Module):
    """A fixed linear C_R: (..., D) -> (...)."""

    def __init__(self, d):
        super().__init__()
        self.w = torch.nn.Parameter(torch.linspace(-1, 1, d))

    def forward(self, diff):
        return diff @ self.w


def test_retrieval_total_matches_naive_eqs25_27():
    s, b, d, n = 2, 4, 3, 5
    g = torch.Generator().manual_seed(9)
    hv, hf = torch.randn(s, b, d, generator=g), torch.randn(s, b, d, generator=g)
    labels = torch.tensor([0, 3, 0, 2])                       # voices 0 and 2 share an identity
    centres = torch.randn(s, n, d, generator=g)
    out = SimpleNamespace(h_voice=hv, h_face=hf)
    head, disc = DiffHead(d), LinearDisc(d)
    cfg = Config(lam1=0.1, mu1=0.2, margin=1.2, adv_target="flip", retrieval_feature="difference")
    res = L.retrieval_total(cfg, out, labels, head, centres, disc)

    w, lab = head.w.tolist(), labels.tolist()
    cls = metric = adv = 0.0
    for si in range(s):
        V, Fc, C = hv[si].tolist(), hf[si].tolist(), centres[si].tolist()
        for i in range(b):
            for j in range(b):
                score = sum(wk * (V[i][k] - Fc[j][k]) for k, wk in enumerate(w))
                cls += naive_bce(score, 1.0 if lab[i] == lab[j] else 0.0) / b
            negs = [Fc[j] for j in range(b) if lab[j] != lab[i]]
            e = math.log(max(math.exp(1.2 - dist(V[i], f)) for f in negs)
                         + max(math.exp(1.2 - dist(Fc[i], f)) for f in negs)) + dist(V[i], Fc[i])
            metric += max(0.0, e) / (2 * b)
            metric += (dist(V[i], C[lab[i]]) + dist(Fc[i], C[lab[i]])) / b
            adv += (naive_ce(disc.logits(V[i]), 0) + naive_ce(disc.logits(Fc[i]), 1)) / b  # flipped
    assert res["cls"].item() == pytest.approx(cls, rel=1e-5)
    assert res["metric"].item() == pytest.approx(metric, rel=1e-5)
    assert res["adversarial"].item() == pytest.approx(adv, rel=1e-5)
    assert res["total"].item() == pytest.approx(adv + 0.1 * metric + 0.2 * cls, rel=1e-5)
    # one centre table shared by the streams equals an (S, n, D) stack of copies
    shared = L.retrieval_total(cfg, out, labels, head, centres[0], disc)["metric"]
    stacked = L.retrieval_total(cfg, out, labels, head, centres[0].expand(s, n, d), disc)["metric"]
    assert shared.item() == pytest.approx(stacked.item(), rel=1e-6)
    with pytest.raises(ValueError, match="centres"):
        L.retrieval_total(cfg, out, labels, head, torch.zeros(3, n, d), disc)


def test_retrieval_rows_without_negatives_are_zero_and_finite():
    hv = torch.randn(1, 2, 3, requires_grad=True)
    hf = torch.randn(1, 2, 3, requires_grad=True)
    labels = torch.tensor([4, 4])                             # one identity: no negatives at all
    m = L.retrieval_metric(Config(), hv, hf, labels)
    (m + L.retrieval_metric(Config(metric_loss="lifted"), hv, hf, labels)).backward()
    assert m.item() == 0.0 and torch.isfinite(hv.grad).all() and torch.isfinite(hf.grad).all()


def test_retrieval_centres_by_stream_kind():
    s, b, d, n = 4, 3, 2, 3
    g = torch.Generator().manual_seed(11)
    out = SimpleNamespace(h_voice=torch.randn(s, b, d, generator=g), h_face=torch.randn(s, b, d, generator=g))
    labels = torch.tensor([0, 1, 2])
    kinds = torch.randn(2, n, d, generator=g).requires_grad_()      # salient / subtle tables
    cfg = Config(adversarial="none", metric_loss="none")
    got = L.retrieval_total(cfg, out, labels, DiffHead(d), kinds, stream_kinds=[0, 1, 0, 1])["metric"]
    C = kinds.tolist()
    want = sum(dist(out.h_voice[si, i].tolist(), C[si % 2][i]) + dist(out.h_face[si, i].tolist(), C[si % 2][i])
               for si in range(s) for i in range(b)) / b
    assert got.item() == pytest.approx(want, rel=1e-5)
    got.backward()
    assert torch.isfinite(kinds.grad).all() and torch.count_nonzero(kinds.grad) > 0
    with pytest.raises(ValueError, match="stream_kinds"):
        L.retrieval_total(cfg, out, labels, DiffHead(d), kinds, stream_kinds=[0, 1])
