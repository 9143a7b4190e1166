"""Tidy records, intervals over seeds, paired tests and the Markdown table, against hand-computed values."""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from xcatrec.errors import ConfigError, DataError
from xcatrec.evaluation import best_versus, paired_user_test, records, summarize, to_markdown

LABELS = dict(dataset="amazon", source="electronics", target="clothing", split="published", protocol="full")


def _runs(method: str, values: list[float], metric: str = "ndcg@10", seeds=None) -> list[dict]:
    seeds = range(len(values)) if seeds is None else seeds
    return [r for s, v in zip(seeds, values) for r in records({metric: v}, method=method, seed=s, **LABELS)]


def test_records_split_metric_names_and_carry_labels():
    out = records({"hr@10": 0.25, "ndcg@20": 0.125, "mrr": 0.5}, method="bpr", seed=3, dataset="amazon",
                  beta=0.5)
    assert [(r["metric"], r["k"], r["value"]) for r in out] == [("hr", 10, 0.25), ("ndcg", 20, 0.125),
                                                               ("mrr", None, 0.5)]
    first = out[0]
    assert first["method"] == "bpr" and first["seed"] == 3 and first["dataset"] == "amazon"
    assert first["source"] is None and first["protocol"] is None  # missing labels are None
    assert first["beta"] == 0.5  # extra label kept
    with pytest.raises(DataError):
        records({"hr@ten": 1.0})


def test_t_interval_by_hand():
    # [1, 2, 3]: mean 2, sd 1, se 1/sqrt(3); t(0.975, df=2) = 4.302653 -> half-width 2.484138
    summary = summarize(_runs("a", [1.0, 2.0, 3.0]))
    row = summary.iloc[0]
    assert row["mean"] == 2.0 and row["n_seeds"] == 3
    assert row["ci_low"] == pytest.approx(2 - 2.484138, abs=1e-6)
    assert row["ci_high"] == pytest.approx(2 + 2.484138, abs=1e-6)
    assert row["metric"] == "ndcg" and row["k"] == 10 and row["dataset"] == "amazon"
    assert "delta" not in summary.columns


def test_one_seed_has_no_interval():
    row = summarize(_runs("a", [0.3])).iloc[0]
    assert row["mean"] == 0.3 and row["n_seeds"] == 1
    assert math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])


def test_paired_t_test_against_baseline_by_hand():
    # differences per seed: 0.5, 1.0, 1.0 -> mean 5/6, sd sqrt(1/12), t = (5/6) / (sqrt(1/12)/sqrt(3)) = 5;
    # two-sided p with 2 degrees of freedom = 1 - t / sqrt(2 + t^2) = 1 - 5 / sqrt(27) = 0.037750
    recs = _runs("ours", [1.0, 2.0, 3.0]) + _runs("base", [2.0, 0.5, 1.0], seeds=[2, 0, 1])  # seeds shuffled
    summary = summarize(recs, baseline="base").set_index("method")
    ours = summary.loc["ours"]
    assert ours["delta"] == pytest.approx(2.0 - 3.5 / 3)
    assert ours["rel_delta"] == pytest.approx((2.0 - 3.5 / 3) / (3.5 / 3))
    assert ours["p_value"] == pytest.approx(1 - 5 / math.sqrt(27), abs=1e-9)
    assert ours["p_value"] == pytest.approx(sps.ttest_rel([1.0, 2.0, 3.0], [0.5, 1.0, 2.0]).pvalue)
    base = summary.loc["base"]
    assert base["delta"] == 0.0 and math.isnan(base["p_value"])


def test_groups_are_compared_separately_and_unmatched_seeds_dropped():
    recs = (_runs("ours", [0.2, 0.4], "hr@10") + _runs("base", [0.1, 0.1], "hr@10")
            + _runs("ours", [0.5, 0.6, 0.7], "mrr") + _runs("base", [0.5], "mrr"))
    summary = summarize(pd.DataFrame(recs), baseline="base")
    assert len(summary) == 4
    hr = summary[(summary["metric"] == "hr") & (summary["method"] == "ours")].iloc[0]
    assert hr["delta"] == pytest.approx(0.2)
    mrr_row = summary[(summary["metric"] == "mrr") & (summary["method"] == "ours")].iloc[0]
    assert mrr_row["delta"] == pytest.approx(0.1) and math.isnan(mrr_row["p_value"])  # one common seed
    assert pd.isna(mrr_row["k"])


def test_summarize_rejects_bad_input():
    with pytest.raises(DataError, match="seed"):
        summarize(_runs("a", [1.0]) + _runs("a", [2.0]))
    with pytest.raises(ConfigError, match="Baseline"):
        summarize(_runs("a", [1.0]), baseline="nope")
    with pytest.raises(ConfigError, match="column"):
        summarize([{"value": 1.0}])
    with pytest.raises(ConfigError, match="quality_records"):
        summarize([{**r, "kind": "valid"} for r in _runs("a", [1.0])] + [{**r, "kind": "test"} for r in _runs("a", [2.0])])


def test_paired_user_test_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.random(50)
    b = a - 0.1 + 0.2 * rng.random(50)
    stat, p = paired_user_test(a, b)
    expected = sps.wilcoxon(a, b)
    assert stat == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue)
    assert paired_user_test(a, a) == (0.0, 1.0)


def test_paired_user_test_aligns_users():
    a = pd.DataFrame({"user": [0, 1, 2, 3, 4, 5, 6], "ndcg@10": [0.1, 0.5, 0.3, 0.9, 0.2, 0.4, 0.8]})
    b = pd.DataFrame({"user": [6, 5, 4, 3, 2, 1, 9], "ndcg@10": [0.2, 0.1, 0.3, 0.1, 0.0, 0.7, 0.5]})
    res = paired_user_test(a, b, metric="ndcg@10")
    users = [1, 2, 3, 4, 5, 6]  # user 0 and 9 are not in both
    x = a.set_index("user").loc[users, "ndcg@10"].to_numpy()
    y = b.set_index("user").loc[users, "ndcg@10"].to_numpy()
    assert res.p_value == pytest.approx(sps.wilcoxon(x, y).pvalue)
    with pytest.raises(ConfigError):
        paired_user_test(a, b)
    with pytest.raises(DataError):
        paired_user_test([1.0, 2.0], [1.0])


def test_to_markdown_without_tabulate(monkeypatch):
    monkeypatch.setitem(sys.modules, "tabulate", None)  # importing tabulate would now fail
    recs = _runs("ours", [1.0, 2.0, 3.0]) + _runs("base", [0.5, 1.0, 2.0]) + _runs("ours", [0.5], "mrr")
    text = to_markdown(summarize(recs, baseline="base"))
    lines = text.strip().splitlines()
    assert lines[0] == ("| dataset | source | target | split | protocol | metric | method | mean ± 95% CI | seeds "
                        "| Δ vs baseline | rel. Δ | p |")
    assert lines[1].count("---") == 12
    assert lines[2] == ("| amazon | electronics | clothing | published | full | ndcg@10 | ours | 2.0000 ± 2.4841 "
                        "| 3 | +0.8333 | +71.4% | 0.038 |")
    assert lines[3].endswith("| ndcg@10 | base | 1.1667 ± 1.8973 | 3 | (baseline) |  |  |")  # sd 0.763763
    assert "| mrr | ours | 0.5000 | 1 |" in lines[4]  # one seed: no interval; no baseline in that group
    assert len(lines) == 5
    with pytest.raises(ConfigError):
        to_markdown(pd.DataFrame({"x": [1]}))


def _grid(values: dict[str, list[float]], metric="ndcg", k=10, protocol="full") -> list[dict]:
    return [{"method": m, "seed": s, "metric": metric, "k": k, "protocol": protocol, "value": v}
            for m, vs in values.items() for s, v in enumerate(vs)]


def test_best_versus_picks_the_best_of_each_side_and_tests_them_paired():
    runs = _grid({"pop": [0.10, 0.11, 0.12], "knn": [0.20, 0.21, 0.23],
                  "cmf": [0.25, 0.27, 0.28], "emcdr": [0.15, 0.16, 0.15]})
    runs += _grid({"cmf": [9.0, 9.0, 9.0]}, metric="hr")  # other metrics are ignored
    got = best_versus(runs, ["cmf", "emcdr", "absent"], ["pop", "knn"])
    assert (got["challenger"], got["reference"]) == ("cmf", "knn")
    assert got["challenger_mean"] == pytest.approx(0.8 / 3) and got["reference_mean"] == pytest.approx(0.64 / 3)
    assert got["rel_delta"] == pytest.approx(0.16 / 0.64)
    # differences 0.05, 0.06, 0.05: paired t = mean / (sd / sqrt(3))
    d = np.array([0.05, 0.06, 0.05])
    t = d.mean() / (d.std(ddof=1) / np.sqrt(3))
    assert got["p_value"] == pytest.approx(2 * sps.t.sf(t, 2))
    assert got["wins"] and got["n_seeds"] == 3


def test_best_versus_lower_is_better_and_clear_errors():
    runs = _grid({"item-mean": [0.83, 0.84, 0.82], "cmf": [0.85, 0.86, 0.84]}, metric="rmse", k=None,
                 protocol="ratings")
    got = best_versus(runs, ["cmf"], ["item-mean"], metric="rmse", k=None, protocol="ratings", lower_is_better=True)
    assert got["rel_delta"] < 0 and not got["wins"]  # cmf's RMSE is higher: worse
    with pytest.raises(ConfigError, match="challenger"):
        best_versus(runs, ["dann"], ["item-mean"], metric="rmse", k=None, protocol="ratings")
