"""Evaluation protocols and training samplers: matching tuples, verification pairs, retrieval sets.

All draws are vectorised numpy and reproducible from a seed. Item indices are *split-local*:
positions in ``DataIndex.split_items(split, modality)`` or in a ``CachedSplit``'s tables (the
two agree unless the cache skipped bad files; lists on disk hold paths, so they resolve against
either).

Matching (Sec. IV, Tables III-XI; Wen et al. 2021 protocol): an anchor item in one modality,
the true item of the anchor's identity and k-1 items of k-1 *distinct other* identities in the
other modality. "U" draws negatives among all identities of the split, "G" (``constrained``)
among identities of the anchor's gender. Anchors are drawn uniformly over the anchor items of
identities that can form a tuple; candidate items uniformly within their identity.

Text formats (Wen et al.; their split CSVs ship in ``dsanet/resources/protocols``)::

    matching      voice pos_face neg_face ...     (V-F; F-V: face pos_voice neg_voice ...)
    verification  voice face                      (label from the identities)
    retrieval     line 1: every query, line 2: every gallery item
    official_fv   face audio1 audio2 label        (published DSANet F-V list; label 0/1 is the
                                                    matching audio; absolute path prefixes)
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .layout import AUDIO_EXTS, IMAGE_EXTS, SPLITS, DataError, DataIndex, load_index

DIRECTIONS = ("vf", "fv")
KINDS = ("matching", "verification", "retrieval", "official_fv")
_CHUNK = 1 << 22  # random keys per chunk when drawing distinct negatives


# ----------------------------------------------------------------------------- items

@dataclass
class SplitItems:
    """Paths and identity ints of one split's items; ``identity_gender`` covers the whole index."""

    split: str
    voice_paths: np.ndarray     # (Nv,) str
    face_paths: np.ndarray      # (Nf,) str
    voice_ids: np.ndarray       # (Nv,) int64
    face_ids: np.ndarray        # (Nf,) int64
    identity_gender: np.ndarray  # (n_identities,) int64: 0 m, 1 f, -1 unknown

    def ids(self, modality: str) -> np.ndarray:
        return self.voice_ids if modality == "voice" else self.face_ids

    def paths(self, modality: str) -> np.ndarray:
        return self.voice_paths if modality == "voice" else self.face_paths


def split_items(source, split: str | None = None) -> SplitItems:
    """The items of ``split`` of a :class:`DataIndex`, or of a ``CachedSplit`` (its own split)."""
    if isinstance(source, SplitItems):
        return source
    if hasattr(source, "voice_table"):  # CachedSplit
        if split not in (None, source.split):
            raise ValueError(f"the cached split is {source.split!r}, not {split!r}")
        vt, ft, index, split = source.voice_table, source.face_table, source.index, source.split
    elif isinstance(source, DataIndex):
        if split is None:
            raise ValueError("split is required with a DataIndex")
        vt, ft, index = (source.split_items(split, "voice"), source.split_items(split, "face"),
                         source)
    else:
        raise TypeError(f"expected a DataIndex or CachedSplit, got {type(source).__name__}")
    return SplitItems(split, vt.path.to_numpy(str), ft.path.to_numpy(str),
                      vt.identity.to_numpy(np.int64), ft.identity.to_numpy(np.int64),
                      index.identity_gender)


def _modalities(direction: str) -> tuple[str, str]:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return ("voice", "face") if direction == "vf" else ("face", "voice")


class _ByIdentity:
    """Items grouped by identity: draw one item of each given identity, vectorised."""

    def __init__(self, ids: np.ndarray, n_identities: int):
        self.order = np.argsort(ids, kind="stable")                       # (N,)
        self.counts = np.bincount(ids, minlength=n_identities)            # (I,)
        self.starts = np.cumsum(self.counts) - self.counts                # (I,)

    def draw(self, identities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.counts[identities]
        offset = np.minimum((rng.random(identities.shape) * c).astype(np.int64), c - 1)
        return self.order[self.starts[identities] + offset]


# ----------------------------------------------------------------------------- samplers

class TupleSampler:
    """Matching tuples (anchor, true, k-1 negatives) for one split, direction, k and protocol.

    Everything that does not depend on the draw (groups, pools) is computed once, so that a
    training loop can call :meth:`sample` every step.
    """

    def __init__(self, source, split: str | None, k: int, direction: str,
                 constrained: bool = False):
        if k < 2:
            raise ValueError(f"k must be at least 2, got {k}")
        self.items = items = split_items(source, split)
        self.k, self.direction, self.constrained = k, direction, constrained
        a_mod, c_mod = _modalities(direction)
        n_id = len(items.identity_gender)
        self.anchor_ids = items.ids(a_mod)
        self.cands = _ByIdentity(items.ids(c_mod), n_id)
        both = np.intersect1d(self.anchor_ids, items.ids(c_mod))          # eligible identities
        unknown = int((items.identity_gender[both] < 0).sum()) if constrained else 0
        if unknown:
            raise DataError(
                f"split {items.split!r}: the G protocol draws negatives of the anchor's gender, "
                f"but {unknown} of {len(both)} identities have no known gender (meta Gender "
                "other than m / f / male / female)", "unknown_gender")
        key = items.identity_gender if constrained else np.zeros(n_id, np.int64)
        self.key = key
        self.pools = {}                                                  # group -> (m,) ids
        for g in np.unique(key[both]):
            pool = both[key[both] == g]
            if len(pool) >= k:
                self.pools[int(g)] = pool
        usable = np.concatenate([np.zeros(0, np.int64)] + list(self.pools.values()))
        self.anchor_pool = np.flatnonzero(np.isin(self.anchor_ids, usable))  # anchor items
        if len(self.anchor_pool) == 0:
            what = "of one gender " if constrained else ""
            raise DataError(
                f"split {items.split!r}: 1:{k} matching needs {k} identities {what}with both "
                f"voices and faces; found {len(both)} in all", "too_few_identities")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, k+1) int64 item indices: anchor, true candidate, k-1 negatives."""
        anchors = rng.choice(self.anchor_pool, size=n)                   # (n,)
        aid = self.anchor_ids[anchors]                                   # (n,)
        neg_ids = np.empty((n, self.k - 1), np.int64)
        for g, pool in self.pools.items():
            rows = np.flatnonzero(self.key[aid] == g)
            neg_ids[rows] = self._distinct_others(pool, aid[rows], rng)
        pos = self.cands.draw(aid, rng)                                  # (n,)
        negs = self.cands.draw(neg_ids, rng)                             # (n, k-1)
        return np.column_stack([anchors, pos, negs]).astype(np.int64)

    def _distinct_others(self, pool: np.ndarray, aid: np.ndarray, rng) -> np.ndarray:
        """k-1 distinct identities of ``pool`` other than each row's anchor: (r,) -> (r, k-1)."""
        m, out = len(pool), np.empty((len(aid), self.k - 1), np.int64)
        apos = np.searchsorted(pool, aid)                                # pool is sorted
        step = max(1, _CHUNK // m)
        for s in range(0, len(aid), step):                               # memory chunks only
            keys = rng.random((min(step, len(aid) - s), m))
            keys[np.arange(keys.shape[0]), apos[s:s + step]] = 2.0       # never the anchor
            pick = np.argpartition(keys, self.k - 2, axis=1)[:, : self.k - 1]
            out[s:s + step] = pool[pick]
        return out


class PairSampler:
    """Retrieval training pairs (voice item, face item) of one identity; voices drawn uniformly."""

    def __init__(self, source, split: str | None = None):
        self.items = items = split_items(source, split)
        both = np.intersect1d(items.voice_ids, items.face_ids)
        self.voices = np.flatnonzero(np.isin(items.voice_ids, both))
        self.faces = _ByIdentity(items.face_ids, len(items.identity_gender))
        if len(self.voices) == 0:
            raise DataError(f"split {items.split!r}: no identity has both voices and faces",
                            "too_few_identities")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        v = rng.choice(self.voices, size=n)                               # (n,)
        return np.column_stack([v, self.faces.draw(self.items.voice_ids[v], rng)])


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def matching_tuples(source, split: str | None = None, k: int = 2, direction: str = "vf",
                    constrained: bool = False, n: int = 1000, seed=0) -> np.ndarray:
    """(n, k+1) int64: anchor item, true item, k-1 negatives of distinct other identities.

    ``constrained`` (the "G" protocol) draws negatives of the anchor's gender. ``seed`` is an
    int or a ``numpy.random.Generator``.
    """
    return TupleSampler(source, split, k, direction, constrained).sample(n, _rng(seed))


def verification_pairs(source, split: str | None = None, n: int = 1000, seed=0,
                       constrained: bool = False) -> np.ndarray:
    """(n, 3) int64 rows (voice item, face item, label): half positive (label 1), half negative."""
    rng = _rng(seed)
    t = TupleSampler(source, split, 2, "vf", constrained).sample(n, rng)   # voice, pos, neg
    label = rng.permutation(np.arange(n) % 2 == 0)                        # balanced
    return np.column_stack([t[:, 0], np.where(label, t[:, 1], t[:, 2]), label]).astype(np.int64)


def retrieval_sets(source, split: str | None = None, direction: str = "vf"):
    """(queries, gallery) item indices: every item of the identities present in both modalities."""
    items = split_items(source, split)
    q_mod, g_mod = _modalities(direction)
    both = np.intersect1d(items.voice_ids, items.face_ids)
    return (np.flatnonzero(np.isin(items.ids(q_mod), both)),
            np.flatnonzero(np.isin(items.ids(g_mod), both)))


def sample_training_tuples(cached, B: int, k: int, direction: str, rng,
                           constrained: bool = False) -> np.ndarray:
    """One batch of training tuples (B, k+1); build a :class:`TupleSampler` once for loops."""
    return TupleSampler(cached, None, k, direction, constrained).sample(B, _rng(rng))


def sample_training_pairs(cached, B: int, rng) -> np.ndarray:
    """One batch of retrieval training pairs (B, 2); build a :class:`PairSampler` for loops."""
    return PairSampler(cached).sample(B, _rng(rng))


def training_sampler(cached, cfg, seed=None):
    """Infinite iterator of training batches for ``cfg.task``.

    matching: yields ``[(direction, tuples (b, k+1)), ...]`` - one entry, or for
    ``cfg.direction == "both"`` two with half of ``cfg.batch_size`` each ("vf" first);
    retrieval: yields pairs (B, 2).
    """
    rng = np.random.default_rng(cfg.seed if seed is None else seed)
    if cfg.task == "retrieval":
        pairs = PairSampler(cached)
        while True:
            yield pairs.sample(cfg.batch_size, rng)
    dirs = list(DIRECTIONS) if cfg.direction == "both" else [cfg.direction]
    sizes = [cfg.batch_size // len(dirs) + (i < cfg.batch_size % len(dirs))
             for i in range(len(dirs))]
    samplers = {d: TupleSampler(cached, None, cfg.k, d) for d in dirs}
    while True:
        yield [(d, samplers[d].sample(b, rng)) for d, b in zip(dirs, sizes) if b > 0]


# ----------------------------------------------------------------------------- lists

@dataclass
class ProtocolList:
    """A protocol list resolved to split-local item indices.

    matching: ``rows`` (n, k+1) anchor, true, negatives; verification: (n, 3) voice, face,
    label; retrieval: ``rows`` the queries (Nq,) and ``gallery`` (Ng,).
    """

    kind: str
    direction: str
    rows: np.ndarray
    gallery: np.ndarray | None = None


def read_lines(path) -> list[tuple[int, list[str]]]:
    """(line number, whitespace-separated tokens) of every non-blank line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read list ({e})", "unreadable") from e
    return [(i + 1, ln.split()) for i, ln in enumerate(text.splitlines()) if ln.strip()]


def modality_of(token: str) -> str | None:
    low = token.lower()
    return "voice" if low.endswith(AUDIO_EXTS) else "face" if low.endswith(IMAGE_EXTS) else None


class PathResolver:
    """Maps list paths to split-local item indices.

    A path is matched as given, after removing the first matching prefix of ``strip``, or else by
    its longest trailing part that is a known relative path (so absolute prefixes up to the
    identity folder, as in the published F-V list, need no configuration).
    """

    def __init__(self, source, split: str | None = None, strip=()):
        self.items = split_items(source, split)
        self.strip = (strip,) if isinstance(strip, str) else tuple(strip or ())
        self.lookup = {m: {p: i for i, p in enumerate(self.items.paths(m))}
                       for m in ("voice", "face")}
        self.skipped = _cache_skips(source)

    def resolve(self, token: str, where: str, modality: str | None = None) -> tuple[str, int]:
        mod = modality_of(token)
        if mod is None or (modality and mod != modality):
            want = f"a {modality}" if modality else "an audio or image"
            raise DataError(f"{where}: expected {want} file, got {token!r}", "bad_line")
        path = token.replace("\\", "/")
        for prefix in self.strip:
            if path.startswith(prefix):
                path = path[len(prefix):]
                break
        table, parts = self.lookup[mod], path.strip("/").split("/")
        for s in range(len(parts)):
            hit = table.get("/".join(parts[s:]))
            if hit is not None:
                return mod, hit
        for s in range(len(parts)):
            why = self.skipped[mod].get("/".join(parts[s:]))
            if why is not None:
                raise DataError(f"{where}: {mod} file {token!r} was skipped by the cache as "
                                f"undecodable ({why}); rebuild the list from the cached items",
                                "skipped_file")
        raise DataError(f"{where}: unknown {mod} file {token!r} (not among the "
                        f"{len(table)} {mod} items of split {self.items.split!r})", "unknown_file")


def _cache_skips(source) -> dict[str, dict[str, str]]:
    """modality -> {path: reason} of the items a ``CachedSplit`` left out (none for an index)."""
    out = {"voice": {}, "face": {}}
    if not hasattr(source, "voice_table"):
        return out
    for mod, kept, table in (("voice", source.voice_table, source.index.voices),
                             ("face", source.face_table, source.index.faces)):
        listed = table.path[table.split == source.split]
        dropped = listed[~listed.isin(kept.path)]
        out[mod] = dict.fromkeys(dropped, "skipped")
        report = (source.report or {}).get(mod + "s", {})
        root = source.index.voice_root if mod == "voice" else source.index.face_root
        for bad in report.get("bad_files", []):        # the first MAX_LISTED_BAD, with reasons
            full = Path(bad["path"])
            rel = full.relative_to(root).as_posix() if full.is_relative_to(root) else None
            if rel in out[mod]:
                out[mod][rel] = bad["reason"]
    return out


def _check_identities(ids: np.ndarray, path, lines: list[int]) -> None:
    """ids (n, k+1) anchor, true, negatives: the true must match, negatives must not."""
    wrong = ids[:, 1] != ids[:, 0]
    neg_same = (ids[:, 2:] == ids[:, :1]).any(axis=1)
    for bad, what in ((wrong, "true candidate is of another identity than the anchor"),
                      (neg_same, "a negative candidate is of the anchor's identity")):
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{path}: line {lines[i]}: {what}", "wrong_label")


def _guess_kind(lines) -> str:
    toks = lines[0][1]
    if len(lines) == 2:
        m1 = {modality_of(t) for t in lines[0][1]}
        m2 = {modality_of(t) for t in lines[1][1]}
        if len(m1) == 1 and len(m2) == 1 and m1 != m2:
            return "retrieval"
    if len(toks) == 4 and toks[3].lstrip("-").isdigit():
        return "official_fv"
    return "verification" if len(toks) == 2 else "matching"


def read_list(path, kind: str, source, split: str | None = None, strip=()) -> ProtocolList:
    """Read a list file of ``kind`` (one of ``KINDS`` or "auto") against ``source``'s items.

    Unknown files, malformed lines and labels that contradict the identities raise
    :class:`DataError` naming the list, the line number and the path.
    """
    path = Path(path)
    if kind not in KINDS + ("auto",):
        raise ValueError(f"kind must be one of {KINDS} or 'auto', got {kind!r}")
    lines = read_lines(path)
    if not lines:
        raise DataError(f"{path}: the {kind if kind != 'auto' else ''} list is empty "
                        "(no non-blank line)".replace("  ", " "), "empty")
    kind = _guess_kind(lines) if kind == "auto" else kind
    res = PathResolver(source, split, strip)
    reader = {"matching": _read_matching, "verification": _read_verification,
              "retrieval": _read_retrieval, "official_fv": _read_official}[kind]
    return reader(path, lines, res)


def _read_matching(path, lines, res: PathResolver) -> ProtocolList:
    first = lines[0][1]
    a_mod = modality_of(first[0])
    direction = "vf" if a_mod == "voice" else "fv"
    c_mod = _modalities(direction)[1]
    k = len(first) - 1
    rows = np.empty((len(lines), k + 1), np.int64)
    for r, (no, toks) in enumerate(lines):
        where = f"{path}: line {no}"
        if len(toks) != k + 1 or k < 2:
            raise DataError(f"{where}: expected {max(k, 2) + 1} paths, got {len(toks)}", "bad_line")
        rows[r] = [res.resolve(t, where, a_mod if j == 0 else c_mod)[1] for j, t in enumerate(toks)]
    ids = np.column_stack([res.items.ids(a_mod)[rows[:, 0]], res.items.ids(c_mod)[rows[:, 1:]]])
    _check_identities(ids, path, [no for no, _ in lines])
    return ProtocolList("matching", direction, rows)


def _read_verification(path, lines, res: PathResolver) -> ProtocolList:
    rows = np.empty((len(lines), 3), np.int64)
    direction = None
    for r, (no, toks) in enumerate(lines):
        where = f"{path}: line {no}"
        if len(toks) != 2:
            raise DataError(f"{where}: expected 2 paths (voice face), got {len(toks)}", "bad_line")
        got = dict(res.resolve(t, where) for t in toks)
        if set(got) != {"voice", "face"}:
            raise DataError(f"{where}: expected one audio and one image file", "bad_line")
        d = "vf" if modality_of(toks[0]) == "voice" else "fv"
        if direction not in (None, d):
            raise DataError(f"{where}: modality order differs from line 1", "bad_line")
        direction = d
        rows[r, :2] = got["voice"], got["face"]
    rows[:, 2] = res.items.voice_ids[rows[:, 0]] == res.items.face_ids[rows[:, 1]]
    return ProtocolList("verification", direction, rows)


def _read_retrieval(path, lines, res: PathResolver) -> ProtocolList:
    if len(lines) != 2:
        raise DataError(f"{path}: a retrieval list has 2 lines (queries, gallery), "
                        f"found {len(lines)}", "bad_line")
    q_mod = modality_of(lines[0][1][0])
    g_mod = "face" if q_mod == "voice" else "voice"
    out = [np.array([res.resolve(t, f"{path}: line {no}", mod)[1] for t in toks], np.int64)
           for (no, toks), mod in zip(lines, (q_mod, g_mod))]
    return ProtocolList("retrieval", "vf" if q_mod == "voice" else "fv", out[0], out[1])


def _read_official(path, lines, res: PathResolver) -> ProtocolList:
    rows = np.empty((len(lines), 3), np.int64)
    for r, (no, toks) in enumerate(lines):
        where = f"{path}: line {no}"
        if len(toks) != 4 or toks[3] not in ("0", "1"):
            raise DataError(f"{where}: expected 'face audio1 audio2 label(0|1)'", "bad_line")
        face = res.resolve(toks[0], where, "face")[1]
        a = [res.resolve(t, where, "voice")[1] for t in toks[1:3]]
        lab = int(toks[3])
        rows[r] = face, a[lab], a[1 - lab]
    ids = np.column_stack([res.items.face_ids[rows[:, 0]], res.items.voice_ids[rows[:, 1:]]])
    _check_identities(ids, path, [no for no, _ in lines])
    return ProtocolList("matching", "fv", rows)


def write_list(path, plist: ProtocolList, source, split: str | None = None, fmt: str = "wen",
               voice_prefix: str = "", face_prefix: str = "", seed=0) -> Path:
    """Write ``plist`` as text; ``fmt="official"`` writes a 1:2 F-V list as 'face a1 a2 label'
    (the true audio placed at a random position drawn from ``seed``, paths prefixed)."""
    items, path = split_items(source, split), Path(path)
    a_mod, c_mod = _modalities(plist.direction)
    if len(plist.rows) == 0 or (plist.gallery is not None and len(plist.gallery) == 0):
        raise DataError(f"{path}: refusing to write an empty {plist.kind} list", "empty")
    pa, pc = items.paths(a_mod), items.paths(c_mod)
    if plist.kind == "retrieval":
        text = [" ".join(pa[plist.rows]), " ".join(pc[plist.gallery])]
    elif plist.kind == "verification":
        v, f = items.voice_paths[plist.rows[:, 0]], items.face_paths[plist.rows[:, 1]]
        text = [f"{a} {b}" for a, b in (zip(v, f) if plist.direction == "vf" else zip(f, v))]
    elif fmt == "official":
        if plist.direction != "fv" or plist.rows.shape[1] != 3:
            raise ValueError("the official format holds 1:2 F-V tuples only")
        lab = _rng(seed).integers(0, 2, len(plist.rows))
        a1 = np.where(lab == 0, plist.rows[:, 1], plist.rows[:, 2])
        a2 = np.where(lab == 0, plist.rows[:, 2], plist.rows[:, 1])
        text = [f"{face_prefix}{f} {voice_prefix}{x} {voice_prefix}{y} {lb}"
                for f, x, y, lb in zip(pa[plist.rows[:, 0]], pc[a1], pc[a2], lab)]
    else:
        text = [" ".join([pa[r[0]], *pc[r[1:]]]) for r in plist.rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(text) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


# ----------------------------------------------------------------------------- CLI

_DIR_NAME = {"vf": "v2f", "fv": "f2v"}


def list_seed(seed: int, *parts) -> np.random.Generator:
    """An independent generator for one list, from the run seed and the list's coordinates."""
    codes = [seed] + [p if isinstance(p, int) else int.from_bytes(str(p).encode()[:8], "little")
                      for p in parts]
    return np.random.default_rng(np.random.SeedSequence(codes))


def write_protocols(index: DataIndex, out, seed: int = 0, n: int = 2000, splits=("val", "test"),
                    ks=tuple(range(2, 11)), log=print) -> list[Path]:
    """Every list: 1:k matching (U and G, both directions), verification (U, G), retrieval."""
    out, written = Path(out), []

    def emit(name, make):
        try:
            written.append(write_list(out / name, make(), index, split))
        except DataError as e:
            log(f"skipped {name}: {e}")

    for split in splits:
        for d in DIRECTIONS:
            for g in (False, True):
                tag = "g_" if g else ""
                for k in ks:
                    emit(f"match_{tag}{_DIR_NAME[d]}_{k}_{split}.txt", lambda: ProtocolList(
                        "matching", d, matching_tuples(index, split, k, d, g, n,
                                                       list_seed(seed, split, d, int(g), k))))
            emit(f"retrieval_{_DIR_NAME[d]}_{split}.txt", lambda: ProtocolList(
                "retrieval", d, *retrieval_sets(index, split, d)))
        for g in (False, True):
            tag = "g_" if g else ""
            emit(f"verify_{tag}v2f_{split}.txt", lambda: ProtocolList(
                "verification", "vf", verification_pairs(
                    index, split, n, list_seed(seed, split, "verify", int(g)), g)))
    return written


def add_protocols_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="data root (voices/, faces/, meta.csv)")
    p.add_argument("--out", required=True, help="folder for the list files")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the draws; each list has its own stream from it (default: 0)")
    p.add_argument("--meta", nargs="*", default=None, help="meta CSV file(s) or a folder of them")
    p.add_argument("--voice-root", default=None, help="voice folder (default: DATA/voices)")
    p.add_argument("--face-root", default=None, help="face folder (default: DATA/faces)")
    p.add_argument("--n", type=_at_least(1), default=2000,
                   help="tuples / pairs per list, at least 1 (default: 2000)")
    p.add_argument("--splits", nargs="+", default=["val", "test"], choices=SPLITS,
                   help="splits to write lists for (default: val test)")
    p.add_argument("--ks", type=_at_least(2), nargs="+", default=list(range(2, 11)),
                   help="candidates k of the 1:k matching lists, each at least 2 (default: 2 .. 10)")


def _at_least(low: int):
    """argparse type: an int >= ``low``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {v}")
        return v
    return parse


def run_protocols(args: argparse.Namespace) -> int:
    meta = args.meta[0] if args.meta and len(args.meta) == 1 else (args.meta or None)
    index = load_index(args.data, meta, args.voice_root, args.face_root)
    print(index.summary().to_string())
    print("skipped:", {k: v for k, v in index.skipped.items() if v})
    written = write_protocols(index, args.out, args.seed, args.n, args.splits, args.ks)
    print(f"wrote {len(written)} lists to {args.out}")
    return 0


__all__ = [
    "KINDS", "PairSampler", "PathResolver", "ProtocolList", "SplitItems", "TupleSampler",
    "add_protocols_arguments", "list_seed", "matching_tuples", "modality_of", "read_lines",
    "read_list", "retrieval_sets", "run_protocols", "sample_training_pairs",
    "sample_training_tuples", "split_items", "training_sampler", "verification_pairs",
    "write_list", "write_protocols",
]
