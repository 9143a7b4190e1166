"""Model selection in one place: the validation users and metrics that early stopping and searches
read, and the choice of ``lambda`` in ``L = L_source + lambda L_target`` by user-level cross-validation.

Selection never looks at test. :func:`validation_users` is the fixed subset of target validation users
every search and early stopping scores; :func:`ndcg_validation` / :func:`rating_validation` turn a
model into a zero-argument metric (higher is better) on them.

:func:`tune_lambda` pools the target training and validation rows, cuts the users into ``folds``
groups with :func:`xcatrec.data.user_kfold` and, for each fold, holds out one row of every user of
that group as validation; each candidate ``lambda`` is trained on the rest of the fold and scored by
full-ranking NDCG@10 on the held-out rows. :func:`best_lambda` picks the ``lambda`` with the highest
mean over folds. Early stopping inside a fold reads the same held-out rows as the score (as every
method's fit does with its validation split); the bias this adds is shared by all candidates, so it
does not favour one ``lambda`` over another. Taught in the chapter "Transfer methods".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Callable

import numpy as np
import pandas as pd

from xcatrec.core.base import Recommender
from xcatrec.data.types import CrossDomainDataset
from xcatrec.data.validation import user_kfold
from xcatrec.errors import ConfigError, DataError


@dataclass(frozen=True)
class Validation:
    """A validation metric: its name in the fit report's history and the callable computing it."""

    metric: str
    score: Callable[[], float]


def validation_users(dataset: CrossDomainDataset, *, max_users: int = 3000, seed: int = 0) -> np.ndarray:
    """The users model selection scores: a fixed random subset (by ``seed``) of at most ``max_users``
    users with a target validation item (0 = all of them), sorted; empty without validation rows."""
    users = np.unique(dataset.target.valid.users)
    if max_users and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=max_users, replace=False))
    return users


def ndcg_validation(model: Recommender, dataset: CrossDomainDataset, *, max_users: int = 3000, seed: int = 0,
                    users: np.ndarray | None = None) -> Validation | None:
    """Full-ranking NDCG@10 of ``model`` on the target valid split, as a :class:`Validation`.

    Args:
        model: Scored when the metric is computed (it must answer ``score`` then).
        max_users, seed: Score :func:`validation_users` with these (ignored when ``users`` is given).
        users: Score only these users (those with a validation row).

    Returns:
        ``None`` when there is nothing to validate on (then no early stopping).
    """
    from xcatrec.evaluation import evaluate

    pool = (validation_users(dataset, max_users=max_users, seed=seed) if users is None
            else np.intersect1d(users, dataset.target.valid.users))
    if len(pool) == 0:
        return None
    return Validation("valid_ndcg@10", lambda: float(
        evaluate(model, dataset, protocol="full", ks=(10,), part="valid", users=pool)["ndcg@10"]))


def rating_validation(model: Recommender, dataset: CrossDomainDataset,
                      users: np.ndarray | None = None) -> Validation | None:
    """Minus the RMSE of ``model.predict_ratings`` on the target valid rows (of ``users``)."""
    from xcatrec.evaluation import evaluate_ratings

    valid = dataset.target.valid
    pool = np.unique(valid.users) if users is None else np.intersect1d(users, valid.users)
    if len(pool) == 0:
        return None
    if valid.ratings is None:
        raise DataError("loss='mse' needs target validation ratings, but the valid split has none.",
                        "Use loss='bpr' for implicit data.")
    return Validation("valid_neg_rmse", lambda: -float(
        evaluate_ratings(model, dataset, part="valid", users=pool)["rmse"]))


COLUMNS = ["lam", "fold", "ndcg@10", "hr@10", "epochs", "best_epoch", "seconds"]


def tune_lambda(dataset: CrossDomainDataset, lambdas: Sequence[float], *, folds: int = 3, seed: int = 0,
                method: type[Recommender], options: dict[str, Any] | None = None,
                verbose: bool = False) -> pd.DataFrame:
    """Validation NDCG@10 of every ``lambda`` on every fold of a user-level k-fold split.

    Args:
        dataset: The data set; only its training data (target train + valid, source train) is used.
        lambdas: Candidate values of ``lambda`` (unique, each >= 0).
        folds: Number of user folds (at least 2).
        seed: Seed of the fold split; also the models' seed unless ``options`` sets ``seed``.
        method: A Recommender class whose config has ``lam`` (e.g. :class:`xcatrec.models.SharedBottom`).
        options: Other config fields of the method (e.g. ``{"epochs": 10}``); ``lam`` is not allowed.
        verbose: Print the training progress of every fit.

    Returns:
        One row per ``(lambda, fold)``, folds outer, with columns ``lam``, ``fold``, ``ndcg@10`` and
        ``hr@10`` (full ranking on the fold's held-out rows), ``epochs``, ``best_epoch``, ``seconds``.

    Raises:
        ConfigError: Not a Recommender class, a method without ``lam``, ``lam`` in ``options``, no or duplicate
            lambdas, or ``folds < 2``.
        DataError: Fewer eligible target users than folds.
    """
    from xcatrec.evaluation import evaluate

    if not (isinstance(method, type) and issubclass(method, Recommender)):
        raise ConfigError(f"method must be a Recommender class, got {method!r}.",
                          "Pass method=SharedBottom (from xcatrec.models), for example.")
    if "lam" not in {f.name for f in fields(method.config_class)}:
        raise ConfigError(f"Method {method.name!r} has no lambda (its config has no 'lam' field).",
                          "Tune lambda of a joint method such as 'shared-bottom'.")
    cls, options = method, dict(options or {})
    if "lam" in options:
        raise ConfigError("options sets 'lam', which tune_lambda varies itself.",
                          "Give the candidates in lambdas and remove 'lam' from options.")
    lambdas = [float(x) for x in np.atleast_1d(np.asarray(lambdas, dtype=float))]
    if not lambdas or len(set(lambdas)) != len(lambdas):
        raise ConfigError(f"lambdas must be a non-empty list of distinct values, got {lambdas}.",
                          "Pass e.g. lambdas=[0.1, 0.5, 1.0, 2.0].")
    options.setdefault("seed", seed)
    configs = [cls.config_class(**{**options, "lam": lam}) for lam in lambdas]  # validate before training
    rows = []
    for fold, fold_ds in user_kfold(dataset, k=folds, seed=seed):
        for lam, config in zip(lambdas, configs):
            tic = time.perf_counter()
            model = cls(fold_ds.sizes, config)
            report = model.fit(fold_ds, verbose=verbose)
            scores = evaluate(model, fold_ds, protocol="full", ks=(10,), part="valid")
            rows.append({"lam": lam, "fold": fold, "ndcg@10": scores["ndcg@10"], "hr@10": scores["hr@10"],
                         "epochs": report.epochs, "best_epoch": report.best_epoch,
                         "seconds": time.perf_counter() - tic})
            if verbose:
                print(f"fold {fold} lambda {lam:g}: valid ndcg@10 {scores['ndcg@10']:.4f}", flush=True)
    return pd.DataFrame(rows, columns=COLUMNS)


def lambda_summary(table: pd.DataFrame, metric: str = "ndcg@10") -> pd.DataFrame:
    """Mean, standard deviation and number of folds of ``metric`` per ``lambda``, sorted by ``lambda``."""
    if metric not in table.columns or "lam" not in table.columns:
        raise ConfigError(f"The table has no {metric!r} or 'lam' column.", "Pass the output of tune_lambda.")
    if table.empty:
        raise ConfigError("The table is empty.", "Run tune_lambda with at least one lambda first.")
    out = table.groupby("lam", sort=True)[metric].agg(["mean", "std", "count"]).reset_index()
    return out.rename(columns={"count": "folds"})


def best_lambda(table: pd.DataFrame, metric: str = "ndcg@10") -> float:
    """The ``lambda`` with the highest mean ``metric`` over folds (the smallest one on a tie)."""
    summary = lambda_summary(table, metric)
    return float(summary["lam"].iloc[int(np.argmax(summary["mean"].to_numpy()))])
