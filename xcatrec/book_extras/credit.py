"""A SYNTHETIC bank with two credit products that share customers, and a relatedness knob.

No real customer data is involved: this generator exists so that the book can show cross-product
transfer for credit scoring (the article's "financial risk control" scenario) with a ground truth
it can measure against. The *source* product is data-rich (e.g. credit cards, held by most customers)
and the *target* product data-poor (e.g. small-business loans, held by few, with few labelled
outcomes). Taught in the chapter "Applications".

Generative story (all draws from one seeded generator):

* Each of ``n_customers`` customers has ``n_features`` standard-normal features ``x`` (the bank's
  customer file).
* Three orthonormal directions in feature space are drawn at random: ``w0`` (a latent risk shared by
  both products) and ``e_s``, ``e_t`` (risk specific to each product).
* The risk score of product ``P`` is ``r_P = x . (sqrt(relatedness) w0 + sqrt(1 - relatedness) e_P)``:
  standard normal, and ``corr(r_s, r_t) = relatedness``. At ``relatedness = 1`` both products rank
  customers identically; at ``0`` the source says nothing about target risk.
* The probability of default is ``sigmoid(signal * r_P + b_P)``, where ``b_P`` is solved so that the
  mean probability over all customers equals the product's ``*_default_rate``; the default label is
  one Bernoulli draw of it.
* Each customer holds the source product with probability ``source_share`` and the target product
  with probability ``target_share``, independently; labels exist for everyone (they are the ground
  truth) but a bank only observes them for holders (:attr:`CreditBank.source_rows`,
  :attr:`CreditBank.target_rows`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import brentq

from xcatrec.errors import ConfigError

__all__ = ["CreditConfig", "CreditBank", "make_credit"]


@dataclass(frozen=True)
class CreditConfig:
    """Settings of :func:`make_credit` (see the module docstring for the model).

    Args:
        n_customers: Customers of the bank (>= 20).
        n_features: Features per customer (>= 3: the shared and two product-specific directions).
        relatedness: Correlation of the two products' risk scores, in [0, 1].
        signal: How strongly risk drives default (logit slope, > 0); larger makes defaults more
            predictable.
        source_default_rate: Mean default probability of the source product, in (0, 1).
        target_default_rate: Mean default probability of the target product, in (0, 1).
        source_share: Probability that a customer holds the source product, in (0, 1].
        target_share: Probability that a customer holds the target product, in (0, 1].
        seed: Seed of every draw.
    """

    n_customers: int = 10_000
    n_features: int = 30
    relatedness: float = 0.7
    signal: float = 1.5
    source_default_rate: float = 0.15
    target_default_rate: float = 0.25
    source_share: float = 0.9
    target_share: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [("n_customers", self.n_customers >= 20), ("n_features", self.n_features >= 3),
                  ("relatedness", 0.0 <= self.relatedness <= 1.0), ("signal", self.signal > 0),
                  ("source_default_rate", 0.0 < self.source_default_rate < 1.0),
                  ("target_default_rate", 0.0 < self.target_default_rate < 1.0),
                  ("source_share", 0.0 < self.source_share <= 1.0),
                  ("target_share", 0.0 < self.target_share <= 1.0)]
        for name, ok in checks:
            if not ok:
                raise ConfigError(f"Invalid CreditConfig.{name} = {getattr(self, name)!r}.",
                                  "n_customers >= 20, n_features >= 3, relatedness in [0, 1], signal > 0, "
                                  "default rates in (0, 1), shares in (0, 1].")

    def replace(self, **changes) -> "CreditConfig":
        """A copy with some fields changed; unknown names raise :class:`ConfigError`."""
        current = asdict(self)
        unknown = sorted(set(changes) - set(current))
        if unknown:
            raise ConfigError(f"Unknown credit option(s) {unknown}.", f"Use any of {sorted(current)}.")
        return CreditConfig(**{**current, **changes})


@dataclass(frozen=True, eq=False)
class CreditBank:
    """What :func:`make_credit` returns: features, labels, holders, and the ground truth behind them.

    Attributes:
        config: The settings used.
        features: ``(n_customers, n_features)`` float64 customer features.
        holds_source: ``(n_customers,)`` bool, the customer holds the source product.
        holds_target: ``(n_customers,)`` bool, the customer holds the target product.
        default_source: ``(n_customers,)`` int8 0/1 default on the source product (ground truth for all).
        default_target: ``(n_customers,)`` int8 0/1 default on the target product (ground truth for all).
        risk_source: ``(n_customers,)`` standardised source risk score ``r_s``.
        risk_target: ``(n_customers,)`` standardised target risk score ``r_t``.
        prob_source: ``(n_customers,)`` true default probability on the source product.
        prob_target: ``(n_customers,)`` true default probability on the target product.
        direction_source: ``(n_features,)`` unit vector with ``risk_source = features @ direction_source``.
        direction_target: ``(n_features,)`` unit vector with ``risk_target = features @ direction_target``.
    """

    config: CreditConfig
    features: np.ndarray
    holds_source: np.ndarray
    holds_target: np.ndarray
    default_source: np.ndarray
    default_target: np.ndarray
    risk_source: np.ndarray
    risk_target: np.ndarray
    prob_source: np.ndarray
    prob_target: np.ndarray
    direction_source: np.ndarray
    direction_target: np.ndarray

    @property
    def source_rows(self) -> np.ndarray:
        """Indices of the customers whose source outcome the bank observes."""
        return np.flatnonzero(self.holds_source)

    @property
    def target_rows(self) -> np.ndarray:
        """Indices of the customers whose target outcome the bank observes."""
        return np.flatnonzero(self.holds_target)

    @property
    def shared_customers(self) -> int:
        """Customers holding both products."""
        return int(np.count_nonzero(self.holds_source & self.holds_target))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _intercept(scaled_risk: np.ndarray, rate: float) -> float:
    """The ``b`` with ``mean(sigmoid(scaled_risk + b)) == rate`` (monotone in ``b``: bracketed root)."""
    gap = lambda b: float(np.mean(_sigmoid(scaled_risk + b))) - rate  # noqa: E731
    lo, hi = -50.0, 50.0
    return float(brentq(gap, lo, hi, xtol=1e-12))


def make_credit(config: CreditConfig | None = None) -> CreditBank:
    """Generate a synthetic bank (fast: the default 10,000 customers take a few milliseconds).

    Example:
        >>> bank = make_credit(CreditConfig(n_customers=1000, relatedness=1.0, seed=0))
        >>> bool(np.allclose(bank.risk_source, bank.risk_target))
        True
    """
    cfg = config or CreditConfig()
    rng = np.random.default_rng(cfg.seed)
    n, d = cfg.n_customers, cfg.n_features
    features = rng.standard_normal((n, d))
    basis, _ = np.linalg.qr(rng.standard_normal((d, 3)))
    shared, own_source, own_target = basis.T
    a, b = np.sqrt(cfg.relatedness), np.sqrt(1.0 - cfg.relatedness)
    directions = (a * shared + b * own_source, a * shared + b * own_target)
    risks, probs, labels = [], [], []
    for direction, rate in zip(directions, (cfg.source_default_rate, cfg.target_default_rate)):
        risk = features @ direction
        scaled = cfg.signal * risk
        prob = _sigmoid(scaled + _intercept(scaled, rate))
        risks.append(risk)
        probs.append(prob)
        labels.append((rng.random(n) < prob).astype(np.int8))
    holds_source = rng.random(n) < cfg.source_share
    holds_target = rng.random(n) < cfg.target_share
    return CreditBank(cfg, features, holds_source, holds_target, labels[0], labels[1], risks[0], risks[1],
                      probs[0], probs[1], directions[0], directions[1])
