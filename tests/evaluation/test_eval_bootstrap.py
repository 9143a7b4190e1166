"""Two-level paired bootstrap over users and seeds, verdict words, and compact per-user records."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from xcatrec.errors import ConfigError, DataError
from xcatrec.evaluation import (BootstrapResult, compare_runs, describe, paired_bootstrap, per_user_frame,
                                per_user_records, verdict)


def _ndcg_like(rng, n: int, hit: float = 0.2) -> np.ndarray:
    """Mostly zeros, like NDCG@10 with one held-out item."""
    return np.where(rng.random(n) < hit, 1 / np.log2(2 + rng.integers(0, 10, n)), 0.0)


def _result(estimate, low, high, relative=True) -> BootstrapResult:
    return BootstrapResult(estimate, low, high, 0.01, n_seeds=3, n_users=300, n_boot=2000, relative=relative)


def test_identical_inputs_are_level_with_p_one():
    rng = np.random.default_rng(0)
    ref = [_ndcg_like(rng, 500) for _ in range(3)]
    res = paired_bootstrap(ref, [r.copy() for r in ref])
    assert (res.estimate, res.ci_low, res.ci_high, res.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert (res.n_seeds, res.n_users, res.n_boot) == (3, 1500, 2000)
    assert verdict(res) == "is level with"
    assert verdict(res, threshold=0) == "is level with"


def test_clear_shift_beats_and_reverse_falls_below():
    rng = np.random.default_rng(1)
    ref = [rng.random(400) for _ in range(3)]
    better = [r + 0.5 for r in ref]  # mean about 0.5 -> about 1.0: +100%
    res = paired_bootstrap(better, ref)
    assert res.ci_low > 0.5 and res.estimate > 0.8 and res.p_value == 1 / 2000
    assert verdict(res) == "beats"
    back = paired_bootstrap(ref, better)
    assert back.ci_high < -0.3 and back.p_value == 1 / 2000
    assert verdict(back) == "falls below"
    text = describe(res, "cmf", "popularity", metric_name="NDCG@10")
    assert text.startswith("cmf beats popularity: +") and "over users and seeds, p < 0.001)." in text


def test_tiny_noisy_data_cannot_be_told_apart():
    rng = np.random.default_rng(2)
    a, b = [rng.random(8) for _ in range(2)], [rng.random(8) for _ in range(2)]
    res = paired_bootstrap(a, b)
    assert res.ci_low < 0 < res.ci_high and res.ci_high - res.ci_low > 0.2
    assert verdict(res) == "cannot be told apart from"


def test_estimate_is_ratio_of_means_over_seeds_of_means_over_users():
    c = [np.array([1.0, 0.0, 2.0]), np.array([4.0, 0.0])]
    r = [np.array([1.0, 1.0, 1.0]), np.array([0.0, 2.0])]
    # C = mean(1, 2) = 1.5, R = mean(1, 1) = 1: +50% (a mean of per-user ratios would be undefined)
    res = paired_bootstrap(c, r)
    assert res.estimate == pytest.approx(0.5) and res.challenger_mean == pytest.approx(1.5)
    assert paired_bootstrap(c, r, relative=False).estimate == pytest.approx(0.5)
    assert paired_bootstrap([c[1]], [r[1]]).estimate == pytest.approx(1.0)
    # dicts are aligned by seed, not by order
    res_d = paired_bootstrap({"s0": c[0], "s1": c[1]}, {"s1": r[1], "s0": r[0]})
    assert res_d.estimate == pytest.approx(0.5)


def test_interval_widens_with_user_noise_and_with_seed_disagreement():
    rng = np.random.default_rng(3)
    base = [rng.random(300) + 1 for _ in range(3)]
    widths = []
    for noise in (0.05, 0.5):
        chall = [b + 0.1 + noise * rng.standard_normal(300) for b in base]
        res = paired_bootstrap(chall, base, relative=False)
        widths.append(res.ci_high - res.ci_low)
    assert widths[1] > 4 * widths[0]
    # two seeds agree (+0.1 each) versus disagree (+0.3 and -0.3): same user noise, only seeds differ
    eps = [0.05 * rng.standard_normal(300) for _ in range(2)]
    agree = paired_bootstrap([base[0] + 0.1 + eps[0], base[1] + 0.1 + eps[1]], base[:2], relative=False)
    split = paired_bootstrap([base[0] + 0.3 + eps[0], base[1] - 0.3 + eps[1]], base[:2], relative=False)
    assert agree.ci_low > 0.05 and verdict(agree, threshold=0.02) == "beats"
    assert split.ci_low < -0.2 and split.ci_high > 0.2  # seed variation is in the interval
    assert verdict(split, threshold=0.02) == "cannot be told apart from"
    # with one seed only users are resampled: narrow again
    one = paired_bootstrap(base[0] + 0.3 + eps[0], base[0], relative=False)
    assert one.n_seeds == 1 and one.ci_high - one.ci_low < 0.05


def test_interval_covers_the_true_effect_in_most_repetitions():
    rng = np.random.default_rng(4)
    hits_abs = hits_rel = 0
    for rep in range(100):
        ref = [rng.exponential(1.0, 150) for _ in range(3)]  # population mean 1
        chall = [r + 0.2 + 0.5 * rng.standard_normal(150) for r in ref]  # population mean 1.2
        res = paired_bootstrap(chall, ref, relative=False, n_boot=500, seed=rep)
        hits_abs += res.ci_low <= 0.2 <= res.ci_high
        rel = paired_bootstrap([1.2 * r for r in ref], [rng.exponential(1.0, 150) for _ in range(3)],
                               n_boot=500, seed=rep)  # unpaired draws, true ratio 1.2
        hits_rel += rel.ci_low <= 0.2 <= rel.ci_high
    assert hits_abs >= 85 and hits_rel >= 85


def test_deterministic_given_the_seed():
    rng = np.random.default_rng(5)
    c, r = [_ndcg_like(rng, 700) for _ in range(3)], [_ndcg_like(rng, 700) for _ in range(3)]
    assert paired_bootstrap(c, r, seed=11) == paired_bootstrap(c, r, seed=11)
    assert paired_bootstrap(c, r, seed=11).ci_low != paired_bootstrap(c, r, seed=12).ci_low


def test_p_value_rule_and_level():
    rng = np.random.default_rng(6)
    c, r = [rng.random(200) + 0.03 for _ in range(3)], [rng.random(200) for _ in range(3)]
    res = paired_bootstrap(c, r, relative=False, n_boot=1000)
    assert 1 / 1000 <= res.p_value <= 1 and res.p_value * 1000 == pytest.approx(round(res.p_value * 1000))
    narrow = paired_bootstrap(c, r, relative=False, n_boot=1000, level=0.5)
    assert res.ci_low < narrow.ci_low < narrow.ci_high < res.ci_high


def test_verdict_rule_and_lower_is_better():
    assert verdict(_result(0.05, 0.01, 0.09)) == "beats"
    assert verdict(_result(0.01, 0.005, 0.015)) == "is level with"  # real but negligible
    assert verdict(_result(0.01, -0.015, 0.019)) == "is level with"  # all within (-2%, 2%)
    assert verdict(_result(0.03, -0.01, 0.07)) == "cannot be told apart from"
    assert verdict(_result(-0.05, -0.09, -0.01)) == "falls below"
    assert verdict(_result(math.nan, math.nan, math.nan)) == "cannot be told apart from"
    # RMSE 5% lower is better
    assert verdict(_result(-0.05, -0.09, -0.01), lower_is_better=True) == "beats"
    assert verdict(_result(0.05, 0.01, 0.09), lower_is_better=True) == "falls below"
    assert verdict(_result(0.05, 0.01, 0.09), threshold=0.1) == "is level with"
    text = describe(_result(0.01, 0.005, 0.015), "a", "b", metric_name="HR@10")
    assert text == ("a is level with b: +1.0% HR@10 (95% interval +0.5% to +1.5% over users and seeds, "
                    "p = 0.010); the difference is real but smaller than 2.0%.")
    rmse = describe(_result(-0.183, -0.27, -0.09), "svd", "mean", metric_name="RMSE", lower_is_better=True)
    assert rmse.startswith("svd beats mean: -18% RMSE (95% interval -27% to -9.0%")


def test_reference_mean_zero_gives_nan_relative_result():
    res = paired_bootstrap([np.array([0.0, 1.0])], [np.zeros(2)])
    assert math.isnan(res.estimate) and math.isnan(res.ci_low) and math.isnan(res.p_value)
    assert verdict(res) == "cannot be told apart from"
    assert "is 0" in describe(res, "a", "b")
    assert paired_bootstrap([np.array([0.0, 1.0])], [np.zeros(2)], relative=False).estimate == 0.5


def test_nan_users_are_left_out():
    res = paired_bootstrap(np.array([1.0, np.nan, 3.0]), np.array([1.0, 2.0, np.nan]))
    assert res.n_users == 1 and res.estimate == 0.0


@pytest.mark.parametrize("kwargs", [
    dict(challenger=[np.ones(3)], reference=[np.ones(4)]),  # users of a seed misaligned
    dict(challenger=[np.ones(3), np.ones(3)], reference=[np.ones(3)]),  # seed counts differ
    dict(challenger={0: np.ones(3)}, reference={1: np.ones(3)}),  # seeds differ
    dict(challenger={0: np.ones(3)}, reference=[np.ones(3)]),  # mixed forms
    dict(challenger=[], reference=[]),
    dict(challenger=[np.ones((2, 2))], reference=[np.ones((2, 2))]),
    dict(challenger=[np.array([-1.0, 1.0])], reference=[np.ones(2)]),  # negative values, relative
    dict(challenger=[np.array([np.inf, 1.0])], reference=[np.ones(2)]),
    dict(challenger=[np.full(2, np.nan)], reference=[np.ones(2)]),
    dict(challenger=[np.ones(3)], reference=[np.ones(3)], n_boot=10),
    dict(challenger=[np.ones(3)], reference=[np.ones(3)], level=1.5),
    dict(challenger=[np.ones(3)], reference=[np.ones(3)], seed=None),
    dict(challenger="ndcg", reference="ndcg"),
])
def test_bad_inputs_raise(kwargs):
    with pytest.raises(ConfigError):
        paired_bootstrap(**kwargs)


def test_bad_threshold_raises():
    with pytest.raises(ConfigError, match="threshold"):
        verdict(_result(0.1, 0.0, 0.2), threshold=-0.1)


def _per_user(rng, users) -> pd.DataFrame:
    return pd.DataFrame({"user": users, "ndcg@10": _ndcg_like(rng, len(users)),
                         "hr@10": (rng.random(len(users)) < 0.3).astype(float),
                         "auc": np.where(rng.random(len(users)) < 0.1, np.nan, rng.random(len(users)))})


def test_per_user_records_round_trip():
    rng = np.random.default_rng(7)
    users = rng.permutation(np.arange(0, 3000, 3))[:500]  # unsorted, as ints
    df = _per_user(rng, users)
    df.loc[df.index[:3], "ndcg@10"] = [1 / 3, 0.123456789e-5, 0.987654321]
    recs = per_user_records(df, ["ndcg@10", "auc"], dataset="toy", method="cmf", seed=2)
    assert [r["metric"] for r in recs] == ["ndcg", "auc"] and recs[0]["k"] == 10 and recs[1]["k"] is None
    rec = recs[0]
    assert rec["kind"] == "per-user" and rec["n_users"] == 500 and rec["users"] == sorted(users.tolist())
    assert rec["split"] is None and rec["seed"] == 2
    assert len(rec["nonzero"]) == int((df["ndcg@10"] != 0).sum()) < 500
    back = per_user_frame(json.loads(json.dumps(recs)))  # survives JSON
    assert list(back.columns[:3]) == ["dataset", "source", "target"] and {"ndcg@10", "auc", "user"} <= set(back)
    want = df.sort_values("user").reset_index(drop=True)
    np.testing.assert_array_equal(back["user"], want["user"])
    for col in ("ndcg@10", "auc"):
        np.testing.assert_allclose(back[col], want[col], rtol=5e-6, atol=0)  # NaN where NaN
        rounded = [float(f"{v:.6g}") for v in want[col]]
        np.testing.assert_array_equal(back[col], rounded)
    assert back.loc[back["user"] == users[1], "ndcg@10"].item() == 1.23457e-6
    assert (back["method"] == "cmf").all() and (back["seed"] == 2).all()


def test_per_user_frame_skips_other_records_and_checks():
    rng = np.random.default_rng(8)
    recs = per_user_records(_per_user(rng, np.arange(20)), method="a", seed=0)
    recs += [{"method": "a", "seed": 0, "metric": "ndcg", "k": 10, "value": 0.2}]  # a summary record
    assert len(per_user_frame(recs)) == 20
    with pytest.raises(DataError):
        per_user_frame([{"metric": "ndcg", "value": 0.2}])
    with pytest.raises(DataError):
        per_user_frame([dict(recs[0], n_users=21)])
    with pytest.raises(ConfigError):
        per_user_records(_per_user(rng, np.arange(5)), "ndcg@20")
    with pytest.raises(DataError):
        per_user_records(_per_user(rng, np.array([1, 1, 2])))


def _runs(rng, shift: float, seeds=(0, 1, 2)) -> pd.DataFrame:
    recs = []
    for s in seeds:
        users = np.sort(rng.choice(5000, 400, replace=False))  # other users per seed
        ref = _per_user(rng, users)
        chall = ref.assign(**{"ndcg@10": ref["ndcg@10"] * shift})
        recs += per_user_records(ref, dataset="toy", method="pop", seed=s)
        recs += per_user_records(chall.sample(frac=1, random_state=s), dataset="toy", method="cmf", seed=s)
    return per_user_frame(recs)


def test_compare_runs_aligns_users_per_seed():
    rng = np.random.default_rng(9)
    frame = _runs(rng, 1.5)
    res = compare_runs(frame, "cmf", "pop", where={"dataset": "toy"})
    assert res.n_seeds == 3 and res.n_users == 1200 and res.estimate == pytest.approx(0.5, rel=1e-5)
    assert verdict(res) == "beats" and res.ci_low > 0.4  # paired: a pure scaling has a tight interval
    assert compare_runs(frame, "pop", "pop").estimate == 0.0
    with pytest.raises(ConfigError):
        compare_runs(frame, "cmf", "svd")
    with pytest.raises(DataError, match="more than once"):
        compare_runs(pd.concat([frame, frame]), "cmf", "pop")


def test_compare_runs_missing_users_error_or_drop():
    rng = np.random.default_rng(10)
    frame = _runs(rng, 1.5)
    gone = frame.drop(index=frame.index[(frame["method"] == "cmf") & (frame["seed"] == 1)][:5])
    with pytest.raises(DataError, match="5 \\(seed, user\\)"):
        compare_runs(gone, "cmf", "pop")
    with pytest.warns(UserWarning, match="left out"):
        res = compare_runs(gone, "cmf", "pop", on_missing="drop")
    assert res.n_users == 1195


def test_compare_users_joins_per_user_tables_and_gives_the_verdict_word():
    import pandas as pd

    from xcatrec.evaluation.bootstrap import compare_users

    rng = np.random.default_rng(0)
    users = np.arange(2000)
    base = rng.random(2000)
    a = pd.DataFrame({"user": users, "ndcg@10": base + 0.5})
    b = pd.DataFrame({"user": users[::-1], "ndcg@10": base[::-1]})  # other order: joined on user
    result, word = compare_users(a, b, "ndcg@10")
    assert word == "beats" and result.ci_low > 0
    assert compare_users(b, a, "ndcg@10")[1] == "falls below"
    assert compare_users(a, a, "ndcg@10")[1] == "is level with"
    errors_low, errors_high = base, base + 1.0  # lower is better: the first has smaller errors
    assert compare_users(errors_low, errors_high, lower_is_better=True)[1] == "beats"
    with pytest.raises(ConfigError):
        compare_users(a, b, "hr@10")


def test_every_verdict_has_one_chinese_sentence_and_an_unknown_word_is_refused():
    from xcatrec.errors import ConfigError
    from xcatrec.evaluation import VERDICTS, VERDICTS_ZH, verdict_zh

    assert set(VERDICTS_ZH) == set(VERDICTS)
    sentences = {word: verdict_zh(word, "甲", "乙") for word in VERDICTS}
    assert len(set(sentences.values())) == len(VERDICTS)  # four different sentences
    assert all(s.startswith("甲") and "乙" in s and "{" not in s for s in sentences.values())
    assert verdict_zh("beats", "迁移模型", "流行度基线") == "迁移模型优于流行度基线"
    with pytest.raises(ConfigError, match="Unknown verdict"):
        verdict_zh("wins", "甲", "乙")
