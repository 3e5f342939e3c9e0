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
# # 00 · The data: the benchmark, the split of Table II, what voice and face share
#
# DSANet is trained and tested on VoxCeleb1 voices and VGGFace faces of the same 1,225 people,
# split by name as in Wen et al. (CVPR 2021): names starting with A-B are validation, C-E test,
# the rest train (Table II). Without those data sets, the package generates an **embedded
# benchmark** with the same layout: invented identities whose voice and face share a few latent
# traits (size, width, tone, age, region), so that cross-modal matching is possible but hard.
#
# This notebook shows
#
# * the identities and samples per split in the layout of Table II, beside the paper's Table II;
# * example faces and spectrograms per identity and recording session;
# * the shared traits (e.g. voice f0 against jaw width, by gender);
# * calibration lines: the 1:k accuracy an oracle on the shared traits, a gender-only guesser and
#   chance reach - the ceiling and floors the trained models of notebooks 02-06 sit between.
#
# Point `data_root` at a real VoxCeleb1/VGGFace tree (with its meta CSV) to see the real counts.
# Real data has no ground truth of shared traits and no calibration: those two sections then
# print one line saying they are skipped and why, and the rest runs as on the benchmark.

# %% tags=["parameters"]
import os

profile = os.environ.get("DSANET_PROFILE", "quick")  # smoke | quick | paper | published
data_root = None   # None: the profile's root (the embedded benchmark is generated there if missing)
device = "auto"    # auto | cpu | cuda | cuda:N
seed = 0           # seed of the run(s)
threads = 1        # torch CPU threads (0: torch's default; >1 only on an otherwise idle machine)
out_dir = None     # None: runs/notebooks/ (scratch; runs/smoke_reports/ in smoke); reproduce passes reports/
n_identities_shown = 3   # identities in the example grid

# %%
from dsanet import analysis, experiments, viz
from dsanet.reproduce import notebook_config, setup

ctx = setup(profile, out_dir, threads)   # cwd = repository root; output folders
cfg = notebook_config(profile, data_root, device=device, seed=seed)  # + DATA_ROOT/dsanet.yaml
analysis.ensure_data(cfg)
print(f"profile {cfg.profile}: data {cfg.data_root} -> outputs {ctx.out}, runs {ctx.runs}")

# %% [markdown]
# ## Table II: identities and samples per split
#
# `layout.load_index` scans the tree against the meta table; the split of each identity follows
# from its name (`layout.split_of`).

# %%
from dsanet import paper
from dsanet.data import layout

index = layout.load_index(cfg.data_root, cfg.meta, cfg.voice_root, cfg.face_root)
ours = index.summary()
table2 = analysis.beside_paper_ii(ours, paper.table("II"))
table2

# %%
ids = index.identities
assert (ids["face_id"].map(layout.split_of) == ids["split"]).all(), "split must follow the names"
assert set(ids["split"]) <= {"train", "val", "test"}
assert ours.loc["Identities", "Total"] == len(ids)
assert (ours.loc[["Face Images", "Audio Clips"], "Total"] > 0).all()

# %% [markdown]
# ## Example faces and spectrograms
#
# Each row is one test identity, each pair of columns one recording session: a face still and the
# log-magnitude spectrogram of a clip (the network's voice input, `frontends.Spectrogram`).
# Faces and voices of one identity vary between sessions (pose, light, channel, room).

# %%
faces, specs, who, sessions = analysis.examples(index, cfg, n_identities_shown, sessions=2, seed=seed)
fig = viz.examples(faces, specs, who, sessions)
viz.save(fig, ctx.out, "00_examples")

# %% [markdown]
# ## The traits voice and face share
#
# In the benchmark the voice's fundamental frequency and the face's jaw width express the same
# latent "width", and tract length / face length the same "size" (plus gender, which shifts
# both). The scatter shows one dot per identity. The traits are the generator's per-sample
# ground truth (`samples.csv`): on real data this section prints that it is skipped.

# %%
traits = analysis.benchmark_view(cfg.data_root, "traits", out=ctx.out)   # None on real data
if traits is not None:
    fig = viz.traits(traits, "f0_hz", "jaw_width", hue="gender")
    viz.save(fig, ctx.out, "00_traits")
    shared = ["f0_hz", "jaw_width", "vtl_cm", "face_length"]
    display(traits.groupby("gender")[shared].corr().round(2))

# %% [markdown]
# ## Calibration: how well can 1:k matching go on this data?
#
# The generator's calibration gives, for each k, the accuracy of a scorer that sees every
# sample's realised shared traits and picks the nearest same-gender candidate (**oracle**), of one
# that only matches gender (**gender-only**), and **chance** 1/k, on the test identities
# (unconstrained protocol; `synthetic.calibrate`). It is recomputed from the generator's knobs
# (`calibration.json`): on real data this section prints that it is skipped.

# %%
calib = analysis.benchmark_view(cfg.data_root, "calibration", out=ctx.out)   # None on real data
if calib is not None:
    u = calib[calib["protocol"] == "U"]
    fig = viz.calibration(u)
    viz.save(fig, ctx.out, "00_calibration")
    assert calib["value"].between(0, 1).all()
    calib.to_csv(ctx.tables / "calibration.csv", index=False)
    display(u.pivot_table(index="k", columns=["scorer", "direction"], values="value").round(3))

# %%
experiments.write_table("II", "Identities and samples per split (ours beside the paper's)",
                        table2.reset_index(), ctx.out,
                        {"profile": cfg.profile, "data_root": cfg.data_root, "seeds": [seed],
                         "note": "counts of the data under data_root"})
ctx.write_json("00_data", {"profile": cfg.profile, "data_root": cfg.data_root,
                           "counts": ours.to_dict(), "skipped": index.skipped,
                           "calibration": (None if calib is None
                                           else calib.to_dict(orient="records"))})
