"""Two gloo processes on CPU train like one process on the same global batch.

Every rank draws the same global batch and keeps its half; DDP averages the generator-side
gradients and the trainer averages the discriminator's by hand. To make the comparison exact up
to float summation order, the test removes the three things that legitimately differ between a
half batch and a whole one: BatchNorm batch statistics (``freeze_bn``: running statistics, so every
loss term is a mean of per-tuple terms), dropout masks (``dropout=0``) and DEM block draws (drawn
per rank; ``enhancement="none"`` makes the two streams plain copies).

Tolerances: per-step losses agree to 1e-5 relative (observed ~1e-7); parameters after three Adam
steps agree to 1e-5 for 99.9% of the weights and to 1e-3 for all: Adam's early updates are about
lr * sign(gradient), so a weight whose gradient is ~0 can take a different-signed step when the
two summation orders round differently (a missing gradient all-reduce changes the losses by
~1e-2 relative and every weight by ~lr).
"""
from __future__ import annotations

import os
import socket
import time

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp

from dsanet.config import smoke
from dsanet.engine import train as tr

STEPS = 3


def smoke_root(tmp_path_factory):
    from dsanet.data.synthetic import SMOKE, generate

    root = tmp_path_factory.getbasetemp() / "dsanet-smoke-benchmark"
    if not (root / "calibration.json").exists():
        generate(root, **SMOKE)
    return root


def ddp_config(root):
    # per-tuple sampling: the same global batch on 1 or 2 ranks. With sampling="batch" each rank
    # forms its tuples inside its own slice of the identities, so the negatives differ from a
    # single process's (dsanet.engine.matching.InBatchMatchingTask).
    return smoke(data_root=str(root), steps=STEPS + 1, eval_every=100, log_every=2,
                 batch_size=8, freeze_bn=True, dropout=0.0, enhancement="none", device="cpu",
                 sampling="tuple")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    try:
        tr.train(ddp_config(root), out, resume=False, progress=False, max_steps_this_call=STEPS)
    finally:
        import torch.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()


def _spawn(world: int, root, out, timeout: float = 120.0) -> None:
    ctx = mp.spawn(_worker, args=(world, _free_port(), str(root), str(out)), nprocs=world,
                   join=False)
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"DDP workers did not finish in {timeout:.0f} s")


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process(tmp_path_factory, tmp_path):
    root = smoke_root(tmp_path_factory)
    _spawn(2, root, tmp_path / "ddp")
    torch.set_num_threads(1)
    single = tr.train(ddp_config(root), tmp_path / "one", progress=False, max_steps_this_call=STEPS)
    a = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "one" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == STEPS

    ha, hb = pd.DataFrame(a["history"]), single.history
    terms = ["total", "adversarial", "metric", "cls", "disc", "grad_norm"]
    np.testing.assert_allclose(ha[terms].to_numpy(), hb[terms].to_numpy(), rtol=1e-5)

    diffs = torch.cat([(a["model"][k].double() - b["model"][k].double()).abs().flatten()
                       for k in b["model"] if b["model"][k].is_floating_point()])
    assert diffs.max() < 1e-3
    assert torch.quantile(diffs, 0.999) < 1e-5
