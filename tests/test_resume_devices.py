"""Resume on another device or cache placement (issue 23, item 1), on the CPU.

A run stopped after 4 steps and resumed with another device setting and its cache in another
folder ends bit-identical to an uninterrupted run, its random states read from CPU copies (a
checkpoint mapped to another device: tests/test_checkpoint.py, with ``meta`` standing in for CUDA). A checkpoint whose batch generator was saved on another
device type (a cache that sat on the GPU, resumed with the cache on the host) resumes with a
warning and a deterministic reseed of that generator: the steps before the resume are the
uninterrupted run's, and two such resumes give the same run.
"""
from __future__ import annotations

import shutil

import pandas as pd
import pytest
import torch

from dsanet.config import smoke
from dsanet.engine import checkpoint as ckpt
from dsanet.engine import train as tr


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    from dsanet.data.synthetic import SMOKE, generate

    torch.set_num_threads(1)
    root = tmp_path_factory.getbasetemp() / "dsanet-smoke-benchmark"   # shared with test_train
    if not (root / "calibration.json").exists():
        generate(root, **SMOKE)
    return smoke(data_root=str(root), eval_ks=(2,), bootstrap=20, steps=7, eval_every=3,
                 log_every=2, device="cpu")


@pytest.fixture(scope="module")
def reference(cfg, tmp_path_factory):
    return tr.train(cfg, tmp_path_factory.mktemp("reference"), progress=False)


def test_resume_under_another_placement_is_exact(reference, cfg, tmp_path, monkeypatch):
    run = tmp_path / "run"
    tr.train(cfg, run, progress=False, max_steps_this_call=4)
    seen = []
    real = ckpt.load_checkpoint

    def spy(path, map_location="cpu"):
        state = real(path, map_location=map_location)
        if "rng" in state:   # last.pt (best.pt holds weights only)
            seen.append((map_location, state["rng"]["torch"].device.type,
                         {g["state"].device.type for g in state["rng"]["generators"].values()
                          if g["kind"] == "torch"}))
        return state

    monkeypatch.setattr(ckpt, "load_checkpoint", spy)
    moved = cfg.replace(device="auto", cache_dir=str(tmp_path / "elsewhere"))   # auto: CPU here
    resumed = tr.train(moved, run, progress=False)
    assert seen == [("cpu", "cpu", {"cpu"})]          # read on the host, states from CPU copies
    pd.testing.assert_frame_equal(reference.history, resumed.history, check_exact=True)
    pd.testing.assert_frame_equal(reference.metrics, resumed.metrics, check_exact=True)


def test_a_generator_saved_on_another_device_is_reseeded_and_the_run_goes_on(reference, cfg,
                                                                            tmp_path):
    first = tmp_path / "a"
    tr.train(cfg, first, progress=False, max_steps_this_call=4)
    state = ckpt.load_checkpoint(first / "last.pt")
    assert state["rng"]["generators"]["batch"]["device"] == "cpu"
    # as if the cache (and the batch generator on its device) had been on a GPU
    state["rng"]["generators"]["batch"] = {"kind": "torch", "device": "cuda",
                                           "state": torch.arange(16, dtype=torch.uint8)}
    ckpt.save_checkpoint(state, first / "last.pt")
    second = tmp_path / "b"
    shutil.copytree(first, second)
    runs = []
    for folder in (first, second):
        with pytest.warns(ckpt.RandomStateWarning, match="'batch'.*saved on cuda"):
            runs.append(tr.train(cfg, folder, progress=False))
    assert all(r.finished and r.step == cfg.steps for r in runs)
    pd.testing.assert_frame_equal(runs[0].history, runs[1].history, check_exact=True)
    pd.testing.assert_frame_equal(runs[0].history[runs[0].history.step <= 4],
                                  reference.history[reference.history.step <= 4], check_exact=True)
    assert not runs[0].history.equals(reference.history)   # other batches after the resume
