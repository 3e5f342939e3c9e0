# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Training DSANet: the siamese adversarial structure at work
#
# Every training step has two parts (Sec. III-B/D). First the discriminator $D$ learns to tell the
# modality of each embedding $\mathbf{h}$ of every stream,
#
# $$\mathcal{L}^{sal}_{disc} = -\frac1N\sum_{i=1}^N\sum_{j=0}^k Y_{ij}\log D(\mathbf{h}^{sal}_{ij};\theta_D) \ (12),\qquad
# \mathcal{L}^{total}_{disc} = \mathcal{L}^{sal}_{disc} + \mathcal{L}^{sub}_{disc} \ (13);$$
#
# then the backbones, the shared generator $G$ (eqs. 10-11) and the classifier minimise
#
# $$\mathcal{L}^m_{total} = \mathcal{L}^{total}_{disc} + \lambda\,\mathcal{L}^m_{metric} + \mu\,\mathcal{L}^{total}_{AMCE} \ (24)$$
#
# with the adversarial term taken on the flipped modality labels, so that $G$ learns embeddings
# whose modality $D$ cannot tell. The curves below come from the run's history; the run is cached
# under `runs/` by its config hash (notebooks 01, 03, 05 and 06 reuse it).

# %% tags=["parameters"]
import os

profile = os.environ.get("DSANET_PROFILE", "quick")  # smoke | quick | paper | published
data_root = None   # None: the profile's root (the embedded benchmark is generated there if missing)
device = "auto"    # auto | cpu | cuda | cuda:N
seed = 0           # seed of the run(s)
threads = 1        # torch CPU threads (0: torch's default; >1 only on an otherwise idle machine)
out_dir = None     # None: runs/notebooks/ (scratch; runs/smoke_reports/ in smoke); reproduce passes reports/
progress = False   # tqdm progress bar while training
workers = 2        # training processes in parallel for the adversarial-target runs (smoke: 1)

# %%
import pandas as pd

from dsanet import analysis, experiments, viz
from dsanet.reproduce import notebook_config, setup

ctx = setup(profile, out_dir, threads)   # cwd = repository root; output folders
cfg = notebook_config(profile, data_root, device=device, seed=seed)  # + DATA_ROOT/dsanet.yaml
analysis.ensure_data(cfg)
print(f"profile {cfg.profile}: data {cfg.data_root} -> outputs {ctx.out}, runs {ctx.runs}")

# %%
run = experiments.cached_run(cfg, ctx.runs, progress=progress, snapshots=True)
hist = run.history
print(f"run {run.dir.name}: {cfg.steps} steps, batch {cfg.batch_size}, "
      f"{'read back' if run.cached else 'trained now'} ({run.wall_s:.0f} s to train)")
hist[["step", "total", "adversarial", "metric", "cls", "disc", "disc_acc"]].tail(3).round(3)

# %%
import numpy as np

loss_cols = analysis.loss_columns(hist)
assert loss_cols and np.isfinite(hist[loss_cols].to_numpy(dtype=float)).all(), "losses must be finite"

# %% [markdown]
# ## Loss curves and the discriminator's modality accuracy
#
# A working adversarial game shows the discriminator's loss staying near its chance value
# ($\log 2$ per item) and its modality accuracy drifting towards 0.5, while the metric and
# classification losses fall.

# %%
panels = analysis.training_panels(hist)
fig = viz.training_curves(hist, panels, smooth=1 if ctx.smoke else 5)
viz.save(fig, ctx.out, "02_training_curves")

# %% [markdown]
# ## What the generator's adversarial target does to the discriminator (eq. 12)
#
# The generator side of eq. (12) can aim the discriminator at the *flipped* modality (the
# published code: voices should look like faces and faces like voices), at the uniform
# *confusion* target (both modalities at probability 1/2) or at the negated discriminator loss
# (*minimax*, gradient reversal). The same recipe is trained with each (`adv_target`, at the
# ablation tables' budget, so the confusion run is Table V's DSANet row); a game
# that merges the modalities keeps the discriminator's modality accuracy near 0.5, one that swaps
# them drives it towards 0. Validation accuracy (distance) is printed beside.

# %%
targets = ["flip", "confusion", "minimax"]
sweep = experiments.budget(cfg, experiments.SWEEP_STEPS.get(cfg.profile))   # the tables' budget
variants = {t: sweep.replace(adv_target=t) for t in targets}
experiments.run_many(list(variants.values()), ctx.runs, 1 if ctx.smoke else workers, log=None)
games = {t: experiments.cached_run(c, ctx.runs) for t, c in variants.items()}
acc_curves = pd.concat([g.history[["step", "disc_acc"]].assign(target=t) for t, g in games.items()])
fig = viz.line_panels(acc_curves, x="step", y="disc_acc", hue="target",
                      title="discriminator modality accuracy by adversarial target",
                      smooth=1 if ctx.smoke else 25, hline=0.5)
viz.save(fig, ctx.out, "02_adversarial_targets")
game_summary = pd.DataFrame({t: {"disc_acc (last 10%)": g.history["disc_acc"].tail(max(1, len(g.history) // 10)).mean(),
                                 "val binary (best)": g.history.get("val_score", pd.Series(dtype=float)).max()}
                             for t, g in games.items()}).T.round(3)
game_summary

# %% [markdown]
# ## Test results of this run
#
# Binary (k = 2) and 10-way matching accuracy and retrieval mAP on the test split, in percent,
# with DSANet's row of Table IV beside. Candidates are ranked either by the embedding distance
# (what the structured metric of eqs. 21-22 trains) or by the matching classifier's logits (the
# paper's head, trained here for k = 2; its 10-way cells fall back to the distance). The
# benchmark's level is set by its calibration (notebook 00): compare with the oracle line there,
# not with the paper's VoxCeleb numbers.

# %%
import pandas as pd
from dsanet import paper

ours = analysis.headline_by_scorer(run.metrics).round(1)
summary = pd.concat([ours, pd.DataFrame([paper.dsanet_headline()], index=["paper (DSANet)"])])
acc = run.metrics[run.metrics["metric"] == "acc"]["value"]
assert acc.between(0, 1).all()
summary

# %%
keep = ctx.out / "runs" / "02_sas_training"
keep.mkdir(parents=True, exist_ok=True)
run.metrics.to_csv(keep / "metrics.csv", index=False)
hist.to_csv(keep / "history.csv", index=False)
ctx.write_json("02_sas_training", {"run": run.dir.name, "steps": cfg.steps, "wall_s": run.wall_s,
                                   "adversarial_targets": game_summary.to_dict(orient="index"),
                                   "headline": summary.to_dict(orient="index")})
