"""What the notebooks compute around the package: data views, trained models read back, the
embeddings, masks and reductions behind the figures and Table IV.

Everything here calls the package's own pieces (``data``, ``models``, ``losses``,
``engine.evaluate``) on runs made by :func:`dsanet.experiments.cached_run`; nothing trains except
through it. Kept out of the notebooks so that they only explain and call.

One module per concept, every name re-exported here (``from dsanet import analysis;
analysis.table_four(...)``):

* :mod:`.data_views` - notebook 00's views of the data (traits, calibration lines, Table II beside
  the paper, example items; on real data the benchmark-only views print one line saying they are
  skipped: :func:`benchmark_view`) and the inputs of the others (a split's cache, a run's model,
  evaluation-ready faces and voices);
* :mod:`.probes` - DEM blocks and Table I (01), training-history panels (02), AMCE gradients and
  kept negatives (03);
* :mod:`.embeddings` - embeddings, projections, cluster statistics and CAM inputs (05);
* :mod:`.headline` - Table IV, Fig. 5 and the protocol summary (02, 06);
* :mod:`.table_three` - Table III, DSANet under the Learnable-PINs split (01 trains, 06 shows).

:func:`ensure_data` is the data layer's (:mod:`dsanet.data.embedded`), re-exported for the
notebooks.
"""
from __future__ import annotations

from ..data.embedded import EMBEDDED, ensure_data
from .data_views import (BENCHMARK_ONLY, LABELS, benchmark_skip, benchmark_view, beside_paper_ii,
                         calibration_lines, examples, faces_input, load_model, reference_lines,
                         split_cache, trait_frame, voices_input)
from .embeddings import (cam_inputs, cluster_stats, embed_items, pick_identities, projections,
                         voice_embeddings)
from .headline import (IV_HEADS, IV_ROWS, headline_by_scorer, headline_configs, headline_runs,
                       k_curve, made_of, protocol_summary, protocol_table, random_ranking_map,
                       table_four, table_four_comparisons, table_four_records,
                       wide_table_four)
from .table_three import (III_HEADS, PINS_LIKE, made_of_three, pins_lists, table_three,
                          table_three_configs, table_three_runs, wide_table_three)
from .probes import (LOSS_TERMS, amce_kept, amce_kept_curve, block_bounds, class_gradients,
                     loss_columns, snapshots, table_one, training_panels)

__all__ = [
    "III_HEADS", "PINS_LIKE", "made_of_three", "pins_lists", "table_three", "table_three_configs",
    "table_three_runs", "wide_table_three",
    "BENCHMARK_ONLY", "EMBEDDED", "IV_HEADS", "IV_ROWS", "LABELS", "LOSS_TERMS", "amce_kept",
    "amce_kept_curve", "benchmark_skip", "benchmark_view", "beside_paper_ii", "block_bounds",
    "calibration_lines", "cam_inputs", "class_gradients", "cluster_stats", "embed_items",
    "ensure_data", "examples", "faces_input", "headline_by_scorer", "headline_configs",
    "headline_runs", "k_curve", "load_model", "loss_columns", "made_of", "pick_identities",
    "projections", "protocol_summary", "protocol_table", "random_ranking_map", "reference_lines",
    "snapshots", "split_cache", "table_four", "table_four_comparisons", "table_four_records",
    "table_one", "training_panels", "trait_frame", "voice_embeddings", "voices_input",
    "wide_table_four",
]
