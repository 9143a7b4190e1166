"""The sound protocol's selection steps: search spaces, the equal-budget search, and the refit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xcatrec.testing import make_tiny_dataset
from xcatrec.data import merge_valid
from xcatrec.errors import ConfigError, DataError
from xcatrec.experiment import RunSpec, quality_records, run_one, run_seeds
from xcatrec.models import METHODS, make_model
from xcatrec.core.base import validated_best_epoch
from xcatrec.core.search import Choice, Int, check_space
from xcatrec.tuning import check_trials, tune


def test_every_declared_space_names_real_config_fields():
    for name, cls in METHODS.items():
        check_space(cls.search_space, cls.config_class)  # raises on a typo
        model = cls(make_tiny_dataset().sizes)
        for field_name, (_, patience) in model.refit_epochs.items():
            fields = cls.config_class.__dataclass_fields__
            assert field_name in fields and patience in fields, name
    assert METHODS["itemknn"].search_space and METHODS["bpr-mf"].search_space
    assert "lam" in METHODS["shared-bottom"].search_space  # the article's lambda is tuned


def test_check_space_rejects_unknown_fields_and_empty_ranges():
    cfg = METHODS["itemknn"].config_class
    with pytest.raises(ConfigError, match="not a field"):
        check_space({"nope": Int(1, 2)}, cfg)
    with pytest.raises(ConfigError, match="empty"):
        check_space({"k": Int(5, 1)}, cfg)
    with pytest.raises(ConfigError, match="no values"):
        check_space({"weighting": Choice(())}, cfg)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True, None])
def test_bad_budgets_are_clear_errors(bad):
    with pytest.raises(ConfigError, match="trials"):
        check_trials(bad)


def test_search_starts_from_the_defaults_and_never_does_worse_on_validation():
    ds = make_tiny_dataset(n_users=80)
    result, model = tune("itemknn", ds, trials=4, seed=0)
    assert result.n_trials == 4
    first = result.trials[0]["params"]
    assert first == {"k": 100, "shrink": 100.0, "alpha": 0.5, "weighting": "none"}
    assert result.value == max(t["value"] for t in result.trials)
    assert result.value >= result.trials[0]["value"]
    for name, value in result.trials[int(np.argmax([t["value"] for t in result.trials]))]["params"].items():
        assert result.options[name] == value
    assert getattr(model.config, "k") == result.options["k"]  # the returned model is the best trial's


def test_search_is_deterministic_given_the_seed():
    ds = make_tiny_dataset(n_users=80)
    a, _ = tune("itemknn", ds, trials=3, seed=1)
    b, _ = tune("itemknn", ds, trials=3, seed=1)
    assert [t["params"] for t in a.trials] == [t["params"] for t in b.trials]


def test_a_method_without_a_space_spends_one_trial():
    result, _ = tune("popularity", make_tiny_dataset(), trials=5)
    assert result.n_trials == 1


def test_search_needs_a_validation_split():
    ds = merge_valid(make_tiny_dataset())
    with pytest.raises(DataError, match="validation"):
        tune("itemknn", ds, trials=2)


def test_best_epoch_is_read_from_the_validated_phase():
    single = {"loss": [1, 0.5, 0.4], "valid_epoch": [1.0, 2.0, 3.0], "valid_ndcg@10": [0.1, 0.3, 0.2]}
    assert validated_best_epoch(single) == 2
    multi = {"source/loss": [1.0], "target/valid_epoch": [2.0, 4.0], "target/valid_ndcg@10": [0.2, 0.2],
             "target/loss": [1, 1, 1, 1]}
    assert validated_best_epoch(multi, "target") == 2  # first on ties
    assert validated_best_epoch(multi, "source") == 0
    assert validated_best_epoch({}, "") == 0


def test_refit_options_freeze_the_chosen_epochs():
    ds = make_tiny_dataset()
    model = make_model("bpr-mf", ds.sizes, epochs=6, patience=2, dim=8, batch_size=64, seed=0)
    model.fit(ds)
    frozen = model.refit_options()
    assert frozen["patience"] == 0
    assert frozen["epochs"] == validated_best_epoch(model.report.history) >= 1
    knn = make_model("itemknn", ds.sizes)
    knn.fit(ds)
    assert knn.refit_options() == {}
    with pytest.raises(ConfigError, match="not been trained"):
        make_model("itemknn", ds.sizes).refit_options()


def test_cross_itemknn_refit_keeps_the_weight_validation_chose():
    ds = make_tiny_dataset()
    model = make_model("cross-itemknn", ds.sizes, source_weights=(0.0, 1.0, 4.0))
    model.fit(ds)
    assert model.refit_options() == {"source_weight": model.source_weight, "source_weights": ()}


def test_merge_valid_moves_validation_rows_back():
    ds = make_tiny_dataset()
    merged = merge_valid(ds)
    assert len(merged.target.train) == len(ds.target.train) + len(ds.target.valid)
    assert len(merged.target.valid) == 0 and len(merged.target.test) == len(ds.target.test)
    assert merged.info["refit"] is True


def test_refit_ranks_test_with_the_full_known_history():
    ds = make_tiny_dataset(n_users=80)
    refit = {r["metric"]: r["value"] for r in quality_records(run_one(ds, RunSpec("itemknn"), 0)[0])
             if r["k"] == 10}
    plain = {r["metric"]: r["value"] for r in
             quality_records(run_one(ds, RunSpec("itemknn"), 0, refit=False)[0]) if r["k"] == 10}
    model = make_model("itemknn", ds.sizes)
    model.fit(merge_valid(ds))
    from xcatrec.evaluation import evaluate

    direct = evaluate(model, merge_valid(ds), ks=(10,))
    assert refit["ndcg"] == pytest.approx(direct["ndcg@10"], abs=1e-12)
    assert refit["ndcg"] != plain["ndcg"]


def test_run_one_labels_records_with_the_protocol_choices():
    ds = make_tiny_dataset()
    records, _ = run_one(ds, RunSpec("itemknn"), 0, tune=2)
    test = quality_records(records)
    assert {r["refit"] for r in test} == {True} and {r["tuned"] for r in test} == {2}
    chosen = json.loads(test[0]["options"])
    assert set(chosen) >= {"k", "shrink", "alpha", "weighting"}
    tuning = [r for r in records if r["kind"] == "tuning"]
    assert len(tuning) == 1 and len(tuning[0]["trials"]) == 2
    cost = {r["metric"]: r["value"] for r in records if r["kind"] == "cost"}
    assert cost["tune_trials"] == 2 and cost["tune_seconds"] > 0
    per_user = [r for r in records if r.get("kind") == "per-user"]
    assert len(per_user) == 1 and per_user[0]["n_users"] == len(np.unique(ds.target.test.users))


def test_search_once_then_reuse_the_choice_on_other_seeds():
    ds = make_tiny_dataset()
    records = run_seeds(lambda seed: ds, [RunSpec("itemknn")], [0, 1], tune=2)
    tuned = {r["seed"]: r["tuned"] for r in quality_records(records)}
    assert tuned == {0: 2, 1: "reused"}
    options = {r["seed"]: r["options"] for r in quality_records(records)}
    assert options[0] == options[1]
    with pytest.raises(ConfigError, match="tune_scope"):
        run_seeds(lambda seed: ds, [RunSpec("itemknn")], [0], tune=2, tune_scope="sometimes")


def test_replica_protocol_is_labelled_optimistic_and_selects_on_test():
    ds = make_tiny_dataset(n_users=80)
    records, _ = run_one(ds, RunSpec("cross-itemknn", {"source_weights": (0.0, 4.0)},
                                     protocols=("full", "disencdr-replica")), 0)
    replica = [r for r in records if r["protocol"] == "disencdr-replica"]
    assert replica and all(r.get("optimistic") for r in replica)
    assert not any(r.get("optimistic") for r in records if r["protocol"] == "full")


def test_options_given_are_fixed_and_not_searched():
    result, model = tune("itemknn", make_tiny_dataset(n_users=80), trials=3, options={"k": 7, "weighting": "bm25"})
    assert all(set(t["params"]) == {"shrink", "alpha"} for t in result.trials)
    assert result.options["k"] == 7 and model.config.k == 7 and model.config.weighting == "bm25"
