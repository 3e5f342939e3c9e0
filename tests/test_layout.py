"""Layout, meta table and the Wen et al. split (Table II)."""
from __future__ import annotations

import csv

import pandas as pd
import pytest

from dsanet.data.layout import DataError, load_index, meta_split_counts, read_meta, split_of
from conftest import TINY_IDENTITIES, write_meta


@pytest.mark.parametrize("name, split", [
    ("Aamir_Khan", "val"), ("B.J._Novak", "val"), ("CCH_Pounder", "test"), ("Dr._Dre", "test"),
    ("Emma_Stone", "test"), ("Fanny_Ardant", "train"), ("Zac_Efron", "train"),
    ("aaron", "val"), ("50_Cent", "train"),
])
def test_split_of(name, split):
    assert split_of(name) == split


def test_table_ii_identity_counts_from_shared_csvs(shared_protocols):
    # independent count: csv module, rows whose Set is not "none", per split file
    naive = {}
    for split in ("train", "val", "test"):
        with open(shared_protocols / f"vox1_{split}.csv", newline="") as fh:
            naive[split] = sum(r["Set"] != "none" for r in csv.DictReader(fh))
    assert naive == {"train": 924, "val": 112, "test": 189}
    counts = meta_split_counts(shared_protocols)
    assert counts.to_dict() == naive  # Table II: 924 / 112 / 189


def test_split_agrees_with_the_shared_split_files(shared_protocols):
    meta = read_meta(shared_protocols)
    for split in ("train", "val", "test"):
        with open(shared_protocols / f"vox1_{split}.csv", newline="") as fh:
            ids = {r["VoxCeleb1_ID"] for r in csv.DictReader(fh)}
        assert set(meta[meta.split == split].voice_id) == ids


def test_meta_list_equals_directory(shared_protocols):
    files = [shared_protocols / f"vox1_{s}.csv" for s in ("test", "val", "train")]
    pd.testing.assert_frame_equal(read_meta(files), read_meta(shared_protocols))


def test_official_tab_separated_meta(tmp_path):
    tsv = tmp_path / "vox1_meta.csv"
    tsv.write_text("VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"
                   "id10001 \t A.J._Buckley \t m \t Ireland \t dev\n"
                   "id10002\tA.R._Rahman\tF\tIndia\ttest\n")
    csv_ = tmp_path / "meta.csv"
    csv_.write_text("VoxCeleb1_ID,VGGFace1_ID,Gender,Nationality,Set\n"
                    "id10001,A.J._Buckley,m,Ireland,dev\nid10002,A.R._Rahman,f,India,test\n")
    got = read_meta(tsv)
    assert got.voice_id.tolist() == ["id10001", "id10002"]
    assert got.face_id.tolist() == ["A.J._Buckley", "A.R._Rahman"]
    assert got.gender.tolist() == ["m", "f"]
    pd.testing.assert_frame_equal(got, read_meta(csv_))


def test_meta_missing_column_names_the_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("VoxCeleb1_ID,Gender,Set\nid1,m,dev\n")
    with pytest.raises(DataError, match=r"bad\.csv.*VGGFace1|face_id"):
        read_meta(bad)


def test_meta_conflicting_rows_raise(tmp_path):
    write_meta(tmp_path / "a.csv", [("id1", "Al", "m")])
    write_meta(tmp_path / "b.csv", [("id1", "Al", "f")])
    with pytest.raises(DataError, match="conflicting meta rows for id1"):
        read_meta(tmp_path)


def test_tiny_index_summary(tiny_tree):
    index = load_index(tiny_tree.root)
    table = index.summary()
    # 2 val, 6 test, 3 train identities; 4 clips and 3 faces each
    assert table.loc["Identities"].tolist() == [3, 2, 6, 11]
    assert table.loc["Audio Clips"].tolist() == [12, 8, 24, 44]
    assert table.loc["Face Images"].tolist() == [9, 6, 18, 33]
    assert list(table.columns) == ["Train", "Validation", "Test", "Total"]
    assert sum(index.skipped.values()) == 0


def test_tiny_index_paths_identities_sessions(tiny_tree):
    index = load_index(tiny_tree.root)
    ids = index.identities
    assert ids.voice_id.tolist() == [v for v, _, _ in TINY_IDENTITIES]
    # identity of every item agrees with its folder name
    assert (ids.voice_id.to_numpy()[index.voices.identity] ==
            index.voices.path.str.split("/").str[0].to_numpy()).all()
    assert (ids.face_id.to_numpy()[index.faces.identity] ==
            index.faces.path.str.split("/").str[0].to_numpy()).all()
    assert (tiny_tree.voices / index.voices.path[0]).is_file()
    assert set(index.voices.session) == {"s0", "s1"}
    stills = index.faces[index.faces.identity % 2 == 0]
    assert set(stills.session) == {""} and set(index.faces.session) == {"", "sess0", "sess1"}
    assert index.identity_gender.tolist() == [0 if g == "m" else 1 for _, _, g in TINY_IDENTITIES]


def test_separate_voice_and_face_roots(tiny_tree, tmp_path):
    # VoxCeleb1 layout: voices under .../wav, faces elsewhere, meta given explicitly
    wav = tmp_path / "vox1" / "wav"
    wav.parent.mkdir()
    wav.symlink_to(tiny_tree.voices, target_is_directory=True)
    index = load_index(tmp_path / "vox1", meta=tiny_tree.meta, voice_root=wav,
                       face_root=tiny_tree.faces)
    assert index.summary().loc["Audio Clips", "Total"] == 44
    assert index.voice_path(index.voices.path[0]).is_file()


def test_missing_meta_is_a_clear_error(tmp_path):
    (tmp_path / "voices").mkdir()
    (tmp_path / "faces").mkdir()
    with pytest.raises(DataError, match="no meta.csv"):
        load_index(tmp_path)
