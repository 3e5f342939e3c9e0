"""Bad input: a clear error naming the file and the problem, or a documented, counted skip
(policy table: docs/bad_input.md). Never a NaN, never a silently wrong label."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from dsanet.data.cache import build_cache
from dsanet.data.frontends import Spectrogram, load_face, load_wav
from dsanet.data.layout import DataError, load_index
from dsanet.data.protocols import ProtocolList, matching_tuples, read_list, write_list
from conftest import SR, TINY_IDENTITIES, face_rgb, write_face, write_meta, write_wav


def good_wav(path, seconds=0.3):
    write_wav(path, 0.5 * np.sin(np.arange(int(seconds * SR)) / 5))
    return path


@pytest.fixture
def wav(tmp_path):
    return good_wav(tmp_path / "clip.wav")


def test_corrupt_wav(tmp_path):
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(os.urandom(3000))
    with pytest.raises(DataError, match=r"corrupt\.wav: cannot decode audio") as e:
        load_wav(bad, SR)
    assert e.value.reason == "corrupt"


def test_truncated_wav(wav):
    data = wav.read_bytes()
    wav.write_bytes(data[: len(data) // 2])                  # libsndfile alone would accept it
    with pytest.raises(DataError, match=r"clip\.wav: truncated WAV file \(data chunk declares"):
        load_wav(wav, SR)
    wav.write_bytes(data[:30])                               # cut inside the header
    with pytest.raises(DataError, match=r"clip\.wav: truncated WAV file"):
        load_wav(wav, SR)


def test_empty_wav(tmp_path):
    (tmp_path / "zero_bytes.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"zero_bytes\.wav: empty file \(0 bytes\)"):
        load_wav(tmp_path / "zero_bytes.wav", SR)
    write_wav(tmp_path / "no_samples.wav", np.zeros(0))
    with pytest.raises(DataError, match=r"no_samples\.wav: empty audio \(0 samples\)"):
        load_wav(tmp_path / "no_samples.wav", SR)


def test_non_finite_audio(tmp_path):
    path = tmp_path / "nan.wav"
    sf.write(str(path), np.array([0.1, np.nan, 0.2] * 100, np.float32), SR, subtype="FLOAT")
    with pytest.raises(DataError, match=r"nan\.wav: audio holds NaN or inf"):
        load_wav(path, SR)


def test_missing_wav(tmp_path):
    with pytest.raises(DataError, match=r"gone\.wav: file not found"):
        load_wav(tmp_path / "gone.wav", SR)


def test_silent_and_very_short_wavs_are_finite(tmp_path, smoke_cfg):
    write_wav(tmp_path / "silent.wav", np.zeros(8000))
    write_wav(tmp_path / "tiny.wav", np.full(5, 0.3))          # shorter than one FFT window
    s = Spectrogram(smoke_cfg)
    for name in ("silent.wav", "tiny.wav"):
        spec = s(load_wav(tmp_path / name, SR))
        assert torch.isfinite(spec).all() and spec.shape[:2] == (1, smoke_cfg.spec_bins)


def test_other_rate_and_stereo_are_converted_and_counted(tmp_path):
    from collections import Counter
    counts = Counter()
    write_wav(tmp_path / "r.wav", np.zeros((4410, 2)) + 0.1, sr=44100)
    out = load_wav(tmp_path / "r.wav", SR, counts)
    assert counts == {"stereo_to_mono": 1, "resampled": 1} and len(out) == 1600


@pytest.mark.parametrize("mode, ext", [("L", "jpg"), ("CMYK", "jpg"), ("RGBA", "png")])
def test_other_image_modes_convert(tmp_path, mode, ext):
    write_face(tmp_path / f"x.{ext}", (120, 60, 30), mode=mode)
    assert load_face(tmp_path / f"x.{ext}").shape[0] == 3


def test_corrupt_and_truncated_jpg(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(DataError, match=r"junk\.jpg: not a readable image"):
        load_face(tmp_path / "junk.jpg")
    rng = np.random.default_rng(0)
    from PIL import Image
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "t.jpg")
    data = (tmp_path / "t.jpg").read_bytes()
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"t\.jpg: truncated image") as e:
        load_face(tmp_path / "t.jpg")
    assert e.value.reason == "truncated"
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.jpg: empty file"):
        load_face(tmp_path / "empty.jpg")


def test_meta_rows_without_media_are_skipped_and_counted(make_tree):
    tree = make_tree()
    shutil.rmtree(tree.faces / "Fred_Fo")                       # no faces
    shutil.rmtree(tree.voices / "id00010")                      # no voices
    for p in (tree.voices / "id00011").rglob("*.wav"):          # folder left, but empty
        p.unlink()
    rows = TINY_IDENTITIES + [("id00099", "Zoe_Gone", "f"), ("id00098", "Yan_None", "m")]
    write_meta(tree.meta, rows, sets={"id00098": "none"})
    write_face(tree.faces / "Yan_None" / "a.jpg", (1, 2, 3))
    write_face(tree.faces / "Stray_Folder" / "a.jpg", (1, 2, 3))
    (tree.faces / "Adam_Ant" / "notes.txt").write_text("not an image")
    index = load_index(tree.root)
    assert index.skipped == {"set_none": 1, "not_in_split": 0, "missing_folders": 1, "no_voices": 2, "no_faces": 1,
                             "unlisted_voice_folders": 0, "unlisted_face_folders": 1,
                             "ignored_files": 1, "unreadable_folders": 0,
                             "unreadable_identities": 0, "symlink_escapes": 0, "symlink_loops": 0,
                             "symlinked_identities": 0}
    assert index.summary().loc["Identities"].tolist() == [0, 2, 6, 8]   # train lost all 3
    assert "Zoe_Gone" not in set(index.identities.face_id)


def test_bad_files_are_skipped_at_cache_time_with_right_labels(make_tree, smoke_cfg):
    tree = make_tree()
    (tree.voices / "id00003" / "s0" / "00001.wav").write_bytes(os.urandom(2000))  # corrupt
    for p in sorted((tree.voices / "id00004").rglob("*.wav")):                    # all bad
        p.write_bytes(p.read_bytes()[:200])                                         # truncated
    jpg = sorted((tree.faces / "Dan_Do").rglob("*.jpg"))[0]
    jpg.write_bytes(b"junk")
    write_face(tree.faces / "Carl_Cox" / "gray.jpg", face_rgb(2), mode="L")        # converted
    write_wav(tree.voices / "id00005" / "s9" / "stereo.wav",
              np.stack([np.sin(np.arange(6000) * 2 * np.pi * 500 / SR)] * 2, 1) * 0.5)
    write_wav(tree.voices / "id00006" / "s0" / "silent.wav", np.zeros(7000))
    cached = build_cache(load_index(tree.root), smoke_cfg, "test")
    r = cached.report
    assert r["voices"]["listed"] == 26 and r["voices"]["kept"] == 21
    assert r["voices"]["skipped"] == {"corrupt": 1, "truncated": 4}
    assert r["voices"]["converted"] == {"stereo_to_mono": 1}
    assert r["faces"]["skipped"] == {"corrupt": 1} and r["faces"]["converted"] == {"converted_L": 1}
    assert r["identities_without_voices"] == 1 and r["identities_without_faces"] == 0
    assert {b["path"].split("/")[-1] for b in r["faces"]["bad_files"]} == {jpg.name}
    assert torch.isfinite(cached.voices.float()).all()
    # labels still match the media: tone bin 2 + identity (the added clips left out)
    tone = [p for p in cached.voice_table.path if "silent" not in p and "stereo" not in p]
    rows = torch.from_numpy(cached.voice_table.path.isin(tone).to_numpy(copy=True))
    spec = cached.voices.float()[rows, 0]
    frames = cached.voice_frames[rows]
    mean = (spec * (torch.arange(spec.shape[-1]) < frames[:, None])[:, None]).sum(-1)
    assert (mean.argmax(-1) == 2 + cached.voice_ids[rows]).all()
    # the identity left without voices takes no part in the protocols
    t = matching_tuples(cached, None, 2, "fv", False, 300, seed=0)
    assert 3 not in set(cached.voice_ids[t[:, 1:].ravel()].tolist())
    assert 3 not in set(cached.face_ids[t[:, 0]].tolist())


def test_list_line_naming_an_unknown_file(tiny_tree, tmp_path):
    index = load_index(tiny_tree.root)
    lines = ["id00003/s0/00000.wav Carl_Cox/00000000.jpg Cora_Cy/sess0/00000000.jpg",
             "id00003/s0/00001.wav Carl_Cox/00000001.jpg Dan_Do/00000000.jpg",
             "id00003/s0/00001.wav Carl_Cox/00000009.jpg Dan_Do/00000000.jpg"]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"list\.txt: line 3: unknown face file "
                                        r"'Carl_Cox/00000009\.jpg'") as e:
        read_list(tmp_path / "list.txt", "matching", index, "test")
    assert e.value.reason == "unknown_file"


def test_list_with_a_wrong_label(tiny_tree, tmp_path):
    index = load_index(tiny_tree.root)
    (tmp_path / "wrong.txt").write_text(
        "Carl_Cox/00000000.jpg id00003/s0/00000.wav id00004/s0/00000.wav\n"
        "Carl_Cox/00000000.jpg id00004/s0/00000.wav id00003/s0/00000.wav\n")
    with pytest.raises(DataError, match=r"wrong\.txt: line 2: true candidate is of another"):
        read_list(tmp_path / "wrong.txt", "matching", index, "test")
    (tmp_path / "official.txt").write_text(
        "/x/Carl_Cox/00000000.jpg /w/id00003/s0/00000.wav /w/id00004/s0/00000.wav 1\n")
    with pytest.raises(DataError, match=r"official\.txt: line 1: true candidate"):
        read_list(tmp_path / "official.txt", "official_fv", index, "test")
    (tmp_path / "label.txt").write_text(
        "Carl_Cox/00000000.jpg id00003/s0/00000.wav id00004/s0/00000.wav 2\n")
    with pytest.raises(DataError, match=r"label\.txt: line 1: expected 'face audio1 audio2"):
        read_list(tmp_path / "label.txt", "official_fv", index, "test")


def test_list_from_another_split_names_the_split(tiny_tree, tmp_path):
    index = load_index(tiny_tree.root)
    t = matching_tuples(index, "test", 2, "vf", False, 5, seed=0)
    path = write_list(tmp_path / "m.txt", ProtocolList("matching", "vf", t), index, "test")
    with pytest.raises(DataError, match=r"m\.txt: line 1: unknown voice file .* split 'val'"):
        read_list(path, "matching", index, "val")
