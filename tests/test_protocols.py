"""Protocols: matching tuples (U / G), verification, retrieval, samplers, list files."""
from __future__ import annotations

import argparse
import csv
import re

import numpy as np
import pytest

from dsanet.config import smoke
from dsanet.data.cache import build_cache
from dsanet.data.layout import DataError, load_index
from dsanet.data.protocols import (
    ProtocolList, add_protocols_arguments, matching_tuples, read_list, read_lines,
    retrieval_sets, run_protocols, split_items, training_sampler, verification_pairs, write_list,
)


@pytest.fixture(scope="module")
def index(tiny_tree):
    return load_index(tiny_tree.root)


def _ids(items, direction, tuples):
    a, c = (items.voice_ids, items.face_ids) if direction == "vf" else (items.face_ids,
                                                                       items.voice_ids)
    return a[tuples[:, 0]], c[tuples[:, 1:]]


@pytest.mark.parametrize("direction", ["vf", "fv"])
@pytest.mark.parametrize("k, constrained", [(2, False), (6, False), (2, True), (3, True)])
def test_matching_tuples_structure(index, direction, k, constrained):
    t = matching_tuples(index, "test", k, direction, constrained, n=500, seed=3)
    assert t.shape == (500, k + 1) and t.dtype == np.int64
    items = split_items(index, "test")
    aid, cid = _ids(items, direction, t)
    assert (cid[:, 0] == aid).all()                                      # true candidate
    assert (cid[:, 1:] != aid[:, None]).all()                            # negatives: others
    assert all(len(set(r)) == k for r in cid.tolist())                   # distinct identities
    if constrained:
        g = items.identity_gender
        assert (g[cid] == g[aid][:, None]).all()                         # G: same gender


def test_matching_tuples_reproducible(index):
    a = matching_tuples(index, "test", 4, "vf", False, 200, seed=7)
    assert (a == matching_tuples(index, "test", 4, "vf", False, 200, seed=7)).all()
    assert (a != matching_tuples(index, "test", 4, "vf", False, 200, seed=8)).any()


def test_negatives_are_uniform_over_other_identities(index):
    n = 6000
    t = matching_tuples(index, "test", 2, "vf", False, n, seed=0)
    aid, cid = _ids(split_items(index, "test"), "vf", t)
    pairs = np.zeros((8, 8))
    np.add.at(pairs, (aid, cid[:, 1]), 1)
    block = pairs[2:, 2:]                                                # test ids 2..7
    assert (np.diag(block) == 0).all()
    expected = n / 6 / 5                                                 # anchor, then 1 of 5
    off = block[~np.eye(6, dtype=bool)]
    assert (np.abs(off - expected) < 5 * np.sqrt(expected)).all()


def test_too_few_identities_is_a_clear_error(index):
    with pytest.raises(DataError, match="1:7 matching needs 7 identities"):
        matching_tuples(index, "test", 7, "vf", False, 10)
    with pytest.raises(DataError, match="of one gender"):
        matching_tuples(index, "test", 4, "fv", True, 10)                # 3 per gender


def test_verification_pairs_balanced(index):
    p = verification_pairs(index, "test", n=301, seed=0)
    items = split_items(index, "test")
    assert p.shape == (301, 3) and p[:, 2].sum() == 151
    assert (p[:, 2] == (items.voice_ids[p[:, 0]] == items.face_ids[p[:, 1]])).all()


def test_retrieval_sets_are_every_item(index):
    q, g = retrieval_sets(index, "test", "vf")
    assert q.tolist() == list(range(24)) and g.tolist() == list(range(18))
    q, g = retrieval_sets(index, "test", "fv")
    assert len(q) == 18 and len(g) == 24


def test_training_sampler_both_directions_and_pairs(tiny_tree, tmp_path):
    cfg = smoke(cache_dir=str(tmp_path), batch_size=9, k=3, direction="both", face_size=8,
                spec_bins=8, spec_frames=8, n_fft=32)
    cached = build_cache(load_index(tiny_tree.root), cfg, "train")
    batch = next(training_sampler(cached, cfg, seed=0))
    assert [(d, t.shape) for d, t in batch] == [("vf", (5, 4)), ("fv", (4, 4))]
    pairs = next(training_sampler(cached, cfg.replace(task="retrieval"), seed=0))
    assert pairs.shape == (9, 2)
    assert (cached.voice_ids[pairs[:, 0]] == cached.face_ids[pairs[:, 1]]).all()


@pytest.mark.parametrize("direction", ["vf", "fv"])
def test_matching_list_round_trip(index, tmp_path, direction):
    t = matching_tuples(index, "test", 3, direction, False, 50, seed=0)
    path = write_list(tmp_path / "m.txt", ProtocolList("matching", direction, t), index, "test")
    first = read_lines(path)[0][1]
    items = split_items(index, "test")
    anchor_paths = items.voice_paths if direction == "vf" else items.face_paths
    assert first[0] == anchor_paths[t[0, 0]] and len(first) == 4
    back = read_list(path, "auto", index, "test")
    assert back.kind == "matching" and back.direction == direction and (back.rows == t).all()


def test_verification_and_retrieval_round_trip(index, tmp_path):
    p = verification_pairs(index, "test", 40, seed=1)
    path = write_list(tmp_path / "v.txt", ProtocolList("verification", "vf", p), index, "test")
    assert (read_list(path, "verification", index, "test").rows == p).all()
    q, g = retrieval_sets(index, "test", "fv")
    path = write_list(tmp_path / "r.txt", ProtocolList("retrieval", "fv", q, g), index, "test")
    assert len(read_lines(path)) == 2
    back = read_list(path, "auto", index, "test")
    assert back.direction == "fv" and (back.rows == q).all() and (back.gallery == g).all()


def test_official_list_round_trip_with_prefixes(index, tmp_path):
    t = matching_tuples(index, "test", 2, "fv", False, 60, seed=2)
    path = write_list(tmp_path / "o.txt", ProtocolList("matching", "fv", t), index, "test",
                      fmt="official", voice_prefix="/datasets/wav1/",
                      face_prefix="/datasets/unzippedface/test/", seed=0)
    lines = read_lines(path)
    assert lines[0][1][0].startswith("/datasets/unzippedface/test/")
    assert {tok[3] for _, tok in lines} == {"0", "1"}
    for strip in ((), ("/datasets/unzippedface/test/", "/datasets/wav1/")):
        back = read_list(path, "official_fv", index, "test", strip=strip)
        assert back.direction == "fv" and (back.rows == t).all()


def test_lists_resolve_against_a_cache(index, tiny_tree, smoke_cfg, tmp_path):
    t = matching_tuples(index, "test", 2, "vf", True, 30, seed=0)
    path = write_list(tmp_path / "m.txt", ProtocolList("matching", "vf", t), index, "test")
    cached = build_cache(index, smoke_cfg, "test")
    assert (read_list(path, "matching", cached).rows == t).all()


def test_protocols_cli(tiny_tree, tmp_path):
    parser = argparse.ArgumentParser()
    add_protocols_arguments(parser)
    out = tmp_path / "lists"
    argv = ["--data", str(tiny_tree.root), "--out", str(out), "--seed", "5", "--n", "20",
            "--splits", "test", "--ks", "2", "3", "4"]
    assert run_protocols(parser.parse_args(argv)) == 0
    names = sorted(p.name for p in out.iterdir())
    # U for k = 2, 3, 4 and G for k = 2, 3 (3 identities per gender), both directions
    assert "match_v2f_4_test.txt" in names and "match_g_f2v_3_test.txt" in names
    assert "match_g_v2f_4_test.txt" not in names
    assert {"verify_v2f_test.txt", "verify_g_v2f_test.txt", "retrieval_v2f_test.txt",
            "retrieval_f2v_test.txt"} <= set(names)
    assert len(names) == 2 * (3 + 2) + 2 + 2
    index = load_index(tiny_tree.root)
    for name in names:
        read_list(out / name, "auto", index, "test")                     # every list resolves
    first = (out / "match_g_v2f_3_test.txt").read_bytes()
    run_protocols(parser.parse_args(argv))
    assert (out / "match_g_v2f_3_test.txt").read_bytes() == first        # same seed, same lists


# ----------------------------------------------------------------------------- shared samples

SAMPLES = {"sample_match_v2f_2_val.txt": ("matching", "val"),
           "sample_match_g_v2f_2_val.txt": ("matching", "val"),
           "sample_verify_v2f_test.txt": ("verification", "test"),
           "sample_official_test_F2V.txt": ("official_fv", "test")}


def _shared_meta(shared):
    rows = []
    for split in ("train", "val", "test"):
        with open(shared / f"vox1_{split}.csv", newline="") as fh:
            rows += list(csv.DictReader(fh))
    return rows


def _relative(token):
    """Plain reimplementation for the test: voices from the idNNNNN folder on, faces after
    the published list's fixed prefix."""
    parts = token.split("/")
    for i, part in enumerate(parts):
        if re.fullmatch(r"id\d{5}", part):
            return "voices", "/".join(parts[i:])
    return "faces", token.replace("/datasets/unzippedface/test/", "")


@pytest.fixture(scope="module")
def sample_index(shared_protocols, tmp_path_factory):
    """A tree of empty files holding every path the sample lists name (names only are read)."""
    root = tmp_path_factory.mktemp("samples")
    meta = _shared_meta(shared_protocols)
    by_voice = {r["VoxCeleb1_ID"]: r["VGGFace1_ID"] for r in meta}
    by_face = {v: k for k, v in by_voice.items()}
    seen = {"voices": set(), "faces": set()}
    for name in SAMPLES:
        for _, toks in read_lines(shared_protocols / name):
            for tok in toks[:3] if name.startswith("sample_official") else toks:
                kind, rel = _relative(tok)
                (root / kind / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / kind / rel).touch()
                seen[kind].add(rel.split("/")[0])
    for vid in seen["voices"] - {by_face[f] for f in seen["faces"]}:     # other modality stub
        (root / "faces" / by_voice[vid]).mkdir(parents=True)
        (root / "faces" / by_voice[vid] / "stub.jpg").touch()
    for face in seen["faces"] - {by_voice[v] for v in seen["voices"]}:
        (root / "voices" / by_face[face] / "stub").mkdir(parents=True)
        (root / "voices" / by_face[face] / "stub" / "00001.wav").touch()
    # the published F-V list names voices of identities whose Set is "none": keep them
    return load_index(root, meta=shared_protocols, keep_set_none=True), meta, root


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_lists_resolve(shared_protocols, sample_index, name):
    index = sample_index[0]
    kind, split = SAMPLES[name]
    got = read_list(shared_protocols / name, kind, index, split)
    assert len(got.rows) == 200
    assert got.direction == ("fv" if kind == "official_fv" else "vf")


def test_sample_g_list_negatives_share_the_anchor_gender(shared_protocols, sample_index):
    meta = sample_index[1]
    gender = {r["VoxCeleb1_ID"]: r["Gender"] for r in meta}
    gender.update({r["VGGFace1_ID"]: r["Gender"] for r in meta})
    face_of = {r["VoxCeleb1_ID"]: r["VGGFace1_ID"] for r in meta}

    def check(name):
        same = []
        for _, (voice, pos, *negs) in read_lines(shared_protocols / name):
            vid = voice.split("/")[0]
            assert pos.split("/")[0] == face_of[vid]                    # first candidate true
            same += [gender[n.split("/")[0]] == gender[vid] for n in negs]
        return np.mean(same)

    assert check("sample_match_g_v2f_2_val.txt") == 1.0
    assert check("sample_match_v2f_2_val.txt") < 1.0                     # U: mixed genders


def test_sample_g_list_read_genders(shared_protocols, sample_index):
    index = sample_index[0]
    got = read_list(shared_protocols / "sample_match_g_v2f_2_val.txt", "matching", index, "val")
    items = split_items(index, "val")
    g = items.identity_gender
    assert (g[items.face_ids[got.rows[:, 2]]] == g[items.voice_ids[got.rows[:, 0]]]).all()


def test_sample_official_labels(shared_protocols, sample_index):
    index, meta = sample_index[:2]
    face_of = {r["VoxCeleb1_ID"]: r["VGGFace1_ID"] for r in meta}
    got = read_list(shared_protocols / "sample_official_test_F2V.txt", "official_fv", index,
                    "test")
    items = split_items(index, "test")
    for r, (_, (face, a1, a2, label)) in enumerate(
            read_lines(shared_protocols / "sample_official_test_F2V.txt")):
        true = (a1, a2)[int(label)]
        assert face_of[true.split("/")[-3]] == face.split("/")[-3]        # label 0/1 = position
        assert true.endswith(items.voice_paths[got.rows[r, 1]])


def test_sample_list_against_another_index_names_line_and_path(shared_protocols, index):
    name = "sample_match_v2f_2_val.txt"
    first = read_lines(shared_protocols / name)[0][1][0]
    with pytest.raises(DataError, match=rf"{name}: line 1: unknown voice file '{first}'"):
        read_list(shared_protocols / name, "matching", index, "val")


def test_published_list_names_set_none_identities(shared_protocols, sample_index):
    # Table II's index (Set "none" left out) cannot resolve line 62 (id10143, Set "none")
    index = load_index(sample_index[2], meta=shared_protocols)
    assert index.skipped["set_none"] == 26
    with pytest.raises(DataError, match=r"line 62: unknown voice file '/datasets/wav1/id10143/"):
        read_list(shared_protocols / "sample_official_test_F2V.txt", "official_fv", index, "test")
