"""The variant registry (dsanet.variants): every registered name works where it is consumed, and
LSGAN, the variant added as one entry, by known answers (values worked out by hand below)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import tensor
from torch.nn.utils import parametrize

from dsanet import losses as L
from dsanet import variants
from dsanet.config import Config, paper, smoke
from dsanet.engine import train as tr
from dsanet.models.heads import MatchingClassifier
from dsanet.models.sas import Discriminator, Generator

# three items: a voice scored 0.8, a face scored 0.3, a voice scored -0.5 (modality face 0, voice 1)
Z = tensor([[0.8], [0.3], [-0.5]])
MOD = torch.tensor([1, 0, 1])


# ----------------------------------------------------------------------------- LSGAN known answers

def test_lsgan_discriminator_loss_by_hand():
    # (D(voice) - 1)^2 + D(face)^2 per item: 0.04, 0.09, 2.25; mean over the 3 items
    assert L.discriminator_loss(Z, MOD, "lsgan").item() == pytest.approx(2.38 / 3, rel=1e-6)
    # eq. (12)'s reduction: summed over the items of the tuple, / N = 1; item weights multiply
    assert L.discriminator_loss(Z, MOD, "lsgan", norm=1).item() == pytest.approx(2.38, rel=1e-6)
    w = tensor([2.0, 1.0, 1.0])
    assert L.discriminator_loss(Z, MOD, "lsgan", weight=w, norm=1).item() == pytest.approx(2.42, rel=1e-6)
    # streams are summed: the second stream scores 1.6, 0.6, -1.0 -> 0.36 + 0.36 + 4.0
    two = torch.stack([Z, 2 * Z])                                         # (S=2, M=3, 1)
    assert L.discriminator_loss(two, MOD, "lsgan").item() == pytest.approx((2.38 + 4.72) / 3, rel=1e-6)


def test_lsgan_generator_side_per_adv_target():
    # flip: targets swapped (voice -> 0, face -> 1): 0.64, 0.49, 0.25
    assert L.adversarial_loss(Z, MOD, "lsgan", target="flip").item() == pytest.approx(1.38 / 3, rel=1e-6)
    # confusion: target 1/2 for both: 0.09, 0.04, 1.0
    assert L.adversarial_loss(Z, MOD, "lsgan", target="confusion").item() == pytest.approx(1.13 / 3, rel=1e-6)
    # minimax: the negated discriminator loss
    assert L.adversarial_loss(Z, MOD, "lsgan", target="minimax").item() == pytest.approx(-2.38 / 3, rel=1e-6)


def test_lsgan_gradient_by_hand():
    z = Z.clone().requires_grad_()
    L.discriminator_loss(z, MOD, "lsgan").backward()
    # d/dD (D - y)^2 / 3 = 2 (D - y) / 3
    want = [2 * (0.8 - 1) / 3, 2 * 0.3 / 3, 2 * (-0.5 - 1) / 3]
    assert z.grad[:, 0].tolist() == pytest.approx(want, rel=1e-6)


def test_lsgan_refuses_two_logits():
    with pytest.raises(ValueError, match="1-output"):
        L.discriminator_loss(tensor([[1.0, 0.0]]), torch.tensor([0]), "lsgan")


def test_lsgan_modality_read_out():
    z = Z[None]                                                           # (S=1, M=3, 1)
    # > 1/2 is a voice: voice (right), face (right), face (wrong: a voice)
    assert tr.modality_accuracy(z, MOD, "lsgan").item() == pytest.approx(2 / 3)
    # the critic's read-out (> 0) differs: voice (right), voice (wrong), face (wrong)
    assert tr.modality_accuracy(z, MOD, "wgan").item() == pytest.approx(1 / 3)
    # exactly 1/2 is not above it: a face
    assert tr.modality_accuracy(tensor([[[0.5]]]), torch.tensor([0]), "lsgan").item() == 1.0


def test_lsgan_networks():
    d = Discriminator(paper(adversarial="lsgan")).train()
    assert d(torch.randn(5, 128)).shape == (5, 1)
    assert isinstance(d.net, torch.nn.Linear)                             # no batch norm, no SN
    g = Generator(paper(adversarial="lsgan"))
    assert isinstance(g.attention, torch.nn.Identity)
    assert not any(parametrize.is_parametrized(m) for m in list(g.modules()) + list(d.modules()))


def _smoke_root(tmp_path_factory):
    from dsanet.data.synthetic import SMOKE, generate

    root = tmp_path_factory.getbasetemp() / "dsanet-smoke-benchmark"   # shared with test_train
    if not (root / "calibration.json").exists():
        generate(root, **SMOKE)
    return root


def test_lsgan_smoke_training_step(tmp_path_factory, tmp_path):
    torch.set_num_threads(1)
    cfg = smoke(data_root=str(_smoke_root(tmp_path_factory)), adversarial="lsgan", eval_ks=(2,),
                bootstrap=20, steps=2, eval_every=2, log_every=1)
    t = tr.Trainer(cfg, tmp_path, progress=False)
    tr.set_train_mode(t.model, False)
    before = [p.detach().clone() for p in t.stepper.disc_params]
    row = t.train_step()
    assert torch.isfinite(row[[tr.TERMS.index(k) for k in ("total", "adversarial", "disc")]]).all()
    assert row[tr.TERMS.index("disc")].item() >= 0.0                     # a sum of squares
    assert 0.0 <= row[tr.TERMS.index("disc_acc")].item() <= 1.0
    assert all(not torch.equal(a, p) for a, p in zip(before, t.stepper.disc_params))
    assert t.model.discriminator(torch.randn(4, cfg.embed_dim)).shape == (4, 1)


# ----------------------------------------------------------------------------- the registry

def test_post_step_hook_clips_weights():
    spec = variants.get("adversarial", "wgan")
    p = tensor([0.5, -0.2, 0.001])
    spec.post_step([p], Config(wgan_clip=0.01))
    assert p.tolist() == pytest.approx([0.01, -0.01, 0.001])
    assert all(variants.ADVERSARIAL[k].post_step is None for k in ("sagan", "gan", "lsgan", "none"))


def test_specs_are_consistent():
    for name, spec in variants.ADVERSARIAL.items():
        assert spec.name == name and spec.objective in variants.OBJECTIVES and spec.outputs in (1, 2)
    assert [n for n, h in variants.HEADS.items() if h.k_agnostic] == ["pairwise"]
    assert [n for n, m in variants.METRIC_LOSSES.items() if m.batch_only] == ["infonce"]
    with pytest.raises(ValueError, match="unknown adversarial 'began'; registered: sagan, gan"):
        variants.get("adversarial", "began")


@pytest.mark.parametrize("family", sorted(variants.FAMILIES))
def test_config_accepts_exactly_the_registered_names(family):
    for name in variants.names(family):
        assert getattr(Config(**{family: name}), family) == name
    with pytest.raises(ValueError, match=rf"{family}='nope'.*{variants.names(family)[-1]!r}"):
        Config(**{family: "nope"})


@pytest.mark.parametrize("kind", variants.names("adversarial"))
def test_every_adversarial_kind_builds_and_gives_losses(kind):
    spec = variants.ADVERSARIAL[kind]
    cfg = smoke(adversarial=kind)
    g, d = Generator(cfg).eval(), Discriminator(cfg).eval()
    h = g(torch.randn(4, cfg.channels, cfg.map_size, cfg.map_size))           # (4, D)
    z = d(h)[None]                                                            # (S=1, 4, outputs)
    assert z.shape == (1, 4, spec.outputs)
    mod = torch.tensor([0, 1, 0, 1])
    for target in variants.names("adv_target"):
        assert torch.isfinite(L.adversarial_loss(z, mod, kind, target=target))
    loss = L.discriminator_loss(z, mod, kind)
    assert torch.isfinite(loss) and (loss.item() == 0.0) == (spec.objective == "none")
    assert 0.0 <= tr.modality_accuracy(z, mod, kind).item() <= 1.0


@pytest.mark.parametrize("head", variants.names("head"))
def test_every_head_scores_tuples(head):
    m = MatchingClassifier(3, 8, head=head).eval()
    assert m(torch.randn(2, 8), torch.randn(2, 3, 8)).shape == (2, 3)


@pytest.mark.parametrize("name", variants.names("cls_loss"))
def test_every_classification_loss_is_computed(name):
    z, t = tensor([[2.0, -1.0], [0.0, 1.0]]), torch.tensor([0, 1])
    loss = L.classification_loss(Config(cls_loss=name), z, t)
    assert torch.isfinite(loss) and (loss.item() == 0.0) == (name == "none")


@pytest.mark.parametrize("name", variants.names("metric_loss"))
def test_every_metric_loss_is_computed_or_asks_for_batches(name):
    h, t = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1])
    if variants.METRIC_LOSSES[name].batch_only:
        with pytest.raises(ValueError, match="sampling='batch'"):
            L.metric_loss(Config(metric_loss=name), h, t)
        assert math.isfinite(L.infonce(h[:, 0], h[:, 1]).item())
        return
    loss = L.metric_loss(Config(metric_loss=name, margin=5.0), h, t)   # margin 5: every hinge active
    assert torch.isfinite(loss) and (loss.item() > 0.0) == (name != "none")
