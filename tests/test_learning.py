"""The options that make DSANet learn on the benchmark (issue 13): adversarial targets, heads,
the linear projection, InfoNCE, in-batch training. Values worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dsanet import losses
from dsanet.config import smoke, two_tower


def _logits(p_voice):
    """2-way logits (M, 2) whose softmax gives P(voice) = p_voice per item."""
    p = torch.tensor(p_voice, dtype=torch.float64)
    return torch.stack([torch.log(1 - p), torch.log(p)], dim=-1).float()


def test_confusion_target_is_half_log_of_each_modality():
    z = _logits([0.9, 0.2])                       # item 0 a voice, item 1 a face
    mod = torch.tensor([1, 0])
    got = losses.adversarial_loss(z, mod, "gan", target="confusion")
    want = (-(0.5 * math.log(0.9) + 0.5 * math.log(0.1)) - (0.5 * math.log(0.2) + 0.5 * math.log(0.8))) / 2
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_confusion_is_smallest_where_the_discriminator_is_at_one_half():
    mod = torch.tensor([1, 0])
    at_half = losses.adversarial_loss(_logits([0.5, 0.5]), mod, "gan", target="confusion")
    swapped = losses.adversarial_loss(_logits([0.1, 0.9]), mod, "gan", target="confusion")
    flip_swapped = losses.adversarial_loss(_logits([0.1, 0.9]), mod, "gan", target="flip")
    assert at_half.item() == pytest.approx(math.log(2), rel=1e-5)
    assert swapped > at_half                       # swapping the modalities is penalised...
    assert flip_swapped.item() == pytest.approx(-math.log(0.9), rel=1e-5)   # ...and rewarded by flip


def test_minimax_is_the_negated_discriminator_loss():
    z, mod = _logits([0.7, 0.4]), torch.tensor([1, 0])
    d = losses.discriminator_loss(z, mod, "gan")
    assert d.item() == pytest.approx(-(math.log(0.7) + math.log(0.6)) / 2, rel=1e-5)
    assert losses.adversarial_loss(z, mod, "gan", target="minimax").item() == pytest.approx(-d.item())


def test_flip_target_unchanged_from_cross_entropy_on_flipped_labels():
    z, mod = torch.randn(7, 2), torch.tensor([0, 1, 1, 0, 1, 0, 0])
    want = torch.nn.functional.cross_entropy(z, 1 - mod)
    assert torch.allclose(losses.adversarial_loss(z, mod, "sagan"), want, atol=1e-6)


def test_infonce_by_hand():
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    f = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    s = np.array([[1.0, 1 / math.sqrt(2)], [0.0, 1 / math.sqrt(2)]]) / 0.5   # cos / tau
    row = -np.mean([s[i, i] - np.log(np.exp(s[i]).sum()) for i in range(2)])
    col = -np.mean([s[i, i] - np.log(np.exp(s[:, i]).sum()) for i in range(2)])
    assert losses.infonce(v, f, 0.5).item() == pytest.approx((row + col) / 2, rel=1e-5)


@pytest.mark.parametrize("head", ["concat", "pairwise", "mlp"])
def test_heads_give_k_logits(head):
    from dsanet.models.heads import MatchingClassifier

    clf = MatchingClassifier(3, 8, head=head).eval()
    assert clf(torch.randn(5, 8), torch.randn(5, 3, 8)).shape == (5, 3)


def test_mlp_head_can_express_an_anchor_candidate_product():
    """A linear head's logit difference is a sum of separate anchor and candidate terms; the MLP
    head fits a target that needs their interaction (sign of a*c per candidate)."""
    from dsanet.models.heads import MatchingClassifier

    torch.manual_seed(0)
    a = torch.randn(512, 1)
    c = torch.randn(512, 2, 1)
    y = ((a[:, None] * c)[..., 0]).argmax(1)                  # the candidate with the larger a*c
    accs = {}
    for head in ("concat", "mlp"):
        clf = MatchingClassifier(2, 1, dropout=0.0, spectral=False, head=head)
        opt = torch.optim.Adam(clf.parameters(), lr=1e-2)
        for _ in range(400):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(clf(a, c), y).backward()
            opt.step()
        clf.eval()
        accs[head] = (clf(a, c).argmax(1) == y).float().mean().item()
    assert accs["mlp"] > 0.9 and accs["concat"] < 0.75


def test_linear_projection_is_one_linear_map():
    from dsanet.models.sas import Generator

    cfg = smoke(projection="linear", adversarial="none", dropout=0.0)
    g = Generator(cfg).eval()
    linears = [m for m in g.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 1 and linears[0].out_features == cfg.embed_dim
    x = torch.randn(3, cfg.channels, cfg.map_size, cfg.map_size)
    assert torch.allclose(g(x), linears[0](x.flatten(1)), atol=1e-6)


def test_two_tower_preset_has_none_of_the_papers_machinery():
    cfg = two_tower(smoke())
    assert (cfg.enhancement, cfg.adversarial, cfg.cls_loss, cfg.metric_loss, cfg.projection,
            cfg.sampling) == ("none", "none", "none", "infonce", "linear", "batch")
    assert cfg.n_streams == 1 and cfg.backbone == smoke().backbone and cfg.steps == smoke().steps


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    from test_train import smoke_root

    return str(smoke_root(tmp_path_factory))


@pytest.mark.parametrize("preset", ["dsanet", "two_tower"])
def test_in_batch_training_runs_and_is_seeded(preset, smoke_data, tmp_path):
    from dsanet.engine.train import train

    torch.set_num_threads(1)
    cfg = smoke(data_root=smoke_data, sampling="batch", batch_size=8, steps=4, eval_every=2,
                eval_ks=(2,), bootstrap=20, head="pairwise", adv_target="confusion",
                tuples_per_anchor=2, cache_dir=str(tmp_path / "cache"))
    if preset == "two_tower":
        cfg = two_tower(cfg)
    a = train(cfg, tmp_path / "a", progress=False)
    b = train(cfg, tmp_path / "b", progress=False)
    assert a.finished and np.isfinite(a.history["total"]).all()
    assert a.history["total"].tolist() == b.history["total"].tolist()
    if preset == "dsanet":
        assert a.history["disc_acc"].between(0, 1).all()
