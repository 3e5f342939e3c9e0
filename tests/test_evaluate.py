"""Known-answer tests of the evaluation metrics (matching, verification, retrieval, intervals)."""
import types

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from dsanet.config import smoke
from dsanet.engine import evaluate as ev

torch.set_num_threads(1)


def emb_from(voice, face, voice_ids, face_ids, voice_gender=None, face_gender=None):
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
    return ev.Embeddings(t(voice), t(face), np.asarray(voice_ids), np.asarray(face_ids),
                         voice_gender, face_gender)


def perfect_embeddings(n_ids=12, per_id=3, dim=16, seed=0):
    """Every item of identity i sits near the one-hot e_i in both modalities."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(n_ids), per_id)
    base = np.eye(n_ids, dim)[ids]
    gender = ids % 2
    return emb_from(base + 0.01 * rng.standard_normal(base.shape),
                    base + 0.01 * rng.standard_normal(base.shape), ids, ids, gender, gender)


# ------------------------------------------------------------------------------ matching

@pytest.mark.parametrize("direction", ["vf", "F-V"])
@pytest.mark.parametrize("k", [2, 5, 10])
def test_perfect_embeddings_match_every_tuple(direction, k):
    emb = perfect_embeddings()
    tuples = ev.sample_tuples(*emb.sides(direction), k, 200, np.random.default_rng(k))
    assert ev.matching_accuracy(emb, tuples, direction).all()


def test_constructed_accuracy_three_of_four():
    # 1-d: voice anchors at 0; faces at 1, 2, 3, 5. Tuples (anchor, positive, negative):
    # positive 1 vs 2 right, 2 vs 3 right, 3 vs 5 right, 5 vs 1 wrong -> 3/4.
    emb = emb_from([[0.0]] * 4, [[1.0], [2.0], [3.0], [5.0]], [0, 1, 2, 3], [0, 1, 2, 3])
    tuples = np.array([[0, 0, 1], [1, 1, 2], [2, 2, 3], [3, 3, 0]])
    ok = ev.matching_accuracy(emb, tuples, "vf", seed=3)
    assert ok.tolist() == [True, True, True, False]


def test_ties_give_chance_accuracy_not_position_bias():
    # All candidates identical: without the candidate shuffle argmax would pick column 1 (the
    # positive) every time. With it the accuracy is 1/k up to sampling noise (4 sigma).
    n, k = 4000, 4
    emb = emb_from(np.zeros((1, 3)), np.zeros((k, 3)), [0], np.arange(k))
    tuples = np.column_stack([np.zeros(n, int), np.tile(np.arange(k), (n, 1))])
    acc = ev.matching_accuracy(emb, tuples, "vf").mean()
    assert abs(acc - 1 / k) < 4 * np.sqrt(0.25 * 0.75 / n)


def test_shuffle_label_points_at_positive():
    perm = ev.shuffle_candidates(50, 6, seed=5)
    assert sorted(perm[0].tolist()) == list(range(6))
    emb = perfect_embeddings()
    tuples = ev.sample_tuples(*emb.sides("vf"), 6, 50, np.random.default_rng(0))
    scores, label = ev.matching_scores(emb, tuples, "vf", seed=5)
    # the label column holds the positive: its identity is the anchor's
    cand = torch.as_tensor(tuples[:, 1:]).gather(1, perm)
    pos_item = cand[torch.arange(50), label].numpy()
    assert (emb.face_ids[pos_item] == emb.voice_ids[tuples[:, 0]]).all()


class FakeClassifier(torch.nn.Module):
    """Scores each candidate by its first feature; records what it was given."""

    def __init__(self, k):
        super().__init__()
        self.k = k
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, anchor, cands):
        self.seen = (anchor.shape, cands.shape, self.training)
        return self.w * cands[..., 0]


def test_classifier_scorer_uses_classifier_logits():
    # faces: first feature high for identity 0 only; distance would prefer identity 1.
    emb = emb_from([[0.0, 0.0]], [[9.0, 0.0], [0.1, 0.0]], [0], [0, 1])
    tuples = np.array([[0, 0, 1]] * 20)
    clf = FakeClassifier(2).train()
    assert ev.matching_accuracy(emb, tuples, "vf", "classifier", clf).all()
    assert not ev.matching_accuracy(emb, tuples, "vf", "distance").any()
    assert clf.seen == (torch.Size([20, 2]), torch.Size([20, 2, 2]), False)
    assert clf.training                                     # mode restored
    with pytest.raises(ValueError, match="k=3"):
        ev.matching_accuracy(emb, np.array([[0, 0, 1, 1]]), "vf", "classifier", FakeClassifier(2))


def test_bad_tuples_raise():
    emb = perfect_embeddings()
    with pytest.raises(ValueError, match="outside"):
        ev.matching_accuracy(emb, np.array([[0, 0, 999]]), "vf")
    with pytest.raises(ValueError, match="direction"):
        ev.matching_accuracy(emb, np.array([[0, 0, 1]]), "up")


def test_sampled_tuples_follow_the_protocol():
    emb = perfect_embeddings(n_ids=10)
    anchor, cand = emb.sides("vf")
    for constrained in (False, True):
        t = ev.sample_tuples(anchor, cand, 4, 300, np.random.default_rng(1), constrained)
        a_id, c_id = anchor.ids[t[:, 0]], cand.ids[t[:, 1:]]
        assert (c_id[:, 0] == a_id).all()                                    # positive
        assert (c_id[:, 1:] != a_id[:, None]).all()                          # negatives
        assert all(len(set(r)) == 4 for r in c_id.tolist())                  # distinct ids
        if constrained:
            assert (cand.gender[t[:, 1:]] == anchor.gender[t[:, :1]]).all()
    with pytest.raises(ValueError, match="same gender"):
        ev.sample_tuples(anchor, cand, 7, 10, np.random.default_rng(0), True)  # 4 others/gender


# ------------------------------------------------------------------------------ verification

def test_perfectly_separated_pairs():
    auc, eer = ev.roc_auc_eer(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0]))
    assert auc == 1.0 and eer == 0.0


def test_hand_computed_auc_eer_through_embeddings():
    # scores = -distance: positives at distance 0, 2; negatives at 1, 3, 4.
    # AUC = P(pos > neg) = (3 + 2) / 6. ROC (fpr, fnr): (0, .5) (1/3, .5) (1/3, 0) ...: the
    # crossing lies on the vertical segment at fpr = 1/3 -> EER 1/3.
    emb = emb_from([[0.0]], [[0.0], [2.0], [1.0], [3.0], [4.0]], [0], [0, 0, 1, 2, 3])
    pairs = np.array([[0, 0], [0, 1], [0, 2], [0, 3], [0, 4]])
    out = ev.verification(emb, pairs, np.array([1, 1, 0, 0, 0]))
    assert out["auc"] == pytest.approx(5 / 6)
    assert out["eer"] == pytest.approx(1 / 3)


def test_eer_interpolates_on_a_diagonal_segment():
    # ROC points (fpr, tpr): (0,0) (0,.2) (.6,.6) (1,1). FNR-FPR: 1, .8, -.2 -> t = .8;
    # on the segment fpr = .6 t, fnr = .8 - .2 t... both equal .48.
    assert ev.eer_from_roc([0, 0, 0.6, 1], [0, 0.2, 0.6, 1]) == pytest.approx(0.48)


def test_count_roc_matches_sklearn_on_a_resample():
    rng = np.random.default_rng(0)
    scores = np.round(rng.standard_normal(60), 1)            # ties on purpose
    labels = (rng.random(60) < 0.4).astype(int)
    idx = rng.integers(0, 60, 60)
    fpr, tpr = ev._roc_from_counts(scores, labels, np.bincount(idx, minlength=60)[None].astype(float))
    ref_fpr, ref_tpr, _ = roc_curve(labels[idx], scores[idx], drop_intermediate=False)
    assert np.trapezoid(tpr, fpr, axis=1)[0] == pytest.approx(roc_auc_score(labels[idx], scores[idx]))
    assert ev.eer_from_roc(fpr, tpr)[0] == pytest.approx(ev.eer_from_roc(ref_fpr, ref_tpr))


def test_bootstrap_auc_eer_brackets_the_estimate():
    rng = np.random.default_rng(1)
    labels = np.repeat([1, 0], 300)
    scores = rng.standard_normal(600) + labels
    auc, eer = ev.roc_auc_eer(scores, labels)
    ci = ev.bootstrap_auc_eer(scores, labels, 300, seed=0)
    assert ci["auc"][0] < auc < ci["auc"][1] and ci["eer"][0] < eer < ci["eer"][1]
    assert ci["auc"][1] - ci["auc"][0] < 0.15


# ------------------------------------------------------------------------------ retrieval

def test_average_precision_hand_case():
    # ranked relevance [1, 0, 1, 0] -> AP = (1/1 + 2/3) / 2 = 5/6
    ap = ev.average_precision(torch.tensor([[4.0, 3.0, 2.0, 1.0]]),
                              torch.tensor([[True, False, True, False]]))
    assert ap.item() == pytest.approx(5 / 6)


def test_retrieval_ap_matches_sklearn():
    rng = np.random.default_rng(2)
    emb = emb_from(rng.standard_normal((30, 5)), rng.standard_normal((25, 5)),
                   rng.integers(0, 6, 30), rng.integers(0, 5, 25))   # identity 5: no faces
    ap = ev.retrieval_ap(emb, "vf", chunk=7, device="cpu")
    keep = np.isin(emb.voice_ids, emb.face_ids)
    dist = np.linalg.norm(emb.voice.numpy()[:, None] - emb.face.numpy()[None], axis=-1)
    ref = [average_precision_score(emb.face_ids == emb.voice_ids[q], -dist[q])
           for q in np.flatnonzero(keep)]
    np.testing.assert_allclose(ap, ref, rtol=1e-5)
    assert ev.retrieval_map(emb, "vf") == pytest.approx(np.mean(ref), rel=1e-5)


def test_perfect_retrieval_map_is_one():
    assert ev.retrieval_map(perfect_embeddings(), "fv") == pytest.approx(1.0)


# ------------------------------------------------------------------------------ intervals

def test_bootstrap_ci_contains_mean_and_shrinks_with_n():
    rng = np.random.default_rng(3)
    widths = []
    for n in (100, 10_000):
        v = rng.random(n) < 0.7
        lo, hi = ev.bootstrap_ci(v, 1000, seed=0)
        assert lo < v.mean() < hi
        # the percentile interval of a proportion is close to +-1.96 standard errors
        assert hi - lo == pytest.approx(2 * 1.96 * np.sqrt(v.mean() * (1 - v.mean()) / n), rel=0.2)
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 5
    assert ev.bootstrap_ci(v, 200, seed=4) == ev.bootstrap_ci(v, 200, seed=4)   # seeded


# ------------------------------------------------------------------------------ the table

def test_evaluate_tidy_table_and_headline():
    cfg = smoke(eval_tuples=60, bootstrap=50, eval_ks=(2, 3, 10))
    model = types.SimpleNamespace(classifier=FakeClassifier(2))
    df = ev.evaluate(model, None, cfg, embeddings=perfect_embeddings(n_ids=24, dim=24))
    assert list(df.columns) == ev.COLUMNS
    assert set(df["task"]) == {"matching", "verification", "retrieval"}
    assert set(df["direction"]) == {"V-F", "F-V"} and set(df["protocol"]) == {"U", "G", "-"}
    assert df[["value", "ci_low", "ci_high"]].apply(lambda c: c.between(0, 1)).all().all()
    assert (df["ci_low"] <= df["value"] + 1e-12).all() and (df["value"] <= df["ci_high"] + 1e-12).all()
    m = df[df["task"] == "matching"]
    assert len(m) == 2 * 2 * (3 + 1)                                  # k=2 twice: two scorers
    # exact cells average over the 72 anchor items; the FakeClassifier scores jointly (it has no
    # pairwise head): a sampled estimate on SAMPLED_FACTOR x eval_tuples tuples
    dist, clf = m[m["scorer"] == "distance"], m[m["scorer"] == "classifier"]
    assert (dist["n"] == 72).all() and (dist["method"] == "exact").all()
    assert (clf["n"] == ev.SAMPLED_FACTOR * 60).all() and (clf["method"] == "sampled").all()
    assert set(m[m["k"] == 2]["scorer"]) == {"classifier", "distance"}
    assert (m[m["scorer"] == "distance"]["value"] == 1.0).all()
    v = df[df["task"] == "verification"].set_index(["protocol", "metric"])["value"]
    assert v[("U", "auc")] == 1.0 and v[("U", "eer")] == 0.0
    head = ev.headline(df)
    assert list(head.columns) == ["vf", "fv", "vf10", "fv10", "map_vf", "map_fv"]
    assert head.loc[0, "vf10"] == 100.0 and head.loc[0, "map_fv"] == pytest.approx(100.0)
    assert ev.as_percent(df)["value"].max() == pytest.approx(100.0)


def test_headline_scorer_choice_and_fallback():
    rows = [("matching", "V-F", "U", 2, "classifier", "acc", 0.5),
            ("matching", "V-F", "U", 2, "distance", "acc", 0.8),
            ("matching", "V-F", "U", 10, "distance", "acc", 0.3),
            ("retrieval", "V-F", "-", None, "distance", "map", 0.1)]
    df = pd.DataFrame(rows, columns=["task", "direction", "protocol", "k", "scorer", "metric", "value"])
    assert ev.headline(df).loc[0, "vf"] == pytest.approx(80.0)                  # distance by default
    assert ev.headline(df, scorer="classifier").loc[0, "vf"] == pytest.approx(50.0)
    assert ev.headline(df, scorer=None).loc[0, "vf"] == pytest.approx(50.0)     # prefer classifier
    # no classifier at k = 10: falls back to the distance; F-V absent: NaN
    assert ev.headline(df, scorer="classifier").loc[0, "vf10"] == pytest.approx(30.0)
    assert np.isnan(ev.headline(df).loc[0, "fv"])
    assert ev.headline(df).loc[0, "map_vf"] == pytest.approx(10.0)


def test_evaluate_with_given_protocols_and_no_gender():
    emb = perfect_embeddings()
    emb.voice_gender = emb.face_gender = None
    tuples = ev.sample_tuples(*emb.sides("fv"), 3, 40, np.random.default_rng(0))
    prot = ev.Protocols(matching={("fv", "U", 3): tuples}, retrieval=())
    df = ev.evaluate(None, None, smoke(bootstrap=20), protocols=prot, embeddings=emb)
    assert len(df) == 1 and df.loc[0, "direction"] == "F-V" and df.loc[0, "k"] == 3
    assert set(ev.build_protocols(emb, smoke()).matching) == {(d, "U", k) for d in ("vf", "fv")
                                                             for k in smoke().eval_ks}
    emb.voice_gender = emb.face_gender = emb.voice_ids % 2     # 6 identities per gender
    with pytest.warns(UserWarning, match="G, k=10"):
        cells = ev.build_protocols(emb, smoke()).matching
    assert ("vf", "G", 3) in cells and ("vf", "G", 10) not in cells and ("vf", "U", 10) in cells


# ------------------------------------------------------------------------------ embed_split

class StandIn(torch.nn.Module):
    """embed(x, modality) -> (B, 4): a linear map of the mean of each input channel."""

    def __init__(self):
        super().__init__()
        self.voice = torch.nn.Linear(1, 4)
        self.face = torch.nn.Linear(3, 4)

    def embed(self, x, modality):
        return getattr(self, modality)(x.mean(dim=(2, 3)))


def test_embed_split_chunks_equal_one_pass():
    batches = pytest.importorskip("dsanet.data.batches", reason="dsanet.data.batches not written yet")
    cfg = smoke()
    g = torch.Generator().manual_seed(0)
    cached = types.SimpleNamespace(
        voices=torch.randn(7, 1, cfg.spec_bins, cfg.spec_frames + 9, generator=g).half(),
        voice_frames=torch.tensor([cfg.spec_frames + 9] * 4 + [cfg.spec_frames - 5] * 3),
        faces=torch.randint(0, 256, (5, 3, cfg.face_size, cfg.face_size), generator=g).to(torch.uint8),
        voice_ids=torch.arange(7) % 3, face_ids=torch.arange(5) % 3,
        voice_gender=torch.zeros(7), face_gender=torch.zeros(5))
    model = StandIn().train()
    emb = ev.embed_split(model, cached, cfg, batch_size=3)
    assert model.training and emb.voice.shape == (7, 4) and emb.face.shape == (5, 4)
    assert emb.voice_ids.tolist() == [0, 1, 2, 0, 1, 2, 0] and emb.has_gender
    # reference: one pass over all items, centre crop done by hand, faces scaled by hand
    t0 = (cfg.spec_frames + 9 - cfg.spec_frames) // 2
    crop = cached.voices[:4, ..., t0:t0 + cfg.spec_frames].float()
    with torch.no_grad():
        v = model.embed(crop, "voice")
        f = model.embed((cached.faces.float() / 255 - 0.5) / 0.5, "face")
    torch.testing.assert_close(emb.voice[:4], v, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(emb.face, f)
    short = batches.voice_batch(cached, torch.arange(4, 7), cfg, train=False)
    with torch.no_grad():
        torch.testing.assert_close(emb.voice[4:], model.embed(short, "voice"))
