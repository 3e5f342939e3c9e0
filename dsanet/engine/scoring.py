"""Scoring a model's default cells and scoring list files.

:func:`evaluate_cells` gives the same table as :func:`dsanet.engine.evaluate.evaluate` (the
default cells: exact matching over every tuple of the split for pairwise scorers, every pair
for verification, identity-bootstrap intervals), the table a training run writes.
:func:`score_list` scores a list file read by :func:`dsanet.data.protocols.read_list`
- Wen et al.'s matching, verification and retrieval lists, the published DSANet F-V list
(``face audio1 audio2 label``) and those ``python -m dsanet protocols`` writes - with the same
metrics and 95% bootstrap intervals as the built-in protocols; the ``protocol`` column holds the
list's file name.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import evaluate as ev

TRAIN_EVAL_SEED = 0  # the seed train and evaluate use for lists and bootstrap (train.EVAL_SEED)


def _bar(items, desc: str, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False, disable=None if progress else True)


def evaluate_cells(model, cached, cfg, seed: int = TRAIN_EVAL_SEED, progress: bool = False,
                   embeddings: ev.Embeddings | None = None) -> pd.DataFrame:
    """:func:`dsanet.engine.evaluate.evaluate` of the default cells (exact where the scorer
    allows, column ``method``). ``progress`` is kept for callers: the cells come from one
    score matrix per scorer in seconds, so there is no bar over them."""
    emb = embeddings if embeddings is not None else ev.embed_split(model, cached, cfg)
    return ev.evaluate(model, cached, cfg, None, seed, emb)


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=ev.COLUMNS)
    df["k"] = df["k"].astype("Int64")
    return df


def list_cell(plist, emb: ev.Embeddings, name: str) -> tuple[ev.Protocols, ev.Embeddings]:
    """The protocol cell of a read list and the embeddings it is scored on.

    Matching lists keep their tuples (anchor, true, negatives); verification lists their pairs
    and labels (from the identities); a retrieval list restricts queries and gallery to the
    listed items.
    """
    if plist.kind == "matching":
        k = plist.rows.shape[1] - 1
        return ev.Protocols(matching={(plist.direction, name, k): plist.rows}, retrieval=()), emb
    if plist.kind == "verification":
        pairs, labels = plist.rows[:, :2], plist.rows[:, 2]
        return ev.Protocols(verification={name: (pairs, labels)}, retrieval=()), emb
    if plist.kind == "retrieval":
        q, g = np.asarray(plist.rows), np.asarray(plist.gallery)
        v, f = (q, g) if plist.direction == "vf" else (g, q)
        sub = ev.Embeddings(emb.voice[v], emb.face[f], emb.voice_ids[v], emb.face_ids[f],
                            None if emb.voice_gender is None else emb.voice_gender[v],
                            None if emb.face_gender is None else emb.face_gender[f])
        return ev.Protocols(retrieval=(plist.direction,)), sub
    raise ValueError(f"{name}: cannot score a list of kind {plist.kind!r}")


def score_list(model, cached, cfg, path, emb: ev.Embeddings | None = None, kind: str = "auto",
               strip=(), seed: int = TRAIN_EVAL_SEED) -> pd.DataFrame:
    """Metrics of one list file on ``cached`` (the split its paths are resolved against).

    Matching: accuracy (distance; also the classifier when its k matches); verification: ROC
    AUC and EER; retrieval: mAP; each with its 95% percentile-bootstrap interval
    (``cfg.bootstrap`` resamples). A path the split does not hold raises
    :class:`~dsanet.data.layout.DataError` naming the list, the line and the path.
    """
    from ..data.protocols import read_list

    emb = emb if emb is not None else ev.embed_split(model, cached, cfg)
    plist = read_list(path, kind, cached, strip=strip)
    protocols, on = list_cell(plist, emb, Path(path).name)
    if plist.kind == "verification" and np.unique(plist.rows[:, 2]).size < 2:
        raise ValueError(f"{path}: a verification list needs pairs of the same and of different "
                         "identities; all pairs have one label")
    return ev.evaluate(model, cached, cfg, protocols, seed, on).assign(protocol=Path(path).name)


def score_lists(model, cached, cfg, paths, kind: str = "auto", strip=(),
                progress: bool = False) -> pd.DataFrame:
    """:func:`score_list` of every file (one backbone pass over the split for all of them)."""
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f"{p}: list file not found")
    emb = ev.embed_split(model, cached, cfg)
    return _concat([score_list(model, cached, cfg, p, emb, kind, strip)
                    for p in _bar(list(paths), "lists", progress)])


__all__ = ["evaluate_cells", "list_cell", "score_list", "score_lists"]
