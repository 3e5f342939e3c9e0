"""Backbones, heads and the assembled DSANet: shapes, routing, gradients, optimiser groups."""
import pytest
import torch
from torch.nn.utils import parametrize
from torchvision.models import resnet18

from dsanet.config import paper, smoke
from dsanet.models import DSANet, MatchingClassifier, RetrievalClassifier, build_backbone
from dsanet.models.backbones import CompactCNN


def _inputs(direction, B, k, face=32, spec=(32, 32), seed=0):
    g = torch.Generator().manual_seed(seed)
    voice = lambda *lead: torch.randn(*lead, 1, *spec, generator=g)
    faces = lambda *lead: torch.randn(*lead, 3, face, face, generator=g)
    return (voice(B), faces(B, k)) if direction == "vf" else (faces(B), voice(B, k))


# ---------------------------------------------------------------- backbones

@pytest.mark.parametrize("backbone", ["compact", "resnet18"])
@pytest.mark.parametrize("modality,shape", [("face", (3, 32, 32)), ("face", (3, 48, 40)),
                                            ("voice", (1, 32, 32)), ("voice", (1, 64, 50))])
def test_backbone_maps_any_input_to_32x12x12(backbone, modality, shape):
    net = build_backbone(smoke(backbone=backbone), modality).eval()
    with torch.no_grad():
        assert net(torch.randn(2, *shape)).shape == (2, 32, 12, 12)


@pytest.mark.parametrize("backbone", ["compact", "resnet18"])
def test_backbone_paper_sizes(backbone):
    cfg = paper(backbone=backbone)
    with torch.no_grad():
        assert build_backbone(cfg, "face").eval()(torch.randn(1, 3, 224, 224)).shape == (1, 32, 12, 12)
        assert build_backbone(cfg, "voice").eval()(torch.randn(1, 1, 224, 125)).shape == (1, 32, 12, 12)


@pytest.mark.parametrize("side,before_pool", [(224, 14), (64, 16), (32, 16)])
def test_compact_pools_only_while_twice_map_size(side, before_pool):
    # 2x2 average pooling halves a side while it is >= 24: 224 -> 112 -> 56 -> 28 -> 14; 64 -> 32 -> 16.
    net = CompactCNN(3, 32, 12).eval()
    with torch.no_grad():
        assert net.features(torch.randn(1, 3, side, side)).shape[-1] == before_pool


def test_resnet_trunk_output_stride_16():
    net = build_backbone(paper(), "face").eval()
    with torch.no_grad():
        assert net.trunk(torch.randn(1, 3, 224, 224)).shape == (1, 512, 14, 14)


def test_pretrained_state_dict_is_loaded(tmp_path):
    torch.manual_seed(0)
    state = resnet18(weights=None).state_dict()
    path = tmp_path / "r18.pt"
    torch.save(state, path)
    cfg = paper(pretrained=str(path))
    face, voice = build_backbone(cfg, "face"), build_backbone(cfg, "voice")
    assert torch.equal(face.trunk[0].weight, state["conv1.weight"])
    assert torch.equal(face.trunk[7][1].conv2.weight, state["layer4.1.conv2.weight"])
    assert torch.equal(voice.trunk[0].weight, state["conv1.weight"].sum(1, keepdim=True))


def test_pretrained_file_without_batch_norm_counters_is_loaded(tmp_path):
    """torchvision's ImageNet ResNet18 file predates the ``num_batches_tracked`` buffers; a state
    dict without them (and without ``fc.*``) loads, its numbers intact."""
    torch.manual_seed(1)
    state = {k: v for k, v in resnet18(weights=None).state_dict().items()
             if not k.endswith("num_batches_tracked") and not k.startswith("fc.")}
    path = tmp_path / "zoo.pth"
    torch.save(state, path)
    face = build_backbone(paper(pretrained=str(path)), "face")
    assert torch.equal(face.trunk[1].running_var, state["bn1.running_var"])
    assert torch.equal(face.trunk[7][0].downsample[0].weight,
                       state["layer4.0.downsample.0.weight"])


def test_pretrained_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        build_backbone(paper(pretrained=str(tmp_path / "nowhere.pt")), "face")
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        build_backbone(paper(pretrained=str(bad)), "face")
    other = tmp_path / "other.pt"
    torch.save({"conv1.weight": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="other.pt"):
        build_backbone(paper(pretrained=str(other)), "face")


def test_unknown_backbone_or_modality():
    with pytest.raises(ValueError, match="backbone"):
        build_backbone(smoke(backbone="vgg"), "face")
    with pytest.raises(ValueError, match="modality"):
        build_backbone(smoke(), "text")


# ---------------------------------------------------------------- heads

def test_matching_classifier_concatenates_anchor_first():
    torch.manual_seed(0)
    head = MatchingClassifier(3, 4, dropout=0.1, spectral=False).eval()
    anchor, cands = torch.randn(5, 4), torch.randn(5, 3, 4)
    lin, bn = head.net[1], head.net[2]
    rows = [torch.cat([anchor[b]] + [cands[b, j] for j in range(3)]) for b in range(5)]
    expected = (torch.stack(rows) @ lin.weight.T + lin.bias) / (1 + bn.eps) ** 0.5  # BN at init stats
    with torch.no_grad():
        torch.testing.assert_close(head(anchor, cands), expected)
    with pytest.raises(ValueError, match="k=3"):
        head(anchor, torch.randn(5, 2, 4))


def test_matching_classifier_is_spectral_by_default():
    assert parametrize.is_parametrized(MatchingClassifier(2, 8).net[1], "weight")
    assert MatchingClassifier(10, 128).net[1].weight.shape == (10, 11 * 128)


def test_retrieval_classifier_eq26():
    head = RetrievalClassifier(3)
    with torch.no_grad():
        head.linear.weight.copy_(torch.tensor([[1., -2., 0.5]]))
        head.linear.bias.fill_(0.25)
        diff = torch.tensor([[[1., 1., 2.], [0., 0., 0.]]])  # (1, 2, 3)
        assert torch.equal(head(diff), torch.tensor([[1 - 2 + 1 + 0.25, 0.25]]))


# ---------------------------------------------------------------- DSANet

@pytest.mark.parametrize("backbone", ["compact", "resnet18"])
@pytest.mark.parametrize("direction", ["vf", "fv"])
@pytest.mark.parametrize("k", [2, 10])
def test_forward_tuples_shapes_and_backward(backbone, k, direction):
    torch.manual_seed(0)
    cfg = smoke(backbone=backbone, k=k)
    model = DSANet(cfg).train()
    anchor, cands = _inputs(direction, 2, k)
    out = model.forward_tuples(anchor, cands, direction, generator=torch.Generator().manual_seed(0))
    S = cfg.n_streams
    assert out.h.shape == (S, 2, k + 1, 128) and out.logits.shape == (S, 2, k)
    a, c = (1, 0) if direction == "vf" else (0, 1)
    assert out.modality.dtype == torch.long
    assert torch.equal(out.modality, torch.tensor([[a] + [c] * k] * 2))
    (out.h.square().sum() + out.logits.sum()).backward()
    for part in (model.face_backbone, model.voice_backbone, model.generator, model.classifier):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)


def test_one_call_per_backbone_and_generator():
    model = DSANet(smoke(dem_layers=2)).train()
    calls = {}
    for name in ("face_backbone", "voice_backbone", "generator", "classifier"):
        getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: calls.update({name: calls.get(name, []) + [i[0].shape[0]]}))
    out = model.forward_tuples(*_inputs("vf", 4, 2), "vf")
    S = 6
    assert calls == {"voice_backbone": [4], "face_backbone": [8], "generator": [S * 4 * 3],
                     "classifier": [S * 4]}
    assert out.h.shape[0] == S


def test_eval_tuples_equal_plain_embeddings():
    torch.manual_seed(0)
    model = DSANet(smoke()).eval()
    anchor, cands = _inputs("vf", 2, 2)
    with torch.no_grad():
        out = model.forward_tuples(anchor, cands, "vf")
        assert out.h.shape == (1, 2, 3, 128)  # DEM is training-only: one plain stream
        torch.testing.assert_close(out.h[0, :, 0], model.embed(anchor, "voice"))
        torch.testing.assert_close(out.h[0, :, 1:], model.embed(cands.flatten(0, 1), "face").view(2, 2, -1))


def test_forward_pairs_and_embed_shapes():
    model = DSANet(smoke()).train()
    voice, face = _inputs("vf", 4, 1)
    out = model.forward_pairs(voice, face[:, 0])
    assert out.h_voice.shape == (2, 4, 128) and out.h_face.shape == (2, 4, 128)
    model.eval()
    with torch.no_grad():
        out = model.forward_pairs(voice, face[:, 0])
        assert out.h_voice.shape == (1, 4, 128)
        torch.testing.assert_close(out.h_face[0], model.embed(face[:, 0], "face"))
    with pytest.raises(ValueError, match="modality"):
        model.embed(voice, "text")


def test_bad_direction_and_shapes():
    model = DSANet(smoke())
    anchor, cands = _inputs("vf", 2, 2)
    with pytest.raises(ValueError, match="direction"):
        model.forward_tuples(anchor, cands, "vv")
    with pytest.raises(ValueError, match="cands"):
        model.forward_tuples(anchor, cands[0], "vf")


def test_parameter_groups_cover_everything_once():
    cfg = smoke()
    model = DSANet(cfg)
    model.init_centres(7)
    assert model.centres.shape == (2, 7, 128)
    groups = model.parameter_groups(cfg)
    assert [g["name"] for g in groups] == ["backbone", "generator", "classifier"]
    assert [g["lr"] for g in groups] == [cfg.lr_backbone, cfg.lr_generator, cfg.lr_classifier]
    ids = [id(p) for g in groups for p in g["params"]]
    disc = {id(p) for p in model.discriminator_parameters()}
    assert len(ids) == len(set(ids)) and not disc & set(ids)
    assert set(ids) | disc == {id(p) for p in model.parameters()}
    assert id(model.centres) in {id(p) for p in groups[2]["params"]}
    torch.optim.Adam(groups)  # accepted as optimiser groups


def test_stream_kinds():
    assert DSANet(smoke(dem_layers=2)).stream_kinds == [0, 1, 0, 1, 0, 1]
    assert DSANet(smoke(structure="gan")).stream_kinds == [0]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backbone", ["compact", "resnet18"])
@pytest.mark.parametrize("k", [2, 10])
def test_forward_tuples_cuda_bf16(backbone, k):
    torch.manual_seed(0)
    cfg = smoke(backbone=backbone, k=k)
    model = DSANet(cfg).cuda().train()
    anchor, cands = (t.cuda() for t in _inputs("fv", 3, k))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model.forward_tuples(anchor, cands, "fv", generator=torch.Generator("cuda").manual_seed(0))
        loss = out.h.float().square().sum() + out.logits.float().sum()
    loss.backward()
    assert out.h.shape == (2, 3, k + 1, 128) and out.logits.shape == (2, 3, k)
    assert all(torch.isfinite(p.grad).all() for p in model.generator.parameters() if p.grad is not None)


def test_pairwise_head_scores_each_candidate_by_its_difference_to_the_anchor():
    """head="pairwise": logit_j = w . (h_0 - h_j)^2 + b, equivariant to candidate order."""
    from dsanet.models.heads import MatchingClassifier

    torch.manual_seed(0)
    a, other = torch.randn(1, 8), torch.randn(1, 8)
    first = torch.stack([a, other], dim=1)     # (1, 2, 8): candidate 0 is the anchor itself
    second = torch.stack([other, a], dim=1)    # candidate 1 is the anchor itself
    pair = MatchingClassifier(2, 8, dropout=0.0, spectral=False, head="pairwise").eval()
    with torch.no_grad():
        pair.net[1].weight.fill_(-1.0)         # logit_j = -||a - c_j||^2 + b
        s1, s2 = pair(a, first), pair(a, second)
    assert s1.argmax(1).item() == 0 and s2.argmax(1).item() == 1
    expected = -(a - other).square().sum()
    assert torch.allclose(s1[0, 1] - s1[0, 0], expected, atol=1e-5)

    with pytest.raises(ValueError, match="head"):
        MatchingClassifier(2, 8, head="nosuch")
