"""Embeddings projected to 2-D for the feature plots of Fig. 1 (t-SNE, UMAP).

Computation only: :mod:`dsanet.viz` draws what these return. Every projection is seeded.
"""
from __future__ import annotations

import numpy as np


def project(x: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """(N, D) -> (N, 2) with t-SNE (sklearn) or UMAP (umap-learn), seeded."""
    x = np.asarray(x, dtype=np.float32)                                   # (N, D)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    if method == "umap":
        import umap

        nn = int(min(15, len(x) - 1))
        return umap.UMAP(n_neighbors=nn, random_state=seed, n_jobs=1).fit_transform(x)
    raise ValueError(f"unknown projection {method!r}; use 'tsne' or 'umap'")
