"""The command line people expect: one-line user errors with exit status 2, --debug, --version,
--config / --print-config, config.json, $DSANET_PROFILE, help printed once, train --steps N
continuing a finished run, a TensorBoard log."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pandas as pd
import pytest
import torch

from dsanet.__main__ import COMMANDS, build_parser, main

SMOKE = ["--profile", "smoke", "--set", "face_size=16", "--set", "sampling=tuple",
         "--set", "batch_size=8", "--set", "eval_ks=2",
         "--set", "bootstrap=20", "--set", "eval_tuples=20", "--no-progress"]


def run(argv, capsys) -> tuple[int, str]:
    """Exit status and stderr of ``python -m dsanet argv`` (argparse exits via SystemExit)."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def assert_one_line(err: str, *words) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error:" in lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture
def small_run(tiny_tree, tmp_path):
    """A finished 2-step smoke run on the tiny tree: (run folder, common args)."""
    torch.set_num_threads(1)
    args = [*SMOKE, "--data", str(tiny_tree.root), "--set", f"cache_dir={tmp_path / 'cache'}"]
    run_dir = tmp_path / "run"
    assert main(["train", *args, "--out", str(run_dir), "--steps", "2"]) == 0
    return run_dir, args


# ----------------------------------------------------------------------------- user errors

def test_user_errors_are_one_line_with_status_2(tiny_tree, tmp_path, capsys):
    bench = tmp_path / "bench"
    (bench / "voices").mkdir(parents=True)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [
        (["train", "--profile", "smoke", "--out", str(tmp_path / "r"), "--set", "nosuch=1"],
         ["nosuch"]),
        (["train", "--profile", "smoke", "--out", str(tmp_path / "r"), "--set", "lam=abc"],
         ["lam=abc", "float"]),
        (["train", "--profile", "smoke", "--out", str(tmp_path / "r"), "--set", "k"],
         ["key=value"]),
        (["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "e")],
         ["none.pt", "no such checkpoint"]),
        (["train", "--profile", "paper", "--data", str(tmp_path / "nodata"),
          "--out", str(tmp_path / "r")], ["nodata", "not found"]),
        (["protocols", "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "l")],
         ["nodata"]),
        (["generate", "--preset", "smoke", "--out", str(bench)], ["already holds a benchmark"]),
        (["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(a_file)],
         ["file.txt", "not a folder"]),
        (["protocols", "--data", str(tiny_tree.root), "--out", str(tmp_path / "l"), "--n", "0"],
         ["--n", "at least 1"]),
        (["train", "--bogus"], ["unrecognized arguments: --bogus"]),
        (["match", "--checkpoint", "x.pt", "--voice", "a.wav"], ["--faces"]),
        (["embed", "--checkpoint", "x.pt", "--out", str(tmp_path / "e.txt")], [".csv or .npz"]),
    ]
    for argv, words in cases:
        code, err = run(argv, capsys)
        assert code == 2, (argv, err)
        assert_one_line(err, *words)
    (bench / "voices").rmdir()


def test_config_file_errors_and_validation(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("lam: 2\nno_such_field: 3\n")
    out_of_range = tmp_path / "range.json"
    out_of_range.write_text('{"lam": -1}')
    for path, words in ((bad, ["bad.json", "cannot parse"]),
                        (unknown, ["unknown.yaml", "no_such_field"]),
                        (tmp_path / "absent.json", ["absent.json", "not found"]),
                        (out_of_range, ["lam"])):
        code, err = run(["train", "--profile", "smoke", "--config", str(path), "--print-config"],
                        capsys)
        assert code == 2
        assert_one_line(err, *words)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="none.pt"):
        main(["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "e"),
              "--debug"])


def test_the_installed_command_exits_2_without_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dsanet", "train", "--profile", "smoke",
                           "--out", str(tmp_path / "r"), "--set", "lam=abc"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert_one_line(proc.stderr, "lam=abc")


# ----------------------------------------------------------------------------- options

def test_version(capsys):
    from dsanet import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"dsanet {__version__}"


def test_print_config_and_config_file_precedence(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DSANET_PROFILE", raising=False)
    cfg_file = tmp_path / "c.json"
    cfg_file.write_text(json.dumps({"profile": "smoke", "lam": 3.5, "k": 3,
                                    "lr_milestones": [4, 8]}))
    assert main(["train", "--config", str(cfg_file), "--set", "lam=4", "--steps", "7",
                 "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    # profile from the file; --set beats the file; --steps beats both; lists become tuples
    assert (cfg["profile"], cfg["lam"], cfg["k"], cfg["steps"], cfg["lr_milestones"]) == (
        "smoke", 4.0, 3, 7, [4, 8])
    assert cfg["face_size"] == 32                                       # the smoke profile's
    yml = tmp_path / "c.yaml"
    yml.write_text("mu: 1.5\n")
    assert main(["train", "--profile", "quick", "--config", str(yml), "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["profile"], cfg["mu"], cfg["face_size"]) == ("quick", 1.5, 48)


def test_profile_env_is_honoured_by_train_and_reproduce(monkeypatch, capsys):
    monkeypatch.setenv("DSANET_PROFILE", "smoke")
    assert main(["train", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["profile"] == "smoke"
    args = build_parser("reproduce").parse_args(["reproduce"])
    assert args.profile == "smoke"
    monkeypatch.setenv("DSANET_PROFILE", "paper")
    assert build_parser("reproduce").parse_args(["reproduce"]).profile == "paper"


def test_help_is_complete_and_shows_each_default_once():
    for name in COMMANDS:
        parser = build_parser(name)
        sub = next(a for a in parser._actions if isinstance(getattr(a, "choices", None), dict))
        p = sub.choices[name]
        for action in p._actions:
            assert action.help, (name, action.option_strings)
        text = " ".join(p.format_help().split())
        assert not re.search(r"\(default[^)]*\)\s*\(default", text), name
        for action in p._actions:
            h = p.formatter_class(prog="x")._get_help_string(action) or ""
            shown = h % {**vars(action), "prog": "x"} if "%(" in h else h
            assert shown.lower().count("(default") <= 1, (name, action.option_strings, shown)


# ----------------------------------------------------------------------------- runs

def test_train_writes_config_and_tensorboard_then_continues_to_more_steps(small_run, capsys):
    run_dir, args = small_run
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["steps"] == 2 and saved["profile"] == "smoke" and saved["face_size"] == 16
    pytest.importorskip("tensorboard")
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))

    capsys.readouterr()
    assert main(["train", *args, "--out", str(run_dir), "--steps", "3"]) == 0
    assert re.search(r"INFO .*resumed .*last\.pt at step 2", capsys.readouterr().err)  # logging on
    hist = pd.read_csv(run_dir / "history.csv")
    assert hist["step"].tolist() == [1, 2, 3]
    assert json.loads((run_dir / "metrics.json").read_text())["step"] == 3
    assert json.loads((run_dir / "config.json").read_text())["steps"] == 3
    state = torch.load(run_dir / "last.pt", weights_only=True)
    assert state["step"] == 3 and state["config"]["steps"] == 3
    capsys.readouterr()

    assert main(["train", *args, "--out", str(run_dir), "--steps", "3", "--quiet"]) == 0
    assert "resumed" not in capsys.readouterr().err                  # --quiet: warnings only
    code, err = run(["train", *args, "--out", str(run_dir), "--steps", "1"], capsys)
    assert code == 2
    assert_one_line(err, "cannot resume", "steps: 3 -> 1")
    assert json.loads((run_dir / "config.json").read_text())["steps"] == 3   # left as it was


def test_evaluate_out_pointing_at_a_file_fails_before_any_work(small_run, tmp_path, capsys):
    run_dir, _ = small_run
    target = tmp_path / "metrics.txt"
    target.write_text("keep")
    code, err = run(["evaluate", "--checkpoint", str(run_dir / "best.pt"), "--out", str(target)],
                    capsys)
    assert code == 2 and target.read_text() == "keep"
    assert_one_line(err, "metrics.txt", "not a folder")
