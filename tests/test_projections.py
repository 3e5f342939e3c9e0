"""2-D projections of embeddings (Fig. 1): shape, seeding, separation of distinct clusters."""
from __future__ import annotations

import numpy as np
import pytest

from dsanet.projections import project


def _two_clusters(n: int = 12, d: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """n points near the origin and n points near 10 * (1, ..., 1): distance ~24 vs spread ~0.1."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (n, d)), rng.normal(10, 0.1, (n, d))])
    return x, np.repeat([0, 1], n)


def test_tsne_keeps_two_far_clusters_apart_and_is_seeded():
    x, label = _two_clusters()
    xy = project(x, "tsne", seed=3)
    assert xy.shape == (24, 2)
    a, b = xy[label == 0], xy[label == 1]
    gap = np.linalg.norm(a.mean(0) - b.mean(0))
    spread = max(np.linalg.norm(c - c.mean(0), axis=1).max() for c in (a, b))
    assert gap > 2 * spread              # every point nearer its own cluster's centre
    np.testing.assert_array_equal(project(x, "tsne", seed=3), xy)


def test_unknown_method_names_it():
    with pytest.raises(ValueError, match="'pca'.*'tsne' or 'umap'"):
        project(np.zeros((5, 3)), "pca")
