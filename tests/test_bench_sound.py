"""The benchmark under the sound protocol: settings checked up front, searches reused, bootstrap verdicts."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from xcatrec.bench import compare_best, load_config, load_results, run_bench, searched_choices, verdict_table
from xcatrec.errors import ConfigError

CONFIG = {"seeds": [0, 1], "ks": [10], "tune": 2, "validate_users": 0,
          "methods": {"popularity": {}, "itemknn": {}, "cross-itemknn": {}},
          "scenarios": [{"name": "s", "dataset": "synthetic", "split": "loo", "data": {"n_users": 300, "rho": 1.0},
                         "methods": ["popularity", "itemknn", "cross-itemknn"], "target_only": "itemknn"}]}


def write(tmp_path, config) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sound")
    out = tmp / "out"
    run_bench(write(tmp, CONFIG), out_dir=out, verbose=False)
    return out


def test_protocol_settings_have_defaults_and_a_scenario_may_keep_the_leaks(tmp_path):
    plain = {k: v for k, v in CONFIG.items() if k not in ("tune", "validate_users")}
    config = load_config(write(tmp_path, plain))
    assert (config.tune, config.tune_scope, config.refit, config.leaks) == (None, "first-seed", True, "remove")
    config = load_config(write(tmp_path, {**CONFIG, "scenarios": [{**CONFIG["scenarios"][0], "leaks": "keep"}]}))
    assert (config.tune, config.leaks, config.scenarios[0].leaks) == (2, "remove", "keep")


@pytest.mark.parametrize("bad", [{"tune": 0}, {"tune": 1.5}, {"tune_scope": "always"}, {"refit": "yes"},
                                 {"leaks": "drop"}])
def test_bad_protocol_settings_are_refused_before_anything_runs(tmp_path, bad):
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, {**CONFIG, **bad}))
    scenario = {**CONFIG["scenarios"][0], "leaks": "sometimes"}
    with pytest.raises(ConfigError, match="leaks"):
        load_config(write(tmp_path, {**CONFIG, "scenarios": [scenario]}))


def test_every_run_is_searched_once_refit_and_stored_per_user(finished):
    records = json.loads((finished / "records.json").read_text())
    cost = [r for r in records if r["kind"] == "cost"]
    tuned = {(r["method"], r["seed"]): r["tuned"] for r in cost}
    assert tuned[("itemknn", 0)] == 2 and tuned[("itemknn", 1)] == "reused"
    assert all(r["refit"] for r in cost) and {r["leaks"] for r in cost} == {"removed"}
    assert len([r for r in records if r.get("kind") == "per-user"]) == 6  # 3 methods x 2 seeds
    assert len([r for r in records if r["kind"] == "tuning"]) == 3
    chosen = searched_choices(records, "s")
    assert set(chosen) == {"popularity", "itemknn", "cross-itemknn"}
    assert chosen["itemknn"] == json.loads(next(r["options"] for r in cost if r["method"] == "itemknn"))


def test_summary_carries_bootstrap_intervals_and_verdict_words(finished):
    records, summary, provenance = load_results(finished)
    table = verdict_table(summary, "s")
    assert table.loc["itemknn", "verdict"] == "(reference)"
    words = {"beats", "is level with", "falls below", "cannot be told apart from"}
    assert set(table.drop(index="itemknn")["verdict"]) <= words
    row = summary[(summary.method == "popularity") & (summary.protocol == "full") & (summary.metric == "ndcg")
                  & (summary.k == 10)].iloc[0]
    assert row["boot_low"] <= row["boot_rel"] <= row["boot_high"]
    assert "verdict" in (finished / "summary.md").read_text()
    best = compare_best(records, "s", ["cross-itemknn", "popularity"], ["itemknn"])
    valid = records[(records.kind == "valid") & (records.protocol == "full") & (records.metric == "ndcg")
                    & (records.k == 10)].groupby("method")["value"].mean()
    assert best["selected_by"] == {"challenger": "valid", "reference": "test"}
    assert best["challenger"] == valid[["cross-itemknn", "popularity"]].idxmax()
    assert best["verdict"] in words and best["challenger"] in best["sentence"]
    on_test = compare_best(records, "s", ["cross-itemknn", "popularity"], ["itemknn"], select="test")
    assert on_test["challenger"] == table["NDCG@10"][["cross-itemknn", "popularity"]].idxmax()
    with pytest.raises(ConfigError, match="ran in scenario"):
        compare_best(records, "s", ["cmf"], ["itemknn"])
    for bad in ({"select": "train"}, {"select_reference": "train"}):
        with pytest.raises(ConfigError, match="select"):
            compare_best(records, "s", ["popularity"], ["itemknn"], **bad)


def test_the_best_of_a_side_is_picked_on_validation_even_where_test_disagrees(finished):
    records = load_results(finished)[0]
    flipped = records.copy()
    # make popularity the better challenger on validation only: test records stay as they were
    on_valid = (flipped.kind == "valid") & (flipped.method == "popularity")
    flipped.loc[on_valid, "value"] = 1.0
    best = compare_best(flipped, "s", ["cross-itemknn", "popularity"], ["itemknn"])
    assert best["challenger"] == "popularity"
    on_test = compare_best(flipped, "s", ["cross-itemknn", "popularity"], ["itemknn"], select="test")
    assert on_test["challenger"] == compare_best(records, "s", ["cross-itemknn", "popularity"], ["itemknn"],
                                                 select="test")["challenger"]
    # the reference is the strongest on test, whatever validation says: flipping it there changes nothing
    test_means = records[records.kind == "test"].query("protocol == 'full' and metric == 'ndcg' and k == 10")
    strongest = test_means.groupby("method")["value"].mean()[["cross-itemknn", "itemknn"]].idxmax()
    weaker = ({"cross-itemknn", "itemknn"} - {strongest}).pop()
    flipped.loc[(flipped.kind == "valid") & (flipped.method == weaker), "value"] = 2.0
    assert compare_best(flipped, "s", ["popularity"], ["cross-itemknn", "itemknn"])["reference"] == strongest
    assert compare_best(flipped, "s", ["popularity"], ["cross-itemknn", "itemknn"],
                        select_reference="valid")["reference"] == weaker


def test_held_out_users_pick_the_challenger_on_some_test_users_and_report_on_the_others(finished):
    import numpy as np

    from xcatrec.evaluation.bootstrap import per_user_frame

    records = load_results(finished)[0]
    frame = per_user_frame([r for r in records.to_dict("records") if r["kind"] == "per-user"])
    challengers, references = ["cross-itemknn", "popularity"], ["itemknn"]
    for share, seed in ((0.5, 0), (0.3, 7)):
        best = compare_best(records, "s", challengers, references, select="held-out-users",
                            selection_share=share, selection_seed=seed)
        drawn = np.random.default_rng(seed).random(frame["user"].max() + 1) < share
        picked_on = frame[drawn[frame["user"]]]
        means = picked_on.groupby(["method", "seed"])["ndcg@10"].mean().groupby("method").mean()
        assert best["challenger"] == means[challengers].idxmax()
        reported = frame[~drawn[frame["user"]] & (frame["method"] == best["reference"])]
        assert best["result"].n_users == len(reported) > 0  # only the users nobody was picked on
        assert best["selected_by"]["challenger"] == "held-out-users"
    for bad in (0.0, 1.0):
        with pytest.raises(ConfigError, match="selection_share"):
            compare_best(records, "s", challengers, references, select="held-out-users", selection_share=bad)


def test_resume_reuses_the_search_instead_of_running_it_again(tmp_path, finished):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    records = json.loads((out / "records.json").read_text())
    kept = [r for r in records if not (r["method"] == "itemknn" and r["seed"] == 1)]
    (out / "records.json").write_text(json.dumps(kept))
    run_bench(write(tmp_path, CONFIG), out_dir=out, verbose=False, resume=True)
    after = pd.DataFrame(json.loads((out / "records.json").read_text()))
    redo = after[(after.method == "itemknn") & (after.seed == 1) & (after.metric == "fit_seconds")]
    assert list(redo["tuned"]) == ["reused"]
    assert len(after[after.kind == "tuning"]) == 3  # no second search


@pytest.mark.parametrize("options", [{"epochs": 1.5}, {"epochs": "abc"}, {"dim": None}, {"learning_rate": "fast"}])
def test_bench_option_values_are_checked_against_their_field_types(tmp_path, options):
    config = {**CONFIG, "methods": {"bpr-mf": options}}
    config["scenarios"] = [{**CONFIG["scenarios"][0], "methods": ["bpr-mf"], "target_only": "bpr-mf"}]
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, config))


def test_cli_tune_zero_is_one_clear_error(capsys):
    from xcatrec.cli import main

    assert main(["evaluate", "--dataset", "synthetic", "--method", "popularity", "--tune", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "fix:" in err and "Traceback" not in err


def test_a_rating_scenario_is_summarised():
    from xcatrec.bench import summarize_bench
    from xcatrec.bench_config import BenchConfig

    base = {"dataset": "d", "source": "s", "target": "t", "split": "cold-start", "scenario": "r", "k": None}
    records = [{**base, "method": m, "seed": seed, "kind": "test", "protocol": "ratings", "metric": metric,
                "value": v + seed / 100}
               for m, v in (("item-mean", 0.83), ("cmf", 0.82)) for seed in (0, 1) for metric in ("rmse", "mae")]
    config = BenchConfig.from_dict({"methods": {"item-mean": {}, "cmf": {}}, "scenarios": [
        {"name": "r", "dataset": "douban-book-music", "split": "cold-start", "protocols": ["ratings"],
         "target_only": "item-mean"}]})
    summary = summarize_bench(records, config)  # every k is None here
    assert set(summary["metric"]) == {"rmse", "mae"} and len(summary) == 4
