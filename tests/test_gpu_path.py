"""The GPU path, what a CPU can check (issue 23, item 4): the paper profile's refusal to fall back
to the CPU silently, the CUDA settings, the rule for a batch the ranks do not divide, and the
wiring of the mixed-precision modes (``cfg.amp`` = "bf16" | "fp16" | "off")."""
from __future__ import annotations

import contextlib
import logging
import warnings

import pytest
import torch

from dsanet.__main__ import main
from dsanet.config import Config, ConfigError, paper, quick, smoke
from dsanet.engine import cli
from dsanet.engine import device as dv
from dsanet.engine import distributed as dist

CUDA = torch.device("cuda")
CPU = torch.device("cpu")


@pytest.fixture()
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture()
def fake_gpu(monkeypatch):
    """CUDA said to be there (nothing is run on it); the backend flags restored afterwards."""
    flags = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv(dv.DETERMINISTIC_ENV, raising=False)
    yield
    (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
     torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) = flags


# ----------------------------------------------------------------------------- device="auto"

def test_paper_profile_refuses_to_fall_back_to_the_cpu(no_gpu):
    with pytest.raises(dv.DeviceError) as e:
        dv.resolve_device(paper())
    msg = str(e.value)
    assert f"torch {torch.__version__}" in msg
    assert (f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build") in msg
    assert "0 usable GPU(s)" in msg and "--device cpu" in msg
    assert dv.resolve_device(paper(device="cpu")) == CPU              # insisting works


def test_smoke_and_quick_still_fall_back_and_evaluation_may(no_gpu, caplog):
    assert dv.resolve_device(smoke()) == dv.resolve_device(quick()) == CPU
    assert dv.resolve_device("auto") == CPU                            # a bare name: no profile
    with caplog.at_level(logging.WARNING, logger="dsanet"):
        assert dv.resolve_device(paper(), fallback=True) == CPU       # load_network's choice
    assert "no usable GPU" in caplog.text
    with pytest.raises(dv.DeviceError):
        dv.resolve_device(smoke(), fallback=False)
    with pytest.raises(dv.DeviceError, match="'cuda' asked for.*--device cpu"):
        dv.resolve_device(smoke(device="cuda"))


def test_train_command_stops_with_one_line(no_gpu, tiny_tree, tmp_path, capsys):
    code = main(["train", "--profile", "paper", "--data", str(tiny_tree.root),
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "needs a usable GPU" in err
    assert "--device cpu" in err and torch.__version__ in err


def test_cuda_gets_benchmark_and_tf32_unless_determinism_is_asked_for(fake_gpu, monkeypatch):
    assert dv.resolve_device(quick()) == CUDA
    assert torch.backends.cudnn.benchmark and torch.backends.cuda.matmul.allow_tf32
    assert torch.backends.cudnn.allow_tf32 and not torch.backends.cudnn.deterministic
    monkeypatch.setenv(dv.DETERMINISTIC_ENV, "1")
    assert dv.resolve_device(smoke(device="cuda:0")) == torch.device("cuda", 0)
    assert not torch.backends.cudnn.benchmark and not torch.backends.cuda.matmul.allow_tf32
    assert not torch.backends.cudnn.allow_tf32 and torch.backends.cudnn.deterministic
    monkeypatch.delenv(dv.DETERMINISTIC_ENV)
    torch.use_deterministic_algorithms(True)
    try:
        assert dv.deterministic_requested()
        dv.configure_cuda(CUDA)
        assert not torch.backends.cudnn.benchmark
    finally:
        torch.use_deterministic_algorithms(False)
    dv.configure_cuda(CUDA)
    assert torch.backends.cudnn.benchmark


# ----------------------------------------------------------------------------- ranks

def test_a_batch_the_ranks_divide_is_split_evenly():
    x = torch.arange(48)
    parts = [dist.rank_slice(x, dist.DistInfo(r, 4)) for r in range(4)]
    assert [len(p) for p in parts] == [12] * 4 and torch.equal(torch.cat(parts), x)


def test_a_batch_the_ranks_do_not_divide_drops_to_the_largest_divisible_one():
    dist._WARNED.clear()
    x = torch.arange(50)
    with pytest.warns(UserWarning, match="batch of 50 does not split over 4 ranks.*takes 12.*"
                                         "last 2.*global batch of 48"):
        first = dist.rank_slice(x, dist.DistInfo(0, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                  # warned once per (n, W)
        parts = [first] + [dist.rank_slice(x, dist.DistInfo(r, 4)) for r in range(1, 4)]
    assert torch.equal(torch.cat(parts), torch.arange(48))             # every rank 12, in order
    with pytest.warns(UserWarning, match="takes 6 and the last 2"):
        assert dist.split_size(50, 8) == 6
    assert dist.rank_slice(x, dist.DistInfo(0, 1)) is x                # one process: all of it
    with pytest.raises(ValueError, match="batch of 3 does not split over 4 ranks"):
        dist.rank_slice(torch.arange(3), dist.DistInfo(0, 4))


# ----------------------------------------------------------------------------- mixed precision

def test_amp_modes_and_their_old_spellings():
    assert Config().amp == "bf16"
    assert smoke(amp=True).amp == "bf16" and smoke(amp=False).amp == "off"
    assert smoke(amp="fp16").amp == "fp16"
    old = smoke(amp="bf16").to_dict() | {"amp": True}                   # a checkpoint's config
    assert Config.from_dict(old) == smoke()
    assert Config(**cli.parse_sets(["amp=false"])).amp == "off"        # --set amp=false still works
    assert Config(**cli.parse_sets(["amp=fp16"])).amp == "fp16"
    for bad in (1, "fp8", "on", None):
        with pytest.raises(ConfigError, match="one of 'bf16', 'fp16', 'off'"):
            smoke(amp=bad)


def test_amp_dtype_and_autocast_per_mode():
    assert dv.amp_dtype(CUDA, "bf16") is dv.amp_dtype(CUDA, True) is torch.bfloat16
    assert dv.amp_dtype(CUDA, "fp16") is torch.float16
    assert dv.amp_dtype(CUDA, "off") is dv.amp_dtype(CUDA, False) is None
    assert all(dv.amp_dtype(CPU, m) is None for m in ("bf16", "fp16", "off"))
    assert isinstance(dv.autocast(CUDA, "off"), contextlib.nullcontext)   # off: no autocast
    assert isinstance(dv.autocast(CPU, "fp16"), contextlib.nullcontext)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                                  # no CUDA here: disabled
        ctx = dv.autocast(CUDA, "fp16")
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.float16


def test_fp16_builds_a_gradient_scaler_and_the_others_do_not(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    scaler = dv.grad_scaler(CUDA, "fp16")
    assert isinstance(scaler, torch.amp.GradScaler) and scaler.is_enabled()
    assert dv.grad_scaler(CUDA, "bf16") is None and dv.grad_scaler(CUDA, "off") is None
    assert dv.grad_scaler(CPU, "fp16") is None


@pytest.fixture(scope="module")
def smoke_cfg(tmp_path_factory):
    from dsanet.data.synthetic import SMOKE, generate

    torch.set_num_threads(1)
    root = tmp_path_factory.getbasetemp() / "dsanet-smoke-benchmark"   # shared with test_train
    if not (root / "calibration.json").exists():
        generate(root, **SMOKE)
    return smoke(data_root=str(root), eval_ks=(2,), bootstrap=20, steps=2, eval_every=2,
                 log_every=1, device="cpu")


def test_the_steps_pass_the_mode_and_use_the_scalers(smoke_cfg, tmp_path, monkeypatch):
    """fp16's scalers (built on the CPU here, where the real step has none) scale both updates,
    skip an overflowing step without a non-finite norm, and are saved in the checkpoint."""
    from dsanet.engine import step as st
    from dsanet.engine import train as tr

    modes = []
    real_autocast = st.autocast
    monkeypatch.setattr(st, "autocast", lambda device, amp: modes.append(amp) or real_autocast(device, amp))
    assert tr.Trainer(smoke_cfg.replace(amp="off"), tmp_path / "off", progress=False).stepper.scalers \
        == {"generator": None, "discriminator": None}
    scale = {"value": 2.0 ** 8}
    monkeypatch.setattr(st, "grad_scaler", lambda device, amp: torch.amp.GradScaler(
        "cpu", init_scale=scale["value"]) if amp == "fp16" else None)
    t = tr.Trainer(smoke_cfg.replace(amp="fp16"), tmp_path / "fp16", progress=False)
    tr.set_train_mode(t.model, False)
    before = [p.detach().clone() for p in t.stepper.gen_params]
    row = t.train_step()
    assert set(modes) == {"fp16"} and len(modes) == 3                   # forward, D and G losses
    assert torch.isfinite(row).all() and row[tr.TERMS.index("grad_norm")] > 0
    assert any(not torch.equal(b, p) for b, p in zip(before, t.stepper.gen_params))
    saved = t.state()["scalers"]
    assert set(saved) == {"generator", "discriminator"} and saved["generator"]["scale"] == 2.0 ** 8
    # an overflow: the scaler skips the step, halves its scale, the norm is reported as 0
    scale["value"] = 3e38
    t2 = tr.Trainer(smoke_cfg.replace(amp="fp16"), tmp_path / "overflow", progress=False)
    tr.set_train_mode(t2.model, False)
    before = [p.detach().clone() for p in t2.stepper.gen_params]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")              # lr_scheduler.step() before optimizer.step()
        row = t2.train_step()
    assert row[tr.TERMS.index("grad_norm")] == 0
    assert all(torch.equal(b, p) for b, p in zip(before, t2.stepper.gen_params))
    assert t2.stepper.scalers["generator"].get_scale() == pytest.approx(1.5e38)
    t2.stepper.load_state(t.state())                                    # the scalers come back
    assert t2.stepper.scalers["generator"].get_scale() == 2.0 ** 8
