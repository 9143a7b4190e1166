"""Equal-budget hyper-parameter search on the validation split, with Optuna.

Every method declares what may be tuned (``search_space`` on its class, see
:mod:`xcatrec.models.search`). :func:`tune` gives a method ``trials`` fits on the target training
rows, each scored on the target validation split (full-ranking NDCG@10 of a fixed subset of
validation users, or RMSE for rating data), and keeps the best. Test is never read. The first trial
is always the method's defaults, so a search can only match or improve on them on validation. Fields
given as options stay fixed and are not searched.

Optuna (Akiba et al., KDD 2019) is the search library: well kept, seedable, and its TPE sampler
handles the mixed integer / log-scale / categorical spaces declared here. A budget is counted in
trials; the wall time each method spent is reported beside it (:attr:`TuneResult.seconds`), so a
cheap method is not starved and an expensive one not favoured.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from typing import Any

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError
from xcatrec.models.search import Choice, Float, Int, check_space


@dataclass(frozen=True)
class TuneResult:
    """What a search chose and what it cost.

    Args:
        method: The method searched.
        options: The chosen config fields (the given options plus the best trial's parameters).
        value: The best validation value (NDCG@10; for ratings, RMSE).
        metric: ``"valid ndcg@10"`` or ``"valid rmse"``.
        trials: One dict per trial: ``number``, ``params``, ``value``, ``seconds``.
        seconds: Wall time of the whole search.
    """

    method: str
    options: dict[str, Any]
    value: float
    metric: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_trials(self) -> int:
        return len(self.trials)


def check_trials(trials: Any) -> int:
    """``trials`` as a positive whole number, else a :class:`ConfigError` naming the fix."""
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"The tuning budget must be a whole number of trials >= 1, got {trials!r}.",
                          "Pass --tune 8, for example (leave --tune out to keep the defaults).")
    return trials


def _suggest(trial, name: str, param) -> Any:
    if isinstance(param, Int):
        return trial.suggest_int(name, param.low, param.high, log=param.log)
    if isinstance(param, Float):
        return trial.suggest_float(name, param.low, param.high, log=param.log)
    return trial.suggest_categorical(name, list(param.values))


def _defaults_in_space(config_class: type, space: dict, options: dict[str, Any]) -> dict[str, Any]:
    """The starting point (given options, else config defaults) of each searched field, if inside its range."""
    defaults = {f.name: f.default for f in fields(config_class)}
    out = {}
    for name, param in space.items():
        value = options.get(name, defaults.get(name))
        if isinstance(param, Choice):
            if value in param.values:
                out[name] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and param.low <= value <= param.high:
            out[name] = int(value) if isinstance(param, Int) else float(value)
    return out


def validation_score(model, dataset: CrossDomainDataset, users, *, ratings: bool) -> float:
    """Full-ranking NDCG@10 (or RMSE with ``ratings``) of a fitted model on the target validation split."""
    from xcatrec.evaluation import evaluate, evaluate_ratings

    if ratings:
        return float(evaluate_ratings(model, dataset, part="valid", users=users)["rmse"])
    return float(evaluate(model, dataset, protocol="full", ks=(10,), part="valid", users=users)["ndcg@10"])


def tune(method: str, dataset: CrossDomainDataset, *, trials: int, options: dict[str, Any] | None = None,
         seed: int = 0, valid_users: int = 3000, ratings: bool = False, verbose: bool = False):
    """Search ``method``'s declared space with ``trials`` fits, selecting on the validation split.

    Args:
        method: A registered method name.
        dataset: A data set with a target validation split (see :func:`xcatrec.data.carve_validation`).
        trials: The budget, in fits.
        options: Fixed config fields: a field given here is not searched, even when the method's space
            names it (e.g. EASE's ``max_items``, to bound its memory).
        seed: Seed of the models and of the sampler.
        valid_users: Validation users scored per trial (a fixed random subset; 0 = all).
        ratings: Select on RMSE of the validation ratings instead of ranking NDCG@10.
        verbose: One progress line per trial on stderr.

    Returns:
        ``(result, model)``: a :class:`TuneResult` and the best trial's fitted model.

    Raises:
        ConfigError: A bad budget, or an unknown method or option.
        DataError: The data set has no validation rows.
    """
    import optuna

    from xcatrec.errors import DataError
    from xcatrec.experiment import log
    from xcatrec.models import METHODS, make_model
    from xcatrec.training.trainer import validation_users

    trials = check_trials(trials)
    if method not in METHODS:
        raise ConfigError(f"Unknown method {method!r}.", f"Use one of {sorted(METHODS)}.")
    cls = METHODS[method]
    options = dict(options or {})
    space = {k: v for k, v in cls.search_space.items() if k not in options}  # given options stay fixed
    check_space(space, cls.config_class)
    users = validation_users(dataset, max_users=valid_users, seed=seed)
    if len(users) == 0:
        raise DataError(f"Data set {dataset.name!r} has no target validation rows to tune {method!r} on.",
                        "Load it with a validation split (the default), or drop --tune.")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sign = -1.0 if ratings else 1.0
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    start_point = _defaults_in_space(cls.config_class, space, options)
    if start_point:
        study.enqueue_trial(start_point)
    budget = trials if space else 1  # nothing to search: the defaults are the only trial
    best: dict[str, Any] = {"value": -math.inf, "model": None}
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    metric = "valid rmse" if ratings else "valid ndcg@10"
    for number in range(budget):
        trial = study.ask()
        params = {name: _suggest(trial, name, param) for name, param in space.items()}
        tic = time.perf_counter()
        model = make_model(method, dataset.sizes, **{**options, **params, "seed": seed})
        model.fit(dataset)
        value = validation_score(model, dataset, users, ratings=ratings)
        study.tell(trial, sign * value)
        seconds = time.perf_counter() - tic
        history.append({"number": number, "params": params, "value": value, "seconds": seconds})
        log(f"[{method} tune {number + 1}/{budget}] {metric}={value:.4f} ({seconds:.1f} s) "
            + ", ".join(f"{k}={_short(v)}" for k, v in params.items()), verbose=verbose)
        if sign * value > best["value"]:
            best.update(value=sign * value, model=model, params=params)
        del model
    result = TuneResult(method, {**options, **best.get("params", {})}, sign * best["value"], metric, history,
                        time.perf_counter() - start)
    return result, best["model"]


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
