"""``python -m dsanet prepare`` (issue 23, item 3) on tiny trees: a good one with the official
tab-separated ``vox1_meta.csv``, broken ones (an identity without faces, an unreadable wav, a meta
row without files, conflicting meta rows), and voices from several roots merged through
symlinks with the user's files untouched."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import CLIP_SECONDS, N_FACES, TINY_IDENTITIES, write_meta, write_official
from dsanet.__main__ import build_parser, main
from dsanet.config import paper
from dsanet.data.cache_files import SPACE_MARGIN
from dsanet.data.layout import load_index
from dsanet.config_file import read_config_file
from dsanet.engine.cli import config_from_args

N_VOICES = len(CLIP_SECONDS)
SPLIT_IDS = {"train": 3, "val": 2, "test": 6}          # TINY_IDENTITIES by first letter


def prepare(capsys, voices, faces, out, *meta):
    argv = ["prepare", "--voices", *map(str, voices), "--faces", str(faces), "--out", str(out)]
    if meta:
        argv += ["--meta", *map(str, meta)]
    code = main(argv)
    cap = capsys.readouterr()
    report = json.loads((out / "prepare_report.json").read_text()) \
        if (out / "prepare_report.json").is_file() else None
    return code, cap.out, cap.err, report


def snapshot(root: Path) -> dict:
    """Every file and link under root: content hash, mtime, link target."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            if p.is_symlink():
                out[str(p)] = ("link", os.readlink(p))
            elif p.is_file():
                out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


@pytest.fixture
def tree(make_tree):
    t = make_tree()
    (t.root / "meta.csv").unlink()               # only what the downloads give
    write_official(t.root / "vox1_meta.csv", TINY_IDENTITIES)
    return t


def test_good_tree_counts_report_and_config(tree, tmp_path, capsys):
    before = snapshot(tree.root)
    out = tmp_path / "prepared"
    code, text, err, rep = prepare(capsys, [tree.voices], tree.faces, out,
                                   tree.root / "vox1_meta.csv")
    assert code == 0, err
    assert rep["identities"] == SPLIT_IDS and rep["problem"] is None
    assert rep["voices"] == {s: n * N_VOICES for s, n in SPLIT_IDS.items()}
    assert rep["faces"] == {s: n * N_FACES for s, n in SPLIT_IDS.items()}
    assert not any(rep["skipped"].values())
    assert "(   924)" in text and "(   112)" in text and "(   189)" in text   # Table II beside
    assert "prepared" in text and "wrote" in text and not err.strip()

    # the decoded cache's size at the paper sizes: the longest clip (0.6 s) gives 61 frames
    cfg = paper()
    frames = 1 + int(max(CLIP_SECONDS) * 16000) // cfg.hop_length
    assert rep["voice_item_bytes"] == cfg.spec_bins * 3 * cfg.spec_frames * 2 == 168_000
    assert rep["face_item_bytes"] == 3 * 224 * 224
    for s, n in SPLIT_IDS.items():
        assert rep["cache_bytes"][s] == (n * N_VOICES * cfg.spec_bins * frames * 2
                                         + n * N_FACES * 3 * 224 * 224 + SPACE_MARGIN)
    assert rep["free_bytes"] > 0
    assert rep["cache_dir"] == str(out / ".cache")

    # the config file: train --config reads it, and it points at a complete data root
    conf = Path(rep["config_path"])
    assert conf.parent == out and conf.suffix in (".yaml", ".json")
    fields = read_config_file(conf)
    assert fields == {"profile": "paper", "data_root": str(out), "voice_root": str(out / "voices"),
                      "face_root": str(out / "faces"), "meta": str(out / "meta.csv")}
    args = argparse.Namespace(config=str(conf), profile=None, set=[], data=None, steps=None,
                              seed=None, device=None)
    run_cfg = config_from_args(args)
    assert run_cfg.profile == "paper" and run_cfg.backbone == "resnet18"
    index = load_index(run_cfg.data_root, run_cfg.meta, run_cfg.voice_root, run_cfg.face_root)
    assert index.identities.split.value_counts().to_dict() == SPLIT_IDS
    assert len(load_index(out).voices) == len(index.voices)     # data_root alone (reproduce)
    assert (out / "voices").is_symlink() and (out / "faces").is_symlink()
    assert snapshot(tree.root) == before                           # nothing of the user's touched


def test_identity_without_faces_is_named_and_left_out(tree, tmp_path, capsys):
    shutil.rmtree(tree.faces / "Fred_Fo")                          # train
    for f in (tree.faces / "Emma_Em").rglob("*.jpg"):              # an empty face folder (test)
        f.unlink()
    code, text, err, rep = prepare(capsys, [tree.voices], tree.faces, tmp_path / "p",
                                   tree.root / "vox1_meta.csv")
    assert code == 0, err
    assert rep["skipped"]["identities without faces"] == ["id00008 Emma_Em (test)",
                                                         "id00009 Fred_Fo (train)"]
    assert rep["identities"] == {"train": 2, "val": 2, "test": 5}
    assert rep["layout_counts"]["no_faces"] == 2
    assert "identities without faces (2): id00008 Emma_Em (test); id00009 Fred_Fo" in text


def test_split_without_identities_exits_2_naming_it(tree, tmp_path, capsys):
    for name in ("Adam_Ant", "Beth_Bo"):                           # both validation identities
        shutil.rmtree(tree.faces / name)
    out = tmp_path / "p"
    code, text, err, rep = prepare(capsys, [tree.voices], tree.faces, out,
                                   tree.root / "vox1_meta.csv")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "the split cannot be formed" in lines[0] and "val (0)" in lines[0]
    assert "id00001 Adam_Ant (val)" in text                        # the report names them
    assert rep["problem"] and rep["config_path"] is None
    assert not list(out.glob("dsanet.*"))                          # no config for a broken split


def test_unreadable_wav_is_named(tree, tmp_path, capsys):
    bad = tree.voices / "id00003" / "s0" / "00000.wav"
    bad.write_bytes(b"this is not a wav file at all" * 10)
    for wav in (tree.voices / "id00011").rglob("*.wav"):           # every clip of one identity
        wav.write_bytes(b"RIFF\x00\x00")
    code, text, err, rep = prepare(capsys, [tree.voices], tree.faces, tmp_path / "p",
                                   tree.root / "vox1_meta.csv")
    assert code == 0, err
    named = rep["skipped"]["unreadable voice files"]
    assert len(named) == 1 + N_VOICES
    assert any(n.startswith("id00003/s0/00000.wav (corrupt): cannot decode") for n in named)
    assert rep["skipped"]["identities without a readable voice"] == ["id00011 Hugo_Hi (train)"]
    assert rep["voices"]["test"] == 6 * N_VOICES - 1 and rep["identities"]["train"] == 2
    assert "unreadable voice files (5)" in text


def test_meta_row_without_files_is_named(tree, tmp_path, capsys):
    rows = TINY_IDENTITIES + [("id00099", "Zed_Zo", "m")]
    write_official(tree.root / "vox1_meta.csv", rows)
    code, text, err, rep = prepare(capsys, [tree.voices], tree.faces, tmp_path / "p",
                                   tree.root / "vox1_meta.csv")
    assert code == 0, err
    assert rep["skipped"]["meta rows without files"] == ["id00099 Zed_Zo (train)"]
    assert rep["identities"] == SPLIT_IDS
    assert "meta rows without files (1): id00099 Zed_Zo (train)" in text


def test_conflicting_meta_exits_2_naming_ids_and_files(tree, tmp_path, capsys):
    split_csv = tmp_path / "vox1_train.csv"
    rows = [(v, n, "f" if v == "id00009" else g) for v, n, g in TINY_IDENTITIES]
    write_meta(split_csv, rows)                                    # Wen et al.'s format
    code, _, err, _ = prepare(capsys, [tree.voices], tree.faces, tmp_path / "p",
                              tree.root / "vox1_meta.csv", split_csv)
    assert code == 2
    line = err.strip()
    assert "\n" not in line and "conflicting meta rows (1)" in line
    assert "id00009 (gender" in line and "vox1_meta.csv" in line and "vox1_train.csv" in line


def test_split_csv_set_none_wins_over_the_official_meta(tree, tmp_path, capsys):
    split_csv = tmp_path / "vox1_train.csv"
    write_meta(split_csv, TINY_IDENTITIES, sets={"id00010": "none"})
    code, text, err, rep = prepare(capsys, [tree.voices], tree.faces, tmp_path / "p",
                                   tree.root / "vox1_meta.csv", split_csv)
    assert code == 0, err
    resolved = rep["skipped"]["meta rows the official file and a split CSV disagree on "
                              "(split CSV kept)"]
    assert len(resolved) == 1 and resolved[0].startswith("id00010 (set:")
    assert rep["skipped"]["identities the split leaves out (Set none)"] == ["id00010 Gina_Gu"]
    assert rep["identities"]["train"] == 2


def test_several_voice_roots_merged_through_symlinks_files_untouched(make_tree, tmp_path, capsys):
    t = make_tree()
    dev, test = tmp_path / "wav_dev", tmp_path / "wav_test"
    for i, (vid, _, _) in enumerate(TINY_IDENTITIES):
        dest = (dev if i < 6 else test) / vid
        dest.parent.mkdir(exist_ok=True)
        shutil.move(str(t.voices / vid), dest)
    shutil.copytree(dev / "id00001", test / "id00001")             # also in the second root
    before = {**snapshot(dev), **snapshot(test), **snapshot(t.faces)}
    out = tmp_path / "prepared"
    for _ in range(2):                                             # a re-run replaces its links
        code, text, err, rep = prepare(capsys, [dev, test], t.faces, out, t.meta)
        assert code == 0, err
        assert rep["merged"] and rep["identities"] == SPLIT_IDS
        assert rep["voices"] == {s: n * N_VOICES for s, n in SPLIT_IDS.items()}
        assert rep["skipped"]["voice folders in several roots"] == [
            f"id00001 in {dev} and {test} (first used)"]
        assert "merged through symlinks" in text
        merged = out / "voices"
        assert merged.is_dir() and not merged.is_symlink()
        links = sorted(merged.iterdir())
        assert [p.name for p in links] == [v for v, _, _ in TINY_IDENTITIES]
        assert all(p.is_symlink() for p in links)
        assert os.readlink(merged / "id00001") == str(dev / "id00001")
        assert os.readlink(merged / "id00011") == str(test / "id00011")
        assert {**snapshot(dev), **snapshot(test), **snapshot(t.faces)} == before
    regular = sorted(p.name for p in out.iterdir() if p.is_file() and not p.is_symlink())
    assert regular == sorted([".dsanet-prepare", "meta.csv", "prepare_report.json",
                              Path(rep["config_path"]).name])


def test_out_holding_other_files_is_refused(tree, tmp_path, capsys):
    code, _, err, rep = prepare(capsys, [tree.voices], tree.faces, tree.root,
                                tree.root / "vox1_meta.csv")
    assert code == 2 and rep is None
    assert "exists and was not written by prepare" in err and len(err.strip().splitlines()) == 1
    code, _, err, _ = prepare(capsys, [tmp_path / "nowhere"], tree.faces, tmp_path / "p")
    assert code == 2 and "--voices" in err and "not a directory" in err


def test_default_meta_is_the_shipped_split(tree, tmp_path, capsys):
    code, text, err, rep = prepare(capsys, [tree.voices], tree.faces, tmp_path / "p")
    assert code == 2                       # the tiny names are not VoxCeleb1's: no split left
    assert rep["meta_sources"][0].endswith("vox1_train.csv")
    assert len(rep["skipped"]["meta rows without files"]) == 924 + 112 + 189
    assert rep["skipped"]["voice folders no meta row names"] == [v for v, _, _ in TINY_IDENTITIES]
    assert "too few usable identities in train (0), val (0), test (0)" in err


def test_help_names_every_option():
    parser = build_parser("prepare")
    sub = next(a for a in parser._actions if isinstance(getattr(a, "choices", None), dict))
    text = sub.choices["prepare"].format_help()
    for opt in ("--voices", "--faces", "--meta", "--out", "--cache-dir", "--split-lists",
                "--pretrained"):
        assert opt in text


def test_cache_dir_goes_into_the_config_and_the_disk_check(tree, tmp_path, capsys):
    out, cache = tmp_path / "p", tmp_path / "elsewhere" / "cache"
    code = main(["prepare", "--voices", str(tree.voices), "--faces", str(tree.faces), "--meta",
                 str(tree.root / "vox1_meta.csv"), "--out", str(out), "--cache-dir", str(cache)])
    text = capsys.readouterr().out
    assert code == 0
    rep = json.loads((out / "prepare_report.json").read_text())
    assert rep["cache_dir"] == str(cache) and f"at {cache};" in text
    assert read_config_file(rep["config_path"])["cache_dir"] == str(cache)
    assert not cache.exists()                                      # checked, not created
