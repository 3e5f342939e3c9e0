"""Probes of the paper's mechanisms: DEM blocks and Table I (notebook 01), the training history's
panels (02), the AMCE gradients and the negatives its mask keeps over training (03)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import losses
from ..config import Config
from ..data.batches import matching_batch
from ..data.protocols import sample_training_tuples
from ..engine.train import build_model, build_task
from ..experiments import Run
from .data_views import load_model, split_cache

# ----------------------------------------------------------------------------- DEM and Table I (01)


def block_bounds(row: int, col: int, r: int, c: int, C: int, N: int):
    """Half-open ((row0, row1), (col0, col1)) of block (row, col) of the r x c grid, eq. (3)."""
    return ((row * C // r, (row + 1) * C // r), (col * N // c, (col + 1) * N // c))


def table_one(ps, n: int, seed: int, simulate) -> pd.DataFrame:
    """Table I: simulated drop / learn rates of 1 (GAN) and 2 (SAS) streams beside the formulas."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for p in ps:
        for structure, streams in (("GAN", 1), ("SAS", 2)):
            drop, learn = simulate(p, streams=streams, n=n, generator=g)
            f_drop = 1 - (1 - p) ** streams
            f_learn = 1 - p ** streams
            rows += [{"p": p, "structure": structure, "rate": rate, "simulated": sim, "formula": f}
                     for rate, sim, f in (("drop", drop, f_drop), ("learn", learn, f_learn))]
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- training history (02)

LOSS_TERMS = ("total", "adversarial", "metric", "cls", "disc")


def loss_columns(history: pd.DataFrame) -> list[str]:
    return [c for c in LOSS_TERMS if c in history.columns]


def training_panels(history: pd.DataFrame) -> dict[str, list[str]]:
    """Panels of notebook 02: discriminator, adversarial, classification, metric, D's accuracy."""
    val = [c for c in history.columns if c.startswith("val_")]
    return {"discriminator, eqs. (12)-(13)": ["disc"],
            "generator: adversarial": ["adversarial"],
            "classification (AMCE, 14-20)": ["cls"],
            "metric, eqs. (21)-(23)": ["metric"],
            "D's modality accuracy": ["disc_acc"],
            "validation": val}


# ----------------------------------------------------------------------------- AMCE (03)

def class_gradients(logits: torch.Tensor, target: torch.Tensor, cfg: Config) -> pd.DataFrame:
    """dL/dm_j of AMCE, BCE, GBCE and focal loss on logits (1, k): columns class, loss, grad, prob."""
    fns = {"AMCE": lambda m: losses.amce_loss(m, target, cfg.eta),
           "BCE": lambda m: losses.bce_loss(m, target),
           "GBCE": lambda m: losses.gbce_loss(m, target, cfg.gbce_negatives),
           "Focal": lambda m: losses.focal_loss(m, target, cfg.focal_gamma)}
    p = torch.sigmoid(logits)[0]
    rows = []
    for name, fn in fns.items():
        m = logits.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(fn(m), m)
        rows += [{"class": j, "loss": name, "grad": float(g[0, j]), "prob": float(p[j])}
                 for j in range(logits.shape[1])]
    return pd.DataFrame(rows)


def amce_kept(model, cached, cfg: Config, n: int, seed: int = 0) -> dict:
    """Share of negatives the AMCE mask keeps (eq. 16) on n training tuples per direction,
    with the classifier's k; also its training accuracy on them."""
    k = model.classifier.k
    kept, correct = [], []
    rng = np.random.default_rng([seed, 7])
    model.eval()
    with torch.no_grad():
        for d in ("vf", "fv"):
            tuples = torch.from_numpy(sample_training_tuples(cached, n, k, d, rng))   # (n, k+1)
            anchor, cands, label = matching_batch(cached, tuples, d, cfg, False)
            logits = model.forward_tuples(anchor, cands, d).logits[0]          # (n, k)
            mask = losses.amce_mask(logits, label, cfg.eta)
            kept.append((mask.sum(1) - 1) / (k - 1))
            correct.append((logits.argmax(1) == label).float())
    return {"k": k, "kept": float(torch.cat(kept).mean()),
            "train_acc": float(torch.cat(correct).mean())}


def amce_kept_curve(runs: list[Run], n_tuples: int, seed: int = 0) -> pd.DataFrame:
    """:func:`amce_kept` at every snapshot of each run (step 0 = the seeded initial model)."""
    rows = []
    for run in runs:
        cfg = run.cfg
        train_set = split_cache(cfg, "train")
        for step, path in snapshots(run):
            if path is None:
                model = build_model(cfg, build_task(cfg, train_set, torch.device("cpu")),
                                    torch.device("cpu"))
            else:
                model = load_model(path)
            rows.append({"step": step, **amce_kept(model, train_set, cfg, n_tuples, seed)})
    return pd.DataFrame(rows)


def snapshots(run: Run) -> list[tuple[int, Path | None]]:
    """(step, checkpoint) of a run's snapshots in order, with (0, None) for the initial model."""
    snaps = sorted((int(p.stem.split("_")[1]), p) for p in run.dir.glob("snap_*.pt"))
    if not snaps and run.checkpoint is not None:
        snaps = [(run.cfg.steps, run.checkpoint)]
    return [(0, None), *snaps]
