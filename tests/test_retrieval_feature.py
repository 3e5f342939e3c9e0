"""What C_R of eq. (26) reads (``cfg.retrieval_feature``): values worked out by hand."""
from __future__ import annotations

import math

import pytest
import torch

from dsanet import losses as L
from dsanet.config import Config


def _bce(x: float, y: int) -> float:
    """Binary cross-entropy of one logit, written out: log(1 + e^x) - y x."""
    return math.log1p(math.exp(x)) - y * x


def _head(diff: torch.Tensor) -> torch.Tensor:
    """A linear C_R with weights (1, -1) and no bias: (..., 2) -> (...)."""
    return diff[..., 0] - diff[..., 1]


H_VOICE = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])      # (S=1, B=2, D=2)
H_FACE = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])
LABELS = torch.tensor([0, 1])                            # pair i: voice i and face i, one identity


@pytest.mark.parametrize("feature, logits", [
    # |v_i - f_j|: (0,0) (1,0) -> 1; (0,1) (0,1) -> -1; (1,0) (0,2) -> -2; (1,1) (1,1) -> 0
    ("absolute", [[1.0, -1.0], [-2.0, 0.0]]),
    # v_i - f_j: (0,0) (1,0) -> 1; (0,1) (0,-1) -> 1; (1,0) (0,2) -> -2; (1,1) (-1,1) -> -2
    ("difference", [[1.0, 1.0], [-2.0, -2.0]]),
])
def test_retrieval_cls_reads_the_chosen_feature(feature, logits):
    want = sum(_bce(logits[i][j], int(i == j)) for i in range(2) for j in range(2)) / 2
    got = L.retrieval_cls(H_VOICE, H_FACE, LABELS, _head, feature)
    assert float(got) == pytest.approx(want, rel=1e-6)


def test_the_absolute_feature_is_symmetric_in_the_two_modalities():
    """|v - f| = |f - v|: swapping voices and faces leaves the loss unchanged."""
    a = L.retrieval_cls(H_VOICE, H_FACE, LABELS, _head, "absolute")
    b = L.retrieval_cls(H_FACE, H_VOICE, LABELS, _head, "absolute")
    assert float(a) == pytest.approx(float(b))


def test_config_default_and_validation():
    assert Config().retrieval_feature == "absolute"
    with pytest.raises(ValueError, match="retrieval_feature"):
        Config(retrieval_feature="signed")
    with pytest.raises(ValueError, match="feature"):
        L.retrieval_cls(H_VOICE, H_FACE, LABELS, _head, "signed")


# ----------------------------------------------------------------------------- init_from (Sec. III-E)

def test_retrieval_run_starts_from_the_matching_checkpoint(tmp_path, smoke_cfg):
    """``init_from``: every weight of the checkpoint is loaded; the centres (absent) stay zero."""
    from dsanet.engine import checkpoint as ck
    from dsanet.engine.build import build_model
    from dsanet.engine.retrieval import RetrievalTask, retrieval_profile
    from dsanet.models.dsanet import DSANet

    torch.manual_seed(123)
    matching = DSANet(smoke_cfg)                               # another seed than the run's
    path = ck.save_checkpoint({"model": matching.state_dict(), "config": smoke_cfg.to_dict(),
                               "step": 1}, tmp_path / "best.pt")
    cfg = retrieval_profile(smoke_cfg).replace(init_from=str(path))
    task = RetrievalTask(cfg, None, "cpu")
    model = build_model(cfg, task, torch.device("cpu"))
    want = matching.state_dict()
    for k, v in model.state_dict().items():
        if k == "centres":
            assert (v == 0).all()
        else:
            assert torch.equal(v, want[k]), k
    fresh = build_model(cfg.replace(init_from=None), task, torch.device("cpu"))
    assert any(not torch.equal(v, want[k]) for k, v in fresh.state_dict().items()
               if k != "centres" and v.is_floating_point())            # without it: own init
    from dsanet.engine.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match="missing.pt: no such checkpoint"):
        build_model(cfg.replace(init_from=str(tmp_path / "missing.pt")), task, torch.device("cpu"))


def test_headline_retrieval_fine_tunes_the_k2_run_of_its_seed(tmp_path):
    from dsanet import analysis
    from dsanet.config import smoke
    from dsanet.experiments import run_dir

    cfgs = analysis.headline_configs(smoke(), [0, 1], runs_root=tmp_path)
    for k2, ret in zip(cfgs["matching k=2"], cfgs["retrieval"]):
        assert ret.task == "retrieval" and ret.seed == k2.seed
        assert ret.init_from == str(run_dir(k2, tmp_path) / "best.pt")
    assert all(c.init_from is None for c in analysis.headline_configs(smoke(), [0])["retrieval"])


def test_published_rows_share_one_run_only_when_it_evaluates_once(tmp_path):
    from dsanet import analysis
    from dsanet.config import smoke
    from dsanet.experiments import run_dir

    cfg = smoke()                                               # 6 steps
    once = analysis.headline_configs(cfg.replace(eval_every=100), [0])
    pub, val = once["published"][0], once["published, val"][0]
    assert pub.eval_every == pub.steps                          # one evaluation, at the last step
    assert run_dir(pub, tmp_path) == run_dir(val, tmp_path)     # one run read by both rows
    several = analysis.headline_configs(cfg.replace(eval_every=3), [0])
    pub, val = several["published"][0], several["published, val"][0]
    assert (pub.select_on, val.select_on) == ("test", "val")    # several evaluations: two runs
    assert run_dir(pub, tmp_path) != run_dir(val, tmp_path)


def test_headline_runs_are_one_call_and_a_fine_tune_starts_right_after_its_source(tmp_path, monkeypatch):
    from dsanet import analysis
    from dsanet.analysis import headline as hl
    from dsanet.config import smoke
    from dsanet.experiments import executors, run_dir, sweep

    calls = []
    monkeypatch.setattr(hl, "run_many", lambda cfgs, root, workers, snapshots=(): calls.append(len(cfgs)))
    monkeypatch.setattr(hl, "cached_run", lambda c, root: c)
    cfg = smoke()
    n = sum(len(cs) for cs in analysis.headline_configs(cfg, [0, 1], runs_root=tmp_path).values())
    analysis.headline_runs(cfg, [0, 1], tmp_path)
    assert calls == [n]                            # one pool; run_many orders the dependants

    order = []
    monkeypatch.setattr(executors, "train_one",
                        lambda job: order.append(job.cfg["seed"]) or (str(job.cfg["seed"]), 0.0, False))
    a, c = cfg.replace(seed=1, steps=60), cfg.replace(seed=2, steps=50)   # a is longer: first
    b = cfg.replace(seed=3, task="retrieval", init_from=str(run_dir(a, tmp_path) / "best.pt"))
    assert sweep.run_many([b, c, a], tmp_path, workers=1, log=None) == 3
    assert order == [1, 3, 2]                      # b waits for a, then goes ahead of c
