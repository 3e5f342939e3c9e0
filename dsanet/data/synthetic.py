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
``add_generate_arguments`` / ``run_generate`` for ``python -m dsanet generate``. ``Plan`` and
``calibrate`` live in :mod:`.synth_calibration`; the knobs (``DEFAULTS``, ``SMOKE``, ``PRESETS``),
the command's flags and what it prints in :mod:`.synth_cli`; both are re-exported here. Neither
imports this module (no import cycle).
"""
from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from dsanet.data import synth_face, synth_voice
from dsanet.data.synth_calibration import Plan, calibrate
from dsanet.data.synth_cli import (  # noqa: F401 - re-exported
    _HELP, DEFAULTS, PRESETS, SMOKE, add_generate_arguments, knobs_from_args, report,
)
from dsanet.data.synth_traits import SHARED, make_identities, rng_for

FORMAT = "dsanet-synthetic-1"
META_COLUMNS = ["VoxCeleb1_ID", "VGGFace1_ID", "Gender", "Nationality", "Set"]
OUTPUTS = ("voices", "faces", "meta.csv", "traits.csv", "samples.csv", "calibration.json")
# the knobs (DEFAULTS), their presets (SMOKE, PRESETS) and help (_HELP): dsanet.data.synth_cli


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


# ----------------------------------------------------------------------------- command line

def run_generate(args) -> int:
    """``python -m dsanet generate``: write the tree, then print the calibration (as written to
    calibration.json) and a summary line; ``--quiet``: the summary line alone, no progress bar."""
    knobs = knobs_from_args(args)
    start = time.perf_counter()
    calibration = generate(args.out, workers=args.workers, progress=not args.quiet,
                           overwrite=args.overwrite, **knobs)
    report(calibration, args.out, time.perf_counter() - start, quiet=args.quiet)
    return 0


add_arguments, run = add_generate_arguments, run_generate
