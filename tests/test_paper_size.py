"""The paper profile at the paper's sizes trains, resumes exactly and evaluates, on the CPU.

ResNet18 backbones, 224 x 224 faces, 224-bin x 125-frame spectrograms, 32 x 12 x 12 maps,
generator 4608 -> 256 -> 128: the paper profile as it is, with only the budget made tiny (a batch
of 2 identities, 4 steps, few evaluation tuples) on the tiny tree of ``conftest``. On the CPU a
step takes about a second, so the run is stopped and resumed twice - once as a finished shorter
run continued to more steps, once interrupted in the middle (``max_steps_this_call``) - and must
end bit-identical (weights, history, test metrics) to an uninterrupted run of the same 4 steps;
its selected checkpoint is then evaluated again from disk. The device is ``cpu`` explicitly: the
paper profile's ``"auto"`` refuses to fall back to the CPU (a paper-size run takes days there).
Weights are never downloaded: ``pretrained`` None and ``backbone_init`` "scratch" (random init).
"""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from dsanet.config import get_profile, paper
from dsanet.engine import checkpoint as ckpt
from dsanet.engine import train as tr

STEPS = 4
PAPER_SIZES = dict(backbone="resnet18", face_size=224, spec_bins=224, spec_frames=125, n_fft=512,
                   channels=32, map_size=12, hidden_dim=256, embed_dim=128)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    from conftest import write_tree

    torch.set_num_threads(1)
    tree = write_tree(tmp_path_factory.mktemp("paper_tiny") / "data")
    return get_profile("paper", data_root=str(tree.root),
                       cache_dir=str(tmp_path_factory.mktemp("paper_cache")), device="cpu",
                       pretrained=None, backbone_init="scratch",   # no ImageNet weights to fetch
                       batch_size=2, steps=STEPS, schedule_steps=STEPS, eval_every=2,
                       eval_tuples=20, eval_ks=(2,), bootstrap=10, log_every=1)


@pytest.fixture(scope="module")
def uninterrupted(cfg, tmp_path_factory):
    return tr.train(cfg, tmp_path_factory.mktemp("paper_whole"), resume=False, progress=False)


def _weights(path) -> dict:
    return ckpt.load_checkpoint(path)["model"]


def test_the_profile_is_at_the_paper_sizes_and_auto_refuses_the_cpu(cfg, monkeypatch):
    assert cfg.profile == "paper"
    assert {k: getattr(cfg, k) for k in PAPER_SIZES} == PAPER_SIZES
    assert {k: getattr(paper(), k) for k in PAPER_SIZES} == PAPER_SIZES   # the profile's own
    from dsanet.engine.device import DeviceError, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="--device cpu"):
        resolve_device(cfg.replace(device="auto"))
    assert resolve_device(cfg) == torch.device("cpu")


@pytest.mark.slow
def test_paper_size_run_stops_resumes_and_equals_the_uninterrupted_one(cfg, uninterrupted,
                                                                       tmp_path):
    whole = uninterrupted
    assert whole.finished and whole.step == STEPS
    run = tmp_path / "run"
    first = tr.train(cfg.replace(steps=2), run, resume=False, progress=False)   # a shorter run
    assert first.finished and first.step == 2 and first.metrics is not None
    stopped = tr.train(cfg, run, progress=False, max_steps_this_call=1)   # more steps, stopped
    assert not stopped.finished and stopped.step == 3 and stopped.metrics is None
    resumed = tr.train(cfg, run, progress=False)                          # and resumed to the end
    assert resumed.finished and resumed.step == STEPS

    pd.testing.assert_frame_equal(whole.history, resumed.history, check_exact=True)
    pd.testing.assert_frame_equal(whole.metrics, resumed.metrics, check_exact=True)
    for name in ("last.pt", "best.pt"):
        a, b = _weights(whole.run_dir / name), _weights(run / name)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    state = ckpt.load_checkpoint(run / "last.pt")
    assert state["step"] == STEPS and state["config"]["steps"] == STEPS

    # the model is two ResNet18 trunks (11.2 M parameters each)
    model = ckpt.load_network(run / "best.pt", "cpu")[0]
    assert [type(m).__name__ for m in model.modules()].count("ResNet18Trunk") == 2
    for trunk in ("face_backbone", "voice_backbone"):
        assert sum(v.numel() for k, v in b.items() if k.startswith(trunk + ".")) > 11e6, trunk


@pytest.mark.slow
def test_the_selected_paper_size_checkpoint_evaluates_from_disk(cfg, uninterrupted):
    metrics, saved, step = tr.evaluate_checkpoint(uninterrupted.checkpoint, device="cpu",
                                                  data_root=cfg.data_root,
                                                  cache_dir=cfg.cache_dir)
    assert saved.profile == "paper" and saved.face_size == 224 and saved.backbone == "resnet18"
    assert step == uninterrupted.history.loc[uninterrupted.history.val_score.idxmax(), "step"]
    pd.testing.assert_frame_equal(metrics.reset_index(drop=True),
                                  uninterrupted.metrics.reset_index(drop=True), check_exact=True)
    m = metrics.set_index(["task", "direction", "protocol", "k"])
    assert set(m.index.get_level_values("direction")) == {"V-F", "F-V"}
    assert metrics["value"].between(0, 1).all() and (metrics["n"] > 0).all()
