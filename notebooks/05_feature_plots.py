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
# # 05 · Feature plots: Fig. 1 (t-SNE, UMAP) and Fig. 7 (class activation maps)
#
# **Fig. 1** compares the embedding space of a one-stream adversarial network (Table VII's
# baseline: structure `gan`, no enhancement) with DSANet's: 5 test identities x 15 samples,
# voices and faces, projected to 2-D with t-SNE (scikit-learn) and UMAP (umap-learn), both seeded.
# Beside the pictures, two numbers that do not depend on a projection: the silhouette of the
# identities in the embedding space and the ratio of mean within-identity to between-identity
# distance (lower is tighter).
#
# **Fig. 7** shows Grad-CAM class activation maps of faces: the gradient of the matching score
# $s = -\lVert \mathbf{h}_{face} - \mathbf{h}_{voice} \rVert$ (the embedding distance the metric of
# eqs. 21-22 trains) with respect to the face backbone's last map $A$ weights its channels,
# $\text{CAM} = \operatorname{relu}(\sum_c \bar{w}_c A_c)$, $\bar{w}_c = \operatorname{mean}_{hw}\,\partial s/\partial A_{chw}$.

# %% tags=["parameters"]
import os

profile = os.environ.get("DSANET_PROFILE", "quick")  # smoke | quick | paper | published
data_root = None   # None: the profile's root (the embedded benchmark is generated there if missing)
device = "auto"    # auto | cpu | cuda | cuda:N
seed = 0           # seed of the run(s)
threads = 1        # torch CPU threads (0: torch's default; >1 only on an otherwise idle machine)
out_dir = None     # None: runs/notebooks/ (scratch; runs/smoke_reports/ in smoke); reproduce passes reports/
n_ids = 5          # identities in Fig. 1
per_id = 15        # samples per identity and modality
n_cam = 6          # faces in Fig. 7
umap = True        # also project with UMAP (not in the smoke profile: numba compiles for ~30 s)
workers = 2        # training processes in parallel (1 thread each; the smoke profile uses 1)

# %%
from dsanet import analysis, experiments, viz
from dsanet.reproduce import notebook_config, setup

ctx = setup(profile, out_dir, threads)   # cwd = repository root; output folders
cfg = notebook_config(profile, data_root, device=device, seed=seed)  # + DATA_ROOT/dsanet.yaml
analysis.ensure_data(cfg)
print(f"profile {cfg.profile}: data {cfg.data_root} -> outputs {ctx.out}, runs {ctx.runs}")

# %%
base = cfg.replace(**experiments.BASELINE)            # Table VII's baseline: gan, no DEM
experiments.run_many([base], ctx.runs, 1 if ctx.smoke else workers, snapshots=[cfg], log=None)
runs = {"one-stream GAN": experiments.cached_run(base, ctx.runs),
        "DSANet": experiments.cached_run(cfg, ctx.runs, snapshots=True)}
models = {name: analysis.load_model(r) for name, r in runs.items()}
test = analysis.split_cache(cfg, "test")
print({name: r.dir.name for name, r in runs.items()})

# %% [markdown]
# ## Fig. 1: the embedding spaces

# %%
pick = analysis.pick_identities(test, n_ids, per_id, seed=seed)
emb = {name: analysis.embed_items(m, test, cfg, pick) for name, m in models.items()}
methods = ["tsne"] + (["umap"] if umap and not ctx.smoke else [])   # UMAP compiles for ~30 s
points = analysis.projections(emb, methods, seed=seed)
fig = viz.feature_grid(points, "o voice, x face")
viz.save(fig, ctx.out, "05_fig1_features")
spread = analysis.cluster_stats(emb)
assert spread["silhouette"].between(-1, 1).all()
spread

# %% [markdown]
# ## Fig. 7: class activation maps of faces

# %%
from dsanet import cam

faces, voices_of = analysis.cam_inputs(test, n_cam, seed=seed)
maps = {name: cam.grad_cam(m, faces, analysis.voice_embeddings(m, test, cfg, voices_of))
        for name, m in models.items()}
for v in maps.values():
    assert v.shape == (n_cam, *faces.shape[-2:]) and float(v.min()) >= 0 and float(v.max()) <= 1
fig = viz.cams(faces, {k: v.numpy() for k, v in maps.items()})
viz.save(fig, ctx.out, "05_fig7_cam")

# %%
ctx.write_json("05_feature_plots", {"runs": {k: r.dir.name for k, r in runs.items()},
                                    "cluster_stats": spread.reset_index().to_dict(orient="records")})
spread.reset_index().to_csv(ctx.tables / "fig1_cluster_stats.csv", index=False)
