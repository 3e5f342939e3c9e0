"""In-batch tuples (dsanet.data.sampling): labels, k, U / G negatives, never the anchor's identity."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dsanet.data.layout import DataError
from dsanet.data.sampling import IdentityBatchSampler, in_batch_tuples


@pytest.fixture(scope="module")
def smoke_cache(tmp_path_factory):
    """The smoke benchmark's training split, decoded (the generator's tree, as tests/test_train.py)."""
    from dsanet.config import smoke
    from dsanet.data.cache import build_cache
    from dsanet.data.layout import load_index
    from test_train import smoke_root

    root = smoke_root(tmp_path_factory)
    cfg = smoke(data_root=str(root), cache_dir=str(tmp_path_factory.mktemp("cache")))
    return build_cache(load_index(root), cfg, "train")


def _gender(B=12):
    return np.array([0, 1] * (B // 2))


@pytest.mark.parametrize("k", [2, 3, 5])
def test_label_points_at_the_anchor_and_negatives_are_distinct_others(k):
    g = _gender(12)
    anchor, cands, label = in_batch_tuples(g, k, per_anchor=3, constrained=False,
                                           rng=np.random.default_rng(0))
    assert anchor.shape == (36,) and cands.shape == (36, k) and label.shape == (36,)
    assert (anchor == np.repeat(np.arange(12), 3)).all()
    assert (cands[np.arange(36), label] == anchor).all()            # the label is the true one
    for t in range(36):                                             # each row: k distinct positions,
        row = list(cands[t])                                        # the anchor exactly once
        assert len(set(row)) == k and row.count(anchor[t]) == 1


def test_labels_are_spread_over_the_columns():
    anchor, cands, label = in_batch_tuples(_gender(40), 4, 50, False, np.random.default_rng(1))
    counts = np.bincount(label, minlength=4) / len(label)
    assert np.all(np.abs(counts - 0.25) < 0.03)                     # 2,000 rows: sd ~0.01


def test_gender_constrained_negatives_share_the_anchor_gender():
    g = _gender(16)
    anchor, cands, label = in_batch_tuples(g, 4, 5, True, np.random.default_rng(2))
    assert (g[cands] == g[anchor][:, None]).all()


def test_unconstrained_negatives_cross_genders():
    g = _gender(16)
    anchor, cands, _ = in_batch_tuples(g, 2, 20, False, np.random.default_rng(3))
    other = cands[cands != anchor[:, None]]                          # (T,) the one negative
    frac = (g[other] != g[anchor]).mean()
    assert 0.4 < frac < 0.65                                         # 8 of 15 others differ


def test_too_small_batches_and_unknown_genders_are_refused():
    with pytest.raises(ValueError, match="too few other identities"):
        in_batch_tuples(_gender(4), 4, 1, True, np.random.default_rng(0))   # 2 per gender
    with pytest.raises(DataError, match="1 of 4"):
        in_batch_tuples(np.array([0, 1, -1, 0]), 2, 1, True, np.random.default_rng(0))


def test_identity_batches_are_distinct_and_items_belong_to_them(smoke_cache):
    sampler = IdentityBatchSampler(smoke_cache)
    plan = sampler.sample(8, 3, ["vf", "fv"], np.random.default_rng(0), per_anchor=2)
    assert len(set(plan.identities.tolist())) == 8
    assert (smoke_cache.voice_ids.numpy()[plan.voice_items] == plan.identities).all()
    assert (smoke_cache.face_ids.numpy()[plan.face_items] == plan.identities).all()
    for d in ("vf", "fv"):
        anchor, cands, label = plan.tuples[d]
        ids = plan.identities
        assert (ids[cands[np.arange(len(label)), label]] == ids[anchor]).all()
        negatives = np.ones_like(cands, bool)
        negatives[np.arange(len(label)), label] = False
        assert (ids[cands][negatives] != np.repeat(ids[anchor], 2)).all()   # no anchor identity


def test_forward_batch_gathers_the_item_embeddings(smoke_cfg):
    from dsanet.models.dsanet import DSANet

    cfg = smoke_cfg.replace(k=3, enhancement="none", structure="gan", dropout=0.0)
    model = DSANet(cfg).eval()
    B = 6
    voice = torch.randn(B, 1, cfg.spec_bins, cfg.spec_frames)
    face = torch.randn(B, 3, cfg.face_size, cfg.face_size)
    anchor, cands, label = in_batch_tuples(_gender(B), 3, 1, False, np.random.default_rng(0))
    a, c = torch.from_numpy(anchor), torch.from_numpy(cands)
    out = model.forward_batch(voice, face, {"vf": (a, c)})
    hv, hf = model.embed(voice, "voice"), model.embed(face, "face")       # items one by one
    t = out.tuples["vf"]
    assert torch.allclose(t.h[0, :, 0], hv[a], atol=1e-5)
    assert torch.allclose(t.h[0, :, 1:], hf[c], atol=1e-5)
    assert (t.modality[:, 0] == 1).all() and (t.modality[:, 1:] == 0).all()


def test_one_home_for_every_draw_and_the_old_paths_still_work():
    """Every tuple / pair draw and candidate shuffle lives in dsanet.data.sampling; the old
    modules re-export the same objects."""
    from dsanet.data import batches, lists, protocols, sampling
    from dsanet.engine import evaluate as ev

    for name in ("TupleSampler", "PairSampler", "matching_tuples", "verification_pairs",
                 "retrieval_sets", "training_sampler", "sample_training_tuples",
                 "sample_training_pairs", "SplitItems", "split_items"):
        assert getattr(protocols, name) is getattr(sampling, name)
    for name in ("ProtocolList", "PathResolver", "read_list", "write_list", "read_lines", "KINDS"):
        assert getattr(protocols, name) is getattr(lists, name)
    for name in ("sample_tuples", "sample_pairs", "TooFewIdentities"):
        assert getattr(ev, name) is getattr(sampling, name)
    assert ev.shuffle_candidates is sampling.candidate_order
    assert batches.shuffle_candidates is sampling.shuffle_candidates
