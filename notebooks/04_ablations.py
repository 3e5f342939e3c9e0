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
# # 04 · Ablations: Tables V, VI, VII, IX, X, XI and XII
#
# Every table is a list of named presets in `dsanet.experiments` (row name -> Config overrides on
# top of this profile). `run_tables` trains each (row, seed) once - runs are cached under `runs/`
# by config hash, so the DSANet row, which appears in most tables, trains once - and reduces each
# cell to its mean over seeds, the paper's number beside. Matching cells are exact (the expected
# accuracy over every tuple of the test split). "±" is the half-width of a 95% interval covering
# both the training seeds and the finite set of test identities; "vs ref." is a row's difference
# to its table's reference row, paired by test identity, with its interval corrected for the
# table's comparisons (single-step max-|t|, `dsanet.claims`) and the verdict on the paper's claim
# (reproduced, contradicted, no effect, unresolved, no claim). A forest plot above each table
# draws those differences. Each table is shown twice: candidates ranked by the matching
# classifier (the paper's head) and by embedding distance.
#
# **Protocol.** In the quick profile the tables use the sweep protocol (`backbone_train =
# "frozen"`): every row starts from the same identity-pretrained backbones, as every row of the
# paper fine-tunes one pretrained ResNet18, and keeps them fixed; their activation maps are
# computed once per data tree with the training augmentations (voice crops, face flips) and DEM,
# the generator, the discriminator and the heads train on them, 600 steps a run (on validation
# ~1.5 points short of this protocol's plateau), 5 seeds (Table XII: 3). Table IV and Figs. 5 and 7 train end to
# end. Why, and what the protocol changes on validation: `docs/fidelity.md`, Session 7.
#
# | table | what changes |
# |---|---|
# | V | DEM, SAS, AMCE switched on one by one (rows a-g) |
# | VI | 1, 2, 3 cascaded DEM layers (2, 6, 14 streams) |
# | VII | one adversarial stream against the siamese structure, per enhancement |
# | IX | GAN, WGAN, SAGAN as the adversarial network (binary and 10-way) |
# | X | triplet, lifted structure, structured metric (binary and 10-way) |
# | XI | peak / patch / both x suppression / enhancement / dual |
# | XII | λ, μ, α, β, c, r (binary accuracy) and λ1, μ1 (retrieval mAP) |

# %% tags=["parameters"]
import os

profile = os.environ.get("DSANET_PROFILE", "quick")  # smoke | quick | paper | published
data_root = None   # None: the profile's root (the embedded benchmark is generated there if missing)
device = "auto"    # auto | cpu | cuda | cuda:N
seed = 0           # seed of the run(s)
threads = 1        # torch CPU threads (0: torch's default; >1 only on an otherwise idle machine)
out_dir = None     # None: runs/notebooks/ (scratch; runs/smoke_reports/ in smoke); reproduce passes reports/
ablation_steps = None   # training steps per run (None: experiments.SWEEP_STEPS[profile])
seeds = 0               # seeds per cell (0: experiments.SWEEP_SEEDS: 5 for V-XI, 3 for XII)
tables = "V,VI,VII,IX,X,XI,XII"   # which tables to run
rows = 0                # rows per table (0: all; the smoke profile keeps the first 2)
workers = 2             # training processes in parallel (1 thread each; the smoke profile uses 1)

# %%
from dsanet import analysis, experiments
from dsanet.reproduce import notebook_config, setup

ctx = setup(profile, out_dir, threads)   # cwd = repository root; output folders
cfg = notebook_config(profile, data_root, device=device, seed=seed)  # + DATA_ROOT/dsanet.yaml
analysis.ensure_data(cfg)
print(f"profile {cfg.profile}: data {cfg.data_root} -> outputs {ctx.out}, runs {ctx.runs}")

# %%
steps = ablation_steps or experiments.SWEEP_STEPS.get(cfg.profile)
names = [t.strip() for t in tables.split(",") if t.strip()]
n_rows = rows or (2 if ctx.smoke else None)
seeds_of = {name: experiments.table_seeds(name, seeds or None, ctx.smoke) for name in names}
plans = [experiments.plan([name], cfg, seeds_of[name], steps, ctx.runs, n_rows) for name in names]
print(f"{len(names)} tables, {sum(p['cells'] for p in plans)} cells at {plans[0]['steps']} steps, "
      f"seeds {seeds_of}")

# %% [markdown]
# One call trains every run the tables need that is not in `runs/` yet, then writes each table,
# `tables/verdicts.csv` and the forest plots: the same function as `python -m dsanet sweep`,
# which runs this sweep outside the notebook, on Ray too (README, "Sweeps beyond one machine").

# %%
from dsanet import claims

sweep = experiments.sweep_tables(names, cfg, seeds_of, ctx.runs, steps, n_rows, ctx.out,
                                 workers=1 if ctx.smoke else workers,
                                 log=None if ctx.smoke else print)
results, verdicts, forests = sweep.results, sweep.verdicts, sweep.forests
assert all(r.cells["mean"].between(0, 100).all() for r in results.values())
claims.verdict_counts(verdicts)

# %% [markdown]
# ### The machinery on a known truth: an A/A check
#
# DSANet's runs split into two pseudo-rows of disjoint seeds (the same config): an honest interval
# says `no effect` or `unresolved` however large a difference the paper were to claim.

# %%
dsanet_row = results["V"].identity if "V" in results else None
aa = (claims.aa_check(dsanet_row, claims.REFERENCE["V"]) if dsanet_row is not None
      and dsanet_row[dsanet_row["row"] == claims.REFERENCE["V"]]["seed"].nunique() >= 4 else None)
assert aa is None or not aa["verdict"].isin(claims.DECISIVE).any(), "an A/A pair came out decisive"
aa[["scorer", "column", "diff", "lo", "hi", "verdict"]].round(2) if aa is not None else "needs >= 4 seeds"

# %% [markdown]
# ### Table V: components (binary). a = one-stream adversarial baseline with BCE; b adds DEM; c the siamese structure; d AMCE; e-g combinations; g is DSANet.

# %%
display(forests["V"]) if "V" in forests else None
experiments.wide_all(results["V"]) if "V" in results else "not run (see `tables`)"

# %% [markdown]
# ### Table VI: cascaded DEM layers.

# %%
display(forests["VI"]) if "VI" in forests else None
experiments.wide_all(results["VI"]) if "VI" in results else "not run (see `tables`)"

# %% [markdown]
# ### Table VII: single GAN stream against SAS for each enhancement.

# %%
display(forests["VII"]) if "VII" in forests else None
experiments.wide_all(results["VII"]) if "VII" in results else "not run (see `tables`)"

# %% [markdown]
# ### Table IX: adversarial networks.

# %%
display(forests["IX"]) if "IX" in forests else None
experiments.wide_all(results["IX"]) if "IX" in results else "not run (see `tables`)"

# %% [markdown]
# ### Table X: metric losses.

# %%
display(forests["X"]) if "X" in forests else None
experiments.wide_all(results["X"]) if "X" in results else "not run (see `tables`)"

# %% [markdown]
# ### Table XI: feature selection strategies.

# %%
display(forests["XI"]) if "XI" in forests else None
experiments.wide_all(results["XI"]) if "XI" in results else "not run (see `tables`)"

# %% [markdown]
# ### Table XII: hyper-parameters (the λ1, μ1 rows are retrieval mAP).

# %%
display(forests["XII"]) if "XII" in forests else None
experiments.wide_all(results["XII"]) if "XII" in results else "not run (see `tables`)"

# %%
ctx.write_json("04_ablations", {name: {"made": r.made, "cells": r.cells.to_dict(orient="records")}
                                for name, r in results.items()})
