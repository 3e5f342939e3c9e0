"""Unimodal identity pretraining of the backbones (``cfg.backbone_init = "identity"``)."""
from __future__ import annotations

import pytest
import torch

from dsanet.config import Config, published, quick
from dsanet.data.cache import build_cache
from dsanet.data.layout import load_index
from dsanet.engine import pretrain
from dsanet.engine.build import build_model
from dsanet.engine.matching import InBatchMatchingTask
from dsanet.models.backbones import build_backbone


@pytest.fixture
def train_set(tiny_tree, smoke_cfg):
    return build_cache(load_index(tiny_tree.root), smoke_cfg, "train")


def _cfg(smoke_cfg, tiny_tree, **kw):
    return smoke_cfg.replace(data_root=str(tiny_tree.root), backbone_init="identity", batch_size=2,
                             **kw)


def test_defaults_and_validation():
    assert Config().backbone_init == "scratch"           # the paper profile: its own (ImageNet) weights
    assert quick().backbone_init == "identity"           # chosen on validation (docs/fidelity.md)
    assert published(quick()).backbone_init == "scratch"  # the published script trains from scratch
    with pytest.raises(ValueError, match="backbone_init"):
        Config(backbone_init="imagenet")
    with pytest.raises(ValueError, match="pretrain_steps"):
        Config(pretrain_steps=0)


def test_one_pretraining_step_is_one_adam_step_at_the_start_rate(smoke_cfg, tiny_tree, train_set):
    """Adam's first update is lr * g / (|g| + eps): every weight with a gradient moves by ~LR.

    The cosine schedule is at its start (factor 1) for the first step, so a one-step pretraining
    moves each parameter of the seed-0 backbones by LR (2e-3) where its gradient is not tiny.
    """
    cfg = _cfg(smoke_cfg, tiny_tree, pretrain_steps=1)
    state = pretrain.train_backbones(cfg, train_set, torch.device("cpu"))
    torch.manual_seed(pretrain.PRETRAIN_SEED)
    fresh = {m: build_backbone(cfg, m) for m in ("face", "voice")}   # the same draws, same order
    for m, net in fresh.items():
        for name, p in net.named_parameters():
            delta = (state[m][name] - p.detach()).abs()
            assert float(delta.max()) <= pretrain.LR * (1 + 1e-5), (m, name)   # never more than LR
            if p.dim() > 1:   # conv / linear weights (a bias before batch norm has ~no gradient)
                assert float(delta.max()) == pytest.approx(pretrain.LR, rel=1e-3), (m, name)
                assert float((delta > 0.9 * pretrain.LR).float().mean()) > 0.5, (m, name)


def test_pretraining_is_deterministic_and_leaves_the_run_rng_alone(smoke_cfg, tiny_tree, train_set):
    cfg = _cfg(smoke_cfg, tiny_tree, pretrain_steps=2)
    torch.manual_seed(7)
    a = pretrain.train_backbones(cfg, train_set, torch.device("cpu"))
    after = torch.rand(3)
    torch.manual_seed(7)
    want = torch.rand(3)
    assert torch.equal(after, want)                      # the global stream is where it was
    b = pretrain.train_backbones(cfg, train_set, torch.device("cpu"))
    for m in a:
        assert all(torch.equal(a[m][k], b[m][k]) for k in a[m])


def test_key_follows_the_inputs_and_steps_not_the_seed(smoke_cfg, tiny_tree, train_set):
    cfg = _cfg(smoke_cfg, tiny_tree)
    key = pretrain.pretrain_key(cfg, train_set)
    assert pretrain.pretrain_key(cfg.replace(seed=5, lr_backbone=1.0), train_set) == key
    assert pretrain.pretrain_key(cfg.replace(pretrain_steps=7), train_set) != key
    assert pretrain.pretrain_key(cfg.replace(face_size=20), train_set) != key
    assert pretrain.pretrained_path(cfg, train_set).parent == train_set.path.parent / "pretrained"


def test_build_model_starts_from_the_cached_backbones(smoke_cfg, tiny_tree, train_set, tmp_path):
    cfg = _cfg(smoke_cfg, tiny_tree, pretrain_steps=2)
    task = InBatchMatchingTask(cfg, train_set, torch.device("cpu"))
    path = pretrain.pretrained_path(cfg, train_set)
    assert not path.exists()
    model = build_model(cfg, task, torch.device("cpu"))
    assert path.is_file()
    stamp = path.stat().st_mtime_ns
    want = pretrain.train_backbones(cfg, train_set, torch.device("cpu"))
    for m, net in (("face", model.face_backbone), ("voice", model.voice_backbone)):
        assert all(torch.equal(v, want[m][k]) for k, v in net.state_dict().items()), m
    again = build_model(cfg.replace(seed=3), task, torch.device("cpu"))   # another seed: same file
    assert path.stat().st_mtime_ns == stamp
    same = again.face_backbone.state_dict()
    assert all(torch.equal(v, same[k]) for k, v in model.face_backbone.state_dict().items())
    gen_a, gen_b = again.generator.state_dict(), model.generator.state_dict()
    assert any(not torch.equal(v, gen_b[k]) for k, v in gen_a.items() if v.is_floating_point())
    scratch = build_model(cfg.replace(backbone_init="scratch"), task, torch.device("cpu"))
    assert any(not torch.equal(v, want["face"][k]) for k, v in scratch.face_backbone.state_dict().items()
               if v.is_floating_point())


def test_sweep_prepares_once_and_skips_what_needs_none(smoke_cfg, tiny_tree, train_set):
    from dsanet.experiments.sweep import prepare_pretrained

    cfg = _cfg(smoke_cfg, tiny_tree, pretrain_steps=2)
    path = pretrain.pretrained_path(cfg, train_set)
    prepare_pretrained(cfg.replace(backbone_init="scratch"))
    prepare_pretrained(cfg.replace(init_from="elsewhere.pt"))
    assert not path.exists()                              # neither uses the pretrained backbones
    prepare_pretrained(cfg)
    stamp = path.stat().st_mtime_ns
    prepare_pretrained(cfg)
    assert path.stat().st_mtime_ns == stamp               # read, not trained again
