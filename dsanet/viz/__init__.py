"""Figures of the notebooks (the paper's Figs. 1, 4, 5 and 7, and the diagnostics around them).

Every function takes plain arrays or DataFrames and returns a matplotlib ``Figure``; nothing here
trains or evaluates. :func:`save` writes a figure as PNG under ``<out_dir>/figures/``. Colours come
from seaborn. 2-D projections of embeddings are computed in :mod:`dsanet.projections`.

One module per figure family, every name re-exported here (``from dsanet import viz``):
:mod:`.style` (colours, theme, saving, shared helpers), :mod:`.data` (00: the benchmark),
:mod:`.dem` (01: Fig. 4, Table I), :mod:`.curves` (02 / 03: training curves, AMCE),
:mod:`.features` (05: Figs. 1 and 7), :mod:`.matching` (06: Fig. 5), :mod:`.forest` (04 / 06:
each table's differences to its reference row with their corrected intervals and verdicts).
"""
from __future__ import annotations

from .curves import gradient_bars, kept_negatives, line_panels, training_curves
from .data import calibration, examples, traits
from .dem import dem_maps, dem_values, dropout_rates, spatial_maps
from .features import cams, feature_grid, point_counts
from .forest import VERDICT_COLORS, forest
from .matching import matching_curve
from .style import BLUE, DPI, GREY, RED, VECTOR, robust_limits, save, theme

__all__ = [
    "BLUE", "DPI", "GREY", "RED", "VECTOR", "VERDICT_COLORS", "calibration", "cams", "dem_maps",
    "dem_values", "dropout_rates", "examples", "feature_grid", "forest", "gradient_bars",
    "kept_negatives", "line_panels", "matching_curve", "point_counts", "robust_limits", "save",
    "spatial_maps", "theme", "traits", "training_curves",
]
