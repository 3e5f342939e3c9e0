"""The embedded benchmark generator: layout, formats, split rule, determinism, calibration, signals."""
from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

from dsanet.data import synth_face, synth_voice
from dsanet.data.synth_traits import make_identities, rng_for
from dsanet.data.synthetic import (
    DEFAULTS, SMOKE, add_generate_arguments, calibrate, generate, plan, run_generate, summary,
)

SHARED_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "protocols"
TINY = dict(SMOKE, n_identities=12, voices_per_identity=2, faces_per_identity=2)


def naive_split(name: str) -> str:
    """Wen et al.'s rule, written out: A-B validation, C-E test, the rest train."""
    return "val" if name[0] in "AB" else "test" if name[0] in "CDE" else "train"


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def smoke_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    calibration = generate(root, **SMOKE)
    return root, calibration


# ----------------------------------------------------------------------------- layout and formats

def test_voices_are_16k_mono_int16_wavs_in_the_voxceleb_layout(smoke_tree):
    root, _ = smoke_tree
    wavs = sorted((root / "voices").rglob("*"))
    wavs = [p for p in wavs if p.is_file()]
    assert len(wavs) == SMOKE["n_identities"] * SMOKE["voices_per_identity"]
    for p in wavs:
        rel = p.relative_to(root / "voices").parts
        assert re.fullmatch(r"id2\d{4}", rel[0]) and re.fullmatch(r"[\w-]{11}", rel[1])
        assert re.fullmatch(r"\d{5}\.wav", rel[2])
        info = sf.info(p)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
        assert info.frames == int(SMOKE["clip_seconds"] * 16000)
    y, _ = sf.read(wavs[0], dtype="int16")
    rms_db = 20 * np.log10(np.sqrt(np.mean((y / 32768.0) ** 2)))
    assert -40 < rms_db < -10 and np.abs(y).max() < 32767


def test_faces_are_rgb_jpegs_of_the_given_size(smoke_tree):
    root, _ = smoke_tree
    jpgs = [p for p in sorted((root / "faces").rglob("*")) if p.is_file()]
    assert len(jpgs) == SMOKE["n_identities"] * SMOKE["faces_per_identity"]
    for p in jpgs:
        assert re.fullmatch(r"\d{7}\.jpg", p.name) and len(p.relative_to(root / "faces").parts) == 3
        with Image.open(p) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (SMOKE["image_size"],) * 2)


def test_samples_csv_lists_exactly_the_files_on_disk(smoke_tree):
    root, _ = smoke_tree
    samples = pd.read_csv(root / "samples.csv")
    on_disk = {str(p.relative_to(root)) for d in ("voices", "faces")
               for p in (root / d).rglob("*") if p.is_file()}
    assert set(samples.path) == on_disk and len(samples) == len(on_disk)
    assert set(samples.modality) == {"voice", "face"}
    assert {"identity", "session", "r_size", "r_width", "f0_hz", "face_length"} <= set(samples.columns)


def test_meta_has_the_shared_csv_header_and_ids_from_20001(smoke_tree):
    root, _ = smoke_tree
    meta = pd.read_csv(root / "meta.csv")
    expected = ["VoxCeleb1_ID", "VGGFace1_ID", "Gender", "Nationality", "Set"]
    if (SHARED_DIR / "vox1_test.csv").exists():
        expected_shared = (SHARED_DIR / "vox1_test.csv").read_text().splitlines()[0].split(",")
        assert expected_shared == expected
    assert list(meta.columns) == expected
    n = SMOKE["n_identities"]
    assert list(meta.VoxCeleb1_ID) == [f"id{20001 + i}" for i in range(n)]
    assert list(meta.VGGFace1_ID) == sorted(meta.VGGFace1_ID)          # ids in name order, as VoxCeleb1
    assert set(meta.Gender) == {"m", "f"} and set(meta.Set) <= {"dev", "test"}
    assert (meta.Set == "test").tolist() == meta.VGGFace1_ID.str.startswith("E").tolist()
    voice_dirs = sorted(p.name for p in (root / "voices").iterdir())
    face_dirs = sorted(p.name for p in (root / "faces").iterdir())
    assert voice_dirs == sorted(meta.VoxCeleb1_ID) and face_dirs == sorted(meta.VGGFace1_ID)


# ----------------------------------------------------------------------------- split and names

def test_split_follows_the_initials_rule_with_both_genders_everywhere(smoke_tree):
    root, _ = smoke_tree
    traits = pd.read_csv(root / "traits.csv")
    assert traits.split.tolist() == [naive_split(n) for n in traits.face_id]
    for split, g in traits.groupby("split"):
        assert set(g.gender) == {"m", "f"}, split


def test_default_split_proportions_match_table_ii():
    ids = make_identities(DEFAULTS["n_identities"], 0, DEFAULTS["shared_strength"])
    share = ids.face_id.map(naive_split).value_counts(normalize=True)
    for split, real in (("train", 924 / 1225), ("val", 112 / 1225), ("test", 189 / 1225)):
        assert abs(share[split] - real) < 0.03, (split, share[split])
    test = ids[ids.split == "test"]
    assert len(test) >= 20 and test.gender.value_counts().min() >= 10   # 10-way gender-constrained


def test_names_are_invented_and_unique():
    names = make_identities(1500, 3, 0.8).face_id
    assert names.is_unique
    assert names.str.fullmatch(r"[A-Z][a-z]+_[A-Z][a-z]+").all()
    csvs = sorted(SHARED_DIR.glob("vox1_*.csv"))
    if not csvs:
        pytest.skip(f"no real protocol CSVs at {SHARED_DIR}")
    real = set(pd.concat([pd.read_csv(p) for p in csvs]).VGGFace1_ID)
    assert len(real) > 1000 and not set(names) & real


# ----------------------------------------------------------------------------- determinism

def test_same_seed_gives_identical_bytes_for_any_worker_count(tmp_path):
    a = generate(tmp_path / "a", **TINY)
    generate(tmp_path / "b", workers=2, **TINY)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    generate(tmp_path / "c", **dict(TINY, seed=1))
    da, dc = tree_digest(tmp_path / "a"), tree_digest(tmp_path / "c")
    media = lambda d: {h for k, h in d.items() if k.endswith((".wav", ".jpg"))}   # noqa: E731
    assert not media(da) & media(dc)
    assert a == json.loads((tmp_path / "a" / "calibration.json").read_text())


def test_existing_tree_needs_overwrite(tmp_path):
    knobs = dict(TINY, n_identities=8, voices_per_identity=1, faces_per_identity=1)
    generate(tmp_path, **knobs)
    with pytest.raises(FileExistsError, match="overwrite"):
        generate(tmp_path, **knobs)
    generate(tmp_path, overwrite=True, **dict(knobs, n_identities=9))
    assert len(list((tmp_path / "voices").iterdir())) == 9


@pytest.mark.parametrize("bad, match", [
    (dict(n_idents=10), "unknown generator knob"), (dict(n_identities=0), "positive integer"),
    (dict(nuisance=1.5), r"\[0, 1\]"), (dict(n_identities=5), ">= 6"),
])
def test_bad_knobs_raise_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        plan(**bad)


# ----------------------------------------------------------------------------- calibration

def expected_gender_only_k2(genders: np.ndarray) -> float:
    """Random same-gender pick, 2-way, uniform anchors: 1 - P(negative has the anchor's gender) / 2."""
    n = len(genders)
    p_same = np.array([((genders == g).sum() - 1) / (n - 1) for g in genders])
    return float(np.mean(1 - p_same / 2))


def test_calibration_orders_oracle_gender_only_chance():
    p = plan(n_identities=500, test_fraction=0.5)          # traits only: nothing rendered
    cal = calibrate(p, n_tuples=3000)
    genders = p.identities.query("split == 'test'").gender.to_numpy()
    for d in ("vf", "fv"):
        cell = cal["unconstrained"]["k2"][d]
        assert cell["gender_only"] == pytest.approx(expected_gender_only_k2(genders), abs=0.025)
        assert cell["oracle"] > cell["gender_only"] + 0.08 and cell["gender_only"] > cell["chance"] + 0.2
        assert 0.82 < cell["oracle"] < 0.99                 # informative, not perfect
        ten = cal["unconstrained"]["k10"][d]
        assert ten["oracle"] > ten["gender_only"] > ten["chance"] == 0.1
        assert cal["gender"]["k2"][d]["oracle"] > 0.6 and cal["gender"]["k2"][d]["gender_only"] == 0.5


def test_without_shared_traits_the_oracle_falls_to_gender_only():
    cal = calibrate(plan(n_identities=500, test_fraction=0.5, shared_strength=0.0), n_tuples=3000)
    cell = cal["unconstrained"]["k2"]["vf"]
    assert cell["oracle"] == pytest.approx(cell["gender_only"], abs=0.03)
    assert cal["gender"]["k2"]["vf"]["oracle"] == pytest.approx(0.5, abs=0.03)


def test_written_calibration_equals_the_one_computed_without_rendering(smoke_tree):
    root, calibration = smoke_tree
    assert json.loads((root / "calibration.json").read_text()) == calibration
    assert summary(plan(**SMOKE)) == calibration
    assert calibration["splits"]["test"]["identities"] == 20
    assert calibration["matching"]["gender"]["k10"]["vf"]["oracle"] is not None


# ----------------------------------------------------------------------------- the signals carry the traits

def _voice_params(**change) -> dict:
    p = plan(n_identities=6, nuisance=0.0, shared_strength=0.8)
    ident = p.identities.iloc[0].to_dict()
    return {**ident, **p.voices.iloc[0].to_dict(), "speech_rate": 1.0, **change}


def _render(p: dict, seconds: float = 1.0) -> np.ndarray:
    y = synth_voice.render_voice(p, int(seconds * 16000), rng_for(0, 0, "voice", 0),
                                 rng_for(0, 0, "voice", 1))
    return y.astype(float) / 32768


def naive_f0(y: np.ndarray, sr: int = 16000) -> float:
    """Median autocorrelation pitch over the loudest 40 ms frames, searched in 60-400 Hz."""
    frames = np.lib.stride_tricks.sliding_window_view(y, 640)[::320]
    loud = frames[np.argsort((frames ** 2).sum(1))[-len(frames) // 3:]]
    f0s = []
    for f in loud:
        f = f - f.mean()
        ac = np.correlate(f, f, "full")[len(f) - 1:]
        lo, hi = sr // 400, sr // 60
        f0s.append(sr / (lo + np.argmax(ac[lo:hi])))
    return float(np.median(f0s))


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_rendered_voice_has_the_planned_f0(f0):
    assert naive_f0(_render(_voice_params(f0_hz=f0))) == pytest.approx(f0, rel=0.12)


def test_shorter_vocal_tract_raises_the_spectral_centroid():
    def centroid(vtl):
        y = _render(_voice_params(vtl_cm=vtl))
        spec = np.abs(np.fft.rfft(y)) ** 2
        freqs = np.fft.rfftfreq(len(y), 1 / 16000)
        return (spec * freqs).sum() / spec.sum()
    assert centroid(14.0) > 1.1 * centroid(18.0)


def test_drawn_face_length_scales_the_skin_area():
    p = plan(n_identities=6, nuisance=0.0)
    base = {**p.identities.iloc[1].to_dict(), **p.faces.iloc[0].to_dict(), "bald": True, "beard": False,
            "hair_style": 0}
    def skin_pixels(length):
        layer = np.asarray(synth_face.draw_person({**base, "face_length": length}, 128, (0, 0, 255)))
        skin = layer[int(0.5 * 128), int(0.36 * 128), :3]                  # a cheek pixel
        return int((layer[..., :3] == skin).all(-1).sum())
    assert skin_pixels(1.5) > 1.2 * skin_pixels(1.1)


# ----------------------------------------------------------------------------- command line

def test_cli_help_names_every_knob_and_runs_the_smoke_preset(tmp_path, capsys):
    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_generate_arguments(parser)
    text = parser.format_help()
    for knob in DEFAULTS:
        assert f"--{knob.replace('_', '-')}" in text
    args = parser.parse_args(["--out", str(tmp_path), "--preset", "smoke", "--n-identities", "8",
                              "--voices-per-identity", "1", "--faces-per-identity", "1", "--quiet"])
    assert run_generate(args) == 0
    printed = capsys.readouterr().out                     # --quiet: one summary line
    assert len(printed.strip().splitlines()) == 1 and printed.startswith(f"wrote {tmp_path} in ")
    calibration = json.loads((tmp_path / "calibration.json").read_text())
    assert calibration["knobs"]["n_identities"] == 8 and calibration["knobs"]["image_size"] == 32
    assert len(pd.read_csv(tmp_path / "meta.csv")) == 8


def test_stale_embedded_tree_is_detected(tmp_path):
    """A tree written with other knobs than the profile's preset is regenerated, not reused."""
    import json

    from dsanet.data import embedded
    from dsanet.data.synthetic import DEFAULTS, PRESETS

    assert not embedded.stale_benchmark(tmp_path, "smoke")           # no calibration.json: not ours
    want = dict(DEFAULTS, **PRESETS["smoke"])
    (tmp_path / "calibration.json").write_text(json.dumps({"knobs": want}))
    assert not embedded.stale_benchmark(tmp_path, "smoke")
    assert embedded.stale_benchmark(tmp_path, "default")              # smoke knobs, default wanted
    (tmp_path / "calibration.json").write_text(json.dumps({"knobs": dict(want, shared_strength=0.8)}))
    assert embedded.stale_benchmark(tmp_path, "smoke")


def test_stale_tree_outside_the_profile_folder_is_kept(tmp_path, capsys):
    """ensure_data never replaces a tree the user pointed at: it only warns."""
    import json

    from dsanet.config import smoke
    from dsanet.data import embedded
    from dsanet.data.synthetic import DEFAULTS, PRESETS

    (tmp_path / "calibration.json").write_text(json.dumps({"knobs": dict(DEFAULTS, **PRESETS["smoke"], seed=7)}))
    (tmp_path / "meta.csv").write_text("VoxCeleb1_ID,VGGFace1_ID,Gender,Nationality,Set\n")
    assert embedded.ensure_data(smoke(data_root=str(tmp_path))) == tmp_path
    assert "using it as it is" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calibration.json", "meta.csv"]
