"""The trainer on the smoke profile: alternating updates, clipping, schedules, determinism, resume,
the NaN guard, model selection and the retrieval task.

Data: the synthetic benchmark's smoke preset, generated once per session under pytest's base
temporary folder (shared with the other engine test files).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from dsanet import losses
from dsanet.config import smoke
from dsanet.engine import train as tr
from dsanet.engine.optim import default_milestones, lr_factor
from dsanet.engine.retrieval import retrieval_profile


def smoke_root(tmp_path_factory):
    """The smoke benchmark, generated on first use in the session's base temp folder."""
    from dsanet.data.synthetic import SMOKE, generate

    root = tmp_path_factory.getbasetemp() / "dsanet-smoke-benchmark"
    if not (root / "calibration.json").exists():
        generate(root, **SMOKE)
    return root


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    torch.set_num_threads(1)
    return smoke(data_root=str(smoke_root(tmp_path_factory)), eval_ks=(2,), bootstrap=20,
                 steps=7, eval_every=3, log_every=2)


@pytest.fixture(scope="module")
def reference(cfg, tmp_path_factory):
    """One uninterrupted run of ``cfg`` (seed 0)."""
    return tr.train(cfg, tmp_path_factory.mktemp("reference"), progress=False)


def assert_same_run(a, b):
    pd.testing.assert_frame_equal(a.history, b.history, check_exact=True)
    pd.testing.assert_frame_equal(a.metrics, b.metrics, check_exact=True)


# ----------------------------------------------------------------------------- schedules

def test_exp_schedule_reaches_final_ratio():
    c = smoke(steps=11, lr_schedule="exp", lr_final_ratio=0.01)
    f = lr_factor(c)
    assert f(0) == 1.0
    assert f(5) == pytest.approx(0.1)          # halfway on a log scale: sqrt(0.01)
    assert f(10) == pytest.approx(0.01)
    assert f(50) == pytest.approx(0.01)        # stays at the floor past the end


def test_a_run_stopped_early_follows_the_longer_schedule():
    """schedule_steps=T: step t of a 3-step run has the factor of step t of a 21-step schedule."""
    f = lr_factor(smoke(steps=3, schedule_steps=21, lr_schedule="exp", lr_final_ratio=0.01))
    assert [f(t) for t in (0, 1, 2)] == pytest.approx([1.0, 0.01 ** 0.05, 0.01 ** 0.1])
    g = lr_factor(smoke(steps=3, schedule_steps=1200, lr_schedule="step"))
    assert g(2) == 1.0                          # milestones 600 / 1000 of the 1,200-step schedule


def test_step_schedule_and_paper_retrieval_milestones():
    f = lr_factor(smoke(steps=1200, lr_schedule="step", lr_milestones=(600, 1000), lr_gamma=0.1))
    assert [f(t) for t in (0, 599, 600, 999, 1000, 1199)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01])
    assert default_milestones(1200) == [600, 1000]
    assert default_milestones(12) == [6, 10]
    paper_r = retrieval_profile(smoke(profile="paper"))
    assert (paper_r.batch_size, paper_r.steps, paper_r.lr_milestones) == (128, 1200, (600, 1000))


def test_history_lrs_follow_the_schedule(reference, cfg):
    h = reference.history
    assert list(h.step) == list(range(1, cfg.steps + 1))
    expected = cfg.lr_generator * cfg.lr_final_ratio ** ((h.step - 1) / (cfg.steps - 1))
    np.testing.assert_allclose(h.lr_generator, expected, rtol=1e-6)
    np.testing.assert_allclose(h.lr_discriminator / h.lr_generator,
                               cfg.lr_discriminator / cfg.lr_generator, rtol=1e-6)


# ----------------------------------------------------------------------------- one step

@pytest.fixture
def trainer(cfg, tmp_path):
    t = tr.Trainer(cfg, tmp_path, progress=False)
    tr.set_train_mode(t.model, cfg.freeze_bn)
    return t


def _snapshot(params):
    return [p.detach().clone() for p in params]


def _changed(before, params):
    return [not torch.equal(b, p.detach()) for b, p in zip(before, params)]


def test_discriminator_step_moves_only_the_discriminator(trainer):
    st = trainer.stepper
    parts = trainer.next_batch()
    outs = st.forward(trainer.task.method, [a for a, _ in parts], st.dem_gen)
    gen0, disc0 = _snapshot(st.gen_params), _snapshot(st.disc_params)
    st.discriminator_step(outs)
    assert not any(_changed(gen0, st.gen_params))
    assert all(_changed(disc0, st.disc_params))
    assert all(p.grad is None for p in st.disc_params)                # zeroed after its step
    disc1 = _snapshot(st.disc_params)
    st.generator_step(outs, [t for _, t in parts])
    assert not any(_changed(disc1, st.disc_params))                   # frozen: no step, no grad
    assert all(p.grad is None for p in st.disc_params)
    assert sum(_changed(gen0, st.gen_params)) > 0.9 * len(st.gen_params)


def test_gradient_clipping_really_clips(cfg, tmp_path):
    t = tr.Trainer(cfg.replace(grad_clip=1e-3), tmp_path, progress=False)
    tr.set_train_mode(t.model, False)
    row = t.train_step()
    pre_clip = row[tr.TERMS.index("grad_norm")].item()
    post_clip = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in t.stepper.gen_params
                              if p.grad is not None))
    assert pre_clip > 1e-2                     # the raw norm is far above the limit ...
    assert post_clip == pytest.approx(1e-3, rel=1e-3)   # ... and the stepped gradient is at it


def test_wgan_critic_weights_are_clipped(cfg, tmp_path):
    t = tr.Trainer(cfg.replace(adversarial="wgan", wgan_clip=0.005), tmp_path, progress=False)
    tr.set_train_mode(t.model, False)
    t.train_step()
    assert max(float(p.abs().max()) for p in t.stepper.disc_params) <= 0.005


def test_unused_heads_are_frozen_and_not_optimised(trainer):
    st = trainer.stepper
    opt_params = {id(p) for g in st.opt_gen.param_groups for p in g["params"]}
    assert not any(id(p) in opt_params for p in trainer.model.retrieval_head.parameters())
    assert all(id(p) in opt_params for p in trainer.model.classifier.parameters())
    assert [g["name"] for g in st.opt_gen.param_groups] == ["backbone", "generator", "classifier"]
    assert [g["lr"] for g in st.opt_gen.param_groups] == [
        trainer.cfg.lr_backbone, trainer.cfg.lr_generator, trainer.cfg.lr_classifier]
    assert st.opt_disc.param_groups[0]["betas"] == trainer.cfg.disc_betas
    assert st.opt_gen.param_groups[0]["weight_decay"] == trainer.cfg.weight_decay


def test_modality_accuracy_by_hand():
    z = torch.tensor([[[2.0, 1.0], [0.0, 3.0], [5.0, -1.0]]])          # (S=1, M=3, 2)
    assert tr.modality_accuracy(z, torch.tensor([0, 1, 1])).item() == pytest.approx(2 / 3)
    critic = torch.tensor([[[0.5], [-0.2]]])                             # voice when > 0
    assert tr.modality_accuracy(critic, torch.tensor([1, 1])).item() == pytest.approx(0.5)


# ----------------------------------------------------------------------------- whole runs

def test_run_writes_history_checkpoints_and_metrics(reference, cfg):
    run = reference.run_dir
    assert reference.finished and reference.checkpoint == run / "best.pt"
    for name in ("last.pt", "best.pt", "history.csv"):
        assert (run / name).is_file()
    assert not list(run.glob(".*.tmp"))
    h = pd.read_csv(run / "history.csv")
    for col in tr.TERMS + ("lr_backbone", "lr_generator", "lr_classifier", "lr_discriminator",
                           "val_vf", "val_fv", "val_score"):
        assert col in h.columns
    assert list(h.step[h.val_score.notna()]) == [3, 6, 7]    # every eval_every steps and the end
    assert np.isfinite(h[list(tr.GUARDED)].to_numpy()).all()
    m = reference.metrics
    assert set(m.task) == {"matching", "verification", "retrieval"}
    assert (m.ci_low <= m.value).all() and (m.value <= m.ci_high).all()
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["step"] == h.step[h.val_score.idxmax()]       # first step with the best score


def test_same_seed_same_run_other_seed_other_run(reference, cfg, tmp_path):
    again = tr.train(cfg, tmp_path / "again", progress=False)
    assert_same_run(reference, again)
    other = tr.train(cfg.replace(seed=1), tmp_path / "other", progress=False, max_steps_this_call=2)
    assert not np.array_equal(other.history.total, reference.history.total[:2])


class Crash(Exception):
    pass


def test_crash_and_resume_is_bit_identical(reference, cfg, tmp_path):
    def crash_at_5(step):
        if step == 5:
            raise Crash
    with pytest.raises(Crash):
        tr.train(cfg, tmp_path, progress=False, on_step=crash_at_5)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["step"] == 3   # last eval step
    resumed = tr.train(cfg, tmp_path, progress=False)
    assert_same_run(reference, resumed)


def test_stop_and_resume_is_bit_identical(reference, cfg, tmp_path):
    part = tr.train(cfg, tmp_path, progress=False, max_steps_this_call=4)
    assert (part.finished, part.step, part.metrics) == (False, 4, None)
    assert_same_run(reference, tr.train(cfg, tmp_path, progress=False))


def test_resume_refuses_another_config_and_no_resume_starts_afresh(reference, cfg, tmp_path):
    tr.train(cfg, tmp_path, progress=False, max_steps_this_call=1)
    with pytest.raises(tr.ConfigMismatch, match="lr_backbone"):
        tr.train(cfg.replace(lr_backbone=1e-2), tmp_path, progress=False)
    fresh = tr.train(cfg.replace(lr_backbone=1e-2), tmp_path, resume=False, progress=False,
                     max_steps_this_call=1)
    assert fresh.step == 1 and len(fresh.history) == 1


def test_nan_guard_names_the_step_and_term(cfg, tmp_path, monkeypatch):
    cfg = cfg.replace(sampling="tuple")                   # per-tuple parts go through matching_total
    real, calls = losses.matching_total, {"n": 0}
    parts_per_step = 2                                    # direction "both": vf and fv halves

    def poisoned(*args, **kwargs):
        out = real(*args, **kwargs)
        calls["n"] += 1
        if (calls["n"] - 1) // parts_per_step + 1 == 3:   # the two calls of step 3
            out = dict(out, metric=out["metric"] * float("nan"), total=out["total"] * float("nan"))
        return out

    monkeypatch.setattr(losses, "matching_total", poisoned)
    with pytest.raises(tr.NonFiniteLoss, match=r"step 3: metric=nan") as err:
        tr.train(cfg.replace(log_every=5, eval_every=100), tmp_path, progress=False)
    assert err.value.step == 3 and list(err.value.terms)[0] == "metric"
    assert "adversarial" not in err.value.terms and "cls" not in err.value.terms


def test_select_on_test_is_allowed_with_a_warning(cfg, tmp_path):
    with pytest.warns(UserWarning, match="TEST split"):
        t = tr.Trainer(cfg.replace(select_on="test"), tmp_path, progress=False)
    assert t.select_set.split == "test"
    with pytest.raises(ValueError, match="select_on"):
        tr.Trainer(cfg.replace(select_on="train"), tmp_path, progress=False)


def test_retrieval_run(cfg, tmp_path):
    rcfg = retrieval_profile(cfg.replace(batch_size=8))
    assert rcfg.lr_schedule == "step" and rcfg.lr_milestones == (4, 6)
    res = tr.train(rcfg, tmp_path, progress=False)
    h = res.history
    assert np.isfinite(h[list(tr.GUARDED)].to_numpy()).all()
    t = h.step - 1                                        # the scheduler's step count
    np.testing.assert_allclose(h.lr_generator, cfg.lr_generator * 0.1 ** ((t >= 4).astype(int) + (t >= 6).astype(int)),
                               rtol=1e-6)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    n_ids = pd.read_csv(rcfg.data_root + "/meta.csv").shape[0]
    assert state["model"]["centres"].shape == (2, n_ids, rcfg.embed_dim)
    assert state["model"]["centres"].abs().sum() > 0                      # centres were trained
    assert h.val_score.notna().sum() == 3
