"""The data root's config file (issue 23, item 3): what ``prepare`` writes into ``DATA_ROOT/
dsanet.yaml`` - the ImageNet weights above all - reaches ``train --data`` and the notebooks
(``reproduce --param data_root=...``) alike, and the paper profile says so when it would train
ResNet18 from random weights instead of saying nothing."""
from __future__ import annotations

import argparse
import json

import pytest
import torch
import torchvision

from conftest import TINY_IDENTITIES, write_official
from dsanet.__main__ import main
from dsanet.config import paper, quick, smoke
from dsanet.config_file import data_root_config, from_scratch_warning, read_config_file
from dsanet.config_rules import UsageError
from dsanet.data.layout import DataError
from dsanet.data.prepare import check_pretrained
from dsanet.engine.cli import config_from_args
from dsanet.models.backbones import build_backbone
from dsanet.reproduce import notebook_config


@pytest.fixture(scope="module")
def imagenet_like(tmp_path_factory):
    """A torchvision ResNet18 state dict on disk, in the format of the ImageNet file (random
    weights: what is checked is that these exact numbers reach the backbone)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18-f37072fd.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


def args_for(**kw):
    base = dict(config=None, profile=None, set=[], data=None, steps=None, seed=None, device=None)
    return argparse.Namespace(**{**base, **kw})


def test_data_root_file_applies_between_the_profile_and_the_overrides(tmp_path, capsys):
    root = tmp_path / "root"
    root.mkdir()
    (root / "dsanet.json").write_text(json.dumps(
        {"profile": "paper", "data_root": "/moved/away", "lr_backbone": 1e-3, "seed": 7,
         "cache_dir": str(tmp_path / "cache")}))
    cfg = notebook_config("smoke", root, seed=3)
    assert cfg.profile == "smoke"                       # the notebook's profile, not the file's
    assert cfg.data_root == str(root)                   # where the notebook found the tree
    assert cfg.lr_backbone == 1e-3 and cfg.cache_dir == str(tmp_path / "cache")   # the file's
    assert cfg.seed == 3                                # the notebook's parameter wins
    assert f"config: {root / 'dsanet.json'}" in capsys.readouterr().out
    # train --data reads the same file; --config replaces it; --set overrides both
    assert config_from_args(args_for(data=str(root), profile="smoke")).lr_backbone == 1e-3
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"lr_backbone": 2e-3}))
    assert config_from_args(args_for(data=str(root), profile="smoke",
                                     config=str(other))).lr_backbone == 2e-3
    assert config_from_args(args_for(data=str(root), profile="smoke",
                                     set=["lr_backbone=5e-3"])).lr_backbone == 5e-3


def test_no_file_leaves_the_profile_as_it_is(tmp_path, capsys):
    assert data_root_config(tmp_path) == (None, {})
    assert notebook_config("smoke", tmp_path) == smoke(data_root=str(tmp_path))
    assert notebook_config("smoke", tmp_path / "not-yet-generated") == smoke(
        data_root=str(tmp_path / "not-yet-generated"))
    assert capsys.readouterr().out == ""


def test_a_bad_data_root_file_names_itself(tmp_path):
    (tmp_path / "dsanet.json").write_text(json.dumps({"lr_backbone": 1e-3, "no_such": 1}))
    with pytest.raises(UsageError, match=r"dsanet\.json: Config has no field\(s\) \['no_such'\]"):
        notebook_config("smoke", tmp_path)
    (tmp_path / "dsanet.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"dsanet\.json: cannot parse"):
        read_config_file(tmp_path / "dsanet.json")


def test_from_scratch_warning_only_where_imagenet_weights_are_missing(imagenet_like):
    assert "train from random weights" in from_scratch_warning(paper())
    assert from_scratch_warning(paper(pretrained=str(imagenet_like))) is None
    assert from_scratch_warning(paper(backbone_init="identity")) is None   # pretrained on ids
    assert from_scratch_warning(quick()) is None and from_scratch_warning(smoke()) is None


def test_prepare_writes_the_weights_and_the_notebooks_load_them(make_tree, tmp_path, capsys,
                                                                imagenet_like):
    tree = make_tree()
    (tree.root / "meta.csv").unlink()
    write_official(tree.root / "vox1_meta.csv", TINY_IDENTITIES)
    out = tmp_path / "prepared"
    code = main(["prepare", "--voices", str(tree.voices), "--faces", str(tree.faces), "--meta",
                 str(tree.root / "vox1_meta.csv"), "--out", str(out),
                 "--pretrained", str(imagenet_like)])
    text = capsys.readouterr().out
    assert code == 0 and f"ImageNet weights: {imagenet_like}" in text
    _, fields = data_root_config(out)
    assert fields["pretrained"] == str(imagenet_like)

    cfg = notebook_config("paper", out, device="cpu")   # what every notebook runs first
    printed = capsys.readouterr().out
    assert cfg.pretrained == str(imagenet_like) and "random weights" not in printed
    face = build_backbone(cfg, "face")
    saved = torch.load(imagenet_like, weights_only=True)
    assert torch.equal(face.trunk[0].weight, saved["conv1.weight"])          # the file's numbers
    assert torch.equal(face.trunk[7][1].conv2.weight, saved["layer4.1.conv2.weight"])

    # without --pretrained the report and the notebooks both say what will happen
    code = main(["prepare", "--voices", str(tree.voices), "--faces", str(tree.faces), "--meta",
                 str(tree.root / "vox1_meta.csv"), "--out", str(out)])
    assert code == 0 and "ImageNet weights: none given" in capsys.readouterr().out
    cfg = notebook_config("paper", out, device="cpu")
    assert cfg.pretrained is None and "train from random weights" in capsys.readouterr().out


def test_prepare_refuses_weights_that_are_not_resnet18(tmp_path):
    with pytest.raises(DataError, match=r"--pretrained .*nothing\.pth: file not found"):
        check_pretrained(tmp_path / "nothing.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(DataError, match=r"text\.pth: not a readable PyTorch state dict"):
        check_pretrained(tmp_path / "text.pth")
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(DataError, match=r"r34\.pth: not a ResNet18 state dict"):
        check_pretrained(tmp_path / "r34.pth")


def test_prepare_accepts_the_imagenet_file_format(tmp_path):
    """torchvision's ImageNet file has no ``num_batches_tracked`` buffers (saved before they
    existed) and keeps ``fc.*``: accepted as it is."""
    state = {k: v for k, v in torchvision.models.resnet18(weights=None).state_dict().items()
             if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "zoo.pth")
    assert check_pretrained(tmp_path / "zoo.pth") == str(tmp_path / "zoo.pth")
