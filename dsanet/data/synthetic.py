"""The embedded cross-modal identity benchmark: a VoxCeleb1/VGGFace-shaped tree of synthetic data.

``generate(out_dir, **knobs)`` writes::

    out_dir/voices/idNNNNN/<session>/<clip>.wav    16 kHz mono PCM 16-bit (synth_voice)
    out_dir/faces/<Name>/<session>/<frame>.jpg     RGB JPEG, image_size square (synth_face)
    out_dir/meta.csv          VoxCeleb1_ID,VGGFace1_ID,Gender,Nationality,Set (as vox1_*.csv)
    out_dir/traits.csv        latent identity traits (synth_traits)
    out_dir/samples.csv       per-sample realised traits and nuisance values
    out_dir/calibration.json  V-F / F-V matching accuracy of an oracle, a gender-only guesser, chance

Names are invented; their initials place identities in the splits by Wen et al.'s rule (A-B
validation, C-E test, the rest train; paper Sec. IV-A, Table II proportions). Faces and voices are
linked only through the shared latent traits (see synth_traits), so matching is learnable, gender
alone gives about 0.75 on 2-way V-F, and the oracle on the realised shared traits bounds what a
perfect trait extractor could reach. Same knobs and seed give a byte-identical tree.

API: ``generate(out_dir, **knobs) -> calibration``; ``DEFAULTS`` and ``SMOKE`` (knob presets);
``plan(**knobs) -> Plan`` (identities, clips and frames with realised traits, nothing rendered);
``calibrate(plan)`` / ``summary(plan)`` (the calibration without writing a file);
``add_generate_arguments`` / ``run_generate`` for ``python -m dsanet generate``. ``calibrate`` lives
in :mod:`.synth_calibration` and the command in :mod:`.synth_cli`; both are re-exported here.
"""
from __future__ import annotations

import json
import multiprocessing
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from dsanet.data import synth_face, synth_voice
from dsanet.data.synth_calibration import calibrate
from dsanet.data.synth_cli import add_arguments, add_generate_arguments, run, run_generate  # noqa: F401
from dsanet.data.synth_traits import REAL_FRACTIONS, SHARED, make_identities, rng_for

FORMAT = "dsanet-synthetic-1"
META_COLUMNS = ["VoxCeleb1_ID", "VGGFace1_ID", "Gender", "Nationality", "Set"]
OUTPUTS = ("voices", "faces", "meta.csv", "traits.csv", "samples.csv", "calibration.json")

DEFAULTS = dict(
    # Many identities with several samples each, strongly shared traits and mild nuisance. With
    # 160 identities x 8 samples (a = 0.8, nuisance 0.5) a two-tower model memorised the training
    # identities; with 640 x 4 (nuisance 0.3) every learned model plateaued near 0.8-0.83 on
    # validation; 1,000 x 10 at nuisance 0.1 lets DSANet reach ~0.87 (docs/fidelity.md,
    # "Embedded benchmark" and "Learning on the benchmark"). The calibration lines stay honest:
    # gender-only 0.75, oracle 0.97 (the oracle reads the traits, not the nuisance).
    n_identities=1000,         # 755 train / 91 val / 154 test (77 m + 77 f)
    voices_per_identity=10,    # clips
    faces_per_identity=10,     # frames
    sessions=3,                # videos per identity and modality
    image_size=64,
    clip_seconds=2.0,
    shared_strength=0.95,      # a in e_m = a z + sqrt(1 - a^2) u_m
    nuisance=0.1,              # 0 clean .. 1 hard recording / imaging conditions
    seed=0,
    val_fraction=REAL_FRACTIONS["val"],
    test_fraction=REAL_FRACTIONS["test"],
)
# Every code path in a few seconds; a larger test share so 10-way gender-constrained tuples exist.
SMOKE = dict(n_identities=40, voices_per_identity=4, faces_per_identity=4, sessions=2,
             image_size=32, clip_seconds=0.5, nuisance=0.3, val_fraction=0.15, test_fraction=0.5)
PRESETS = {"default": {}, "smoke": SMOKE}

_HELP = {
    "n_identities": "identities (each has one voice id and one face name)",
    "voices_per_identity": "voice clips per identity",
    "faces_per_identity": "face frames per identity",
    "sessions": "sessions (videos) per identity and modality; clips/frames are spread over them",
    "image_size": "face images are image_size x image_size RGB",
    "clip_seconds": "length of every voice clip in seconds",
    "shared_strength": "0..1: how strongly the shared continuous traits show in both modalities "
                       "(0: only gender links voice and face)",
    "nuisance": "0..1: level of session/sample nuisance (noise, channel, reverb; pose, lighting, "
                "occlusion, blur, JPEG quality)",
    "seed": "random seed; same seed and knobs give a byte-identical tree",
    "val_fraction": "share of identities in validation (names starting with A or B)",
    "test_fraction": "share of identities in test (names starting with C, D or E)",
}


@dataclass
class Plan:
    """Everything drawn before rendering: one row per identity, per clip, per frame."""
    knobs: dict
    identities: pd.DataFrame
    voices: pd.DataFrame
    faces: pd.DataFrame


def resolve_knobs(**knobs) -> dict:
    """DEFAULTS updated with ``knobs``; unknown names and out-of-range values raise ``ValueError``."""
    unknown = set(knobs) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown generator knob(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    k = {**DEFAULTS, **knobs}
    for name in ("n_identities", "voices_per_identity", "faces_per_identity", "sessions", "image_size"):
        if int(k[name]) != k[name] or k[name] < 1:
            raise ValueError(f"{name} must be a positive integer, got {k[name]!r}")
    if not 0 <= k["nuisance"] <= 1 or not 0 <= k["shared_strength"] <= 1:
        raise ValueError(f"nuisance and shared_strength must lie in [0, 1], got {k['nuisance']}, "
                         f"{k['shared_strength']}")
    if k["clip_seconds"] < 0.1 or k["image_size"] < 16 or int(k["seed"]) < 0:
        raise ValueError("clip_seconds must be >= 0.1, image_size >= 16 and seed >= 0")
    return k


def plan(**knobs) -> Plan:
    """Identities, clips and frames with their realised traits; renders nothing (fast)."""
    k = resolve_knobs(**knobs)
    ids = make_identities(k["n_identities"], k["seed"], k["shared_strength"],
                          k["val_fraction"], k["test_fraction"])
    records = ids.to_dict("records")
    voices = [synth_voice.plan_voices(r, k["voices_per_identity"], k["sessions"], k["nuisance"], k["seed"])
              for r in records]
    faces = [synth_face.plan_faces(r, k["faces_per_identity"], k["sessions"], k["nuisance"], k["seed"])
             for r in records]
    return Plan(k, ids, _frame(voices), _frame(faces))


def _frame(parts: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """One DataFrame from per-identity column dicts (far faster than concatenating frames)."""
    return pd.DataFrame({c: np.concatenate([p[c] for p in parts]) for c in parts[0]})


def summary(p: Plan, n_tuples: int = 4000) -> dict:
    """The calibration.json content: knobs, split counts and matching bounds."""
    counts = {}
    for split, g in p.identities.groupby("split"):
        counts[split] = {"identities": len(g), "male": int((g.gender == "m").sum()),
                         "female": int((g.gender == "f").sum()),
                         "voices": int(p.voices.voice_id.isin(g.voice_id).sum()),
                         "faces": int(p.faces.voice_id.isin(g.voice_id).sum())}
    return {"format": FORMAT, "knobs": p.knobs, "splits": counts,
            "matching": calibrate(p, n_tuples), "tuples": n_tuples,
            "oracle": "nearest candidate in standardised realised shared traits "
                      f"{list(SHARED)}, same gender"}


# ----------------------------------------------------------------------------- writing

def _render_identity(task: tuple) -> int:
    """Render and write every clip and frame of one identity (a worker task)."""
    root, ident, voices, faces, k = task
    n = int(round(k["clip_seconds"] * synth_voice.SR))
    seed, j = k["seed"], ident["j"]
    for rec in voices:
        y = synth_voice.render_voice({**ident, **rec}, n,
                                     rng_for(seed, j, "voice", 0, rec["clip"], rec["session_index"]),
                                     rng_for(seed, j, "voice", 1, rec["session_index"]))
        path = root / rec["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, y, synth_voice.SR, subtype="PCM_16", format="WAV")
    for rec in faces:
        img = synth_face.render_face({**ident, **rec}, k["image_size"],
                                     rng_for(seed, j, "face", 0, rec["frame"]),
                                     rng_for(seed, j, "face", 1, rec["session_index"]))
        path = root / rec["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        img.save(path, format="JPEG", quality=int(rec["quality"]), subsampling=2, optimize=False,
                 progressive=False)
    return len(voices) + len(faces)


def _tasks(root: Path, p: Plan):
    voices = dict(list(p.voices.groupby("voice_id", sort=True)))
    faces = dict(list(p.faces.groupby("voice_id", sort=True)))
    for ident in p.identities.to_dict("records"):
        yield (root, ident, voices[ident["voice_id"]].to_dict("records"),
               faces[ident["voice_id"]].to_dict("records"), p.knobs)


IN_PROGRESS = ".dsanet-generating"   # marks a tree the generator began but did not finish


def generated_by_us(root: Path) -> bool:
    """Whether ``root`` holds a tree this generator wrote (its calibration.json, or its
    in-progress marker when a run was killed), as opposed to a user's data."""
    if (root / IN_PROGRESS).is_file():
        return True
    try:
        return json.loads((root / "calibration.json").read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _prepare(root: Path, overwrite: bool) -> None:
    ours = [root / n for n in OUTPUTS]
    present = [q for q in ours if q.exists()]
    if present and not overwrite:
        raise FileExistsError(f"{root} already holds a benchmark ({present[0].name}); pass overwrite=True "
                              "(--overwrite) to replace it")
    if present and not generated_by_us(root):
        raise FileExistsError(f"{root}: holds {', '.join(q.name for q in present)} but no "
                              "calibration.json of the generator; refusing to overwrite data the "
                              "generator did not write (choose another --out)")
    root.mkdir(parents=True, exist_ok=True)
    (root / IN_PROGRESS).write_text("generation in progress; removed when calibration.json is written\n")
    for q in present:
        shutil.rmtree(q) if q.is_dir() else q.unlink()


def _write_tables(root: Path, p: Plan, calibration: dict) -> None:
    ids = p.identities
    meta = pd.DataFrame(dict(zip(META_COLUMNS, (ids.voice_id, ids.face_id, ids.gender,
                                                ids.nationality, ids.set))))
    meta.to_csv(root / "meta.csv", index=False)
    ids.to_csv(root / "traits.csv", index=False, float_format="%.6f")
    keys = ids.set_index("voice_id")[["face_id", "split", "gender", "nationality"]]
    samples = pd.concat([p.voices.assign(modality="voice"), p.faces.assign(modality="face")],
                        ignore_index=True)
    samples = samples.rename(columns={"voice_id": "identity"}).join(keys, on="identity")
    first = ["path", "modality", "identity", "face_id", "split", "gender", "nationality", "session"]
    samples = samples[first + [c for c in samples.columns if c not in first]]
    samples.to_csv(root / "samples.csv", index=False, float_format="%.6g")
    (root / "calibration.json").write_text(json.dumps(calibration, indent=2) + "\n")
    (root / IN_PROGRESS).unlink(missing_ok=True)


def generate(out_dir, *,
             n_identities: int = DEFAULTS["n_identities"],
             voices_per_identity: int = DEFAULTS["voices_per_identity"],
             faces_per_identity: int = DEFAULTS["faces_per_identity"],
             sessions: int = DEFAULTS["sessions"],
             image_size: int = DEFAULTS["image_size"],
             clip_seconds: float = DEFAULTS["clip_seconds"],
             shared_strength: float = DEFAULTS["shared_strength"],
             nuisance: float = DEFAULTS["nuisance"],
             seed: int = DEFAULTS["seed"],
             val_fraction: float = DEFAULTS["val_fraction"],
             test_fraction: float = DEFAULTS["test_fraction"],
             workers: int = 1, progress: bool = False, overwrite: bool = False) -> dict:
    """Write the benchmark tree to ``out_dir``; returns the calibration (also calibration.json).

    The knobs are those of ``DEFAULTS`` (``generate(out, **SMOKE)`` for the tiny preset; their
    meaning is in ``_HELP`` and ``python -m dsanet generate --help``). ``workers`` > 1 renders
    identities in parallel processes; the tree is byte-identical for any number of workers.
    An ``out_dir`` that already holds a benchmark is replaced only with ``overwrite=True``.
    """
    knobs = dict(n_identities=n_identities, voices_per_identity=voices_per_identity,
                 faces_per_identity=faces_per_identity, sessions=sessions, image_size=image_size,
                 clip_seconds=clip_seconds, shared_strength=shared_strength, nuisance=nuisance,
                 seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    root = Path(out_dir)
    p = plan(**knobs)
    _prepare(root, overwrite)
    tasks = _tasks(root, p)
    if workers > 1:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with multiprocessing.get_context(method).Pool(workers) as pool:
            done = pool.imap_unordered(_render_identity, tasks)
            _drain(done, len(p.identities), progress)
    else:
        _drain(map(_render_identity, tasks), len(p.identities), progress)
    calibration = summary(p)
    _write_tables(root, p, calibration)
    return calibration


def _drain(results, total: int, progress: bool) -> None:
    if progress:
        from tqdm import tqdm
        results = tqdm(results, total=total, desc="identities", unit="id")
    for _ in results:
        pass
