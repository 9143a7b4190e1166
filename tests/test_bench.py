"""Reading a benchmark's results back: the functions the book uses to print committed results."""

from __future__ import annotations

import json

import pytest

import pandas as pd

from xcatrec.bench import load_config, load_results, negative_transfer_flags, run_bench, scenario_table
from xcatrec.errors import ConfigError
from xcatrec.method_names import METHOD_NAMES
from xcatrec.models import LEARNED_TRANSFER, METHODS, TARGET_ONLY, TRANSFER


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    config = {"seeds": [0, 1, 2], "ks": [10], "methods": {"popularity": {}, "itemknn": {}, "cross-itemknn": {}},
              "scenarios": [{"name": "tiny", "dataset": "synthetic", "split": "loo", "target_only": "itemknn",
                             "data": {"rho": 1.0, "n_users": 250, "n_source_items": 50, "n_target_items": 40}}]}
    path = out / "bench.json"
    path.write_text(json.dumps(config))
    run_bench(path, out_dir=out, verbose=False)
    return out


def test_load_results_and_scenario_table(tiny_bench):
    records, summary, provenance = load_results(tiny_bench)
    assert set(records["method"]) == {"popularity", "itemknn", "cross-itemknn"}
    assert any(line.startswith("commit: ") for line in provenance)
    assert any(line.startswith("command: ") for line in provenance)
    table = scenario_table(summary, "tiny")
    assert list(table.index) == list(table.sort_values("mean", ascending=False).index)
    assert set(table.index) == {"popularity", "itemknn", "cross-itemknn"}
    assert (table["n_seeds"] == 3).all() and (table["ci"] >= 0).all()
    assert table.loc["itemknn", "rel_vs_target_only"] == pytest.approx(0.0)
    ndcg = records[(records.metric == "ndcg") & (records.protocol == "full") & (records.method == "popularity")]
    assert table.loc["popularity", "mean"] == pytest.approx(ndcg["value"].mean())


def test_every_run_is_also_scored_on_validation_and_flagged_against_target_only(tiny_bench):
    records, summary, _ = load_results(tiny_bench)
    valid = records[(records.protocol == "valid") & (records.metric == "ndcg") & (records.k == 10)]
    assert len(valid) == 9  # 3 methods x 3 seeds, never the test split
    base = valid[valid.method == "itemknn"].set_index("seed")["value"]
    cross = valid[valid.method == "cross-itemknn"].set_index("seed")["value"]
    table = scenario_table(summary, "tiny")
    assert table.loc["cross-itemknn", "valid_seeds"] == 3
    assert table.loc["cross-itemknn", "neg_transfer_valid"] == int((cross < base).sum())
    assert pd.isna(table.loc["popularity", "valid_seeds"])  # only transfer methods are flagged
    assert "neg_valid" in (tiny_bench / "summary.md").read_text()


def test_negative_transfer_flags_count_worse_seeds_in_the_metric_direction():
    def rec(protocol, method, seed, metric, value, k=None):
        return {"protocol": protocol, "method": method, "seed": seed, "metric": metric, "k": k, "value": value}

    ranking = pd.DataFrame([rec("valid", "itemknn", s, "ndcg", v, 10) for s, v in enumerate([0.2, 0.2, 0.2])]
                           + [rec("valid", "cmf", s, "ndcg", v, 10) for s, v in enumerate([0.1, 0.3, 0.19])]
                           + [rec("full", "cmf", s, "ndcg", 0.0, 10) for s in range(3)])
    flags = negative_transfer_flags(ranking, "itemknn", [10]).set_index("method")
    assert flags.loc["cmf"].to_dict() == {"neg_transfer_valid": 2, "valid_seeds": 3}
    ratings = pd.DataFrame([rec("valid-ratings", "item-mean", s, "rmse", 1.0) for s in range(2)]
                           + [rec("valid-ratings", "emcdr", s, "rmse", v) for s, v in enumerate([0.9, 1.1])])
    flags = negative_transfer_flags(ratings, "item-mean", [10]).set_index("method")
    assert flags.loc["emcdr"].to_dict() == {"neg_transfer_valid": 1, "valid_seeds": 2}  # lower RMSE is better
    assert negative_transfer_flags(ranking, "bpr-mf", [10]).empty  # no target-only runs: nothing to flag


@pytest.mark.parametrize("bad", [-1, 2.5, "all", True])
def test_bad_validate_users_is_a_clear_error(tmp_path, bad):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"methods": {}, "scenarios": [], "validate_users": bad}))
    with pytest.raises(ConfigError, match="validate_users"):
        load_config(path)


def test_missing_results_and_unknown_scenario_are_clear_errors(tiny_bench, tmp_path):
    with pytest.raises(ConfigError, match="records.json"):
        load_results(tmp_path)
    _, summary, _ = load_results(tiny_bench)
    with pytest.raises(ConfigError, match="nope"):
        scenario_table(summary, "nope")


def test_method_groups_cover_the_registry():
    assert set(LEARNED_TRANSFER) <= set(TRANSFER)
    assert not set(TARGET_ONLY) & set(TRANSFER)
    assert set(METHODS) == set(TARGET_ONLY) | set(TRANSFER) | {"seed-cnn"}  # seed-cnn: an item classifier
    assert set(METHOD_NAMES) == set(METHODS)


def test_the_parser_does_not_import_tensorflow():
    """``--help`` must answer at once: building the parser must not import TensorFlow."""
    import subprocess
    import sys

    probe = subprocess.run([sys.executable, "-c", "import sys\nfrom xcatrec.cli import build_parser\n"
                            "build_parser()\nassert 'tensorflow' not in sys.modules, 'tensorflow imported'"],
                           capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
