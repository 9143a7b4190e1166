"""Transfer between two credit products with logistic regression: ways to use a data-rich source.

Used on the SYNTHETIC bank of :mod:`xcatrec.book_extras.credit` in the chapter "Applications".
Every variant scores target customers with a logistic regression; they differ in what they take from
the source product. Each fit minimises the log-loss *summed* over its rows plus
``l2 / 2 * |w - centre|^2``, so the more target labels there are, the less a fixed penalty counts.
Where a variant penalises its target fit, the strength is chosen from ``TransferConfig.l2_grid`` by
stratified k-fold cross-validation on the target training labels (mean held-out log-loss), never on
the test customers.

* ``target-only``: fit on the few target labels alone, penalty centred on zero (the baseline).
* ``source-only``: the source model applied to target customers as it is (zero target labels used).
* ``source-prior``: fit on the target labels with the penalty centred on the source weights: the
  logistic counterpart of fine-tuning a transferred model. A strong penalty keeps the source weights
  (only the intercept adapts to the target's default rate), a weak one lets the target data move them;
  cross-validation decides how far.
* ``source-score``: fit on the target labels with the source model's logit as one extra feature
  (stacking).
* ``pooled``: one fit on source and target rows together, the target rows weighted by
  ``target_weight`` (the book's ``L = L_source + lambda * L_target``), with shared weights and a
  separate, unpenalised intercept for the target product: "treat the two products as one, up to
  their default rates".

The fit is a damped Newton method on the penalised log-likelihood (intercepts unpenalised), so that the
penalty's centre and per-feature strength can be set; with a zero centre it matches scikit-learn's
``LogisticRegression(C=1 / l2)``. It runs on one BLAS thread: on a busy two-core machine the
multi-threaded matrix-vector products were about twenty times slower.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from xcatrec.book_extras.classification import classification_metrics
from xcatrec.errors import ConfigError, DataError

__all__ = ["VARIANTS", "LogisticModel", "TransferConfig", "CreditScorer", "fit_logistic", "choose_l2",
           "fit_variant", "label_budget_split", "compare_transfer"]

_MAX_NEWTON = 100
_THREADS: list[ThreadpoolController] = []  # created on first use (it scans the loaded libraries)


def _one_blas_thread():
    if not _THREADS:
        _THREADS.append(ThreadpoolController())
    return _THREADS[0].limit(limits=1, user_api="blas")


VARIANTS = ("target-only", "source-only", "source-prior", "source-score", "pooled")
"""Transfer variants, the target-only baseline first."""


@dataclass(frozen=True)
class LogisticModel:
    """``P(y = 1 | x) = sigmoid(x . coef + intercept)``."""

    coef: np.ndarray
    intercept: float

    def logit(self, x) -> np.ndarray:
        """Linear scores ``x . coef + intercept``."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.coef):
            raise DataError(f"Expected features of shape (n, {len(self.coef)}), got {x.shape}.",
                            "Pass the same features the model was fitted on.")
        return x @ self.coef + self.intercept

    def predict_proba(self, x) -> np.ndarray:
        """Probabilities of the positive class."""
        return 0.5 * (1.0 + np.tanh(0.5 * self.logit(x)))


def _check_xy(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y) or len(y) == 0:
        raise DataError(f"Need features (n, d) and n labels, got {x.shape} and {y.shape}.",
                        "Pass one label per row.")
    if not np.isin(y, (0, 1)).all():
        raise DataError("Labels must be 0 or 1.", "Binarise the outcome first (1 = default).")
    if np.unique(y).size < 2:
        raise DataError(f"All {len(y)} labels are {int(y[0])}: a logistic regression needs both classes.",
                        "Use more labels, or a stratified sample (label_budget_split).")
    return x, y.astype(np.float64)


def fit_logistic(x, y, *, l2=1.0, prior=None, sample_weight=None, init: LogisticModel | None = None) -> LogisticModel:
    """Minimise ``sum_i w_i logloss_i + sum_j l2_j / 2 * (coef_j - prior_j)^2`` (intercept free).

    Args:
        x: ``(n, d)`` features.
        y: ``(n,)`` 0/1 labels with both classes present.
        l2: Penalty strength, a scalar or one value per feature (0 leaves a feature unpenalised).
        prior: ``(d,)`` centre of the penalty (default zeros).
        sample_weight: ``(n,)`` non-negative row weights (default ones).
        init: Starting point of the optimiser (default: the prior and a zero intercept). The problem
            is convex, so this changes the speed, not the answer.

    Raises:
        DataError: bad shapes or labels, a single class.
        ConfigError: negative penalty or weights, a prior of the wrong length.
    """
    x, y = _check_xy(x, y)
    n, d = x.shape
    l2 = np.broadcast_to(np.asarray(l2, dtype=np.float64), (d,)) if np.ndim(l2) == 0 else np.asarray(l2, float)
    prior = np.zeros(d) if prior is None else np.asarray(prior, dtype=np.float64)
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if l2.shape != (d,) or prior.shape != (d,) or w.shape != (n,):
        raise ConfigError(f"l2, prior and sample_weight must have {d}, {d} and {n} entries.",
                          "Pass one penalty and prior value per feature and one weight per row.")
    if (l2 < 0).any() or (w < 0).any() or not np.isfinite(np.concatenate([l2, prior, w])).all():
        raise ConfigError("l2 and sample_weight must be finite and >= 0.", "Pass l2=1.0, for example.")

    start = np.concatenate([prior, [0.0]]) if init is None else np.concatenate([init.coef, [init.intercept]])
    if start.shape != (d + 1,):
        raise ConfigError(f"init has {len(start) - 1} weights, the features {d}.",
                          "Start from a model of the same size.")
    design = np.column_stack([x, np.ones(n)])
    penalty = np.concatenate([l2, [0.0]])
    centre = np.concatenate([prior, [0.0]])

    def objective(theta: np.ndarray) -> float:
        z = design @ theta
        return float(np.sum(w * (np.logaddexp(0.0, z) - y * z)) + 0.5 * np.sum(penalty * (theta - centre) ** 2))

    theta, value = start, objective(start)
    # matrix products this small run many times faster on one BLAS thread than on several
    with _one_blas_thread():
        for _ in range(_MAX_NEWTON):
            p = 0.5 * (1.0 + np.tanh(0.5 * (design @ theta)))
            grad = design.T @ (w * (p - y)) + penalty * (theta - centre)
            hess = (design * (w * p * (1.0 - p))[:, None]).T @ design + np.diag(penalty + 1e-10)
            step = np.linalg.solve(hess, grad)
            scale = 1.0
            while scale > 1e-6:  # damped Newton: halve the step until the objective does not rise
                candidate = theta - scale * step
                new = objective(candidate)
                if new <= value + 1e-12 * abs(value):
                    break
                scale *= 0.5
            else:
                break
            theta, converged = candidate, abs(value - new) <= 1e-12 * max(1.0, abs(value))
            value = new
            if converged or np.max(np.abs(scale * step)) < 1e-9:
                break
    return LogisticModel(theta[:d].copy(), float(theta[d]))


@dataclass(frozen=True)
class TransferConfig:
    """Settings shared by the variants.

    Args:
        l2_grid: Candidate penalty strengths of the target fits (``target-only``, ``source-prior``,
            ``source-score``), chosen by cross-validation.
        folds: Folds of that cross-validation (fewer when the rarer class has fewer labels).
        source_l2: Penalty of the source model and of the ``pooled`` fit (thousands of rows: fixed).
        target_weight: Weight ``lambda`` of each target row in the ``pooled`` fit (source rows weigh 1).
        threshold: Probability at or above which a customer is predicted to default.
    """

    l2_grid: tuple[float, ...] = (0.3, 3.0, 30.0, 300.0, 3000.0)
    folds: int = 5
    source_l2: float = 1.0
    target_weight: float = 1.0
    threshold: float = 0.5

    def __post_init__(self) -> None:
        grid = np.asarray(self.l2_grid, dtype=np.float64)
        if (grid.ndim != 1 or grid.size == 0 or not np.isfinite(grid).all() or (grid < 0).any()
                or self.folds < 2 or not self.source_l2 >= 0 or not self.target_weight > 0
                or not 0 < self.threshold < 1):
            raise ConfigError(f"Invalid TransferConfig {self}.",
                              "Use a non-empty l2_grid of values >= 0, folds >= 2, source_l2 >= 0, "
                              "target_weight > 0 and a threshold in (0, 1).")


def choose_l2(x, y, grid, folds: int, seed: int, prior=None) -> tuple[float, dict[float, float]]:
    """The penalty of ``grid`` with the lowest mean held-out log-loss over stratified folds.

    Returns:
        ``(best, {l2: mean held-out log-loss})``; ties go to the stronger penalty.

    Raises:
        DataError: the rarer class has fewer than 2 labels (no two folds can both hold it).
    """
    from sklearn.model_selection import StratifiedKFold

    x, yf = _check_xy(x, y)
    y = yf.astype(np.int64)
    k = min(folds, int(np.bincount(y, minlength=2).min()))
    if k < 2:
        raise DataError("Cross-validation needs at least 2 labels of each class.", "Use more target labels.")
    splits = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, y))
    losses: dict[float, float] = {}
    for l2 in sorted(float(v) for v in grid):
        total = 0.0
        for train, held in splits:
            if np.unique(y[train]).size < 2:
                continue
            p = np.clip(fit_logistic(x[train], y[train], l2=l2, prior=prior).predict_proba(x[held]), 1e-12, 1 - 1e-12)
            total -= float(np.sum(y[held] * np.log(p) + (1 - y[held]) * np.log(1 - p)))
        losses[l2] = total / len(y)
    best = min(losses, key=lambda v: (losses[v], -v))
    return best, losses


@dataclass(frozen=True)
class CreditScorer:
    """A fitted variant: maps raw customer features to target default probabilities.

    Attributes:
        variant: One of :data:`VARIANTS`.
        model: The logistic regression over this variant's design (see :meth:`design`).
        source: The source model (used by ``source-score`` to build its extra feature).
        l2: The penalty of the target fit (chosen by cross-validation), ``None`` where there is none.
    """

    variant: str
    model: LogisticModel
    source: LogisticModel
    l2: float | None = None

    def design(self, x) -> np.ndarray:
        """Target customers' features as this variant's model sees them."""
        x = np.asarray(x, dtype=np.float64)
        if self.variant == "source-score":
            return np.column_stack([x, self.source.logit(x)])
        if self.variant == "pooled":
            return np.column_stack([x, np.ones(len(x))])
        return x

    def predict_proba(self, x) -> np.ndarray:
        """Predicted target default probabilities."""
        return self.model.predict_proba(self.design(x))


def fit_variant(variant: str, x_source, y_source, x_target, y_target, config: TransferConfig | None = None,
                source: LogisticModel | None = None, seed: int = 0) -> CreditScorer:
    """Fit one transfer variant (see the module docstring).

    Args:
        variant: One of :data:`VARIANTS`.
        x_source, y_source: Labelled source rows.
        x_target, y_target: The few labelled target rows (unused by ``source-only``).
        config: Penalty grid, folds, pooled weight and threshold.
        source: An already fitted source model (fitted here when ``None``).
        seed: Seed of the cross-validation folds.
    """
    cfg = config or TransferConfig()
    if variant not in VARIANTS:
        raise ConfigError(f"Unknown transfer variant {variant!r}.", f"Use one of {list(VARIANTS)}.")
    src = source or fit_logistic(x_source, y_source, l2=cfg.source_l2)
    if variant == "source-only":
        return CreditScorer(variant, src, src)
    xt = np.asarray(x_target, dtype=np.float64)
    if variant == "pooled":  # [x | 0] for source rows, [x | 1] for target rows: shared weights, own intercept
        xs = np.asarray(x_source, dtype=np.float64)
        design = np.vstack([np.column_stack([xs, np.zeros(len(xs))]), np.column_stack([xt, np.ones(len(xt))])])
        labels = np.concatenate([np.asarray(y_source), np.asarray(y_target)])
        weights = np.concatenate([np.ones(len(xs)), np.full(len(xt), cfg.target_weight)])
        penalty = np.concatenate([np.full(xs.shape[1], cfg.source_l2), [0.0]])
        init = LogisticModel(np.concatenate([src.coef, [0.0]]), src.intercept)
        model = fit_logistic(design, labels, l2=penalty, sample_weight=weights, init=init)
        return CreditScorer(variant, model, src)
    design = CreditScorer(variant, src, src).design(xt)  # x, or [x | source logit] for source-score
    prior = src.coef if variant == "source-prior" else None
    l2, _ = choose_l2(design, y_target, cfg.l2_grid, cfg.folds, seed, prior=prior)
    return CreditScorer(variant, fit_logistic(design, y_target, l2=l2, prior=prior), src, l2)


def label_budget_split(labels, rows, n_labels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` into ``n_labels`` training rows (stratified by label, so both classes appear) and
    the remaining test rows.

    Raises:
        ConfigError: ``n_labels`` below 2, or leaving fewer than 2 test rows.
    """
    from sklearn.model_selection import train_test_split

    rows = np.asarray(rows)
    if not 2 <= n_labels <= len(rows) - 2:
        raise ConfigError(f"n_labels must be in [2, {len(rows) - 2}] for {len(rows)} labelled rows, got {n_labels}.",
                          "Ask for fewer labels, or generate more customers holding the target product.")
    train, test = train_test_split(rows, train_size=n_labels, stratify=np.asarray(labels)[rows],
                                   random_state=seed)
    return np.sort(train), np.sort(test)


def compare_transfer(bank, n_labels: int, seed: int, config: TransferConfig | None = None,
                     variants=VARIANTS) -> list[dict]:
    """Every variant on one label budget of a :class:`~xcatrec.book_extras.credit.CreditBank`.

    The source model is fitted once on every source holder's outcome; ``n_labels`` target holders
    (stratified, ``seed``) are the target training labels and all other target holders the test set.

    Returns:
        One record per variant, plus ``"true-probability"`` (the generator's own probabilities, the
        ceiling): ``variant, n_labels, seed, relatedness, l2`` (the chosen penalty, or ``None``),
        ``auc, log_loss`` and the
        :func:`~xcatrec.book_extras.classification.classification_metrics` (accuracy, precision,
        recall, F1) at ``config.threshold``.
    """
    from sklearn.metrics import log_loss, roc_auc_score

    cfg = config or TransferConfig()
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ConfigError(f"Unknown transfer variant(s) {unknown}.", f"Use any of {list(VARIANTS)}.")
    train, test = label_budget_split(bank.default_target, bank.target_rows, n_labels, seed)
    x, src_rows = bank.features, bank.source_rows
    xs, ys = x[src_rows], bank.default_source[src_rows]
    source = fit_logistic(xs, ys, l2=cfg.source_l2)
    y_test = bank.default_target[test]
    scorers = {v: fit_variant(v, xs, ys, x[train], bank.default_target[train], cfg, source, seed) for v in variants}
    predictions = {v: s.predict_proba(x[test]) for v, s in scorers.items()}
    predictions["true-probability"] = bank.prob_target[test]
    out = []
    for variant, prob in predictions.items():
        clipped = np.clip(prob, 1e-12, 1 - 1e-12)
        l2 = scorers[variant].l2 if variant in scorers else None
        out.append({"variant": variant, "n_labels": int(n_labels), "seed": int(seed),
                    "relatedness": float(bank.config.relatedness), "l2": l2,
                    "auc": float(roc_auc_score(y_test, prob)), "log_loss": float(log_loss(y_test, clipped)),
                    **classification_metrics(y_test, prob, threshold=cfg.threshold)})
    return out
