"""Ranking and rating metrics against values computed by hand.

The three users below are used throughout (0-based tie-aware ranks, worked out in the comments):

- user A, scores [0.9, 0.8, 0.8, 0.7, 0.5, 0.5, 0.5, 0.1], positives at 2 and 5:
  item 2 has one higher score (0.9) and one tie (item 1): rank 1 + 0.5 = 1.5;
  item 5 has four higher scores and two ties (items 4, 6): rank 4 + 1 = 5.0.
- user B, scores [0.3, 0.3, 0.3, 0.3], positive at 0: three ties, rank 1.5.
- user C, scores [0.2, 0.9, 0.4, 0.6, 0.6], positive at 0: four higher, rank 4.0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from xcatrec.errors import ConfigError, DataError
from xcatrec.evaluation import (UserRanks, auc, f1, hit_rate, mae, mrr, ndcg, precision, ranking_metrics, recall,
                                rmse, tie_aware_ranks)

SCORES = {"A": [0.9, 0.8, 0.8, 0.7, 0.5, 0.5, 0.5, 0.1], "B": [0.3, 0.3, 0.3, 0.3],
          "C": [0.2, 0.9, 0.4, 0.6, 0.6]}
POSITIVES = {"A": [2, 5], "B": [0], "C": [0]}


@pytest.fixture
def ranks() -> UserRanks:
    return UserRanks.from_lists([[1.5, 5.0], [1.5], [4.0]], n_candidates=[8, 4, 5])


def test_tie_aware_ranks_by_hand():
    assert tie_aware_ranks(SCORES["A"], POSITIVES["A"]).tolist() == [1.5, 5.0]
    assert tie_aware_ranks(SCORES["B"], POSITIVES["B"]).tolist() == [1.5]
    assert tie_aware_ranks(SCORES["C"], POSITIVES["C"]).tolist() == [4.0]
    assert tie_aware_ranks([5.0, 1.0, 3.0], [0, 1, 2]).tolist() == [0.0, 2.0, 1.0]


def test_hit_rate(ranks):
    # K=2: A has 1.5 < 2, B has 1.5 < 2, C has 4 >= 2
    assert hit_rate(ranks, 2).tolist() == [1.0, 1.0, 0.0]
    # K=5: rank 5.0 of A is not < 5 but 1.5 is; C's 4 < 5
    assert hit_rate(ranks, 5).tolist() == [1.0, 1.0, 1.0]
    assert hit_rate(ranks, 1).tolist() == [0.0, 0.0, 0.0]


def test_recall_and_precision(ranks):
    assert recall(ranks, 2).tolist() == [0.5, 1.0, 0.0]
    assert precision(ranks, 2).tolist() == [0.5, 0.5, 0.0]
    assert recall(ranks, 6).tolist() == [1.0, 1.0, 1.0]  # 5.0 < 6
    assert precision(ranks, 5).tolist() == pytest.approx([1 / 5, 1 / 5, 1 / 5])


def test_f1(ranks):
    # A: P=.5 R=.5 -> .5; B: P=.5 R=1 -> 2*.5/1.5 = 2/3; C: both 0 -> 0
    assert f1(ranks, 2) == pytest.approx([0.5, 2 / 3, 0.0])
    # K=5, C: P=.2, R=1 -> 2*.2/1.2 = 1/3
    assert f1(ranks, 5)[2] == pytest.approx(1 / 3)


def test_ndcg(ranks):
    gain_15 = 1 / math.log2(3.5)  # rank 1.5 -> 1 / log2(1.5 + 2) = 0.553295
    assert gain_15 == pytest.approx(0.553295, abs=1e-6)
    idcg_2 = 1 + 1 / math.log2(3)  # two positives fit in the top 2: 1.630930
    expected = [gain_15 / idcg_2, gain_15, 0.0]
    assert ndcg(ranks, 2) == pytest.approx(expected)
    assert ndcg(ranks, 2)[0] == pytest.approx(0.339252, abs=1e-6)
    # K=1: IDCG uses min(|P|, K) = 1 positive; nobody has rank < 1
    assert ndcg(ranks, 1).tolist() == [0.0, 0.0, 0.0]
    # K=5: C's rank 4 gains 1 / log2(6) = 0.386853
    assert ndcg(ranks, 5)[2] == pytest.approx(0.386853, abs=1e-6)
    # perfect ranking has NDCG 1
    assert ndcg([[0.0, 1.0]], 2).tolist() == [1.0]


def test_mrr(ranks):
    # 1 / (min rank + 1): A 1/2.5, B 1/2.5, C 1/5
    assert mrr(ranks) == pytest.approx([0.4, 0.4, 0.2])


def test_auc(ranks):
    # A: negatives are items 0, 1, 3, 4, 6, 7 (6 of them).
    #    item 2 (0.8): lower 0.7, 0.5, 0.5, 0.1 (4), tie with item 1 -> 4.5 / 6 = 0.75
    #    item 5 (0.5): lower 0.1 (1), ties items 4 and 6 -> 2 / 6;  mean = 0.541667
    # B: three tied negatives -> 0.5;  C: all four negatives higher -> 0
    assert auc(ranks) == pytest.approx([(0.75 + 2 / 6) / 2, 0.5, 0.0])
    assert np.isnan(auc([[0.0]], n_candidates=[1])[0])  # no negatives
    with pytest.raises(ConfigError, match="candidates"):
        auc([[0.0]])


def test_auc_matches_pairwise_definition():
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(40), 1)  # many ties
    pos = np.array([1, 5, 7, 30])
    neg = np.setdiff1d(np.arange(40), pos)
    direct = np.mean([(np.sum(scores[neg] < scores[p]) + 0.5 * np.sum(scores[neg] == scores[p])) / len(neg)
                      for p in pos])
    r = UserRanks.from_lists([tie_aware_ranks(scores, pos)], n_candidates=[40])
    assert auc(r)[0] == pytest.approx(direct)


def test_ranking_metrics_keys_and_values(ranks):
    out = ranking_metrics(ranks, ks=(2, 5))
    assert set(out) == {f"{m}@{k}" for m in ("hr", "recall", "precision", "f1", "ndcg") for k in (2, 5)} | {
        "mrr", "auc"}
    assert out["recall@2"].tolist() == [0.5, 1.0, 0.0]
    assert "auc" not in ranking_metrics(UserRanks.from_lists([[0.0]]), ks=(1,))


def test_bad_inputs():
    with pytest.raises(DataError, match="at least one"):
        UserRanks.from_lists([[1.0], []])
    with pytest.raises(ConfigError, match="positive integer"):
        hit_rate([[1.0]], 0)


def test_mae_rmse_by_hand():
    # errors 0.5, 0, 1 -> MAE 0.5, RMSE sqrt(1.25 / 3) = 0.645497
    assert mae([4, 3, 5], [3.5, 3, 4]) == pytest.approx(0.5)
    assert rmse([4, 3, 5], [3.5, 3, 4]) == pytest.approx(0.645497, abs=1e-6)
    with pytest.raises(DataError):
        mae([1, 2], [1])


def test_evaluation_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, xcatrec.evaluation; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
