"""The benchmark under real processes: two writers on one folder, and resuming after a real signal.

Each test starts ``python -m xcatrec bench`` as its own process (a few seconds each, most of it
importing TensorFlow) on a small synthetic config and acts on it with real signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import xcatrec

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and flock")

SEEDS = [0, 1, 2, 3, 4]
CONFIG = {"seeds": SEEDS, "methods": {"popularity": {}, "itemknn": {}},
          "scenarios": [{"name": "s", "dataset": "synthetic", "split": "loo", "target_only": "itemknn",
                         "methods": ["popularity", "itemknn"], "data": {"n_users": 2000, "images": False}}]}
RUNS = {("s", m, seed) for m in ("popularity", "itemknn") for seed in SEEDS}


def _env() -> dict[str, str]:
    """The environment of a child: the same xcatrec as this test process, no TensorFlow chatter."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(xcatrec.__file__).resolve().parents[1]),
                                         *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _command(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "xcatrec", "bench", str(config), "--out-dir", str(out), *extra]


def _default_sigint() -> None:
    """In the child before exec: SIGINT back to its default. A shell that runs a job in the background
    (``make test &``, nohup) makes it ignore SIGINT, the children inherit that, and Python then never
    installs its KeyboardInterrupt handler, so the interrupt would be silently lost."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(config: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(_command(config, out, *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(), cwd=config.parent, preexec_fn=_default_sigint)


def _finish(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(_command(*args), capture_output=True, text=True, env=_env(), timeout=timeout,
                          cwd=args[0].parent)


def _runs(out: Path) -> list[tuple]:
    """(scenario, method, seed) of every finished run in ``out/records.json``, once per run saved."""
    records = json.loads((out / "records.json").read_text())
    return sorted((r["scenario"], r["method"], r["seed"]) for r in records
                  if r["kind"] == "cost" and r["metric"] == "fit_seconds")


def _wait_for(condition, process: subprocess.Popen, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"bench exited ({process.returncode}) too early: {process.stderr.read()[-2000:]}")
        if time.monotonic() > end:
            pytest.fail("bench did not get that far in time")
        time.sleep(0.005)


def _holds_lock(out: Path, pid: int) -> bool:
    try:
        return (out / ".lock").read_text().strip() == str(pid)
    except OSError:
        return False


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(CONFIG))
    return path


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []
    yield started
    for process in started:  # a failed test must not leave a stopped child behind
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
            process.wait()


def test_a_second_bench_on_the_same_folder_refuses_at_once_naming_the_first(config, tmp_path, processes):
    out = tmp_path / "out"
    first = _start(config, out)
    processes.append(first)
    # as soon as the first holds the folder (or, without a lock, has saved a run), freeze it there
    _wait_for(lambda: _holds_lock(out, first.pid) or (out / "records.json").exists(), first)
    os.kill(first.pid, signal.SIGSTOP)
    for extra in ([], ["--resume"]):
        second = _finish(config, out, *extra, timeout=120)
        assert second.returncode == 2, second.stderr[-2000:]
        assert "error:" in second.stderr and f"pid {first.pid}" in second.stderr and "fix:" in second.stderr
    os.kill(first.pid, signal.SIGCONT)
    assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    assert _runs(out) == sorted(RUNS)  # every run of the first, each once
    assert not (out / ".lock").exists()


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_resume_after_a_signal_completes_every_run_once(config, tmp_path, processes, signum):
    out = tmp_path / "out"
    first = _start(config, out)
    processes.append(first)
    _wait_for(lambda: (out / "records.json").exists(), first)  # the first run is saved
    os.kill(first.pid, signal.SIGSTOP)
    saved = _runs(out)
    assert 0 < len(saved) < len(RUNS)
    if signum == signal.SIGKILL:
        os.kill(first.pid, signal.SIGKILL)
    else:  # a SIGINT sent to a stopped process was sometimes lost: interrupt it running (Ctrl-C)
        os.kill(first.pid, signal.SIGCONT)
        os.kill(first.pid, signal.SIGINT)
    code = first.wait(timeout=120)
    assert code == (-signal.SIGKILL if signum == signal.SIGKILL else 130), first.stderr.read()[-2000:]
    if signum == signal.SIGKILL:
        assert _runs(out) == saved  # whatever was saved is intact
    else:
        assert set(saved) <= set(_runs(out)) and len(_runs(out)) < len(RUNS)
        saved = _runs(out)
    again = _finish(config, out)
    assert again.returncode == 2 and "--resume" in again.stderr  # no silent restart over the saved runs
    resumed = _finish(config, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resume: {len(saved)} runs of this config reused" in resumed.stderr
    assert _runs(out) == sorted(RUNS)
    assert not list(out.glob(".*.tmp")) and not (out / ".lock").exists()
    summary = (out / "summary.md").read_text()
    assert f"- runs: {len(RUNS)} of the {len(RUNS)} in this config" in summary
