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

Layout: this module builds the default cells (:func:`build_protocols`) and the table of a split
(:func:`evaluate`, :func:`headline`); the embeddings are in :mod:`dsanet.engine.embeddings`, the
metric computations in :mod:`dsanet.engine.metrics` and the draws of tuples, pairs and
candidate orders in :mod:`dsanet.data.sampling`. Their names are re-exported here.
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
from .metrics import (  # noqa: F401 (_roc_from_counts: old path, tests use it)
    SCORES, _roc_from_counts, average_precision, bootstrap_auc_eer, bootstrap_ci,
    classifier_scores, eer_from_roc, matching_accuracy, matching_scores, pair_scores,
    retrieval_ap, retrieval_map, roc_auc_eer, similarity, similarity_matrix, verification,
)

LABELS = {"vf": "V-F", "fv": "F-V"}
COLUMNS = ["task", "direction", "protocol", "k", "scorer", "metric",
           "value", "ci_low", "ci_high", "n"]


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
    depend on which other cells are built. "G" cells need genders.
    """
    kinds = ["U", "G"] if emb.has_gender else ["U"]
    if emb.has_gender:
        unknown = len(np.union1d(emb.voice_ids[_unknown_gender(emb.voice_gender)],
                                 emb.face_ids[_unknown_gender(emb.face_gender)]))
        if unknown:   # a documented skip with its count, never a G cell with other-gender negatives
            warnings.warn(f"gender-constrained (G) cells skipped: {unknown} identities of this "
                          "split have no known gender")
            kinds = ["U"]
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


# ------------------------------------------------------------------------------ the table

def _row(task, direction, protocol, k, scorer, metric, value, ci, n) -> dict:
    return dict(task=task, direction=direction, protocol=protocol, k=k, scorer=scorer,
                metric=metric, value=float(value), ci_low=ci[0], ci_high=ci[1], n=int(n))


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


def _matching_rows(emb, protocols, cfg, clf, seed) -> list[dict]:
    rows = []
    for (d, kind, k), tuples in protocols.matching.items():
        scorers = ["classifier", "distance"] if clf is not None and clf.k == k else ["distance"]
        cell = _cell_seed(seed, d, kind, k)
        for scorer in scorers:
            ok = matching_accuracy(emb, tuples, d, scorer, clf, cell)
            rows.append(_row("matching", LABELS[_direction(d)], kind, k, scorer, "acc",
                             ok.mean(), bootstrap_ci(ok, cfg.bootstrap, cell), len(ok)))
    return rows


def _verification_rows(emb, protocols, cfg, seed) -> list[dict]:
    rows = []
    for kind, (pairs, labels) in protocols.verification.items():
        s = pair_scores(emb, pairs)
        auc, eer = roc_auc_eer(s, labels)
        ci = bootstrap_auc_eer(s, labels, cfg.bootstrap, _cell_seed(seed, "verification", kind))
        rows += [_row("verification", "V-F", kind, pd.NA, "distance", m, v, ci[m], len(s))
                 for m, v in (("auc", auc), ("eer", eer))]
    return rows


def _retrieval_rows(emb, protocols, cfg, seed, device=None) -> list[dict]:
    rows = []
    for d in protocols.retrieval:
        ap = retrieval_ap(emb, d, device=device)
        rows.append(_row("retrieval", LABELS[_direction(d)], "-", pd.NA, "distance", "map",
                         ap.mean(), bootstrap_ci(ap, cfg.bootstrap, _cell_seed(seed, d)), len(ap)))
    return rows


def evaluate(model, cached, cfg, protocols: Protocols | None = None, seed: int = 0,
             embeddings: Embeddings | None = None) -> pd.DataFrame:
    """Every metric of a split as a tidy table (one row per cell; values are fractions).

    Columns: task ("matching" | "verification" | "retrieval"), direction ("V-F" | "F-V"),
    protocol ("U" | "G" | "-"), k (matching only), scorer, metric ("acc" | "auc" | "eer" |
    "map"), value, ci_low, ci_high (percentile bootstrap 95%, cfg.bootstrap resamples over
    tuples / pairs / queries), n. Matching with k equal to the classifier's k is reported with
    both the classifier and the distance scorer; other k with the distance scorer.
    ``embeddings`` skips the backbone pass when given.
    """
    emb = embeddings if embeddings is not None else embed_split(model, cached, cfg)
    protocols = protocols if protocols is not None else build_protocols(emb, cfg, seed)
    rows = (_matching_rows(emb, protocols, cfg, _matching_classifier(model), seed)
            + _verification_rows(emb, protocols, cfg, seed)
            + _retrieval_rows(emb, protocols, cfg, seed, _device(model)))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["k"] = df["k"].astype("Int64")
    return df


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
    "COLUMNS", "DIRECTIONS", "LABELS", "SCORES", "Embeddings", "Protocols", "Side",
    "TooFewIdentities", "as_percent", "average_precision", "bootstrap_auc_eer", "bootstrap_ci",
    "build_protocols", "classifier_scores", "eer_from_roc", "embed_split", "evaluate", "headline",
    "matching_accuracy", "matching_scores", "pair_scores", "retrieval_ap", "retrieval_map",
    "roc_auc_eer", "sample_pairs", "sample_tuples", "shuffle_candidates", "similarity",
    "similarity_matrix", "verification",
]
