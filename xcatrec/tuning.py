"""Equal-budget hyper-parameter search on the validation split, with Optuna.

Every method declares what may be tuned (``search_space`` on its class, see
:mod:`xcatrec.core.search`). :func:`tune` gives a method ``trials`` fits on the target training
rows, each scored on the target validation split (full-ranking NDCG@10 of a fixed subset of
validation users, or RMSE for rating data), and keeps the best. Test is never read. The first trial
is always the method's defaults, so a search can only match or improve on them on validation.

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
from xcatrec.errors import ConfigError, DataError
from xcatrec.core.search import Choice, Float, Int, check_space


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

    from xcatrec.experiment import log
    from xcatrec.models import METHODS, make_model
    from xcatrec.training.selection import ndcg_validation, rating_validation, validation_users

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
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    defaults = {f.name: f.default for f in fields(cls.config_class)}
    start_point = {}  # the first trial: each searched field as given, else its default, where inside its range
    for name, param in space.items():
        value = options.get(name, defaults.get(name))
        if isinstance(param, Choice):
            if value in param.values:
                start_point[name] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and param.low <= value <= param.high:
            start_point[name] = int(value) if isinstance(param, Int) else float(value)
    if start_point:
        study.enqueue_trial(start_point)
    budget = trials if space else 1  # nothing to search: the defaults are the only trial
    best, best_score, best_params = None, -math.inf, {}
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    metric = "valid rmse" if ratings else "valid ndcg@10"
    validation = rating_validation if ratings else ndcg_validation  # higher is better: minus the RMSE
    for number in range(budget):
        trial = study.ask()
        params = {name: trial.suggest_int(name, p.low, p.high, log=p.log) if isinstance(p, Int) else
                  trial.suggest_float(name, p.low, p.high, log=p.log) if isinstance(p, Float) else
                  trial.suggest_categorical(name, list(p.values)) for name, p in space.items()}
        tic = time.perf_counter()
        model = make_model(method, dataset.sizes, **{**options, **params, "seed": seed})
        model.fit(dataset)
        score = validation(model, dataset, users=users).score()
        value = -score if ratings else score
        study.tell(trial, score)
        seconds = time.perf_counter() - tic
        history.append({"number": number, "params": params, "value": value, "seconds": seconds})
        log(f"[{method} tune {number + 1}/{budget}] {metric}={value:.4f} ({seconds:.1f} s) "
            + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()),
            verbose=verbose)
        if score > best_score:
            best, best_score, best_params = model, score, params
        del model
    result = TuneResult(method, {**options, **best_params}, -best_score if ratings else best_score, metric, history,
                        time.perf_counter() - start)
    return result, best
