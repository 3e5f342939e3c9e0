"""The split protocols (issue 23, item 5; Table III): Learnable-PINs identity lists read and
checked, applied by the loader, written in the PINs proportions for the embedded benchmark, and
taken by ``prepare --split-lists`` into the config."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import TINY_IDENTITIES, write_official
from dsanet.__main__ import main
from dsanet.config import get_profile, smoke
from dsanet.config_rules import ConfigError
from dsanet.data.layout import DataError, load_index, read_meta
from dsanet.data.splits import read_split_lists, write_pins_like_lists

LISTS = {"train": ["id00001", "id00003", "id00005", "Dana_Di"], "val": ["id00007", "Emma_Em"],
         "test": ["id00009", "id00010", "Hugo_Hi"]}        # ids and names; id00002/4 left out


def write_lists(path, lists=LISTS, folder=False):
    if folder:
        path.mkdir()
        for split, ids in lists.items():
            (path / f"{split}.txt").write_text("\n".join(ids) + "\n")
        return path
    rows = [f"{i},{s}" for s, ids in lists.items() for i in ids]
    path.write_text("identity,split\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("folder", [False, True])
def test_lists_are_read_from_a_csv_or_three_files(tmp_path, folder):
    got = read_split_lists(write_lists(tmp_path / "pins", folder=folder))
    assert got.to_dict() == {i: s for s, ids in LISTS.items() for i in ids}


def test_bad_lists_name_the_file_and_line(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("identity,split\nid00001,train\nid00002,holdout\n")
    with pytest.raises(DataError, match=r"l\.csv: line 3: unknown split 'holdout'"):
        read_split_lists(p)
    p.write_text("identity,split\nid00001,train\nid00003,test\nid00001,val\n")
    with pytest.raises(DataError, match=r"l\.csv: line 4: id00001 is val, but .*line 2 makes it train"):
        read_split_lists(p)
    p.write_text("name,set\nid00001,train\n")
    with pytest.raises(DataError, match="header 'identity,split'"):
        read_split_lists(p)
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "train.txt").write_text("id00001\n")
    with pytest.raises(DataError, match="lacks val.txt"):
        read_split_lists(tmp_path / "f")


def test_the_loader_takes_the_split_from_the_lists(make_tree, tmp_path):
    t = make_tree()
    lists = read_split_lists(write_lists(tmp_path / "pins.csv"))
    index = load_index(t.root, splits=lists)
    by_split = index.identities.groupby("split").voice_id.apply(sorted).to_dict()
    assert by_split == {"train": ["id00001", "id00003", "id00005", "id00006"],
                        "val": ["id00007", "id00008"], "test": ["id00009", "id00010", "id00011"]}
    assert index.skipped["not_in_split"] == 2                       # id00002, id00004
    wen = load_index(t.root)                                        # by initials: A-B val
    assert set(wen.identities[wen.identities.split == "val"].voice_id) == {"id00001", "id00002"}
    with pytest.raises(DataError, match="no listed identity is in the meta table"):
        load_index(t.root, splits=pd.Series({"id99999": "train"}))


def test_pins_like_lists_have_the_pins_proportions(tmp_path):
    ids = pd.DataFrame({"voice_id": [f"id{i:05d}" for i in range(1000)]})
    lists = read_split_lists(write_pins_like_lists(ids, tmp_path / "p.csv", seed=3))
    # 1,000 x 100 / 1,251 = 79.9 -> 80 validation, 1,000 x 250 / 1,251 = 199.8 -> 200 test
    assert lists.value_counts().to_dict() == {"train": 720, "test": 200, "val": 80}
    again = read_split_lists(write_pins_like_lists(ids, tmp_path / "q.csv", seed=3))
    assert again.equals(lists)                                      # seeded: the same lists


def test_the_protocol_and_its_lists_go_together():
    with pytest.raises(ConfigError, match="split_protocol='pins' reads its identity lists"):
        smoke(split_protocol="pins")
    with pytest.raises(ConfigError, match="split_protocol"):
        smoke(split_lists="lists.csv")
    assert get_profile("smoke", split_protocol="pins", split_lists="x.csv").split_lists == "x.csv"


def test_prepare_with_pins_lists_checks_counts_and_writes_the_protocol(make_tree, tmp_path, capsys):
    t = make_tree()
    (t.root / "meta.csv").unlink()
    write_official(t.root / "vox1_meta.csv", TINY_IDENTITIES)
    lists = write_lists(tmp_path / "pins.csv")
    out = tmp_path / "prepared"
    code = main(["prepare", "--voices", str(t.voices), "--faces", str(t.faces), "--out", str(out),
                 "--meta", str(t.root / "vox1_meta.csv"), "--split-lists", str(lists)])
    text = capsys.readouterr().out
    assert code == 0
    rep = json.loads((out / "prepare_report.json").read_text())
    assert rep["identities"] == {"train": 4, "val": 2, "test": 3} and rep["protocol"] == "pins"
    assert sorted(rep["skipped"]["identities the split lists leave out"]) == [
        "id00002 Beth_Bo", "id00004 Cora_Cy"]
    assert "identities (PINs)" in text and "(   901)" in text and "(   250)" in text
    doc = (out / "dsanet.yaml").read_text()
    assert "split_protocol: pins" in doc and str(lists) in doc
    assert set(read_meta(out / "meta.csv").voice_id) >= set(LISTS["test"][:2])
