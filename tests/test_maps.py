"""The sweep protocol (``backbone_train="frozen"``): cached maps equal the backbones' output on the
same inputs, the cache follows the backbones / data / front-end, and a frozen run trains on them."""
from __future__ import annotations

import pytest
import torch

from dsanet.config import Config
from dsanet.data.batches import face_batch
from dsanet.data.cache import build_cache
from dsanet.data.frontends import crop_frames
from dsanet.data.layout import load_index
from dsanet.engine import maps as M
from dsanet.engine.build import build_model
from dsanet.engine.matching import InBatchMatchingTask

CPU = torch.device("cpu")


@pytest.fixture
def train_set(tiny_tree, smoke_cfg):
    return build_cache(load_index(tiny_tree.root), smoke_cfg, "train")


def _cfg(smoke_cfg, tiny_tree, **kw):
    return smoke_cfg.replace(data_root=str(tiny_tree.root), backbone_init="identity",
                             pretrain_steps=2, batch_size=2, backbone_train="frozen",
                             map_views=3, **kw)


def _model(cfg, cached):
    return build_model(cfg, InBatchMatchingTask(cfg, cached, CPU), CPU)


def test_config_rules():
    assert Config().backbone_train == "finetune"
    with pytest.raises(ValueError, match="backbone_train"):
        Config(backbone_train="partly")
    with pytest.raises(ValueError, match="frozen backbones need learned ones"):
        Config(backbone_train="frozen")            # random backbones would be a meaningless freeze


def test_view_offsets_span_the_valid_crops():
    off = M.voice_view_offsets(torch.tensor([10, 20, 4]), frames=6, views=3)
    # slack 4, 14, 0 (a clip shorter than the crop is wrapped from 0, as crop_frames does)
    assert off.tolist() == [[0, 2, 4], [0, 7, 14], [0, 0, 0]]


def test_maps_equal_the_backbones_output_on_the_same_inputs(smoke_cfg, tiny_tree, train_set):
    cfg = _cfg(smoke_cfg, tiny_tree)
    model = _model(cfg, train_set).eval()
    m = M.compute_maps(model, train_set, cfg, CPU)
    nv, nf = train_set.n_voices, train_set.n_faces
    assert m.voice.shape == (nv, 3, cfg.channels, cfg.map_size, cfg.map_size)
    assert m.face.shape == (nf, 2, cfg.channels, cfg.map_size, cfg.map_size)
    # voices: each view is the crop at its offset, computed here with crop_frames' own indexing
    items = torch.arange(nv)
    lengths = train_set.voice_frames
    off = M.voice_view_offsets(lengths, cfg.spec_frames, 3)
    with torch.no_grad():
        for v in range(3):
            spec = train_set.voices.index_select(0, items)
            t = torch.arange(cfg.spec_frames)
            idx = (off[:, v, None] + t[None, :]) % lengths.clamp_min(1)[:, None]
            x = spec.gather(-1, idx[:, None, None, :].expand(nv, 1, spec.shape[2], cfg.spec_frames))
            assert torch.allclose(m.voice[:, v], model.voice_backbone(x.float()), atol=1e-5)
        # the middle view of an evaluation crop: centre offset equals crop_frames' (slack // 2) when even
        centre = crop_frames(train_set.voices, lengths, cfg.spec_frames, train=False)
        even = ((lengths - cfg.spec_frames).clamp_min(0) % 2 == 0)
        assert torch.allclose(m.voice[even, 1], model.voice_backbone(centre[even].float()), atol=1e-5)
        faces = face_batch(train_set, torch.arange(nf), cfg, train=False)
        assert torch.allclose(m.face[:, 0], model.face_backbone(faces), atol=1e-5)
        assert torch.allclose(m.face[:, 1], model.face_backbone(faces.flip(-1)), atol=1e-5)


def test_cache_key_follows_backbones_data_and_frontend(smoke_cfg, tiny_tree, train_set, make_tree):
    cfg = _cfg(smoke_cfg, tiny_tree)
    model = _model(cfg, train_set)
    key = M.maps_key(model, train_set, cfg)
    assert M.maps_key(model, train_set, cfg.replace(seed=3, lam=1.0)) == key   # not the run's settings
    assert M.maps_key(model, train_set, cfg.replace(map_views=2)) != key        # the views
    with torch.no_grad():
        model.face_backbone.features[0][0].weight.add_(1e-3)                    # the backbones
    assert M.maps_key(model, train_set, cfg) != key
    other = cfg.replace(n_fft=64)                                               # the front-end
    other_set = build_cache(load_index(tiny_tree.root), other, "train")
    assert M.maps_key(model, other_set, other) != M.maps_key(model, train_set, cfg)
    from conftest import TINY_IDENTITIES
    tree = make_tree(TINY_IDENTITIES[:-1])                                      # the data
    fewer = build_cache(load_index(tree.root), cfg.replace(data_root=str(tree.root)), "train")
    assert M.maps_key(model, fewer, cfg) != key


def test_training_maps_are_computed_once_and_read_back(smoke_cfg, tiny_tree, train_set, monkeypatch):
    cfg = _cfg(smoke_cfg, tiny_tree)
    model = _model(cfg, train_set)
    first = M.training_maps(model, train_set, cfg, CPU)
    assert M.maps_path(model, train_set, cfg).is_file()
    monkeypatch.setattr(M, "compute_maps", lambda *a, **k: pytest.fail("recomputed"))
    again = M.training_maps(model, train_set, cfg, CPU)
    assert torch.equal(first.voice, again.voice) and torch.equal(first.face, again.face)


def test_a_frozen_run_trains_on_maps_and_leaves_the_backbones(smoke_cfg, tiny_tree, tmp_path):
    from dsanet.engine.train import Trainer

    cfg = _cfg(smoke_cfg, tiny_tree, steps=3, eval_every=3)
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    assert tr.task.method == "forward_batch_maps"
    before = {k: v.clone() for k, v in tr.model.voice_backbone.state_dict().items()}
    gen = {k: v.clone() for k, v in tr.model.generator.state_dict().items()}
    assert tr.run()
    after = tr.model.voice_backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)            # weights and BN stats
    assert any(not torch.equal(gen[k], v) for k, v in tr.model.generator.state_dict().items())
    groups = {g["name"] for g in tr.stepper.opt_gen.param_groups}
    assert "backbone" not in groups


def test_frozen_evaluation_reads_the_maps_and_equals_the_backbone_path(smoke_cfg, tiny_tree):
    from dsanet.engine.embeddings import embed_split

    cfg = _cfg(smoke_cfg, tiny_tree)
    val = build_cache(load_index(tiny_tree.root), cfg, "val")
    model = _model(cfg, val)
    fast = embed_split(model, val, cfg)                                        # generator on maps
    slow = embed_split(model, val, cfg.replace(backbone_train="finetune"))     # through backbones
    assert torch.allclose(fast.voice, slow.voice, atol=1e-5)
    assert torch.allclose(fast.face, slow.face, atol=1e-5)
