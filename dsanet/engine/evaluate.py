"""Evaluation: 1:k matching accuracy, verification AUC / EER, retrieval mAP, bootstrap intervals.

The paper measures matching by accuracy (ACC) and retrieval by mean average precision (mAP),
Sec. IV-A "Evaluation protocol"; Tables III-XII. Verification (ROC AUC, EER) follows the
protocol of Wen et al., whose split the paper uses.

Conventions (recorded in docs/fidelity.md):

* The backbone runs once per item of a split (:func:`embed_split`); every protocol then gathers
  rows of those cached embeddings, so a 1:k tuple costs an index, not k + 1 backbone passes.
  This is exact because the evaluation path has no DEM and runs BatchNorm on running statistics.
* Metrics are stored as fractions in [0, 1]; the paper's tables are in percent, so
  :func:`as_percent` and :func:`headline` multiply by 100 for display and for comparison with
  :mod:`dsanet.paper`.
* Direction ``"vf"`` (the paper's V-F): voice anchor (or query), face candidates (or gallery);
  ``"fv"`` the reverse. ``"V-F"`` / ``"F-V"`` are accepted too and are what tables show.
* Scores: ``"distance"`` = negative Euclidean distance (what the structured metric of eqs.
  (21)-(22) trains), ``"cosine"`` = cosine similarity, ``"classifier"`` = the logits of the
  model's matching classifier (only for tuples with its k).
* The default cells are exact (:mod:`dsanet.engine.exact`, column ``method = "exact"``): a
  matching cell is the expectation of the sampled protocol's accuracy over every tuple of the
  split, for every scorer that scores (anchor, candidate) pairs on their own (distance, cosine,
  the pairwise head); a jointly-scoring head (concat, mlp) keeps a sampled estimate on
  ``SAMPLED_FACTOR * cfg.eval_tuples`` tuples (``"sampled"``). Verification scores every
  (voice, face) pair, retrieval every query against the whole gallery. Intervals are 95%
  percentile cluster bootstraps over test identities (resampled with replacement). Explicitly
  given protocols (list files) are scored as listed (``"listed"``), with intervals over their
  tuples / pairs / queries.

Layout: this module builds the sampled cells (:func:`build_protocols`) and the table of a
split (:func:`evaluate_split`, :func:`evaluate`, :func:`headline`); the embeddings are in
:mod:`dsanet.engine.embeddings`, the exact cells in :mod:`dsanet.engine.exact`, the metric
computations in :mod:`dsanet.engine.metrics` and the draws of tuples, pairs and candidate
orders in :mod:`dsanet.data.sampling`. Their names are re-exported here.
"""
from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..data.sampling import TooFewIdentities, _unknown_gender, sample_pairs, sample_tuples
from ..data.sampling import candidate_order as shuffle_candidates  # the old name
from .embeddings import DIRECTIONS, Embeddings, Side, _direction, embed_split
from .exact import (exact_cells, exact_matching, exact_verification, is_pairwise,
                    pair_score_matrix, retrieval_ap_scores)
from .metrics import (  # noqa: F401 (_roc_from_counts: old path, tests use it)
    SCORES, _roc_from_counts, average_precision, bootstrap_auc_eer, bootstrap_ci,
    classifier_scores, eer_from_roc, identity_bootstrap, identity_means, matching_accuracy,
    matching_scores, pair_scores, retrieval_ap, retrieval_map, roc_auc_eer, similarity,
    similarity_matrix, verification,
)

LABELS = {"vf": "V-F", "fv": "F-V"}
COLUMNS = ["task", "direction", "protocol", "k", "scorer", "metric",
           "value", "ci_low", "ci_high", "n", "method"]
IDENTITY_COLUMNS = ["task", "direction", "protocol", "k", "scorer", "metric", "identity",
                    "value", "weight"]
SAMPLED_FACTOR = 20     # a jointly-scoring head's cell: SAMPLED_FACTOR * cfg.eval_tuples tuples
HIST_BINS = 128         # score bins of the verification identity bootstrap


# ------------------------------------------------------------------------------ protocols

@dataclass
class Protocols:
    """Evaluation lists as item indices of one split.

    matching: (direction, "U" | "G", k) -> (n, k+1) [anchor, positive, k-1 negatives];
    verification: "U" | "G" -> (pairs (n, 2) [voice, face], labels (n,) 1 = same identity);
    retrieval: directions evaluated over the whole split.
    """
    matching: dict = field(default_factory=dict)
    verification: dict = field(default_factory=dict)
    retrieval: tuple = ("vf", "fv")


def build_protocols(emb: Embeddings, cfg, seed: int = 0) -> Protocols:
    """Default lists: cfg.eval_tuples tuples per (direction, U/G, k in cfg.eval_ks), pairs.

    Each cell has its own generator seeded by (seed, direction, protocol, k), so a cell does not
    depend on which other cells are built. "G" cells need genders. These are the sampled lists
    (e.g. for ``protocols`` files); :func:`evaluate_split` computes the default cells exactly.
    """
    kinds = _kinds(emb)
    p = Protocols()
    for di, d in enumerate(("vf", "fv")):
        for pi, kind in enumerate(kinds):
            for k in cfg.eval_ks:
                rng = np.random.default_rng([seed, di, pi, k])
                try:
                    p.matching[(d, kind, k)] = sample_tuples(*emb.sides(d), k, cfg.eval_tuples,
                                                             rng, kind == "G")
                except TooFewIdentities as e:   # a small split cannot fill every cell
                    warnings.warn(f"matching cell ({d}, {kind}, k={k}) skipped: {e}")
    for pi, kind in enumerate(kinds):
        rng = np.random.default_rng([seed, 9, pi])
        p.verification[kind] = sample_pairs(emb, cfg.eval_tuples, rng, kind == "G")
    return p


def _kinds(emb: Embeddings) -> list[str]:
    """["U", "G"] when every identity has a known gender, else ["U"] (with a warning)."""
    if not emb.has_gender:
        return ["U"]
    unknown = len(np.union1d(emb.voice_ids[_unknown_gender(emb.voice_gender)],
                             emb.face_ids[_unknown_gender(emb.face_gender)]))
    if unknown:   # a documented skip with its count, never a G cell with other-gender negatives
        warnings.warn(f"gender-constrained (G) cells skipped: {unknown} identities of this "
                      "split have no known gender")
        return ["U"]
    return ["U", "G"]


# ------------------------------------------------------------------------------ the table

def _row(task, direction, protocol, k, scorer, metric, value, ci, n, method) -> dict:
    return dict(task=task, direction=direction, protocol=protocol, k=k, scorer=scorer,
                metric=metric, value=float(value), ci_low=ci[0], ci_high=ci[1], n=int(n),
                method=method)


def _identity_rows(task, direction, protocol, k, scorer, metric, codes, values, weights) -> list:
    return [dict(task=task, direction=direction, protocol=protocol, k=k, scorer=scorer,
                 metric=metric, identity=c, value=float(v), weight=int(w))
            for c, v, w in zip(codes.tolist(), np.asarray(values).tolist(),
                               np.asarray(weights).tolist())]


def _device(model) -> torch.device | None:
    """The model's device (the ranking for retrieval runs there), None without parameters."""
    params = getattr(model, "parameters", None)
    return next(params(), torch.empty(0)).device if params is not None else None


def _matching_classifier(model):
    clf = getattr(model, "classifier", None) if model is not None else None
    return clf if getattr(clf, "k", None) is not None else None


def _cell_seed(seed: int, *key) -> int:
    """A seed per table cell, so that a position-biased scorer is not judged on one shared
    candidate order in every cell (the order depends only on n, k and the seed)."""
    return (seed * 1_000_003 + zlib.crc32(repr(key).encode())) % 2**31


# ------------------------------------------------------------------------------ listed cells

def _matching_rows(emb, protocols, cfg, clf, seed) -> tuple[list, list]:
    rows, ident = [], []
    for (d, kind, k), tuples in protocols.matching.items():
        scorers = ["classifier", "distance"] if clf is not None and clf.k == k else ["distance"]
        cell = _cell_seed(seed, d, kind, k)
        key = ("matching", LABELS[_direction(d)], kind, k)
        for scorer in scorers:
            ok = matching_accuracy(emb, tuples, d, scorer, clf, cell)
            rows.append(_row(*key, scorer, "acc", ok.mean(), bootstrap_ci(ok, cfg.bootstrap, cell),
                             len(ok), "listed"))
            codes, means, counts = identity_means(emb.sides(d)[0].ids[np.asarray(tuples)[:, 0]], ok)
            ident += _identity_rows(*key, scorer, "acc", codes, means, counts)
    return rows, ident


def _verification_rows(emb, protocols, cfg, seed) -> list[dict]:
    rows = []
    for kind, (pairs, labels) in protocols.verification.items():
        s = pair_scores(emb, pairs)
        auc, eer = roc_auc_eer(s, labels)
        ci = bootstrap_auc_eer(s, labels, cfg.bootstrap, _cell_seed(seed, "verification", kind))
        rows += [_row("verification", "V-F", kind, pd.NA, "distance", m, v, ci[m], len(s), "listed")
                 for m, v in (("auc", auc), ("eer", eer))]
    return rows


def _retrieval_rows(emb, protocols, cfg, seed, device=None) -> tuple[list, list]:
    rows, ident = [], []
    for d in protocols.retrieval:
        ap = retrieval_ap(emb, d, device=device)
        query, gallery = emb.sides(d)
        key = ("retrieval", LABELS[_direction(d)], "-", pd.NA, "distance", "map")
        rows.append(_row(*key, ap.mean(), bootstrap_ci(ap, cfg.bootstrap, _cell_seed(seed, d)),
                         len(ap), "exact"))
        ident += _identity_rows(*key, *identity_means(
            query.ids[np.isin(query.ids, gallery.ids)], ap))
    return rows, ident


# ------------------------------------------------------------------------------ exact cells

def _sampled_cell(emb, d, kind, k, cfg, clf, cell):
    """A jointly-scoring head's cell: SAMPLED_FACTOR * cfg.eval_tuples drawn tuples.

    Returns (anchor identity codes, per-identity accuracy, tuples per identity, tuples)."""
    tuples = sample_tuples(*emb.sides(d), k, SAMPLED_FACTOR * cfg.eval_tuples,
                           np.random.default_rng(cell), kind == "G")
    ok = matching_accuracy(emb, tuples, d, "classifier", clf, cell)
    return (*identity_means(emb.sides(d)[0].ids[tuples[:, 0]], ok), len(ok))


def _exact_matching_rows(emb, scores, kinds, cfg, clf, seed) -> tuple[list, list]:
    """Every (direction, protocol, k) cell: exact for pairwise scorers, else sampled."""
    rows, ident = [], []
    for d in ("vf", "fv"):
        sides = emb.sides(d)
        cells = {"distance": exact_cells(scores[d, "distance"], *sides, cfg.eval_ks, kinds)}
        if (d, "classifier") in scores:
            cells["classifier"] = exact_cells(scores[d, "classifier"], *sides, [clf.k], kinds)
        for kind in kinds:
            for k in cfg.eval_ks:
                skipped = cells["distance"][kind].skipped.get(k)
                if skipped:   # a small split cannot fill every cell
                    warnings.warn(f"matching cell ({d}, {kind}, k={k}) skipped: {skipped}")
                    continue
                cell = _cell_seed(seed, d, kind, k)
                key = ("matching", LABELS[d], kind, k)
                for scorer in (["classifier", "distance"] if clf is not None and clf.k == k
                               else ["distance"]):
                    if scorer in cells:
                        res = cells[scorer][kind]
                        codes, vals, w, n, method = (res.ids, res.identity[k], res.weight,
                                                     len(res.anchors), "exact")
                    else:
                        (codes, vals, w, n), method = _sampled_cell(emb, d, kind, k, cfg, clf,
                                                                    cell), "sampled"
                    value = float(np.sum(w * vals) / np.sum(w))   # = the mean over anchors
                    ci = identity_bootstrap(vals, w, cfg.bootstrap, cell)
                    rows.append(_row(*key, scorer, "acc", value, ci, n, method))
                    ident += _identity_rows(*key, scorer, "acc", codes, vals, w)
    return rows, ident


def _exact_verification_rows(emb, dist, kinds, cfg, seed) -> list[dict]:
    """AUC / EER over every (voice, face) pair; intervals from an identity bootstrap
    (:func:`dsanet.engine.exact.exact_verification`)."""
    res = exact_verification(dist, emb.side("voice"), emb.side("face"), kinds, cfg.bootstrap,
                             _cell_seed(seed, "verification"), HIST_BINS)
    return [_row("verification", "V-F", kind, pd.NA, "distance", m, r[m], r["ci"][m], r["n"],
                 "exact") for kind, r in res.items() for m in ("auc", "eer")]


def _exact_retrieval_rows(emb, scores, cfg, seed) -> tuple[list, list]:
    rows, ident = [], []
    for d in ("vf", "fv"):
        query, gallery = emb.sides(d)
        ap, kept = retrieval_ap_scores(scores[d, "distance"], query.ids, gallery.ids)
        codes, means, counts = identity_means(query.ids[kept], ap)
        key = ("retrieval", LABELS[d], "-", pd.NA, "distance", "map")
        ci = identity_bootstrap(means, counts, cfg.bootstrap, _cell_seed(seed, d))
        rows.append(_row(*key, ap.mean(), ci, len(ap), "exact"))
        ident += _identity_rows(*key, codes, means, counts)
    return rows, ident


def _exact_split(emb, cfg, clf, seed) -> tuple[list, list]:
    """The default cells of a split from one score matrix per scorer (F-V = V-F transposed:
    every pairwise score is symmetric in its two items)."""
    kinds = _kinds(emb)
    dist = pair_score_matrix(emb, "vf", "distance")                    # (Nv, Nf)
    scores = {("vf", "distance"): dist, ("fv", "distance"): dist.T}
    if clf is not None and clf.k in cfg.eval_ks and is_pairwise("classifier", clf):
        c = pair_score_matrix(emb, "vf", "classifier", clf)            # (Nv, Nf)
        scores["vf", "classifier"], scores["fv", "classifier"] = c, c.T
    m_rows, m_ident = _exact_matching_rows(emb, scores, kinds, cfg, clf, seed)
    v_rows = _exact_verification_rows(emb, dist, kinds, cfg, seed)
    r_rows, r_ident = _exact_retrieval_rows(emb, scores, cfg, seed)
    return m_rows + v_rows + r_rows, m_ident + r_ident


# ------------------------------------------------------------------------------ the split

@dataclass
class Evaluation:
    """The evaluation of a split: the tidy table and the per-identity values behind it.

    metrics: one row per cell (:data:`COLUMNS`). identity (:data:`IDENTITY_COLUMNS`): per
    matching cell and retrieval direction, each anchor (query) identity's mean accuracy (AP),
    with weight = its anchors (queries, or listed tuples), so that sum(weight * value) /
    sum(weight) is the cell's value.
    """
    metrics: pd.DataFrame
    identity: pd.DataFrame


def evaluate_split(model, cached, cfg, protocols: Protocols | None = None, seed: int = 0,
                   embeddings: Embeddings | None = None) -> Evaluation:
    """Every metric of a split (values are fractions) and its per-identity table.

    Columns of ``metrics``: task ("matching" | "verification" | "retrieval"), direction ("V-F"
    | "F-V"), protocol ("U" | "G" | "-"), k (matching only), scorer, metric ("acc" | "auc" |
    "eer" | "map"), value, ci_low, ci_high (95% percentile bootstrap, cfg.bootstrap resamples),
    n, method. Matching with k equal to the classifier's k is reported with both the classifier
    and the distance scorer; other k with the distance scorer.

    Default cells (``protocols=None``), method "exact": matching is the expectation over every
    tuple of the split (:mod:`dsanet.engine.exact`; n = anchor items) for pairwise scorers; a
    jointly-scoring classifier head gets "sampled" (``SAMPLED_FACTOR * cfg.eval_tuples``
    tuples, n = tuples); verification uses every (voice, face) pair (U; same-gender identities
    for G; n = pairs); retrieval every query against the whole gallery (n = queries). Intervals
    resample test identities (cluster bootstrap). Given ``protocols`` (lists): scored as listed
    (method "listed"; intervals over tuples / pairs / queries, as before the exact cells).
    ``embeddings`` skips the backbone pass when given.
    """
    emb = embeddings if embeddings is not None else embed_split(model, cached, cfg)
    clf = _matching_classifier(model)
    if protocols is None:
        rows, ident = _exact_split(emb, cfg, clf, seed)
    else:
        m_rows, m_ident = _matching_rows(emb, protocols, cfg, clf, seed)
        r_rows, r_ident = _retrieval_rows(emb, protocols, cfg, seed, _device(model))
        rows = m_rows + _verification_rows(emb, protocols, cfg, seed) + r_rows
        ident = m_ident + r_ident
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["k"] = df["k"].astype("Int64")
    idf = pd.DataFrame(ident, columns=IDENTITY_COLUMNS)
    idf["k"] = idf["k"].astype("Int64")
    return Evaluation(df, idf)


def evaluate(model, cached, cfg, protocols: Protocols | None = None, seed: int = 0,
             embeddings: Embeddings | None = None) -> pd.DataFrame:
    """The tidy table of :func:`evaluate_split` (its ``metrics``)."""
    return evaluate_split(model, cached, cfg, protocols, seed, embeddings).metrics


# ------------------------------------------------------------------------------ summaries

def as_percent(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with value and interval in percent, as the paper's tables print them."""
    out = df.copy()
    out[["value", "ci_low", "ci_high"]] = out[["value", "ci_low", "ci_high"]] * 100
    return out


def _pick(df: pd.DataFrame, scorer: str | None, **where) -> float:
    sel = df
    for col, v in where.items():
        sel = sel[sel[col] == v]
    if sel.empty:
        return float("nan")
    if scorer is not None:   # the named scorer, or the distance where it was not evaluated
        best = sel[sel["scorer"] == scorer]
        sel = best if len(best) else sel[sel["scorer"] == "distance"]
        return float(sel["value"].iloc[0]) * 100 if len(sel) else float("nan")
    best = sel[sel["scorer"] == "classifier"]
    return float((best if len(best) else sel)["value"].iloc[0]) * 100


def headline(df: pd.DataFrame, protocol: str = "U", scorer: str | None = "distance") -> pd.DataFrame:
    """The Table IV row, in percent: binary vf/fv, 10-way vf10/fv10, retrieval map_vf/map_fv.

    Matching cells come from ``scorer`` ("distance" by default, "classifier", or ``None`` to
    prefer the classifier wherever it was evaluated); a cell the scorer did not evaluate (the
    classifier at a k it was not trained for) falls back to the distance. The default is the
    distance because the paper's concatenation head is linear in the (k+1) embeddings and stays
    at chance on shuffled candidates (docs/fidelity.md, "classifier finding"); pass
    ``scorer="classifier"`` for the paper's read-out. Missing cells are NaN.
    """
    m = df[(df["task"] == "matching") & (df["protocol"] == protocol) & (df["metric"] == "acc")]
    r = df[(df["task"] == "retrieval") & (df["metric"] == "map")]
    row = {f"{d.lower()}{'' if k == 2 else k}": _pick(m, scorer, direction=lab, k=k)
           for k in (2, 10) for d, lab in (("VF", "V-F"), ("FV", "F-V"))}
    row.update({f"map_{d}": _pick(r, None, direction=LABELS[d]) for d in ("vf", "fv")})
    return pd.DataFrame([row])


__all__ = [
    "COLUMNS", "DIRECTIONS", "Evaluation", "IDENTITY_COLUMNS", "LABELS", "SCORES", "Embeddings",
    "Protocols", "Side", "TooFewIdentities", "as_percent", "average_precision",
    "bootstrap_auc_eer", "bootstrap_ci", "build_protocols", "classifier_scores", "eer_from_roc",
    "embed_split", "evaluate", "evaluate_split", "exact_matching", "headline",
    "identity_bootstrap", "pair_score_matrix",
    "matching_accuracy", "matching_scores", "pair_scores", "retrieval_ap", "retrieval_map",
    "roc_auc_eer", "sample_pairs", "sample_tuples", "shuffle_candidates", "similarity",
    "similarity_matrix", "verification",
]
