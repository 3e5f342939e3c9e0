"""The lean kernels compute what the modules they replace compute (dsanet.models.lean)."""
import math

import torch
from torch import nn

from dsanet.models.lean import Dropout, pointwise


def test_dropout_keeps_one_minus_p_and_rescales():
    torch.manual_seed(0)
    p, n = 0.1, 400_000
    drop = Dropout(p).train()
    y = drop(torch.ones(n))
    kept = (y != 0).float()
    # a Bernoulli(1 - p) mask: the kept share is within 5 binomial SDs of 1 - p
    assert abs(kept.mean().item() - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))


def test_dropout_gradient_is_the_mask_and_eval_is_identity():
    torch.manual_seed(1)
    x = torch.randn(64, 32, requires_grad=True)
    drop = Dropout(0.25).train()
    y = drop(x)
    y.sum().backward()
    mask = (y.detach() != 0).float() / 0.75
    assert torch.allclose(x.grad, mask)
    assert torch.equal(drop.eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)


def test_pointwise_equals_the_1x1_convolution():
    torch.manual_seed(2)
    conv = nn.utils.parametrizations.spectral_norm(nn.Conv2d(32, 4, 1)).eval()  # no power step between
    x = torch.randn(5, 32, 6, 6)
    assert torch.allclose(pointwise(conv, x), conv(x), atol=1e-5)
    plain = nn.Conv2d(16, 8, 1, bias=False)
    x = torch.randn(3, 16, 4, 4)
    assert torch.allclose(pointwise(plain, x), plain(x), atol=1e-5)
