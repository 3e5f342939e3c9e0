"""``dsanet.data.embedded.ensure_data``: the embedded benchmark is generated with its preset's seed
(never the training seed), and a stale tree in the profile's folder is regenerated."""
from __future__ import annotations

import json
from types import SimpleNamespace

from dsanet.__main__ import main
from dsanet.config import get_profile
from dsanet.data import embedded, synthetic


def knobs_of(root) -> dict:
    return json.loads((root / "calibration.json").read_text())["knobs"]


def test_train_generates_with_the_preset_seed_not_the_training_seed(tmp_path, monkeypatch, capsys):
    """``dsanet train --profile smoke --seed 3`` writes the tree the notebooks would (seed 0)."""
    import dsanet.engine.train as train_module

    monkeypatch.setattr(train_module, "train", lambda *a, **k: SimpleNamespace(metrics=None))
    data = tmp_path / "data"
    assert main(["train", "--profile", "smoke", "--seed", "3", "--data", str(data),
                 "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"{data} does not exist: generating" in out and "seed 0" in out
    assert knobs_of(data) == embedded.preset_knobs("smoke")
    assert knobs_of(data)["seed"] == synthetic.DEFAULTS["seed"] == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["seed"] == 3


def test_a_stale_tree_in_the_profile_folder_is_regenerated_once(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = get_profile("smoke", seed=3)
    root = tmp_path / cfg.data_root
    root.mkdir(parents=True)
    stale = dict(embedded.preset_knobs("smoke"), seed=3)   # what the old `train --seed 3` wrote
    (root / "calibration.json").write_text(json.dumps({"format": synthetic.FORMAT, "knobs": stale}))
    (root / "meta.csv").write_text(",".join(synthetic.META_COLUMNS) + "\n")
    assert embedded.stale_benchmark(root, "smoke")

    assert embedded.ensure_data(cfg) == root.relative_to(tmp_path)
    assert "regenerating it" in capsys.readouterr().out
    assert knobs_of(root) == embedded.preset_knobs("smoke") and not embedded.stale_benchmark(root, "smoke")
    before = (root / "calibration.json").stat().st_mtime_ns

    embedded.ensure_data(cfg)                                   # up to date: used as it is
    assert capsys.readouterr().out == ""
    assert (root / "calibration.json").stat().st_mtime_ns == before
