"""``python -m dsanet prepare``: check the VoxCeleb1 + VGGFace downloads and write a run config.

``prepare(voices, faces, meta, out)`` turns the user's downloads into a data root ``OUT`` in the
layout of :mod:`dsanet.data.layout`, without copying, moving or deleting a user file:

* ``OUT/voices``: a symlink to the one voice root, or - for several (VoxCeleb1 dev and test) - a
  folder of one symlink per identity folder merging them (an identity folder found in two roots
  is taken from the first and named in the report);
* ``OUT/faces``: a symlink to the face root (VGGFace crops ``<Name>/<img>.jpg`` or VoxCeleb1 face
  frames ``<Name>/<video>/<frame>.jpg``);
* ``OUT/meta.csv``: the meta rows of ``--meta`` (default: Wen et al.'s split CSVs shipped in
  :mod:`dsanet.resources`), one per VoxCeleb1 id. Files are read one by one with
  :func:`~dsanet.data.layout.read_meta`; where the official tab-separated ``vox1_meta.csv`` and a
  split CSV disagree only on ``Set`` or ``Nationality`` (the split marks the identities it leaves
  out "none"), the split CSV's row is kept and the id named; any other disagreement (face name,
  gender, or between two files of one kind) is an error naming every id;
* ``OUT/dsanet.yaml`` (JSON when PyYAML is missing): ``data_root``, ``voice_root``, ``face_root``,
  ``meta``, ``profile: paper`` (and ``cache_dir``, ``split_lists``, ``pretrained`` when given),
  read by ``train --config`` (or ``--data OUT``) and by the notebooks given ``data_root=OUT``
  (:mod:`dsanet.config_file`), so ``reproduce --param data_root=OUT`` trains on the same files
  from the same weights;
* ``OUT/prepare_report.json``: the whole report, every skipped identity and file by name.

The tree is then scanned with :func:`~dsanet.data.layout.load_index` (which counts what it skips)
and every identity the split leaves out is named with its reason; every wav's header is read
(:func:`~dsanet.data.frontends.wav_frames`) and every image decoded
(:func:`~dsanet.data.frontends.load_face`), the checks the cache build applies. An identity is
usable when at least one voice and one face of it are readable; a split needs ``MIN_IDENTITIES``
usable identities, else the report's ``problem`` says which split cannot be formed (the command
prints the report, then that one line, and exits with status 2; no config is written). The
report compares the identities and items per split with Table II (924 / 112 / 189) and the disk
the decoded cache takes at the paper profile's sizes with the free disk where it will be built.
``OUT`` may hold only what an earlier ``prepare`` wrote there (``.dsanet-prepare`` marks it).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from .. import paper
from ..config import get_profile
from ..resources import split_csvs
from .cache import MAX_CROPS
from .cache_files import SPACE_MARGIN
from .frontends import load_face, wav_frames
from .layout import (AUDIO_EXTS, IMAGE_EXTS, REFUSED, SPLITS, UNREADABLE, DataError, _scan,
                     assign_splits, load_index, read_meta)
from .splits import protocol_counts, read_split_lists

MIN_IDENTITIES = 2      # a split needs two identities: a matching tuple pairs two
MARK = ".dsanet-prepare"
SHOWN = 8               # names printed per kind of skip (all are in prepare_report.json)
META_COLUMNS = ["VoxCeleb1_ID", "VGGFace1_ID", "Gender", "Nationality", "Set"]
_COLS = ["voice_id", "face_id", "gender", "nationality", "set"]
# load_index's skip counters whose files are not named one by one here
_COUNTED_ONLY = ("ignored_files", "unreadable_folders", "symlink_escapes", "symlink_loops")


@dataclass
class PrepareReport:
    """What ``prepare`` found and wrote. ``skipped``: kind -> names (identities or files)."""

    out: str
    voice_roots: list
    face_root: str
    meta_sources: list
    merged: bool                      # several voice roots merged through OUT/voices symlinks
    identities: dict                  # split -> usable identities
    voices: dict                      # split -> readable voice clips of the index's identities
    faces: dict                       # split -> readable face images
    skipped: dict = field(default_factory=dict)
    layout_counts: dict = field(default_factory=dict)   # DataIndex.skipped
    cache_bytes: dict = field(default_factory=dict)     # split -> bytes at the paper sizes
    voice_item_bytes: int = 0         # the longest (capped) voice at the paper sizes
    face_item_bytes: int = 0
    cache_dir: str = ""
    free_bytes: int = 0
    config_path: str | None = None
    problem: str | None = None        # why the split cannot be formed (exit status 2)
    protocol: str = "wen"             # the split protocol (dsanet.data.splits): "wen" | "pins"
    split_lists: str | None = None    # the "pins" identity lists
    pretrained: str | None = None     # the ImageNet ResNet18 weights written into the config

    def lines(self) -> list[str]:
        """The report as printed."""
        gb = 1e9
        table_ii = paper.table_ii().set_index("row")
        if self.protocol == "pins":   # Learnable PINs gives identity counts only
            ref = protocol_counts("pins")
            table_ii = pd.DataFrame({s: {"identities": ref[s], "voices": "-", "faces": "-"}
                                     for s in SPLITS})
        ref_name = "PINs" if self.protocol == "pins" else "Table II"
        out = [f"prepared {self.out}",
               f"  voices: {', '.join(self.voice_roots)}"
               + (f" (merged through symlinks in {Path(self.out) / 'voices'}; no file copied)"
                  if self.merged else f" (linked as {Path(self.out) / 'voices'})"),
               f"  faces:  {self.face_root} (linked as {Path(self.out) / 'faces'})",
               f"  meta:   {', '.join(self.meta_sources)} -> {Path(self.out) / 'meta.csv'}",
               f"  split:  {'Learnable PINs lists ' + str(self.split_lists) if self.protocol == 'pins' else 'Wen et al. (names A-B val, C-E test)'}",
               f"split   identities ({ref_name})   voice clips ({ref_name})   face images ({ref_name})"]
        for s in SPLITS:
            out.append(f"{s:<7} {self.identities[s]:>10} ({table_ii.at['identities', s]:>6})"
                       f"   {self.voices[s]:>11} ({table_ii.at['voices', s]:>7})"
                       f"   {self.faces[s]:>11} ({table_ii.at['faces', s]:>7})")
        out.append("usable identity: listed by the split (Set not 'none') with at least one "
                   "readable voice and face")
        for kind, names in self.skipped.items():
            if names:
                more = f" ... and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
                out.append(f"skipped: {kind} ({len(names)}): {'; '.join(names[:SHOWN])}{more}")
        other = {k: n for k, n in self.layout_counts.items() if n and k in _COUNTED_ONLY}
        if other:
            out.append("skipped by the scan (counts; docs/bad_input.md): "
                       + ", ".join(f"{k} {n}" for k, n in other.items()))
        need = sum(self.cache_bytes.values())
        out.append(f"cache at the paper profile's sizes: a voice {self.voice_item_bytes / 1e3:.0f}"
                   f" kB (float16), a face {self.face_item_bytes / 1e3:.0f} kB (uint8); "
                   f"{need / gb:.2f} GB in all ("
                   + ", ".join(f"{s} {b / gb:.2f}" for s, b in self.cache_bytes.items())
                   + f") at {self.cache_dir}; {self.free_bytes / gb:.2f} GB free there")
        if need > self.free_bytes:
            out.append("WARNING: not enough free disk for the cache; pass --cache-dir DIR on a "
                       "larger disk")
        out.append(f"ImageNet weights: {self.pretrained}" if self.pretrained else
                   "ImageNet weights: none given, so the paper profile will train ResNet18 from "
                   "random weights (--pretrained FILE; docs/real_data.md, section 5)")
        if self.config_path:
            out += [f"wrote {self.config_path}; next: python -m dsanet train --config "
                    f"{self.config_path} --out runs/paper, or python -m dsanet reproduce "
                    f"--profile paper --param data_root={self.out}"]
        return out


# ----------------------------------------------------------------------------- meta

def _official(path: Path) -> bool:
    """The official ``vox1_meta.csv`` format: a tab-separated header (as read_meta tells it)."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        return "\t" in next((ln for ln in fh if ln.strip()), "")


def merge_meta(files) -> tuple[pd.DataFrame, list[str]]:
    """One meta row per VoxCeleb1 id from ``files`` (columns of read_meta), and the ids whose
    official row gave way to a split CSV's; other conflicts raise DataError naming every id."""
    parts = []
    for f in files:
        t = read_meta(f)[_COLS].copy()       # each file alone: format errors name the file
        t["source"], t["official"] = Path(f).name, _official(Path(f))
        parts.append(t)
    rows = pd.concat(parts, ignore_index=True).drop_duplicates(_COLS)
    dup = rows.voice_id.duplicated(keep=False)
    keep, resolved, conflicts = [rows[~dup]], [], []
    for vid, g in rows[dup].groupby("voice_id", sort=True):
        split_rows = g[~g.official].drop_duplicates(_COLS)
        differ = [c for c in _COLS[1:] if g[c].nunique() > 1]
        said = f"{vid} ({', '.join(differ)}: " + ", ".join(
            f"{r.source} {'/'.join(repr(getattr(r, c)) for c in differ)}"
            for r in g.itertuples()) + ")"
        if len(split_rows) == 1 and g.official.any() and set(differ) <= {"set", "nationality"}:
            keep.append(split_rows)
            resolved.append(said)
        else:
            conflicts.append(said)
    table = pd.concat(keep, ignore_index=True).sort_values("voice_id").reset_index(drop=True)
    faces = table[table.face_id.duplicated(keep=False)].groupby("face_id").voice_id
    conflicts += [f"face name {f!r} given to {', '.join(v)}" for f, v in faces]
    if conflicts:
        raise DataError(f"conflicting meta rows ({len(conflicts)}): {'; '.join(conflicts[:5])}"
                        + (" ..." if len(conflicts) > 5 else ""), "meta")
    return table[_COLS], resolved


def write_meta_csv(table: pd.DataFrame, path: Path) -> None:
    table.set_axis(META_COLUMNS, axis=1).to_csv(path, index=False)


# ----------------------------------------------------------------------------- OUT

def _claim(out: Path, names) -> None:
    """Refuse an ``out`` holding ``names`` that no earlier prepare wrote; mark it as ours."""
    out.mkdir(parents=True, exist_ok=True)
    if not (out / MARK).is_file():
        for name in names:
            if os.path.lexists(out / name):
                raise DataError(f"{out / name}: exists and was not written by prepare; "
                                "choose an empty --out", "exists")
    (out / MARK).write_text("written by python -m dsanet prepare: voices/ and faces/ are "
                            "symlinks to the user's files; meta.csv, the config and the report "
                            "are its own\n")


def _unlink_ours(p: Path) -> None:
    """Remove an earlier prepare's links: symlinks and folders of symlinks, never a file."""
    if p.is_symlink():
        p.unlink()
    elif p.is_dir():
        entries = list(p.iterdir())
        for e in entries:               # all checked before any is removed
            if not e.is_symlink():
                raise DataError(f"{e}: not a link written by prepare; remove it or choose "
                                "another --out", "exists")
        for e in entries:
            e.unlink()
        p.rmdir()
    elif p.exists():
        raise DataError(f"{p}: not a link written by prepare; choose another --out", "exists")


def link_voices(roots: list[Path], dest: Path) -> list[str]:
    """``dest`` -> the one root, or a folder of identity-folder symlinks merging the roots;
    returns the identity folders found in more than one root (the first root's is linked)."""
    _unlink_ours(dest)
    if len(roots) == 1:
        dest.symlink_to(roots[0], target_is_directory=True)
        return []
    dest.mkdir()
    first: dict[str, Path] = {}
    clashes = []
    for root in roots:
        for d in sorted(root.iterdir()):
            if not d.is_dir() or d.name.startswith("."):
                continue
            if d.name in first:
                clashes.append(f"{d.name} in {first[d.name].parent} and {root} (first used)")
                continue
            first[d.name] = d
            (dest / d.name).symlink_to(d, target_is_directory=True)
    return clashes


# ----------------------------------------------------------------------------- checks

def _why_left_out(index, table: pd.DataFrame) -> dict[str, list[str]]:
    """Every meta row of the split (Set not "none") the index left out, named by reason."""
    kinds = {k: [] for k in ("meta rows without files", "identities without voices",
                             "identities without faces", "unreadable identity folders",
                             "identity folders linked elsewhere")}
    kept = set(index.identities.voice_id)
    vreal, freal = index.voice_root.resolve(), index.face_root.resolve()
    for r in table[(table.set != "none") & ~table.voice_id.isin(kept)].itertuples():
        vdir, fdir = index.voice_root / r.voice_id, index.face_root / r.face_id
        v = _scan(vdir, AUDIO_EXTS, Counter(), vreal) if vdir.is_dir() else None
        f = _scan(fdir, IMAGE_EXTS, Counter(), freal) if fdir.is_dir() else None
        name = f"{r.voice_id} {r.face_id} ({r.split})"
        kind = ("meta rows without files" if v is None and f is None
                else "unreadable identity folders" if UNREADABLE in (v, f)
                else "identity folders linked elsewhere" if REFUSED in (v, f)
                else "identities without voices" if not v else "identities without faces")
        kinds[kind].append(name)
    return kinds


def _progress(items, on: bool, desc: str):
    if not on:
        return items
    from tqdm.auto import tqdm
    return tqdm(items, desc=desc)


def check_files(index, cfg, progress: bool = False):
    """(voice frames or -1 per voice item, face readable per item, bad voices, bad faces)."""
    frames, bad_v = [], []
    for rel in _progress(index.voices.path, progress, "voice headers"):
        try:
            frames.append(wav_frames(index.voice_path(rel), cfg.sample_rate, cfg.hop_length,
                                     cfg.n_fft))
        except DataError as e:
            frames.append(-1)
            bad_v.append(f"{rel} ({e.reason}): {str(e).split(': ', 1)[-1]}")
    ok_f, bad_f = [], []
    for rel in _progress(index.faces.path, progress, "face images"):
        try:
            load_face(index.face_path(rel))
            ok_f.append(True)
        except DataError as e:
            ok_f.append(False)
            bad_f.append(f"{rel} ({e.reason}): {str(e).split(': ', 1)[-1]}")
    return pd.Series(frames, dtype="int64"), pd.Series(ok_f, dtype=bool), bad_v, bad_f


def _unlisted(root: Path, listed) -> list[str]:
    """Folders of a modality root that no meta row names (load_index counts them)."""
    return sorted(d.name for d in root.iterdir()
                  if d.is_dir() and not d.name.startswith(".") and d.name not in listed)


def _free(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


# ----------------------------------------------------------------------------- prepare

def check_pretrained(path) -> str:
    """``path`` as an absolute path once it holds a torchvision ResNet18 state dict (every key of
    ``torchvision.models.resnet18`` but ``fc.*`` and the batch-norm counters, with its shape: the check
    :func:`dsanet.models.backbones.build_backbone` applies when training starts); a
    :class:`DataError` naming the file otherwise."""
    import torch
    import torchvision

    p = Path(os.path.abspath(path))
    if not p.is_file():
        raise DataError(f"--pretrained {p}: file not found (weights are never downloaded)", "missing")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same message
        raise DataError(f"--pretrained {p}: not a readable PyTorch state dict "
                        f"({type(e).__name__})", "unreadable") from e
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    def counted(k: str) -> bool:   # fc.* and the batch-norm counters may be absent
        return not k.startswith("fc.") and not k.endswith("num_batches_tracked")

    want = {k: tuple(v.shape) for k, v in
            torchvision.models.resnet18(weights=None).state_dict().items() if counted(k)}
    state = state if isinstance(state, dict) else {}
    bad = [k for k, shape in want.items()
           if k not in state or tuple(getattr(state[k], "shape", ())) != shape]
    extra = [k for k in state if k not in want and counted(k)]
    if bad or extra:
        raise DataError(f"--pretrained {p}: not a ResNet18 state dict (missing or misshapen: "
                        f"{bad[:3]}; not in ResNet18: {extra[:3]})", "unreadable")
    return str(p)


def prepare(voices, faces, meta=None, out="data/voxceleb", cache_dir=None,
            progress: bool = False, split_lists=None, pretrained=None) -> PrepareReport:
    """Check the downloads and write ``out`` (see the module docstring); never raises for a split
    that cannot be formed: the report's ``problem`` says so and no config is written."""
    pretrained = check_pretrained(pretrained) if pretrained else None
    roots = list(dict.fromkeys(Path(os.path.abspath(v)) for v in voices))
    face_root = Path(os.path.abspath(faces))
    for what, p in [("--voices", r) for r in roots] + [("--faces", face_root)]:
        if not p.is_dir():
            raise DataError(f"{what} {p}: not a directory", "missing")
    metas = [f for m in (meta or split_csvs())
             for f in (sorted(Path(m).glob("*.csv")) if Path(m).is_dir() else [Path(m)])]
    if not metas:
        raise DataError(f"--meta {' '.join(map(str, meta))}: no *.csv meta file there", "meta")
    out = Path(os.path.abspath(out))
    config_name = "dsanet.yaml" if _have_yaml() else "dsanet.json"
    _claim(out, ("voices", "faces", "meta.csv", config_name, "prepare_report.json"))

    table, resolved = merge_meta(metas)
    write_meta_csv(table, out / "meta.csv")
    clashes = link_voices(roots, out / "voices")
    _unlink_ours(out / "faces")
    (out / "faces").symlink_to(face_root, target_is_directory=True)

    lists = read_split_lists(split_lists) if split_lists else None
    index = load_index(out, out / "meta.csv", out / "voices", out / "faces", splits=lists)
    table = read_meta(out / "meta.csv")
    skipped = {"meta rows the official file and a split CSV disagree on (split CSV kept)":
               resolved, "voice folders in several roots": clashes}
    if lists is not None:   # the PINs lists decide the split, "none" rows included
        listed, _, unknown = assign_splits(table, lists, str(split_lists))
        skipped["identities the split lists leave out"] = [
            f"{r.voice_id} {r.face_id}" for r in table[~table.voice_id.isin(listed.voice_id)].itertuples()]
        skipped["listed identities the meta does not have"] = unknown
        table = listed.assign(set="")
    skipped.update(_why_left_out(index, table))
    skipped["voice folders no meta row names"] = _unlisted(index.voice_root, set(table.voice_id))
    skipped["face folders no meta row names"] = _unlisted(index.face_root, set(table.face_id))
    skipped["identities the split leaves out (Set none)"] = [
        f"{r.voice_id} {r.face_id}" for r in table[table.set == "none"].itertuples()]

    cache_dir = os.path.abspath(cache_dir) if cache_dir else None
    cfg = get_profile("paper", **({"cache_dir": cache_dir} if cache_dir else {}))
    frames, ok_f, bad_v, bad_f = check_files(index, cfg, progress)
    v, f = index.voices.assign(frames=frames), index.faces.assign(ok=ok_f)
    v, f = v[v.frames >= 0], f[f.ok]
    ids = index.identities
    has_v, has_f = ids.index.isin(v.identity), ids.index.isin(f.identity)
    name = ids.voice_id + " " + ids.face_id + " (" + ids.split + ")"
    skipped.update({"unreadable voice files": bad_v, "unreadable face files": bad_f,
                    "identities without a readable voice": list(name[~has_v]),
                    "identities without a readable face": list(name[has_v & ~has_f])})
    usable = ids[has_v & has_f]
    n_ids = {s: int((usable.split == s).sum()) for s in SPLITS}

    # the cache's sizes (dsanet.data.cache): voices (1, bins, Tmax) float16 with Tmax the split's
    # longest clip capped at MAX_CROPS crops, faces (3, S, S) uint8, plus a margin per split
    cap = cfg.spec_frames if cfg.spec_layout == "published" else MAX_CROPS * cfg.spec_frames
    face_bytes = 3 * cfg.face_size ** 2
    cache_bytes = {}
    for s in SPLITS:
        fr = v.frames[v.split == s]
        tmax = cap if cfg.spec_layout == "published" else min(int(fr.max()) if len(fr) else 1, cap)
        cache_bytes[s] = (len(fr) * cfg.spec_bins * tmax * 2 + int((f.split == s).sum())
                          * face_bytes + SPACE_MARGIN)
    cache_at = Path(cfg.cache_dir) if cfg.cache_dir else out / ".cache"
    short = [f"{s} ({n})" for s, n in n_ids.items() if n < MIN_IDENTITIES]
    report = PrepareReport(
        out=str(out), voice_roots=[str(r) for r in roots], face_root=str(face_root),
        meta_sources=[str(m) for m in metas], merged=len(roots) > 1, identities=n_ids,
        voices={s: int((v.split == s).sum()) for s in SPLITS},
        faces={s: int((f.split == s).sum()) for s in SPLITS}, skipped=skipped,
        layout_counts=dict(index.skipped), cache_bytes=cache_bytes,
        voice_item_bytes=cfg.spec_bins * cap * 2, face_item_bytes=face_bytes,
        cache_dir=str(cache_at), free_bytes=_free(cache_at),
        problem=(f"the split cannot be formed: too few usable identities in {', '.join(short)}; "
                 f"each split needs at least {MIN_IDENTITIES} (the skipped identities are named "
                 f"above and in {out / 'prepare_report.json'})") if short else None,
        protocol="pins" if lists is not None else "wen",
        split_lists=str(Path(os.path.abspath(split_lists))) if split_lists else None,
        pretrained=pretrained)
    if not short:
        report.config_path = str(write_config(out / config_name, out, cache_dir,
                                              report.split_lists, pretrained))
    elif (out / config_name).is_file():
        (out / config_name).unlink()    # an earlier run's config would point at this tree
    (out / "prepare_report.json").write_text(json.dumps(asdict(report), indent=1) + "\n")
    return report


def _have_yaml() -> bool:
    try:
        import yaml  # noqa: F401
    except ImportError:
        return False
    return True


def write_config(path: Path, out: Path, cache_dir=None, split_lists=None,
                 pretrained=None) -> Path:
    """The Config fields ``train --config`` reads, and the notebooks given ``data_root=OUT``
    (YAML, or JSON by the file's suffix; :mod:`dsanet.config_file`); with ``split_lists``, the
    Learnable-PINs split protocol (Table III's setting); with ``pretrained``, the ImageNet
    ResNet18 weights the backbones start from."""
    doc = {"profile": "paper", "data_root": str(out), "voice_root": str(out / "voices"),
           "face_root": str(out / "faces"), "meta": str(out / "meta.csv")}
    if split_lists:
        doc.update(split_protocol="pins", split_lists=str(split_lists))
    if cache_dir:
        doc["cache_dir"] = str(Path(os.path.abspath(cache_dir)))
    if pretrained:
        doc["pretrained"] = str(pretrained)
    if path.suffix == ".yaml":
        import yaml
        path.write_text("# written by python -m dsanet prepare; read by train --config FILE or --data "
                        "DIR, and by the notebooks given data_root=DIR\n"
                        + yaml.safe_dump(doc, sort_keys=False))
    else:
        path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


# ----------------------------------------------------------------------------- command line

def add_prepare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--voices", metavar="DIR", nargs="+", required=True,
                   help="VoxCeleb1 wav root(s), idNNNNN/<video>/<clip>.wav; give dev and test "
                        "both (merged through symlinks under --out)")
    p.add_argument("--faces", metavar="DIR", required=True,
                   help="face root: VGGFace crops <Name>/<img>.jpg or VoxCeleb1 face frames "
                        "<Name>/<video>/<frame>.jpg")
    p.add_argument("--meta", metavar="FILE", nargs="+", default=None,
                   help="meta file(s) or folders of *.csv: the official tab-separated "
                        "vox1_meta.csv and/or Wen et al.'s split CSVs (default: the split CSVs "
                        "shipped with dsanet)")
    p.add_argument("--out", metavar="DIR", required=True,
                   help="folder to write: the data root (links, meta.csv), dsanet.yaml and "
                        "prepare_report.json; never a copy of the data")
    p.add_argument("--cache-dir", metavar="DIR", default=None,
                   help="where the decoded cache will go (Config.cache_dir; default: OUT/.cache)")
    p.add_argument("--split-lists", metavar="FILE", default=None,
                   help="the Learnable-PINs identity split (Table III): a CSV 'identity,split' or "
                        "a folder of train.txt / val.txt / test.txt (VoxCeleb1 ids or names); "
                        "counts are checked against 901 / 100 / 250 and the config uses it "
                        "(default: Wen et al.'s split, Table II)")
    p.add_argument("--pretrained", metavar="FILE", default=None,
                   help="torchvision's ImageNet ResNet18 weights (resnet18-f37072fd.pth, fetched "
                        "by you; never downloaded): checked and written into the config, so "
                        "train and reproduce fine-tune from them as the paper does")


def run_prepare(args) -> int:
    on = not getattr(args, "quiet", False) and sys.stderr.isatty()
    report = prepare(args.voices, args.faces, args.meta, args.out, args.cache_dir, progress=on,
                     split_lists=args.split_lists, pretrained=args.pretrained)
    print("\n".join(report.lines()))
    if report.problem:
        raise DataError(report.problem, "split")
    return 0


__all__ = ["MIN_IDENTITIES", "PrepareReport", "add_prepare_arguments", "check_files",
           "link_voices", "merge_meta", "prepare", "run_prepare", "write_config"]
