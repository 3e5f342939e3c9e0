"""``python -m dsanet train`` / ``evaluate``: options, --set parsing, data generation, outputs."""
from __future__ import annotations

import argparse
import json

import pandas as pd
import pytest
import torch

from dsanet.__main__ import main
from dsanet.data.embedded import ensure_data
from dsanet.engine import cli


def test_set_values_take_the_field_types():
    assert cli.parse_sets(["lr_backbone=1e-3", "steps=12", "amp=false", "backbone=compact",
                           "grad_clip=none", "lr_milestones=600,1000", "betas=0.5,0.999",
                           "pretrained=/w.pt"]) == {
        "lr_backbone": 1e-3, "steps": 12, "amp": "false", "backbone": "compact", "grad_clip": None,
        "lr_milestones": (600, 1000), "betas": (0.5, 0.999), "pretrained": "/w.pt"}
    assert cli.parse_value("grad_clip", "2.5") == 2.5 and cli.parse_value("meta", "none") is None
    assert cli.Config(amp=cli.parse_value("amp", "false")).amp == "off"   # the old flag's spelling


@pytest.mark.parametrize("item, message", [
    ("no_such_field=1", "no field 'no_such_field'"),
    ("steps=many", "expected int"),
    ("freeze_bn=maybe", "expected true or false"),
    ("steps", "expected key=value"),
])
def test_bad_set_values_are_explained(item, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        cli.parse_sets([item])


def test_help_explains_every_option(capsys):
    for command, options in (("train", ["--profile", "--data", "--out", "--set", "--steps", "--seed",
                                        "--device", "--resume", "--no-resume", "--progress"]),
                             ("evaluate", ["--checkpoint", "--data", "--out", "--set", "--device"])):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        for opt in options:
            assert opt in text, (command, opt)


def test_config_from_args_applies_profile_and_overrides(tmp_path):
    p = argparse.ArgumentParser()
    cli.add_train_arguments(p)
    args = p.parse_args(["--profile", "smoke", "--data", str(tmp_path), "--out", "r",
                         "--steps", "9", "--seed", "4", "--device", "cpu", "--set", "k=3"])
    c = cli.config_from_args(args)
    assert (c.profile, c.data_root, c.steps, c.seed, c.device, c.k) == (
        "smoke", str(tmp_path), 9, 4, "cpu", 3)
    assert args.resume is True
    assert p.parse_args(["--out", "r", "--no-resume"]).resume is False


def test_paper_profile_does_not_invent_data(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not generate data"):
        ensure_data(cli.get_profile("paper", data_root=str(tmp_path / "missing")))


def test_train_generates_data_then_evaluate_reproduces_the_metrics(tmp_path, capsys):
    torch.set_num_threads(1)
    data, run, again = tmp_path / "data", tmp_path / "run", tmp_path / "eval"
    assert main(["train", "--profile", "smoke", "--data", str(data), "--out", str(run),
                 "--set", "eval_ks=2", "--set", "bootstrap=20", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"{data} does not exist: generating" in out and (data / "calibration.json").is_file()
    assert "matching" in out and "95% CI" in out

    doc = json.loads((run / "metrics.json").read_text())
    table = pd.read_csv(run / "metrics.csv")
    assert len(doc["metrics"]) == len(table) > 0
    for row in doc["metrics"]:
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
    assert doc["checkpoint"] == str(run / "best.pt") and doc["config"]["profile"] == "smoke"
    assert set(doc["headline_percent"]) == {"vf", "fv", "vf10", "fv10", "map_vf", "map_fv"}

    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--out", str(again),
                 "--set", "bootstrap=20"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(again / "metrics.csv"), table)
