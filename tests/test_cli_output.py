"""What a newcomer reads on the terminal (issue 23, item 7): ``generate --quiet`` prints one summary
line, not the calibration; ``reproduce`` prints no kernel-transport warning and reports a failed
notebook with its time, the first line of its error and where its traceback is."""
from __future__ import annotations

import json
import re

import pytest

from dsanet.__main__ import main

SMALL = ["--preset", "smoke", "--n-identities", "8", "--voices-per-identity", "1",
         "--faces-per-identity", "1"]


def test_generate_quiet_prints_one_summary_line(tmp_path, capsys):
    assert main(["generate", *SMALL, "--out", str(tmp_path / "q"), "--quiet"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == 1 and "{" not in out
    assert re.fullmatch(rf"wrote {re.escape(str(tmp_path / 'q'))} in \d+\.\d s: 8 identities "
                        r"\(train \d+, val \d+, test \d+\); 1:2 V-F on test: oracle [\d.]+, "
                        r"gender-only [\d.]+, chance 0\.500 \(calibration\.json\)", lines[0]), lines[0]
    # the global --quiet (before the command) is the same
    assert main(["--quiet", "generate", *SMALL, "--out", str(tmp_path / "g")]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


def test_generate_without_quiet_prints_the_calibration_then_the_line(tmp_path, capsys):
    assert main(["generate", *SMALL, "--out", str(tmp_path / "v")]) == 0
    out = capsys.readouterr().out
    body, last = out[:out.rindex("}") + 1], out.strip().splitlines()[-1]
    assert json.loads(body) == json.loads((tmp_path / "v" / "calibration.json").read_text())
    assert last.startswith(f"wrote {tmp_path / 'v'} in ")


# ----------------------------------------------------------------------------- reproduce

def _notebook(path, code: str) -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_code_cell("profile = 'smoke'\nout_dir = None",
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, str(path))


@pytest.mark.slow
def test_reproduce_reports_a_failed_notebook_and_no_transport_warning(tmp_path, capfd,
                                                                      monkeypatch):
    pytest.importorskip("papermill")
    from dsanet import runner

    for name in ("DSANET_PROFILE", "MPLBACKEND", "PYTHONHASHSEED"):   # run_notebooks sets them
        monkeypatch.setenv(name, "smoke" if name == "DSANET_PROFILE" else "0")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    _notebook(root / "notebooks" / "00_fine.ipynb", "print('fine')")
    _notebook(root / "notebooks" / "01_broken.ipynb",
              "import time\ntime.sleep(0.2)\nraise ValueError('the meta CSV has no Set column\\n"
              "second line')")
    monkeypatch.chdir(root)
    record = runner.run_notebooks("smoke", root / "out", root=root)
    captured = capfd.readouterr()
    everything = captured.out + captured.err
    assert "without encryption" not in everything                       # the kernels' warning
    assert "[reproduce] 00_fine.ipynb: ok" in captured.out
    line = next(x for x in captured.out.splitlines() if "01_broken.ipynb failed" in x)
    m = re.fullmatch(r"\[reproduce\] 01_broken\.ipynb failed after (\d+\.\d) s: ValueError: the "
                     r"meta CSV has no Set column; traceback in (\S+)", line)
    assert m, line
    assert float(m.group(1)) >= 0.2
    executed = root / m.group(2)
    assert executed == root / "out" / "01_broken.ipynb" and "Traceback" in executed.read_text()
    failed = record["notebooks"][1]
    assert failed["status"] == "failed" and failed["wall_s"] >= 0.2
    assert failed["error_line"] == "ValueError: the meta CSV has no Set column"


def test_failure_message_without_an_executed_copy(tmp_path):
    from dsanet import runner

    msg = runner.failure_message("03_x.ipynb", 1.26, RuntimeError("\nNo such kernel named py9\n"),
                                 tmp_path / "03_x.ipynb")
    assert msg == (f"03_x.ipynb failed after 1.3 s: RuntimeError: No such kernel named py9; no "
                   f"executed copy was written ({tmp_path / '03_x.ipynb'})")
