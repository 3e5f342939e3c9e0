"""Atomic checkpoint files and the random-stream states they carry."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from dsanet.engine import checkpoint as ckpt


def _draws(gens: dict) -> list:
    """One number from every random stream a run uses."""
    return [torch.rand(3).tolist(), np.random.rand(3).tolist(), random.random(),
            torch.rand(2, generator=gens["t"]).tolist(),
            gens["n"].random(2).tolist()]


def test_state_roundtrip_with_weights_only(tmp_path):
    state = {"step": 7, "model": {"w": torch.arange(6.0).view(2, 3)},
             "history": {"total": [1.5, float("nan")]},
             "best": {"step": 3, "score": 0.5}, "name": "x", "none": None,
             "rng": ckpt.rng_state({"t": torch.Generator().manual_seed(1),
                                    "n": np.random.default_rng(2)})}
    path = ckpt.save_checkpoint(state, tmp_path / "last.pt")
    raw = torch.load(path, weights_only=True)                    # plain types only
    back = ckpt.load_checkpoint(path)
    assert raw["format"] == back["format"] == ckpt.FORMAT
    assert torch.equal(back["model"]["w"], state["model"]["w"])
    assert back["step"] == 7 and back["best"] == {"step": 3, "score": 0.5} and back["none"] is None
    assert back["history"]["total"][0] == 1.5 and np.isnan(back["history"]["total"][1])
    assert list(tmp_path.iterdir()) == [path]                    # no temporary file left


def test_rng_state_restores_every_stream(tmp_path):
    gens = {"t": torch.Generator().manual_seed(5), "n": np.random.default_rng(6)}
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    _draws(gens)
    ckpt.save_checkpoint({"rng": ckpt.rng_state(gens)}, tmp_path / "s.pt")
    expected = _draws(gens)
    _draws(gens)                                                  # move every stream on
    fresh = {"t": torch.Generator(), "n": np.random.default_rng()}
    ckpt.set_rng_state(ckpt.load_checkpoint(tmp_path / "s.pt")["rng"], fresh)
    assert _draws(fresh) == expected


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = ckpt.save_checkpoint({"step": 1}, tmp_path / "last.pt")
    before = path.read_bytes()
    real_save = torch.save

    def half_then_fail(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint({"step": 2}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert ckpt.load_checkpoint(path)["step"] == 1


def test_bad_files_raise_errors_naming_them(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="missing.pt: no such checkpoint"):
        ckpt.load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ckpt.CheckpointError, match="junk.pt: cannot read"):
        ckpt.load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(ckpt.CheckpointError, match="other.pt: not a dsanet checkpoint"):
        ckpt.load_checkpoint(other)


def test_unknown_generator_kind_is_refused():
    with pytest.raises(TypeError, match="'g'"):
        ckpt.rng_state({"g": random.Random(0)})
