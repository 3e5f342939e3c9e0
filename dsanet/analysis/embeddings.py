"""Embeddings behind the feature plots and Grad-CAM maps (notebook 05): picked identities, their
evaluation embeddings, 2-D projections, cluster statistics, CAM inputs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.spatial.distance import cdist
from sklearn.metrics import silhouette_score

from ..config import Config
from ..projections import project
from .data_views import faces_input, voices_input

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
