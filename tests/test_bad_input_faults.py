"""Fault injection (issue 12): symlinks, gender spellings, wide and rotated images, decompression
bombs, full disks, damaged checkpoints, overwrite protection, config validation of every field,
empty and stale lists. Policy table: docs/bad_input.md."""
from __future__ import annotations

import collections
import dataclasses
import errno
import json
import math
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dsanet import config as config_mod
from dsanet.config import Config, ConfigError, smoke
from dsanet.data import cache as cache_mod
from dsanet.data.cache import CacheSpaceError, build_cache
from dsanet.data.frontends import load_face
from dsanet.data.layout import DataError, load_index, read_meta
from dsanet.data.protocols import (ProtocolList, matching_tuples, read_list, retrieval_sets,
                                   write_list)
from dsanet.data.synthetic import IN_PROGRESS, generate
from dsanet.engine import checkpoint as ckpt
from conftest import N_FACES, write_face, write_meta

# --------------------------------------------------------------------------- 1 symlinks


def _face_counts(index) -> dict:
    names = index.identities.face_id.to_numpy()
    return Counter(names[index.faces.identity.to_numpy()])


def test_identity_folder_linked_to_the_faces_root_is_refused(make_tree):
    tree = make_tree()
    shutil.rmtree(tree.faces / "Adam_Ant")
    (tree.faces / "Adam_Ant").symlink_to(".")                    # faces/Adam_Ant -> faces/
    index = load_index(tree.root)
    assert "Adam_Ant" not in set(index.identities.face_id)
    assert index.skipped["symlink_loops"] == 1 and index.skipped["symlinked_identities"] == 1
    assert set(_face_counts(index).values()) == {N_FACES}        # nobody collects other faces


def test_identity_folder_linked_to_another_identity_is_refused(make_tree):
    tree = make_tree()
    shutil.rmtree(tree.faces / "Dana_Di")
    (tree.faces / "Dana_Di").symlink_to("Eric_Ek")
    index = load_index(tree.root)
    assert "Dana_Di" not in set(index.identities.face_id)
    assert index.skipped["symlink_escapes"] == 1 and index.skipped["symlinked_identities"] == 1


def test_links_out_of_the_identity_folder_and_loops_are_skipped(make_tree, tmp_path):
    tree = make_tree()
    (tree.faces / "Beth_Bo" / "evil").symlink_to("../Carl_Cox")          # folder escape
    (tree.faces / "Beth_Bo" / "x.jpg").symlink_to("../Carl_Cox/00000000.jpg")  # file escape
    (tree.faces / "Carl_Cox" / "loop").symlink_to(".")                   # loop in itself
    store = tmp_path / "store"                                           # outside the root
    write_face(store / "s.jpg", (9, 9, 9))
    (store / "back").symlink_to(store)                                   # loop in the store
    (tree.faces / "Cora_Cy" / "ext").symlink_to(store)                   # followed
    index = load_index(tree.root)
    counts = _face_counts(index)
    assert counts["Beth_Bo"] == N_FACES and counts["Carl_Cox"] == N_FACES
    assert counts["Cora_Cy"] == N_FACES + 1
    assert "Cora_Cy/ext/s.jpg" in set(index.faces.path)
    assert index.skipped["symlink_escapes"] == 2 and index.skipped["symlink_loops"] == 2


def test_identity_folder_linked_outside_the_root_is_followed(make_tree, tmp_path):
    tree = make_tree()
    elsewhere = tmp_path / "disk2" / "Dan_Do"
    shutil.move(tree.faces / "Dan_Do", elsewhere)
    (tree.faces / "Dan_Do").symlink_to(elsewhere)
    assert _face_counts(load_index(tree.root))["Dan_Do"] == N_FACES


# --------------------------------------------------------------------------- 17 unreadable


def test_unreadable_folders_are_counted_as_such(make_tree, monkeypatch):
    tree = make_tree()
    deny = {str(tree.voices / "id00003" / "s1"), str(tree.faces / "Cora_Cy")}
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path) in deny:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)
    monkeypatch.setattr(os, "scandir", scandir)
    index = load_index(tree.root)
    assert index.skipped["unreadable_folders"] == 2
    assert index.skipped["unreadable_identities"] == 1 and index.skipped["no_faces"] == 0
    assert "Cora_Cy" not in set(index.identities.face_id)
    carl = index.voices[index.voices.path.str.startswith("id00003/")]
    assert sorted(carl.path) == ["id00003/s0/00000.wav", "id00003/s0/00001.wav"]


# --------------------------------------------------------------------------- 2 genders


def test_gender_spellings(tmp_path):
    meta = tmp_path / "meta.csv"
    rows = [("id1", "Carl", "Male"), ("id2", "Cora", "FEMALE"), ("id3", "Dan", "m"),
            ("id4", "Dana", "F"), ("id5", "Eric", ""), ("id6", "Emma", "unknown")]
    write_meta(meta, rows)
    assert read_meta(meta).gender.tolist() == ["m", "f", "m", "f", "", ""]


def test_g_protocol_refused_when_genders_are_unknown(make_tree):
    tree = make_tree()
    rows = [(v, n, {"Eric_Ek": "", "Emma_Em": "?", "Carl_Cox": "Male", "Cora_Cy": "female"}
             .get(n, g)) for v, n, g in tree.identities]
    write_meta(tree.meta, rows)
    index = load_index(tree.root)
    assert index.identity_gender.tolist().count(-1) == 2
    with pytest.raises(DataError, match=r"G protocol .* 2 of 6 identities have no known gender"):
        matching_tuples(index, "test", 2, "vf", constrained=True, n=10)
    assert matching_tuples(index, "test", 2, "vf", constrained=False, n=10).shape == (10, 3)


# --------------------------------------------------------------------------- 4, 5, 9 images


def test_16_bit_png_named_jpg_is_scaled_by_its_range(tmp_path):
    path = tmp_path / "wide.jpg"
    Image.fromarray(np.array([[0, 13107, 65535]], np.uint16)).save(path, format="PNG")
    counts = Counter()
    face = load_face(path, counts)
    assert face[:, 0].tolist() == [[0, 51, 255]] * 3            # 13107 / 65535 * 255 = 51
    assert counts == {"converted_I;16": 1}


@pytest.mark.parametrize("values, dtype, expected", [
    ([0, 32768, 65535], np.int32, [0, 128, 255]),                # 16-bit data in a 32-bit image
    ([0, 100, 255], np.int32, [0, 100, 255]),                    # 8-bit data kept
    ([0, 70000, 140000], np.int32, [0, 128, 255]),               # other range: min-max
    ([0.0, 0.5, 1.0], np.float32, [0, 128, 255]),                # float 0..1
    ([-1.0, 0.0, 1.0], np.float32, [0, 128, 255]),               # float, other range
])
def test_32_bit_tiff_converted_by_its_range(tmp_path, values, dtype, expected):
    path = tmp_path / "wide.jpg"
    Image.fromarray(np.array([values], dtype)).save(path, format="TIFF")
    assert load_face(path)[:, 0].tolist() == [expected] * 3


def test_float_image_with_nan_is_refused(tmp_path):
    path = tmp_path / "nan.tiff"
    Image.fromarray(np.array([[0.0, np.nan]], np.float32)).save(path, format="TIFF")
    with pytest.raises(DataError, match=r"nan\.tiff: image holds NaN") as e:
        load_face(path)
    assert e.value.reason == "non_finite"


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)                        # 10 high, 20 wide
    arr[:, :10] = (255, 0, 0)                                    # left half red
    arr[:, 10:] = (0, 0, 255)                                    # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6                                             # shown rotated 90 deg clockwise
    path = tmp_path / "rot.jpg"
    Image.fromarray(arr).save(path, quality=95, exif=exif)
    counts = Counter()
    face = load_face(path, counts).int()
    assert face.shape == (3, 20, 10)                             # the left edge is now the top
    assert face[0, 2, 5] > 200 and face[2, 2, 5] < 60            # top: red
    assert face[0, 17, 5] < 60 and face[2, 17, 5] > 200          # bottom: blue
    assert counts == {"exif_rotated": 1}


@pytest.mark.parametrize("size", [(20, 24), (16, 16)])           # 480 > 2 x 200; 256 > 200
def test_decompression_bomb_is_refused(tmp_path, monkeypatch, size):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200)
    write_face(tmp_path / "big.jpg", (1, 2, 3), size=size)
    with pytest.raises(DataError, match=r"big\.jpg: image too large") as e:
        load_face(tmp_path / "big.jpg")
    assert e.value.reason == "too_large"


def test_decompression_bomb_skipped_and_counted_by_the_cache(make_tree, smoke_cfg, monkeypatch):
    tree = make_tree()
    write_face(tree.faces / "Carl_Cox" / "00000000.jpg", (1, 2, 3), size=(64, 64))   # 4096 px
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)         # the others have 480
    cached = build_cache(load_index(tree.root), smoke_cfg, "test")
    assert cached.report["faces"]["skipped"] == {"too_large": 1}
    assert cached.n_faces == 6 * N_FACES - 1


# --------------------------------------------------------------------------- 10 full disk: cache

Usage = collections.namedtuple("Usage", "total used free")


def _temporaries(root: Path) -> list:
    return sorted(p.name for p in root.glob(".*.tmp-*")) if root.exists() else []


def test_cache_refused_when_the_disk_is_too_full(tiny_tree, smoke_cfg, monkeypatch):
    index = load_index(tiny_tree.root)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10 ** 9, 10 ** 9 - 1000, 1000))
    with pytest.raises(CacheSpaceError, match=r"no space left on /\S* for the cache at "
                                              r"\S+val-\w+ \(needs \d+ MB, 0 MB free\)"):
        build_cache(index, smoke_cfg, "val")
    assert _temporaries(Path(smoke_cfg.cache_dir)) == []


def test_cache_disk_full_while_writing(tiny_tree, smoke_cfg, monkeypatch):
    index = load_index(tiny_tree.root)

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(CacheSpaceError, match="no space left on .* for the cache at"):
        build_cache(index, smoke_cfg, "val")
    assert _temporaries(Path(smoke_cfg.cache_dir)) == []


def test_stale_temporary_folders_are_removed(tiny_tree, smoke_cfg):
    root = Path(smoke_cfg.cache_dir)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = os.uname().nodename
    for name, owner in ((".val-aaa.tmp-1", f"{host} {dead.pid}"),        # killed build
                        (".val-bbb.tmp-2", f"{host} {os.getpid()}")):     # a live build
        (root / name).mkdir(parents=True)
        (root / name / "owner").write_text(owner)
    old = root / ".val-ccc.tmp-3"                                        # no owner, old
    old.mkdir()
    os.utime(old, (1, 1))
    build_cache(load_index(tiny_tree.root), smoke_cfg, "val")
    assert _temporaries(root) == [".val-bbb.tmp-2"]


# --------------------------------------------------------------------------- 6, 11, 13 checkpoints


def test_bit_flipped_checkpoint_is_refused(tmp_path):
    w = torch.arange(1000, dtype=torch.float32)
    path = ckpt.save_checkpoint({"step": 1, "model": {"w": w}}, tmp_path / "last.pt")
    assert torch.equal(ckpt.load_checkpoint(path)["model"]["w"], w)
    raw = bytearray(path.read_bytes())
    at = raw.find(w.numpy().tobytes())
    assert at > 0
    for i in range(at + 400, at + 464):                          # 64 bytes of the weights
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ckpt.CheckpointError, match=r"last\.pt: checksum mismatch"):
        ckpt.load_checkpoint(path)


def test_checkpoint_without_checksum_is_refused(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"format": ckpt.FORMAT, "step": 1}, path)
    with pytest.raises(ckpt.CheckpointError, match=r"old\.pt: checksum mismatch"):
        ckpt.load_checkpoint(path)


@pytest.mark.parametrize("error, free", [
    (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0"), 0),
    (OSError(errno.ENOSPC, "No space left on device"), 10 ** 12),
])
def test_checkpoint_disk_full_names_the_path(tmp_path, monkeypatch, error, free):
    path = ckpt.save_checkpoint({"step": 1}, tmp_path / "last.pt")
    before = path.read_bytes()

    def save(obj, f):
        f.write(b"partial")
        raise error
    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10 ** 12, 10 ** 12 - free, free))
    with pytest.raises(ckpt.CheckpointError,
                       match=rf"last\.pt: cannot write the checkpoint, no space left on the "
                             rf"device of {tmp_path}"):
        ckpt.save_checkpoint({"step": 2, "w": torch.zeros(10)}, path)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]


def test_checkpoint_with_a_wrong_typed_config_names_the_file(tmp_path):
    cfg = smoke().to_dict()
    cfg["eval_tuples"] = "40"
    path = ckpt.save_checkpoint({"step": 1, "config": cfg}, tmp_path / "run" / "last.pt")
    with pytest.raises(ckpt.CheckpointError,
                       match=r"run/last\.pt: the saved config is invalid .*eval_tuples='40'"):
        ckpt.load_checkpoint(path)


# --------------------------------------------------------------------------- 8 overwrite


def test_overwrite_refuses_a_tree_the_generator_did_not_write(make_tree):
    tree = make_tree()
    with pytest.raises(FileExistsError, match="no calibration.json of the generator"):
        generate(tree.root, overwrite=True, n_identities=8, voices_per_identity=1,
                 faces_per_identity=1, image_size=16, clip_seconds=0.2)
    assert tree.meta.is_file() and len(list(tree.voices.rglob("*.wav"))) == 44


def test_overwrite_replaces_a_killed_generation(tmp_path):
    (tmp_path / "voices" / "id1").mkdir(parents=True)            # left by a killed run
    (tmp_path / IN_PROGRESS).write_text("")
    generate(tmp_path, overwrite=True, n_identities=8, voices_per_identity=1,
             faces_per_identity=1, image_size=16, clip_seconds=0.2)
    assert not (tmp_path / IN_PROGRESS).exists() and (tmp_path / "calibration.json").is_file()
    assert not (tmp_path / "voices" / "id1").exists()


# --------------------------------------------------------------------------- 3, 7, 12 config

# one value out of range (or of the wrong type) for every field, chosen by hand
BAD = {
    "data_root": "", "meta": 3, "voice_root": 5, "face_root": "", "cache_dir": 1.5,
    "split_protocol": "nagrani", "split_lists": 7,
    "sample_rate": 0, "face_size": 0, "spec_bins": 0, "spec_frames": -1, "spec_layout": "wrap",
    "n_fft": 1, "hop_length": 0, "backbone": "vgg", "pretrained": 7, "init_from": 7, "backbone_init": "imagenet", "backbone_train": "partly", "map_views": 0, "pretrain_steps": 0, "channels": 0, "schedule_steps": -1,
    "train_list_epochs": -1, "retrieval_feature": "signed",
    "map_size": 0, "hidden_dim": 0, "embed_dim": -3, "dropout": 1.0, "head": "dot",
    "projection": "deep", "structure": "tri", "enhancement": "both", "selection": "all",
    "dem_layers": 4, "block_draw": "skewed", "alpha": -0.5, "beta": 1.5, "r": 0, "c": 0,
    "adversarial": "began", "adv_target": "flop", "adv_reduction": "sum", "cls_loss": "ce",
    "eta": 1.0, "gbce_negatives": 0, "focal_gamma": -1.0, "metric_loss": "contrastive",
    "temperature": 0.0, "margin": -0.1, "lam": -1.0, "mu": math.nan, "lam1": -0.1,
    "mu1": math.inf, "task": "ranking", "k": 1, "direction": "vv", "sampling": "epoch",
    "tuples_per_anchor": 0, "batch_size": 0, "steps": 0, "optimizer": "sgd",
    "lr_backbone": -1.0, "lr_generator": -1e-3, "lr_discriminator": math.nan,
    "lr_classifier": "0.05", "lr_schedule": "cosine", "lr_final_ratio": 0.0,
    "lr_milestones": (10, 5), "lr_gamma": 0.0, "weight_decay": -1e-4, "betas": (0.9, 1.0),
    "disc_betas": (0.5,), "grad_clip": 0.0, "wgan_clip": 0.0, "eval_every": 0,
    "select_on": "train", "eval_tuples": "40", "eval_ks": (0, 2), "bootstrap": 0, "seed": -1,
    "device": "gpu", "amp": 1, "num_workers": -1, "log_every": 0, "freeze_bn": "no",
    "sync_bn": None, "profile": "", "name": "", "amin": 0.0, "block_slices": "none",
    "gen_calls": "per_item", "metric_norm": "mean", "eval_generator_mode": "test",
}
# the values issue 12 names
ISSUE = [("batch_size", 0), ("batch_size", -4), ("eval_every", 0), ("hop_length", 0),
         ("bootstrap", 0), ("eval_tuples", 0), ("seed", -1), ("face_size", 0),
         ("lr_backbone", -1), ("eval_ks", (0, 2)), ("steps", 0), ("steps", -5)]


def test_every_field_has_a_rule_and_a_bad_value_here():
    names = {f.name for f in dataclasses.fields(Config)}
    assert names - set(config_mod.RULES) == set()
    assert names - set(BAD) == set()


@pytest.mark.parametrize("name, value", sorted(BAD.items()) + ISSUE)
def test_bad_value_names_field_value_and_range(name, value):
    with pytest.raises(ConfigError) as e:
        smoke(**{name: value})
    msg = str(e.value)
    assert f"Config field {name}={value!r} is not allowed: it must be " in msg
    assert msg.endswith(config_mod.RULES[name].allowed)


def test_allowed_messages_spell_the_range():
    assert config_mod.RULES["steps"].allowed == "an integer >= 1"
    assert config_mod.RULES["dem_layers"].allowed == "an integer in [1, 3]"
    assert config_mod.RULES["dropout"].allowed == "a finite number in [0, 1)"
    assert config_mod.RULES["task"].allowed == "one of 'matching', 'retrieval'"


def test_boundary_values_are_accepted():
    smoke(steps=1, batch_size=1, dropout=0.0, beta=1.0, lr_backbone=0.0, seed=0, num_workers=0,
          grad_clip=None, lr_milestones=(), eval_ks=(2,), device="cuda:1", dem_layers=3,
          meta=["a.csv", "b.csv"], data_root=Path("x"), eval_tuples=np.int64(5), alpha=2)


def test_cross_field_rule():
    with pytest.raises(ConfigError, match=r"r=33, channels=32 are not allowed together"):
        smoke(r=33)


def test_replace_and_from_dict_validate():
    cfg = smoke()
    with pytest.raises(ConfigError, match="steps=0"):
        cfg.replace(steps=0)
    with pytest.raises(ConfigError, match="eval_tuples='40'"):
        Config.from_dict({**cfg.to_dict(), "eval_tuples": "40"})
    assert Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


# --------------------------------------------------------------------------- 14, 16 lists


@pytest.mark.parametrize("kind", ["matching", "verification", "retrieval", "official_fv", "auto"])
def test_empty_or_blank_list_names_the_path(tiny_tree, tmp_path, kind):
    path = tmp_path / "blank.txt"
    path.write_text("\n   \n\t\n")
    with pytest.raises(DataError, match=r"blank\.txt: the (\w+ )?list is empty") as e:
        read_list(path, kind, load_index(tiny_tree.root), "test")
    assert e.value.reason == "empty"


def test_empty_list_is_not_written(tiny_tree, tmp_path):
    index = load_index(tiny_tree.root)
    with pytest.raises(DataError, match=r"e\.txt: refusing to write an empty matching list"):
        write_list(tmp_path / "e.txt", ProtocolList("matching", "vf", np.zeros((0, 3), np.int64)),
                   index, "test")
    assert not (tmp_path / "e.txt").exists()


def test_list_naming_a_file_the_cache_skipped(make_tree, smoke_cfg, tmp_path):
    tree = make_tree()
    (tree.faces / "Cora_Cy" / "sess0" / "00000000.jpg").write_bytes(os.urandom(500))
    index = load_index(tree.root)
    path = write_list(tmp_path / "r.txt", ProtocolList("retrieval", "vf",
                                                       *retrieval_sets(index, "test", "vf")),
                      index, "test")
    assert "Cora_Cy/sess0/00000000.jpg" in path.read_text()
    cached = build_cache(index, smoke_cfg, "test")
    with pytest.raises(DataError, match=r"face file 'Cora_Cy/sess0/00000000\.jpg' was skipped by "
                                        r"the cache as undecodable \(corrupt\)") as e:
        read_list(path, "retrieval", cached)
    assert e.value.reason == "skipped_file"
