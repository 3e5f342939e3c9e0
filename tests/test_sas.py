"""SAS, eqs. (10)-(13) and Table I: self-attention, generator, discriminator, stream dropout."""
import math

import pytest
import torch
from torch.nn.utils import parametrize

from dsanet.config import paper, smoke
from dsanet.models.sas import Discriminator, Generator, SelfAttention, simulate_stream_dropout


def _naive_attention(att, x):
    """SAGAN attention written out with explicit index formulas (no pooling / matmul modules)."""
    B, C, H, W = x.shape

    def conv(layer, t):  # 1x1 conv as a sum over input channels
        w, b = layer.weight[:, :, 0, 0], layer.bias
        return torch.einsum("oc,bchw->bohw", w, t) + b.view(1, -1, 1, 1)

    def pool(t):  # 2x2 max over each block of four positions
        t = t[:, :, :H // 2 * 2, :W // 2 * 2]
        quads = [t[:, :, i::2, j::2] for i in (0, 1) for j in (0, 1)]
        return torch.stack(quads).amax(0)

    q = conv(att.query, x).flatten(2)               # (B, C/8, N)
    k = pool(conv(att.key, x)).flatten(2)           # (B, C/8, N')
    v = pool(conv(att.value, x)).flatten(2)         # (B, C/2, N')
    scores = torch.einsum("bcn,bcm->bnm", q, k)
    weights = scores.exp() / scores.exp().sum(-1, keepdim=True)
    y = torch.einsum("bcm,bnm->bcn", v, weights).view(B, C // 2, H, W)
    return x + att.gamma * conv(att.out, y)


def test_self_attention_starts_as_identity():
    att = SelfAttention(32)
    x = torch.randn(3, 32, 12, 12)
    assert torch.equal(att(x), x)  # gamma = 0 at initialisation
    assert att.gamma.item() == 0.0
    assert (att.query.weight.shape[0], att.key.weight.shape[0], att.value.weight.shape[0],
            att.out.weight.shape[0]) == (4, 4, 16, 32)


@pytest.mark.parametrize("hw", [(12, 12), (7, 10)])
def test_self_attention_matches_naive_formula(hw):
    torch.manual_seed(0)
    att = SelfAttention(16).eval()
    with torch.no_grad():
        att.gamma.fill_(0.7)
    x = torch.randn(2, 16, *hw)
    with torch.no_grad():
        torch.testing.assert_close(att(x), _naive_attention(att, x), rtol=1e-5, atol=1e-5)


def test_spectral_norm_brings_top_singular_value_to_one():
    torch.manual_seed(0)
    att = SelfAttention(32).train()
    x = torch.randn(1, 32, 4, 4)
    for _ in range(30):  # one power iteration per training forward
        att(x)
    for layer in (att.query, att.key, att.value, att.out):
        assert parametrize.is_parametrized(layer, "weight")
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert abs(float(sigma) - 1) < 1e-2
    assert not parametrize.is_parametrized(SelfAttention(32, spectral=False).query, "weight")


def test_self_attention_rejects_too_few_channels():
    with pytest.raises(ValueError, match="channels"):
        SelfAttention(4)


def test_generator_sagan_shapes_and_layers():
    cfg = paper()
    g = Generator(cfg).train()
    h = g(torch.randn(6, 32, 12, 12))
    assert h.shape == (6, 128) and float(h.detach().abs().max()) <= 1.0  # tanh output
    assert isinstance(g.attention, SelfAttention)
    linears = [m for m in g.mlp if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4608, 256), (256, 128)]
    assert all(parametrize.is_parametrized(m, "weight") for m in linears)


@pytest.mark.parametrize("kind", ["gan", "wgan", "none"])
def test_generator_plain_variants_have_no_attention_or_spectral_norm(kind):
    g = Generator(paper(adversarial=kind))
    assert isinstance(g.attention, torch.nn.Identity)
    assert not any(parametrize.is_parametrized(m) for m in g.modules())
    assert g.eval()(torch.randn(2, 32, 12, 12)).shape == (2, 128)


def test_generator_rejects_wrong_map_shape():
    with pytest.raises(ValueError, match="Generator expects"):
        Generator(smoke())(torch.randn(2, 32, 10, 10))
    with pytest.raises(ValueError, match="adversarial"):
        Generator(paper(adversarial="began"))


@pytest.mark.parametrize("kind,out", [("sagan", 2), ("gan", 2), ("none", 2), ("wgan", 1)])
def test_discriminator_outputs(kind, out):
    d = Discriminator(paper(adversarial=kind)).train()
    assert d(torch.randn(5, 128)).shape == (5, out)


# ---------------------------------------------------------------- Table I

def _close(estimate, p, n):
    return abs(estimate - p) <= 3 * math.sqrt(p * (1 - p) / n) + 1e-12


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.8])
def test_table1_sas_rates(p):
    n = 200_000
    drop, learn = simulate_stream_dropout(p, streams=2, n=n, generator=torch.Generator().manual_seed(0))
    assert _close(drop, p * (2 - p), n)
    assert _close(learn, 1 - p ** 2, n)
    assert drop + learn > 1.0  # Table I: the SAS sum is not 1


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_table1_gan_rates_and_more_streams(p):
    n = 200_000
    g = torch.Generator().manual_seed(1)
    drop, learn = simulate_stream_dropout(p, streams=1, n=n, generator=g)
    assert _close(drop, p, n) and drop + learn == pytest.approx(1.0)
    drop, learn = simulate_stream_dropout(p, streams=3, n=n, generator=g)
    assert _close(drop, 1 - (1 - p) ** 3, n) and _close(learn, 1 - p ** 3, n)


def test_stream_dropout_rejects_bad_probability():
    with pytest.raises(ValueError, match="probability"):
        simulate_stream_dropout(1.5)
