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


def sound_records() -> list[dict]:
    from xcatrec.bench import RESULTS_SOUND_DIR

    return json.loads((RESULTS_SOUND_DIR / "records.json").read_text())


def test_sound_results_carry_their_protocol():
    from xcatrec.bench import RESULTS_SOUND_CONFIG, RESULTS_SOUND_DIR

    summary = (RESULTS_SOUND_DIR / "summary.md").read_text()
    assert "- command: `python -m xcatrec bench configs/bench-sound.json" in summary and "verdict" in summary
    records = sound_records()
    names = {s["name"] for s in load_config(RESULTS_SOUND_CONFIG)["scenarios"]}
    assert {r["scenario"] for r in records} <= names
    cost = [r for r in records if r["protocol"] == "cost"]
    assert cost and all(r["refit"] and r["run_key"] for r in cost)
    assert {r["leaks"] for r in cost if r["scenario"] != "elec-phone-warm-leaky"} == {"removed"}
    assert {r["leaks"] for r in cost if r["scenario"] == "elec-phone-warm-leaky"} <= {"kept"}
    assert all(r["tuned"] == "reused" or r["tuned"] > 0 for r in cost)  # every run selected with the budget
    per_user = {(r["scenario"], r["method"], r["seed"]) for r in records if r.get("kind") == "per-user"}
    assert per_user == {(r["scenario"], r["method"], r["seed"]) for r in cost
                        if "ratings" not in str(r.get("split")) and r["scenario"] != "douban-book-music-cold-0.2"}


@pytest.mark.slow
def test_one_sound_row_is_reproduced(shared_data_dir, monkeypatch):
    from xcatrec.bench import RESULTS_SOUND_CONFIG, searched_choices

    monkeypatch.setenv("XCATREC_DATA", str(shared_data_dir))
    config = load_config(RESULTS_SOUND_CONFIG)
    scenario = next(s for s in config["scenarios"] if s["name"] == "elec-phone-warm")
    stored_all = [r for r in sound_records() if r["scenario"] == "elec-phone-warm"]
    rerun = run_scenario({**scenario, "methods": ["itemknn"], "seeds": [1], "protocols": ["full"]}, config,
                         verbose=False, choices=searched_choices(stored_all, "elec-phone-warm"))
    key = lambda r: (r["metric"], r.get("k"))  # noqa: E731
    fresh = {key(r): r["value"] for r in rerun if r["protocol"] == "full" and r.get("kind") != "per-user"}
    stored = {key(r): r["value"] for r in stored_all if r["method"] == "itemknn" and r["seed"] == 1
              and r["protocol"] == "full" and r.get("kind") != "per-user"}
    assert len(stored) >= 7 and set(stored) == set(fresh)
    for k, value in stored.items():
        assert fresh[k] == pytest.approx(value, abs=1e-6), k
