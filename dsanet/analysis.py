"""What the notebooks compute around the package: data views, trained models read back, the
embeddings, masks and reductions behind the figures and Table IV.

Everything here calls the package's own pieces (``data``, ``models``, ``losses``,
``engine.evaluate``) on runs made by :func:`dsanet.experiments.cached_run`; nothing trains except
through it. Kept out of the notebooks so that they only explain and call.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import Config, get_profile
from .experiments import Run, cached_run, fmt_cell, read_cell

LABELS = {"vf": "V-F", "fv": "F-V"}

# ----------------------------------------------------------------------------- data (notebook 00)


EMBEDDED = {"smoke": "smoke", "quick": "default"}   # profile -> synthetic.PRESETS name


def ensure_data(cfg: Config) -> Path:
    """The data root of ``cfg``. For the smoke / quick profiles the embedded benchmark is generated
    there (the profile's preset, seed 0) when the folder holds no meta table yet, or regenerated
    when the profile's own folder holds a tree whose calibration.json records other knobs than the
    preset's (written by an older version of the generator; a tree elsewhere is never replaced);
    other data must exist."""
    root = Path(cfg.data_root)
    stale = cfg.profile in EMBEDDED and _stale_benchmark(root, EMBEDDED[cfg.profile])
    if stale and root != Path(get_profile(cfg.profile).data_root):   # a tree of the user's: keep it
        print(f"{root}: an embedded benchmark with other knobs than the {EMBEDDED[cfg.profile]!r} "
              "preset; using it as it is (its calibration.json gives its own lines)")
        stale = False
    if not stale and ((root / "meta.csv").exists() or cfg.meta
                      or (root.exists() and any(root.glob("*.csv")))):
        return root
    if cfg.profile not in EMBEDDED:
        raise FileNotFoundError(f"{root}: no data (a tree with voices/, faces/ and a meta CSV); "
                                f"the {cfg.profile!r} profile does not generate any")
    from .data import synthetic

    if stale:
        print(f"{root}: the embedded benchmark there was made with other knobs than the "
              f"{EMBEDDED[cfg.profile]!r} preset; regenerating it")
    workers = 1 if cfg.profile == "smoke" else min(4, os.cpu_count() or 1)   # byte-identical for any
    synthetic.generate(root, **synthetic.PRESETS[EMBEDDED[cfg.profile]], overwrite=root.exists(),
                       workers=workers)
    return root


def _stale_benchmark(root: Path, preset: str) -> bool:
    """True when ``root`` holds an embedded benchmark whose knobs differ from ``preset``'s."""
    from .data import synthetic

    path = root / "calibration.json"
    if not path.exists():
        return False
    want = dict(synthetic.DEFAULTS, **synthetic.PRESETS[preset])
    have = json.loads(path.read_text()).get("knobs", {})
    return have != want


def trait_frame(root) -> pd.DataFrame:
    """One row per identity: gender, split and the mean realised voice and face traits of its
    samples (f0_hz, vtl_cm from voices; jaw_width, face_length from faces; samples.csv)."""
    path = Path(root) / "samples.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no per-sample traits (only the embedded benchmark has them)")
    s = pd.read_csv(path)
    voice = s[s.modality == "voice"].groupby("identity")[["f0_hz", "vtl_cm"]].mean()
    face = s[s.modality == "face"].groupby("identity")[["jaw_width", "face_length"]].mean()
    keys = s.groupby("identity")[["gender", "split"]].first()
    return keys.join(voice).join(face).reset_index()


def calibration_lines(root, ks=range(2, 11), n_tuples: int = 2000) -> pd.DataFrame:
    """Oracle / gender-only / chance 1:k accuracy for every k (U and G protocols, both directions),
    recomputed from the benchmark's knobs in calibration.json (``synthetic.calibrate``).

    Columns: k, scorer, direction ("V-F" | "F-V"), protocol ("U" | "G"), value in [0, 1].
    """
    from .data import synthetic

    path = Path(root) / "calibration.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no calibration (only the embedded benchmark has one)")
    knobs = json.loads(path.read_text())["knobs"]
    raw = synthetic.calibrate(synthetic.plan(**knobs), n_tuples=n_tuples, ks=tuple(ks))
    rows = [{"k": int(kk[1:]), "scorer": scorer, "direction": LABELS[d],
             "protocol": {"unconstrained": "U", "gender": "G"}[proto], "value": float(v)}
            for proto, by_k in raw.items() for kk, by_d in by_k.items()
            for d, cell in by_d.items() for scorer, v in cell.items() if scorer != "n"]
    return pd.DataFrame(rows)


def beside_paper_ii(ours: pd.DataFrame, paper_ii: pd.DataFrame) -> pd.DataFrame:
    """Our Table II counts (layout.DataIndex.summary) with the paper's beside, row by row."""
    names = {"Identities": "identities", "Face Images": "faces", "Audio Clips": "voices"}
    p = paper_ii.set_index("row")
    out = ours.copy()
    for col, key in (("Train", "train"), ("Validation", "val"), ("Test", "test"), ("Total", "total")):
        out[f"{col} (paper)"] = [int(p.loc[names[r], key]) for r in out.index]
    cols = [c for pair in (("Train", "Train (paper)"), ("Validation", "Validation (paper)"),
                           ("Test", "Test (paper)"), ("Total", "Total (paper)")) for c in pair]
    return out[cols]


def examples(index, cfg: Config, n: int, sessions: int = 2, seed: int = 0):
    """Faces (n, sessions, 3, S, S) and spectrograms (n, sessions, F, T) of test identities with at
    least ``sessions`` sessions in both modalities; returns (faces, specs, names, session labels)."""
    from .data.frontends import Spectrogram, load_face, load_wav, resize_face

    rng = np.random.default_rng(seed)
    v, f = index.split_items("test", "voice"), index.split_items("test", "face")
    ok = sorted(set(v.groupby("identity")["session"].nunique().loc[lambda s: s >= sessions].index)
                & set(f.groupby("identity")["session"].nunique().loc[lambda s: s >= sessions].index))
    if not ok:
        raise ValueError(f"no test identity has {sessions} sessions of both voice and face")
    chosen = rng.choice(ok, size=min(n, len(ok)), replace=False)
    spec = Spectrogram(cfg)
    faces, specs = [], []
    for ident in chosen:
        fs = f[f.identity == ident].drop_duplicates("session").head(sessions)  # 1st item / session
        vs = v[v.identity == ident].drop_duplicates("session").head(sessions)
        faces.append([resize_face(load_face(index.face_path(p)), cfg.face_size) for p in fs.path])
        with torch.no_grad():
            waves = [load_wav(index.voice_path(p), cfg.sample_rate) for p in vs.path]
            specs.append([spec(w)[..., : 4 * cfg.spec_frames].squeeze(0) for w in waves])
    names = [str(index.identities.loc[i, "face_id"]) for i in chosen]
    return faces, specs, names, [f"session {j + 1}" for j in range(sessions)]


# ----------------------------------------------------------------------------- runs and models

def split_cache(cfg: Config, split: str):
    """The decoded cache of one split (built on first use, then memory-mapped)."""
    from .data.cache import build_cache
    from .data.layout import load_index

    index = load_index(cfg.data_root, cfg.meta, cfg.voice_root, cfg.face_root)
    return build_cache(index, cfg, split)


def load_model(run: Run | str | Path, device: str = "cpu"):
    """The selected checkpoint of a run (or a checkpoint path) as an eval-mode DSANet."""
    from .engine.checkpoint import load_checkpoint
    from .models.dsanet import DSANet

    path = run.checkpoint if isinstance(run, Run) else Path(run)
    if path is None:
        raise FileNotFoundError(f"run {getattr(run, 'dir', run)} has no checkpoint")
    state = load_checkpoint(path, map_location=device)
    model = DSANet(Config.from_dict(state["config"]))
    if "centres" in state["model"]:
        model.init_centres(state["model"]["centres"].shape[1])
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def faces_input(cached, items) -> torch.Tensor:
    """Normalised faces (B, 3, S, S) float32 of cache items (the evaluation preprocessing)."""
    from .data.frontends import normalise_faces

    return normalise_faces(cached.faces[torch.as_tensor(list(items))])


def voices_input(cached, items, cfg: Config) -> torch.Tensor:
    """Centre-cropped spectrograms (B, 1, F, spec_frames) of cache items (evaluation crop)."""
    from .data.batches import voice_batch

    return voice_batch(cached, torch.as_tensor(list(items)), cfg, train=False)


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


def headline_by_scorer(metrics: pd.DataFrame) -> pd.DataFrame:
    """Table IV's cells of one run (percent), one row per matching scorer ("distance",
    "classifier"); a k the classifier was not trained for falls back to the distance."""
    from .engine.evaluate import headline

    rows = [headline(metrics, scorer="distance"), headline(metrics, scorer="classifier")]
    out = pd.concat(rows, ignore_index=True)
    out.index = ["ours (distance)", "ours (classifier)"]
    return out


# ----------------------------------------------------------------------------- AMCE (03)

def class_gradients(logits: torch.Tensor, target: torch.Tensor, cfg: Config) -> pd.DataFrame:
    """dL/dm_j of AMCE, BCE, GBCE and focal loss on logits (1, k): columns class, loss, grad, prob."""
    from . import losses

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
    from .data.batches import matching_batch
    from .data.protocols import sample_training_tuples
    from .losses import amce_mask

    k = model.classifier.k
    kept, correct = [], []
    rng = np.random.default_rng([seed, 7])
    model.eval()
    with torch.no_grad():
        for d in ("vf", "fv"):
            tuples = torch.from_numpy(sample_training_tuples(cached, n, k, d, rng))   # (n, k+1)
            anchor, cands, label = matching_batch(cached, tuples, d, cfg, False)
            logits = model.forward_tuples(anchor, cands, d).logits[0]          # (n, k)
            mask = amce_mask(logits, label, cfg.eta)
            kept.append((mask.sum(1) - 1) / (k - 1))
            correct.append((logits.argmax(1) == label).float())
    return {"k": k, "kept": float(torch.cat(kept).mean()),
            "train_acc": float(torch.cat(correct).mean())}


def amce_kept_curve(runs: list[Run], n_tuples: int, seed: int = 0) -> pd.DataFrame:
    """:func:`amce_kept` at every snapshot of each run (step 0 = the seeded initial model)."""
    from .engine.train import build_model, build_task

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


# ----------------------------------------------------------------------------- features and CAM (05)

def pick_identities(cached, n_ids: int, per_id: int, seed: int = 0) -> dict:
    """n_ids identities with per_id voice and per_id face items each (fewer if an identity has fewer):
    {"voice": (items, ids), "face": (items, ids)}."""
    rng = np.random.default_rng(seed)
    vids, fids = cached.voice_ids.numpy(), cached.face_ids.numpy()
    common = np.intersect1d(np.unique(vids), np.unique(fids))
    counts = np.minimum(np.bincount(vids, minlength=common.max() + 1)[common],
                        np.bincount(fids, minlength=common.max() + 1)[common])
    pool = common[np.argsort(-counts, kind="stable")][: max(n_ids * 3, n_ids)]
    chosen = np.sort(rng.choice(pool, size=min(n_ids, len(pool)), replace=False))
    out = {}
    for mod, ids in (("voice", vids), ("face", fids)):
        items = np.concatenate([rng.permutation(np.flatnonzero(ids == i))[:per_id] for i in chosen])
        out[mod] = (items, ids[items])
    return out


def embed_items(model, cached, cfg: Config, pick: dict) -> pd.DataFrame:
    """Evaluation embeddings of picked items: one row per item (identity, modality, e0..eD-1)."""
    frames = []
    with torch.no_grad():
        for mod, (items, ids) in pick.items():
            x = faces_input(cached, items) if mod == "face" else voices_input(cached, items, cfg)
            h = model.eval().embed(x, mod).numpy()
            df = pd.DataFrame(h, columns=[f"e{i}" for i in range(h.shape[1])])
            df.insert(0, "modality", mod)
            df.insert(0, "identity", ids)
            frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _matrix(df: pd.DataFrame) -> np.ndarray:
    return df[[c for c in df.columns if c.startswith("e") and c[1:].isdigit()]].to_numpy()


def projections(emb: dict[str, pd.DataFrame], methods, seed: int = 0) -> pd.DataFrame:
    """2-D projections of each model's embeddings: x, y, identity, modality, model, projection."""
    from .projections import project

    out = []
    for name, df in emb.items():
        for m in methods:
            xy = project(_matrix(df), m, seed)
            out.append(pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1],
                                     "identity": df["identity"].astype(str),
                                     "modality": df["modality"], "model": name,
                                     "projection": {"tsne": "t-SNE", "umap": "UMAP"}[m]}))
    return pd.concat(out, ignore_index=True)


def cluster_stats(emb: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per model: silhouette of the identities, within/between mean distance ratio, cross-modal
    within/between ratio (voice-face pairs only) - in the embedding space, no projection."""
    from scipy.spatial.distance import cdist
    from sklearn.metrics import silhouette_score

    rows = {}
    for name, df in emb.items():
        x, ids, mod = _matrix(df), df["identity"].to_numpy(), df["modality"].to_numpy()
        d = cdist(x, x)
        same, off = ids[:, None] == ids[None, :], ~np.eye(len(x), dtype=bool)
        cross = mod[:, None] != mod[None, :]
        rows[name] = {"silhouette": float(silhouette_score(x, ids)),
                      "within/between": float(d[same & off].mean() / d[~same].mean()),
                      "cross-modal within/between": float(d[same & cross].mean()
                                                          / d[~same & cross].mean())}
    return pd.DataFrame(rows).T.rename_axis("model")


def cam_inputs(cached, n: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """n test faces of distinct identities (normalised) and, per face, a voice item of its identity."""
    rng = np.random.default_rng([seed, 5])
    vids, fids = cached.voice_ids.numpy(), cached.face_ids.numpy()
    ids = rng.choice(np.intersect1d(np.unique(vids), np.unique(fids)), size=n, replace=False)
    face_items = [int(rng.choice(np.flatnonzero(fids == i))) for i in ids]
    voice_items = np.array([int(rng.choice(np.flatnonzero(vids == i))) for i in ids])
    return faces_input(cached, face_items), voice_items


def voice_embeddings(model, cached, cfg: Config, items) -> torch.Tensor:
    with torch.no_grad():
        return model.eval().embed(voices_input(cached, items, cfg), "voice")


# ----------------------------------------------------------------------------- Table IV, Fig. 5 (06)

def headline_configs(cfg: Config, seeds, k10_steps: int | None = None) -> dict[str, list[Config]]:
    """The configs behind Table IV and Fig. 5, per seed.

    * "matching k=2" / "matching k=10": DSANet trained on 1:2 and 1:10 tuples (in-batch tuples
      cost the same backbone items at any k, so both get the profile's steps unless
      ``k10_steps``);
    * "retrieval": eq. (25) on the paper's retrieval schedule (:func:`retrieval_profile`);
    * "two-tower": the InfoNCE baseline (:func:`dsanet.config.two_tower`), same budget;
    * "published" / "published, val": the authors' script (:func:`dsanet.config.published`) at
      ``experiments.PUBLISHED_STEPS`` (its schedule scaled), selected on test as the script does,
      and on validation (one seed).
    """
    from .config import published, two_tower
    from .engine.retrieval import retrieval_profile

    seeds = [int(s) for s in seeds]
    k10 = cfg.replace(k=10, **({"steps": k10_steps, "eval_every": min(cfg.eval_every, k10_steps)}
                               if k10_steps else {}))
    from .experiments import PUBLISHED_STEPS

    pub_steps = PUBLISHED_STEPS.get(cfg.profile) or cfg.steps
    pub = published(cfg, steps=pub_steps, eval_every=min(cfg.eval_every, pub_steps),
                    lr_milestones=(20 * max(1, pub_steps // 60), 35 * max(1, pub_steps // 60)))
    return {"matching k=2": [cfg.replace(seed=s) for s in seeds],
            "matching k=10": [k10.replace(seed=s) for s in seeds],
            "retrieval": [retrieval_profile(cfg).replace(seed=s) for s in seeds],
            "two-tower": [two_tower(cfg).replace(seed=s) for s in seeds],
            "published": [pub],
            "published, val": [pub.replace(select_on="val")]}


def headline_runs(cfg: Config, seeds, runs_root, workers: int = 1,
                  k10_steps: int | None = None) -> dict[str, list[Run]]:
    """Train (``workers`` processes) or read back the runs of :func:`headline_configs`."""
    from .experiments import run_many

    from .engine.train import NonFiniteLoss

    cfgs = headline_configs(cfg, seeds, k10_steps)
    try:
        run_many([c for cs in cfgs.values() for c in cs], runs_root, workers)
    except NonFiniteLoss as e:           # the authors' settings may diverge at this size: say so
        print(f"a headline run diverged ({e}); the others are read back or trained one by one")
    runs = {}
    for name, cs in cfgs.items():
        try:
            runs[name] = [cached_run(c, runs_root) for c in cs]
        except NonFiniteLoss as e:
            if not name.startswith("published"):
                raise
            print(f"{name}: {e}")
            runs[name] = []
    return runs


_IV = [("vf", "V-F", 2), ("fv", "F-V", 2), ("vf10", "V-F", 10), ("fv10", "F-V", 10),
       ("map_vf", "V-F", None), ("map_fv", "F-V", None)]
IV_HEADS = {"vf": "Binary V-F", "fv": "Binary F-V", "vf10": "10-way V-F", "fv10": "10-way F-V",
            "map_vf": "mAP V-F", "map_fv": "mAP F-V"}
# Table IV rows: (label, runs for k = 2 columns, runs for k = 10 columns, runs for mAP, scorer)
IV_ROWS = [
    ("DSANet (ours, distance)", "matching k=2", "matching k=10", "retrieval", "distance"),
    ("DSANet (ours, classifier)", "matching k=2", "matching k=10", None, "classifier"),
    ("DSANet k=2 model at k=10 and retrieval (distance)", None, "matching k=2", "matching k=2",
     "distance"),
    ("two-tower InfoNCE baseline (distance)", "two-tower", "two-tower", "two-tower", "distance"),
    ("published script (classifier, test-selected)", "published", "published", None, "classifier"),
    ("published script (distance, val-selected)", "published, val", "published, val",
     "published, val", "distance"),
]


def table_four(runs: dict[str, list[Run]], rows=IV_ROWS) -> pd.DataFrame:
    """Table IV cells (percent): mean and 95% interval over seeds (bootstrap over test tuples with
    one seed) for each row of ``rows`` whose runs exist. Columns row, column, mean, ci_low,
    ci_high, ci, n_seeds, values, paper."""
    from .experiments import reduce_cells
    from .paper import dsanet_headline

    recs = []
    for label, k2, k10, ret, scorer in rows:
        for key, direction, k in _IV:
            name = ret if k is None else (k2 if k == 2 else k10)
            for run in runs.get(name, []) if name else []:
                sel = ({"task": run.cfg.task, "direction": direction, "metric": "map"} if k is None
                       else {"task": "matching", "direction": direction, "k": k, "protocol": "U",
                             "metric": "acc", "scorer": scorer})
                if k is None and run.cfg.task == "matching":
                    sel["task"] = "retrieval"
                try:
                    v, lo, hi = read_cell(run.metrics, sel)
                except KeyError:
                    continue
                recs.append({"row": label, "column": key, "value": 100 * v,
                             "ci_low": 100 * lo, "ci_high": 100 * hi})
    cells = reduce_cells(pd.DataFrame(recs))
    cells["paper"] = cells["column"].map(dsanet_headline())
    return cells


def random_ranking_map(run: Run, repeats: int = 20, seed: int = 0) -> dict[str, float]:
    """mAP (percent) of a random ranking of ``run``'s test gallery, V-F and F-V (the chance line)."""
    from .engine.evaluate import average_precision

    cached = split_cache(run.cfg, "test")
    vid, fid = cached.voice_ids.long(), cached.face_ids.long()
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, q, g in (("map_vf", vid, fid), ("map_fv", fid, vid)):
        rel = q[:, None] == g[None, :]                                          # (Q, G)
        keep = rel.any(1)
        aps = [average_precision(torch.rand(rel.shape, generator=gen), rel)[keep].mean()
               for _ in range(repeats)]
        out[key] = 100 * float(torch.stack(aps).mean())
    return out


def wide_table_four(cells: pd.DataFrame) -> pd.DataFrame:
    """Our rows (one per scorer) and the paper's DSANet row, in Table IV's column order."""
    lines = []
    for row, g in cells.groupby("row", sort=False):
        c = g.set_index("column")
        lines.append({"row": row, **{h: fmt_cell(*c.loc[k, ["mean", "ci_low", "ci_high"]])
                                     if k in c.index else "-" for k, h in IV_HEADS.items()}})
    c = cells.drop_duplicates("column").set_index("column")
    lines.append({"row": "DSANet (paper)",
                  **{h: f"{c.loc[k, 'paper']:.1f}" if k in c.index else "-"
                     for k, h in IV_HEADS.items()}})
    return pd.DataFrame(lines)


def k_curve(runs: list[Run], protocol: str = "U") -> pd.DataFrame:
    """Fig. 5: distance-scored 1:k accuracy (percent) per k and direction, averaged over runs."""
    frames = []
    for run in runs:
        m = run.metrics
        m = m[(m["task"] == "matching") & (m["metric"] == "acc") & (m["protocol"] == protocol)
              & (m["scorer"] == "distance")]
        frames.append(m[["k", "direction", "value", "ci_low", "ci_high"]])
    df = pd.concat(frames).groupby(["k", "direction"], as_index=False).mean()
    df[["value", "ci_low", "ci_high"]] *= 100
    df["k"] = df["k"].astype(int)
    return df


def protocol_summary(runs: list[Run]) -> pd.DataFrame:
    """U against G protocol (1:2, 1:10, both directions), verification AUC / EER (percent)."""
    frames = []
    for run in runs:
        m = run.metrics
        match = m[(m["task"] == "matching") & (m["metric"] == "acc") & m["k"].isin([2, 10])
                  & (m["scorer"] == "distance")]
        ver = m[m["task"] == "verification"]
        frames.append(pd.concat([match, ver]))
    df = pd.concat(frames)
    keys = ["task", "direction", "protocol", "k", "metric"]
    df = df.groupby(keys, dropna=False, as_index=False)[["value", "ci_low", "ci_high"]].mean()
    df[["value", "ci_low", "ci_high"]] *= 100
    return df


def protocol_table(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`protocol_summary` as a small table: rows 1:2 / 1:10 accuracy, verification AUC / EER;
    columns "<direction> <protocol>"; cells "value ± half-width" (percent)."""
    names = {("matching", 2): "1:2 accuracy", ("matching", 10): "1:10 accuracy",
             ("verification", "auc"): "verification AUC", ("verification", "eer"): "verification EER"}
    lines = {}
    for r in summary.itertuples(index=False):
        key = (r.task, int(r.k)) if r.task == "matching" else (r.task, r.metric)
        lines.setdefault(names[key], {})[f"{r.direction} {r.protocol}"] = fmt_cell(r.value, r.ci_low,
                                                                                   r.ci_high)
    out = pd.DataFrame.from_dict(lines, orient="index").reindex(list(names.values())).fillna("-")
    return out[sorted(out.columns, key=lambda c: (c[:3] != "V-F", c[-1] != "U"))]


def made_of(runs: dict[str, list[Run]], cfg: Config, chance_map: dict | None = None) -> dict:
    """How Table IV was made (for its Markdown header)."""
    k10 = runs["matching k=10"][0].cfg
    ret = runs["retrieval"][0].cfg
    chance = (f" A random ranking of the same test gallery gives mAP {chance_map['map_vf']:.1f} "
              f"(V-F) / {chance_map['map_fv']:.1f} (F-V)." if chance_map else "")
    return {"profile": cfg.profile, "steps": cfg.steps, "batch_size": cfg.batch_size,
            "backbone": cfg.backbone,
            "seeds": sorted({r.cfg.seed for n, rs in runs.items() if not n.startswith("published")
                             for r in rs}),
            "scorer": "distance and classifier (one row each)",
            "runs": {k: [r.dir.name for r in rs] for k, rs in runs.items()},
            "note": f"k = 10 columns come from runs trained on 1:10 tuples ({k10.steps} steps; the "
                    "binary model read at k = 10 and for retrieval is its own row); mAP from retrieval runs "
                    f"(eq. 25) on the paper's retrieval schedule (x0.1 at {list(ret.lr_milestones)} "
                    f"of {ret.steps} steps). Distance rows rank candidates by embedding distance, "
                    "classifier rows by the matching head's logits. The published-script rows train "
                    "the `published` preset (" + f"{runs['published'][0].cfg.steps if runs.get('published') else '-'}" + " steps), once selected on the test split as the "
                    "script does (optimistic) and once on validation." + chance}
