"""The one training loop every Keras-based method uses: epochs, validation, early stopping, timing.

A method builds its Keras model with :func:`build_keras` (under the active ``tf.distribute`` strategy),
then hands it to :func:`fit_keras` with two callables: ``batches(epoch)`` returns that epoch's
``tf.data.Dataset`` (rows permuted with numpy, see :func:`epoch_dataset`), and ``validate()`` returns
a validation metric where higher is better (see :func:`valid_ndcg`). The loop trains one epoch at a
time with ``keras.Model.fit``, validates, keeps the best weights in memory, stops when the metric has
not improved for ``patience`` validations, and restores the best weights. Model selection reads only
the validation split, never test.

Distribution: nothing in a method names a strategy. ``with strategy.scope(): model.fit(dataset)``
makes :func:`build_keras` create the variables under that strategy and Keras split each batch over
its replicas. A ``compute_loss`` override must return its mean loss through :func:`replica_mean`, so
that the gradients summed over replicas equal the gradient of the global mean.

Loop settings (epochs, batch size, patience, ...) live in each method's config, which subclasses
:class:`xcatrec.models.train_config.TrainConfig`; ``config.loop_options()`` gives this loop's keywords.

Imports: TensorFlow is imported inside the functions, and nothing from :mod:`xcatrec.models` is
imported at module level, so model modules can import this one without an import cycle.
"""

from __future__ import annotations

import os
import re
import sys
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from xcatrec.errors import ConfigError, DataError

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

    from xcatrec.data.types import CrossDomainDataset
    from xcatrec.models.base import FitReport, Recommender


def current_strategy(strategy: "tf.distribute.Strategy | None" = None) -> "tf.distribute.Strategy":
    """``strategy`` if given, else the one whose ``scope()`` is active (the default strategy outside)."""
    import tensorflow as tf

    return strategy if strategy is not None else tf.distribute.get_strategy()


def build_keras(build: Callable[[], "keras.Model"],
                strategy: "tf.distribute.Strategy | None" = None) -> "keras.Model":
    """Call ``build`` (which creates *and compiles* a Keras model) under the strategy's scope."""
    with current_strategy(strategy).scope():
        return build()


def replica_mean(values: Any) -> Any:
    """Mean of per-example values, divided by the number of replicas in sync.

    Use it for the loss a ``compute_loss`` override returns: Keras sums gradients over replicas, so
    each replica must contribute ``mean / n_replicas`` (what Keras's own losses do internally).
    """
    import tensorflow as tf
    from keras import ops

    mean = ops.mean(values)
    n = tf.distribute.get_strategy().num_replicas_in_sync
    return mean / n if n > 1 else mean


def epoch_dataset(arrays: dict[str, np.ndarray], batch_size: int,
                  order: np.ndarray | None = None) -> "tf.data.Dataset":
    """A batched ``tf.data.Dataset`` of dict elements, rows taken in ``order`` (a permutation).

    Permuting with numpy once per epoch is 2-4x faster than ``Dataset.shuffle`` on single rows, and
    cutting the batches in numpy (one dataset element per batch) is 10x faster than slicing rows with
    ``from_tensor_slices(...).batch(...)``. The elements are dicts so that Keras passes them whole as
    ``x`` (tuples would be read as ``(x, y)``). The last batch may be smaller.
    """
    import tensorflow as tf

    if order is not None:
        arrays = {k: v[order] for k, v in arrays.items()}
    n = len(next(iter(arrays.values())))
    full = n // batch_size * batch_size
    ds = tf.data.Dataset.from_tensor_slices(
        {k: v[:full].reshape(-1, batch_size, *v.shape[1:]) for k, v in arrays.items()})
    if full < n:
        ds = ds.concatenate(tf.data.Dataset.from_tensors({k: v[full:] for k, v in arrays.items()}))
    return ds.prefetch(tf.data.AUTOTUNE)


def validation_users(dataset: "CrossDomainDataset", *, max_users: int = 3000, seed: int = 0) -> np.ndarray:
    """The users model selection scores: a fixed random subset (by ``seed``) of at most ``max_users``
    users with a target validation item (0 = all of them), sorted; empty without validation rows."""
    users = np.unique(dataset.target.valid.users)
    if max_users and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=max_users, replace=False))
    return users


def valid_ndcg(model: "Recommender", dataset: "CrossDomainDataset", *, max_users: int = 3000,
               seed: int = 0, before: Callable[[], None] | None = None) -> Callable[[], float] | None:
    """A ``validate`` callable: full-ranking NDCG@10 of ``model`` on the target valid split.

    Args:
        model: The recommender being trained; it must answer ``score`` when the callable runs.
        dataset: The data set; only ``target.valid`` users are scored.
        max_users: Score a fixed random subset of at most this many validation users (0 = all).
        seed: Seed of that subset.
        before: Called before each validation, e.g. to copy Keras weights into the model's arrays.

    Returns:
        The callable, or ``None`` when the data set has no validation rows (then no early stopping).
    """
    users = validation_users(dataset, max_users=max_users, seed=seed)
    if len(users) == 0:
        return None

    def validate() -> float:
        from xcatrec.evaluation import evaluate

        if before is not None:
            before()
        result = evaluate(model, dataset, protocol="full", ks=(10,), part="valid", users=users)
        return float(result["ndcg@10"])

    return validate


def fit_synced(owner: "Recommender", net: "keras.Model", dataset: "CrossDomainDataset", config: Any, *,
               batches: Callable[[int], "tf.data.Dataset"], sync: Callable[[], None], verbose: bool = False,
               log_prefix: str | None = None) -> "FitReport":
    """Train ``net`` for the recommender ``owner`` that scores from numpy copies of its weights.

    The pattern every Keras-trained method shares: ``sync()`` copies the network's weights into
    ``owner`` before each validation (full-ranking NDCG@10 on the target valid split, see
    :func:`valid_ndcg`) and once more after training, when :func:`fit_keras` has restored the best
    weights. ``config`` is the method's :class:`~xcatrec.models.train_config.TrainConfig`.
    """
    validate = valid_ndcg(owner, dataset, max_users=config.valid_users, seed=config.seed, before=sync)
    report = fit_keras(net, batches=batches, validate=validate, verbose=verbose,
                       log_prefix=f"{owner.name} " if log_prefix is None else log_prefix,
                       **config.loop_options())
    sync()
    return report


def fit_keras(model: "keras.Model", *, batches: Callable[[int], "tf.data.Dataset"], epochs: int,
              validate: Callable[[], float] | None = None, patience: int = 0, eval_every: int = 1,
              strategy: "tf.distribute.Strategy | None" = None, verbose: bool = False,
              log_prefix: str = "", metric: str = "valid_ndcg@10",
              checkpoint: str | Path | None = None, checkpoint_seed: int | None = None) -> "FitReport":
    """Train a compiled Keras model epoch by epoch with early stopping on a validation metric.

    Args:
        model: A compiled ``keras.Model`` built by :func:`build_keras` under ``strategy``.
        batches: ``epoch -> tf.data.Dataset`` (epochs count from 0); build a fresh permutation per epoch.
        epochs: Maximum number of epochs.
        validate: Returns the validation metric (higher is better); ``None`` trains all epochs and
            keeps the last weights.
        patience: Stop after this many validations in a row without improvement; 0 never stops early.
        eval_every: Validate every this many epochs and after the last epoch.
        strategy: The strategy the model was built under; ``None`` means the active one.
        verbose: Print one progress line per epoch to stderr.
        log_prefix: Text put before each progress line (e.g. the method and phase name).
        metric: Name of the validation metric in the report's history.
        checkpoint: A folder; when given, the weights kept so far (the best validated ones, or the
            last epoch's without validation) are written after every epoch that changes them, to
            ``<folder>/<log_prefix>.seed-<checkpoint_seed>.best.npz`` (atomically; see
            :func:`checkpoint_path`). Restore them with :func:`load_checkpoint`.
        checkpoint_seed: The run's seed, put in the checkpoint's file name so that runs with other
            seeds sharing the folder do not overwrite it (``log_prefix`` names the method and phase).

    Returns:
        A :class:`FitReport`: epochs run, total seconds (training + validation), mean training seconds
        per epoch, best epoch (1-based), and history lists ``loss``, ``seconds`` and ``cpu_seconds``
        (wall and process CPU time of training, one per epoch; CPU time is the steadier number on a
        shared machine), ``valid_epoch`` and ``metric`` (one per validation).
    """
    from xcatrec.models.base import FitReport

    strategy = current_strategy(strategy)
    if model.distribute_strategy is not strategy:
        raise ConfigError("The Keras model was built under a different tf.distribute strategy than "
                          "the one it is trained with.", "Build it with build_keras(..., strategy).")
    history: dict[str, list[float]] = {"loss": [], "seconds": [], "cpu_seconds": [], "valid_epoch": [],
                                       metric: []}
    best_value, best_epoch, best_weights, waited = -np.inf, 0, None, 0
    start = time.perf_counter()
    epoch = 0
    for epoch in range(1, epochs + 1):
        tic, cpu = time.perf_counter(), time.process_time()
        out = model.fit(batches(epoch - 1), epochs=1, verbose=0, shuffle=False)
        seconds = time.perf_counter() - tic
        history["loss"].append(float(out.history["loss"][-1]))
        history["seconds"].append(seconds)
        history["cpu_seconds"].append(time.process_time() - cpu)
        line = f"{log_prefix}epoch {epoch:3d}  loss {history['loss'][-1]:.4f}  {seconds:6.2f}s"
        stop = False
        if validate is not None and (epoch % eval_every == 0 or epoch == epochs):
            value = float(validate())
            history["valid_epoch"].append(float(epoch))
            history[metric].append(value)
            line += f"  {metric} {value:.4f}"
            if value > best_value:
                best_value, best_epoch, waited = value, epoch, 0
                best_weights = model.get_weights()
                line += "  *"
                if checkpoint is not None:
                    _save_checkpoint(checkpoint_path(checkpoint, log_prefix, checkpoint_seed), best_weights)
            else:
                waited += 1
                stop = patience > 0 and waited >= patience
        elif validate is None and checkpoint is not None:
            _save_checkpoint(checkpoint_path(checkpoint, log_prefix, checkpoint_seed), model.get_weights())
        if verbose:
            print(line, file=sys.stderr, flush=True)
        if stop:
            break
    if best_weights is not None:
        model.set_weights(best_weights)
    else:
        best_epoch = epoch
    return FitReport(epochs=epoch, seconds=time.perf_counter() - start,
                     seconds_per_epoch=float(np.mean(history["seconds"])) if epoch else 0.0,
                     best_epoch=best_epoch, history=history)


def checkpoint_path(folder: str | Path, log_prefix: str = "", seed: int | None = None) -> Path:
    """Where :func:`fit_keras` writes the checkpoint of a phase named by ``log_prefix`` (which names
    the method and phase, e.g. ``"finetune/source-pretrain "``) for the run with ``seed``:
    ``<folder>/finetune-source-pretrain.seed-3.best.npz`` (no seed part when ``seed`` is ``None``)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", log_prefix.strip()).strip("-") or "model"
    return Path(folder) / (f"{name}.best.npz" if seed is None else f"{name}.seed-{seed}.best.npz")


def _save_checkpoint(path: Path, weights: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, *weights)
    os.replace(tmp, path)


def load_checkpoint(model: "keras.Model", path: str | Path) -> None:
    """Set a built Keras model's weights from a checkpoint written by :func:`fit_keras`.

    Raises:
        ConfigError: The file does not exist, or its arrays do not fit the model.
        DataError: The file is corrupt (e.g. truncated) or not a checkpoint written by :func:`fit_keras`.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Checkpoint {str(path)!r} does not exist.",
                          "Train with a checkpoint folder first (config field checkpoint_dir).")
    fix = "Delete it and train again with checkpoint_dir set (it is rewritten while training)."
    try:
        saved = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"Checkpoint {path} is corrupt or not a checkpoint written by xcatrec "
                        f"({type(exc).__name__}: {exc}).", fix) from None
    if not isinstance(saved, np.lib.npyio.NpzFile):
        raise DataError(f"Checkpoint {path} is a single array, not a checkpoint written by xcatrec "
                        "(an .npz archive of arrays arr_0, arr_1, ...).", fix)
    with saved:
        try:
            weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        except (KeyError, OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"Checkpoint {path} is corrupt or not a checkpoint written by xcatrec "
                            f"({type(exc).__name__}: {exc}).", fix) from None
    expected = [tuple(w.shape) for w in model.get_weights()]
    if [w.shape for w in weights] != expected:
        raise ConfigError(f"Checkpoint {path} does not fit this model (shapes {[w.shape for w in weights]} "
                          f"against {expected}).", "Build the model with the config it was trained with.")
    model.set_weights(weights)


def combine_reports(reports: "dict[str, FitReport]") -> "FitReport":
    """One report for a multi-phase method: sums epochs and seconds, prefixes history keys by phase.

    ``best_epoch`` is that of the last phase (the one whose weights answer ``score``).
    """
    from xcatrec.models.base import FitReport

    if not reports:
        return FitReport()
    epochs = sum(r.epochs for r in reports.values())
    train_seconds = sum(r.seconds_per_epoch * r.epochs for r in reports.values())
    history = {f"{phase}/{key}": list(values) for phase, r in reports.items()
               for key, values in r.history.items()}
    return FitReport(epochs=epochs, seconds=sum(r.seconds for r in reports.values()),
                     seconds_per_epoch=train_seconds / epochs if epochs else 0.0,
                     best_epoch=list(reports.values())[-1].best_epoch, history=history)
