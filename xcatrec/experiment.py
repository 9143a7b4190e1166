"""Run methods over seeds on one data set and collect tidy, labelled results.

This is the glue the CLI, the benchmark and the book chapters share: load the data set for a seed,
build a model from its sizes and a config, train it (model selection on the validation split only),
evaluate it under one or more protocols, and return one record per metric with every label a
reader needs to know where a number came from.
"""

from __future__ import annotations

import json
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from typing import Any, Callable, Iterable

from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError, DataError
from xcatrec.names import RATING_PROTOCOL, REPLICA_PROTOCOL

#: Validation users a search scores when the caller does not say (and the benchmark's default).
VALID_USERS = 3000
#: How a search is shared across seeds (see :func:`run_seeds`).
TUNE_SCOPES = ("first-seed", "per-seed")
#: Records written before kinds existed said what they were in ``protocol``: that value -> (kind, protocol).
LEGACY_PROTOCOLS = {"cost": ("cost", None), "tuning": ("tuning", None), "valid": ("valid", "full"),
                    "valid-ratings": ("valid", RATING_PROTOCOL)}


@dataclass(frozen=True)
class RunSpec:
    """One method with its options, evaluated on one data set setting.

    Args:
        method: Registered method name (see :data:`xcatrec.models.METHODS`).
        options: Config fields of the method (anything left out keeps its default).
        protocols: Evaluation protocols, e.g. ``("full", "sampled-999")`` or ``("ratings",)``.
        ks: Cut-offs for the top-K metrics.
    """

    method: str
    options: dict[str, Any] = field(default_factory=dict)
    protocols: tuple[str, ...] = ("full",)
    ks: tuple[int, ...] = (10,)


def log(message: str, *, verbose: bool = True) -> None:
    """Progress line on stderr (results go to stdout)."""
    if verbose:
        print(message, file=sys.stderr, flush=True)


def run_one(dataset: CrossDomainDataset, spec: RunSpec, seed: int, *, verbose: bool = False,
            labels: dict[str, Any] | None = None, measure_memory: bool = False,
            validate_users: int | None = None, tune: int | None = None, chosen: dict[str, Any] | None = None,
            refit: bool = True, per_user: bool = True):
    """Select ``spec.method`` on validation, refit it on train + validation, and evaluate it on test.

    The sound protocol, in order:

    1. *Selection* on the target validation split (never test): with ``tune`` the method's declared
       search space gets that many trials (:func:`xcatrec.tuning.tune`); ``chosen`` instead reuses
       options an earlier search chose (e.g. on seed 0); otherwise the options as given. Trained
       methods also choose their number of epochs there (early stopping).
    2. *Refit* (``refit=True``, the default): a fresh model with those choices fixed
       (:meth:`~xcatrec.core.base.Recommender.refit_options`) is trained on train + validation
       (:func:`xcatrec.data.merge_valid`), so test is ranked with each user's full known history.
    3. *Test*: every protocol of ``spec``. The ``"disencdr-replica"`` protocol is the exception: it
       replicates the published protocol on these splits by fitting once more with the test rows as
       the validation split (model selection and early stopping *on test*) and sampling 999 negatives
       with replacement; its records say ``optimistic: true``. It is never a result.

    Args:
        validate_users: When not ``None``, also evaluate the selected model (before the refit) on the
            target validation split, on the fixed subset of at most this many users that model
            selection scores (0 = all; see :func:`xcatrec.training.selection.validation_users`):
            records of kind ``"valid"``, full ranking (MAE and RMSE under ``"ratings"`` when the spec
            evaluates ratings), which the benchmark's negative-transfer flag reads instead of test.
        tune: Trials of the hyper-parameter search (``None``: no search).
        chosen: Options chosen by an earlier search, applied without searching again.
        refit: Refit on train + validation before testing (``False`` tests the model fitted on train).
        per_user: Add one ``kind: "per-user"`` record of NDCG@10 per user of the full protocol, for
            paired bootstrap comparisons (see :mod:`xcatrec.evaluation.bootstrap`).

    Returns:
        ``(records, model)``: tidy metric records (see :func:`xcatrec.evaluation.records`), each with
        its ``kind`` (:data:`xcatrec.names.RECORD_KINDS`): ``"test"`` and ``"per-user"`` under a
        test protocol, ``"valid"``, ``"cost"`` (``fit_seconds``: selection fit, or the whole search;
        ``refit_seconds``, ``seconds_per_epoch``, ``selection_epochs`` and ``selection_best_epoch``:
        epochs the selection fit ran, and the one validation chose, which the refit runs;
        ``peak_mb`` when measured; no protocol) and one ``"tuning"`` record per search; and the
        tested model. Every record carries ``refit``, ``tuned`` (trials searched, 0 when none,
        ``"reused"`` with ``chosen``), ``options`` (the chosen config fields, JSON) and ``leaks`` (how
        cross-listed twins were handled).
    """
    from xcatrec.data import merge_valid
    from xcatrec.data.splits import rebuild
    from xcatrec.evaluation import evaluate, evaluate_ratings, records
    from xcatrec.evaluation.bootstrap import per_user_records
    from xcatrec.models import make_model
    from xcatrec.training.selection import validation_users
    from xcatrec.tuning import tune as run_search

    if tune is not None and chosen is not None:
        raise ConfigError("Pass either tune (search now) or chosen (reuse a search), not both.",
                          "Search on one seed and pass its choice as chosen for the others.")
    has_valid = len(dataset.target.valid) > 0
    ratings = RATING_PROTOCOL in spec.protocols
    options = {**spec.options, **(chosen or {})}
    log(f"[{spec.method} seed={seed}] training on {dataset.name} "
        f"({dataset.source.name} -> {dataset.target.name}, split {dataset.split})", verbose=verbose)
    if measure_memory:
        tracemalloc.start()
    start = time.perf_counter()
    search = None
    if tune is not None:
        search, model = run_search(spec.method, dataset, trials=tune, options=options, seed=seed,
                                   valid_users=VALID_USERS if validate_users is None else validate_users,
                                   ratings=ratings, verbose=verbose)
        options = search.options
    else:
        model = make_model(spec.method, dataset.sizes, seed=seed, **options)
        model.fit(dataset, verbose=verbose)
    report = model.report
    fit_seconds = time.perf_counter() - start
    base = dict(dataset=dataset.name, source=dataset.source.name, target=dataset.target.name,
                split=dataset.split, method=spec.method, seed=seed, **(labels or {}),
                refit=bool(refit and has_valid), tuned="reused" if chosen is not None else (tune or 0),
                options=json.dumps(options, sort_keys=True, default=str),
                leaks=dataset.info.get("leaks", "kept"))
    out: list[dict] = []
    if validate_users is not None and has_valid:
        users = validation_users(dataset, max_users=validate_users, seed=seed)
        start = time.perf_counter()
        if ratings:
            protocol, metrics = RATING_PROTOCOL, evaluate_ratings(model, dataset, part="valid", users=users)
        else:
            protocol = "full"
            metrics = evaluate(model, dataset, protocol="full", ks=spec.ks, part="valid", users=users, seed=seed)
        _log_metrics(spec, seed, f"valid, {protocol} ({len(users)} users)", metrics, start, verbose=verbose)
        out += records(metrics, protocol=protocol, kind="valid", **base)
    test_ds, refit_seconds = dataset, 0.0
    if refit and has_valid:
        frozen = model.refit_options()
        test_ds = merge_valid(dataset)
        tic = time.perf_counter()
        model = make_model(spec.method, dataset.sizes, seed=seed, **{**options, **frozen})
        model.fit(test_ds, verbose=verbose)
        refit_seconds = time.perf_counter() - tic
        log(f"[{spec.method} seed={seed}] refit on train + valid with "
            + (", ".join(f"{k}={v}" for k, v in frozen.items()) or "the same settings")
            + f" ({refit_seconds:.1f} s)", verbose=verbose)
    final_report = model.report or report
    cost = {"fit_seconds": fit_seconds, "refit_seconds": refit_seconds,
            "seconds_per_epoch": final_report.seconds_per_epoch if final_report else 0.0,
            "selection_epochs": report.epochs if report else 0, "selection_best_epoch": report.best_epoch if report else 0}
    if search is not None:
        cost.update(tune_trials=search.n_trials, tune_seconds=search.seconds)
    if measure_memory:
        cost["peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    for protocol in spec.protocols:
        start = time.perf_counter()
        if protocol == RATING_PROTOCOL:
            metrics = evaluate_ratings(model, test_ds)
        elif protocol == REPLICA_PROTOCOL:  # fit once more with test as the validation split (step 3)
            target = dataset.target
            peeking = rebuild(dataset, target=dc_replace(target, train=target.known, valid=target.test),
                              replica=REPLICA_PROTOCOL)
            replica = make_model(spec.method, dataset.sizes, seed=seed, **options)
            replica.fit(peeking, verbose=verbose)
            metrics = evaluate(replica, dataset, protocol=REPLICA_PROTOCOL, ks=spec.ks, seed=seed)
        elif protocol == "full" and per_user:
            metrics, frame = evaluate(model, test_ds, protocol=protocol, ks=spec.ks, seed=seed, per_user=True)
            if "ndcg@10" in frame.columns:  # its value is the mean, so every record has one
                [record] = per_user_records(frame, "ndcg@10", **base, protocol=protocol)
                out.append({**record, "value": float(frame["ndcg@10"].mean())})
        else:
            metrics = evaluate(model, test_ds, protocol=protocol, ks=spec.ks, seed=seed)
        _log_metrics(spec, seed, protocol, metrics, start, verbose=verbose)
        extra = {"optimistic": True} if protocol == REPLICA_PROTOCOL else {}
        out += records(metrics, protocol=protocol, kind="test", **base, **extra)
    out += records(cost, kind="cost", **base)
    if search is not None:
        out.append({**base, "kind": "tuning", "protocol": None, "metric": search.metric, "k": None,
                    "value": search.value, "trials": search.trials})
    return out, model


def _log_metrics(spec: RunSpec, seed: int, label: str, metrics: dict[str, float], start: float, *,
                 verbose: bool) -> None:
    """One progress line: the run, what was evaluated, every metric and the seconds since ``start``."""
    log(f"[{spec.method} seed={seed}] {label}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        + f" ({time.perf_counter() - start:.1f} s)", verbose=verbose)


def with_kind(record: dict) -> dict:
    """``record`` with its ``kind``: as it is when it has one; a record written before kinds existed
    gets it from its ``protocol`` (see :data:`LEGACY_PROTOCOLS`; any other value: a test record),
    which then names only the protocol."""
    if "kind" in record:
        return record
    kind, protocol = LEGACY_PROTOCOLS.get(record.get("protocol"), ("test", record.get("protocol")))
    return {**record, "kind": kind, "protocol": protocol}


def quality_records(records: Iterable[dict]) -> list[dict]:
    """The test-metric records of a run (kind ``"test"``: no costs, searches, validation scores or
    per-user records)."""
    return [r for r in records if with_kind(r)["kind"] == "test"]


def record_value(records: Iterable[dict], metric: str = "ndcg", k: int | None = 10,
                 protocol: str = "full") -> float:
    """The value of one test metric among a run's records (NDCG@10 under full ranking by default).

    Raises:
        DataError: The run has no such record.
    """
    for r in quality_records(records):
        if r["protocol"] == protocol and r["metric"] == metric and r.get("k") == k:
            return r["value"]
    raise DataError(f"No {metric}@{k} record under protocol {protocol!r} in these records.",
                    "Evaluate the run with that protocol and cut-off (see run_one's protocols and ks).")


def run_seeds(load: Callable[[int], CrossDomainDataset], specs: Iterable[RunSpec], seeds: Iterable[int], *,
              verbose: bool = False, labels: dict[str, Any] | None = None, measure_memory: bool = False,
              skip: Callable[[RunSpec, int], bool] | None = None,
              on_records: Callable[[list[dict]], None] | None = None,
              validate_users: int | None = None, tune: int | None = None, tune_scope: str = "first-seed",
              choices: dict[str, dict[str, Any]] | None = None, refit: bool = True) -> list[dict]:
    """Every spec on every seed; ``load(seed)`` returns the data set split for that seed.

    Args:
        validate_users: passed to :func:`run_one` (``None``: no validation records).
        skip: ``skip(spec, seed)`` true leaves that run out (used to resume a benchmark).
        on_records: called with the records of each finished run, so a caller can save them at once.
        tune: Trials of the hyper-parameter search per method (``None``: the options as given).
        tune_scope: ``"first-seed"`` searches once per method, on the first seed's validation split,
            and reuses the choice for the other seeds (each still early-stops on its own validation
            split and is refit); ``"per-seed"`` searches on every seed.
        choices: Choices of earlier searches by method (a resumed benchmark passes them back);
            filled in place as searches finish.
        refit: passed to :func:`run_one`.
    """
    if tune_scope not in TUNE_SCOPES:
        raise ConfigError(f"Unknown tune_scope {tune_scope!r}.", f"Use one of {list(TUNE_SCOPES)}.")
    specs, seeds = list(specs), list(seeds)
    if not seeds:
        raise ConfigError("No seeds to run.", "Pass --seeds 3 (or a list of seeds).")
    choices = {} if choices is None else choices
    out: list[dict] = []
    for seed in seeds:
        todo = [spec for spec in specs if skip is None or not skip(spec, seed)]
        if not todo:
            continue
        dataset = load(seed)
        for spec in todo:
            reuse = choices.get(spec.method) if tune is not None and tune_scope == "first-seed" else None
            records = run_one(dataset, spec, seed, verbose=verbose, labels={**(labels or {}), "tune_scope":
                                                                            tune_scope if tune else None},
                              measure_memory=measure_memory, validate_users=validate_users,
                              tune=None if reuse is not None else tune, chosen=reuse, refit=refit)[0]
            if tune is not None and reuse is None:
                choices[spec.method] = json.loads(records[0]["options"])
            out += records
            if on_records is not None:
                on_records(records)
    return out
