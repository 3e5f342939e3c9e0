"""``python -m dsanet sweep`` on both executors (issue 24): the local pool and a local Ray give the
same runs and a byte-identical ``verdicts.csv``, and a run whose Ray worker is killed in the
middle is retried by Ray, resumes from its last checkpoint and ends with the metrics of an
uninterrupted run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason='the Ray executor needs pip install ".[cluster]"')

REPO = Path(__file__).resolve().parents[1]


def sweep(tmp: Path, runs: str, out: str, *extra: str, data: Path, wait=True):
    """``python -m dsanet sweep`` in a fresh process (as a user runs it): smoke profile."""
    cmd = [sys.executable, "-m", "dsanet", "sweep", "--profile", "smoke", "--data", str(data),
           "--runs", str(tmp / runs), "--out", str(tmp / out), "--no-progress", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "RAY_USAGE_STATS_ENABLED": "0"}
    p = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    if not wait:
        return p
    out_text, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out_text
    return out_text


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The smoke profile's embedded benchmark, generated once for this module."""
    from dsanet.config import get_profile
    from dsanet.data.embedded import ensure_data

    root = tmp_path_factory.mktemp("sweep") / "data"
    ensure_data(get_profile("smoke", data_root=str(root)))
    return root


def run_metrics(runs: Path) -> dict[str, pd.DataFrame]:
    return {d.name: pd.read_csv(d / "metrics.csv") for d in sorted(runs.iterdir())
            if (d / "done.json").exists()}


def test_ray_and_local_pool_give_identical_runs_and_verdicts(tmp_path, data):
    # Table IX in smoke: 4 rows x 2 columns (k = 2, 10) x 2 seeds = 16 runs, 2 at a time
    args = ("--tables", "IX", "--seeds", "2", "--workers", "2")
    local = sweep(tmp_path, "runs_local", "out_local", *args, data=data)
    on_ray = sweep(tmp_path, "runs_ray", "out_ray", *args, "--executor", "ray", data=data)
    assert "Ray at local: 1 node(s), 2 CPUs" in on_ray
    assert "16 runs trained" in local and "16 runs trained" in on_ray
    a, b = run_metrics(tmp_path / "runs_local"), run_metrics(tmp_path / "runs_ray")
    assert list(a) == list(b) and len(a) == 16
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    verdicts = [(tmp_path / o / "tables" / "verdicts.csv").read_bytes() for o in ("out_local", "out_ray")]
    assert verdicts[0] == verdicts[1] and verdicts[0].count(b"\n") == 1 + 24   # 3 rows x 4 cells x 2 scorers
    for o in ("out_local", "out_ray"):
        assert (tmp_path / o / "figures" / "04_table_IX_forest.png").is_file()
    again = sweep(tmp_path, "runs_ray", "out_ray", *args, "--executor", "ray", data=data)
    assert "0 runs trained" in again and "Ray at" not in again   # nothing missing: no Ray started


def _ray_worker_pids(name: str) -> list[int]:
    """PIDs of the Ray workers running task ``name`` (Ray titles a busy worker ``ray::<name>``)."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if f"ray::{name}".encode() in (p / "cmdline").read_bytes():
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


def _step(path: Path) -> int | None:
    from dsanet.engine.checkpoint import load_checkpoint

    try:
        return int(load_checkpoint(path)["step"])
    except Exception:   # not written yet, or replaced while read
        return None


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds Ray workers in /proc")
def test_a_killed_ray_worker_is_retried_and_the_run_resumes_to_the_same_metrics(tmp_path, data):
    # Table IX's first row at k = 2 and 10, 200 steps, checkpoints at steps 100 and 200
    args = ("--tables", "IX", "--rows", "1", "--seeds", "1", "--steps", "200")
    p = sweep(tmp_path, "runs_ray", "out_ray", *args, "--executor", "ray", "--workers", "1",
              data=data, wait=False)
    runs, killed, t0 = tmp_path / "runs_ray", None, time.time()
    while killed is None and p.poll() is None and time.time() - t0 < 300:
        for d in runs.glob("matching-*") if runs.exists() else []:
            step = _step(d / "last.pt") if (d / "last.pt").exists() else None
            if step and step < 200 and not (d / "done.json").exists():
                pids = _ray_worker_pids(f"dsanet:{d.name}")
                if pids:
                    for pid in pids:
                        os.kill(pid, signal.SIGKILL)
                    killed = (d, step)
                    break
        time.sleep(0.05)
    out_text, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out_text
    assert killed is not None, f"no run was caught between its checkpoints:\n{out_text}"
    d, step = killed
    attempts = [json.loads(line) for line in (d / "attempts.jsonl").read_text().splitlines()]
    assert [a["resumed_from_step"] for a in attempts] == [0, step]    # retried, from last.pt
    assert attempts[0]["pid"] != attempts[1]["pid"] and attempts[1]["executor"] == "ray"
    sweep(tmp_path, "runs_local", "out_local", *args, data=data)      # uninterrupted
    a, b = run_metrics(tmp_path / "runs_local"), run_metrics(runs)
    assert list(a) == list(b) and len(a) == 2
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert (tmp_path / "out_local/tables/verdicts.csv").read_bytes() == \
        (tmp_path / "out_ray/tables/verdicts.csv").read_bytes()


def test_an_unreachable_cluster_is_one_clear_error(tmp_path, data, monkeypatch):
    # Ray's client gives up after its connection attempts (shortened here from 5-30 s each)
    monkeypatch.setenv("RAY_CLIENT_INITIAL_CONNECTION_TIMEOUT_S", "1")
    monkeypatch.setenv("RAY_CLIENT_MAX_CONNECTION_TIMEOUT_S", "1")
    p = sweep(tmp_path, "runs", "out", "--tables", "IX", "--rows", "1", "--executor", "ray",
              "--address", "ray://127.0.0.1:1", data=data, wait=False)
    text, _ = p.communicate(timeout=300)
    assert p.returncode == 2, text
    assert "dsanet sweep: error: cannot reach the Ray cluster at ray://127.0.0.1:1" in text
    assert "Traceback" not in text


def test_sweep_refuses_bad_options_before_any_work(tmp_path, data, capsys):
    from dsanet.__main__ import main

    base = ["sweep", "--profile", "smoke", "--data", str(data), "--runs", str(tmp_path / "runs"),
            "--out", str(tmp_path / "out")]
    assert main(base + ["--tables", "V,XIII"]) == 2
    assert "unknown table(s) ['XIII']" in capsys.readouterr().err
    assert main(base + ["--address", "auto"]) == 2
    assert "--address needs --executor ray" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
