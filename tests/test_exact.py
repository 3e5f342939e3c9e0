"""Exact evaluation (dsanet.engine.exact): against brute-force enumeration of every tuple, against
sampled tuples, and wired into evaluate_split, model selection and the run cache."""
import itertools
import json
import math
import types

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from dsanet.config import smoke
from dsanet.engine import evaluate as ev
from dsanet.engine import exact as ex
from dsanet.models.heads import MatchingClassifier

torch.set_num_threads(1)


def tiny_split(seed=0, n_ids=6, dim=4):
    """6 identities, 2-3 items per modality each, genders alternating (3 per gender)."""
    rng = np.random.default_rng(seed)
    v_ids = np.repeat(np.arange(n_ids), rng.integers(2, 4, n_ids))
    f_ids = np.repeat(np.arange(n_ids), rng.integers(2, 4, n_ids))
    t = lambda n: torch.as_tensor(rng.standard_normal((n, dim)), dtype=torch.float32)  # noqa: E731
    return ev.Embeddings(t(len(v_ids)), t(len(f_ids)), v_ids, f_ids, v_ids % 2, f_ids % 2)


def pairwise_head(k, dim=4, seed=0):
    torch.manual_seed(seed)
    base = MatchingClassifier(2, dim, head="pairwise")
    with torch.no_grad():
        base.net[-1].parametrizations.weight.original.normal_()
        base.net[-1].bias.fill_(0.3)
    head = MatchingClassifier(k, dim, head="pairwise")
    head.load_state_dict(base.state_dict())      # the pairwise weights do not depend on k
    return head.eval()


def brute_force(emb, direction, k, constrained, score):
    """Accuracy over every tuple: mean over anchors, positives, (k-1)-subsets of eligible
    identities and one item each (all enumerated), scored tuple by tuple with ``score``."""
    A, C = emb.sides(direction)
    rows, weights = [], []
    anchors = [a for a in range(len(A.ids)) if A.ids[a] in set(C.ids.tolist())]
    for a in anchors:
        pos = np.flatnonzero(C.ids == A.ids[a])
        others = [j for j in np.unique(C.ids) if j != A.ids[a]
                  and (not constrained or C.gender[C.ids == j][0] == A.gender[a])]
        subsets = list(itertools.combinations(others, k - 1))
        for p in pos:
            for T in subsets:
                items = [np.flatnonzero(C.ids == j) for j in T]
                n_items = np.prod([len(i) for i in items])
                w = 1.0 / (len(anchors) * len(pos) * len(subsets) * n_items)
                for negs in itertools.product(*items):
                    rows.append((a, p, *negs))
                    weights.append(w)
    t = torch.as_tensor(rows)
    s = score(A.x[t[:, 0]], C.x[t[:, 1:]]).double()                      # (n, k)
    # the positive beats every negative; a tie counts 1/2 per tied negative (the documented rule)
    win = ((s[:, :1] > s[:, 1:]).double() + 0.5 * (s[:, :1] == s[:, 1:]).double()).prod(1)
    return float(np.dot(weights, win.numpy())), len(rows)


def distance_score(anchor, cands):
    return ev.similarity(anchor[:, None], cands, "distance")


# ------------------------------------------------------------------------------ recurrence

def test_elementary_symmetric_matches_combinations():
    rng = np.random.default_rng(0)
    q = rng.random((7, 5))                                               # M = 7 values, 5 columns
    e = ex.elementary_symmetric(q, 7).numpy()
    for r in range(8):
        ref = [sum(np.prod(q[list(T), c]) for T in itertools.combinations(range(7), r))
               for c in range(5)]
        np.testing.assert_allclose(e[r], ref, rtol=1e-12)
    assert ex.elementary_symmetric(q[:, 0], 3).shape == (4,)
    np.testing.assert_allclose(ex.elementary_symmetric(np.full(5, 0.5), 2), [1, 2.5, 2.5])


# ------------------------------------------------------------------------------ brute force

@pytest.mark.parametrize("direction", ["vf", "fv"])
@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_exact_equals_every_tuple_distance(direction, constrained, k):
    emb = tiny_split(seed=k)
    if constrained and k == 4:       # 3 identities per gender: 2 same-gender others only
        with pytest.raises(ev.TooFewIdentities):
            ex.exact_matching(emb, direction, [k], constrained=True)
        with pytest.raises(ev.TooFewIdentities):
            ev.sample_tuples(*emb.sides(direction), k, 50, np.random.default_rng(0), True)
        return
    exact = ex.exact_matching(emb, direction, [k], constrained=constrained)
    ref, n = brute_force(emb, direction, k, constrained, distance_score)
    assert n > 100
    assert exact.value[k] == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("direction", ["vf", "fv"])
@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("k", [2, 3])
def test_exact_equals_every_tuple_pairwise_head(direction, constrained, k):
    emb = tiny_split(seed=10 + k)
    head = pairwise_head(k)

    def score(anchor, cands):
        with torch.no_grad():
            return head(anchor, cands)
    exact = ex.exact_matching(emb, direction, [k], "classifier", head, constrained)
    ref, _ = brute_force(emb, direction, k, constrained, score)
    assert exact.value[k] == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("per", [3, 17])            # the comparison and the binary-search counts
@pytest.mark.parametrize("k", [2, 3])
def test_exact_with_ties_and_many_items_per_identity(per, k):
    rng = np.random.default_rng(per + k)
    ids = np.repeat(np.arange(5 if per < 10 else 3), per)
    x = lambda: torch.as_tensor(rng.integers(0, 3, (len(ids), 2)),  # noqa: E731
                                dtype=torch.float32)
    emb = ev.Embeddings(x(), x(), ids, ids)                # integer points: many tied distances
    exact = ex.exact_matching(emb, "vf", [k]).value[k]
    ref, _ = brute_force(emb, "vf", k, False, distance_score)
    assert exact == pytest.approx(ref, abs=1e-12)


def test_pair_score_matrix_is_the_head_and_the_distance():
    emb = tiny_split()
    head = pairwise_head(2).train()                       # eval mode is used, then restored
    S = ex.pair_score_matrix(emb, "vf", "classifier", head)
    assert head.training
    head.eval()
    with torch.no_grad():
        ref = head(emb.voice, emb.face[None, :2].expand(len(emb.voice), -1, -1))  # 2 faces
    torch.testing.assert_close(S[:, :2].float(), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ex.pair_score_matrix(emb, "fv", "classifier", head), S.T)
    torch.testing.assert_close(ex.pair_score_matrix(emb, "vf").float(),
                               ev.similarity_matrix(emb.voice, emb.face), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="jointly"):
        ex.pair_score_matrix(emb, "vf", "classifier", MatchingClassifier(2, 4, head="concat"))


def test_ties_count_one_half():
    # identical embeddings: every candidate ties with the positive. k = 2: exactly the random
    # tie-break of the sampled protocol (1/2); k = 3: the product of halves, 1/4 (not 1/3).
    emb = ev.Embeddings(torch.zeros(8, 3), torch.zeros(8, 3), np.arange(8) % 4, np.arange(8) % 4)
    r = ex.exact_matching(emb, "vf", [2, 3])
    assert r.value[2] == pytest.approx(0.5) and r.value[3] == pytest.approx(0.25)
    tuples = ev.sample_tuples(*emb.sides("vf"), 2, 4000, np.random.default_rng(0))
    assert abs(ev.matching_accuracy(emb, tuples, "vf").mean() - 0.5) < 4 * np.sqrt(0.25 / 4000)


# ------------------------------------------------------------------------------ sampled tuples

@pytest.mark.parametrize("constrained", [False, True])
def test_exact_is_the_mean_of_sampled_tuples(constrained):
    rng = np.random.default_rng(3)
    n_ids = 16
    v_ids = np.repeat(np.arange(n_ids), rng.integers(2, 6, n_ids))
    f_ids = np.repeat(np.arange(n_ids), rng.integers(1, 5, n_ids))
    centres = rng.standard_normal((n_ids, 6))
    x = lambda ids: torch.as_tensor(centres[ids] + rng.standard_normal((len(ids), 6)),  # noqa: E731
                                    dtype=torch.float32)
    emb = ev.Embeddings(x(v_ids), x(f_ids), v_ids, f_ids, v_ids % 2, f_ids % 2)
    n = 40_000
    for d, k in (("vf", 2), ("fv", 5)):
        exact = ex.exact_matching(emb, d, [k], constrained=constrained).value[k]
        t = ev.sample_tuples(*emb.sides(d), k, n, np.random.default_rng(k), constrained)
        acc = ev.matching_accuracy(emb, t, d).mean()
        assert abs(acc - exact) < 4 * np.sqrt(exact * (1 - exact) / n), (d, k, acc, exact)


# ------------------------------------------------------------------------------ identities

def test_identity_weighted_mean_is_the_cell_value():
    emb = tiny_split(seed=5)
    r = ex.exact_matching(emb, "fv", [2, 3])
    for k in (2, 3):
        assert np.dot(r.weight, r.identity[k]) / r.weight.sum() == pytest.approx(r.value[k])
        assert r.value[k] == pytest.approx(r.anchor[k].mean())
    assert r.weight.sum() == len(r.anchors) == len(emb.face)
    lo, hi = ev.identity_bootstrap(r.identity[2], r.weight, 200, seed=1)
    assert lo <= r.value[2] <= hi
    assert ev.identity_bootstrap(r.identity[2], r.weight, 200, seed=1) == (lo, hi)
    assert ev.identity_bootstrap(np.full(4, 0.3), [1, 2, 3, 4], 50) == pytest.approx((0.3, 0.3))


# ------------------------------------------------------------------------------ verification

def test_verification_over_every_pair_matches_sklearn():
    emb = tiny_split(seed=7, n_ids=8)
    S = ex.pair_score_matrix(emb, "vf").numpy()
    res = ex.exact_verification(torch.as_tensor(S), emb.side("voice"), emb.side("face"),
                                ("U", "G"), n_boot=100, seed=0)
    same = emb.voice_ids[:, None] == emb.face_ids[None, :]
    same_gender = emb.voice_gender[:, None] == emb.face_gender[None, :]
    for kind, keep in (("U", np.ones_like(same)), ("G", same_gender)):
        s, y = S[keep], same[keep].astype(int)
        fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
        assert res[kind]["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert res[kind]["eer"] == pytest.approx(ev.eer_from_roc(fpr, tpr), abs=1e-12)
        assert res[kind]["n"] == keep.sum()
        for m in ("auc", "eer"):
            lo, hi = res[kind]["ci"][m]
            assert lo <= res[kind][m] <= hi


def test_verification_ties_count_one_half():
    s = np.round(np.random.default_rng(0).standard_normal(200), 1)       # many ties
    y = np.random.default_rng(1).random(200) < 0.3
    auc, eer = ex.roc_pos_neg(np.sort(s[y]), [np.sort(s[~y][:70]), np.sort(s[~y][70:])])
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    assert auc == pytest.approx(roc_auc_score(y, s))
    assert eer == pytest.approx(ev.eer_from_roc(fpr, tpr))


def test_retrieval_ap_from_the_score_matrix():
    emb = tiny_split(seed=2, n_ids=7)
    for d in ("vf", "fv"):
        q, g = emb.sides(d)
        S = ex.pair_score_matrix(emb, d)
        ap, kept = ex.retrieval_ap_scores(S, q.ids, g.ids, chunk=5)
        np.testing.assert_allclose(ap, ev.retrieval_ap(emb, d), atol=1e-6)
        assert len(kept) == len(ap)


# ------------------------------------------------------------------------------ evaluate_split

def medium_split(n_ids=24, per=3, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(n_ids), per)
    c = rng.standard_normal((n_ids, dim))
    x = lambda: torch.as_tensor(c[ids] + 0.8 * rng.standard_normal((len(ids), dim)),  # noqa: E731
                                dtype=torch.float32)
    return ev.Embeddings(x(), x(), ids, ids, ids % 2, ids % 2)


def test_evaluate_cells_are_exact_with_identity_table():
    emb = medium_split()
    cfg = smoke(eval_tuples=50, bootstrap=40, eval_ks=(2, 3, 10))
    model = types.SimpleNamespace(classifier=pairwise_head(3, dim=8))
    out = ev.evaluate_split(model, None, cfg, embeddings=emb)
    m, idt = out.metrics, out.identity
    assert list(m.columns) == ev.COLUMNS and list(idt.columns) == ev.IDENTITY_COLUMNS
    assert (m["method"] == "exact").all()
    mm = m[m.task == "matching"]
    assert set(mm[mm.scorer == "classifier"]["k"]) == {3}                # only at the head's k
    for r in mm.itertuples():
        d = {"V-F": "vf", "F-V": "fv"}[r.direction]
        exact = ex.exact_matching(emb, d, [r.k], r.scorer, model.classifier, r.protocol == "G")
        assert r.value == pytest.approx(exact.value[r.k], abs=1e-12) and r.n == len(emb.voice)
        assert r.ci_low <= r.value <= r.ci_high
        rows = idt[(idt.task == "matching") & (idt.direction == r.direction) & (idt.k == r.k)
                   & (idt.protocol == r.protocol) & (idt.scorer == r.scorer)]
        assert len(rows) == 24 and rows.weight.sum() == r.n
        assert np.dot(rows.value, rows.weight) / rows.weight.sum() == pytest.approx(r.value)
    for r in m[m.task == "retrieval"].itertuples():
        rows = idt[(idt.task == "retrieval") & (idt.direction == r.direction)]
        assert (rows.metric == "map").all()
        assert np.dot(rows.value, rows.weight) / rows.weight.sum() == pytest.approx(r.value)
        d = {"V-F": "vf", "F-V": "fv"}[r.direction]
        assert r.value == pytest.approx(ev.retrieval_map(emb, d), abs=1e-6)
    v = m[m.task == "verification"]
    assert set(v.protocol) == {"U", "G"} and (v.n[v.protocol == "U"] == 72 * 72).all()
    pd.testing.assert_frame_equal(ev.evaluate(model, None, cfg, embeddings=emb), m)


def test_jointly_scoring_head_keeps_a_sampled_estimate():
    emb = medium_split()
    cfg = smoke(eval_tuples=30, bootstrap=20, eval_ks=(2,))
    model = types.SimpleNamespace(classifier=MatchingClassifier(2, 8, head="concat").eval())
    m = ev.evaluate(model, None, cfg, embeddings=emb)
    clf = m[m.scorer == "classifier"]
    assert len(clf) == 4 and (clf.method == "sampled").all()
    assert (clf.n == ev.SAMPLED_FACTOR * 30).all()
    assert (m[m.scorer == "distance"].method == "exact").all()


def test_given_protocols_are_scored_as_listed():
    emb = medium_split()
    cfg = smoke(bootstrap=20)
    tuples = ev.sample_tuples(*emb.sides("vf"), 2, 40, np.random.default_rng(0))
    prot = ev.Protocols(matching={("vf", "U", 2): tuples}, retrieval=())
    out = ev.evaluate_split(None, None, cfg, prot, embeddings=emb)
    row = out.metrics.iloc[0]
    assert row.method == "listed" and row.n == 40
    assert row.value == pytest.approx(ev.matching_accuracy(emb, tuples, "vf", seed=ev._cell_seed(
        0, "vf", "U", 2)).mean())
    assert out.identity.weight.sum() == 40


# ------------------------------------------------------------------------------ wiring

def test_validation_is_exact(monkeypatch):
    from dsanet.engine.matching import MatchingTask

    emb = medium_split(seed=4)
    monkeypatch.setattr(ev, "embed_split", lambda model, cached, cfg: emb)
    task = MatchingTask(smoke(), None, "cpu")
    val = task.validate(None, None, smoke())
    vf = ex.exact_matching(emb, "vf", [2]).value[2]
    fv = ex.exact_matching(emb, "fv", [2]).value[2]
    assert val == pytest.approx({"val_vf": vf, "val_fv": fv, "val_score": (vf + fv) / 2})


def test_cached_run_writes_and_reads_the_identity_table(tmp_path, monkeypatch):
    from dsanet.engine.train import RunResult
    from dsanet.experiments import cache

    cfg = smoke(eval_ks=(2,), bootstrap=10)
    out = ev.evaluate_split(None, None, cfg, embeddings=medium_split())

    def fake_train(cfg, d, progress, snapshots):
        (d / "best.pt").write_bytes(b"")
        return RunResult(out.metrics, pd.DataFrame({"step": [1]}), d / "best.pt", d, 1, True,
                         identity=out.identity)
    monkeypatch.setattr(cache, "_train", fake_train)
    run = cache.cached_run(cfg, tmp_path)
    assert (run.dir / "identity.csv").is_file() and run.identity is out.identity
    again = cache.cached_run(cfg, tmp_path)
    assert again.cached and len(again.identity) == len(out.identity)
    assert list(again.identity.columns) == ev.IDENTITY_COLUMNS
    (run.dir / "identity.csv").unlink()                  # a run made before the table existed
    assert cache.cached_run(cfg, tmp_path).identity is None
    assert json.loads((run.dir / "done.json").read_text())["checkpoint"] == "best.pt"


def test_combinations_normalise_the_recurrence():
    # P(win) = e_{k-1}(q) / C(M, k-1): with every q = 1 the positive always wins
    q = torch.ones(9, 3, dtype=torch.float64)
    e = ex.elementary_symmetric(q, 4)
    for r in range(5):
        assert torch.allclose(e[r], torch.full((3,), float(math.comb(9, r)), dtype=torch.float64))
