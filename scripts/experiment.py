"""One validation experiment: ``python scripts/experiment.py NAME DATA key=value ...``.

Trains ``dsanet.config.quick(data_root=DATA, **overrides)`` into ``runs/experiments/NAME`` and
prints the validation curve (binary V-F / F-V, distance scorer), the discriminator's modality
accuracy and the last loss terms; ``test=1`` also prints the test headline (for seed checks
after a choice, never for making it); ``retrieval=1`` trains eq. (25) on the paper's retrieval
schedule (``retrieval_profile``; the curve is then validation mAP), e.g. fine-tuning a matching
run with ``init_from=runs/experiments/NAME/best.pt``. Values are JSON (``lr_milestones=[1200,2000]``). This is
the command behind the numbers in docs/fidelity.md, "Learning on the benchmark". Threads:
``$THREADS`` (default 2).
"""
from __future__ import annotations

import json
import os
import sys
import time

import torch

from dsanet.config import quick, retrieval_profile
from dsanet.engine.train import train


def parse(args: list[str]) -> dict:
    kw = {}
    for a in args:
        k, v = a.split("=", 1)
        try:
            v = json.loads(v)
        except ValueError:
            pass
        kw[k] = tuple(v) if isinstance(v, list) else v
    return kw


def cell(m, direction: str, k: int, scorer: str = "distance") -> float:
    q = m[(m.task == "matching") & (m.direction == direction) & (m.k == k) & (m.protocol == "U")
          & (m.metric == "acc") & (m.scorer == scorer)]
    return float(q.value.iloc[0]) if len(q) else float("nan")


def main(argv: list[str]) -> None:
    name, data, kw = argv[0], argv[1], parse(argv[2:])
    show_test = kw.pop("test", 0)
    retrieval = kw.pop("retrieval", 0)
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    cfg = quick(data_root=data, eval_ks=(2, 10), name=name, **kw)
    if retrieval:
        cfg = retrieval_profile(cfg)
    t = time.time()
    res = train(cfg, f"runs/experiments/{name}", resume=False, progress=False)
    h = res.history
    v = h.dropna(subset=["val_score"])
    cols = [c for c in h.columns if c.startswith("val_") and c != "val_score"]
    curve = " ".join(f"{int(r['step'])}:" + "/".join(f"{r[c]:.3f}" for c in cols)
                     for _, r in v.iterrows())
    last = h.tail(50).mean(numeric_only=True)
    msg = (f"{name}: {time.time() - t:.0f}s | val {curve} | disc_acc {last.get('disc_acc', float('nan')):.2f}"
           f" cls {last['cls']:.3f} metric {last['metric']:.3f} adv {last['adversarial']:.3f}")
    if show_test:
        m = res.metrics
        msg += (f" | TEST k2 {cell(m, 'V-F', 2):.3f}/{cell(m, 'F-V', 2):.3f} "
                f"k10 {cell(m, 'V-F', 10):.3f}/{cell(m, 'F-V', 10):.3f}")
    print(msg, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
