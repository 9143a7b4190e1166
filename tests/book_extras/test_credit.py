"""The synthetic two-product bank: shapes, determinism, and that its knobs do what they say."""

from __future__ import annotations

import numpy as np
import pytest

from xcatrec.book_extras.credit import CreditConfig, make_credit
from xcatrec.errors import ConfigError


def test_shapes_types_and_holders():
    bank = make_credit(CreditConfig(n_customers=2000, n_features=12, source_share=0.8, target_share=0.25))
    n = 2000
    assert bank.features.shape == (n, 12) and bank.features.dtype == np.float64
    for name in ("holds_source", "holds_target"):
        assert getattr(bank, name).shape == (n,) and getattr(bank, name).dtype == bool
    for name in ("default_source", "default_target"):
        labels = getattr(bank, name)
        assert labels.shape == (n,) and labels.dtype == np.int8 and set(np.unique(labels)) == {0, 1}
    assert bank.direction_source.shape == (12,)
    np.testing.assert_allclose(np.linalg.norm(bank.direction_target), 1.0)
    np.testing.assert_allclose(bank.features @ bank.direction_source, bank.risk_source)
    assert abs(bank.holds_source.mean() - 0.8) < 0.04 and abs(bank.holds_target.mean() - 0.25) < 0.04
    np.testing.assert_array_equal(bank.target_rows, np.flatnonzero(bank.holds_target))
    assert bank.shared_customers == int((bank.holds_source & bank.holds_target).sum())


def test_default_rates_are_calibrated():
    bank = make_credit(CreditConfig(n_customers=20_000, source_default_rate=0.1, target_default_rate=0.3))
    assert bank.prob_source.mean() == pytest.approx(0.1, abs=1e-9)
    assert bank.prob_target.mean() == pytest.approx(0.3, abs=1e-9)
    assert bank.default_source.mean() == pytest.approx(0.1, abs=0.01)
    assert bank.default_target.mean() == pytest.approx(0.3, abs=0.015)


def test_same_seed_same_bank_other_seed_other_bank():
    a, b = make_credit(CreditConfig(n_customers=500, seed=3)), make_credit(CreditConfig(n_customers=500, seed=3))
    c = make_credit(CreditConfig(n_customers=500, seed=4))
    for name in ("features", "holds_source", "holds_target", "default_source", "default_target", "prob_target"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.default_target, c.default_target)


@pytest.mark.parametrize("relatedness", [0.0, 0.3, 0.7, 1.0])
def test_relatedness_is_the_correlation_of_the_risk_scores(relatedness):
    bank = make_credit(CreditConfig(n_customers=20_000, relatedness=relatedness, seed=1))
    # the directions have cosine exactly `relatedness`; the sample correlation is within noise of it
    assert float(bank.direction_source @ bank.direction_target) == pytest.approx(relatedness, abs=1e-12)
    assert np.corrcoef(bank.risk_source, bank.risk_target)[0, 1] == pytest.approx(relatedness, abs=0.03)
    assert bank.risk_target.std() == pytest.approx(1.0, abs=0.03)


def test_relatedness_moves_how_well_source_risk_ranks_target_defaults():
    from sklearn.metrics import roc_auc_score

    aucs = [roc_auc_score(b.default_target, b.risk_source)
            for b in (make_credit(CreditConfig(relatedness=r, seed=2)) for r in (0.0, 0.5, 1.0))]
    assert abs(aucs[0] - 0.5) < 0.03 and aucs[0] < aucs[1] < aucs[2]


def test_signal_makes_defaults_more_predictable():
    from sklearn.metrics import roc_auc_score

    weak, strong = (make_credit(CreditConfig(signal=s, seed=0)) for s in (0.3, 3.0))
    assert roc_auc_score(weak.default_target, weak.prob_target) < roc_auc_score(strong.default_target,
                                                                              strong.prob_target) - 0.2


@pytest.mark.parametrize("bad", [dict(n_customers=5), dict(n_features=2), dict(relatedness=1.5),
                                 dict(relatedness=-0.1), dict(signal=0.0), dict(source_default_rate=0.0),
                                 dict(target_default_rate=1.0), dict(source_share=0.0), dict(target_share=1.2)])
def test_bad_settings_raise_config_error(bad):
    with pytest.raises(ConfigError, match="CreditConfig"):
        CreditConfig(**bad)


def test_replace_checks_names_and_values():
    cfg = CreditConfig().replace(relatedness=0.2)
    assert cfg.relatedness == 0.2 and cfg.n_customers == CreditConfig().n_customers
    with pytest.raises(ConfigError, match="Unknown credit option"):
        CreditConfig().replace(relatednes=0.2)
    with pytest.raises(ConfigError):
        CreditConfig().replace(relatedness=2.0)
