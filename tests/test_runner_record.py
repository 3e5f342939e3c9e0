"""The reproduction's record (``run_info.json``) across a partial re-run (``reproduce --only``):
the total and each notebook's time of the full run are kept beside the latest times."""
from __future__ import annotations

import json

from dsanet.runner import _merge_record, write_readme


def record(command, started, times, total):
    return {"command": command, "started": started, "profile": "quick", "versions": {},
            "notebooks": [{"notebook": nb, "status": "ok", "wall_s": w} for nb, w in times.items()],
            "total_wall_s": total}


def test_a_partial_rerun_keeps_the_full_runs_total_and_times(tmp_path):
    (tmp_path / "tables").mkdir()
    path = tmp_path / "run_info.json"
    _merge_record(path, record("python -m dsanet reproduce", "T0", {"00_a.ipynb": 60.0, "01_b.ipynb": 1900.0}, 1961.0))
    _merge_record(path, record("python -m dsanet reproduce --only 01", "T1", {"01_b.ipynb": 9.5}, 10.0))
    _merge_record(path, record("python -m dsanet reproduce --only 00", "T2", {"00_a.ipynb": 11.0}, 11.2))
    info = json.loads(path.read_text())
    assert info["total_wall_s"] == 1961.0 and info["started"] == "T0"
    assert info["rerun_wall_s"] == 11.2                   # the latest re-run's own time
    assert info["first_run"]["notebooks"] == {"00_a.ipynb": 60.0, "01_b.ipynb": 1900.0}
    assert [e["wall_s"] for e in info["notebooks"]] == [11.0, 9.5]
    assert info["rerun"]["notebooks"] == ["00_a.ipynb", "01_b.ipynb"]
    text = write_readme(tmp_path).read_text()
    assert "| notebook | status | full run (s) | latest run (s) |" in text
    assert "| [00_a.ipynb](00_a.ipynb) | ok | 60.0 | 11.0 |" in text
    assert "| [01_b.ipynb](01_b.ipynb) | ok | 1900.0 | 9.5 |" in text
    _merge_record(path, record("python -m dsanet reproduce", "T3", {"00_a.ipynb": 59.0, "01_b.ipynb": 1899.0}, 1958.4))
    info = json.loads(path.read_text())    # a new full run starts a new record
    assert info["total_wall_s"] == 1958.4 and "rerun" not in info and "first_run" not in info
    assert "| notebook | status | wall time (s) |" in write_readme(tmp_path).read_text()
