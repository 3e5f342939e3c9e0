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


# ----------------------------------------------------------------------------- devices (issue 23)

def _saved_run_state(tmp_path, gens):
    """A checkpoint with weights and every random stream, and the draws that follow it."""
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    _draws(gens)
    path = ckpt.save_checkpoint({"model": {"w": torch.arange(4.0)}, "rng": ckpt.rng_state(gens)},
                                tmp_path / "last.pt")
    return path, _draws(gens)


def test_a_checkpoint_mapped_to_another_device_restores_random_states_from_the_cpu(tmp_path):
    """``meta`` stands in for CUDA: weights go there, random states stay on the CPU."""
    gens = {"t": torch.Generator().manual_seed(5), "n": np.random.default_rng(6)}
    path, expected = _saved_run_state(tmp_path, gens)
    _draws(gens)
    state = ckpt.load_checkpoint(path, map_location="meta")
    assert state["model"]["w"].device.type == "meta"
    assert state["rng"]["torch"].device.type == "cpu"
    assert state["rng"]["generators"]["t"]["state"].device.type == "cpu"
    fresh = {"t": torch.Generator(), "n": np.random.default_rng()}
    ckpt.set_rng_state(state["rng"], fresh)
    assert _draws(fresh) == expected


def test_states_mapped_by_hand_are_read_from_cpu_copies_or_refused_clearly(tmp_path):
    gens = {"t": torch.Generator().manual_seed(5), "n": np.random.default_rng(6)}
    path, expected = _saved_run_state(tmp_path, gens)
    raw = torch.load(path, map_location="meta", weights_only=True)   # as torch.load(map_location="cuda")
    with pytest.raises(ckpt.CheckpointError, match="'torch' is on the meta device"):
        ckpt.set_rng_state(raw["rng"], {"t": torch.Generator(), "n": np.random.default_rng()})
    # a state handed over in another dtype is converted to the CPU ByteTensor torch wants
    rng = ckpt.load_checkpoint(path)["rng"]
    rng["torch"] = rng["torch"].to(torch.int16)
    fresh = {"t": torch.Generator(), "n": np.random.default_rng()}
    ckpt.set_rng_state(rng, fresh)
    assert _draws(fresh) == expected


def test_a_generator_saved_on_another_device_type_is_reseeded_deterministically(tmp_path):
    """The rule: the saved state only into a generator of its device type, else a seed derived
    from it, with a warning naming the generator and both devices."""
    gens = {"t": torch.Generator().manual_seed(5), "n": np.random.default_rng(6)}
    path, expected = _saved_run_state(tmp_path, gens)
    state = ckpt.load_checkpoint(path)
    assert state["rng"]["generators"]["t"]["device"] == "cpu"
    cuda_like = torch.tensor(list(range(16)), dtype=torch.uint8)     # a CUDA generator: seed, offset
    state["rng"]["generators"]["t"] = {"kind": "torch", "state": cuda_like, "device": "cuda"}
    draws = []
    for _ in range(2):
        fresh = {"t": torch.Generator(), "n": np.random.default_rng()}
        with pytest.warns(ckpt.RandomStateWarning, match="'t'.*saved on cuda.*generator on cpu"):
            ckpt.set_rng_state(state["rng"], fresh)
        draws.append(_draws(fresh))
    assert draws[0] == draws[1]                                          # same reseed each time
    assert draws[0][:3] == expected[:3] and draws[0][4] == expected[4]   # every other stream exact
    assert draws[0][3] != expected[3]
    # a checkpoint from before the device was recorded: a state of the wrong size is reseeded too
    del state["rng"]["generators"]["t"]["device"]
    with pytest.warns(ckpt.RandomStateWarning, match="another device type"):
        ckpt.set_rng_state(state["rng"], {"t": torch.Generator(), "n": np.random.default_rng()})
    # ... and one that fits is restored exactly, without a warning
    old = ckpt.load_checkpoint(path)["rng"]
    del old["generators"]["t"]["device"]
    fresh = {"t": torch.Generator(), "n": np.random.default_rng()}
    ckpt.set_rng_state(old, fresh)
    assert _draws(fresh) == expected


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_checkpoint_mapped_to_the_gpu_and_a_cuda_generator_resume_exactly(tmp_path):
    gens = {"t": torch.Generator("cuda").manual_seed(5), "n": np.random.default_rng(6)}
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    path = ckpt.save_checkpoint({"model": {"w": torch.arange(4.0)}, "rng": ckpt.rng_state(gens)},
                                tmp_path / "last.pt")
    expected = [torch.rand(3).tolist(), torch.rand(2, device="cuda").tolist(),
                torch.rand(2, generator=gens["t"], device="cuda").tolist()]
    state = ckpt.load_checkpoint(path, map_location="cuda")
    assert state["model"]["w"].is_cuda and not state["rng"]["torch"].is_cuda
    fresh = {"t": torch.Generator("cuda"), "n": np.random.default_rng()}
    ckpt.set_rng_state(state["rng"], fresh)
    assert [torch.rand(3).tolist(), torch.rand(2, device="cuda").tolist(),
            torch.rand(2, generator=fresh["t"], device="cuda").tolist()] == expected
    with pytest.warns(ckpt.RandomStateWarning, match="saved on cuda"):
        ckpt.set_rng_state(state["rng"], {"t": torch.Generator(), "n": np.random.default_rng()})
