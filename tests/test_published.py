"""Known-answer tests of the options that make ``config.published()`` the authors' script (issue 10).

Every expected value is worked out by hand from the published behaviour as described in the
fidelity notes (group-normalised metric, face term weighted k, no weight decay, the 22,050 Hz
front-end, the generator in train mode at test time, per-input calls, the published CNN, the
empty DEM blocks), never by running the code under test a second way.
"""
from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch

from dsanet import losses as L
from dsanet.config import Config, published, quick, smoke
from dsanet.models import dem as D

# ----------------------------------------------------------------------------- 1. metric norm


def _tuple(anchor, pos, neg, target):
    """One k = 2 tuple (3, 2): anchor, then the candidates with the positive at ``target``."""
    cands = [pos, neg] if target == 0 else [neg, pos]
    return [anchor] + cands


def _hinge(d_ap, d_an, d_pn, theta=1.2):
    """Eq. (22) for one negative, written out by hand."""
    return max(0.0, math.log(math.exp(theta - d_an) + math.exp(theta - d_pn)) + d_ap)


# group 0 (target 0): a = (0, 0), p = (3, 0), n = (0, 4): d_ap 3, d_an 4, d_pn 5
E0 = _hinge(3.0, 4.0, 5.0)
# group 1 (target 1): a = (0, 0), p = (1, 0), n = (0, 1): d_ap 1, d_an 1, d_pn sqrt(2)
E1 = _hinge(1.0, 1.0, math.sqrt(2.0))


def _uneven(n0=10, n1=40):
    rows = ([_tuple((0, 0), (3, 0), (0, 4), 0)] * n0 + [_tuple((0, 0), (1, 0), (0, 1), 1)] * n1)
    h = torch.tensor(rows, dtype=torch.float32)                   # (n0 + n1, 3, 2)
    target = torch.tensor([0] * n0 + [1] * n1)
    return h, target


def test_metric_published_norm_at_an_uneven_split():
    assert E0 == pytest.approx(0.2 + math.log(1 + math.exp(-1)))  # the hand value, 0.5133
    h, target = _uneven(10, 40)
    tuple_norm = L.structured_metric(h, target, 1.2)
    pub = L.structured_metric(h, target, 1.2, norm="published")
    assert tuple_norm.item() == pytest.approx((10 * E0 + 40 * E1) / (2 * 50), rel=1e-5)
    assert pub.item() == pytest.approx(10 * E0 / (2 * 10) + 40 * E1 / (2 * 40), rel=1e-5)
    assert pub.item() / tuple_norm.item() == pytest.approx(50 * (E0 + E1) / (10 * E0 + 40 * E1), rel=1e-5)
    # at an even split every group holds half the rows: exactly 2 x eq. (21)
    h, target = _uneven(25, 25)
    ratio = L.structured_metric(h, target, 1.2, "published") / L.structured_metric(h, target, 1.2)
    assert ratio.item() == pytest.approx(2.0, rel=1e-6)


def test_metric_published_norm_empty_group_is_finite_and_used_by_cfg():
    h, target = _uneven(0, 8)                                     # the published code: 0 / 0 = NaN
    pub = L.structured_metric(h, target, 1.2, norm="published")
    assert torch.isfinite(pub) and pub.item() == pytest.approx(E1 / 2, rel=1e-5)
    h, target = _uneven(10, 40)
    cfg = Config(metric_norm="published")
    assert L.metric_loss(cfg, h, target).item() == pytest.approx(E0 / 2 + E1 / 2, rel=1e-5)
    # summed over two identical streams by tuple_terms: twice one stream's value
    out = types.SimpleNamespace(h=torch.stack([h, h]), logits=torch.zeros(2, 50, 2))
    metric, _ = L.tuple_terms(cfg, out, target)
    assert metric.item() == pytest.approx(2 * (E0 / 2 + E1 / 2), rel=1e-5)
    with pytest.raises(ValueError, match="metric_norm"):
        L.structured_metric(h, target, 1.2, norm="groups")


# ----------------------------------------------------------------------------- 2. face term x k

def test_published_adversarial_weights_the_face_anchor_k():
    # one F-V tuple (face anchor, two voices); precomputed discriminator logits (face, voice):
    # face item (0, log 3): p(face) = 1/4, its cross-entropy on "face" is log 4;
    # each voice item (0, 0): p = 1/2, cross-entropy log 2.
    out = types.SimpleNamespace(h=torch.zeros(1, 1, 3, 4), logits=torch.zeros(1, 1, 2),
                                modality=torch.tensor([[0, 1, 1]]))
    z = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0], [0.0, 0.0]]])   # (S=1, M=3, 2)
    pub = L.discriminator_total(Config(adv_reduction="published"), out, z)
    paper = L.discriminator_total(Config(adv_reduction="tuple"), out, z)
    assert pub.item() == pytest.approx(2 * math.log(4) + 2 * math.log(2), rel=1e-6)  # 6 log 2
    assert paper.item() == pytest.approx(math.log(4) + 2 * math.log(2), rel=1e-6)    # 4 log 2


# ----------------------------------------------------------------------------- 3. weight decay

def test_published_optimisers_have_no_weight_decay():
    from dsanet.engine.optim import build_optimizers
    from dsanet.models.dsanet import DSANet

    for cfg, wd in ((smoke(), 5e-4), (published(smoke()), 0.0)):
        gen, disc = build_optimizers(DSANet(cfg), cfg, torch.device("cpu"))
        groups = gen.param_groups + disc.param_groups
        assert {g["name"] for g in groups} >= {"backbone", "generator", "classifier", "discriminator"}
        assert [g["weight_decay"] for g in groups] == [wd] * len(groups)


# ----------------------------------------------------------------------------- 4. front-end

def _tone(hz, samples, sr=22050, amp=0.5, taper=4096):
    """A sine with raised-cosine ends (no broadband click in the first and last frames)."""
    t = np.arange(samples) / sr
    w = np.ones(samples)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(taper) / taper)
    w[:taper], w[-taper:] = ramp, ramp[::-1]
    return torch.tensor(amp * w * np.sin(2 * np.pi * hz * t), dtype=torch.float32)


def test_published_front_end_covers_the_lowest_2_2_khz():
    from dsanet.data.frontends import Spectrogram

    cfg = published()
    assert (cfg.sample_rate, cfg.n_fft, cfg.hop_length, cfg.spec_layout) == (22050, 2048, 512, "published")
    assert (cfg.spec_bins, cfg.spec_frames) == (224, 125)
    spec = Spectrogram(cfg)
    # 512 * 136 samples -> 1 + 136 = 137 centred frames; 224 * 125 = 28,000 values re-wrap the
    # first ceil(28000 / 137) = 205 of the 1025 rows: 0 .. 205 * 22050 / 2048 = 2207 Hz
    n = 512 * 136
    assert math.ceil(224 * 125 / 137) * 22050 / 2048 == pytest.approx(2207.2, abs=0.1)
    inside = spec(_tone(2150.0, n))            # bin 2150 / 10.77 = 199.7 < 205: the peak is in the image
    outside = spec(_tone(2500.0, n))           # bin 232.2 > 205: the image only sees the floor
    assert inside.shape == outside.shape == (1, 224, 125)
    assert inside.max().item() == pytest.approx(1.0, abs=1e-6)
    assert outside.max().item() == pytest.approx(-1.0, abs=1e-6)   # 80 dB below the peak everywhere
    # this project's earlier settings (16 kHz, 512, 160) kept 2.5 kHz in view: at 3.2 s
    # (51,200 samples, 321 frames) the image spans ceil(28000 / 321) = 88 rows = 2750 Hz
    old = Spectrogram(cfg.replace(sample_rate=16000, n_fft=512, hop_length=160))
    assert old(_tone(2500.0, 51200, sr=16000)).max().item() == pytest.approx(1.0, abs=1e-6)


def test_amplitude_floor_of_the_published_front_end():
    from dsanet.data.frontends import Spectrogram

    quiet = _tone(500.0, 512 * 40, amp=1e-9)   # |STFT| peak about 1e-9 * 1024 / 2 = 5e-7 < 1e-5
    pub = Spectrogram(published())(quiet)
    ours = Spectrogram(published().replace(amin=1e-10))(quiet)
    assert torch.count_nonzero(pub) == 0       # all floored: constant dB, silent-clip branch -> 0
    assert ours.max().item() == pytest.approx(1.0, abs=1e-6) and ours.min().item() == pytest.approx(-1.0)


# ----------------------------------------------------------------------------- 5. evaluation mode

def _cached(cfg, n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return types.SimpleNamespace(
        voices=torch.randn(n, 1, cfg.spec_bins, cfg.spec_frames, generator=g),
        voice_frames=torch.full((n,), cfg.spec_frames),
        faces=torch.randint(0, 256, (n, 3, cfg.face_size, cfg.face_size), generator=g).to(torch.uint8),
        voice_ids=torch.arange(n) % 3, face_ids=torch.arange(n) % 3,
        voice_gender=torch.zeros(n), face_gender=torch.zeros(n))


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_eval_generator_mode(mode):
    from dsanet.engine import evaluate as ev
    from dsanet.models.dsanet import DSANet

    cfg = smoke(eval_generator_mode=mode)
    torch.manual_seed(0)
    model = DSANet(cfg)
    cached = _cached(cfg)
    seen = {}

    def note(name):
        def hook(module, inputs, output):
            seen.setdefault(name, module.training)     # returns None: the output is kept
        return hook
    model.generator.drop.register_forward_hook(note("gen"))
    model.face_backbone.register_forward_hook(note("bb"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.random.get_rng_state()
    one = ev.embed_split(model, cached, cfg, batch_size=12)
    chunks = ev.embed_split(model, cached, cfg, batch_size=4)   # other BatchNorm batches
    assert seen == {"gen": mode == "train", "bb": False}        # backbones always in eval mode
    assert model.training                                       # the mode is restored
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert torch.equal(torch.random.get_rng_state(), rng)       # the global RNG is untouched
    if mode == "eval":      # running statistics, no dropout: batch composition is irrelevant
        torch.testing.assert_close(one.voice, chunks.voice)
    else:                   # batch statistics of each call: 12 items at once vs 3 calls of 4
        assert not torch.allclose(one.voice, chunks.voice, atol=1e-3)
        pre = torch.atanh(one.voice.double().clamp(-1 + 1e-7, 1 - 1e-7))
        # the last BatchNorm (after the last linear layer) normalised these 12 items together:
        # zero mean per feature before the tanh
        assert pre.mean(0).abs().max().item() < 1e-4
        again = ev.embed_split(model, cached, cfg, batch_size=12)
        torch.testing.assert_close(again.voice, one.voice)      # a fixed dropout seed


# ----------------------------------------------------------------------------- 6. per-input calls

def _pre_tanh(h):
    return torch.atanh(h.double().clamp(-1 + 1e-7, 1 - 1e-7))


@pytest.mark.parametrize("calls", ["pooled", "per_input"])
def test_per_input_calls_give_per_batch_statistics(calls):
    from dsanet.models.dsanet import DSANet

    cfg = smoke(gen_calls=calls)
    torch.manual_seed(0)
    model = DSANet(cfg).train()
    B, k = 6, cfg.k
    g = torch.Generator().manual_seed(1)
    anchor = torch.randn(B, 1, cfg.spec_bins, cfg.spec_frames, generator=g)
    cands = torch.randn(B, k, 3, cfg.face_size, cfg.face_size, generator=g) + 2.0
    out = model.forward_tuples(anchor, cands, "vf", generator=torch.Generator().manual_seed(2))
    assert out.h.shape == (cfg.n_streams, B, k + 1, cfg.embed_dim)
    per_input_mean = _pre_tanh(out.h).mean(dim=1)                  # (S, k+1, D): over each input batch
    if calls == "per_input":
        assert per_input_mean.abs().max().item() < 1e-4
    else:                                  # one call on every stream and item: zero only overall
        assert _pre_tanh(out.h).mean(dim=(0, 1, 2)).abs().max().item() < 1e-4
        assert per_input_mean.abs().max().item() > 0.1
    # the discriminator: BatchNorm on its 2 outputs, train mode
    z = L.discriminator_logits(cfg, out, model.discriminator).double()   # (S, B*(k+1), 2)
    zj = z.view(cfg.n_streams, B, k + 1, 2).mean(dim=1)                  # (S, k+1, 2)
    if calls == "per_input":
        assert zj.abs().max().item() < 1e-5
    else:
        assert z.mean(dim=(0, 1)).abs().max().item() < 1e-5 and zj.abs().max().item() > 1e-3


def test_per_input_pairs_split_voices_and_faces():
    from dsanet.models.dsanet import DSANet

    cfg = smoke(gen_calls="per_input", task="retrieval")
    torch.manual_seed(0)
    model = DSANet(cfg).train()
    g = torch.Generator().manual_seed(1)
    out = model.forward_pairs(torch.randn(5, 1, cfg.spec_bins, cfg.spec_frames, generator=g),
                              torch.randn(5, 3, cfg.face_size, cfg.face_size, generator=g) + 2.0)
    assert _pre_tanh(out.h_voice).mean(1).abs().max().item() < 1e-4
    assert _pre_tanh(out.h_face).mean(1).abs().max().item() < 1e-4


# ----------------------------------------------------------------------------- 7. published CNN

# (in, out, kernel h, kernel w) of the five convolutions, from the published layer list
FACE_CONVS = [(3, 3, 7, 7), (3, 6, 5, 5), (6, 12, 2, 2), (12, 16, 3, 3), (16, 32, 3, 3)]
VOICE_CONVS = [(1, 3, 5, 5), (3, 6, 3, 6), (6, 12, 3, 3), (12, 16, 3, 3), (16, 32, 3, 3)]


def _by_hand(convs):
    """Weights + biases of each conv, plus a BatchNorm (scale and shift) after each."""
    return sum(o * i * kh * kw + o + 2 * o for i, o, kh, kw in convs)


def test_published_cnn_parameter_count_and_layout():
    from torch import nn

    from dsanet.models.backbones import build_backbone

    cfg = published()
    face, voice = build_backbone(cfg, "face"), build_backbone(cfg, "voice")
    assert _by_hand(FACE_CONVS) == 7722 and _by_hand(VOICE_CONVS) == 7590
    assert sum(p.numel() for p in face.parameters()) == 7722
    assert sum(p.numel() for p in voice.parameters()) == 7590
    kinds = {m: [type(x).__name__ for x in net.features] for m, net in (("face", face), ("voice", voice))}
    assert kinds["face"].count("LeakyReLU") == 4 and kinds["voice"].count("LeakyReLU") == 3
    assert kinds["face"].count("AvgPool2d") == 3 and kinds["voice"].count("AvgPool2d") == 3
    assert [c.padding for c in face.features if isinstance(c, nn.Conv2d)][2] == (4, 4)
    x_face, x_voice = torch.randn(2, 3, 224, 224), torch.randn(2, 1, 224, 125)
    assert face.features(x_face).shape == (2, 32, 12, 12)        # the natural 12 x 12
    assert voice.features(x_voice).shape == (2, 32, 12, 12)
    assert face(x_face).shape == voice(x_voice).shape == (2, 32, 12, 12)
    # this project's compact CNN keeps its name and is a different network (27.8k on faces)
    compact = build_backbone(cfg.replace(backbone="compact"), "face")
    assert sum(p.numel() for p in compact.parameters()) > 20000


@pytest.mark.parametrize("profile", [quick, smoke])
def test_published_cnn_small_inputs_give_map_size(profile):
    from dsanet.models.backbones import build_backbone

    cfg = published(profile())
    face, voice = build_backbone(cfg, "face"), build_backbone(cfg, "voice")
    m = cfg.map_size
    assert face(torch.randn(2, 3, cfg.face_size, cfg.face_size)).shape == (2, 32, m, m)
    assert voice(torch.randn(2, 1, cfg.spec_bins, cfg.spec_frames)).shape == (2, 32, m, m)


# ----------------------------------------------------------------------------- 8. DEM slices

def test_published_slices_leave_five_drawable_blocks_empty():
    C, N, r, c = 32, 144, 4, 4
    F = torch.rand(16, C, N, generator=torch.Generator().manual_seed(0)) + 0.01
    idx = torch.arange(16)                                       # 0-based block index l * c + m
    rows, cols = idx // c, idx % c
    pub = D.dem_mask(F, rows, cols, r, c, "patch", slices="published").flatten(1).sum(1)
    exact = D.dem_mask(F, rows, cols, r, c, "patch").flatten(1).sum(1)
    empty = {4, 8, 12, 13, 14, 15, 16}                           # 1-based: last column and last row
    assert {i + 1 for i in range(16) if pub[i] == 0} == empty
    assert (exact > 0).all()
    # the published draw never picks 15 or 16: 5 of its 16 draws (j = 5, 9, 13, 14, 15) change nothing
    drawable = {1 if j < 2 else j - 1 for j in range(16)}
    assert len([j for j in range(16) if (1 if j < 2 else j - 1) in empty]) == 5
    assert empty & drawable == {4, 8, 12, 13, 14}
    full = D.block_mask(16, C, N, rows, cols, r, c, slices="published").flatten(1).sum(1)
    assert full[[i - 1 for i in sorted(drawable - empty)]].tolist() == [8 * 36] * 9
    model_dem = D.DEM(smoke(block_slices="published", selection="patch", channels=32, map_size=12))
    assert model_dem.slices == "published"


# ----------------------------------------------------------------------------- 9. the preset

def test_published_sets_every_option():
    cfg = published(smoke())
    want = dict(backbone="published_cnn", metric_norm="published", adv_reduction="published",
                weight_decay=0.0, sample_rate=22050, n_fft=2048, hop_length=512, amin=1e-5,
                spec_layout="published", eval_generator_mode="train", gen_calls="per_input",
                block_slices="published", block_draw="published", selection="patch",
                grad_clip=None, select_on="test", direction="fv", disc_betas=(0.5, 0.999),
                lr_backbone=5e-2, margin=1.2, seed=25)
    assert {k: getattr(cfg, k) for k in want} == want
    default = Config()
    assert all(getattr(default, k) != v for k, v in want.items() if k != "margin")
    with pytest.raises(ValueError, match="gen_calls"):
        Config(gen_calls="stacked")


# ----------------------------------------------------------------------------- 10. the training list

def _items(n_ids=20, per=3):
    from dsanet.data.protocols import SplitItems
    ids = np.repeat(np.arange(n_ids), per)
    return SplitItems("train", ids.astype(str), ids.astype(str), ids, ids.copy(),
                      np.arange(n_ids) % 2)


def test_fixed_training_list_is_read_in_order_each_epoch(monkeypatch):
    """train_list_epochs=E: steps // E batches drawn once; step t reads batch t mod (steps // E)."""
    from dsanet.data import batches
    from dsanet.engine.matching import MatchingTask

    seen = []
    monkeypatch.setattr(batches, "matching_batch",
                        lambda cached, t, d, cfg, train, gen, device=None: (seen.append(t.numpy().copy()),
                                                               t[:, 0], t[:, 1:], t[:, 0])[1:])
    cached = _items()
    cached.voices = torch.zeros(1)                          # the device the tuples go to
    cfg = smoke(sampling="tuple", direction="fv", batch_size=4, steps=12, train_list_epochs=4)
    task = MatchingTask(cfg, cached, "cpu")
    assert task.train_list["fv"].shape == (3, 4, 3)         # 12 // 4 = 3 batches of 4 (face, 2 voices)
    rng = np.random.default_rng(0)
    for step in range(12):
        task.batch(rng, None, lambda x: x, step)
    first_epoch = np.stack(seen[:3])
    for e in range(4):                                      # every epoch: the same batches, same order
        assert (np.stack(seen[3 * e:3 * e + 3]) == first_epoch).all()
    assert len({tuple(r) for b in first_epoch for r in b}) > 4    # batches of one epoch differ
    rows = first_epoch.reshape(-1, 3)                       # each row a valid F-V tuple of k = 2
    assert (rows[:, 1] != rows[:, 2]).all()
    # a fresh task (a resumed run) reads the same list from the step it is given
    again = MatchingTask(cfg, cached, "cpu")
    assert all((again.train_list["fv"][s % 3] == seen[s]).all() for s in (5, 7, 11))
    # the default draws fresh tuples every step; the batch sampler refuses a fixed list
    assert MatchingTask(smoke(sampling="tuple", direction="fv"), cached, "cpu").train_list is None
    assert published(smoke()).train_list_epochs == 60
    from dsanet.engine.matching import InBatchMatchingTask
    with pytest.raises(ValueError, match="train_list_epochs"):
        InBatchMatchingTask(smoke(train_list_epochs=2), None, "cpu")
