"""Evaluation list files: read them against a split's items, write them from drawn tuples.

Lists hold paths; :class:`PathResolver` maps them to split-local item indices (the positions of
:mod:`dsanet.data.items`), so a list resolves against a ``DataIndex`` or a ``CachedSplit``.
The draws that fill the lists live in :mod:`dsanet.data.sampling`; the ``protocols`` command
that writes every list, in :mod:`dsanet.data.protocols`.

Text formats (Wen et al.; their split CSVs ship in ``dsanet/resources/protocols``)::

    matching      voice pos_face neg_face ...     (V-F; F-V: face pos_voice neg_voice ...)
    verification  voice face                      (label from the identities)
    retrieval     line 1: every query, line 2: every gallery item
    official_fv   face audio1 audio2 label        (published DSANet F-V list; label 0/1 is the
                                                    matching audio; absolute path prefixes)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .items import _modalities, split_items
from .layout import AUDIO_EXTS, IMAGE_EXTS, DataError
from .sampling import _rng

KINDS = ("matching", "verification", "retrieval", "official_fv")


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


__all__ = ["KINDS", "PathResolver", "ProtocolList", "modality_of", "read_lines", "read_list",
           "write_list"]
