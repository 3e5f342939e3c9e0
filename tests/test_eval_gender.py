"""The evaluation's G protocol refuses unknown genders (issue 12, item 2), with the count named."""
import numpy as np
import pytest
import torch

from dsanet.engine import evaluate as ev
from dsanet.config import smoke


def _emb(gender):
    ids = np.repeat(np.arange(6), 2)                          # 6 identities x 2 items
    g = np.repeat(np.asarray(gender), 2)
    x = torch.randn(12, 4)
    return ev.Embeddings(x, x.clone(), ids, ids, g, g)


def test_g_cells_are_skipped_naming_the_unknown_identities():
    emb = _emb([0, 1, 0, -1, 1, -1])                          # 2 identities without a gender
    with pytest.warns(UserWarning, match="2 identities"):
        p = ev.build_protocols(emb, smoke(eval_ks=(2,), eval_tuples=20))
    assert {kind for _, kind, _ in p.matching} == {"U"}


def test_g_tuples_refuse_unknown_genders():
    emb = _emb([0, 1, 0, -1, 1, 0])
    with pytest.raises(ValueError, match="1 identities have none"):
        ev.sample_tuples(*emb.sides("vf"), 2, 10, np.random.default_rng(0), constrained=True)


def test_known_genders_keep_the_g_cells():
    p = ev.build_protocols(_emb([0, 1, 0, 1, 0, 1]), smoke(eval_ks=(2,), eval_tuples=20))
    assert {kind for _, kind, _ in p.matching} == {"U", "G"}
