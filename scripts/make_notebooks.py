"""Write notebooks/NN_name.ipynb from the cell sources below (clean: no outputs, kernel python3).

    .venv/bin/python scripts/make_notebooks.py          # (re)write every notebook
    .venv/bin/python scripts/make_notebooks.py --check  # exit 1 if a notebook differs from here

The notebooks only explain and call the package; edit them here, not in Jupyter, so that a
regeneration is byte-identical (cell ids are derived from the notebook and cell number).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from textwrap import dedent

import nbformat

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "notebooks"


def md(text: str) -> tuple:
    return ("markdown", dedent(text).strip("\n"), [])


def code(text: str, *tags: str) -> tuple:
    return ("code", dedent(text).strip("\n"), list(tags))


def params(extra: str = "") -> tuple:
    """The ``parameters`` cell: flat, commented scalars (papermill ``-p NAME VALUE`` overrides)."""
    base = '''
        import os

        profile = os.environ.get("DSANET_PROFILE", "quick")  # smoke | quick | paper | published
        data_root = None   # None: the profile's root (the embedded benchmark is generated there if missing)
        device = "auto"    # auto | cpu | cuda | cuda:N
        seed = 0           # seed of the run(s)
        threads = 1        # torch CPU threads (0: torch's default; >1 only on an otherwise idle machine)
        out_dir = None     # None: reports/ (runs/smoke_reports/ in the smoke profile, never reports/)
        '''
    return code(dedent(base).strip("\n") + ("\n" + dedent(extra).strip("\n") if extra else ""),
                "parameters")


SETUP = code('''
    from dsanet import analysis, experiments, viz
    from dsanet.config import get_profile
    from dsanet.reproduce import setup

    ctx = setup(profile, out_dir, threads)   # cwd = repository root; output folders
    cfg = get_profile(profile, device=device, seed=seed, **({"data_root": data_root} if data_root else {}))
    analysis.ensure_data(cfg)
    print(f"profile {cfg.profile}: data {cfg.data_root} -> outputs {ctx.out}, runs {ctx.runs}")
    ''')


# ============================================================================ 00 data

NB00 = [
    md(r'''
    # 00 · The data: the benchmark, the split of Table II, what voice and face share

    DSANet is trained and tested on VoxCeleb1 voices and VGGFace faces of the same 1,225 people,
    split by name as in Wen et al. (CVPR 2021): names starting with A-B are validation, C-E test,
    the rest train (Table II). Without those data sets, the package generates an **embedded
    benchmark** with the same layout: invented identities whose voice and face share a few latent
    traits (size, width, tone, age, region), so that cross-modal matching is possible but hard.

    This notebook shows

    * the identities and samples per split in the layout of Table II, beside the paper's Table II;
    * example faces and spectrograms per identity and recording session;
    * the shared traits (e.g. voice f0 against jaw width, by gender);
    * calibration lines: the 1:k accuracy an oracle on the shared traits, a gender-only guesser and
      chance reach - the ceiling and floors the trained models of notebooks 02-06 sit between.

    Point `data_root` at a real VoxCeleb1/VGGFace tree (with its meta CSV) to see the real counts.
    '''),
    params('''
        n_identities_shown = 3   # identities in the example grid
        '''),
    SETUP,
    md(r'''
    ## Table II: identities and samples per split

    `layout.load_index` scans the tree against the meta table; the split of each identity follows
    from its name (`layout.split_of`).
    '''),
    code('''
        from dsanet import paper
        from dsanet.data import layout

        index = layout.load_index(cfg.data_root, cfg.meta, cfg.voice_root, cfg.face_root)
        ours = index.summary()
        table2 = analysis.beside_paper_ii(ours, paper.table("II"))
        table2
        '''),
    code('''
        ids = index.identities
        assert (ids["face_id"].map(layout.split_of) == ids["split"]).all(), "split must follow the names"
        assert set(ids["split"]) <= {"train", "val", "test"}
        assert ours.loc["Identities", "Total"] == len(ids)
        assert (ours.loc[["Face Images", "Audio Clips"], "Total"] > 0).all()
        '''),
    md(r'''
    ## Example faces and spectrograms

    Each row is one test identity, each pair of columns one recording session: a face still and the
    log-magnitude spectrogram of a clip (the network's voice input, `frontends.Spectrogram`).
    Faces and voices of one identity vary between sessions (pose, light, channel, room).
    '''),
    code('''
        faces, specs, who, sessions = analysis.examples(index, cfg, n_identities_shown, sessions=2, seed=seed)
        fig = viz.examples(faces, specs, who, sessions)
        viz.save(fig, ctx.out, "00_examples")
        '''),
    md(r'''
    ## The traits voice and face share

    In the benchmark the voice's fundamental frequency and the face's jaw width express the same
    latent "width", and tract length / face length the same "size" (plus gender, which shifts
    both). The scatter shows one dot per identity.
    '''),
    code('''
        traits = analysis.trait_frame(cfg.data_root)
        fig = viz.traits(traits, "f0_hz", "jaw_width", hue="gender")
        viz.save(fig, ctx.out, "00_traits")
        traits.groupby("gender")[["f0_hz", "jaw_width", "vtl_cm", "face_length"]].corr().round(2)
        '''),
    md(r'''
    ## Calibration: how well can 1:k matching go on this data?

    The generator's calibration gives, for each k, the accuracy of a scorer that sees every
    sample's realised shared traits and picks the nearest same-gender candidate (**oracle**), of one
    that only matches gender (**gender-only**), and **chance** 1/k, on the test identities
    (unconstrained protocol; `synthetic.calibrate`).
    '''),
    code('''
        calib = analysis.calibration_lines(cfg.data_root)
        u = calib[calib["protocol"] == "U"]
        fig = viz.calibration(u)
        viz.save(fig, ctx.out, "00_calibration")
        assert calib["value"].between(0, 1).all()
        u.pivot_table(index="k", columns=["scorer", "direction"], values="value").round(3)
        '''),
    code('''
        experiments.write_table("II", "Identities and samples per split (ours beside the paper's)",
                                table2.reset_index(), ctx.out,
                                {"profile": cfg.profile, "data_root": cfg.data_root, "seeds": [seed],
                                 "note": "counts of the data under data_root"})
        calib.to_csv(ctx.tables / "calibration.csv", index=False)
        ctx.write_json("00_data", {"profile": cfg.profile, "data_root": cfg.data_root,
                                   "counts": ours.to_dict(), "skipped": index.skipped,
                                   "calibration": calib.to_dict(orient="records")})
        '''),
]

# ============================================================================ 01 DEM

NB01 = [
    md(r'''
    # 01 · The dual enhancement mechanism (DEM), step by step

    DEM (Sec. III-A) takes the activation map $\mathbf{f} \in \mathbb{R}^{C\times H\times W}$ of a
    backbone, reads it as the matrix $\mathbf{F} \in \mathbb{R}^{C\times HW}$, picks a region and
    makes two copies of the map: one where the salient values of the region are **enhanced** and one
    where they are **suppressed**, so that the second stream has to learn from the subtler values.
    This notebook runs every equation on the face maps of a trained backbone (a run of this profile,
    trained here or read back from `runs/`), checks each against a direct formula, draws Fig. 4-style
    plots, and reproduces Table I (why two shared-parameter streams learn more) by simulation.
    '''),
    params('''
        n_faces = 8   # faces of the test split whose maps are shown
        '''),
    SETUP,
    code('''
        import torch
        from dsanet.models import dem

        run = experiments.cached_run(cfg, ctx.runs, snapshots=True)   # trains once, then read from runs/
        model = analysis.load_model(run)
        test = analysis.split_cache(cfg, "test")
        x = analysis.faces_input(test, range(n_faces))        # (B, 3, S, S) normalised
        with torch.no_grad():
            maps = model.face_backbone(x)                       # (B, C, H, W)
        F = maps.flatten(2)                                     # (B, C, N), N = H*W
        B, C, N = F.shape
        assert (C, N) == (cfg.channels, cfg.map_size ** 2) and torch.isfinite(F).all()
        print(f"run {run.dir.name} ({'read back' if run.cached else 'trained now'}); F: {tuple(F.shape)}")
        '''),
    md(r'''
    ## Peak and salient positions, eqs. (1)-(2)

    $$\mathbf{P}_{\max}(i,j) = \begin{cases}1 & \mathbf{F}(i,j) = \max(\mathbf{F})\\ 0 & \text{otherwise}\end{cases} \quad (1)
    \qquad
    \mathbf{P}_s(i,j) = \begin{cases}1 & \mathbf{F}(i,j) > \operatorname{mean}(\mathbf{F})\\ 0 & \text{otherwise}\end{cases} \quad (2)$$
    '''),
    code('''
        P_max = dem.peak_mask(F)                                # (B, C, N)
        P_s = dem.salient_mask(F)                               # (B, C, N)
        assert torch.equal(P_max, (F == F.amax(dim=(1, 2), keepdim=True)).float())
        assert torch.equal(P_s, (F > F.mean(dim=(1, 2), keepdim=True)).float())
        assert (P_max.sum((1, 2)) >= 1).all()
        print("share of positions above the mean:", P_s.mean((1, 2)).numpy().round(2))
        '''),
    md(r'''
    ## A random block of the grid, eq. (3)

    The $C \times HW$ matrix is cut into an $r \times c$ grid; block $(l, m)$ covers rows
    $[\lfloor lC/r\rfloor, \lfloor (l+1)C/r\rfloor)$ and columns $[\lfloor mHW/c\rfloor, \lfloor (m+1)HW/c\rfloor)$.
    One block per sample is drawn uniformly; $\mathbf{M}_g$ is 1 on it.
    '''),
    code('''
        g = torch.Generator().manual_seed(seed)
        rows, cols = dem.draw_blocks(B, cfg.r, cfg.c, generator=g)
        M_g = dem.block_mask(B, C, N, rows, cols, cfg.r, cfg.c, F.device)    # (B, C, N)
        h = (torch.div((rows + 1) * C, cfg.r, rounding_mode="floor") - torch.div(rows * C, cfg.r, rounding_mode="floor"))
        w = (torch.div((cols + 1) * N, cfg.c, rounding_mode="floor") - torch.div(cols * N, cfg.c, rounding_mode="floor"))
        assert torch.equal(M_g.sum((1, 2)), (h * w).float())
        print(f"grid {cfg.r} x {cfg.c}; first block (l, m) = ({rows[0].item()}, {cols[0].item()}), "
              f"{h[0].item()} x {w[0].item()} entries")
        '''),
    md(r'''
    ## The mask, eqs. (4)-(6)

    $$\mathbf{P}_{sg} = \mathbf{P}_s \odot \mathbf{M}_g \ (4),\qquad
    \mathbf{P}_{sg}(x,y) = 0 \text{ at the peak } (5),\qquad
    \mathbf{M} = \mathbf{P}_{sg} + \mathbf{P}_{\max} \ (6).$$

    `selection="patch"` keeps only $\mathbf{P}_{sg}$ (the published script), `"peak"` only
    $\mathbf{P}_{\max}$ (Table XI).
    '''),
    code('''
        M = dem.dem_mask(F, rows, cols, cfg.r, cfg.c, "both")
        P_sg = P_s * M_g                                        # (4)
        P_sg = P_sg * (1 - P_max)                               # (5)
        assert torch.equal(M, P_sg + P_max)                     # (6), 0/1 valued
        assert torch.equal(dem.dem_mask(F, rows, cols, cfg.r, cfg.c, "patch"), P_s * M_g)
        assert torch.equal(dem.dem_mask(F, rows, cols, cfg.r, cfg.c, "peak"), P_max)
        print("masked entries per sample:", M.sum((1, 2)).int().tolist())
        '''),
    md(r'''
    ## Dual enhancement, eqs. (7)-(9)

    $$\mathbf{F}^s = \mathbf{M}\odot\mathbf{F} \ (7),\qquad
    \mathbf{f}^{sal} = \mathbf{F} + \alpha\,\mathbf{F}^s \ (8),\qquad
    \mathbf{f}^{sub} = \mathbf{F} - \beta\,\mathbf{F}^s \ (9),$$

    with $\alpha = 1$, $\beta = 0.9$. Outside the mask both streams equal $\mathbf{F}$.
    '''),
    code('''
        f_sal = dem.enhance(F, M, cfg.alpha)
        f_sub = dem.suppress(F, M, cfg.beta)
        assert torch.allclose(f_sal, F + cfg.alpha * M * F) and torch.allclose(f_sub, F - cfg.beta * M * F)
        out = M == 0
        assert torch.equal(f_sal[out], F[out]) and torch.equal(f_sub[out], F[out])
        '''),
    md(r'''
    ## Fig. 4: activation values against the mean threshold

    (b) the values of $\mathbf{F}$ for one face (the one with the largest mask), red above its mean and blue below, the drawn block
    ringed and the peak starred; (a) the enhanced salient copy, eq. (8); (c) the enhanced subtle
    copy, eq. (9). The heat maps below show the same three $C\times HW$ matrices with the block boxed.
    '''),
    code('''
        i = int(M.sum((1, 2)).argmax())                          # the face with the largest mask
        block = analysis.block_bounds(rows[i].item(), cols[i].item(), cfg.r, cfg.c, C, N)
        peak = divmod(int(F[i].argmax()), N)
        three = {"(a) salient, eq. (8)": f_sal[i].numpy(), "(b) F, mean threshold (2)": F[i].numpy(),
                 "(c) subtle, eq. (9)": f_sub[i].numpy()}
        fig = viz.dem_values(three, float(F[i].mean()), block, peak)
        viz.save(fig, ctx.out, "01_fig4_values")
        fig = viz.dem_maps(three, block, peak)
        viz.save(fig, ctx.out, "01_fig4_maps")
        '''),
    md(r'''
    ## Salient against subtle maps in image space

    Summing each stream over channels gives an $H\times W$ picture of where it responds: the
    salient stream sharpens the chosen region, the subtle stream flattens it and leaves the rest.
    '''),
    code('''
        H = W = cfg.map_size
        spatial = {name: m.reshape(C, H, W).sum(0) for name, m in
                   {"F": F[i], "salient (8)": f_sal[i], "subtle (9)": f_sub[i]}.items()}
        fig = viz.spatial_maps(x[i], {k: v.numpy() for k, v in spatial.items()})
        viz.save(fig, ctx.out, "01_salient_subtle")
        '''),
    md(r'''
    ## Streams of the DEM module (Fig. 6)

    `DEM(cfg)` applies all of the above to a batch of maps in training mode and returns the streams
    the shared generator sees: 2 for one layer, 6 and 14 when layers are cascaded (Table VI). In
    evaluation it returns the plain maps (DEM is training-only).
    '''),
    code('''
        streams = {}
        for layers in (1, 2, 3):
            c_l = cfg.replace(dem_layers=layers)
            out_l = dem.DEM(c_l).train()(maps, generator=torch.Generator().manual_seed(seed))
            assert len(out_l) == c_l.n_streams and all(o.shape == maps.shape for o in out_l)
            streams[layers] = len(out_l)
        assert len(dem.DEM(cfg).eval()(maps)) == 1
        print("streams per DEM depth:", streams)
        '''),
    md(r'''
    ## Table I by simulation

    Each generator drops a feature with probability $p$. In one adversarial stream (GAN) a feature
    is dropped with probability $p$ and learned with $1-p$. In the siamese structure (SAS) the two
    streams share parameters: a feature is dropped *somewhere* with probability $1-(1-p)^2 = p(2-p)$
    and lost only if both streams drop it, so it is learned with probability $1-p^2$.
    '''),
    code('''
        from dsanet.models.sas import simulate_stream_dropout

        table1 = analysis.table_one([0.1, 0.2, 0.3, 0.4, 0.5], n=20_000 if ctx.smoke else 200_000,
                                       seed=seed, simulate=simulate_stream_dropout)
        assert (table1["simulated"] - table1["formula"]).abs().max() < 0.02
        fig = viz.dropout_rates(table1)
        viz.save(fig, ctx.out, "01_table1")
        table1.pivot_table(index="p", columns=["structure", "rate"], values="simulated").round(3)
        '''),
    code('''
        experiments.write_table("I", "Feature dropout and learning rates: simulation beside the formulas",
                                table1.round(4), ctx.out,
                                {"profile": cfg.profile, "seeds": [seed],
                                 "note": "Monte Carlo over units; formulas p, 1-p (GAN), p(2-p), 1-p^2 (SAS)."})
        ctx.write_json("01_dem_walkthrough", {
            "run": run.dir.name, "streams": streams, "masked_per_sample": M.sum((1, 2)).tolist(),
            "above_mean_share": P_s.mean((1, 2)).tolist(), "table1": table1.to_dict(orient="records")})
        '''),
]

# ============================================================================ 02 SAS training

NB02 = [
    md(r'''
    # 02 · Training DSANet: the siamese adversarial structure at work

    Every training step has two parts (Sec. III-B/D). First the discriminator $D$ learns to tell the
    modality of each embedding $\mathbf{h}$ of every stream,

    $$\mathcal{L}^{sal}_{disc} = -\frac1N\sum_{i=1}^N\sum_{j=0}^k Y_{ij}\log D(\mathbf{h}^{sal}_{ij};\theta_D) \ (12),\qquad
    \mathcal{L}^{total}_{disc} = \mathcal{L}^{sal}_{disc} + \mathcal{L}^{sub}_{disc} \ (13);$$

    then the backbones, the shared generator $G$ (eqs. 10-11) and the classifier minimise

    $$\mathcal{L}^m_{total} = \mathcal{L}^{total}_{disc} + \lambda\,\mathcal{L}^m_{metric} + \mu\,\mathcal{L}^{total}_{AMCE} \ (24)$$

    with the adversarial term taken on the flipped modality labels, so that $G$ learns embeddings
    whose modality $D$ cannot tell. The curves below come from the run's history; the run is cached
    under `runs/` by its config hash (notebooks 01, 03, 05 and 06 reuse it).
    '''),
    params('''
        progress = False   # tqdm progress bar while training
        '''),
    SETUP,
    code('''
        run = experiments.cached_run(cfg, ctx.runs, progress=progress, snapshots=True)
        hist = run.history
        print(f"run {run.dir.name}: {cfg.steps} steps, batch {cfg.batch_size}, "
              f"{'read back' if run.cached else 'trained now'} ({run.wall_s:.0f} s to train)")
        hist[["step", "total", "adversarial", "metric", "cls", "disc", "disc_acc"]].tail(3).round(3)
        '''),
    code('''
        import numpy as np

        loss_cols = analysis.loss_columns(hist)
        assert loss_cols and np.isfinite(hist[loss_cols].to_numpy(dtype=float)).all(), "losses must be finite"
        '''),
    md(r'''
    ## Loss curves and the discriminator's modality accuracy

    A working adversarial game shows the discriminator's loss staying near its chance value
    ($\log 2$ per item) and its modality accuracy drifting towards 0.5, while the metric and
    classification losses fall.
    '''),
    code('''
        panels = analysis.training_panels(hist)
        fig = viz.training_curves(hist, panels, smooth=1 if ctx.smoke else 5)
        viz.save(fig, ctx.out, "02_training_curves")
        '''),
    md(r'''
    ## Test results of this run

    Binary (k = 2) and 10-way matching accuracy and retrieval mAP on the test split, in percent,
    with DSANet's row of Table IV beside. Candidates are ranked either by the embedding distance
    (what the structured metric of eqs. 21-22 trains) or by the matching classifier's logits (the
    paper's head, trained here for k = 2; its 10-way cells fall back to the distance). The
    benchmark's level is set by its calibration (notebook 00): compare with the oracle line there,
    not with the paper's VoxCeleb numbers.
    '''),
    code('''
        import pandas as pd
        from dsanet import paper

        ours = analysis.headline_by_scorer(run.metrics).round(1)
        summary = pd.concat([ours, pd.DataFrame([paper.dsanet_headline()], index=["paper (DSANet)"])])
        acc = run.metrics[run.metrics["metric"] == "acc"]["value"]
        assert acc.between(0, 1).all()
        summary
        '''),
    code('''
        keep = ctx.out / "runs" / "02_sas_training"
        keep.mkdir(parents=True, exist_ok=True)
        run.metrics.to_csv(keep / "metrics.csv", index=False)
        hist.to_csv(keep / "history.csv", index=False)
        ctx.write_json("02_sas_training", {"run": run.dir.name, "steps": cfg.steps, "wall_s": run.wall_s,
                                           "headline": summary.to_dict(orient="index")})
        '''),
]

# ============================================================================ 03 AMCE

NB03 = [
    md(r'''
    # 03 · Adaptive masked cross-entropy (AMCE) against BCE, GBCE and focal loss

    The matching classifier gives $k$ logits $m_j$, with $p_j = \sigma(m_j)$ (15). AMCE keeps the
    true class and only those negatives whose probability is within $\eta$ of the row's most
    probable class,

    $$\omega_j = \begin{cases} 1 & L_i = j\\ 1 & L_i \ne j,\ p_j - p^{\max} + \eta > 0\\ 0 & L_i\ne j,\ p_j - p^{\max} + \eta < 0\end{cases} \ (16),
    \qquad \mathcal{L}_{AMCE} = -\sum_{j=1}^k \omega_j \log(\cdot) \ (14),$$

    so its gradient is (17) $\partial\mathcal{L}/\partial m_j = p_j - 1$ for the true class and
    $\omega_j p_j$ for a negative: the hard negatives push, the easy ones are ignored. The paper
    contrasts it with a BCE gradient of 0 on negatives (18) and concludes (19) that AMCE's is
    larger. (The BCE of `losses.bce_loss` is the full binary cross-entropy, whose negative gradient
    is $p_j$ - AMCE with every negative kept; see `docs/fidelity.md`.)

    This notebook computes the per-class gradients of the four losses on one probability row, counts
    how many negatives the mask keeps as training goes, and runs Table VIII (binary and 10-way).
    '''),
    params('''
        table_steps = None   # training steps per Table VIII run (None: experiments.SWEEP_STEPS[profile])
        seeds = 1            # seeds per cell (cells: mean +/- 95% CI over seeds)
        n_tuples = 500       # training tuples scored per direction for the kept-negatives curve (smoke: 64)
        workers = 2          # training processes in parallel (1 thread each; the smoke profile uses 1)
        '''),
    SETUP,
    md(r'''
    ## Gradients on one probability row (eqs. 17 and 18)

    A 10-way row whose true class is 0; classes 1, 2 and 5 are hard negatives (probabilities close to
    the maximum), the others easy.
    '''),
    code('''
        import torch
        from dsanet import losses

        logits = torch.tensor([[1.2, 1.9, 1.5, -0.4, -1.0, 1.7, -2.0, 0.1, -0.8, -1.5]])
        target = torch.tensor([0])
        grads = analysis.class_gradients(logits, target, cfg)
        p = torch.sigmoid(logits)[0]
        omega = ((p - p.max() + cfg.eta) > 0).float()
        omega[0] = 1.0
        eq17 = torch.where(torch.arange(10) == 0, p - 1, omega * p)
        amce = grads[grads["loss"] == "AMCE"].sort_values("class")["grad"].to_numpy()
        amce = torch.tensor(amce, dtype=torch.float32)
        assert torch.allclose(amce, eq17, atol=1e-6), "AMCE's gradient is eq. (17)"
        assert torch.equal(losses.amce_mask(logits, target, cfg.eta)[0], omega)
        fig = viz.gradient_bars(grads, f"dL/dm_j, true class 0, eta = {cfg.eta}")
        viz.save(fig, ctx.out, "03_gradients")
        grads.pivot_table(index="class", columns="loss", values="grad").round(3).T
        '''),
    md(r'''
    ## How many negatives does the mask keep as training goes?

    The DSANet run of this profile (k = 2, notebook 02) and Table VIII's AMCE run with k = 10 keep
    a snapshot of the model at every validation step; each snapshot scores `n_tuples` training
    tuples per direction and the plot shows the share of negatives with $\omega_j = 1$. At
    initialisation the probabilities are alike and most negatives are kept; as the classifier
    separates the classes, the mask keeps only the hard ones.
    '''),
    code('''
        steps = table_steps or experiments.SWEEP_STEPS.get(cfg.profile)
        track = [cfg, experiments.budget(cfg, steps).replace(k=10)]     # k = 2 (notebook 02), k = 10
        trained = experiments.run_many(experiments.table_configs(["VIII"], cfg, range(seeds), steps), ctx.runs,
                                       1 if ctx.smoke else workers, snapshots=track, log=None if ctx.smoke else print)
        tracked = [experiments.cached_run(c, ctx.runs, snapshots=True) for c in track]
        kept = analysis.amce_kept_curve(tracked, n_tuples=64 if ctx.smoke else n_tuples, seed=seed)
        assert kept["kept"].between(0, 1).all()
        fig = viz.kept_negatives(kept, hue="k")
        viz.save(fig, ctx.out, "03_kept_negatives")
        kept.pivot_table(index="step", columns="k", values="kept").round(3)
        '''),
    md(r'''
    ## Table VIII: the classification loss, binary and 10-way

    Each row swaps the classification term of eq. (24); k = 10 columns are separate runs with a
    10-way classifier. Cells are mean ± 95% CI over seeds (bootstrap CI of the test tuples when one
    seed), the paper's number beside, twice: with the candidates ranked by the matching classifier
    (the paper's head) and by embedding distance.
    '''),
    code('''
        result = experiments.run_table("VIII", cfg, seeds=range(seeds), runs_root=ctx.runs, steps=steps,
                                       log=None)                     # trained above; read back here
        assert result.cells["mean"].between(0, 100).all()
        experiments.wide_all(result)
        '''),
    code('''
        experiments.write_result(result, ctx.out)
        ctx.write_json("03_amce_analysis", {"gradients": grads.to_dict(orient="records"),
                                            "kept": kept.to_dict(orient="records"),
                                            "table_VIII": result.made})
        '''),
]

# ============================================================================ 04 ablations

NB04 = [
    md(r'''
    # 04 · Ablations: Tables V, VI, VII, IX, X, XI and XII

    Every table is a list of named presets in `dsanet.experiments` (row name -> Config overrides on
    top of this profile). `run_table` trains each (row, seed) once - runs are cached under `runs/`
    by config hash, so the DSANet row, which appears in most tables, trains once - and reduces each
    cell to mean ± 95% CI over seeds (Student t; with one seed, the bootstrap CI of the test tuples),
    the paper's number beside. Each table is shown twice: candidates ranked by the matching
    classifier (the paper's head) and by embedding distance.

    In the quick profile each run is shortened to `ablation_steps` steps so that the whole sweep
    fits the reproduction budget; each table says how it was made. Read the tables for orderings
    and gaps, with their intervals: on the benchmark, differences smaller than the CI are noise.

    | table | what changes |
    |---|---|
    | V | DEM, SAS, AMCE switched on one by one (rows a-g) |
    | VI | 1, 2, 3 cascaded DEM layers (2, 6, 14 streams) |
    | VII | one adversarial stream against the siamese structure, per enhancement |
    | IX | GAN, WGAN, SAGAN as the adversarial network (binary and 10-way) |
    | X | triplet, lifted structure, structured metric (binary and 10-way) |
    | XI | peak / patch / both x suppression / enhancement / dual |
    | XII | λ, μ, α, β, c, r (binary accuracy) and λ1, μ1 (retrieval mAP) |
    '''),
    params('''
        ablation_steps = None   # training steps per run (None: experiments.SWEEP_STEPS[profile])
        seeds = 1               # seeds per cell
        tables = "V,VI,VII,IX,X,XI,XII"   # which tables to run
        rows = 0                # rows per table (0: all; the smoke profile keeps the first 2)
        workers = 2             # training processes in parallel (1 thread each; the smoke profile uses 1)
        '''),
    SETUP,
    code('''
        steps = ablation_steps or experiments.SWEEP_STEPS.get(cfg.profile)
        names = [t.strip() for t in tables.split(",") if t.strip()]
        n_rows = rows or (2 if ctx.smoke else None)
        plan = experiments.plan(names, cfg, range(seeds), steps, ctx.runs, n_rows)
        print(f"{len(names)} tables, {plan['cells']} cells, {plan['runs']} distinct runs "
              f"({plan['to_train']} to train) at {plan['steps']} steps")
        '''),
    code('''
        trained = experiments.run_many(experiments.table_configs(names, cfg, range(seeds), steps, n_rows),
                                       ctx.runs, 1 if ctx.smoke else workers, log=None if ctx.smoke else print)
        '''),
    code('''
        results = {}
        for name in names:
            results[name] = experiments.run_table(name, cfg, seeds=range(seeds), runs_root=ctx.runs,
                                                  steps=steps, rows=n_rows, log=None)
            experiments.write_result(results[name], ctx.out)
        assert all(r.cells["mean"].between(0, 100).all() for r in results.values())
        '''),
    *[item for name, text in [
        ("V", "Table V: components (binary). a = one-stream adversarial baseline with BCE; b adds DEM; "
              "c the siamese structure; d AMCE; e-g combinations; g is DSANet."),
        ("VI", "Table VI: cascaded DEM layers."),
        ("VII", "Table VII: single GAN stream against SAS for each enhancement."),
        ("IX", "Table IX: adversarial networks."),
        ("X", "Table X: metric losses."),
        ("XI", "Table XI: feature selection strategies."),
        ("XII", "Table XII: hyper-parameters (the λ1, μ1 rows are retrieval mAP)."),
    ] for item in (
        md(f"### {text}"),
        code(f'''
            experiments.wide_all(results["{name}"]) if "{name}" in results else "not run (see `tables`)"
            '''),
    )],
    code('''
        ctx.write_json("04_ablations", {name: {"made": r.made, "cells": r.cells.to_dict(orient="records")}
                                        for name, r in results.items()})
        '''),
]

# ============================================================================ 05 feature plots

NB05 = [
    md(r'''
    # 05 · Feature plots: Fig. 1 (t-SNE, UMAP) and Fig. 7 (class activation maps)

    **Fig. 1** compares the embedding space of a one-stream adversarial network (Table VII's
    baseline: structure `gan`, no enhancement) with DSANet's: 5 test identities x 15 samples,
    voices and faces, projected to 2-D with t-SNE (scikit-learn) and UMAP (umap-learn), both seeded.
    Beside the pictures, two numbers that do not depend on a projection: the silhouette of the
    identities in the embedding space and the ratio of mean within-identity to between-identity
    distance (lower is tighter).

    **Fig. 7** shows Grad-CAM class activation maps of faces: the gradient of the matching score
    $s = -\lVert \mathbf{h}_{face} - \mathbf{h}_{voice} \rVert$ (the embedding distance the metric of
    eqs. 21-22 trains) with respect to the face backbone's last map $A$ weights its channels,
    $\text{CAM} = \operatorname{relu}(\sum_c \bar{w}_c A_c)$, $\bar{w}_c = \operatorname{mean}_{hw}\,\partial s/\partial A_{chw}$.
    '''),
    params('''
        n_ids = 5          # identities in Fig. 1
        per_id = 15        # samples per identity and modality
        n_cam = 6          # faces in Fig. 7
        umap = True        # also project with UMAP (not in the smoke profile: numba compiles for ~30 s)
        workers = 2        # training processes in parallel (1 thread each; the smoke profile uses 1)
        '''),
    SETUP,
    code('''
        base = cfg.replace(**experiments.BASELINE)            # Table VII's baseline: gan, no DEM
        experiments.run_many([base], ctx.runs, 1 if ctx.smoke else workers, snapshots=[cfg], log=None)
        runs = {"one-stream GAN": experiments.cached_run(base, ctx.runs),
                "DSANet": experiments.cached_run(cfg, ctx.runs, snapshots=True)}
        models = {name: analysis.load_model(r) for name, r in runs.items()}
        test = analysis.split_cache(cfg, "test")
        print({name: r.dir.name for name, r in runs.items()})
        '''),
    md(r'''
    ## Fig. 1: the embedding spaces
    '''),
    code('''
        pick = analysis.pick_identities(test, n_ids, per_id, seed=seed)
        emb = {name: analysis.embed_items(m, test, cfg, pick) for name, m in models.items()}
        methods = ["tsne"] + (["umap"] if umap and not ctx.smoke else [])   # UMAP compiles for ~30 s
        points = analysis.projections(emb, methods, seed=seed)
        fig = viz.feature_grid(points, "5 identities x 15 samples (o voice, x face)")
        viz.save(fig, ctx.out, "05_fig1_features")
        spread = analysis.cluster_stats(emb)
        assert spread["silhouette"].between(-1, 1).all()
        spread
        '''),
    md(r'''
    ## Fig. 7: class activation maps of faces
    '''),
    code('''
        from dsanet import cam

        faces, voices_of = analysis.cam_inputs(test, n_cam, seed=seed)
        maps = {name: cam.grad_cam(m, faces, analysis.voice_embeddings(m, test, cfg, voices_of))
                for name, m in models.items()}
        for v in maps.values():
            assert v.shape == (n_cam, *faces.shape[-2:]) and float(v.min()) >= 0 and float(v.max()) <= 1
        fig = viz.cams(faces, {k: v.numpy() for k, v in maps.items()})
        viz.save(fig, ctx.out, "05_fig7_cam")
        '''),
    code('''
        ctx.write_json("05_feature_plots", {"runs": {k: r.dir.name for k, r in runs.items()},
                                            "cluster_stats": spread.reset_index().to_dict(orient="records")})
        spread.reset_index().to_csv(ctx.tables / "fig1_cluster_stats.csv", index=False)
        '''),
]

# ============================================================================ 06 matching / retrieval

NB06 = [
    md(r'''
    # 06 · Matching and retrieval: Table IV, Fig. 5, verification

    The headline of the paper (Table IV, Wen et al.'s split): 1:2 and 1:10 matching accuracy and
    retrieval mAP in both directions - V-F (a voice anchor, face candidates) and F-V. Matching runs
    train with the loss of eq. (24); the retrieval run trains on (voice, face) pairs with

    $$\mathcal{L}^r_{total} = \mathcal{L}^{total}_{disc} + \lambda_1\mathcal{L}^r_{metric} + \mu_1\mathcal{L}_{cls} \ (25)$$

    (the classifier $C_R$ on embedding differences, eq. 26, and class centres, eq. 27). Results are
    read at k = 2..10 (Fig. 5), under the unconstrained (U) protocol and the gender-constrained (G)
    one (negatives of the anchor's gender), with verification ROC AUC and EER. Every value carries a
    95% bootstrap interval over the test tuples.
    '''),
    params('''
        seeds = 1          # seeds of the binary, 10-way and retrieval runs
        k10_steps = None   # steps of the 10-way runs (None: analysis.K10_STEPS[profile] or the profile's)
        workers = 2        # training processes in parallel (1 thread each; the smoke profile uses 1)
        '''),
    SETUP,
    code('''
        runs = analysis.headline_runs(cfg, range(seeds), ctx.runs, 1 if ctx.smoke else workers, k10_steps)
        print({name: [r.dir.name for r in rs] for name, rs in runs.items()})
        '''),
    md(r'''
    ## Table IV
    '''),
    code('''
        table4 = analysis.table_four(runs)
        assert table4["mean"].dropna().between(0, 100).all()
        analysis.wide_table_four(table4)
        '''),
    md(r'''
    ## Fig. 5: accuracy against the number of candidates

    The k = 2 run's embeddings scored by distance for every k, both directions, U protocol, with the
    benchmark's oracle and chance lines (notebook 00) for reference.
    '''),
    code('''
        curve = analysis.k_curve(runs["matching k=2"])
        ref = analysis.calibration_lines(cfg.data_root, ks=sorted(curve["k"].unique()))
        ref = ref[(ref["protocol"] == "U") & (ref["direction"] == "V-F") & (ref["scorer"] != "gender_only")]
        ref = ref.assign(value=100 * ref["value"], scorer="benchmark " + ref["scorer"] + " (V-F)")
        fig = viz.matching_curve(curve, ref)
        viz.save(fig, ctx.out, "06_fig5_k_curve")
        assert curve["value"].between(0, 100).all()
        curve.pivot_table(index="k", columns="direction", values="value").round(1)
        '''),
    md(r'''
    ## Verification and the U / G protocols

    U draws the negatives among all test identities, G among those of the anchor's gender (Wen et
    al.): gender alone no longer helps under G, so the gap between the two columns is how much of
    the accuracy gender explains. Verification scores (voice, face) pairs by embedding distance
    (ROC AUC, equal error rate). Distance-scored, from the binary run; percent, 95% bootstrap CI.
    '''),
    code('''
        extra = analysis.protocol_summary(runs["matching k=2"])
        auc = extra[extra["metric"] == "auc"]["value"]
        assert auc.between(0, 100).all()
        analysis.protocol_table(extra)
        '''),
    code('''
        experiments.write_table("IV", "Matching accuracy (k = 2, 10) and retrieval mAP (ours beside the paper)",
                                analysis.wide_table_four(table4), ctx.out,
                                analysis.made_of(runs, cfg), long=table4)
        curve.to_csv(ctx.tables / "fig5_k_curve.csv", index=False)
        extra.to_csv(ctx.tables / "verification_protocols.csv", index=False)
        ctx.write_json("06_matching_retrieval", {"table_IV": table4.to_dict(orient="records"),
                                                 "fig5": curve.to_dict(orient="records"),
                                                 "verification": extra.to_dict(orient="records")})
        '''),
]

NOTEBOOKS = {
    "00_data": NB00,
    "01_dem_walkthrough": NB01,
    "02_sas_training": NB02,
    "03_amce_analysis": NB03,
    "04_ablations": NB04,
    "05_feature_plots": NB05,
    "06_matching_retrieval": NB06,
}


def build(name: str, cells: list[tuple]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, (kind, src, tags) in enumerate(cells):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cell = make(src)
        cell.id = f"{name[:2]}-{i:02d}"
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(name, NOTEBOOKS[name])) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    stale = []
    for name in NOTEBOOKS:
        path, text = OUT / f"{name}.ipynb", render(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print("stale notebooks (run scripts/make_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
