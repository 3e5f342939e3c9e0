"""The sweep protocol against end-to-end training, on validation (docs/fidelity.md, "Session 7").

``python scripts/protocol_check.py [RUNS]`` trains (2 processes, 1 thread each) and prints the
binary validation accuracy (exact, distance; mean of V-F and F-V) of:

* end to end, the headline recipe stopped at 1,200 of its 2,400 steps (its schedule kept, so
  these are the first 1,200 steps of a headline run): DSANet, Table V(a) and Table VIII's BCE row,
  3 seeds each;
* the sweep protocol (frozen backbones on cached maps, ``experiments.budget`` at the quick
  sweep's steps): the same rows and the two-tower baseline, 3 seeds each.

The end-to-end two-tower and DSANet runs at 2,400 steps are Table IV's (their validation is in
each run's history).
"""
from __future__ import annotations

import sys

import pandas as pd

from dsanet import experiments
from dsanet.config import quick, two_tower

ROWS = {"DSANet": {}, "V(a)": experiments.BASELINE, "VIII BCE": {"cls_loss": "bce"}}


def main(runs: str = "runs/protocol") -> None:
    e2e = quick().replace(steps=1200, schedule_steps=2400, eval_every=600)
    sweep = experiments.budget(quick(), experiments.SWEEP_STEPS["quick"])
    cfgs = {}
    for s in range(3):
        for name, ov in ROWS.items():
            cfgs[("end to end 1200", name, s)] = e2e.replace(**ov, seed=s)
            cfgs[("sweep", name, s)] = sweep.replace(**ov, seed=s)
        cfgs[("sweep", "two-tower", s)] = experiments.budget(two_tower(quick()), sweep.steps).replace(seed=s)
    experiments.run_many(list(cfgs.values()), runs, workers=2)
    rows = []
    for (proto, name, s), c in cfgs.items():
        h = experiments.cached_run(c, runs).history.dropna(subset=["val_score"])
        last = h.iloc[-1]
        rows.append({"protocol": proto, "row": name, "seed": s, "step": int(last["step"]),
                     "val_vf": 100 * last["val_vf"], "val_fv": 100 * last["val_fv"],
                     "val": 100 * last["val_score"]})
    df = pd.DataFrame(rows)
    print(df.to_string(index=False))
    print(df.groupby(["protocol", "row"])[["val_vf", "val_fv", "val"]].agg(["mean", "std"]).round(2))


if __name__ == "__main__":
    main(*sys.argv[1:])
