"""Logistic transfer between two credit products: the fit, the penalty's centre, cross-validation, the
variants, and the comparison records."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from xcatrec.book_extras.credit import CreditConfig, make_credit
from xcatrec.book_extras.logistic_transfer import (VARIANTS, LogisticModel, TransferConfig, choose_l2,
                                                   compare_transfer, fit_logistic, fit_variant,
                                                   label_budget_split)
from xcatrec.errors import ConfigError, DataError


def _data(n=300, d=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ np.arange(1.0, d + 1) / d - 0.5)))).astype(int)
    return x, y


@pytest.mark.parametrize("l2", [0.1, 1.0, 30.0])
def test_fit_matches_scikit_learn(l2):
    x, y = _data()
    ours = fit_logistic(x, y, l2=l2)
    ref = LogisticRegression(C=1 / l2, tol=1e-12, max_iter=10_000).fit(x, y)
    np.testing.assert_allclose(ours.coef, ref.coef_[0], atol=1e-6)
    assert ours.intercept == pytest.approx(float(ref.intercept_[0]), abs=1e-6)
    np.testing.assert_allclose(ours.predict_proba(x), ref.predict_proba(x)[:, 1], atol=1e-6)


def test_penalty_centre_and_sample_weights():
    x, y = _data(n=40)
    prior = np.full(5, 3.0)
    # a huge penalty pins the weights to its centre; only the (free) intercept is fitted
    pinned = fit_logistic(x, y, l2=1e9, prior=prior)
    np.testing.assert_allclose(pinned.coef, prior, atol=1e-5)
    # per-feature strength: an unpenalised feature is free, a pinned one stays at its centre
    mixed = fit_logistic(x, y, l2=np.array([1e9, 1e9, 1e9, 1e9, 0.0]), prior=prior)
    np.testing.assert_allclose(mixed.coef[:4], 3.0, atol=1e-5)
    assert abs(mixed.coef[4] - 3.0) > 0.1
    # an integer weight equals repeating the row
    w = np.ones(len(y))
    w[:10] = 2.0
    doubled = fit_logistic(np.vstack([x, x[:10]]), np.concatenate([y, y[:10]]), l2=1.0)
    weighted = fit_logistic(x, y, l2=1.0, sample_weight=w)
    np.testing.assert_allclose(weighted.coef, doubled.coef, atol=1e-6)
    # the start point changes nothing (convex problem)
    started = fit_logistic(x, y, l2=1.0, init=LogisticModel(np.full(5, -2.0), 1.0))
    np.testing.assert_allclose(started.coef, fit_logistic(x, y, l2=1.0).coef, atol=1e-6)


def test_fit_rejects_bad_input():
    x, y = _data(n=20)
    with pytest.raises(DataError, match="both classes"):
        fit_logistic(x, np.zeros(20, int))
    with pytest.raises(DataError, match="0 or 1"):
        fit_logistic(x, np.full(20, 2))
    with pytest.raises(DataError):
        fit_logistic(x, y[:10])
    with pytest.raises(ConfigError):
        fit_logistic(x, y, l2=-1.0)
    with pytest.raises(ConfigError):
        fit_logistic(x, y, prior=np.zeros(3))
    with pytest.raises(DataError, match="shape"):
        fit_logistic(x, y).logit(np.zeros((2, 3)))


def test_choose_l2_prefers_strong_penalty_when_labels_are_noise():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 20))
    y = np.tile([0, 1], 30)  # labels independent of x
    best, losses = choose_l2(x, y, (0.01, 1.0, 1000.0), folds=5, seed=0)
    assert best == 1000.0 and set(losses) == {0.01, 1.0, 1000.0}
    x2, y2 = _data(n=400)
    assert choose_l2(x2, y2, (0.01, 1e6), folds=5, seed=0)[0] == 0.01  # real signal: keep it
    with pytest.raises(DataError, match="2 labels of each class"):
        choose_l2(x[:5], np.array([0, 0, 0, 0, 1]), (1.0,), folds=5, seed=0)


def test_label_budget_split_is_stratified_disjoint_and_seeded():
    bank = make_credit(CreditConfig(n_customers=2000, seed=0))
    rows = bank.target_rows
    train, test = label_budget_split(bank.default_target, rows, 20, seed=1)
    assert len(train) == 20 and len(test) == len(rows) - 20
    assert not set(train) & set(test) and set(train) | set(test) == set(rows)
    assert set(np.unique(bank.default_target[train])) == {0, 1}
    np.testing.assert_array_equal(train, label_budget_split(bank.default_target, rows, 20, seed=1)[0])
    assert not np.array_equal(train, label_budget_split(bank.default_target, rows, 20, seed=2)[0])
    with pytest.raises(ConfigError, match="n_labels"):
        label_budget_split(bank.default_target, rows, 1, seed=0)


def test_variants_use_the_source_as_documented():
    bank = make_credit(CreditConfig(n_customers=3000, relatedness=1.0, seed=0))
    xs, ys = bank.features[bank.source_rows], bank.default_source[bank.source_rows]
    train, _ = label_budget_split(bank.default_target, bank.target_rows, 40, seed=0)
    xt, yt = bank.features[train], bank.default_target[train]
    fitted = {v: fit_variant(v, xs, ys, xt, yt) for v in VARIANTS}
    src = fitted["source-only"].model
    np.testing.assert_allclose(fitted["source-only"].predict_proba(xt), src.predict_proba(xt))
    assert fitted["source-only"].l2 is None and fitted["pooled"].l2 is None
    assert fitted["target-only"].l2 in TransferConfig().l2_grid
    # pooled: shared weights (x) plus one target intercept; source-score: x plus the source logit
    assert len(fitted["pooled"].model.coef) == 31 and len(fitted["source-score"].model.coef) == 31
    # a prior so strong that only the intercept moves: source weights kept, rate re-fitted
    pinned = fit_variant("source-prior", xs, ys, xt, yt, TransferConfig(l2_grid=(1e9,)))
    np.testing.assert_allclose(pinned.model.coef, src.coef, atol=1e-4)
    with pytest.raises(ConfigError, match="Unknown transfer variant"):
        fit_variant("magic", xs, ys, xt, yt)


def test_compare_transfer_records_and_the_relatedness_story():
    related = compare_transfer(make_credit(CreditConfig(relatedness=1.0, seed=0)), 30, seed=0)
    unrelated = compare_transfer(make_credit(CreditConfig(relatedness=0.0, seed=0)), 30, seed=0)
    assert [r["variant"] for r in related] == [*VARIANTS, "true-probability"]
    assert {"auc", "log_loss", "accuracy", "precision", "recall", "f1", "l2", "n_labels", "seed",
            "relatedness"} <= set(related[0])
    auc = lambda recs, v: next(r["auc"] for r in recs if r["variant"] == v)  # noqa: E731
    # identical risk: the source model is almost the truth and beats 30 target labels
    assert auc(related, "source-only") > auc(related, "target-only") + 0.05
    assert auc(related, "source-only") > auc(related, "true-probability") - 0.02
    # unrelated risk: the source model ranks target defaults at chance
    assert abs(auc(unrelated, "source-only") - 0.5) < 0.05
    assert compare_transfer(make_credit(CreditConfig(seed=0)), 30, seed=0) == \
        compare_transfer(make_credit(CreditConfig(seed=0)), 30, seed=0)


def test_transfer_config_rejects_bad_settings():
    for bad in (dict(l2_grid=()), dict(l2_grid=(-1.0,)), dict(folds=1), dict(target_weight=0.0),
                dict(threshold=1.0)):
        with pytest.raises(ConfigError):
            TransferConfig(**bad)
    with pytest.raises(ConfigError, match="Unknown transfer variant"):
        compare_transfer(make_credit(CreditConfig(n_customers=500)), 20, seed=0, variants=("nope",))
