"""Data views of notebook 00 (Table II beside the paper, example items, traits, calibration
lines) and the inputs every notebook reads: a split's cache, a run's model, evaluation-ready
faces and voices."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import Config
from ..data import synthetic
from ..data.batches import voice_batch
from ..data.cache import build_cache
from ..data.frontends import Spectrogram, load_face, load_wav, normalise_faces, resize_face
from ..data.splits import load_cfg_index
from ..engine.checkpoint import load_network
from ..experiments import Run

LABELS = {"vf": "V-F", "fv": "F-V"}

# ----------------------------------------------------------------------------- data (notebook 00)


def trait_frame(root) -> pd.DataFrame:
    """One row per identity: gender, split and the mean realised voice and face traits of its
    samples (f0_hz, vtl_cm from voices; jaw_width, face_length from faces; samples.csv)."""
    path = Path(root) / "samples.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no per-sample traits (only the embedded benchmark has them)")
    s = pd.read_csv(path)
    voice = s[s.modality == "voice"].groupby("identity")[["f0_hz", "vtl_cm"]].mean()
    face = s[s.modality == "face"].groupby("identity")[["jaw_width", "face_length"]].mean()
    keys = s.groupby("identity")[["gender", "split"]].first()
    return keys.join(voice).join(face).reset_index()


def calibration_lines(root, ks=range(2, 11), n_tuples: int = 2000) -> pd.DataFrame:
    """Oracle / gender-only / chance 1:k accuracy for every k (U and G protocols, both directions),
    recomputed from the benchmark's knobs in calibration.json (``synthetic.calibrate``).

    Columns: k, scorer, direction ("V-F" | "F-V"), protocol ("U" | "G"), value in [0, 1].
    """
    path = Path(root) / "calibration.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no calibration (only the embedded benchmark has one)")
    knobs = json.loads(path.read_text())["knobs"]
    raw = synthetic.calibrate(synthetic.plan(**knobs), n_tuples=n_tuples, ks=tuple(ks))
    rows = [{"k": int(kk[1:]), "scorer": scorer, "direction": LABELS[d],
             "protocol": {"unconstrained": "U", "gender": "G"}[proto], "value": float(v)}
            for proto, by_k in raw.items() for kk, by_d in by_k.items()
            for d, cell in by_d.items() for scorer, v in cell.items() if scorer != "n"]
    return pd.DataFrame(rows)


# what needs the embedded benchmark's ground truth: part -> (file, what only the benchmark has, the
# outputs of that part an earlier run on the benchmark may have left in the output folder)
BENCHMARK_ONLY = {
    "traits": ("samples.csv", "per-sample ground truth",
               ("figures/00_traits.png", "figures/00_traits.svg")),
    "calibration": ("calibration.json", "oracle and gender-only lines",
                    ("figures/00_calibration.png", "figures/00_calibration.svg",
                     "tables/calibration.csv")),
}


def benchmark_skip(root, part: str, label: str | None = None,
                   what: str | None = None) -> str | None:
    """None when ``root`` holds the embedded benchmark's file that ``part`` ("traits" |
    "calibration", :data:`BENCHMARK_ONLY`) needs; else the one line a notebook prints to say the
    part is skipped and why, e.g. "traits: skipped, the tree has no samples.csv (only the embedded
    benchmark has per-sample ground truth)". ``label`` names the part in the line (default
    ``part``), ``what`` what only the benchmark has (default: :data:`BENCHMARK_ONLY`'s)."""
    name, has, _ = BENCHMARK_ONLY[part]
    if (Path(root) / name).is_file():
        return None
    return (f"{label or part}: skipped, the tree has no {name} (only the embedded benchmark has "
            f"{what or has})")


def benchmark_view(root, part: str, out=None, **kw) -> pd.DataFrame | None:
    """The benchmark-only view ``part`` of the data at ``root``: :func:`trait_frame` ("traits") or
    :func:`calibration_lines` ("calibration", ``kw`` passed on). On a tree without the benchmark's
    file (real VoxCeleb1 + VGGFace data) it prints :func:`benchmark_skip`'s line and returns None;
    with ``out`` (the notebook's output folder) it then also removes that part's figures and table
    an earlier run on the benchmark left there, so that no stale benchmark line is reported."""
    skip = benchmark_skip(root, part)
    if skip is None:
        return trait_frame(root) if part == "traits" else calibration_lines(root, **kw)
    print(skip, flush=True)
    for rel in BENCHMARK_ONLY[part][2] if out is not None else ():
        (Path(out) / rel).unlink(missing_ok=True)
    return None


def reference_lines(root, ks) -> pd.DataFrame:
    """Fig. 5's reference lines (percent; columns k, scorer, value): on the embedded benchmark its
    oracle, gender-only and chance lines, unconstrained protocol, V-F (:func:`calibration_lines`);
    on other data (no calibration.json) chance 1/k alone, after printing the line that says the
    benchmark's lines are skipped."""
    ks = sorted(int(k) for k in ks)
    skip = benchmark_skip(root, "calibration", "Fig. 5 oracle and gender-only lines", "them")
    if skip is not None:
        print(f"{skip}; chance 1/k drawn alone", flush=True)
        return pd.DataFrame({"k": ks, "scorer": "chance", "value": [100.0 / k for k in ks]})
    ref = calibration_lines(root, ks=ks)
    ref = ref[(ref["protocol"] == "U") & (ref["direction"] == "V-F")]
    return ref.assign(value=100 * ref["value"],
                      scorer="benchmark " + ref["scorer"] + " (V-F)")[["k", "scorer", "value"]]


def beside_paper_ii(ours: pd.DataFrame, paper_ii: pd.DataFrame) -> pd.DataFrame:
    """Our Table II counts (layout.DataIndex.summary) with the paper's beside, row by row."""
    names = {"Identities": "identities", "Face Images": "faces", "Audio Clips": "voices"}
    p = paper_ii.set_index("row")
    out = ours.copy()
    for col, key in (("Train", "train"), ("Validation", "val"), ("Test", "test"), ("Total", "total")):
        out[f"{col} (paper)"] = [int(p.loc[names[r], key]) for r in out.index]
    cols = [c for pair in (("Train", "Train (paper)"), ("Validation", "Validation (paper)"),
                           ("Test", "Test (paper)"), ("Total", "Total (paper)")) for c in pair]
    return out[cols]


def examples(index, cfg: Config, n: int, sessions: int = 2, seed: int = 0):
    """Faces (n, sessions, 3, S, S) and spectrograms (n, sessions, F, T) of test identities with at
    least ``sessions`` sessions in both modalities; returns (faces, specs, names, session labels)."""
    rng = np.random.default_rng(seed)
    v, f = index.split_items("test", "voice"), index.split_items("test", "face")
    ok = sorted(set(v.groupby("identity")["session"].nunique().loc[lambda s: s >= sessions].index)
                & set(f.groupby("identity")["session"].nunique().loc[lambda s: s >= sessions].index))
    if not ok:
        raise ValueError(f"no test identity has {sessions} sessions of both voice and face")
    chosen = rng.choice(ok, size=min(n, len(ok)), replace=False)
    spec = Spectrogram(cfg)
    faces, specs = [], []
    for ident in chosen:
        fs = f[f.identity == ident].drop_duplicates("session").head(sessions)  # 1st item / session
        vs = v[v.identity == ident].drop_duplicates("session").head(sessions)
        faces.append([resize_face(load_face(index.face_path(p)), cfg.face_size) for p in fs.path])
        with torch.no_grad():
            waves = [load_wav(index.voice_path(p), cfg.sample_rate) for p in vs.path]
            specs.append([spec(w)[..., : 4 * cfg.spec_frames].squeeze(0) for w in waves])
    names = [str(index.identities.loc[i, "face_id"]) for i in chosen]
    return faces, specs, names, [f"session {j + 1}" for j in range(sessions)]


# ----------------------------------------------------------------------------- runs and models

def split_cache(cfg: Config, split: str):
    """The decoded cache of one split (built on first use, then memory-mapped)."""
    index = load_cfg_index(cfg)
    return build_cache(index, cfg, split)


def load_model(run: Run | str | Path, device: str = "cpu"):
    """The selected checkpoint of a run (or a checkpoint path) as an eval-mode DSANet."""
    path = run.checkpoint if isinstance(run, Run) else Path(run)
    if path is None:
        raise FileNotFoundError(f"run {getattr(run, 'dir', run)} has no checkpoint")
    return load_network(path, device)[0]


def faces_input(cached, items) -> torch.Tensor:
    """Normalised faces (B, 3, S, S) float32 of cache items (the evaluation preprocessing)."""
    return normalise_faces(cached.faces[torch.as_tensor(list(items))])


def voices_input(cached, items, cfg: Config) -> torch.Tensor:
    """Centre-cropped spectrograms (B, 1, F, spec_frames) of cache items (evaluation crop)."""
    return voice_batch(cached, torch.as_tensor(list(items)), cfg, train=False)
