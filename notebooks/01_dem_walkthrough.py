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
# # 01 · The dual enhancement mechanism (DEM), step by step
#
# DEM (Sec. III-A) takes the activation map $\mathbf{f} \in \mathbb{R}^{C\times H\times W}$ of a
# backbone, reads it as the matrix $\mathbf{F} \in \mathbb{R}^{C\times HW}$, picks a region and
# makes two copies of the map: one where the salient values of the region are **enhanced** and one
# where they are **suppressed**, so that the second stream has to learn from the subtler values.
# This notebook runs every equation on the face maps of a trained backbone (a run of this profile,
# trained here or read back from `runs/`), checks each against a direct formula, draws Fig. 4-style
# plots, and reproduces Table I (why two shared-parameter streams learn more) by simulation.

# %% tags=["parameters"]
import os

profile = os.environ.get("DSANET_PROFILE", "quick")  # smoke | quick | paper | published
data_root = None   # None: the profile's root (the embedded benchmark is generated there if missing)
device = "auto"    # auto | cpu | cuda | cuda:N
seed = 0           # seed of the run(s)
threads = 1        # torch CPU threads (0: torch's default; >1 only on an otherwise idle machine)
out_dir = None     # None: runs/notebooks/ (scratch; runs/smoke_reports/ in smoke); reproduce passes reports/
n_faces = 8   # faces of the test split whose maps are shown
iv_seeds = 3  # seeds of the binary DSANet and two-tower runs of Table IV, trained here with the others
workers = 2   # training processes in parallel (1 thread each; the smoke profile uses 1)
pins_lists = None  # Learnable-PINs split lists for Table III (None: drawn for the embedded benchmark)

# %%
from dsanet import analysis, experiments, viz
from dsanet.reproduce import notebook_config, setup

ctx = setup(profile, out_dir, threads)   # cwd = repository root; output folders
cfg = notebook_config(profile, data_root, device=device, seed=seed)  # + DATA_ROOT/dsanet.yaml
analysis.ensure_data(cfg)
print(f"profile {cfg.profile}: data {cfg.data_root} -> outputs {ctx.out}, runs {ctx.runs}")

# %%
import torch
from dsanet.models import dem

# every end-to-end run of the reproduction at once, both cores busy: Table IV's and Table III's
# (notebook 06), Fig. 7's one-stream baseline (05) and this profile's DSANet run with snapshots
# (01-03, 05); each trains once and is read from runs/ afterwards
lists = analysis.pins_lists(cfg, pins_lists)
three = analysis.table_three_configs(cfg, range(iv_seeds), lists) if lists else []
analysis.headline_runs(cfg, range(iv_seeds), ctx.runs, 1 if ctx.smoke else workers,
                       snapshots=[cfg], extra=[cfg.replace(**experiments.BASELINE), *three])
run = experiments.cached_run(cfg, ctx.runs, snapshots=True)
model = analysis.load_model(run)
test = analysis.split_cache(cfg, "test")
x = analysis.faces_input(test, range(n_faces))        # (B, 3, S, S) normalised
with torch.no_grad():
    maps = model.face_backbone(x)                       # (B, C, H, W)
F = maps.flatten(2)                                     # (B, C, N), N = H*W
B, C, N = F.shape
assert (C, N) == (cfg.channels, cfg.map_size ** 2) and torch.isfinite(F).all()
print(f"run {run.dir.name} ({'read back' if run.cached else 'trained now'}); F: {tuple(F.shape)}")

# %% [markdown]
# ## Peak and salient positions, eqs. (1)-(2)
#
# $$\mathbf{P}_{\max}(i,j) = \begin{cases}1 & \mathbf{F}(i,j) = \max(\mathbf{F})\\ 0 & \text{otherwise}\end{cases} \quad (1)
# \qquad
# \mathbf{P}_s(i,j) = \begin{cases}1 & \mathbf{F}(i,j) > \operatorname{mean}(\mathbf{F})\\ 0 & \text{otherwise}\end{cases} \quad (2)$$

# %%
P_max = dem.peak_mask(F)                                # (B, C, N)
P_s = dem.salient_mask(F)                               # (B, C, N)
assert torch.equal(P_max, (F == F.amax(dim=(1, 2), keepdim=True)).float())
assert torch.equal(P_s, (F > F.mean(dim=(1, 2), keepdim=True)).float())
assert (P_max.sum((1, 2)) >= 1).all()
print("share of positions above the mean:", P_s.mean((1, 2)).numpy().round(2))

# %% [markdown]
# ## A random block of the grid, eq. (3)
#
# The $C \times HW$ matrix is cut into an $r \times c$ grid; block $(l, m)$ covers rows
# $[\lfloor lC/r\rfloor, \lfloor (l+1)C/r\rfloor)$ and columns $[\lfloor mHW/c\rfloor, \lfloor (m+1)HW/c\rfloor)$.
# One block per sample is drawn uniformly; $\mathbf{M}_g$ is 1 on it.

# %%
g = torch.Generator().manual_seed(seed)
rows, cols = dem.draw_blocks(B, cfg.r, cfg.c, generator=g)
M_g = dem.block_mask(B, C, N, rows, cols, cfg.r, cfg.c, F.device)    # (B, C, N)
h = (torch.div((rows + 1) * C, cfg.r, rounding_mode="floor") - torch.div(rows * C, cfg.r, rounding_mode="floor"))
w = (torch.div((cols + 1) * N, cfg.c, rounding_mode="floor") - torch.div(cols * N, cfg.c, rounding_mode="floor"))
assert torch.equal(M_g.sum((1, 2)), (h * w).float())
print(f"grid {cfg.r} x {cfg.c}; first block (l, m) = ({rows[0].item()}, {cols[0].item()}), "
      f"{h[0].item()} x {w[0].item()} entries")

# %% [markdown]
# ## The mask, eqs. (4)-(6)
#
# $$\mathbf{P}_{sg} = \mathbf{P}_s \odot \mathbf{M}_g \ (4),\qquad
# \mathbf{P}_{sg}(x,y) = 0 \text{ at the peak } (5),\qquad
# \mathbf{M} = \mathbf{P}_{sg} + \mathbf{P}_{\max} \ (6).$$
#
# `selection="patch"` keeps only $\mathbf{P}_{sg}$ (the published script), `"peak"` only
# $\mathbf{P}_{\max}$ (Table XI).

# %%
M = dem.dem_mask(F, rows, cols, cfg.r, cfg.c, "both")
P_sg = P_s * M_g                                        # (4)
P_sg = P_sg * (1 - P_max)                               # (5)
assert torch.equal(M, P_sg + P_max)                     # (6), 0/1 valued
assert torch.equal(dem.dem_mask(F, rows, cols, cfg.r, cfg.c, "patch"), P_s * M_g)
assert torch.equal(dem.dem_mask(F, rows, cols, cfg.r, cfg.c, "peak"), P_max)
print("masked entries per sample:", M.sum((1, 2)).int().tolist())

# %% [markdown]
# ## Dual enhancement, eqs. (7)-(9)
#
# $$\mathbf{F}^s = \mathbf{M}\odot\mathbf{F} \ (7),\qquad
# \mathbf{f}^{sal} = \mathbf{F} + \alpha\,\mathbf{F}^s \ (8),\qquad
# \mathbf{f}^{sub} = \mathbf{F} - \beta\,\mathbf{F}^s \ (9),$$
#
# with $\alpha = 1$, $\beta = 0.9$. Outside the mask both streams equal $\mathbf{F}$.

# %%
f_sal = dem.enhance(F, M, cfg.alpha)
f_sub = dem.suppress(F, M, cfg.beta)
assert torch.allclose(f_sal, F + cfg.alpha * M * F) and torch.allclose(f_sub, F - cfg.beta * M * F)
out = M == 0
assert torch.equal(f_sal[out], F[out]) and torch.equal(f_sub[out], F[out])

# %% [markdown]
# ## Fig. 4: activation values against the mean threshold
#
# (b) the values of $\mathbf{F}$ for one face (the one with the largest mask), red above its mean and blue below, the drawn block
# ringed and the peak starred; (a) the enhanced salient copy, eq. (8); (c) the enhanced subtle
# copy, eq. (9). The heat maps below show the same three $C\times HW$ matrices with the block boxed.

# %%
i = int(M.sum((1, 2)).argmax())                          # the face with the largest mask
block = analysis.block_bounds(rows[i].item(), cols[i].item(), cfg.r, cfg.c, C, N)
peak = divmod(int(F[i].argmax()), N)
three = {"(a) salient, eq. (8)": f_sal[i].numpy(), "(b) F, mean threshold (2)": F[i].numpy(),
         "(c) subtle, eq. (9)": f_sub[i].numpy()}
fig = viz.dem_values(three, float(F[i].mean()), block, peak)
viz.save(fig, ctx.out, "01_fig4_values")
fig = viz.dem_maps(three, block, peak)
viz.save(fig, ctx.out, "01_fig4_maps")

# %% [markdown]
# ## Salient against subtle maps in image space
#
# Summing each stream over channels gives an $H\times W$ picture of where it responds: the
# salient stream sharpens the chosen region, the subtle stream flattens it and leaves the rest.

# %%
H = W = cfg.map_size
spatial = {name: m.reshape(C, H, W).sum(0) for name, m in
           {"F": F[i], "salient (8)": f_sal[i], "subtle (9)": f_sub[i]}.items()}
fig = viz.spatial_maps(x[i], {k: v.numpy() for k, v in spatial.items()})
viz.save(fig, ctx.out, "01_salient_subtle")

# %% [markdown]
# ## Streams of the DEM module (Fig. 6)
#
# `DEM(cfg)` applies all of the above to a batch of maps in training mode and returns the streams
# the shared generator sees: 2 for one layer, 6 and 14 when layers are cascaded (Table VI). In
# evaluation it returns the plain maps (DEM is training-only).

# %%
streams = {}
for layers in (1, 2, 3):
    c_l = cfg.replace(dem_layers=layers)
    out_l = dem.DEM(c_l).train()(maps, generator=torch.Generator().manual_seed(seed))
    assert len(out_l) == c_l.n_streams and all(o.shape == maps.shape for o in out_l)
    streams[layers] = len(out_l)
assert len(dem.DEM(cfg).eval()(maps)) == 1
print("streams per DEM depth:", streams)

# %% [markdown]
# ## Table I by simulation
#
# Each generator drops a feature with probability $p$. In one adversarial stream (GAN) a feature
# is dropped with probability $p$ and learned with $1-p$. In the siamese structure (SAS) the two
# streams share parameters: a feature is dropped *somewhere* with probability $1-(1-p)^2 = p(2-p)$
# and lost only if both streams drop it, so it is learned with probability $1-p^2$.

# %%
from dsanet.models.sas import simulate_stream_dropout

table1 = analysis.table_one([0.1, 0.2, 0.3, 0.4, 0.5], n=20_000 if ctx.smoke else 200_000,
                               seed=seed, simulate=simulate_stream_dropout)
assert (table1["simulated"] - table1["formula"]).abs().max() < 0.02
fig = viz.dropout_rates(table1)
viz.save(fig, ctx.out, "01_table1")
table1.pivot_table(index="p", columns=["structure", "rate"], values="simulated").round(3)

# %%
experiments.write_table("I", "Feature dropout and learning rates: simulation beside the formulas",
                        table1.round(4), ctx.out,
                        {"profile": cfg.profile, "seeds": [seed],
                         "note": "Monte Carlo over units; formulas p, 1-p (GAN), p(2-p), 1-p^2 (SAS)."})
ctx.write_json("01_dem_walkthrough", {
    "run": run.dir.name, "streams": streams, "masked_per_sample": M.sum((1, 2)).tolist(),
    "above_mean_share": P_s.mean((1, 2)).tolist(), "table1": table1.to_dict(orient="records")})
