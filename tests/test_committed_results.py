"""The committed benchmark results (``benchmarks/results``) that the book prints must still be what
the code produces: one row is re-run here, so a stale table cannot survive a change to the code."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from xcatrec.bench import (RESULTS_CONFIG, RESULTS_DIR, RESULTS_SOUND_CONFIG, RESULTS_SOUND_DIR, committed,
                           load_config, load_results, run_key, run_scenario, run_settings, searched_choices)
from xcatrec.errors import ConfigError
from xcatrec.experiment import with_kind


def committed_records(folder=RESULTS_DIR) -> list[dict]:
    """The committed records as the code reads them (each with its ``kind``)."""
    return [with_kind(r) for r in json.loads((committed(folder) / "records.json").read_text())]


def test_committed_results_are_found_from_inside_the_checkout_only(tmp_path, monkeypatch):
    root = committed(RESULTS_DIR).parents[1]
    monkeypatch.chdir(root / "chapters")  # where the book runs its notebooks
    assert committed(RESULTS_SOUND_DIR) == root / RESULTS_SOUND_DIR
    assert load_results()[0].equals(load_results(root / RESULTS_DIR)[0])
    monkeypatch.chdir(tmp_path)  # e.g. an installed package used outside the repository
    with pytest.raises(ConfigError, match="benchmarks/results") as err:
        load_results()
    assert "checkout" in err.value.problem and err.value.fix


def test_committed_results_carry_their_provenance():
    summary = (committed(RESULTS_DIR) / "summary.md").read_text()
    for line in ("- command: `python -m xcatrec bench configs/bench-results.json", "- commit: ", "- date: "):
        assert line in summary
    records = committed_records()
    names = {s.name for s in load_config(committed(RESULTS_CONFIG)).scenarios}
    assert {r["scenario"] for r in records} <= names
    for r in records:
        assert {"dataset", "split", "protocol", "kind", "method", "seed", "metric", "value"} <= set(r)
    seeds = {}
    for r in records:
        seeds.setdefault((r["scenario"], r["method"]), set()).add(r["seed"])
    assert min(len(s) for s in seeds.values()) >= 3  # every reported method ran on at least 3 seeds


def test_old_records_are_read_with_their_kind():
    """The committed files predate the ``kind`` field: it comes from their ``protocol`` on reading."""
    records, summary, _ = load_results(committed(RESULTS_SOUND_DIR))
    assert set(records["kind"]) == {"test", "per-user", "valid", "cost", "tuning"}
    assert set(records[records.kind == "test"]["protocol"]) == {"full", "disencdr-replica", "ratings"}
    assert set(records[records.kind == "valid"]["protocol"]) == {"full", "ratings"}
    assert records[records.kind.isin(["cost", "tuning"])]["protocol"].isna().all()
    assert set(summary["protocol"]) == {"full", "disencdr-replica", "ratings"}  # test results only


@pytest.mark.slow
def test_one_committed_row_is_reproduced(shared_data_dir, monkeypatch):
    monkeypatch.setenv("XCATREC_DATA", str(shared_data_dir))
    config = load_config(committed(RESULTS_CONFIG))
    scenario = replace(config.scenario("elec-cloth-warm"), methods=("itemknn",), seeds=(0,))
    rerun = run_scenario(scenario, config, verbose=False)
    key = lambda r: (r["kind"], r["protocol"], r["metric"], r.get("k"))  # noqa: E731
    fresh = {key(r): r["value"] for r in rerun if r["kind"] in ("test", "valid")}
    stored = {key(r): r["value"] for r in committed_records()
              if r["scenario"] == "elec-cloth-warm" and r["method"] == "itemknn" and r["seed"] == 0
              and r["kind"] in ("test", "valid")}
    assert set(stored) <= set(fresh) and len(stored) >= 10
    assert {k[0] for k in stored} == {"test", "valid"}
    for k, value in stored.items():
        assert fresh[k] == pytest.approx(value, abs=1e-6), k


def test_sound_results_carry_their_protocol():
    summary = (committed(RESULTS_SOUND_DIR) / "summary.md").read_text()
    assert "- command: `python -m xcatrec bench configs/bench-sound.json" in summary and "verdict" in summary
    records = committed_records(RESULTS_SOUND_DIR)
    names = {s.name for s in load_config(committed(RESULTS_SOUND_CONFIG)).scenarios}
    assert {r["scenario"] for r in records} <= names
    cost = [r for r in records if r["kind"] == "cost"]
    assert cost and all(r["refit"] and r["run_key"] for r in cost)
    assert {r["leaks"] for r in cost if r["scenario"] != "elec-phone-warm-leaky"} == {"removed"}
    assert {r["leaks"] for r in cost if r["scenario"] == "elec-phone-warm-leaky"} <= {"kept"}
    assert all(r["tuned"] == "reused" or r["tuned"] > 0 for r in cost)  # every run selected with the budget
    per_user = {(r["scenario"], r["method"], r["seed"]) for r in records if r["kind"] == "per-user"}
    assert per_user == {(r["scenario"], r["method"], r["seed"]) for r in cost
                        if "ratings" not in str(r.get("split")) and r["scenario"] != "douban-book-music-cold-0.2"}


def test_the_sound_config_still_keys_the_committed_runs():
    """Every run of configs/bench-sound.json has the ``run_key`` it has in runs.json, so ``--resume``
    on the committed results reuses them (the config reads into the same settings)."""
    config = load_config(committed(RESULTS_SOUND_CONFIG))
    keys = {run_key(run_settings(s, config, m, seed)) for s in config.scenarios for m in s.methods
            for seed in s.seeds}
    assert keys == set(json.loads((committed(RESULTS_SOUND_DIR) / "runs.json").read_text()))


@pytest.mark.slow
def test_one_sound_row_is_reproduced(shared_data_dir, monkeypatch):
    monkeypatch.setenv("XCATREC_DATA", str(shared_data_dir))
    config = load_config(committed(RESULTS_SOUND_CONFIG))
    scenario = config.scenario("elec-phone-warm").part(("itemknn",), seeds=(1,), protocols=("full",))
    stored_all = [r for r in committed_records(RESULTS_SOUND_DIR) if r["scenario"] == "elec-phone-warm"]
    rerun = run_scenario(scenario, config, verbose=False, choices=searched_choices(stored_all, "elec-phone-warm"))
    key = lambda r: (r["metric"], r.get("k"))  # noqa: E731
    fresh = {key(r): r["value"] for r in rerun if r["kind"] == "test"}
    stored = {key(r): r["value"] for r in stored_all if r["method"] == "itemknn" and r["seed"] == 1
              and r["kind"] == "test" and r["protocol"] == "full"}
    assert len(stored) >= 7 and set(stored) == set(fresh)
    for k, value in stored.items():
        assert fresh[k] == pytest.approx(value, abs=1e-6), k


def test_goal_table_reads_each_goal_off_the_paired_bootstrap():
    from xcatrec.bench import Goal, goal_table

    records = committed_records(RESULTS_SOUND_DIR)
    goals = [Goal("cold phones +30%", "elec-phone-cold-0.2", ("source-only",), ("popularity",), bar=0.30),
             Goal("cold phones +1000%", "elec-phone-cold-0.2", ("source-only",), ("popularity",), bar=10.0),
             Goal("popularity beats EASE", "elec-phone-warm", ("popularity",), ("ease",)),
             Goal("a method that never ran", "elec-phone-warm", ("no-such-method",), ("ease",))]
    table = goal_table(records, goals)
    assert table["met"].tolist() == [True, False, False, None]
    first = table.iloc[0]
    assert first["low"] >= 0.30 and first["low"] <= first["relative"] <= first["high"]
    assert table.loc["popularity beats EASE", "verdict"] == "falls below"
    assert table.loc["a method that never ran", "verdict"].startswith("not run")
