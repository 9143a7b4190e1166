"""The committed benchmark results (``benchmarks/results``) that the book prints must still be what
the code produces: one row is re-run here, so a stale table cannot survive a change to the code."""

from __future__ import annotations

import json

import pytest

from xcatrec.bench import RESULTS_CONFIG as CONFIG
from xcatrec.bench import RESULTS_DIR as RESULTS
from xcatrec.bench import load_config, run_scenario


def committed_records() -> list[dict]:
    return json.loads((RESULTS / "records.json").read_text())


def test_committed_results_carry_their_provenance():
    summary = (RESULTS / "summary.md").read_text()
    for line in ("- command: `python -m xcatrec bench configs/bench-results.json", "- commit: ", "- date: "):
        assert line in summary
    records = committed_records()
    names = {s["name"] for s in load_config(CONFIG)["scenarios"]}
    assert {r["scenario"] for r in records} <= names
    for r in records:
        assert {"dataset", "split", "protocol", "method", "seed", "metric", "value"} <= set(r)
    seeds = {}
    for r in records:
        seeds.setdefault((r["scenario"], r["method"]), set()).add(r["seed"])
    assert min(len(s) for s in seeds.values()) >= 3  # every reported method ran on at least 3 seeds


@pytest.mark.slow
def test_one_committed_row_is_reproduced(shared_data_dir, monkeypatch):
    monkeypatch.setenv("XCATREC_DATA", str(shared_data_dir))
    config = load_config(CONFIG)
    scenario = next(s for s in config["scenarios"] if s["name"] == "elec-cloth-warm")
    rerun = run_scenario({**scenario, "methods": ["itemknn"], "seeds": [0]}, config, verbose=False)
    key = lambda r: (r["protocol"], r["metric"], r.get("k"))  # noqa: E731
    fresh = {key(r): r["value"] for r in rerun if r["protocol"] != "cost" and r.get("kind") != "per-user"}
    stored = {key(r): r["value"] for r in committed_records()
              if r["scenario"] == "elec-cloth-warm" and r["method"] == "itemknn" and r["seed"] == 0
              and r["protocol"] != "cost"}
    assert set(stored) <= set(fresh) and len(stored) >= 10  # fresh runs may add protocols (validation)
    for k, value in stored.items():
        assert fresh[k] == pytest.approx(value, abs=1e-6), k
